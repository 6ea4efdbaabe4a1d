//! Every error names its file and the line where the offending directive starts.

use std::fs;
use std::path::Path;

use rampart_seclang::{ErrorKind, ParseError, Parser, parse_file, parse_str};

/// Parses `text` as `origin` and returns the error, checking its `file:line:` prefix.
fn error_at(text: &str, origin: &str, line: u32) -> ParseError {
    let err = parse_str(text, Path::new(origin)).expect_err("text should be rejected");
    assert_eq!(err.line, Some(line), "wrong line in {err}");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{origin}:{line}: ")),
        "message should start with file:line: {shown}"
    );
    let message = shown.rsplit(": ").next().unwrap_or_default();
    assert!(!message.ends_with('.'), "no trailing period: {shown}");
    assert_eq!(
        shown.chars().nth(origin.len() + line.to_string().len() + 3),
        shown
            .chars()
            .nth(origin.len() + line.to_string().len() + 3)
            .map(|c| c.to_ascii_lowercase()),
        "message starts lowercase: {shown}"
    );
    err
}

#[test]
fn unknown_directive() {
    let err = error_at(
        "SecRuleEngine On\n\nSecRulez ARGS \"@rx a\" \"id:1\"\n",
        "custom.conf",
        3,
    );
    assert_eq!(err.kind, ErrorKind::UnknownDirective("SecRulez".into()));
    assert_eq!(
        err.to_string(),
        "custom.conf:3: unknown directive \"SecRulez\""
    );
}

#[test]
fn directive_names_are_case_insensitive() {
    assert!(
        parse_str(
            "secruleengine DetectionOnly\nSECACTION \"id:1,pass\"",
            Path::new("x")
        )
        .is_ok()
    );
}

#[test]
fn unterminated_quote() {
    let text = "SecRule ARGS \"@rx a\" \\\n    \"id:1,\\\n    pass\n";
    let err = error_at(text, "r.conf", 1);
    assert!(matches!(err.kind, ErrorKind::UnterminatedQuote(_)), "{err}");
    let err = error_at("\nSecAction \"id:1,msg:'unterminated\"\n", "r.conf", 2);
    assert!(matches!(err.kind, ErrorKind::ActionSyntax { .. }), "{err}");
}

#[test]
fn bad_action_syntax() {
    for (actions, expected) in [
        ("id:1,,pass", "empty action"),
        ("id:1,pass,", "trailing comma"),
        ("id:1,msg:'a'b", "unexpected text after a quoted value"),
    ] {
        let text = format!("# header\nSecRule ARGS \"@rx a\" \"{actions}\"\n");
        let err = error_at(&text, "a.conf", 2);
        assert!(err.to_string().contains(expected), "{err}");
    }
    let err = error_at("SecAction \"id:1,pas\"", "a.conf", 1);
    assert_eq!(err.kind, ErrorKind::UnknownAction("pas".into()));
    let err = error_at("SecAction \"id:1,phase:6\"", "a.conf", 1);
    assert!(
        matches!(err.kind, ErrorKind::InvalidActionValue { .. }),
        "{err}"
    );
    let err = error_at("SecAction \"id:1,t:lowercasee\"", "a.conf", 1);
    assert_eq!(
        err.kind,
        ErrorKind::UnknownTransformation("lowercasee".into())
    );
    let err = error_at("SecAction \"id:1,ctl:ruleEngin=Off\"", "a.conf", 1);
    assert_eq!(err.kind, ErrorKind::UnknownCtl("ruleEngin".into()));
}

#[test]
fn missing_operator() {
    let err = error_at("\n\n\nSecRule ARGS\n", "m.conf", 4);
    assert_eq!(err.kind, ErrorKind::MissingOperator);
    let err = error_at("SecRule ARGS \"@nope x\" \"id:1\"", "m.conf", 1);
    assert_eq!(err.kind, ErrorKind::UnknownOperator("nope".into()));
}

#[test]
fn bad_variables() {
    let err = error_at("SecRule ARGZ \"@rx a\" \"id:1\"", "v.conf", 1);
    assert_eq!(err.kind, ErrorKind::UnknownVariable("ARGZ".into()));
    let err = error_at("SecRule REQUEST_URI:x \"@rx a\" \"id:1\"", "v.conf", 1);
    assert!(
        matches!(err.kind, ErrorKind::InvalidVariable { .. }),
        "{err}"
    );
}

#[test]
fn bad_setting_values_and_counts() {
    let err = error_at("SecRuleEngine Maybe", "s.conf", 1);
    assert!(
        err.to_string()
            .contains("expected On, Off or DetectionOnly"),
        "{err}"
    );
    let err = error_at("SecRequestBodyLimit 12k", "s.conf", 1);
    assert!(matches!(err.kind, ErrorKind::InvalidValue { .. }), "{err}");
    let err = error_at("SecRuleEngine On # trailing comment", "s.conf", 1);
    assert!(
        matches!(err.kind, ErrorKind::ArgumentCount { found: 4, .. }),
        "{err}"
    );
    let err = error_at("SecRule ARGS \"@rx a\" \"id:1\" extra", "s.conf", 1);
    assert!(
        matches!(err.kind, ErrorKind::ArgumentCount { found: 4, .. }),
        "{err}"
    );
}

#[test]
fn rule_level_checks() {
    let err = error_at("SecRule ARGS \"@rx a\" \"phase:2,pass\"", "i.conf", 1);
    assert_eq!(err.kind, ErrorKind::MissingId);
    let err = error_at(
        "SecAction \"id:7,pass\"\n\nSecAction \"id:7,pass\"",
        "i.conf",
        3,
    );
    assert_eq!(
        err.kind,
        ErrorKind::DuplicateId {
            id: 7,
            first: "i.conf:1".into()
        }
    );
    let err = error_at(
        "SecRule ARGS \"@rx a\" \"id:9,chain\"\nSecMarker END\n",
        "i.conf",
        1,
    );
    assert_eq!(err.kind, ErrorKind::DanglingChain { id: 9 });
    let err = error_at("SecRule ARGS \"@rx a\" \"id:9,chain\"\n", "i.conf", 1);
    assert_eq!(err.kind, ErrorKind::DanglingChain { id: 9 });
}

#[test]
fn comment_swallowing_a_directive() {
    let err = error_at("# see below \\\nSecRuleEngine On\n", "c.conf", 1);
    assert_eq!(err.kind, ErrorKind::CommentContinuation);
}

#[test]
fn include_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top.conf");
    fs::write(&top, "SecRuleEngine On\nInclude missing.conf\n").unwrap();
    let err = parse_file(&top).unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2: include ", top.display())),
        "{err}"
    );
    assert!(
        err.to_string().ends_with("missing.conf\" matches no file"),
        "{err}"
    );

    fs::write(&top, "\nInclude rules/*.conf\n").unwrap();
    let err = parse_file(&top).unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(
        matches!(err.kind, ErrorKind::IncludeNotFound { .. }),
        "{err}"
    );

    // IncludeOptional tolerates both.
    fs::write(
        &top,
        "IncludeOptional missing.conf\nIncludeOptional rules/*.conf\n",
    )
    .unwrap();
    assert_eq!(parse_file(&top).unwrap(), vec![]);
}

#[test]
fn top_file_not_found() {
    let err = parse_file(Path::new("/nonexistent/rampart/top.conf")).unwrap_err();
    assert_eq!(err.line, None);
    assert_eq!(
        err.to_string(),
        "/nonexistent/rampart/top.conf: cannot read /nonexistent/rampart/top.conf: entity not found"
    );
}

#[test]
fn include_cycle() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    let a = dir.path().join("a.conf");
    let b = dir.path().join("sub/b.conf");
    fs::write(&a, "SecAction \"id:1,pass\"\nInclude sub/b.conf\n").unwrap();
    fs::write(&b, "# b\n\nInclude ../a.conf\n").unwrap();
    let err = parse_file(&a).unwrap_err();
    assert_eq!(err.file, b);
    assert_eq!(err.line, Some(3));
    let ErrorKind::IncludeCycle { chain } = &err.kind else {
        panic!("expected a cycle: {err}");
    };
    assert_eq!(chain.len(), 3);
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3: include cycle: ", b.display())),
        "{err}"
    );

    // A file including itself.
    fs::write(&a, "Include a.conf\n").unwrap();
    let err = parse_file(&a).unwrap_err();
    assert_eq!((err.file.as_path(), err.line), (a.as_path(), Some(1)));
    assert!(matches!(err.kind, ErrorKind::IncludeCycle { .. }), "{err}");

    // The same file twice side by side is fine (not a cycle).
    fs::write(&b, "SecRuleEngine On\n").unwrap();
    fs::write(&a, "Include sub/b.conf\nInclude sub/b.conf\n").unwrap();
    assert_eq!(parse_file(&a).unwrap().len(), 2);
}

#[test]
fn include_depth_and_disabled() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        fs::write(
            dir.path().join(format!("{i}.conf")),
            format!("Include {}.conf\n", i + 1),
        )
        .unwrap();
    }
    fs::write(dir.path().join("5.conf"), "SecRuleEngine On\n").unwrap();
    let top = dir.path().join("0.conf");
    assert_eq!(parse_file(&top).unwrap().len(), 1);
    let err = Parser::new()
        .max_include_depth(3)
        .parse_file(&top)
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::IncludeDepth(3)), "{err}");

    let err = Parser::new()
        .without_includes()
        .parse_str("\nInclude 1.conf", &top)
        .unwrap_err();
    assert_eq!(err.line, Some(2));
    assert_eq!(err.kind, ErrorKind::IncludeDisabled("1.conf".into()));
}

#[test]
fn errors_inside_included_files_name_that_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("rules")).unwrap();
    fs::write(dir.path().join("rules/a.conf"), "SecAction \"id:1,pass\"\n").unwrap();
    fs::write(
        dir.path().join("rules/b.conf"),
        "\n\nSecAction \"id:2,bogus\"\n",
    )
    .unwrap();
    let top = dir.path().join("top.conf");
    fs::write(&top, "Include rules/*.conf\n").unwrap();
    let err = parse_file(&top).unwrap_err();
    assert_eq!(err.file, dir.path().join("rules/b.conf"));
    assert_eq!(err.line, Some(3));
    assert_eq!(err.kind, ErrorKind::UnknownAction("bogus".into()));
}

#[test]
fn invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.conf");
    fs::write(&f, b"SecRuleEngine On\n\nSecAction \"id:1,msg:'\xff'\"\n").unwrap();
    let err = parse_file(&f).unwrap_err();
    assert_eq!(err.line, Some(3));
    assert!(
        matches!(err.kind, ErrorKind::InvalidUtf8 { line: 3, .. }),
        "{err}"
    );
}
