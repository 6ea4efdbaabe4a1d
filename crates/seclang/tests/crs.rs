//! OWASP CRS v4.28.0 (from `../shared`) parses unchanged, and what it uses is the engine's
//! checklist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rampart_seclang::{
    ActionKind, ActionList, Ctl, Directive, IdRange, Phase, RuleSelector, SecRule, Selector,
    SetVarOp, Setting, Severity, Variable, parse_file, parse_str,
};

/// The CRS folder, or `None` (test skipped) when the shared data is absent outside CI.
fn crs_dir() -> Option<PathBuf> {
    let dir = rampart_test_support::shared::shared_dir()?.join("crs/v4.28.0");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    Some(dir)
}

/// The whole of CRS as users load it: one top file including the setup and the rules.
fn load(dir: &Path) -> Vec<Directive> {
    let top = "# Rampart test: CRS as users include it\n\
               Include crs-setup.conf.example\n\
               Include rules/*.conf\n";
    match parse_str(top, &dir.join("rampart-test-top.conf")) {
        Ok(d) => d,
        Err(e) => panic!("CRS does not parse: {e}"),
    }
}

fn rule(directives: &[Directive], id: u64) -> &SecRule {
    directives
        .iter()
        .find_map(|d| match d {
            Directive::Rule(r) if r.id() == Some(id) => Some(r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("rule {id} not found"))
}

fn var(negated: bool, count: bool, collection: &str, selector: Option<Selector>) -> Variable {
    Variable {
        negated,
        count,
        collection: collection.into(),
        selector,
    }
}

fn key(k: &str) -> Option<Selector> {
    Some(Selector::Key(k.into()))
}

/// The operators CRS v4 uses: each needs an implementation in the engine.
const OPERATORS: &[&str] = &[
    "beginswith",
    "contains",
    "detectsqli",
    "detectxss",
    "endswith",
    "eq",
    "ge",
    "gt",
    "ipmatch",
    "lt",
    "pm",
    "pmfromfile",
    "rx",
    "streq",
    "unconditionalmatch",
    "validatebyterange",
    "validateurlencoding",
    "validateutf8encoding",
    "within",
];

/// The transformations CRS v4 uses.
const TRANSFORMATIONS: &[&str] = &[
    "base64decode",
    "cmdline",
    "compresswhitespace",
    "cssdecode",
    "escapeseqdecode",
    "hexencode",
    "htmlentitydecode",
    "jsdecode",
    "length",
    "lowercase",
    "none",
    "normalizepath",
    "normalizepathwin",
    "removecommentschar",
    "removenulls",
    "removewhitespace",
    "replacecomments",
    "sha1",
    "urldecodeuni",
    "utf8tounicode",
];

/// The variables (collections) CRS v4's rules inspect.
const COLLECTIONS: &[&str] = &[
    "ARGS",
    "ARGS_COMBINED_SIZE",
    "ARGS_GET",
    "ARGS_GET_NAMES",
    "ARGS_NAMES",
    "FILES",
    "FILES_COMBINED_SIZE",
    "FILES_NAMES",
    "MATCHED_VAR",
    "MATCHED_VARS",
    "MULTIPART_PART_HEADERS",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REQBODY_PROCESSOR",
    "REQUEST_BASENAME",
    "REQUEST_BODY",
    "REQUEST_BODY_LENGTH",
    "REQUEST_COOKIES",
    "REQUEST_COOKIES_NAMES",
    "REQUEST_FILENAME",
    "REQUEST_HEADERS",
    "REQUEST_HEADERS_NAMES",
    "REQUEST_LINE",
    "REQUEST_METHOD",
    "REQUEST_PROTOCOL",
    "REQUEST_URI",
    "REQUEST_URI_RAW",
    "RESPONSE_BODY",
    "RESPONSE_HEADERS",
    "RESPONSE_STATUS",
    "TX",
    "UNIQUE_ID",
    "XML",
];

/// The actions CRS v4 uses.
const ACTIONS: &[&str] = &[
    "auditlog",
    "block",
    "capture",
    "chain",
    "ctl",
    "deny",
    "id",
    "initcol",
    "log",
    "logdata",
    "msg",
    "multimatch",
    "noauditlog",
    "nolog",
    "pass",
    "phase",
    "setvar",
    "severity",
    "skipafter",
    "status",
    "t",
    "tag",
    "ver",
];

/// The `ctl` options CRS v4 uses.
const CTL_OPTIONS: &[&str] = &[
    "auditengine",
    "forcerequestbodyvariable",
    "requestbodyprocessor",
    "ruleremovebyid",
    "ruleremovebytag",
    "ruleremovetargetbytag",
];

#[derive(Default)]
struct Usage {
    operators: BTreeSet<String>,
    transformations: BTreeSet<String>,
    collections: BTreeSet<String>,
    actions: BTreeSet<String>,
    ctls: BTreeSet<String>,
}

impl Usage {
    fn actions(&mut self, actions: &[rampart_seclang::Action]) {
        for a in actions {
            self.actions.insert(a.name.clone());
            match &a.kind {
                ActionKind::Transformation(t) => {
                    self.transformations.insert(t.clone());
                }
                ActionKind::Ctl(c) => {
                    self.ctls.insert(c.name().to_owned());
                }
                _ => {}
            }
        }
    }

    fn rule(&mut self, r: &SecRule) {
        self.operators.insert(r.operator.name.clone());
        self.collections
            .extend(r.variables.iter().map(|v| v.collection.clone()));
        self.actions(&r.actions);
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn crs_v4_parses_with_exact_counts() {
    let Some(dir) = crs_dir() else { return };
    let directives = load(&dir);
    let (mut rules, mut chained, mut actions, mut defaults, mut markers) = (0, 0, 0, 0, 0);
    let (mut updates, mut settings, mut other) = (0, 0, 0);
    for d in &directives {
        match d {
            Directive::Rule(r) => {
                rules += 1;
                chained += r.chained().count();
            }
            Directive::Action(_) => actions += 1,
            Directive::DefaultAction(_) => defaults += 1,
            Directive::Marker(_) => markers += 1,
            Directive::RuleUpdateTarget(_) => updates += 1,
            Directive::Setting(_) => settings += 1,
            _ => other += 1,
        }
    }
    assert_eq!(
        (
            rules, chained, actions, defaults, markers, updates, settings, other
        ),
        (622, 73, 8, 5, 30, 55, 1, 0),
        "(SecRule, chained SecRule, SecAction, SecDefaultAction, SecMarker, SecRuleUpdateTargetById, settings, other)"
    );
    assert_eq!(directives.len(), 721);
}

#[test]
fn crs_v4_usage_lists() {
    let Some(dir) = crs_dir() else { return };
    let directives = load(&dir);
    let mut usage = Usage::default();
    for d in &directives {
        match d {
            Directive::Rule(r) => {
                usage.rule(r);
                r.chained().for_each(|c| usage.rule(c));
            }
            Directive::Action(a) => usage.actions(&a.actions),
            _ => {}
        }
    }
    assert_eq!(usage.operators, set(OPERATORS));
    assert_eq!(usage.transformations, set(TRANSFORMATIONS));
    assert_eq!(usage.collections, set(COLLECTIONS));
    assert_eq!(usage.actions, set(ACTIONS));
    assert_eq!(usage.ctls, set(CTL_OPTIONS));
    assert_eq!(
        [
            OPERATORS.len(),
            TRANSFORMATIONS.len(),
            COLLECTIONS.len(),
            ACTIONS.len(),
            CTL_OPTIONS.len()
        ],
        [19, 20, 33, 23, 6]
    );
}

#[test]
fn rule_942100_libinjection() {
    let Some(dir) = crs_dir() else { return };
    let directives = load(&dir);
    let r = rule(&directives, 942100);
    assert_eq!(r.operator.name, "detectsqli");
    assert!(!r.operator.negated);
    assert_eq!(r.operator.argument, "");
    assert_eq!(
        r.variables,
        vec![
            var(false, false, "REQUEST_COOKIES", None),
            var(false, false, "REQUEST_COOKIES_NAMES", None),
            var(false, false, "REQUEST_HEADERS", key("User-Agent")),
            var(false, false, "REQUEST_HEADERS", key("Referer")),
            var(false, false, "ARGS_NAMES", None),
            var(false, false, "ARGS", None),
            var(false, false, "XML", Some(Selector::XPath("/*".into()))),
            var(false, false, "XML", Some(Selector::XPath("//@*".into()))),
        ]
    );
    assert_eq!(r.phase(), Some(Phase::RequestBody));
    assert_eq!(
        r.actions.transformations().collect::<Vec<_>>(),
        ["none", "utf8tounicode", "urldecodeuni", "removenulls"]
    );
    let logdata = r.actions.iter().find(|a| a.name == "logdata").unwrap();
    assert_eq!(
        logdata.value.as_deref(),
        Some("Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}")
    );
    assert_eq!(
        r.actions.msg(),
        Some("SQL Injection Attack Detected via libinjection")
    );
    assert_eq!(r.actions.severity(), Some(Severity::Critical));
    assert!(r.actions.tags().any(|t| t == "paranoia-level/1"));
    let sv = r.actions.setvars().collect::<Vec<_>>();
    assert_eq!(sv.len(), 2);
    assert_eq!(
        (
            sv[1].collection.as_str(),
            sv[1].name.as_str(),
            sv[1].op,
            sv[1].value.as_str()
        ),
        (
            "TX",
            "sql_injection_score",
            SetVarOp::Add,
            "%{tx.critical_anomaly_score}"
        )
    );
    assert!(r.chain.is_none());
    // The location is the line where `SecRule` starts.
    assert!(
        r.location
            .file
            .ends_with("rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf")
    );
    let text = std::fs::read_to_string(&*r.location.file).unwrap();
    let line = text.lines().nth(r.location.line as usize - 1).unwrap();
    assert!(line.starts_with("SecRule REQUEST_COOKIES|"), "{line}");
    assert!(
        text.lines()
            .nth(r.location.line as usize)
            .unwrap()
            .contains("id:942100")
    );
}

#[test]
fn chains() {
    let Some(dir) = crs_dir() else { return };
    let directives = load(&dir);
    // 920350 (numeric Host header) is a single rule in CRS v4.
    let r = rule(&directives, 920350);
    assert!(r.chain.is_none());
    assert_eq!(
        r.variables,
        vec![var(false, false, "REQUEST_HEADERS", key("Host"))]
    );
    // 920170: GET/HEAD with a body, a two-link chain.
    let r = rule(&directives, 920170);
    assert!(r.actions.has_chain());
    let child = r.chain.as_deref().expect("920170 has a chained rule");
    assert_eq!(
        child.variables,
        vec![var(false, false, "REQUEST_HEADERS", key("Content-Length"))]
    );
    assert!(child.operator.negated);
    assert_eq!(
        (
            child.operator.name.as_str(),
            child.operator.argument.as_str()
        ),
        ("rx", "^0?$")
    );
    assert_eq!(child.id(), None);
    assert!(child.chain.is_none());
    assert_eq!(child.location.line, r.location.line + 18);
    // 920171 counts a header.
    let child = rule(&directives, 920171).chain.as_deref().unwrap();
    assert_eq!(
        child.variables,
        vec![var(
            false,
            true,
            "REQUEST_HEADERS",
            key("Transfer-Encoding")
        )]
    );
    assert_eq!(child.operator.to_string(), "!@eq 0");
    // Longest chain.
    let longest = directives
        .iter()
        .filter_map(|d| match d {
            Directive::Rule(r) => Some(r.chained().count()),
            _ => None,
        })
        .max();
    assert!(longest >= Some(2));
}

#[test]
fn exact_values() {
    let Some(dir) = crs_dir() else { return };
    let directives = load(&dir);
    // `\'` in a quoted action value stands for a quote.
    assert_eq!(
        rule(&directives, 920490).actions.msg(),
        Some(
            "Request header x-up-devcap-post-charset detected in combination with prefix 'UP' to User-Agent"
        )
    );
    // A message continued over several lines keeps the text before each `\`.
    let a = directives
        .iter()
        .find_map(|d| match d {
            Directive::Action(a) if a.id() == Some(980170) => Some(a),
            _ => None,
        })
        .unwrap();
    let msg = a.actions.msg().unwrap();
    assert!(
        msg.starts_with(
            "Anomaly Scores: (Inbound Scores: blocking=%{tx.blocking_inbound_anomaly_score}, "
        ),
        "{msg}"
    );
    assert!(
        msg.contains("threshold=%{tx.inbound_anomaly_score_threshold}) - (Outbound Scores: "),
        "{msg}"
    );
    assert!(
        msg.ends_with("COMBINED_SCORE=%{tx.anomaly_score})"),
        "{msg}"
    );
    // `\"` in an operator string is a quote; other escapes stay as written.
    let r = rule(&directives, 920600);
    assert!(
        r.operator
            .argument
            .starts_with(r#"^(?:(?:\*|[^!"\(\),/:-\?\[-\]\{\}]+)/"#),
        "{}",
        r.operator.argument
    );
    let child = rule(&directives, 932240).chain.as_deref().unwrap();
    assert_eq!(child.operator.argument, r"[0-9]\s*\'\s*[0-9]");
    // ctl and skipAfter.
    let r = rule(&directives, 941010);
    assert!(r.operator.negated);
    assert_eq!(r.operator.name, "validatebyterange");
    assert_eq!(r.operator.argument, "20,45-47,48-57,65-90,95,97-122");
    assert_eq!(
        r.actions.ctls().collect::<Vec<_>>(),
        [&Ctl::RuleRemoveTargetByTag {
            tag: "xss-perf-disable".into(),
            targets: vec![var(false, false, "REQUEST_FILENAME", None)],
        }]
    );
    assert_eq!(
        rule(&directives, 920539).actions.ctls().collect::<Vec<_>>(),
        [&Ctl::RuleRemoveById(vec![IdRange::single(920540)])]
    );
    let skip = rule(&directives, 911011)
        .actions
        .iter()
        .find_map(|a| match &a.kind {
            ActionKind::SkipAfter(m) => Some(m.as_str()),
            _ => None,
        });
    assert_eq!(skip, Some("END-REQUEST-911-METHOD-ENFORCEMENT"));
    assert!(directives.iter().any(|d| matches!(d,
        Directive::Marker(m) if m.name == "END-REQUEST-911-METHOD-ENFORCEMENT")));
    // A target update with a regular-expression selector.
    let update = directives
        .iter()
        .find_map(|d| match d {
            Directive::RuleUpdateTarget(u) => Some(u),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        update.rules,
        RuleSelector::Ids(vec![IdRange::single(932240)])
    );
    assert_eq!(
        update.targets,
        vec![var(
            true,
            false,
            "REQUEST_COOKIES",
            Some(Selector::Regex(r"^_ga(?:_\w+)?$".into()))
        )]
    );
    // SecDefaultAction, one per phase.
    let phases: Vec<_> = directives
        .iter()
        .filter_map(|d| match d {
            Directive::DefaultAction(a) => a.actions.phase(),
            _ => None,
        })
        .collect();
    assert_eq!(phases.len(), 5);
    // The one engine setting: the component signature.
    let settings: Vec<_> = directives
        .iter()
        .filter_map(|d| match d {
            Directive::Setting(s) => Some(&s.setting),
            _ => None,
        })
        .collect();
    assert_eq!(
        settings,
        // The version the ../shared copy is (built, so this file is not mistaken for a copy
        // of the rules).
        [&Setting::ComponentSignature(format!(
            "OWASP_CRS/{}",
            "4.28.0"
        ))]
    );
}

#[test]
fn every_file_parses_on_its_own() {
    let Some(dir) = crs_dir() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".conf") || name.ends_with(".conf.example")
        })
        .collect();
    files.push(dir.join("crs-setup.conf.example"));
    files.sort();
    assert_eq!(files.len(), 30);
    for f in &files {
        if let Err(e) = parse_file(f) {
            panic!("{e}");
        }
    }
}

#[test]
fn every_macro_names_a_known_variable() {
    let Some(dir) = crs_dir() else { return };
    let directives = load(&dir);
    let mut values: Vec<String> = Vec::new();
    let mut add_actions = |actions: &[rampart_seclang::Action]| {
        for a in actions {
            match &a.kind {
                ActionKind::SetVar(s) => {
                    values.push(s.name.clone());
                    values.push(s.value.clone());
                }
                _ => values.extend(a.value.clone()),
            }
        }
    };
    let mut operators = Vec::new();
    for d in &directives {
        match d {
            Directive::Rule(r) => {
                for link in std::iter::once(r).chain(r.chained()) {
                    add_actions(&link.actions);
                    operators.push(link.operator.argument.clone());
                }
            }
            Directive::Action(a) => add_actions(&a.actions),
            _ => {}
        }
    }
    values.extend(operators);
    let mut references = 0;
    for v in &values {
        for (collection, _) in rampart_seclang::MacroString::parse(v).references() {
            references += 1;
            assert!(
                rampart_seclang::variable::shape(collection).is_some(),
                "unknown macro variable {collection} in {v:?}"
            );
        }
    }
    assert!(references > 1000, "{references}");
    let threshold = rule(&directives, 949110).operator.argument.clone();
    assert_eq!(
        rampart_seclang::MacroString::parse(&threshold).parts,
        [rampart_seclang::MacroPart::Var {
            collection: "TX".into(),
            key: Some("inbound_anomaly_score_threshold".into()),
        }]
    );
}
