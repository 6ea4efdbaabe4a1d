//! The command line itself: help, version, completions, configuration commands, exit codes.

use std::process::{Command, Output};

fn rampart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_documents_commands_and_exit_codes() {
    let output = rampart(&["--help"]);
    assert!(output.status.success());
    let help = stdout(&output);
    for expected in [
        "up",
        "config",
        "audit",
        "completions",
        "--data-dir",
        "--log-format",
        "Exit codes:",
        "3  integrity check failed",
    ] {
        assert!(
            help.contains(expected),
            "--help lacks {expected:?}:\n{help}"
        );
    }
    let version = rampart(&["--version"]);
    assert_eq!(
        stdout(&version).trim(),
        format!("rampart {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef rampart"),
        ("fish", "complete -c rampart"),
    ] {
        let output = rampart(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        assert!(
            stdout(&output).contains(marker),
            "{shell} completion lacks {marker:?}"
        );
    }
}

#[test]
fn the_example_configuration_passes_check() {
    let example = rampart(&["config", "example"]);
    assert!(example.status.success());
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("rampart.toml");
    std::fs::write(&path, example.stdout).unwrap();
    let check = rampart(&["config", "check", path.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert_eq!(stdout(&check).trim(), format!("{}: ok", path.display()));
}

#[test]
fn a_bad_configuration_is_exit_code_2_naming_file_line_and_key() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("rampart.toml");
    std::fs::write(
        &path,
        "[log]\nformat = \"text\"\n\n[gateway]\nlisten = \"0.0.0.0:99999\"\n",
    )
    .unwrap();
    for args in [
        vec!["config", "check", path.to_str().unwrap()],
        vec!["--config", path.to_str().unwrap(), "up"],
    ] {
        let output = rampart(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = stderr(&output);
        assert!(
            message.contains(&format!(
                "{}:5: gateway.listen: \"0.0.0.0:99999\"",
                path.display()
            )),
            "{args:?}: {message}"
        );
    }
    let missing = rampart(&["config", "check", "/nonexistent/rampart.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("/nonexistent/rampart.toml"));
}

#[test]
fn a_bad_upstream_is_a_usage_error() {
    let temp = tempfile::tempdir().unwrap();
    let output = rampart(&[
        "--data-dir",
        temp.path().join("d").to_str().unwrap(),
        "up",
        "--upstream",
        "ftp://example",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("ftp://example"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn waf_check_loads_a_rule_set_and_names_broken_files() {
    let Some(shared) = rampart_test_support::shared::shared_dir() else {
        return;
    };
    let crs = shared.join("crs/v4.28.0");
    let output = rampart(&["waf", "check", "--rules", crs.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("OWASP CRS at") && out.contains(" rules, paranoia 1, blocking"),
        "{out}"
    );

    let temp = tempfile::tempdir().unwrap();
    std::fs::create_dir(temp.path().join("rules")).unwrap();
    std::fs::write(
        temp.path().join("crs-setup.conf"),
        "SecAction \"id:900001,phase:1,pass,nolog\"\n",
    )
    .unwrap();
    std::fs::write(
        temp.path().join("rules/REQUEST-999-BROKEN.conf"),
        "# a comment\nSecRule ARGS \"@rx x\" \"id:1,phase:2,deny\"\nSecRuel ARGS \"@rx y\" \"id:2\"\n",
    )
    .unwrap();
    let output = rampart(&["waf", "check", "--rules", temp.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("REQUEST-999-BROKEN.conf:3"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn waf_test_crs_reports_counts() {
    let Some(shared) = rampart_test_support::shared::shared_dir() else {
        return;
    };
    // One rule's tests keep this quick; the whole suite runs in the waf crate's tests.
    let crs = shared.join("crs/v4.28.0");
    let tests = crs.join("tests/regression/tests/REQUEST-913-SCANNER-DETECTION");
    let output = rampart(&[
        "waf",
        "test-crs",
        "--rules",
        crs.to_str().unwrap(),
        "--tests",
        tests.to_str().unwrap(),
    ]);
    let out = stdout(&output);
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(" skipped") && last.contains(" passed, "),
        "{out}"
    );
    assert!(output.status.success(), "{out}");
}
