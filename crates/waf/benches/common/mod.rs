//! What the WAF benchmarks run: the engine configuration (ModSecurity's
//! `modsecurity.conf-recommended` settings, `SecRuleEngine On`, CRS v4 at a blocking paranoia
//! level) and the four requests. Shared by `benches/transaction.rs` (criterion) and
//! `examples/bench_transactions.rs` (the CPU-time side of `bench/waf/run.sh`, which also writes
//! the configuration and the requests for the libmodsecurity peer, so both engines see the
//! same bytes).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rampart_waf::{Interruption, Ruleset, Transaction};

/// The CRS checkout (`RAMPART_CRS_DIR`, default `../shared/crs/v4.28.0` next to the workspace).
pub fn crs_dir() -> PathBuf {
    if let Ok(d) = std::env::var("RAMPART_CRS_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs/v4.28.0")
}

/// The engine settings of ModSecurity's `modsecurity.conf-recommended` (v3.0.9) with
/// `SecRuleEngine On`; the audit log is off on both sides (the benchmark measures rule
/// evaluation, not log writing).
pub const ENGINE_CONFIG: &str = r#"SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" \
     "id:'200000',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
     "id:'200001',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^application/[a-z0-9.-]+[+]json" \
     "id:'200006',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
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
    BQ %{MULTIPART_BOUNDARY_QUOTED}, \
    BW %{MULTIPART_BOUNDARY_WHITESPACE}, \
    DB %{MULTIPART_DATA_BEFORE}, \
    DA %{MULTIPART_DATA_AFTER}, \
    HF %{MULTIPART_HEADER_FOLDING}, \
    LF %{MULTIPART_LF_LINE}, \
    SM %{MULTIPART_MISSING_SEMICOLON}, \
    IQ %{MULTIPART_INVALID_QUOTING}, \
    IP %{MULTIPART_INVALID_PART}, \
    IH %{MULTIPART_INVALID_HEADER_FOLDING}, \
    FL %{MULTIPART_FILE_LIMIT_EXCEEDED}'"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" \
    "id:'200004',phase:2,t:none,log,deny,msg:'Multipart parser detected a possible unmatched boundary.'"
SecRule TX:/^MSC_/ "!@streq 0" \
    "id:'200005',phase:2,t:none,deny,msg:'ModSecurity internal error flagged: %{MATCHED_VAR_NAME}'"
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html text/xml
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
SecAuditEngine Off
SecArgumentSeparator &
SecCookieFormat 0
"#;

/// The paranoia levels benchmarked.
pub const LEVELS: [u8; 2] = [1, 4];

/// `SecAction` 900000 (as `crs-setup.conf.example` shows it, uncommented) at `level`.
pub fn paranoia_action(level: u8) -> String {
    format!(
        "SecAction \"id:900000,phase:1,pass,t:none,nolog,\
         setvar:tx.blocking_paranoia_level={level}\"\n"
    )
}

/// The whole configuration as one file for libmodsecurity: engine settings, the paranoia
/// action, `crs-setup.conf.example`, `rules/*.conf` (absolute `Include`s, sorted as CRS wants).
pub fn modsecurity_conf(crs: &Path, level: u8) -> std::io::Result<String> {
    let crs = crs.canonicalize()?;
    let setup = crs.join("crs-setup.conf.example");
    let files = rampart_waf::ruleset::crs_files(&setup, &[], &crs.join("rules"))?;
    let mut text = String::from(ENGINE_CONFIG);
    text.push_str(&paranoia_action(level));
    for f in files {
        text.push_str(&format!("Include {}\n", f.display()));
    }
    Ok(text)
}

/// Loads CRS at `level` with exactly the configuration [`modsecurity_conf`] gives the peer.
pub fn load(crs: &Path, level: u8) -> Ruleset {
    let conf = modsecurity_conf(crs, level).expect("CRS directory");
    let origin = crs.join("rampart-bench.conf");
    Ruleset::parse_str(&conf, &origin).expect("CRS loads")
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: &'static str,
    pub method: &'static str,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

const BROWSER_HEADERS: &[(&str, &str)] = &[
    ("Host", "shop.example.com"),
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    (
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Referer", "https://shop.example.com/catalog/shoes"),
    ("Connection", "keep-alive"),
    (
        "Cookie",
        "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; consent=1",
    ),
    ("Upgrade-Insecure-Requests", "1"),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-Site", "same-origin"),
];

fn headers(extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = BROWSER_HEADERS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    h.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    h
}

/// About 10 KiB of JSON: an order with line items.
pub fn json_body() -> Vec<u8> {
    let mut s = String::from(
        r#"{"order":{"id":"A-1029384","customer":{"name":"Alice Example","email":"alice@example.com","phone":"+1 555 0100"},"items":["#,
    );
    let mut i = 0;
    while s.len() < 10 * 1024 - 200 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"sku":"SKU-{:05}","name":"Running shoe model {}","qty":{},"price":{}.99,"tags":["sport","sale"]}}"#,
            10_000 + i * 37,
            i,
            1 + i % 3,
            40 + i
        ));
        i += 1;
    }
    s.push_str(r#"],"shipping":{"method":"express","address":"1 Main Street, Springfield"},"notes":"Leave at the door"}}"#);
    s.into_bytes()
}

/// The four requests: a clean GET, a form POST, a 10 KiB JSON POST, an SQL injection GET.
pub fn requests() -> Vec<Request> {
    let form = b"username=alice&password=correct+horse+battery&remember=on&csrf_token=4f1c2a9b77e0"
        .to_vec();
    let json = json_body();
    vec![
        Request {
            name: "clean_get",
            method: "GET",
            uri: "/catalog/search?q=running+shoes&page=2&sort=price_asc".into(),
            headers: headers(&[]),
            body: Vec::new(),
        },
        Request {
            name: "form_post",
            method: "POST",
            uri: "/account/login".into(),
            headers: headers(&[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("Content-Length", form.len().to_string()),
                ("Origin", "https://shop.example.com".to_owned()),
            ]),
            body: form,
        },
        Request {
            name: "json_post_10k",
            method: "POST",
            uri: "/api/orders".into(),
            headers: headers(&[
                ("Content-Type", "application/json".to_owned()),
                ("Content-Length", json.len().to_string()),
                ("Origin", "https://shop.example.com".to_owned()),
            ]),
            body: json,
        },
        Request {
            name: "attack_get_sqli",
            method: "GET",
            uri: "/catalog/item?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--%20"
                .into(),
            headers: headers(&[]),
            body: Vec::new(),
        },
    ]
}

/// Writes `req` for the C peer: method line, URI line, `Name: value` lines, an empty line,
/// then the body bytes.
pub fn write_request(req: &Request, path: &Path) -> std::io::Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(format!("{}\n{}\n", req.method, req.uri).as_bytes());
    for (k, v) in &req.headers {
        out.extend_from_slice(format!("{k}: {v}\n").as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&req.body);
    std::fs::write(path, out)
}

/// One full transaction, as a server drives it: connection, request line, headers (phase 1),
/// body (phase 2), response headers (phase 3), response body (phase 4, empty), logging (phase
/// 5); after an interruption the server answers at once and only logging runs.
pub fn run(rules: &Ruleset, req: &Request) -> (Option<Interruption>, usize) {
    let mut tx: Transaction = rules.transaction();
    tx.process_connection("192.0.2.10", 51234, "192.0.2.1", 443);
    tx.process_uri(&req.uri, req.method, "HTTP/1.1");
    for (k, v) in &req.headers {
        tx.add_request_header(k, v);
    }
    let mut i = tx.process_request_headers();
    if i.is_none() {
        if !req.body.is_empty() {
            tx.append_request_body(&req.body);
        }
        i = tx.process_request_body();
    }
    if i.is_none() {
        tx.add_response_header("Content-Type", "text/html; charset=utf-8");
        tx.add_response_header("Content-Length", "0");
        i = tx.process_response_headers(200, "HTTP/1.1");
    }
    if i.is_none() {
        i = tx.process_response_body();
    }
    tx.process_logging();
    let n = tx.matched_rules().iter().filter(|m| m.logged).count();
    (i, n)
}
