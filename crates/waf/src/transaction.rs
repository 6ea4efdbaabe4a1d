//! A transaction: one HTTP request/response through phases 1-5.
//!
//! The gateway feeds the connection, request line, headers and body, then the response, and
//! asks after each phase whether to interrupt. The transaction holds only per-request state
//! (data, TX variables, ctl changes, the transformation cache, matched rules); the rules are
//! the shared, immutable [`Ruleset`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use rampart_seclang::{
    AllowScope, AuditEngine, BodyLimitAction, Ctl, EngineMode, IdRange, MacroPart, MacroString,
    SetVarOp, Severity,
};

use crate::actions::{Disruptive, RunAction};
use crate::body;
use crate::cache::TCache;
use crate::operators::{Expand, OpMatch};
use crate::preset::{Preset, Recorded, Replay};
use crate::ruleset::{Entry, Inner, Link, Rule, Ruleset};
use crate::transformations::Transformation;
use crate::variables::{ArgEntry, CVar, Coll, Reuse, Sel, TxData, TxMap, Val};

/// What the gateway must do instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    /// The HTTP status to answer with.
    pub status: u16,
    /// The `Location` of a redirect.
    pub redirect_url: Option<String>,
    /// The disruptive action.
    pub action: InterruptionAction,
    /// The rule that interrupted (0 for the engine itself, e.g. a body over its limit).
    pub rule_id: u64,
}

/// The kind of interruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InterruptionAction {
    /// Answer with `status`.
    Deny,
    /// Close the connection.
    Drop,
    /// Redirect to `redirect_url`.
    Redirect,
}

/// A rule that matched, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchedRule {
    /// The rule id.
    pub id: u64,
    /// The phase it ran in.
    pub phase: u8,
    /// Its `msg`, expanded (empty for a rule that neither logs nor can interrupt: `pass,
    /// nolog`).
    pub msg: String,
    /// Its `logdata`, expanded (empty where `msg` is).
    pub logdata: String,
    /// Its severity.
    pub severity: Option<Severity>,
    /// Its tags (shared with the rule set).
    pub tags: std::sync::Arc<[String]>,
    /// The last variable that matched (`ARGS:q`; empty where `msg` is).
    pub matched_var_name: String,
    /// Whether the rule logs (`log`, not `nolog`): what ModSecurity writes to its error log.
    pub logged: bool,
}

/// The rules a `ctl:ruleRemove*By*` names.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Ids(&'a [IdRange]),
    Tag(&'a str),
    Msg(&'a str),
}

impl Target<'_> {
    /// The rules of `inner` this target selects (through its id and tag indexes: a `ctl`
    /// resolves its target once, and each rule after it tests one bit).
    fn rules(&self, inner: &Inner) -> RuleBits {
        let mut bits = RuleBits::default();
        match self {
            Self::Ids(ranges) => {
                for r in *ranges {
                    let from = inner.rule_ids.partition_point(|(id, _)| *id < r.start);
                    for (id, i) in inner.rule_ids.get(from..).unwrap_or_default() {
                        if *id > r.end {
                            break;
                        }
                        bits.insert(*i as usize);
                    }
                }
            }
            Self::Tag(t) => {
                for i in inner
                    .rule_tags
                    .get(&t.to_ascii_lowercase())
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    bits.insert(*i as usize);
                }
            }
            Self::Msg(m) => {
                for (i, rule) in inner.rules.iter().enumerate() {
                    if rule.msg_text.as_deref() == Some(m) {
                        bits.insert(i);
                    }
                }
            }
        }
        bits
    }
}

/// A set of rules, by index in the rule set.
#[derive(Debug, Clone, Default)]
struct RuleBits(Vec<u64>);

impl RuleBits {
    fn insert(&mut self, i: usize) {
        let w = i / 64;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        if let Some(word) = self.0.get_mut(w) {
            *word |= 1 << (i % 64);
        }
    }

    fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn union(&mut self, other: &Self) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (w, o) in self.0.iter_mut().zip(&other.0) {
            *w |= o;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Allow {
    #[default]
    None,
    Phase,
    Request,
    All,
}

/// Per-transaction engine state changed by `ctl:` and by processing.
#[derive(Debug)]
struct State {
    engine: EngineMode,
    request_body_access: bool,
    response_body_access: bool,
    body_processor: Option<String>,
    force_body_variable: bool,
    audit_engine: AuditEngine,
    request_body_limit: u64,
    /// The rules removed by `ctl:ruleRemoveBy*`.
    removed: RuleBits,
    /// The variables removed from rules by `ctl:ruleRemoveTargetBy*`, with those rules.
    removed_targets: Vec<(RuleBits, CVar)>,
    allow: Allow,
    interrupted: Option<Interruption>,
    phases_done: usize,
    body_over_limit: bool,
    resp_body_over_limit: bool,
}

/// See [`Transaction::prefilter_family`].
type FamSteps = (
    Vec<Option<u32>>,
    Vec<(Transformation, Option<u32>, Option<u32>)>,
);

/// The skip state of a phase's loop over its entries (`skip`, `skipAfter`).
#[derive(Debug, Default)]
struct Skips<'r> {
    /// The marker a `skipAfter` skips to.
    to: Option<&'r str>,
    /// The rules a `skip` still skips.
    n: u32,
}

impl<'r> Skips<'r> {
    /// The rule (index) `entry` stands for, unless it is a marker (which ends a `skipAfter`
    /// to it) or skipped.
    fn rule(&mut self, entry: &'r Entry) -> Option<usize> {
        match entry {
            Entry::Marker(name) => {
                if self.to == Some(name.as_ref()) {
                    self.to = None;
                }
                None
            }
            Entry::Rule(_) if self.to.is_some() => None,
            Entry::Rule(_) if self.n > 0 => {
                self.n -= 1;
                None
            }
            Entry::Rule(idx) => Some(*idx),
        }
    }

    /// After `rule` matched: its `skipAfter` and `skip` take effect.
    fn matched(&mut self, rule: &'r Rule) {
        if let Some(m) = &rule.skip_after {
            self.to = Some(m.as_str());
        }
        if rule.skip > 0 {
            self.n = rule.skip;
        }
    }
}

static TX_COUNTER: AtomicU64 = AtomicU64::new(1);

/// One HTTP transaction.
#[derive(Debug)]
pub struct Transaction {
    ruleset: Ruleset,
    data: TxData,
    cache: TCache,
    scratch: TCache,
    state: State,
    /// The matched rules (their strings are reused by the next transaction on the thread).
    matched: Reuse<MatchedRule>,
    /// The allocation of the value list of [`Transaction::eval_link`], kept between links.
    vals_buf: Vec<Val<'static>>,
    /// Per prefilter group, the members whose factors occur in this phase's values.
    pre_bits: Vec<u64>,
    /// Per prefilter group, whether `pre_bits` holds its answer for this phase.
    pre_done: Vec<bool>,
    /// Scratch list of [`Transaction::prefilter_family`]: a value's distinct transformed
    /// forms (cache results) with the groups that inspect each.
    fam_seen: Vec<(Option<u32>, u64)>,
    /// Scratch lists of [`Transaction::prefilter_family`]: a value's result per pipeline node
    /// of the family, and the steps that changed their source.
    fam_steps: FamSteps,
    /// The values that matched the link being evaluated.
    hits: Reuse<Hit>,
    /// Scratch buffers of `setvar` (the expanded name and value).
    key_buf: Vec<u8>,
    val_buf: Vec<u8>,
}

/// The buffers of a finished transaction, for the next one on the thread (no allocation, and
/// no large one that would make the allocator consolidate its free lists, per transaction).
#[derive(Default)]
struct Spare {
    matched: Reuse<MatchedRule>,
    vals_buf: Vec<Val<'static>>,
    pre_bits: Vec<u64>,
    pre_done: Vec<bool>,
    fam_seen: Vec<(Option<u32>, u64)>,
    fam_steps: FamSteps,
    hits: Reuse<Hit>,
    key_buf: Vec<u8>,
    val_buf: Vec<u8>,
}

thread_local! {
    static SPARES: std::cell::RefCell<Vec<Spare>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Spare buffer sets kept per thread: one per transaction in flight on the thread. A gateway
/// worker has a transaction open for each request waiting on its upstream (25 per worker with
/// wrk's 50 connections on two workers): with 4 kept, more than half of the transactions found
/// none and built their buffers anew (two 32 KiB transformation caches zeroed, a TX map of 128
/// entries), and the finished ones were freed.
const SPARES_MAX: usize = 32;

impl Drop for Transaction {
    fn drop(&mut self) {
        std::mem::take(&mut self.cache).recycle();
        std::mem::take(&mut self.scratch).recycle();
        recycle_tx_map(std::mem::take(&mut self.data.tx));
        let mut matched = std::mem::take(&mut self.matched);
        matched.clear();
        let mut hits = std::mem::take(&mut self.hits);
        hits.clear();
        let spare = Spare {
            matched,
            vals_buf: recycle_vals(std::mem::take(&mut self.vals_buf)),
            pre_bits: std::mem::take(&mut self.pre_bits),
            pre_done: std::mem::take(&mut self.pre_done),
            fam_seen: std::mem::take(&mut self.fam_seen),
            fam_steps: std::mem::take(&mut self.fam_steps),
            hits,
            key_buf: std::mem::take(&mut self.key_buf),
            val_buf: std::mem::take(&mut self.val_buf),
        };
        SPARES.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < SPARES_MAX {
                p.push(spare);
            }
        });
    }
}

/// An empty vector with the allocation of `v` (the element type differs only in lifetime, so
/// the in-place collection reuses the buffer).
fn recycle_vals<'b>(mut v: Vec<Val<'_>>) -> Vec<Val<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("cleared")).collect()
}

/// A value that matched (its buffers are reused from rule to rule, see [`Reuse`]).
#[derive(Debug, Default)]
struct Hit {
    name: Vec<u8>,
    value: Vec<u8>,
    captures: Option<Vec<Vec<u8>>>,
}

/// Macro expansion against the transaction data and the current rule.
struct Ctx<'a> {
    data: &'a TxData,
    rule: Option<&'a Rule>,
}

impl Expand for Ctx<'_> {
    fn expand_cow<'s>(&'s self, m: &MacroString) -> Cow<'s, [u8]> {
        // `%{tx.name}` alone (`@within %{tx.allowed_methods}`): the value itself.
        if let [
            MacroPart::Var {
                collection,
                key: Some(key),
            },
        ] = m.parts.as_slice()
            && collection == "TX"
            && !key.bytes().any(|b| b.is_ascii_uppercase())
        {
            return Cow::Borrowed(self.data.tx.get(key.as_bytes()).unwrap_or_default());
        }
        Cow::Owned(self.expand(m))
    }

    fn expand_into(&self, m: &MacroString, out: &mut Vec<u8>) {
        for part in &m.parts {
            match part {
                MacroPart::Text(t) => out.extend_from_slice(t.as_bytes()),
                MacroPart::Var { collection, key } => {
                    self.lookup_into(collection, key.as_deref(), out);
                }
            }
        }
    }
}

impl Ctx<'_> {
    /// Appends the value of `%{collection.key}` to `out`.
    fn lookup_into(&self, collection: &str, key: Option<&str>, out: &mut Vec<u8>) {
        let meta = |m: &Option<MacroString>, out: &mut Vec<u8>| {
            if let Some(m) = m {
                Ctx {
                    data: self.data,
                    rule: None,
                }
                .expand_into(m, out);
            }
        };
        match (collection, key) {
            ("RULE", key) => {
                let Some(rule) = self.rule else {
                    return;
                };
                let key = key.unwrap_or_default();
                let is = |name: &str| key.eq_ignore_ascii_case(name);
                if is("id") {
                    out.extend_from_slice(rule.id.to_string().as_bytes());
                } else if is("msg") {
                    meta(&rule.msg, out);
                } else if is("severity") {
                    if let Some(s) = rule.severity {
                        out.extend_from_slice(s.level().to_string().as_bytes());
                    }
                } else if is("phase") {
                    out.extend_from_slice(rule.phase.to_string().as_bytes());
                } else if is("ver") {
                    out.extend_from_slice(rule.ver.as_deref().unwrap_or_default().as_bytes());
                } else if is("logdata") {
                    meta(&rule.logdata, out);
                }
            }
            ("TX", Some(key)) => {
                // The common case (`%{tx.critical_anomaly_score}`): one map lookup, no copies
                // of the key unless it has upper-case letters.
                let v = if key.bytes().any(|b| b.is_ascii_uppercase()) {
                    self.data.tx.get(key.to_ascii_lowercase().as_bytes())
                } else {
                    self.data.tx.get(key.as_bytes())
                };
                if let Some(v) = v {
                    out.extend_from_slice(v);
                }
            }
            ("MATCHED_VAR", None) => out.extend_from_slice(&self.data.matched_var),
            ("MATCHED_VAR_NAME", None) => out.extend_from_slice(&self.data.matched_var_name),
            _ => {
                let var = CVar {
                    coll: Coll::from_name(collection),
                    sel: match key {
                        Some(k) => Sel::Key(k.to_ascii_lowercase().into_bytes()),
                        None => Sel::All,
                    },
                    count: false,
                };
                let mut vals = Vec::new();
                self.data.collect(&var, &mut vals);
                if let Some(v) = vals.first() {
                    out.extend_from_slice(&v.data);
                }
            }
        }
    }
}

/// Sets `key` of a collection map to `value`, reusing the existing entry's allocation.
fn set_value(map: &mut HashMap<String, Vec<u8>>, key: &str, value: &[u8]) {
    match map.get_mut(key) {
        Some(v) => {
            v.clear();
            v.extend_from_slice(value);
        }
        None => {
            map.insert(key.to_owned(), value.to_vec());
        }
    }
}

/// The names `TX:0` to `TX:9` of the capture variables.
const CAPTURE_KEYS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Replaces `out` with `b` as text (invalid UTF-8 replaced), keeping its allocation.
fn set_text(out: &mut String, b: &[u8]) {
    out.clear();
    match std::str::from_utf8(b) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(b)),
    }
}

/// Replaces `out` with the expansion of `m` (empty without one), through the buffer `buf`.
fn expand_text(ctx: &Ctx<'_>, m: Option<&MacroString>, buf: &mut Vec<u8>, out: &mut String) {
    buf.clear();
    if let Some(m) = m {
        ctx.expand_into(m, buf);
    }
    set_text(out, buf);
}

fn lossy(b: &[u8]) -> String {
    // `from_utf8` checks ASCII a word at a time; the lossy path only for invalid input.
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

thread_local! {
    /// TX maps of finished transactions, kept with their entries (see [`TxMap`]).
    static TX_MAPS: std::cell::RefCell<Vec<TxMap>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// TX maps kept per thread for reuse (as many as [`SPARES_MAX`]).
const TX_MAPS_MAX: usize = SPARES_MAX;

/// An empty TX map, from this thread's pool when there is one.
fn take_tx_map() -> TxMap {
    TX_MAPS
        .with(|p| p.borrow_mut().pop())
        // CRS sets about a hundred TX variables per transaction: no rehashing on the way.
        .unwrap_or_else(|| TxMap::with_capacity(128))
}

/// Returns `map` (emptied) to this thread's pool.
fn recycle_tx_map(mut map: TxMap) {
    map.reset();
    TX_MAPS.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < TX_MAPS_MAX {
            p.push(map);
        }
    });
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        if c == b'%'
            && let Some(v) = input.get(i + 1..i + 3).and_then(|d| {
                let s = std::str::from_utf8(d).ok()?;
                u8::from_str_radix(s, 16).ok()
            })
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

impl Transaction {
    /// A new transaction over `ruleset` (see also [`Ruleset::transaction`]).
    pub fn new(ruleset: Ruleset) -> Self {
        let c = &ruleset.inner.config;
        let n = TX_COUNTER.fetch_add(1, Ordering::Relaxed);
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let state = State {
            engine: c.engine,
            request_body_access: c.request_body_access,
            response_body_access: c.response_body_access,
            body_processor: None,
            force_body_variable: false,
            audit_engine: c.audit_engine,
            request_body_limit: c.request_body_limit,
            removed: RuleBits::default(),
            removed_targets: Vec::new(),
            allow: Allow::None,
            interrupted: None,
            phases_done: 0,
            body_over_limit: false,
            resp_body_over_limit: false,
        };
        let data = TxData {
            unique_id: format!("{epoch:x}{n:08x}").into_bytes(),
            start_epoch: epoch,
            tx: take_tx_map(),
            ..TxData::default()
        };
        let mut spare = SPARES.with(|p| p.borrow_mut().pop()).unwrap_or_default();
        spare.pre_bits.clear();
        spare.pre_bits.resize(ruleset.inner.pre_words, 0);
        spare.pre_done.clear();
        spare.pre_done.resize(ruleset.inner.groups.len(), false);
        Self {
            data,
            cache: TCache::take(),
            scratch: TCache::take(),
            state,
            matched: spare.matched,
            vals_buf: spare.vals_buf,
            pre_bits: spare.pre_bits,
            pre_done: spare.pre_done,
            fam_seen: spare.fam_seen,
            fam_steps: spare.fam_steps,
            hits: spare.hits,
            key_buf: spare.key_buf,
            val_buf: spare.val_buf,
            ruleset,
        }
    }

    /// Sets the connection's addresses (`REMOTE_ADDR`, `REMOTE_PORT`, `SERVER_ADDR`, ...).
    pub fn process_connection(
        &mut self,
        client_ip: &str,
        client_port: u16,
        server_ip: &str,
        server_port: u16,
    ) {
        self.cache.clear();
        self.data.remote_addr = client_ip.as_bytes().to_vec();
        self.data.remote_port = client_port.to_string().into_bytes();
        self.data.server_addr = server_ip.as_bytes().to_vec();
        self.data.server_port = server_port.to_string().into_bytes();
    }

    /// Sets the request line: the URI as received (origin, absolute or authority form), the
    /// method and the version (`HTTP/1.1` or `1.1`). Query arguments become `ARGS_GET`.
    pub fn process_uri(&mut self, uri: &str, method: &str, http_version: &str) {
        self.process_uri_bytes(uri.as_bytes(), method.as_bytes(), http_version.as_bytes());
    }

    /// [`Transaction::process_uri`] on raw bytes.
    pub fn process_uri_bytes(&mut self, uri: &[u8], method: &[u8], http_version: &[u8]) {
        self.cache.clear();
        let d = &mut self.data;
        d.method = method.to_vec();
        d.uri_raw = uri.to_vec();
        d.protocol = if http_version.starts_with(b"HTTP/") || http_version.is_empty() {
            http_version.to_vec()
        } else {
            [b"HTTP/".as_slice(), http_version].concat()
        };
        let mut line = method.to_vec();
        line.push(b' ');
        line.extend_from_slice(uri);
        if !d.protocol.is_empty() {
            line.push(b' ');
            line.extend_from_slice(&d.protocol);
        }
        d.request_line = line;
        let no_frag = match memchr::memchr(b'#', uri) {
            Some(p) => uri.get(..p).unwrap_or_default(),
            None => uri,
        };
        // Absolute form: keep the path and query (as ModSecurity v3 does).
        let mut rel = no_frag;
        if !rel.starts_with(b"/")
            && let Some(p) = memchr::memmem::find(rel, b"://")
        {
            let after = rel.get(p + 3..).unwrap_or_default();
            rel = match memchr::memchr(b'/', after) {
                Some(s) => after.get(s..).unwrap_or_default(),
                None => rel,
            };
        }
        d.uri = rel.to_vec();
        let (path, query) = match memchr::memchr(b'?', rel) {
            Some(p) => (
                rel.get(..p).unwrap_or_default(),
                Some(rel.get(p + 1..).unwrap_or_default()),
            ),
            None => (rel, None),
        };
        d.filename = percent_decode(path);
        d.basename = match d.filename.iter().rposition(|b| *b == b'/' || *b == b'\\') {
            Some(p) => d.filename.get(p + 1..).unwrap_or_default().to_vec(),
            None => d.filename.clone(),
        };
        d.query_string = query.unwrap_or_default().to_vec();
        if let Some(q) = query {
            let sep = self.ruleset.inner.config.argument_separator;
            let (args, err) = body::urlencoded::parse(q, sep);
            if err {
                d.urlencoded_error = true;
            }
            for (name, value) in args {
                d.args.push(ArgEntry {
                    name,
                    value,
                    post: false,
                });
            }
        }
    }

    /// Adds a request header (repeatable; names compare case-insensitively).
    pub fn add_request_header(&mut self, name: &str, value: &str) {
        self.add_request_header_bytes(name.as_bytes(), value.as_bytes());
    }

    /// [`Transaction::add_request_header`] on raw bytes.
    pub fn add_request_header_bytes(&mut self, name: &[u8], value: &[u8]) {
        self.cache.clear();
        if name.eq_ignore_ascii_case(b"cookie") {
            for c in value.split(|b| *b == b';') {
                let c = c.trim_ascii_start();
                if c.is_empty() {
                    continue;
                }
                let (k, v) = match memchr::memchr(b'=', c) {
                    Some(p) => (
                        c.get(..p).unwrap_or_default(),
                        c.get(p + 1..).unwrap_or_default(),
                    ),
                    None => (c, &b""[..]),
                };
                self.data.cookies.push((k.to_vec(), v.to_vec()));
            }
        }
        self.data.req_headers.push((name.to_vec(), value.to_vec()));
    }

    fn request_header(&self, name: &[u8]) -> Option<&[u8]> {
        self.data
            .req_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Runs phase 1 (request headers).
    pub fn process_request_headers(&mut self) -> Option<Interruption> {
        if self.state.phases_done >= 1 {
            return self.state.interrupted.clone();
        }
        let ct = self
            .request_header(b"content-type")
            .map(<[u8]>::to_ascii_lowercase)
            .unwrap_or_default();
        let processor = if ct.starts_with(b"application/x-www-form-urlencoded") {
            Some("URLENCODED")
        } else if ct.starts_with(b"multipart/form-data") {
            Some("MULTIPART")
        } else {
            None
        };
        if let Some(p) = processor {
            self.cache.clear();
            self.state.body_processor = Some(p.to_owned());
            self.data.reqbody_processor = p.as_bytes().to_vec();
        }
        self.run_phase(1)
    }

    /// Buffers request body bytes (up to the body limit).
    pub fn append_request_body(&mut self, chunk: &[u8]) {
        self.cache.clear();
        let limit = usize::try_from(self.state.request_body_limit).unwrap_or(usize::MAX);
        let room = limit.saturating_sub(self.data.req_body.len());
        if chunk.len() > room {
            self.state.body_over_limit = true;
            self.data
                .req_body
                .extend_from_slice(chunk.get(..room).unwrap_or_default());
        } else {
            self.data.req_body.extend_from_slice(chunk);
        }
    }

    /// Parses the buffered request body (per the body processor) and runs phase 2.
    pub fn process_request_body(&mut self) -> Option<Interruption> {
        if self.state.phases_done >= 2 {
            return self.state.interrupted.clone();
        }
        if let Some(i) = self.catch_up(1) {
            return Some(i);
        }
        // The cache stays valid from phase 1: body processing only adds values (new
        // allocations), and every setter that frees or rewrites a value clears the cache.
        let cfg = &self.ruleset.inner.config;
        if self.state.body_over_limit && cfg.request_body_limit_action == BodyLimitAction::Reject {
            self.cache.clear();
            self.data.reqbody_error = true;
            self.data.reqbody_error_msg =
                b"Request body is larger than the configured limit".to_vec();
            if self.state.engine == EngineMode::On {
                let i = Interruption {
                    status: 413,
                    redirect_url: None,
                    action: InterruptionAction::Deny,
                    rule_id: 0,
                };
                self.state.interrupted = Some(i.clone());
                self.state.phases_done = 2;
                return Some(i);
            }
        }
        self.data.req_body_visible = self.state.force_body_variable
            || self.state.body_processor.as_deref().is_some_and(|p| {
                p.eq_ignore_ascii_case("URLENCODED") || p.eq_ignore_ascii_case("JSON")
            });
        if self.state.request_body_access && !self.data.req_body.is_empty() {
            let processor = self.state.body_processor.clone();
            let ct = self
                .request_header(b"content-type")
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let sep = cfg.argument_separator;
            let depth = cfg.json_depth_limit;
            body::process(&mut self.data, processor.as_deref(), &ct, sep, depth);
        }
        self.run_phase(2)
    }

    /// Adds a response header.
    pub fn add_response_header(&mut self, name: &str, value: &str) {
        self.cache.clear();
        self.data
            .resp_headers
            .push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
    }

    /// Runs phase 3 (response headers) for `status` and `protocol` (`HTTP/1.1`).
    pub fn process_response_headers(
        &mut self,
        status: u16,
        protocol: &str,
    ) -> Option<Interruption> {
        if self.state.phases_done >= 3 {
            return self.state.interrupted.clone();
        }
        if let Some(i) = self.catch_up(2) {
            return Some(i);
        }
        self.cache.clear();
        self.data.resp_status = status.to_string().into_bytes();
        self.data.resp_protocol = protocol.as_bytes().to_vec();
        self.run_phase(3)
    }

    /// Whether the response body should be given to the engine (body access on and a MIME
    /// type in `SecResponseBodyMimeType`).
    pub fn response_body_wanted(&self) -> bool {
        if !self.state.response_body_access {
            return false;
        }
        let ct = self
            .data
            .resp_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(b"content-type"))
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default();
        let mime = ct
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        self.ruleset
            .inner
            .config
            .response_body_mime_types
            .iter()
            .any(|m| m.as_bytes().eq_ignore_ascii_case(mime))
    }

    /// Buffers response body bytes (up to the response body limit).
    pub fn append_response_body(&mut self, chunk: &[u8]) {
        self.cache.clear();
        let limit =
            usize::try_from(self.ruleset.inner.config.response_body_limit).unwrap_or(usize::MAX);
        let room = limit.saturating_sub(self.data.resp_body.len());
        if chunk.len() > room {
            self.state.resp_body_over_limit = true;
        }
        self.data
            .resp_body
            .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }

    /// Runs phase 4 (response body).
    pub fn process_response_body(&mut self) -> Option<Interruption> {
        if self.state.phases_done >= 4 {
            return self.state.interrupted.clone();
        }
        if let Some(i) = self.catch_up(3) {
            return Some(i);
        }
        if !self.response_body_wanted() {
            self.data.resp_body.clear();
        }
        self.cache.clear();
        self.run_phase(4)
    }

    /// Runs phase 5 (logging). Always runs, even after an interruption.
    pub fn process_logging(&mut self) {
        if self.state.phases_done >= 5 {
            return;
        }
        let _ = self.catch_up(4);
        let saved = self.state.interrupted.take();
        let allow = self.state.allow;
        if allow == Allow::Request || allow == Allow::Phase {
            self.state.allow = Allow::None;
        }
        self.run_phase(5);
        self.state.interrupted = saved;
    }

    /// The rules that matched so far, in order.
    pub fn matched_rules(&self) -> &[MatchedRule] {
        self.matched.as_slice()
    }

    /// The interruption, if any phase decided one.
    pub fn interruption(&self) -> Option<&Interruption> {
        self.state.interrupted.as_ref()
    }

    /// The transaction's `UNIQUE_ID`.
    pub fn unique_id(&self) -> String {
        lossy(&self.data.unique_id)
    }

    /// A `TX` variable (for tests and for the audit trail: `tx.blocking_inbound_anomaly_score`).
    pub fn tx_var(&self, name: &str) -> Option<String> {
        self.data
            .tx
            .get(name.to_ascii_lowercase().as_bytes())
            .map(lossy)
    }

    /// Whether the audit engine (`SecAuditEngine`, `ctl:auditEngine`) wants this transaction
    /// recorded.
    pub fn audit_wanted(&self) -> bool {
        match self.state.audit_engine {
            AuditEngine::On => true,
            AuditEngine::Off => false,
            AuditEngine::RelevantOnly => self.matched.as_slice().iter().any(|m| m.logged),
        }
    }

    /// Runs the phases before `phase` that have not run yet.
    fn catch_up(&mut self, phase: usize) -> Option<Interruption> {
        if self.state.phases_done < 1
            && phase >= 1
            && let Some(i) = self.process_request_headers()
        {
            return Some(i);
        }
        if self.state.phases_done < 2
            && phase >= 2
            && let Some(i) = self.process_request_body()
        {
            return Some(i);
        }
        if self.state.phases_done < 3 && phase >= 3 {
            let status = std::str::from_utf8(&self.data.resp_status)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(200);
            let proto = lossy(&self.data.resp_protocol);
            if let Some(i) = self.process_response_headers(status, &proto) {
                return Some(i);
            }
        }
        self.state.interrupted.clone()
    }

    fn run_phase(&mut self, phase: usize) -> Option<Interruption> {
        self.state.phases_done = self.state.phases_done.max(phase);
        // Prefilter answers hold for one phase (the data may change between phases).
        self.pre_done.fill(false);
        if self.state.interrupted.is_some() {
            return self.state.interrupted.clone();
        }
        if self.state.allow == Allow::Phase {
            self.state.allow = Allow::None;
        }
        match self.state.allow {
            Allow::All if phase < 5 => return None,
            Allow::Request if phase <= 2 => return None,
            _ => {}
        }
        let ruleset = self.ruleset.clone();
        let inner = &ruleset.inner;
        let entries = inner.phases.get(phase - 1)?;
        // Phase 1 starts from the setup rules' outcome (see `crate::preset`).
        let preset = if phase == 1 {
            inner.preset.as_ref()
        } else {
            None
        };
        if let Some(p) = preset {
            for (key, value) in &p.tx {
                self.data.tx.set(key, value);
            }
        }
        let mut skips = Skips::default();
        for (pos, entry) in entries.iter().enumerate() {
            if self.state.engine == EngineMode::Off {
                break;
            }
            let Some(idx) = skips.rule(entry) else {
                continue;
            };
            let Some(rule) = inner.rules.get(idx) else {
                continue;
            };
            if rule.id != 0 && self.state.removed.contains(idx) {
                continue;
            }
            let matched = match preset.and_then(|p| p.replay.get(pos)) {
                Some(Replay::NoMatch) => false,
                Some(Replay::Match(recorded)) => {
                    self.replay(rule, recorded);
                    true
                }
                Some(Replay::Evaluate) | None => self.eval_rule(idx, rule, phase),
            };
            if !matched {
                continue;
            }
            skips.matched(rule);
            if self.state.engine != EngineMode::On {
                continue;
            }
            let d = match &rule.disruptive {
                Disruptive::Block => &rule.block_as,
                other => other,
            };
            let ctx = Ctx {
                data: &self.data,
                rule: Some(rule),
            };
            let interruption = match d {
                Disruptive::Pass | Disruptive::Block => None,
                Disruptive::Deny => Some(Interruption {
                    status: rule.status.unwrap_or(403),
                    redirect_url: None,
                    action: InterruptionAction::Deny,
                    rule_id: rule.id,
                }),
                Disruptive::Drop => Some(Interruption {
                    status: rule.status.unwrap_or(403),
                    redirect_url: None,
                    action: InterruptionAction::Drop,
                    rule_id: rule.id,
                }),
                Disruptive::Redirect(url) => Some(Interruption {
                    status: rule
                        .status
                        .filter(|s| matches!(s, 301 | 302 | 303 | 307 | 308))
                        .unwrap_or(302),
                    redirect_url: Some(lossy(&ctx.expand(url))),
                    action: InterruptionAction::Redirect,
                    rule_id: rule.id,
                }),
                Disruptive::Allow(scope) => {
                    self.state.allow = match scope {
                        AllowScope::Phase => Allow::Phase,
                        AllowScope::Request => Allow::Request,
                        AllowScope::Transaction => Allow::All,
                    };
                    break;
                }
            };
            if let Some(i) = interruption {
                self.state.interrupted = Some(i.clone());
                return Some(i);
            }
        }
        None
    }

    /// What a setup rule's match did (recorded by [`Transaction::simulate_preset`]): its
    /// record, the matched variable it left and the highest severity.
    fn replay(&mut self, rule: &Rule, r: &Recorded) {
        for link in &rule.links {
            for a in &link.actions {
                if matches!(a, RunAction::Ctl(_)) {
                    self.run_action(rule, a);
                }
            }
        }
        self.data.matched_var.clone_from(&r.matched_var);
        self.data.matched_var_name.clone_from(&r.matched_var_name);
        if let Some(s) = rule.severity {
            let l = s.level();
            if self.data.highest_severity.is_none_or(|h| l < h) {
                self.data.highest_severity = Some(l);
            }
        }
        let rec = &r.record;
        self.matched.push_with(|m| {
            m.id = rec.id;
            m.phase = rec.phase;
            m.msg.clone_from(&rec.msg);
            m.logdata.clone_from(&rec.logdata);
            m.severity = rec.severity;
            m.tags.clone_from(&rec.tags);
            m.matched_var_name.clone_from(&rec.matched_var_name);
            m.logged = rec.logged;
        });
    }

    /// Runs the setup rules at the start of phase 1 of `ruleset` against an empty
    /// transaction and records their outcome (see [`crate::preset`]); `None` when there are
    /// none, or when they would interrupt or allow every transaction.
    pub(crate) fn simulate_preset(ruleset: &Ruleset) -> Option<Preset> {
        let inner = ruleset.inner.clone();
        let entries = inner.phases.first()?;
        let mut tx = Self::new(ruleset.clone());
        let mut replay = Vec::new();
        let mut matched_any = false;
        // The same loop as `run_phase`'s, so that skips fall the same way.
        let mut skips = Skips::default();
        for entry in entries {
            if tx.state.engine == EngineMode::Off {
                break;
            }
            let Some(idx) = skips.rule(entry) else {
                replay.push(Replay::NoMatch);
                continue;
            };
            let Some(rule) = inner.rules.get(idx) else {
                replay.push(Replay::NoMatch);
                continue;
            };
            if rule.id != 0 && tx.state.removed.contains(idx) {
                replay.push(Replay::NoMatch);
                continue;
            }
            if crate::preset::rule_is_neutral(rule) {
                replay.push(Replay::Evaluate);
                continue;
            }
            if !crate::preset::rule_is_constant(rule) {
                // Still decided when its first link reads only TX and does not match.
                match rule.links.first() {
                    Some(first)
                        if !first.no_vars
                            && crate::preset::link_is_constant(first)
                            && !tx.eval_link(idx, rule, first) =>
                    {
                        replay.push(Replay::NoMatch);
                        continue;
                    }
                    _ => break,
                }
            }
            if !tx.eval_rule(idx, rule, 1) {
                replay.push(Replay::NoMatch);
                continue;
            }
            let disruptive = match &rule.disruptive {
                Disruptive::Block => &rule.block_as,
                other => other,
            };
            if tx.state.engine == EngineMode::On && !matches!(disruptive, Disruptive::Pass) {
                // Every transaction would be interrupted or allowed here.
                return None;
            }
            let record = tx.matched.as_slice().last()?;
            replay.push(Replay::Match(Box::new(Recorded {
                record: record.clone(),
                matched_var: tx.data.matched_var.clone(),
                matched_var_name: tx.data.matched_var_name.clone(),
            })));
            matched_any = true;
            skips.matched(rule);
        }
        if !matched_any {
            return None;
        }
        let tx_vars = tx
            .data
            .tx
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        Some(Preset {
            replay,
            tx: tx_vars,
        })
    }

    /// Evaluates a rule; on a full match runs its actions and records it.
    fn eval_rule(&mut self, idx: usize, rule: &Rule, phase: usize) -> bool {
        self.data.matched_vars.clear();
        // Per matched value of each link: captures, MATCHED_VAR and the link's `setvar`s (a
        // chain's next link may read what they set, CRS 920420; counters advance per value,
        // CRS 922150). The other actions run once the whole chain matched.
        for link in &rule.links {
            if !link.pre.is_empty() && !link.pre.iter().any(|&(g, m)| self.prefilter_pass(g, m)) {
                // Debug builds (the test suites) check that the skipped link cannot match.
                #[cfg(debug_assertions)]
                assert!(
                    !self.eval_link(idx, rule, link),
                    "prefilter skipped rule {} whose link matches",
                    rule.id
                );
                return false;
            }
            if !self.eval_link(idx, rule, link) {
                return false;
            }
            let hits = std::mem::take(&mut self.hits);
            for hit in hits.as_slice() {
                if let Some(caps) = &hit.captures {
                    for (key, c) in CAPTURE_KEYS.iter().zip(caps) {
                        self.data.tx.set(key.as_bytes(), c);
                    }
                }
                self.data.matched_var_name.clone_from(&hit.name);
                self.data.matched_var.clone_from(&hit.value);
                self.data.matched_vars.push_with(|(n, v)| {
                    n.clone_from(&hit.name);
                    v.clone_from(&hit.value);
                });
                for a in &link.actions {
                    if matches!(a, RunAction::SetVar { .. }) {
                        self.run_action(rule, a);
                    }
                }
            }
            self.hits = hits;
        }
        for link in &rule.links {
            for a in &link.actions {
                if !matches!(a, RunAction::SetVar { .. }) {
                    self.run_action(rule, a);
                }
            }
        }
        if let Some(s) = rule.severity {
            let l = s.level();
            if self.data.highest_severity.is_none_or(|h| l < h) {
                self.data.highest_severity = Some(l);
            }
        }
        let ctx = Ctx {
            data: &self.data,
            rule: Some(rule),
        };
        let buf = &mut self.val_buf;
        let data = &self.data;
        let logged = rule.log && rule.id != 0;
        // `msg`, `logdata` and the matched variable's name are read where a rule logs or
        // interrupts. The quiet rules that pass (CRS's setup, its paranoia-level skips and score
        // keeping: about ninety in a clean request) are recorded without them (2.5% of a clean
        // request's instructions).
        let described = logged || !matches!(rule.disruptive, Disruptive::Pass);
        self.matched.push_with(|m| {
            m.id = rule.id;
            m.phase = u8::try_from(phase).unwrap_or(0);
            if described {
                expand_text(&ctx, rule.msg.as_ref(), buf, &mut m.msg);
                expand_text(&ctx, rule.logdata.as_ref(), buf, &mut m.logdata);
                set_text(&mut m.matched_var_name, &data.matched_var_name);
            } else {
                m.msg.clear();
                m.logdata.clear();
                m.matched_var_name.clear();
            }
            m.severity = rule.severity;
            m.tags.clone_from(&rule.tags);
            m.logged = logged;
        });
        true
    }

    /// Whether member `m` of prefilter group `g` may match in this phase: whether one of its
    /// factors occurs in one of the group's (transformed) values. The group's values are
    /// collected, transformed (through the shared cache) and scanned once per phase.
    #[inline]
    fn prefilter_pass(&mut self, g: u32, m: u32) -> bool {
        let inner = &*self.ruleset.inner;
        let Some(group) = inner.groups.get(g as usize) else {
            return true;
        };
        let word = group.off + (m / 64) as usize;
        let bit = 1u64 << (m % 64);
        if !self.pre_done.get(g as usize).copied().unwrap_or(false) {
            self.prefilter_group(g);
        }
        self.pre_bits.get(word).is_none_or(|w| w & bit != 0)
    }

    /// Answers prefilter group `g` for this phase (its members' bits in `pre_bits`).
    #[inline(never)]
    fn prefilter_group(&mut self, g: u32) {
        let inner = &*self.ruleset.inner;
        let Some(group) = inner.groups.get(g as usize) else {
            return;
        };
        if let Some(f) = group.family {
            self.prefilter_family(f);
            return;
        }
        let Some(ac) = &group.ac else {
            // No automaton (it could not be built): every member passes.
            if let Some(bits) = self.pre_bits.get_mut(group.off..group.off + group.words) {
                bits.fill(u64::MAX);
            }
            if let Some(d) = self.pre_done.get_mut(g as usize) {
                *d = true;
            }
            return;
        };
        let Some(bits) = self.pre_bits.get_mut(group.off..group.off + group.words) else {
            return;
        };
        bits.fill(0);
        let data = &self.data;
        let mut vals: Vec<Val<'_>> = recycle_vals(std::mem::take(&mut self.vals_buf));
        for v in &group.vars {
            data.collect(v, &mut vals);
        }
        self.scratch.clear();
        let first = if group.multi { 0 } else { group.path.len() };
        // Once every member's bit is set, no further value can change the answer.
        let full = group.members as usize / 64;
        let rest = group.members % 64;
        let all_set = |bits: &[u64]| {
            bits.iter().take(full).all(|w| *w == u64::MAX)
                && (rest == 0 || bits.get(full).is_some_and(|w| w.count_ones() >= rest))
        };
        'values: for val in &vals {
            let input: &[u8] = &val.data;
            let memo = val.stable && matches!(val.data, Cow::Borrowed(_));
            let mut prev: Option<Option<u32>> = None;
            for k in first..=group.path.len() {
                let path = group.path.get(..k).unwrap_or_default();
                let c = if memo {
                    &mut self.cache
                } else {
                    &mut self.scratch
                };
                // No transformation (`t:none`): the value itself, without a cache call.
                let r = if path.is_empty() {
                    None
                } else {
                    c.run(&inner.pipes, path, input, memo)
                };
                let value = c.get(r, input);
                // A value shorter than every factor, or a stage that left the value as the
                // previous one had it, cannot add an occurrence.
                if value.len() < group.min_len || prev.is_some_and(|p| c.get(p, input) == value) {
                    continue;
                }
                prev = Some(r);
                if group.members == 1 {
                    // One member: any occurrence settles it, the first one found is enough.
                    let mut found = false;
                    ac.scan(value, |_| {
                        found = true;
                        true
                    });
                    if found {
                        if let Some(w) = bits.first_mut() {
                            *w |= 1;
                        }
                        break 'values;
                    }
                    continue;
                }
                let pat_member = &group.pat_member;
                ac.scan(value, |p| {
                    let member = pat_member.get(p).copied().unwrap_or(0);
                    if let Some(w) = bits.get_mut((member / 64) as usize) {
                        *w |= 1u64 << (member % 64);
                    }
                    false
                });
                if all_set(bits) {
                    break 'values;
                }
            }
        }
        self.vals_buf = recycle_vals(vals);
        if let Some(d) = self.pre_done.get_mut(g as usize) {
            *d = true;
        }
    }

    /// Answers every group of family `f` for this phase (see [`crate::prefilter::Family`]):
    /// the family's values are collected once and transformed through each group's pipeline
    /// (through the shared cache); each distinct transformed value is scanned once with the
    /// family's automaton, and an occurrence counts for the groups that produced that value.
    fn prefilter_family(&mut self, f: u32) {
        let inner = &*self.ruleset.inner;
        let Some(fam) = inner.families.get(f as usize) else {
            return;
        };
        for g in &fam.groups {
            if let Some(group) = inner.groups.get(*g as usize)
                && let Some(b) = self.pre_bits.get_mut(group.off..group.off + group.words)
            {
                b.fill(0);
            }
            if let Some(d) = self.pre_done.get_mut(*g as usize) {
                *d = true;
            }
        }
        let data = &self.data;
        let mut vals: Vec<Val<'_>> = recycle_vals(std::mem::take(&mut self.vals_buf));
        data.collect(&fam.var, &mut vals);
        self.scratch.clear();
        // Per value: its distinct transformed forms, each with the groups (bits by place in
        // the family) that inspect it.
        let mut seen = std::mem::take(&mut self.fam_seen);
        let (mut res, mut changed) = std::mem::take(&mut self.fam_steps);
        for val in &vals {
            let input: &[u8] = &val.data;
            let memo = val.stable && matches!(val.data, Cow::Borrowed(_));
            let c = if memo {
                &mut self.cache
            } else {
                &mut self.scratch
            };
            seen.clear();
            // Every node of the family's pipelines, once, parents first.
            res.clear();
            changed.clear();
            // What other families and links learned about this value, and back.
            let known = if memo { c.same_of(input) } else { 0 };
            let mut same = known;
            for &(parent, node) in &fam.nodes {
                let src = match parent {
                    Some(p) => res.get(p as usize).copied().flatten(),
                    None => None,
                };
                let Some(p) = inner.pipes.get(node as usize) else {
                    res.push(src);
                    continue;
                };
                // Known to leave its source as it is: no call.
                let bit = 1u64.checked_shl(p.t as u32).unwrap_or(0);
                let known = match src {
                    None => same,
                    Some(i) => c.same_of_result(i),
                };
                res.push(if known & bit != 0 {
                    src
                } else {
                    c.step(p.t, src, input, &mut same, &mut changed)
                });
            }
            if memo && same != known {
                c.set_same(input, same);
            }
            // Each inspected stage's value, credited to the groups that inspect it; values
            // met before (the same result, or equal bytes) are scanned once.
            for &(stage, mask, min_len) in &fam.stages {
                let r = stage.and_then(|p| res.get(p as usize).copied().flatten());
                if let Some((last, m)) = seen.last_mut()
                    && *last == r
                {
                    *m |= mask;
                    continue;
                }
                let value = c.get(r, input);
                if value.len() < min_len {
                    continue;
                }
                match seen
                    .iter_mut()
                    .find(|(s, _)| *s == r || c.get(*s, input) == value)
                {
                    Some((_, m)) => *m |= mask,
                    None => seen.push((r, mask)),
                }
            }
            let pre_bits = &mut self.pre_bits;
            for (r, mask) in &seen {
                fam.ac.scan(c.get(*r, input), |p| {
                    let Some(&(a, b)) = fam.pat_targets.get(p) else {
                        return false;
                    };
                    for &(place, member) in
                        fam.targets.get(a as usize..b as usize).unwrap_or_default()
                    {
                        if mask & 1u64.checked_shl(place).unwrap_or(0) == 0 {
                            continue;
                        }
                        let Some(group) = fam
                            .groups
                            .get(place as usize)
                            .and_then(|g| inner.groups.get(*g as usize))
                        else {
                            continue;
                        };
                        if let Some(w) = pre_bits.get_mut(group.off + (member / 64) as usize) {
                            *w |= 1u64 << (member % 64);
                        }
                    }
                    false
                });
            }
        }
        self.fam_seen = seen;
        self.fam_steps = (res, changed);
        self.vals_buf = recycle_vals(vals);
    }

    /// Whether `link` matches; the values that match are left in `self.hits` (a `SecAction`
    /// link matches once, with no value).
    fn eval_link(&mut self, idx: usize, rule: &Rule, link: &Link) -> bool {
        let hits = &mut self.hits;
        hits.clear();
        if link.no_vars {
            hits.push_with(|h| {
                h.name.clear();
                h.value.clear();
                h.captures = None;
            });
            return true;
        }
        let pipes = &self.ruleset.inner.pipes;
        let data = &self.data;
        let mut vals: Vec<Val<'_>> = recycle_vals(std::mem::take(&mut self.vals_buf));
        for v in &link.vars {
            data.collect(v, &mut vals);
        }
        // `ctl:ruleRemoveTargetBy*` removals that apply to this rule.
        let removed_targets = &self.state.removed_targets;
        let runtime_excl = removed_targets.iter().any(|(rules, _)| rules.contains(idx));
        if !link.excl.is_empty() || runtime_excl {
            vals.retain(|v| {
                let excluded = link.excl.iter().any(|e| e.excludes(v.coll, &v.key))
                    || (runtime_excl
                        && removed_targets
                            .iter()
                            .any(|(rules, e)| rules.contains(idx) && e.excludes(v.coll, &v.key)));
                !excluded
            });
        }
        let ctx = Ctx {
            data,
            rule: Some(rule),
        };
        self.scratch.clear();
        let cache = &mut self.cache;
        let scratch = &mut self.scratch;
        let want_capture = link.capture && !link.negated;
        for val in &vals {
            let input: &[u8] = &val.data;
            let memo = val.stable && matches!(val.data, Cow::Borrowed(_));
            let first = if link.multi_match { 0 } else { link.path.len() };
            let c = if memo { &mut *cache } else { &mut *scratch };
            let mut prev: Option<Option<u32>> = None;
            for k in first..=link.path.len() {
                let path = link.path.get(..k).unwrap_or_default();
                let r = if path.is_empty() {
                    None
                } else {
                    c.run(pipes, path, input, memo)
                };
                let value = c.get(r, input);
                if link.multi_match {
                    // A stage that left the value as the previous one had it is not
                    // inspected twice.
                    if prev.is_some_and(|p| c.get(p, input) == value) {
                        continue;
                    }
                    prev = Some(r);
                }
                let mut m = OpMatch::default();
                let res = link.op.eval(value, &ctx, want_capture, &mut m);
                if res != link.negated {
                    hits.push_with(|h| {
                        val.write_full_name(&mut h.name);
                        h.value.clear();
                        h.value.extend_from_slice(value);
                        h.captures = (want_capture && !m.captures.is_empty()).then_some(m.captures);
                    });
                    if !link.multi_match {
                        break;
                    }
                }
            }
        }
        self.vals_buf = recycle_vals(vals);
        !self.hits.is_empty()
    }

    fn run_action(&mut self, rule: &Rule, a: &RunAction) {
        match a {
            RunAction::SetVar {
                collection,
                name,
                op,
                value,
            } => {
                let mut key = std::mem::take(&mut self.key_buf);
                let mut val = std::mem::take(&mut self.val_buf);
                key.clear();
                val.clear();
                let ctx = Ctx {
                    data: &self.data,
                    rule: Some(rule),
                };
                ctx.expand_into(name, &mut key);
                if *op != SetVarOp::Delete {
                    ctx.expand_into(value, &mut val);
                }
                key.make_ascii_lowercase();
                if std::str::from_utf8(&key).is_err() {
                    // Names are text: invalid UTF-8 is replaced, as in the other collections.
                    key = String::from_utf8_lossy(&key).into_owned().into_bytes();
                }
                let apply = |cur: &[u8], val: &[u8]| {
                    let d = crate::operators::to_int(val);
                    let cur = crate::operators::to_int(cur);
                    if *op == SetVarOp::Add {
                        cur.saturating_add(d)
                    } else {
                        cur.saturating_sub(d)
                    }
                };
                if collection == "TX" {
                    let tx = &mut self.data.tx;
                    match op {
                        SetVarOp::Set => tx.set(&key, &val),
                        SetVarOp::Delete => tx.remove(&key),
                        SetVarOp::Add | SetVarOp::Sub => {
                            let (cur, _) = tx.entry(&key);
                            let n = apply(cur, &val);
                            cur.clear();
                            let _ = write!(cur, "{n}");
                        }
                    }
                } else {
                    let name: &'static str = match collection.as_str() {
                        "IP" => "IP",
                        "GLOBAL" => "GLOBAL",
                        "SESSION" => "SESSION",
                        "USER" => "USER",
                        _ => "RESOURCE",
                    };
                    let map = self.data.persistent.entry(name).or_default();
                    let k = String::from_utf8_lossy(&key);
                    match op {
                        SetVarOp::Set => set_value(map, &k, &val),
                        SetVarOp::Delete => {
                            map.remove(k.as_ref());
                        }
                        SetVarOp::Add | SetVarOp::Sub => match map.get_mut(k.as_ref()) {
                            Some(cur) => {
                                let n = apply(cur, &val);
                                cur.clear();
                                let _ = write!(cur, "{n}");
                            }
                            None => {
                                map.insert(
                                    k.into_owned(),
                                    apply(b"", &val).to_string().into_bytes(),
                                );
                            }
                        },
                    }
                }
                self.key_buf = key;
                self.val_buf = val;
            }
            RunAction::SetEnv { name, value } => {
                let ctx = Ctx {
                    data: &self.data,
                    rule: Some(rule),
                };
                let v = ctx.expand(value);
                self.data.env.insert(name.to_ascii_lowercase(), v);
            }
            RunAction::InitCol { collection } => {
                let name: &'static str = match collection.as_str() {
                    "IP" => "IP",
                    "GLOBAL" => "GLOBAL",
                    "SESSION" => "SESSION",
                    "USER" => "USER",
                    _ => "RESOURCE",
                };
                self.data.persistent.entry(name).or_default();
            }
            RunAction::Ctl(c) => self.ctl(c, rule),
        }
    }

    fn remove_rules(&mut self, target: Target<'_>) {
        let rules = target.rules(&self.ruleset.inner);
        self.state.removed.union(&rules);
    }

    fn remove_targets(&mut self, target: Target<'_>, vars: Vec<CVar>) {
        if vars.is_empty() {
            return;
        }
        let rules = target.rules(&self.ruleset.inner);
        for v in vars {
            self.state.removed_targets.push((rules.clone(), v));
        }
    }

    fn ctl(&mut self, c: &Ctl, rule: &Rule) {
        let loc = &rule.location;
        let compile_targets = |targets: &[rampart_seclang::Variable]| -> Vec<CVar> {
            targets
                .iter()
                .filter_map(|t| CVar::compile(t, loc).ok())
                .collect()
        };
        match c {
            Ctl::RuleEngine(m) => self.state.engine = *m,
            Ctl::RuleRemoveById(ids) => self.remove_rules(Target::Ids(ids)),
            Ctl::RuleRemoveByTag(t) => self.remove_rules(Target::Tag(t)),
            Ctl::RuleRemoveByMsg(m) => self.remove_rules(Target::Msg(m)),
            Ctl::RuleRemoveTargetById { ids, targets } => {
                self.remove_targets(Target::Ids(ids), compile_targets(targets));
            }
            Ctl::RuleRemoveTargetByTag { tag, targets } => {
                self.remove_targets(Target::Tag(tag), compile_targets(targets));
            }
            Ctl::RuleRemoveTargetByMsg { msg, targets } => {
                self.remove_targets(Target::Msg(msg), compile_targets(targets));
            }
            Ctl::RequestBodyProcessor(p) => {
                // The old REQBODY_PROCESSOR value is freed: its cached results must go.
                self.cache.clear();
                self.state.body_processor = Some(p.clone());
                self.data.reqbody_processor = p.as_bytes().to_vec();
            }
            Ctl::RequestBodyAccess(b) => self.state.request_body_access = *b,
            Ctl::ForceRequestBodyVariable(b) => self.state.force_body_variable = *b,
            Ctl::AuditEngine(a) => self.state.audit_engine = *a,
            Ctl::RequestBodyLimit(n) => self.state.request_body_limit = *n,
            Ctl::ResponseBodyAccess(b) => self.state.response_body_access = *b,
            _ => {}
        }
    }
}
