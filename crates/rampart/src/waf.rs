//! The WAF in the gateway: the rule set loaded from `[waf]` (the Core Rule Set as the machine
//! has it, plus the operator's own files, unchanged), and the gateway filter that runs one WAF
//! transaction per request through the phase hooks.

use std::path::{Path, PathBuf};

use anyhow::Context;
use http::{HeaderMap, StatusCode, Version};
use rampart_config::{CrsSource, WafConfig, WafEngine};
use rampart_gateway::{Denial, Filter, FilterSession, RequestHead, Verdict};
use rampart_waf::{Interruption, Ruleset, Transaction};

use crate::cmd::UsageError;

/// Where Debian's `modsecurity-crs` package puts the rules and the setup file.
const DEBIAN_CRS: &str = "/usr/share/modsecurity-crs";
const DEBIAN_CRS_SETUP: &str = "/etc/modsecurity/crs/crs-setup.conf";

/// Rule ids Rampart uses for its own settings rules (outside CRS's ranges).
const SETTINGS_RULE_ID: u32 = 9_999_001;

/// A loaded rule set and a one-line description for the banner and logs.
#[derive(Debug, Clone)]
pub struct LoadedWaf {
    /// The compiled rules.
    pub ruleset: Ruleset,
    /// E.g. `OWASP CRS at /usr/share/modsecurity-crs, 612 rules, paranoia 1, blocking`.
    pub description: String,
}

/// Loads the rules `[waf]` asks for; `None` when the WAF is off, or when `crs = "auto"` finds
/// no CRS and there are no other rules (said in the log). Rules that do not load are a
/// configuration error (exit code 2) naming the file and line: the plane does not start
/// without the protection it was configured with.
pub fn load(config: &WafConfig) -> anyhow::Result<Option<LoadedWaf>> {
    load_rules(config).map_err(|error| match error.downcast::<UsageError>() {
        Ok(usage) => usage.into(),
        Err(error) => UsageError(format!("{error:#}")).into(),
    })
}

fn load_rules(config: &WafConfig) -> anyhow::Result<Option<LoadedWaf>> {
    if config.engine == WafEngine::Off {
        return Ok(None);
    }
    let crs = match &config.crs {
        CrsSource::Off => None,
        CrsSource::Dir(dir) => {
            anyhow::ensure!(
                dir.join("rules").is_dir(),
                UsageError(format!(
                    "waf.crs: {} has no rules/ directory (expected a Core Rule Set directory)",
                    dir.display()
                ))
            );
            Some(dir.clone())
        }
        CrsSource::Auto => {
            let debian = Path::new(DEBIAN_CRS);
            debian.join("rules").is_dir().then(|| debian.to_owned())
        }
    };
    if crs.is_none() && config.before_crs.is_empty() && config.after_crs.is_empty() {
        if config.crs == CrsSource::Auto {
            tracing::warn!(
                "no Core Rule Set found at {DEBIAN_CRS}: the WAF is off (apt-get install \
                 modsecurity-crs, or set waf.crs to a CRS directory)"
            );
        }
        return Ok(None);
    }

    // Load order: Rampart's engine settings, the CRS setup file, the operator's "before"
    // files, the engine mode and paranoia level, the CRS rules (sorted), the "after" files.
    let (setup, rules) = match &crs {
        Some(dir) => {
            let rules_dir = dir.join("rules");
            let mut files =
                rampart_waf::ruleset::crs_files(&setup_file(config, dir)?, &[], &rules_dir)
                    .with_context(|| format!("cannot read {}", rules_dir.display()))?;
            let rules = files.split_off(1);
            (files, rules)
        }
        None => (Vec::new(), Vec::new()),
    };
    let parser = rampart_seclang::Parser::new();
    let mut directives = rampart_seclang::parse_str(
        &engine_settings(config),
        Path::new("<rampart waf settings>"),
    )?;
    for file in setup
        .iter()
        .chain(&expand(&config.before_crs, "waf.before_crs")?)
    {
        parse_into(&parser, &mut directives, file)?;
    }
    directives.extend(rampart_seclang::parse_str(
        &mode_settings(config),
        Path::new("<rampart waf mode>"),
    )?);
    for file in rules
        .iter()
        .chain(&expand(&config.after_crs, "waf.after_crs")?)
    {
        parse_into(&parser, &mut directives, file)?;
    }
    let ruleset = Ruleset::from_directives(&directives).context("cannot compile the WAF rules")?;
    for warning in ruleset.warnings() {
        tracing::warn!(warning, "WAF rule approximated");
    }
    let source = crs.map_or_else(
        || "custom rules".to_owned(),
        |dir| format!("OWASP CRS at {}", dir.display()),
    );
    let mode = match config.engine {
        WafEngine::DetectionOnly => "detection only",
        _ => "blocking",
    };
    let description = format!(
        "{source}, {} rules, paranoia {}, {mode}",
        ruleset.rule_count(),
        config.paranoia_level
    );
    Ok(Some(LoadedWaf {
        ruleset,
        description,
    }))
}

fn parse_into(
    parser: &rampart_seclang::Parser,
    directives: &mut Vec<rampart_seclang::Directive>,
    path: &Path,
) -> anyhow::Result<()> {
    directives.extend(
        parser
            .parse_file(path)
            .with_context(|| format!("cannot load WAF rules from {}", path.display()))?,
    );
    Ok(())
}

/// What ModSecurity's recommended `modsecurity.conf` sets (body processors chosen by content
/// type, body limits, strict body parsing, response inspection), from `[waf]`: loaded first,
/// so the setup file and the operator's files can still refine it. Do not also load a
/// `modsecurity.conf`: its rules 200000-200007 are these.
fn engine_settings(config: &WafConfig) -> String {
    let access = if config.response_body_access {
        "On"
    } else {
        "Off"
    };
    format!(
        r#"SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit {limit}
SecRequestBodyNoFilesLimit {no_files}
SecRequestBodyLimitAction Reject
SecRequestBodyJsonDepthLimit 512
SecArgumentsLimit 1000
SecRule &ARGS "@ge 1000" "id:200007,phase:2,t:none,log,deny,status:400,msg:'Failed to fully parse request body due to large argument count',severity:2"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{{reqbody_error_msg}}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation'"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" "id:200004,phase:2,t:none,log,deny,msg:'Multipart parser detected a possible unmatched boundary.'"
SecResponseBodyAccess {access}
SecResponseBodyMimeType text/plain text/html text/xml
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
SecArgumentSeparator &
"#,
        limit = config.request_body_limit,
        no_files = config.request_body_no_files_limit,
    )
}

/// The engine mode and paranoia level: after the setup file, so `[waf]` wins over it.
fn mode_settings(config: &WafConfig) -> String {
    let engine = match config.engine {
        WafEngine::DetectionOnly => "DetectionOnly",
        _ => "On",
    };
    let level = config.paranoia_level;
    format!(
        "SecRuleEngine {engine}\n\
         SecAction \"id:{SETTINGS_RULE_ID},phase:1,pass,nolog,t:none,\
         setvar:tx.blocking_paranoia_level={level},setvar:tx.paranoia_level={level}\"\n"
    )
}

fn setup_file(config: &WafConfig, dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(setup) = &config.crs_setup {
        return Ok(setup.clone());
    }
    let mut candidates = vec![
        dir.join("crs-setup.conf"),
        dir.join("crs-setup.conf.example"),
    ];
    if dir == Path::new(DEBIAN_CRS) {
        candidates.insert(0, PathBuf::from(DEBIAN_CRS_SETUP));
    }
    candidates
        .into_iter()
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            UsageError(format!(
                "waf.crs: no crs-setup.conf or crs-setup.conf.example in {} (set waf.crs_setup)",
                dir.display()
            ))
            .into()
        })
}

/// Expands globs; a pattern that matches nothing is an error (a typo must not silently drop
/// an exclusion file).
fn expand(patterns: &[PathBuf], key: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for pattern in patterns {
        let text = pattern.to_string_lossy();
        let mut matched: Vec<PathBuf> = glob::glob(&text)
            .map_err(|error| UsageError(format!("{key}: {text:?} is not a valid glob: {error}")))?
            .filter_map(Result::ok)
            .collect();
        anyhow::ensure!(
            !matched.is_empty(),
            UsageError(format!("{key}: {text:?} matches no file"))
        );
        matched.sort();
        files.extend(matched);
    }
    Ok(files)
}

/// The gateway filter that runs the rules.
#[derive(Debug)]
pub struct WafFilter {
    ruleset: Ruleset,
}

impl WafFilter {
    /// A filter running `ruleset`.
    pub fn new(ruleset: Ruleset) -> Self {
        Self { ruleset }
    }
}

impl Filter for WafFilter {
    fn name(&self) -> &'static str {
        "waf"
    }

    fn start(&self, _head: &RequestHead<'_>) -> Box<dyn FilterSession> {
        Box::new(WafSession {
            transaction: self.ruleset.transaction(),
            request_body_limit: usize::try_from(self.ruleset.config().request_body_limit)
                .unwrap_or(usize::MAX),
            response_body_limit: usize::try_from(self.ruleset.config().response_body_limit)
                .unwrap_or(usize::MAX),
        })
    }
}

/// One request's WAF transaction.
struct WafSession {
    transaction: Transaction,
    request_body_limit: usize,
    response_body_limit: usize,
}

impl WafSession {
    fn verdict(&self, interruption: Option<Interruption>) -> Verdict {
        let Some(interruption) = interruption else {
            return Verdict::Continue;
        };
        let rule_ids: Vec<String> = self
            .transaction
            .matched_rules()
            .iter()
            .filter(|rule| rule.logged)
            .map(|rule| rule.id.to_string())
            .collect();
        let rule = interruption.rule_id.to_string();
        metrics::counter!("rampart_waf_blocks_total", "rule" => rule.clone()).increment(1);
        let message = self
            .transaction
            .matched_rules()
            .iter()
            .find(|matched| matched.id == interruption.rule_id)
            .map(|matched| matched.msg.clone())
            .unwrap_or_default();
        // A drop closes nothing here: the client gets the denial, like a deny.
        let status = StatusCode::from_u16(interruption.status)
            .ok()
            .filter(|status| status.is_client_error() || status.is_server_error())
            .unwrap_or(StatusCode::FORBIDDEN);
        Verdict::Deny(Denial {
            status,
            reason: format!("waf rule {rule}: {message}"),
            rule_ids,
        })
    }
}

impl FilterSession for WafSession {
    fn request_headers(&mut self, head: &RequestHead<'_>) -> Verdict {
        let tx = &mut self.transaction;
        tx.process_connection(&head.client.to_string(), head.peer.port(), "0.0.0.0", 0);
        let target = head
            .uri
            .path_and_query()
            .map_or_else(|| head.uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let version = match head.version {
            Version::HTTP_2 => "HTTP/2.0",
            Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        tx.process_uri(&target, head.method.as_str(), version);
        if !head.headers.contains_key(http::header::HOST)
            && let Some(authority) = head.uri.authority()
        {
            tx.add_request_header("Host", authority.as_str());
        }
        add_headers(head.headers, |name, value| {
            tx.add_request_header_bytes(name, value);
        });
        let interruption = tx.process_request_headers();
        self.verdict(interruption)
    }

    fn request_body_limit(&self) -> usize {
        self.request_body_limit
    }

    fn request_body(&mut self, _head: &RequestHead<'_>, body: &[u8]) -> Verdict {
        self.transaction.append_request_body(body);
        let interruption = self.transaction.process_request_body();
        self.verdict(interruption)
    }

    fn response_headers(&mut self, status: StatusCode, headers: &HeaderMap) -> Verdict {
        let tx = &mut self.transaction;
        add_headers(headers, |name, value| {
            tx.add_response_header(
                &String::from_utf8_lossy(name),
                &String::from_utf8_lossy(value),
            );
        });
        let interruption = tx.process_response_headers(status.as_u16(), "HTTP/1.1");
        self.verdict(interruption)
    }

    fn response_body_limit(&self) -> usize {
        if self.transaction.response_body_wanted() {
            self.response_body_limit
        } else {
            0
        }
    }

    fn response_body(&mut self, body: &[u8], _complete: bool) -> Verdict {
        self.transaction.append_response_body(body);
        let interruption = self.transaction.process_response_body();
        self.verdict(interruption)
    }

    fn logging(&mut self, _status: StatusCode) {
        self.transaction.process_logging();
        for rule in self.transaction.matched_rules() {
            if rule.logged {
                tracing::debug!(
                    rule = rule.id,
                    msg = %rule.msg,
                    data = %rule.logdata,
                    "waf rule matched"
                );
            }
        }
    }
}

fn add_headers(headers: &HeaderMap, mut add: impl FnMut(&[u8], &[u8])) {
    for (name, value) in headers {
        add(name.as_str().as_bytes(), value.as_bytes());
    }
}
