//! Debian's `modsecurity-crs` package (CRS 3.3.4, at the paths users already have) parses
//! unchanged. `scripts/test.sh` installs it; elsewhere the test is skipped unless `CI` is set.

use std::path::Path;

use rampart_seclang::{Directive, Phase, parse_file, parse_str};

const LOAD: &str = "/usr/share/modsecurity-crs/owasp-crs.load";

fn installed() -> bool {
    if Path::new(LOAD).is_file() && Path::new("/etc/modsecurity/crs/crs-setup.conf").is_file() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "Debian's CRS is missing: apt-get install -y modsecurity-crs"
    );
    eprintln!("skipped: Debian's modsecurity-crs is not installed");
    false
}

fn counts(directives: &[Directive]) -> (usize, usize, usize, usize) {
    let (mut rules, mut chained, mut actions) = (0, 0, 0);
    for d in directives {
        match d {
            Directive::Rule(r) => {
                rules += 1;
                chained += r.chained().count();
            }
            Directive::Action(_) => actions += 1,
            _ => {}
        }
    }
    (directives.len(), rules, chained, actions)
}

#[test]
fn owasp_crs_load_parses_unchanged() {
    if !installed() {
        return;
    }
    // The file Apache's mod_security2 includes (Include + IncludeOptional, absolute paths).
    let directives = parse_file(Path::new(LOAD)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts(&directives), (678, 624, 166, 10));
    let r = directives
        .iter()
        .find_map(|d| match d {
            Directive::Rule(r) if r.id() == Some(920350) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(r.phase(), Some(Phase::RequestBody));
    assert!(
        r.location
            .file
            .ends_with("REQUEST-920-PROTOCOL-ENFORCEMENT.conf")
    );
}

#[test]
fn nginx_style_top_file() {
    if !installed() {
        return;
    }
    // How an nginx + ModSecurity v3 user includes the same files.
    let top = "Include /etc/modsecurity/crs/crs-setup.conf\n\
               Include /usr/share/modsecurity-crs/rules/*.conf\n";
    let directives =
        parse_str(top, Path::new("/etc/nginx/modsec/main.conf")).unwrap_or_else(|e| panic!("{e}"));
    // crs-setup.conf's REQUEST-900/999 exclusion files are not included here.
    let (_, rules, chained, actions) = counts(&directives);
    assert_eq!((rules, chained, actions), (624, 166, 10));
    assert!(directives.iter().any(|d| matches!(d, Directive::Rule(r)
        if r.id() == Some(942100) && r.operator.name == "detectsqli")));
}
