//! Shared by the WAF body-processor targets: a minimal CRS-like rule set that turns on request
//! body access, selects the body processor from the `Content-Type` (as ModSecurity's
//! recommended rules 200000/200001 do) and inspects every collection the processors fill.

use std::path::Path;
use std::sync::OnceLock;

use rampart_waf::Ruleset;

const RULES: &str = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 1048576
SecRequestBodyJsonDepthLimit 64
SecArgumentsLimit 1000
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" \
    "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
    "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,pass,log,msg:'body error %{reqbody_error_msg}'"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,pass,log"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" "id:200004,phase:2,t:none,pass,log"
SecRule ARGS|ARGS_NAMES|REQUEST_BODY|FILES|FILES_NAMES|MULTIPART_PART_HEADERS|XML:/* "@rx (?i)select|<script" \
    "id:1,phase:2,t:none,t:urlDecodeUni,t:lowercase,pass,log,capture,setvar:tx.score=+5,logdata:'%{MATCHED_VAR_NAME}=%{TX.0}'"
SecRule XML://@* "@pm evil" "id:2,phase:2,t:none,pass,log"
SecRule &ARGS "@gt 10" "id:3,phase:2,pass,log"
SecRule ARGS_COMBINED_SIZE|FILES_SIZES|FILES_COMBINED_SIZE "@gt 100" "id:4,phase:2,pass,log"
SecRule ARGS "@detectSQLi" "id:5,phase:2,t:none,pass,log"
SecRule TX:score "@ge 10" "id:6,phase:2,deny,status:403"
"#;

pub fn rules() -> &'static Ruleset {
    static RULES_ONCE: OnceLock<Ruleset> = OnceLock::new();
    RULES_ONCE
        .get_or_init(|| Ruleset::parse_str(RULES, Path::new("fuzz.conf")).expect("rules load"))
}

/// Runs `body` through a POST with `content_type`, phases 1-5.
pub fn post(content_type: &[u8], body: &[u8]) {
    let mut tx = rules().transaction();
    tx.process_connection("192.0.2.1", 1234, "192.0.2.2", 80);
    tx.process_uri("/upload?a=1", "POST", "HTTP/1.1");
    tx.add_request_header_bytes(b"Host", b"example.com");
    tx.add_request_header_bytes(b"Content-Type", content_type);
    tx.add_request_header_bytes(b"Content-Length", body.len().to_string().as_bytes());
    if tx.process_request_headers().is_none() {
        // Two chunks, as a server would stream it.
        let (a, b) = body.split_at(body.len() / 2);
        tx.append_request_body(a);
        tx.append_request_body(b);
        let _ = tx.process_request_body();
    }
    tx.process_logging();
    for m in tx.matched_rules() {
        assert!(m.id != 0 || m.msg.is_empty());
    }
}
