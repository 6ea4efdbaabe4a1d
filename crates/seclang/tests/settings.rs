//! A typical `modsecurity.conf` (engine settings plus a few rules) parses into typed settings.

use std::path::Path;

use rampart_seclang::{
    ActionKind, ActionList, AuditEngine, BodyLimitAction, Ctl, Directive, EngineMode, IdRange,
    RuleSelector, Selector, Setting, parse_str,
};

const CONF: &str = r#"
# -- Rule engine initialization
SecRuleEngine DetectionOnly

# -- Request body handling
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" \
     "id:'200000',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
     "id:'200001',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyInMemoryLimit 131072
SecRequestBodyLimitAction Reject
SecRequestBodyJsonDepthLimit 512
SecArgumentsLimit 1000
SecRule &ARGS "@ge 1000" \
"id:'200007', phase:2,t:none,log,deny,status:400,msg:'Failed to fully parse request body due to large argument count',severity:2"
SecRule REQBODY_ERROR "!@eq 0" \
"id:'200002', phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" \
"id:'200003',phase:2,t:none,log,deny,status:400, \
msg:'Multipart request body failed strict validation: \
PE %{REQBODY_PROCESSOR_ERROR}, \
BQ %{MULTIPART_BOUNDARY_QUOTED}'"
SecRule TX:/^MSC_/ "!@streq 0" \
        "id:'200005',phase:2,t:none,deny,msg:'ModSecurity internal error flagged: %{MATCHED_VAR_NAME}'"
SecPcreMatchLimit 1000
SecPcreMatchLimitRecursion 1000

# -- Response body handling
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html text/xml
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial

# -- Filesystem configuration
SecTmpDir /tmp/
SecDataDir /tmp/
SecUploadDir /opt/modsecurity/var/upload/
SecUploadKeepFiles RelevantOnly
SecUploadFileMode 0600

# -- Debug log configuration
SecDebugLog /opt/modsecurity/var/log/debug.log
SecDebugLogLevel 3

# -- Audit log configuration
SecAuditEngine RelevantOnly
SecAuditLogRelevantStatus "^(?:5|4(?!04))"
SecAuditLogParts ABIJDEFHZ
SecAuditLogType Serial
SecAuditLog /var/log/modsec_audit.log
SecAuditLogStorageDir /opt/modsecurity/var/audit/
SecAuditLogFormat JSON
SecAuditLogFileMode 0640
SecAuditLogDirMode default

# -- Miscellaneous
SecArgumentSeparator &
SecCookieFormat 0
SecUnicodeMapFile unicode.mapping 20127
SecStatusEngine On
SecCollectionTimeout 600
SecComponentSignature "Rampart test"
SecWebAppId "shop"
SecRuleRemoveById 920100 "920200-920299" 920300,920301
SecRuleRemoveByTag "attack-dos"
SecRuleRemoveByMsg "Failed to parse"
SecRuleUpdateTargetById 200001 "!REQUEST_HEADERS:'x-test'|ARGS_NAMES"
SecRuleUpdateTargetByTag attack-sqli !ARGS:password
SecRuleUpdateActionById 200005 "pass,nolog"
SecDefaultAction "phase:2,log,auditlog,deny,status:403"
SecMarker "END-HOST-CHECK"
"#;

#[test]
fn modsecurity_conf() {
    let directives = parse_str(CONF, Path::new("/etc/modsecurity/modsecurity.conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    let settings: Vec<&Setting> = directives
        .iter()
        .filter_map(|d| match d {
            Directive::Setting(s) => Some(&s.setting),
            _ => None,
        })
        .collect();
    let expected = [
        Setting::RuleEngine(EngineMode::DetectionOnly),
        Setting::RequestBodyAccess(true),
        Setting::RequestBodyLimit(13_107_200),
        Setting::RequestBodyNoFilesLimit(131_072),
        Setting::RequestBodyInMemoryLimit(131_072),
        Setting::RequestBodyLimitAction(BodyLimitAction::Reject),
        Setting::RequestBodyJsonDepthLimit(512),
        Setting::ArgumentsLimit(1000),
        Setting::PcreMatchLimit(1000),
        Setting::PcreMatchLimitRecursion(1000),
        Setting::ResponseBodyAccess(true),
        Setting::ResponseBodyMimeType(vec![
            "text/plain".into(),
            "text/html".into(),
            "text/xml".into(),
        ]),
        Setting::ResponseBodyLimit(524_288),
        Setting::ResponseBodyLimitAction(BodyLimitAction::ProcessPartial),
        Setting::TmpDir("/tmp/".into()),
        Setting::DataDir("/tmp/".into()),
        Setting::UploadDir("/opt/modsecurity/var/upload/".into()),
        Setting::UploadKeepFiles(AuditEngine::RelevantOnly),
        Setting::UploadFileMode(0o600),
        Setting::DebugLog("/opt/modsecurity/var/log/debug.log".into()),
        Setting::DebugLogLevel(3),
        Setting::AuditEngine(AuditEngine::RelevantOnly),
        Setting::AuditLogRelevantStatus("^(?:5|4(?!04))".into()),
        Setting::AuditLogParts("ABIJDEFHZ".into()),
        Setting::AuditLogType("Serial".into()),
        Setting::AuditLog("/var/log/modsec_audit.log".into()),
        Setting::AuditLogStorageDir("/opt/modsecurity/var/audit/".into()),
        Setting::AuditLogFormat("JSON".into()),
        Setting::AuditLogFileMode(Some(0o640)),
        Setting::AuditLogDirMode(None),
        Setting::ArgumentSeparator("&".into()),
        Setting::CookieFormat(0),
        Setting::UnicodeMapFile {
            path: "unicode.mapping".into(),
            code_page: 20127,
        },
        Setting::StatusEngine(true),
        Setting::CollectionTimeout(600),
        Setting::ComponentSignature("Rampart test".into()),
        Setting::WebAppId("shop".into()),
    ];
    assert_eq!(settings, expected.iter().collect::<Vec<_>>());

    let rules: Vec<_> = directives
        .iter()
        .filter_map(|d| match d {
            Directive::Rule(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(
        rules.iter().map(|r| r.id().unwrap()).collect::<Vec<_>>(),
        [200_000, 200_001, 200_007, 200_002, 200_003, 200_005]
    );
    assert_eq!(rules[0].operator.name, "rx");
    assert_eq!(
        rules[0].operator.argument,
        r"^(?:application(?:/soap\+|/)|text/)xml"
    );
    assert_eq!(
        rules[0].actions.ctls().collect::<Vec<_>>(),
        [&Ctl::RequestBodyProcessor("XML".into())]
    );
    assert!(rules[2].variables[0].count);
    assert_eq!(
        rules[4].actions.msg(),
        Some(
            "Multipart request body failed strict validation: PE %{REQBODY_PROCESSOR_ERROR}, BQ %{MULTIPART_BOUNDARY_QUOTED}"
        )
    );
    assert_eq!(rules[4].location.line, 21);
    assert_eq!(
        rules[5].variables[0].selector,
        Some(Selector::Regex("^MSC_".into()))
    );
    assert!(
        rules[3]
            .actions
            .iter()
            .any(|a| a.kind == ActionKind::Status(400))
    );
    // The unicode map resolves next to the configuration file.
    let unicode = directives
        .iter()
        .find(|d| matches!(d, Directive::Setting(s) if matches!(s.setting, Setting::UnicodeMapFile { .. })))
        .unwrap();
    assert_eq!(
        unicode.location().resolve("unicode.mapping"),
        Path::new("/etc/modsecurity/unicode.mapping")
    );

    let mut removes = directives.iter().filter_map(|d| match d {
        Directive::RuleRemove(r) => Some(&r.rules),
        _ => None,
    });
    assert_eq!(
        removes.next(),
        Some(&RuleSelector::Ids(vec![
            IdRange::single(920_100),
            IdRange {
                start: 920_200,
                end: 920_299
            },
            IdRange::single(920_300),
            IdRange::single(920_301),
        ]))
    );
    assert_eq!(
        removes.next(),
        Some(&RuleSelector::Tag("attack-dos".into()))
    );
    assert_eq!(
        removes.next(),
        Some(&RuleSelector::Msg("Failed to parse".into()))
    );
    let updates: Vec<_> = directives
        .iter()
        .filter_map(|d| match d {
            Directive::RuleUpdateTarget(u) => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(updates[0].targets.len(), 2);
    assert_eq!(
        updates[0].targets[0].selector,
        Some(Selector::Key("x-test".into()))
    );
    assert_eq!(updates[1].rules, RuleSelector::Tag("attack-sqli".into()));
    assert!(
        directives
            .iter()
            .any(|d| matches!(d, Directive::RuleUpdateAction(u)
        if u.id == 200_005 && u.actions.len() == 2))
    );
    assert!(
        directives
            .iter()
            .any(|d| matches!(d, Directive::Marker(m) if m.name == "END-HOST-CHECK"))
    );
}
