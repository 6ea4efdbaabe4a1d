//! Debian's CRS 3.3.4 (`apt-get install modsecurity-crs`) loads unchanged and, with
//! `SecRuleEngine On`, blocks SQL injection, XSS and path traversal with 403.

use std::path::{Path, PathBuf};

use rampart_waf::Ruleset;

fn debian_crs() -> Option<Ruleset> {
    let load = Path::new("/usr/share/modsecurity-crs/owasp-crs.load");
    if !load.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "modsecurity-crs is not installed (apt-get install -y modsecurity-crs)"
        );
        eprintln!("modsecurity-crs not installed; skipping");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("rampart-waf-debian-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("main.conf");
    std::fs::write(
        &main,
        "SecRuleEngine On\nSecRequestBodyAccess On\nInclude /usr/share/modsecurity-crs/owasp-crs.load\n",
    )
    .unwrap();
    let files: Vec<PathBuf> = vec![main];
    let rules = Ruleset::load(&files).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    Some(rules)
}

fn status(rules: &Ruleset, method: &str, uri: &str, body: Option<&str>) -> Option<u16> {
    let mut tx = rules.transaction();
    tx.process_connection("192.0.2.10", 40000, "192.0.2.1", 80);
    tx.process_uri(uri, method, "HTTP/1.1");
    tx.add_request_header("Host", "example.com");
    tx.add_request_header(
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    );
    tx.add_request_header("Accept", "text/html,application/xhtml+xml");
    if let Some(b) = body {
        tx.add_request_header("Content-Type", "application/x-www-form-urlencoded");
        tx.add_request_header("Content-Length", &b.len().to_string());
    }
    if let Some(i) = tx.process_request_headers() {
        return Some(i.status);
    }
    if let Some(b) = body {
        tx.append_request_body(b.as_bytes());
    }
    let i = tx.process_request_body();
    tx.process_logging();
    i.map(|i| i.status)
}

#[test]
fn debian_crs_3_blocks_attacks() {
    let Some(rules) = debian_crs() else {
        return;
    };
    assert_eq!(
        status(&rules, "GET", "/index.html?q=hello+world", None),
        None
    );
    assert_eq!(
        status(&rules, "GET", "/?id=1%27%20OR%20%271%27%3D%271", None),
        Some(403),
        "sqli"
    );
    assert_eq!(
        status(
            &rules,
            "POST",
            "/comment",
            Some("text=<script>alert(1)</script>")
        ),
        Some(403),
        "xss"
    );
    assert_eq!(
        status(&rules, "GET", "/download?file=../../../../etc/passwd", None),
        Some(403),
        "path traversal"
    );
}
