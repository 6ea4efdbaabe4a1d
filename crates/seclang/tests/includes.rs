//! `Include` resolution: relative to the including file, globs in sorted order, locations of
//! included directives.

use std::fs;

use rampart_seclang::{Directive, parse_file, parse_str};

fn markers(directives: &[Directive]) -> Vec<(String, String, u32)> {
    directives
        .iter()
        .filter_map(|d| match d {
            Directive::Marker(m) => Some((
                m.name.clone(),
                m.location
                    .file
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                m.location.line,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn globs_expand_in_sorted_order_relative_to_the_including_file() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("crs/rules");
    fs::create_dir_all(&rules).unwrap();
    for name in ["b.conf", "a.conf", "c.conf", "skip.conf.example"] {
        fs::write(rules.join(name), format!("\nSecMarker {name}\n")).unwrap();
    }
    // crs/setup.conf includes its sibling folder with a relative pattern.
    fs::write(
        dir.path().join("crs/setup.conf"),
        "SecMarker setup\nInclude \"rules/*.conf\"\n",
    )
    .unwrap();
    let top = dir.path().join("main.conf");
    fs::write(
        &top,
        "SecMarker top\ninclude crs/setup.conf\nSecMarker end\n",
    )
    .unwrap();
    let got = markers(&parse_file(&top).unwrap());
    let expected = [
        ("top", "main.conf", 1),
        ("setup", "setup.conf", 1),
        ("a.conf", "a.conf", 2),
        ("b.conf", "b.conf", 2),
        ("c.conf", "c.conf", 2),
        ("end", "main.conf", 3),
    ];
    assert_eq!(
        got,
        expected
            .map(|(n, f, l)| (n.to_owned(), f.to_owned(), l))
            .to_vec()
    );
}

#[test]
fn parse_str_resolves_against_its_origin_and_absolute_paths_stay() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x.conf"), "SecMarker x\n").unwrap();
    let abs = dir.path().join("x.conf");
    let text = format!("Include x.conf\nInclude {}\n", abs.display());
    // The origin need not exist; only its directory matters.
    let got = parse_str(&text, &dir.path().join("not-written.conf")).unwrap();
    assert_eq!(got.len(), 2);
}

#[test]
fn chains_and_ids_are_checked_across_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.conf"), "SecAction \"id:1,pass\"\n").unwrap();
    fs::write(dir.path().join("b.conf"), "SecAction \"id:1,pass\"\n").unwrap();
    let top = dir.path().join("top.conf");
    fs::write(&top, "Include *.conf\n").unwrap();
    // top.conf matches its own glob: a cycle, reported at the Include.
    let err = parse_file(&top).unwrap_err();
    assert!(err.to_string().contains("include cycle"), "{err}");
    fs::remove_file(&top).unwrap();
    let top = dir.path().join("top.load");
    fs::write(&top, "Include *.conf\n").unwrap();
    let err = parse_file(&top).unwrap_err();
    assert_eq!(err.file, dir.path().join("b.conf"));
    assert_eq!(err.line, Some(1));
    assert!(
        err.to_string().ends_with(&format!(
            "rule id 1 is already used at {}:1",
            dir.path().join("a.conf").display()
        )),
        "{err}"
    );
}
