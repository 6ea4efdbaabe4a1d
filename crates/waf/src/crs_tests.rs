//! The CRS regression suite (go-ftw YAML format) run in-process.
//!
//! [`run`] loads `crs-setup.conf.example`, the test configuration (rule 900005 from
//! `tests/regression/README.md`: DetectionOnly, paranoia level 4) and `rules/*.conf`, then plays
//! every stage of every test through a [`Transaction`]: the request from `method`, `uri`,
//! `version`, `headers`, `data` (or the raw `encoded_request`), and a response from an
//! in-process origin that reflects like go-ftw's `albedo` (a JSON body posted to `/reflect`
//! gives the response's `status`, `headers` and `body`). A test passes when every
//! `log.expect_ids` id was logged and no `log.no_expect_ids` id was.
//!
//! Tests whose only expectation is an HTTP status (the web server rejecting a malformed
//! request before any WAF sees it) are skipped with that reason. Tests listed in an overrides
//! file (go-ftw's `test_overrides` format, each with a `reason`) that fail are reported as
//! skipped with the override's reason.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::{LoadError, Ruleset, Transaction};

/// The engine configuration the CRS test deployments use (from ModSecurity's
/// `modsecurity.conf-recommended`) plus rule 900005 from the CRS test README.
pub const TEST_CONFIG: &str = r#"
SecRuleEngine DetectionOnly
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
SecRule REQBODY_ERROR "!@eq 0" \
    "id:'200002', phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" \
    "id:'200004',phase:2,t:none,log,deny,msg:'Multipart parser detected a possible unmatched boundary.'"
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html text/xml
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
"#;

/// Rule 900005 from `tests/regression/README.md`.
pub const RULE_900005: &str = r#"
SecAction "id:900005,\
  phase:1,\
  nolog,\
  pass,\
  ctl:ruleEngine=DetectionOnly,\
  ctl:ruleRemoveById=910000,\
  setvar:tx.blocking_paranoia_level=4,\
  setvar:tx.crs_validate_utf8_encoding=1,\
  setvar:tx.arg_name_length=100,\
  setvar:tx.arg_length=400,\
  setvar:tx.total_arg_length=64000,\
  setvar:tx.max_num_args=255,\
  setvar:tx.max_file_size=64100,\
  setvar:tx.combined_file_sizes=65535"
"#;

/// A test, by rule and test id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TestId {
    /// The rule the test file is about.
    pub rule_id: u64,
    /// The test number within the file.
    pub test_id: u64,
}

impl fmt::Display for TestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.rule_id, self.test_id)
    }
}

/// A failed test and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The test.
    pub test: TestId,
    /// Expected ids that did not match.
    pub missing: Vec<u64>,
    /// Ids that matched though the test says they must not.
    pub unexpected: Vec<u64>,
    /// A human-readable reason.
    pub reason: String,
}

/// A skipped test and why.
#[derive(Debug, Clone)]
pub struct Skip {
    /// The test.
    pub test: TestId,
    /// Why it was not counted.
    pub reason: String,
}

/// The outcome of a suite run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Tests that passed.
    pub passed: Vec<TestId>,
    /// Tests that failed (and are not in the overrides).
    pub failed: Vec<Failure>,
    /// Tests skipped: status-only tests, and failing tests listed in the overrides.
    pub skipped: Vec<Skip>,
    /// Overridden tests that passed (their override can go).
    pub stale_overrides: Vec<TestId>,
    /// Time to load the rule set.
    pub load_time: Duration,
    /// Time to run the tests.
    pub run_time: Duration,
}

impl Report {
    /// The share of passed tests among passed and failed, in percent.
    pub fn pass_rate(&self) -> f64 {
        let total = self.passed.len() + self.failed.len();
        if total == 0 {
            return 100.0;
        }
        self.passed.len() as f64 * 100.0 / total as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for fail in &self.failed {
            writeln!(f, "FAIL {}: {}", fail.test, fail.reason)?;
        }
        for s in &self.skipped {
            writeln!(f, "SKIP {}: {}", s.test, s.reason)?;
        }
        for t in &self.stale_overrides {
            writeln!(f, "NOTE {t}: listed in the overrides but passes")?;
        }
        writeln!(
            f,
            "rules loaded in {:.0?}, tests run in {:.1?}",
            self.load_time, self.run_time
        )?;
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed.len(),
            self.failed.len(),
            self.skipped.len()
        )
    }
}

/// Running the suite failed before any test ran.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The rules did not load.
    #[error("loading rules: {0}")]
    Load(#[from] LoadError),
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A YAML file did not parse.
    #[error("{path}: {message}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
struct TestFile {
    #[serde(default)]
    rule_id: Option<u64>,
    #[serde(default)]
    tests: Vec<Test>,
}

#[derive(Debug, Deserialize)]
struct Test {
    test_id: u64,
    #[serde(default)]
    rule_id: Option<u64>,
    #[serde(default)]
    stages: Vec<Stage>,
}

#[derive(Debug, Deserialize, Default)]
struct Stage {
    #[serde(default)]
    input: Input,
    #[serde(default)]
    output: Output,
}

#[derive(Debug, Deserialize, Default)]
struct Input {
    #[serde(default)]
    dest_addr: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    headers: Option<serde_yaml_ng::Mapping>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    encoded_request: Option<String>,
    #[serde(default)]
    autocomplete_headers: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
struct Output {
    #[serde(default)]
    status: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    log: Option<Log>,
}

#[derive(Debug, Deserialize, Default)]
struct Log {
    #[serde(default)]
    expect_ids: Vec<u64>,
    #[serde(default)]
    no_expect_ids: Vec<u64>,
}

#[derive(Debug, Deserialize, Default)]
struct OverridesFile {
    #[serde(default)]
    test_overrides: Vec<Override>,
}

#[derive(Debug, Deserialize)]
struct Override {
    rule_id: u64,
    #[serde(default)]
    test_ids: Vec<u64>,
    #[serde(default)]
    reason: String,
}

/// Reads an overrides file: test to reason.
pub fn read_overrides(path: &Path) -> Result<HashMap<TestId, String>, RunError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file: OverridesFile = serde_yaml_ng::from_str(&text).map_err(|e| RunError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = HashMap::new();
    for o in file.test_overrides {
        for t in o.test_ids {
            out.insert(
                TestId {
                    rule_id: o.rule_id,
                    test_id: t,
                },
                o.reason.clone(),
            );
        }
    }
    Ok(out)
}

/// Finds the CRS root (holding `crs-setup.conf.example` and `rules/`) from either the root
/// or its `rules` folder.
fn crs_root(dir: &Path) -> PathBuf {
    if dir.join("rules").is_dir() {
        dir.to_path_buf()
    } else {
        dir.parent()
            .map_or_else(|| dir.to_path_buf(), Path::to_path_buf)
    }
}

/// Loads CRS from `rules_dir` (the CRS root or its `rules/` folder) the way the regression
/// suite expects it: [`TEST_CONFIG`], `crs-setup.conf.example`, [`RULE_900005`], `rules/*.conf`.
pub fn load_crs_for_tests(rules_dir: &Path) -> Result<Ruleset, RunError> {
    let directives = crs_test_directives(rules_dir)?;
    Ruleset::from_directives(&directives).map_err(|e| RunError::Load(LoadError::Compile(e)))
}

fn crs_test_directives(rules_dir: &Path) -> Result<Vec<rampart_seclang::Directive>, RunError> {
    let root = crs_root(rules_dir);
    let setup = root.join("crs-setup.conf.example");
    let mut directives =
        rampart_seclang::parse_str(TEST_CONFIG, &root.join("modsecurity-test.conf"))
            .map_err(LoadError::from)?;
    let parser = rampart_seclang::Parser::new();
    directives.extend(parser.parse_file(&setup).map_err(LoadError::from)?);
    directives.extend(
        rampart_seclang::parse_str(RULE_900005, &root.join("crs-test-setup.conf"))
            .map_err(LoadError::from)?,
    );
    let files = crate::ruleset::crs_files(&setup, &[], &root.join("rules")).map_err(|source| {
        RunError::Io {
            path: root.join("rules"),
            source,
        }
    })?;
    for f in files.iter().skip(1) {
        directives.extend(parser.parse_file(f).map_err(LoadError::from)?);
    }
    Ok(directives)
}

/// Plays every request of the regression suite under `tests_dir` through CRS at `rules_dir`
/// (loaded as [`load_crs_for_tests`] does) twice: with the phase-1 preset, as always, and with
/// every transaction evaluating the setup rules itself. Returns how many requests ran and the
/// tests (`rule_id-test_id/stage`) whose outcome differs: the matched rules (ids, order,
/// messages, log data, matched variable names, severities) or the interruption.
pub fn preset_differences(
    rules_dir: &Path,
    tests_dir: &Path,
) -> Result<(usize, Vec<String>), RunError> {
    let directives = crs_test_directives(rules_dir)?;
    let compile_error = |e| RunError::Load(LoadError::Compile(e));
    let with = Ruleset::from_directives(&directives).map_err(compile_error)?;
    let without = Ruleset::from_directives_without_preset(&directives).map_err(compile_error)?;
    if with.inner.preset.is_none() {
        return Ok((0, vec!["CRS got no phase-1 preset".into()]));
    }
    let mut ran = 0;
    let mut differ = Vec::new();
    for file in test_files(tests_dir)? {
        for test in &file.tests {
            for (n, stage) in test.stages.iter().enumerate() {
                ran += 1;
                if stage_outcome(&with, &stage.input) != stage_outcome(&without, &stage.input) {
                    let rule = test.rule_id.or(file.rule_id).unwrap_or(0);
                    differ.push(format!("{rule}-{}/{n}", test.test_id));
                }
            }
        }
    }
    Ok((ran, differ))
}

/// The test files under `tests_dir`, in path order (files that are not go-ftw tests are left
/// out).
fn test_files(tests_dir: &Path) -> Result<Vec<TestFile>, RunError> {
    let mut paths = Vec::new();
    yaml_files(tests_dir, &mut paths)?;
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| RunError::Io {
            path: path.clone(),
            source,
        })?;
        if let Ok(file) = serde_yaml_ng::from_str::<TestFile>(&text) {
            files.push(file);
        }
    }
    Ok(files)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RunError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RunError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// Runs every test under `tests_dir` against CRS at `rules_dir`.
pub fn run(
    rules_dir: &Path,
    tests_dir: &Path,
    overrides: Option<&Path>,
) -> Result<Report, RunError> {
    let start = Instant::now();
    let ruleset = load_crs_for_tests(rules_dir)?;
    let load_time = start.elapsed();
    let overrides = match overrides {
        Some(p) => read_overrides(p)?,
        None => HashMap::new(),
    };
    let start = Instant::now();
    let files = test_files(tests_dir)?;
    let mut report = Report {
        load_time,
        ..Report::default()
    };
    for file in files {
        for test in &file.tests {
            let id = TestId {
                rule_id: test.rule_id.or(file.rule_id).unwrap_or(0),
                test_id: test.test_id,
            };
            let outcome = run_test(&ruleset, test);
            let overridden = overrides.get(&id);
            match (outcome, overridden) {
                (Outcome::Pass, None) => report.passed.push(id),
                (Outcome::Pass, Some(_)) => {
                    report.passed.push(id);
                    report.stale_overrides.push(id);
                }
                (Outcome::Skip(reason), _) => report.skipped.push(Skip { test: id, reason }),
                (Outcome::Fail { .. }, Some(reason)) => report.skipped.push(Skip {
                    test: id,
                    reason: format!("override: {reason}"),
                }),
                (
                    Outcome::Fail {
                        missing,
                        unexpected,
                    },
                    None,
                ) => {
                    let mut reason = Vec::new();
                    if !missing.is_empty() {
                        reason.push(format!("expected rule(s) {missing:?} did not match"));
                    }
                    if !unexpected.is_empty() {
                        reason.push(format!("rule(s) {unexpected:?} matched but must not"));
                    }
                    report.failed.push(Failure {
                        test: id,
                        missing,
                        unexpected,
                        reason: reason.join("; "),
                    });
                }
            }
        }
    }
    report.run_time = start.elapsed();
    Ok(report)
}

enum Outcome {
    Pass,
    Fail {
        missing: Vec<u64>,
        unexpected: Vec<u64>,
    },
    Skip(String),
}

fn run_test(ruleset: &Ruleset, test: &Test) -> Outcome {
    let mut missing = Vec::new();
    let mut unexpected = Vec::new();
    let mut any_log = false;
    for stage in &test.stages {
        let Some(log) = &stage.output.log else {
            continue;
        };
        any_log = true;
        let matched = run_stage(ruleset, &stage.input);
        for id in &log.expect_ids {
            if !matched.contains(id) {
                missing.push(*id);
            }
        }
        for id in &log.no_expect_ids {
            if matched.contains(id) {
                unexpected.push(*id);
            }
        }
    }
    if !any_log {
        let status = test
            .stages
            .iter()
            .filter_map(|s| s.output.status.as_ref())
            .map(|v| {
                serde_yaml_ng::to_string(v)
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join(",");
        return Outcome::Skip(format!(
            "expects only HTTP status {status} from the web server (no WAF log expectation)"
        ));
    }
    if missing.is_empty() && unexpected.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail {
            missing,
            unexpected,
        }
    }
}

/// A request as the test describes it.
#[derive(Debug, Default)]
pub struct TestRequest {
    /// Method.
    pub method: String,
    /// Request target as sent.
    pub uri: String,
    /// `HTTP/1.1`.
    pub version: String,
    /// Headers in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

fn yaml_scalar(v: &serde_yaml_ng::Value) -> String {
    match v {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        serde_yaml_ng::Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

fn build_request(input: &Input) -> TestRequest {
    if let Some(raw) = &input.encoded_request {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim().as_bytes())
            .unwrap_or_default();
        return parse_raw_request(&bytes);
    }
    let mut req = TestRequest {
        method: input.method.clone().unwrap_or_else(|| "GET".into()),
        uri: input.uri.clone().unwrap_or_else(|| "/".into()),
        version: input.version.clone().unwrap_or_else(|| "HTTP/1.1".into()),
        ..TestRequest::default()
    };
    if let Some(h) = &input.headers {
        for (k, v) in h {
            req.headers
                .push((yaml_scalar(k).into_bytes(), yaml_scalar(v).into_bytes()));
        }
    }
    if let Some(d) = &input.data {
        req.body = d.as_bytes().to_vec();
    }
    let autocomplete = input.autocomplete_headers.unwrap_or(true);
    // go-ftw completes a request with a body: a form content type when none is given, and
    // the content length.
    if autocomplete
        && !req.body.is_empty()
        && !req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(b"content-type"))
    {
        req.headers.push((
            b"Content-Type".to_vec(),
            b"application/x-www-form-urlencoded".to_vec(),
        ));
    }
    if autocomplete
        && !req.body.is_empty()
        && !req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(b"content-length"))
    {
        req.headers.push((
            b"Content-Length".to_vec(),
            req.body.len().to_string().into_bytes(),
        ));
    }
    server_view(req)
}

/// What an HTTP/1.1 server hands the WAF: a request line without a version is HTTP/0.9; a
/// body is read only when framed (`Transfer-Encoding: chunked` wins over `Content-Length`,
/// which is then dropped, RFC 9112 section 6.3); otherwise there is no body.
fn server_view(mut req: TestRequest) -> TestRequest {
    if req.version.is_empty() {
        req.version = "HTTP/0.9".into();
    }
    let chunked = req.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case(b"transfer-encoding")
            && v.to_ascii_lowercase().windows(7).any(|w| w == b"chunked")
    });
    if chunked {
        req.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(b"content-length"));
        req.body = dechunk(&req.body);
    } else {
        let len = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(b"content-length"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok());
        match len {
            Some(n) => req.body.truncate(n),
            None => req.body.clear(),
        }
    }
    req
}

/// Decodes a chunked body (lenient: stops at the first malformed chunk).
fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eol) = memchr::memmem::find(rest, b"\r\n") {
        let size_text = rest.get(..eol).unwrap_or_default();
        let size_text = size_text
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let Some(size) = std::str::from_utf8(size_text)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
        else {
            break;
        };
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let Some(chunk) = rest.get(start..start + size) else {
            out.extend_from_slice(rest.get(start..).unwrap_or_default());
            break;
        };
        out.extend_from_slice(chunk);
        rest = rest.get(start + size..).unwrap_or_default();
        rest = rest.strip_prefix(b"\r\n").unwrap_or(rest);
    }
    out
}

/// Whether an HTTP/1.1 server rejects the request with 400 before any WAF sees it: a header
/// name that is not a token, or a CR, LF or NUL inside a header value.
fn server_rejects(req: &TestRequest) -> bool {
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    req.headers.iter().any(|(k, v)| {
        k.is_empty() || !k.iter().all(token) || v.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
    })
}

/// Parses a raw HTTP/1 request (`encoded_request`).
pub fn parse_raw_request(bytes: &[u8]) -> TestRequest {
    let mut req = TestRequest::default();
    let (head, body) = match memchr::memmem::find(bytes, b"\r\n\r\n") {
        Some(p) => (
            bytes.get(..p).unwrap_or_default(),
            bytes.get(p + 4..).unwrap_or_default(),
        ),
        None => match memchr::memmem::find(bytes, b"\n\n") {
            Some(p) => (
                bytes.get(..p).unwrap_or_default(),
                bytes.get(p + 2..).unwrap_or_default(),
            ),
            None => (bytes, &b""[..]),
        },
    };
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    if let Some(first) = lines.next() {
        let text = String::from_utf8_lossy(first);
        let mut parts = text.splitn(3, ' ');
        req.method = parts.next().unwrap_or_default().to_owned();
        req.uri = parts.next().unwrap_or_default().to_owned();
        req.version = parts.next().unwrap_or_default().to_owned();
    }
    for l in lines {
        if let Some(p) = memchr::memchr(b':', l) {
            req.headers.push((
                l.get(..p).unwrap_or_default().to_vec(),
                l.get(p + 1..).unwrap_or_default().trim_ascii().to_vec(),
            ));
        }
    }
    req.body = body.to_vec();
    server_view(req)
}

/// What the in-process origin answers: `/reflect` with a JSON body reflects its `status`,
/// `headers` and `body`; anything else gets `200` and an empty text body.
fn origin_response(req: &TestRequest) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let path = req.uri.split('?').next().unwrap_or_default();
    let mut status = 200;
    let mut headers = Vec::new();
    let mut body = Vec::new();
    if path == "/reflect"
        && let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(&req.body)
    {
        if let Some(s) = m.get("status").and_then(serde_json::Value::as_u64) {
            status = u16::try_from(s).unwrap_or(200);
        }
        if let Some(serde_json::Value::Object(h)) = m.get("headers") {
            for (k, v) in h {
                headers.push((
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                ));
            }
        }
        if let Some(b) = m.get("body").and_then(serde_json::Value::as_str) {
            body = b.as_bytes().to_vec();
        }
        if let Some(b) = m.get("encodedBody").and_then(serde_json::Value::as_str) {
            body = base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .unwrap_or_default();
        }
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        let ct = if body.trim_ascii_start().starts_with(b"<") {
            "text/html; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        headers.push(("Content-Type".into(), ct.into()));
    }
    headers.push(("Content-Length".into(), body.len().to_string()));
    (status, headers, body)
}

/// Plays one request through a transaction and returns the logged rule ids.
fn run_stage(ruleset: &Ruleset, input: &Input) -> BTreeSet<u64> {
    stage_rules(ruleset, input)
        .iter()
        .filter(|m| m.logged)
        .map(|m| m.id)
        .collect()
}

/// Runs a single request (for debugging a test): the ids logged and the matched rules.
pub fn debug_request(ruleset: &Ruleset, raw_request: &[u8]) -> Vec<crate::MatchedRule> {
    let req = parse_raw_request(raw_request);
    let mut tx = Transaction::new(ruleset.clone());
    tx.process_connection("127.0.0.1", 54321, "127.0.0.1", 80);
    tx.process_uri_bytes(
        req.uri.as_bytes(),
        req.method.as_bytes(),
        req.version.as_bytes(),
    );
    for (k, v) in &req.headers {
        tx.add_request_header_bytes(k, v);
    }
    let _ = tx.process_request_headers();
    tx.append_request_body(&req.body);
    let _ = tx.process_request_body();
    tx.process_logging();
    tx.matched_rules().to_vec()
}

/// Runs the test `id` from the YAML files under `tests_dir` and returns, per stage, the
/// matched rules (for investigating a failure).
pub fn explain(
    ruleset: &Ruleset,
    tests_dir: &Path,
    id: TestId,
) -> Result<Vec<Vec<crate::MatchedRule>>, RunError> {
    let mut out = Vec::new();
    for file in test_files(tests_dir)? {
        for test in &file.tests {
            if test.rule_id.or(file.rule_id) == Some(id.rule_id) && test.test_id == id.test_id {
                for stage in &test.stages {
                    out.push(stage_rules(ruleset, &stage.input));
                }
            }
        }
    }
    Ok(out)
}

fn stage_rules(ruleset: &Ruleset, input: &Input) -> Vec<crate::MatchedRule> {
    stage_outcome(ruleset, input).0
}

/// The matched rules and the interruption of one stage's request (and its response).
fn stage_outcome(
    ruleset: &Ruleset,
    input: &Input,
) -> (Vec<crate::MatchedRule>, Option<crate::Interruption>) {
    let req = build_request(input);
    if server_rejects(&req) {
        return (Vec::new(), None);
    }
    let mut tx = Transaction::new(ruleset.clone());
    let dest = input
        .dest_addr
        .clone()
        .unwrap_or_else(|| "127.0.0.1".into());
    tx.process_connection("127.0.0.1", 54321, &dest, input.port.unwrap_or(80));
    tx.process_uri_bytes(
        req.uri.as_bytes(),
        req.method.as_bytes(),
        req.version.as_bytes(),
    );
    for (k, v) in &req.headers {
        tx.add_request_header_bytes(k, v);
    }
    let _ = tx.process_request_headers();
    tx.append_request_body(&req.body);
    let _ = tx.process_request_body();
    let (status, headers, body) = origin_response(&req);
    for (k, v) in &headers {
        tx.add_response_header(k, v);
    }
    let _ = tx.process_response_headers(status, "HTTP/1.1");
    if tx.response_body_wanted() {
        tx.append_response_body(&body);
    }
    let _ = tx.process_response_body();
    tx.process_logging();
    (tx.matched_rules().to_vec(), tx.interruption().cloned())
}
