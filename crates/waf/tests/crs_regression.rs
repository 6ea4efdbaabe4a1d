//! Runs the OWASP CRS v4.28.0 regression suite (go-ftw YAML) in-process over
//! `$RAMPART_SHARED_DIR/crs/v4.28.0` and fails if any test outside `crs-overrides.yaml` fails.

use std::path::Path;

#[test]
fn crs_v4_regression_suite() {
    let Some(shared) = rampart_test_support::shared::shared_dir() else {
        eprintln!("shared test data not found; skipping");
        return;
    };
    let crs = shared.join("crs/v4.28.0");
    let overrides = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crs-overrides.yaml");
    let report =
        rampart_waf::crs_tests::run(&crs, &crs.join("tests/regression/tests"), Some(&overrides))
            .unwrap();
    println!("{report}");
    assert!(
        report.failed.is_empty(),
        "{} CRS tests failed outside the overrides:\n{report}",
        report.failed.len()
    );
    assert!(
        report.stale_overrides.is_empty(),
        "overrides list tests that now pass: {:?}",
        report.stale_overrides
    );
    assert!(report.passed.len() > 4000, "suspiciously few tests ran");
}

#[test]
fn crs_v4_loads_fast_and_compiles_every_regex() {
    let Some(shared) = rampart_test_support::shared::shared_dir() else {
        return;
    };
    let crs = shared.join("crs/v4.28.0");
    let files = rampart_waf::ruleset::crs_files(
        &crs.join("crs-setup.conf.example"),
        &[],
        &crs.join("rules"),
    )
    .unwrap();
    let start = std::time::Instant::now();
    let rules = rampart_waf::Ruleset::load(&files).unwrap();
    let elapsed = start.elapsed();
    println!("{} rules loaded in {elapsed:?}", rules.rule_count());
    assert!(rules.rule_count() > 600);
}

#[test]
fn ruleset_and_transaction_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<rampart_waf::Ruleset>();
    send::<rampart_waf::Transaction>();
    let rules = rampart_waf::Ruleset::parse_str(
        "SecRuleEngine On\nSecRule ARGS \"@rx <script\" \"id:1,phase:2,deny,status:403,msg:'xss'\"",
        Path::new("inline.conf"),
    )
    .unwrap();
    let handle = std::thread::spawn(move || {
        let mut tx = rules.transaction();
        tx.process_uri("/?q=<script>", "GET", "HTTP/1.1");
        tx.process_request_headers();
        tx.process_request_body().map(|i| i.status)
    });
    assert_eq!(handle.join().unwrap(), Some(403));
}

/// The phase-1 preset (the setup rules run once at load, replayed per transaction) changes
/// nothing any regression request sees: the same rules match, in the same order, with the same
/// messages, log data (anomaly scores included) and interruptions, as when every transaction
/// evaluates the setup rules itself.
#[test]
fn phase_one_preset_changes_no_outcome() {
    let Some(shared) = rampart_test_support::shared::shared_dir() else {
        eprintln!("shared test data not found; skipping");
        return;
    };
    let crs = shared.join("crs/v4.28.0");
    let (ran, differ) =
        rampart_waf::crs_tests::preset_differences(&crs, &crs.join("tests/regression/tests"))
            .unwrap();
    assert!(differ.is_empty(), "outcomes differ for {differ:?}");
    assert!(ran > 4000, "suspiciously few requests ran: {ran}");
}
