//! `ctl:ruleRemoveBy*` and `ctl:ruleRemoveTargetBy*`: a removal made at run time takes the
//! rules it selects (by id range, tag or msg) or their variables out of the rest of the
//! transaction, and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use rampart_waf::Ruleset;

/// The ids of the rules that matched for `GET uri` under `rules`, and the deny status.
fn run(rules: &str, uri: &str) -> (Vec<u64>, Option<u16>) {
    let rules = Ruleset::parse_str(rules, Path::new("ctl-test.conf")).expect("rules compile");
    let mut tx = rules.transaction();
    tx.process_connection("192.0.2.1", 50000, "192.0.2.2", 80);
    tx.process_uri(uri, "GET", "HTTP/1.1");
    tx.add_request_header("Host", "example.com");
    let mut status = tx.process_request_headers().map(|i| i.status);
    if status.is_none() {
        status = tx.process_request_body().map(|i| i.status);
    }
    tx.process_logging();
    (tx.matched_rules().iter().map(|m| m.id).collect(), status)
}

const DETECTORS: &str = r#"
SecRuleEngine On
SecRule ARGS "@contains attack" "id:100,phase:2,pass,log,tag:'family/a',msg:'first'"
SecRule ARGS "@contains attack" "id:101,phase:2,pass,log,tag:'family/a',tag:'other',msg:'second'"
SecRule ARGS "@contains attack" "id:102,phase:2,pass,log,tag:'family/b',msg:'third'"
SecRule ARGS "@contains attack" "id:200,phase:2,pass,log,tag:'family/b',msg:'fourth'"
"#;

fn with(ctl: &str) -> String {
    format!("SecAction \"id:1,phase:1,pass,nolog,{ctl}\"\n{DETECTORS}")
}

#[test]
fn without_removals_every_detector_matches() {
    let (ids, _) = run(&with("setvar:tx.x=1"), "/?q=attack");
    assert_eq!(ids, vec![1, 100, 101, 102, 200]);
}

#[test]
fn remove_by_id_takes_single_ids_and_ranges() {
    let (ids, _) = run(&with("ctl:ruleRemoveById=101"), "/?q=attack");
    assert_eq!(ids, vec![1, 100, 102, 200]);
    let (ids, _) = run(&with("ctl:ruleRemoveById=100-102"), "/?q=attack");
    assert_eq!(ids, vec![1, 200]);
    let (ids, _) = run(&with("ctl:ruleRemoveById=150-300"), "/?q=attack");
    assert_eq!(ids, vec![1, 100, 101, 102]);
}

#[test]
fn remove_by_tag_compares_tags_case_insensitively() {
    let (ids, _) = run(&with("ctl:ruleRemoveByTag=FAMILY/B"), "/?q=attack");
    assert_eq!(ids, vec![1, 100, 101]);
    let (ids, _) = run(&with("ctl:ruleRemoveByTag=other"), "/?q=attack");
    assert_eq!(ids, vec![1, 100, 102, 200]);
    let (ids, _) = run(&with("ctl:ruleRemoveByTag=no-such-tag"), "/?q=attack");
    assert_eq!(ids, vec![1, 100, 101, 102, 200]);
}

#[test]
fn remove_by_msg_takes_the_rules_with_that_message() {
    let (ids, _) = run(&with("ctl:ruleRemoveByMsg=third"), "/?q=attack");
    assert_eq!(ids, vec![1, 100, 101, 200]);
}

#[test]
fn removals_accumulate() {
    let rules = format!(
        "SecAction \"id:1,phase:1,pass,nolog,ctl:ruleRemoveById=100\"\n\
         SecAction \"id:2,phase:1,pass,nolog,ctl:ruleRemoveByTag=family/b\"\n{DETECTORS}"
    );
    let (ids, _) = run(&rules, "/?q=attack");
    assert_eq!(ids, vec![1, 2, 101]);
}

#[test]
fn remove_target_takes_only_that_variable_from_only_those_rules() {
    // Rule 100 no longer sees ARGS:q, still sees ARGS:r; the other rules see both.
    let (ids, _) = run(&with("ctl:ruleRemoveTargetById=100;ARGS:q"), "/?q=attack");
    assert_eq!(ids, vec![1, 101, 102, 200]);
    let (ids, _) = run(
        &with("ctl:ruleRemoveTargetById=100;ARGS:q"),
        "/?q=attack&r=attack",
    );
    assert_eq!(ids, vec![1, 100, 101, 102, 200]);
    let (ids, _) = run(
        &with("ctl:ruleRemoveTargetByTag=family/a;ARGS:q"),
        "/?q=attack",
    );
    assert_eq!(ids, vec![1, 102, 200]);
    let (ids, _) = run(&with("ctl:ruleRemoveTargetByMsg=fourth;ARGS"), "/?q=attack");
    assert_eq!(ids, vec![1, 100, 101, 102]);
}

#[test]
fn a_removed_blocking_rule_no_longer_blocks() {
    let rules = "SecRuleEngine On\n\
        SecAction \"id:1,phase:1,pass,nolog,ctl:ruleRemoveById=300\"\n\
        SecRule ARGS \"@contains attack\" \"id:300,phase:2,deny,status:403,log\"\n\
        SecRule ARGS \"@contains attack\" \"id:301,phase:2,deny,status:406,log\"\n";
    let (ids, status) = run(rules, "/?q=attack");
    assert_eq!(ids, vec![1, 301]);
    assert_eq!(status, Some(406));
}
