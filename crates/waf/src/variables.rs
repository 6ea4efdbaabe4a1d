//! Variables: the collections a rule inspects (`ARGS`, `REQUEST_HEADERS:User-Agent`, `&TX:x`,
//! `XML:/*`), compiled once into [`CVar`] and resolved per transaction against [`TxData`].
//!
//! Keys compare case-insensitively, selector regexes are case-insensitive, as in ModSecurity.
//! Values borrowed from request or response data are marked `stable`: they do not change
//! during the transaction, so their transformations can be cached by address.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::bytes::Regex;

use crate::error::{CompileError, CompileErrorKind};

/// A collection (or single-valued variable) by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub(crate) enum Coll {
    Args,
    ArgsGet,
    ArgsPost,
    ArgsNames,
    ArgsGetNames,
    ArgsPostNames,
    ArgsCombinedSize,
    RequestHeaders,
    RequestHeadersNames,
    RequestCookies,
    RequestCookiesNames,
    ResponseHeaders,
    ResponseHeadersNames,
    Files,
    FilesNames,
    FilesSizes,
    FilesCombinedSize,
    FilesTmpNames,
    MultipartPartHeaders,
    MultipartFilename,
    MultipartName,
    Xml,
    Tx,
    Persistent(&'static str),
    Env,
    MatchedVar,
    MatchedVarName,
    MatchedVars,
    MatchedVarsNames,
    Rule,
    Single(&'static str),
    Empty(&'static str),
}

/// The names of single-valued variables served from [`TxData::single`].
const SINGLES: &[&str] = &[
    "AUTH_TYPE",
    "DURATION",
    "FULL_REQUEST",
    "FULL_REQUEST_LENGTH",
    "HIGHEST_SEVERITY",
    "INBOUND_DATA_ERROR",
    "MULTIPART_BOUNDARY_QUOTED",
    "MULTIPART_BOUNDARY_WHITESPACE",
    "MULTIPART_CRLF_LF_LINES",
    "MULTIPART_DATA_AFTER",
    "MULTIPART_DATA_BEFORE",
    "MULTIPART_FILE_LIMIT_EXCEEDED",
    "MULTIPART_HEADER_FOLDING",
    "MULTIPART_INVALID_HEADER_FOLDING",
    "MULTIPART_INVALID_PART",
    "MULTIPART_INVALID_QUOTING",
    "MULTIPART_LF_LINE",
    "MULTIPART_MISSING_SEMICOLON",
    "MULTIPART_SEMICOLON_MISSING",
    "MULTIPART_STRICT_ERROR",
    "MULTIPART_UNMATCHED_BOUNDARY",
    "OUTBOUND_DATA_ERROR",
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_PORT",
    "REMOTE_USER",
    "REQBODY_ERROR",
    "REQBODY_ERROR_MSG",
    "REQBODY_PROCESSOR",
    "REQBODY_PROCESSOR_ERROR",
    "REQBODY_PROCESSOR_ERROR_MSG",
    "REQUEST_BASENAME",
    "REQUEST_BODY",
    "REQUEST_BODY_LENGTH",
    "REQUEST_FILENAME",
    "REQUEST_LINE",
    "REQUEST_METHOD",
    "REQUEST_PROTOCOL",
    "REQUEST_URI",
    "REQUEST_URI_RAW",
    "RESPONSE_BODY",
    "RESPONSE_CONTENT_LENGTH",
    "RESPONSE_CONTENT_TYPE",
    "RESPONSE_PROTOCOL",
    "RESPONSE_STATUS",
    "SERVER_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "SESSIONID",
    "STATUS",
    "STATUS_LINE",
    "TIME",
    "TIME_DAY",
    "TIME_EPOCH",
    "TIME_HOUR",
    "TIME_MIN",
    "TIME_MON",
    "TIME_SEC",
    "TIME_WDAY",
    "TIME_YEAR",
    "UNIQUE_ID",
    "URLENCODED_ERROR",
    "USERID",
    "WEBAPPID",
];

impl Coll {
    /// Resolves a collection name (upper-case, as the parser keeps it).
    pub(crate) fn from_name(name: &str) -> Self {
        match name {
            "ARGS" => Self::Args,
            "ARGS_GET" => Self::ArgsGet,
            "ARGS_POST" => Self::ArgsPost,
            "ARGS_NAMES" => Self::ArgsNames,
            "ARGS_GET_NAMES" => Self::ArgsGetNames,
            "ARGS_POST_NAMES" => Self::ArgsPostNames,
            "ARGS_COMBINED_SIZE" => Self::ArgsCombinedSize,
            "REQUEST_HEADERS" => Self::RequestHeaders,
            "REQUEST_HEADERS_NAMES" => Self::RequestHeadersNames,
            "REQUEST_COOKIES" => Self::RequestCookies,
            "REQUEST_COOKIES_NAMES" => Self::RequestCookiesNames,
            "RESPONSE_HEADERS" => Self::ResponseHeaders,
            "RESPONSE_HEADERS_NAMES" => Self::ResponseHeadersNames,
            "FILES" => Self::Files,
            "FILES_NAMES" => Self::FilesNames,
            "FILES_SIZES" => Self::FilesSizes,
            "FILES_COMBINED_SIZE" => Self::FilesCombinedSize,
            "FILES_TMPNAMES" | "FILES_TMP_CONTENT" => Self::FilesTmpNames,
            "MULTIPART_PART_HEADERS" => Self::MultipartPartHeaders,
            "MULTIPART_FILENAME" => Self::MultipartFilename,
            "MULTIPART_NAME" => Self::MultipartName,
            "XML" | "REQUEST_XML" => Self::Xml,
            "TX" => Self::Tx,
            "IP" => Self::Persistent("IP"),
            "GLOBAL" => Self::Persistent("GLOBAL"),
            "SESSION" => Self::Persistent("SESSION"),
            "USER" => Self::Persistent("USER"),
            "RESOURCE" => Self::Persistent("RESOURCE"),
            "ENV" => Self::Env,
            "MATCHED_VAR" => Self::MatchedVar,
            "MATCHED_VAR_NAME" => Self::MatchedVarName,
            "MATCHED_VARS" => Self::MatchedVars,
            "MATCHED_VARS_NAMES" => Self::MatchedVarsNames,
            "RULE" => Self::Rule,
            other => match SINGLES.iter().find(|s| **s == other) {
                Some(s) => Self::Single(s),
                None => Self::Empty(
                    match rampart_seclang::variable::COLLECTIONS
                        .iter()
                        .find(|(n, _)| *n == other)
                    {
                        Some((n, _)) => n,
                        None => "UNKNOWN",
                    },
                ),
            },
        }
    }

    /// The name as written in `MATCHED_VAR_NAME`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Args => "ARGS",
            Self::ArgsGet => "ARGS_GET",
            Self::ArgsPost => "ARGS_POST",
            Self::ArgsNames => "ARGS_NAMES",
            Self::ArgsGetNames => "ARGS_GET_NAMES",
            Self::ArgsPostNames => "ARGS_POST_NAMES",
            Self::ArgsCombinedSize => "ARGS_COMBINED_SIZE",
            Self::RequestHeaders => "REQUEST_HEADERS",
            Self::RequestHeadersNames => "REQUEST_HEADERS_NAMES",
            Self::RequestCookies => "REQUEST_COOKIES",
            Self::RequestCookiesNames => "REQUEST_COOKIES_NAMES",
            Self::ResponseHeaders => "RESPONSE_HEADERS",
            Self::ResponseHeadersNames => "RESPONSE_HEADERS_NAMES",
            Self::Files => "FILES",
            Self::FilesNames => "FILES_NAMES",
            Self::FilesSizes => "FILES_SIZES",
            Self::FilesCombinedSize => "FILES_COMBINED_SIZE",
            Self::FilesTmpNames => "FILES_TMPNAMES",
            Self::MultipartPartHeaders => "MULTIPART_PART_HEADERS",
            Self::MultipartFilename => "MULTIPART_FILENAME",
            Self::MultipartName => "MULTIPART_NAME",
            Self::Xml => "XML",
            Self::Tx => "TX",
            Self::Env => "ENV",
            Self::MatchedVar => "MATCHED_VAR",
            Self::MatchedVarName => "MATCHED_VAR_NAME",
            Self::MatchedVars => "MATCHED_VARS",
            Self::MatchedVarsNames => "MATCHED_VARS_NAMES",
            Self::Rule => "RULE",
            Self::Persistent(n) | Self::Single(n) | Self::Empty(n) => n,
        }
    }

    /// Whether values of this collection live in request/response data that does not change
    /// during the transaction (so transformations may be cached by address).
    fn stable(self) -> bool {
        !matches!(
            self,
            Self::Tx
                | Self::Persistent(_)
                | Self::Env
                | Self::MatchedVar
                | Self::MatchedVarName
                | Self::MatchedVars
                | Self::MatchedVarsNames
                | Self::Rule
        )
    }
}

/// A selector, compiled.
#[derive(Debug, Clone)]
pub(crate) enum Sel {
    All,
    /// Lower-cased key.
    Key(Vec<u8>),
    Regex(Box<Regex>),
    /// A selector regex that is only a literal (`/^header_name_920450_/`,
    /// `/paramcounter_.*/`): lower-cased, and whether it is anchored at the start.
    Literal(Vec<u8>, bool),
    XPath(String),
}

/// The literal a selector regex stands for, when it is one: an optional `^`, then word
/// characters, then optionally `.*` or `X*` (which add nothing to a search).
fn literal_selector(pattern: &str) -> Option<(Vec<u8>, bool)> {
    let (anchored, mut rest) = match pattern.strip_prefix('^') {
        Some(r) => (true, r),
        None => (false, pattern),
    };
    if let Some(r) = rest.strip_suffix('*') {
        // `.*` or a repeated last character: drop both.
        let mut chars = r.chars();
        chars.next_back()?;
        rest = chars.as_str();
    }
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    Some((rest.to_ascii_lowercase().into_bytes(), anchored))
}

impl Sel {
    pub(crate) fn compile(
        sel: Option<&rampart_seclang::Selector>,
        location: &rampart_seclang::Location,
    ) -> Result<Self, CompileError> {
        Ok(match sel {
            None => Self::All,
            Some(rampart_seclang::Selector::Key(k)) => {
                Self::Key(k.to_ascii_lowercase().into_bytes())
            }
            Some(rampart_seclang::Selector::XPath(x)) => Self::XPath(x.clone()),
            Some(rampart_seclang::Selector::Regex(r)) if literal_selector(r).is_some() => {
                let (lit, anchored) = literal_selector(r).unwrap_or_default();
                Self::Literal(lit, anchored)
            }
            Some(rampart_seclang::Selector::Regex(r)) => Self::Regex(Box::new(
                crate::operators::rx::compile_ci(r).map_err(|reason| {
                    CompileError::new(
                        CompileErrorKind::Selector {
                            pattern: r.clone(),
                            reason,
                        },
                        location,
                    )
                })?,
            )),
        })
    }

    pub(crate) fn accepts(&self, key: &[u8]) -> bool {
        match self {
            Self::All => true,
            Self::Key(k) => key.eq_ignore_ascii_case(k),
            Self::Regex(re) => re.is_match(key),
            // `^` also matches after a line feed (selector regexes are multi-line).
            Self::Literal(lit, true) => {
                let at = |i: usize| {
                    key.get(i..i + lit.len())
                        .is_some_and(|k| k.eq_ignore_ascii_case(lit))
                };
                at(0) || memchr::memchr_iter(b'\n', key).any(|p| at(p + 1))
            }
            Self::Literal(lit, false) => {
                lit.len() <= key.len()
                    && key.windows(lit.len()).any(|w| w.eq_ignore_ascii_case(lit))
            }
            Self::XPath(x) => key.eq_ignore_ascii_case(x.as_bytes()),
        }
    }
}

/// A compiled variable of a rule.
#[derive(Debug, Clone)]
pub(crate) struct CVar {
    pub coll: Coll,
    pub sel: Sel,
    pub count: bool,
}

impl CVar {
    pub(crate) fn compile(
        v: &rampart_seclang::Variable,
        location: &rampart_seclang::Location,
    ) -> Result<Self, CompileError> {
        Ok(Self {
            coll: Coll::from_name(&v.collection),
            sel: Sel::compile(v.selector.as_ref(), location)?,
            count: v.count,
        })
    }

    /// The prefilter's key for this variable, when its values are request or response data
    /// that no rule action can change during a phase (so one scan per phase stands for every
    /// rule that inspects them); `None` otherwise (`TX`, `MATCHED_VAR`, counts, ...).
    pub(crate) fn prefilter_key(&self) -> Option<String> {
        if self.count {
            return None;
        }
        let fixed = match self.coll {
            Coll::Args
            | Coll::ArgsGet
            | Coll::ArgsPost
            | Coll::ArgsNames
            | Coll::ArgsGetNames
            | Coll::ArgsPostNames
            | Coll::RequestHeaders
            | Coll::RequestHeadersNames
            | Coll::RequestCookies
            | Coll::RequestCookiesNames
            | Coll::ResponseHeaders
            | Coll::ResponseHeadersNames
            | Coll::Files
            | Coll::FilesNames
            | Coll::MultipartPartHeaders
            | Coll::MultipartFilename
            | Coll::MultipartName
            | Coll::Xml => true,
            Coll::Single(name) => matches!(
                name,
                "REQUEST_URI"
                    | "REQUEST_URI_RAW"
                    | "REQUEST_LINE"
                    | "REQUEST_METHOD"
                    | "REQUEST_PROTOCOL"
                    | "QUERY_STRING"
                    | "REQUEST_FILENAME"
                    | "PATH_INFO"
                    | "REQUEST_BASENAME"
                    | "REQUEST_BODY"
                    | "RESPONSE_BODY"
                    | "RESPONSE_CONTENT_TYPE"
                    | "RESPONSE_STATUS"
                    | "RESPONSE_PROTOCOL"
                    | "SERVER_NAME"
                    | "REMOTE_ADDR"
            ),
            _ => false,
        };
        fixed.then(|| format!("{}:{:?}", self.coll.name(), self.sel))
    }

    /// Whether this (exclusion) variable excludes the value `key` of `coll`.
    pub(crate) fn excludes(&self, coll: Coll, key: &[u8]) -> bool {
        self.coll == coll && self.sel.accepts(key)
    }
}

/// One value to inspect.
#[derive(Debug, Clone)]
pub(crate) struct Val<'a> {
    pub coll: Coll,
    pub key: Cow<'a, [u8]>,
    pub data: Cow<'a, [u8]>,
    pub stable: bool,
}

impl Val<'_> {
    /// Writes `ARGS:foo`, `REQUEST_URI` into `out` (replacing what it held).
    pub(crate) fn write_full_name(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(self.coll.name().as_bytes());
        if !self.key.is_empty() {
            out.push(b':');
            out.extend_from_slice(&self.key);
        }
    }
}

/// A list whose elements keep their allocations when it is cleared: [`Reuse::push_with`]
/// hands the next element (as a previous use left it) to the caller to overwrite in place, so
/// a list filled and cleared once per rule allocates only while it grows, and neither clearing
/// nor pushing moves an element.
#[derive(Debug, Default)]
pub(crate) struct Reuse<T> {
    /// The elements in use (`..len`) and the spare ones after them.
    items: Vec<T>,
    len: usize,
}

impl<T: Default> Reuse<T> {
    /// Empties the list (the elements' buffers are kept for reuse).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends an element filled by `fill` from a spare one (whatever it held before).
    #[inline]
    pub(crate) fn push_with(&mut self, fill: impl FnOnce(&mut T)) {
        if self.len == self.items.len() {
            self.items.push(T::default());
        }
        if let Some(x) = self.items.get_mut(self.len) {
            fill(x);
            self.len += 1;
        }
    }

    /// The elements, in order.
    pub(crate) fn as_slice(&self) -> &[T] {
        self.items.get(..self.len).unwrap_or_default()
    }

    /// Whether the list is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One request argument.
#[derive(Debug, Clone, Default)]
pub(crate) struct ArgEntry {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    pub post: bool,
}

/// One uploaded file.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileEntry {
    pub field: Vec<u8>,
    pub filename: Vec<u8>,
    pub size: usize,
}

/// The multipart strictness flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct MultipartFlags {
    pub boundary_quoted: bool,
    pub boundary_whitespace: bool,
    pub crlf_lf_lines: bool,
    pub data_after: bool,
    pub data_before: bool,
    pub file_limit_exceeded: bool,
    pub header_folding: bool,
    pub invalid_header_folding: bool,
    pub invalid_part: bool,
    pub invalid_quoting: bool,
    pub lf_line: bool,
    pub missing_semicolon: bool,
    pub unmatched_boundary: bool,
}

impl MultipartFlags {
    pub(crate) fn strict_error(&self, reqbody_error: bool) -> bool {
        reqbody_error
            || self.boundary_quoted
            || self.boundary_whitespace
            || self.data_before
            || self.data_after
            || self.header_folding
            || self.lf_line
            || self.missing_semicolon
            || self.invalid_quoting
            || self.invalid_part
            || self.invalid_header_folding
            || self.file_limit_exceeded
    }
}

/// Everything the rules can see about one transaction.
#[derive(Debug, Default)]
pub(crate) struct TxData {
    pub remote_addr: Vec<u8>,
    pub remote_port: Vec<u8>,
    pub server_addr: Vec<u8>,
    pub server_port: Vec<u8>,
    pub method: Vec<u8>,
    pub uri: Vec<u8>,
    pub uri_raw: Vec<u8>,
    pub protocol: Vec<u8>,
    pub request_line: Vec<u8>,
    pub query_string: Vec<u8>,
    pub filename: Vec<u8>,
    pub basename: Vec<u8>,
    pub args: Vec<ArgEntry>,
    pub req_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub cookies: Vec<(Vec<u8>, Vec<u8>)>,
    pub req_body: Vec<u8>,
    /// Whether `REQUEST_BODY` is visible (URLENCODED processor or `forceRequestBodyVariable`).
    pub req_body_visible: bool,
    pub files: Vec<FileEntry>,
    pub part_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub multipart: MultipartFlags,
    pub xml_root_text: Option<Vec<u8>>,
    pub xml_attrs: Vec<Vec<u8>>,
    pub reqbody_error: bool,
    pub reqbody_error_msg: Vec<u8>,
    pub reqbody_processor: Vec<u8>,
    pub urlencoded_error: bool,
    pub resp_status: Vec<u8>,
    pub resp_protocol: Vec<u8>,
    pub resp_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub resp_body: Vec<u8>,
    pub tx: TxMap,
    pub persistent: HashMap<&'static str, HashMap<String, Vec<u8>>>,
    pub env: HashMap<String, Vec<u8>>,
    pub matched_var: Vec<u8>,
    pub matched_var_name: Vec<u8>,
    pub matched_vars: Reuse<(Vec<u8>, Vec<u8>)>,
    pub unique_id: Vec<u8>,
    pub highest_severity: Option<u8>,
    pub start_epoch: u64,
}

fn flag(b: bool) -> Cow<'static, [u8]> {
    Cow::Borrowed(if b { b"1" } else { b"0" })
}

fn num(n: usize) -> Cow<'static, [u8]> {
    /// The counts that need no allocation.
    const SMALL: [&[u8]; 10] = [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"];
    match SMALL.get(n) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(n.to_string().into_bytes()),
    }
}

fn header<'a>(h: &'a [(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<&'a [u8]> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

impl TxData {
    /// The value of a single-valued variable (`None`: not set, e.g. no body yet).
    pub(crate) fn single(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        Some(match name {
            "REMOTE_ADDR" | "REMOTE_HOST" => Cow::Borrowed(self.remote_addr.as_slice()),
            "REMOTE_PORT" => Cow::Borrowed(self.remote_port.as_slice()),
            "SERVER_ADDR" => Cow::Borrowed(self.server_addr.as_slice()),
            "SERVER_PORT" => Cow::Borrowed(self.server_port.as_slice()),
            "SERVER_NAME" => Cow::Borrowed(
                header(&self.req_headers, b"host")
                    .map(|h| h.split(|b| *b == b':').next().unwrap_or(h))
                    .unwrap_or(self.server_addr.as_slice()),
            ),
            "REQUEST_METHOD" => Cow::Borrowed(self.method.as_slice()),
            "REQUEST_URI" => Cow::Borrowed(self.uri.as_slice()),
            "REQUEST_URI_RAW" => Cow::Borrowed(self.uri_raw.as_slice()),
            "REQUEST_PROTOCOL" => Cow::Borrowed(self.protocol.as_slice()),
            "REQUEST_LINE" => Cow::Borrowed(self.request_line.as_slice()),
            "QUERY_STRING" => Cow::Borrowed(self.query_string.as_slice()),
            "REQUEST_FILENAME" | "PATH_INFO" => Cow::Borrowed(self.filename.as_slice()),
            "REQUEST_BASENAME" => Cow::Borrowed(self.basename.as_slice()),
            "REQUEST_BODY" if self.req_body_visible => Cow::Borrowed(self.req_body.as_slice()),
            "REQUEST_BODY" => return None,
            "REQUEST_BODY_LENGTH" => num(self.req_body.len()),
            "FULL_REQUEST_LENGTH" => num(self.request_line.len() + self.req_body.len()),
            "REQBODY_ERROR" | "REQBODY_PROCESSOR_ERROR" => flag(self.reqbody_error),
            "REQBODY_ERROR_MSG" | "REQBODY_PROCESSOR_ERROR_MSG" => {
                Cow::Borrowed(self.reqbody_error_msg.as_slice())
            }
            "REQBODY_PROCESSOR" => Cow::Borrowed(self.reqbody_processor.as_slice()),
            "URLENCODED_ERROR" => flag(self.urlencoded_error),
            "INBOUND_DATA_ERROR" | "OUTBOUND_DATA_ERROR" => flag(false),
            "MULTIPART_BOUNDARY_QUOTED" => flag(self.multipart.boundary_quoted),
            "MULTIPART_BOUNDARY_WHITESPACE" => flag(self.multipart.boundary_whitespace),
            "MULTIPART_CRLF_LF_LINES" => flag(self.multipart.crlf_lf_lines),
            "MULTIPART_DATA_AFTER" => flag(self.multipart.data_after),
            "MULTIPART_DATA_BEFORE" => flag(self.multipart.data_before),
            "MULTIPART_FILE_LIMIT_EXCEEDED" => flag(self.multipart.file_limit_exceeded),
            "MULTIPART_HEADER_FOLDING" => flag(self.multipart.header_folding),
            "MULTIPART_INVALID_HEADER_FOLDING" => flag(self.multipart.invalid_header_folding),
            "MULTIPART_INVALID_PART" => flag(self.multipart.invalid_part),
            "MULTIPART_INVALID_QUOTING" => flag(self.multipart.invalid_quoting),
            "MULTIPART_LF_LINE" => flag(self.multipart.lf_line),
            "MULTIPART_MISSING_SEMICOLON" | "MULTIPART_SEMICOLON_MISSING" => {
                flag(self.multipart.missing_semicolon)
            }
            "MULTIPART_STRICT_ERROR" => flag(self.multipart.strict_error(self.reqbody_error)),
            "MULTIPART_UNMATCHED_BOUNDARY" => flag(self.multipart.unmatched_boundary),
            "RESPONSE_STATUS" | "STATUS" => Cow::Borrowed(self.resp_status.as_slice()),
            "RESPONSE_PROTOCOL" => Cow::Borrowed(self.resp_protocol.as_slice()),
            "STATUS_LINE" => {
                let mut l = self.resp_protocol.clone();
                l.push(b' ');
                l.extend_from_slice(&self.resp_status);
                Cow::Owned(l)
            }
            "RESPONSE_BODY" => Cow::Borrowed(self.resp_body.as_slice()),
            "RESPONSE_CONTENT_TYPE" => {
                Cow::Borrowed(header(&self.resp_headers, b"content-type").unwrap_or_default())
            }
            "RESPONSE_CONTENT_LENGTH" => {
                Cow::Borrowed(header(&self.resp_headers, b"content-length").unwrap_or_default())
            }
            "UNIQUE_ID" => Cow::Borrowed(self.unique_id.as_slice()),
            "HIGHEST_SEVERITY" => num(usize::from(self.highest_severity.unwrap_or(255))),
            "TIME_EPOCH" | "TIME" => Cow::Owned(self.start_epoch.to_string().into_bytes()),
            "DURATION" => Cow::Borrowed(b"0"),
            "MSC_PCRE_LIMITS_EXCEEDED" => flag(false),
            _ => return None,
        })
    }

    /// Appends the values of `v` (before exclusions) to `out`.
    pub(crate) fn collect<'a>(&'a self, v: &'a CVar, out: &mut Vec<Val<'a>>) {
        if v.count {
            // Counted in place: the values are appended, counted and dropped again.
            let start = out.len();
            self.collect_values(v, out);
            let n = out.len() - start;
            out.truncate(start);
            out.push(Val {
                coll: v.coll,
                key: match &v.sel {
                    Sel::Key(k) => Cow::Borrowed(k.as_slice()),
                    _ => Cow::Borrowed(b""),
                },
                data: num(n),
                stable: false,
            });
        } else {
            self.collect_values(v, out);
        }
    }

    fn collect_values<'a>(&'a self, v: &CVar, out: &mut Vec<Val<'a>>) {
        let coll = v.coll;
        let stable = coll.stable();
        let mut push = |key: &'a [u8], data: &'a [u8]| {
            if v.sel.accepts(key) {
                out.push(Val {
                    coll,
                    key: Cow::Borrowed(key),
                    data: Cow::Borrowed(data),
                    stable,
                });
            }
        };
        match coll {
            Coll::Args => self.args.iter().for_each(|a| push(&a.name, &a.value)),
            Coll::ArgsGet => self
                .args
                .iter()
                .filter(|a| !a.post)
                .for_each(|a| push(&a.name, &a.value)),
            Coll::ArgsPost => self
                .args
                .iter()
                .filter(|a| a.post)
                .for_each(|a| push(&a.name, &a.value)),
            Coll::ArgsNames => self.args.iter().for_each(|a| push(&a.name, &a.name)),
            Coll::ArgsGetNames => self
                .args
                .iter()
                .filter(|a| !a.post)
                .for_each(|a| push(&a.name, &a.name)),
            Coll::ArgsPostNames => self
                .args
                .iter()
                .filter(|a| a.post)
                .for_each(|a| push(&a.name, &a.name)),
            Coll::RequestHeaders => self.req_headers.iter().for_each(|(k, v)| push(k, v)),
            Coll::RequestHeadersNames => self.req_headers.iter().for_each(|(k, _)| push(k, k)),
            Coll::RequestCookies => self.cookies.iter().for_each(|(k, v)| push(k, v)),
            Coll::RequestCookiesNames => self.cookies.iter().for_each(|(k, _)| push(k, k)),
            Coll::ResponseHeaders => self.resp_headers.iter().for_each(|(k, v)| push(k, v)),
            Coll::ResponseHeadersNames => self.resp_headers.iter().for_each(|(k, _)| push(k, k)),
            Coll::Files | Coll::MultipartFilename => {
                self.files.iter().for_each(|f| push(&f.field, &f.filename))
            }
            Coll::FilesNames | Coll::MultipartName => {
                self.files.iter().for_each(|f| push(&f.field, &f.field));
            }
            Coll::MultipartPartHeaders => self.part_headers.iter().for_each(|(k, v)| push(k, v)),
            Coll::FilesTmpNames => {}
            Coll::FilesSizes => {
                for f in &self.files {
                    if v.sel.accepts(&f.field) {
                        out.push(Val {
                            coll,
                            key: Cow::Borrowed(&f.field),
                            data: num(f.size),
                            stable: false,
                        });
                    }
                }
            }
            Coll::FilesCombinedSize => out.push(Val {
                coll,
                key: Cow::Borrowed(b""),
                data: num(self.files.iter().map(|f| f.size).sum()),
                stable: false,
            }),
            Coll::ArgsCombinedSize => out.push(Val {
                coll,
                key: Cow::Borrowed(b""),
                data: num(self.args.iter().map(|a| a.name.len() + a.value.len()).sum()),
                stable: false,
            }),
            Coll::Xml => {
                let xpath = match &v.sel {
                    Sel::XPath(x) => x.as_str(),
                    _ => "/*",
                };
                let key: &'static [u8] = if xpath.contains('@') { b"//@*" } else { b"/*" };
                if xpath.contains('@') {
                    for a in &self.xml_attrs {
                        out.push(Val {
                            coll,
                            key: Cow::Borrowed(key),
                            data: Cow::Borrowed(a),
                            stable: true,
                        });
                    }
                } else if let Some(t) = &self.xml_root_text {
                    out.push(Val {
                        coll,
                        key: Cow::Borrowed(key),
                        data: Cow::Borrowed(t),
                        stable: true,
                    });
                }
            }
            Coll::Tx => self.tx.values(v, coll, out),
            Coll::Env => map_values(&self.env, v, coll, out),
            Coll::Persistent(name) => {
                if let Some(m) = self.persistent.get(name) {
                    map_values(m, v, coll, out);
                }
            }
            Coll::MatchedVar => out.push(Val {
                coll,
                key: Cow::Borrowed(b""),
                data: Cow::Borrowed(&self.matched_var),
                stable: false,
            }),
            Coll::MatchedVarName => out.push(Val {
                coll,
                key: Cow::Borrowed(b""),
                data: Cow::Borrowed(&self.matched_var_name),
                stable: false,
            }),
            Coll::MatchedVars => {
                for (k, d) in self.matched_vars.as_slice() {
                    if v.sel.accepts(k) {
                        out.push(Val {
                            coll,
                            key: Cow::Borrowed(k),
                            data: Cow::Borrowed(d),
                            stable: false,
                        });
                    }
                }
            }
            Coll::MatchedVarsNames => {
                for (k, _) in self.matched_vars.as_slice() {
                    if v.sel.accepts(k) {
                        out.push(Val {
                            coll,
                            key: Cow::Borrowed(k),
                            data: Cow::Borrowed(k),
                            stable: false,
                        });
                    }
                }
            }
            Coll::Rule | Coll::Empty(_) => {}
            Coll::Single(name) => {
                if let Some(data) = self.single(name) {
                    let stable = matches!(data, Cow::Borrowed(_));
                    out.push(Val {
                        coll,
                        key: Cow::Borrowed(b""),
                        data,
                        stable,
                    });
                }
            }
        }
    }
}

fn map_values<'a>(m: &'a HashMap<String, Vec<u8>>, v: &CVar, coll: Coll, out: &mut Vec<Val<'a>>) {
    if let Sel::Key(k) = &v.sel {
        if let Some((key, data)) = std::str::from_utf8(k).ok().and_then(|k| m.get_key_value(k)) {
            out.push(Val {
                coll,
                key: Cow::Borrowed(key.as_bytes()),
                data: Cow::Borrowed(data),
                stable: false,
            });
        }
        return;
    }
    let mut items: Vec<(&String, &Vec<u8>)> = m
        .iter()
        .filter(|(k, _)| v.sel.accepts(k.as_bytes()))
        .collect();
    items.sort_by(|a, b| a.0.cmp(b.0));
    for (k, d) in items {
        out.push(Val {
            coll,
            key: Cow::Borrowed(k.as_bytes()),
            data: Cow::Borrowed(d),
            stable: false,
        });
    }
}

/// One entry of [`TxMap`]: a value, and whether it is set in this transaction.
#[derive(Debug, Default)]
struct TxEntry {
    live: bool,
    value: Vec<u8>,
}

/// The `TX` collection (keys lower-cased by the caller).
///
/// Entries outlive the transaction that set them: [`TxMap::reset`] only marks them unset, so
/// the next transaction on the thread (which sets mostly the same CRS variables) reuses the
/// key and value allocations instead of freeing and allocating about a hundred strings. The
/// keys go through foldhash (seeded per process): TX keys are partly request data
/// (`tx.paramcounter_%{MATCHED_VAR_NAME}`), and a map that collected more than
/// [`TxMap::KEEP_MAX`] keys is emptied for real. The map holds indexes into `entries`, so
/// that finding a key, and inserting it when missing, hashes it once.
#[derive(Debug, Default)]
pub(crate) struct TxMap {
    map: HashMap<Box<[u8]>, u32, foldhash::fast::RandomState>,
    entries: Vec<TxEntry>,
}

impl TxMap {
    /// Maps with more keys than this are emptied, not kept, by [`TxMap::reset`].
    const KEEP_MAX: usize = 512;

    /// An empty map with room for `n` keys.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            map: HashMap::with_capacity_and_hasher(n, foldhash::fast::RandomState::default()),
            entries: Vec::with_capacity(n),
        }
    }

    /// Unsets every variable (keeping the allocations, see the type's doc).
    pub(crate) fn reset(&mut self) {
        if self.map.len() > Self::KEEP_MAX {
            *self = Self::with_capacity(128);
            return;
        }
        for e in &mut self.entries {
            e.live = false;
        }
    }

    fn live(&self, i: u32) -> Option<&TxEntry> {
        self.entries.get(i as usize).filter(|e| e.live)
    }

    /// The value of `key`, when set.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let i = *self.map.get(key)?;
        self.live(i).map(|e| e.value.as_slice())
    }

    /// The stored key and value of `key`, when set.
    fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &[u8])> {
        let (k, i) = self.map.get_key_value(key)?;
        self.live(*i).map(|e| (&**k, e.value.as_slice()))
    }

    /// The buffer of `key` (set from now on) and whether it was set before; an entry that was
    /// not set comes back empty.
    pub(crate) fn entry(&mut self, key: &[u8]) -> (&mut Vec<u8>, bool) {
        let i = match self.map.get(key) {
            Some(i) => *i as usize,
            None => {
                self.entries.push(TxEntry::default());
                let i = self.entries.len() - 1;
                self.map
                    .insert(key.into(), u32::try_from(i).unwrap_or(u32::MAX));
                i
            }
        };
        // Every index in the map is one of `entries` (both only grow, and are emptied together).
        let e = self
            .entries
            .get_mut(i)
            .unwrap_or_else(|| unreachable!("indexes come from entries"));
        let was = e.live;
        if !was {
            e.value.clear();
            e.live = true;
        }
        (&mut e.value, was)
    }

    /// Sets `key` to `value`.
    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) {
        let (v, _) = self.entry(key);
        v.clear();
        v.extend_from_slice(value);
    }

    /// Unsets `key`.
    pub(crate) fn remove(&mut self, key: &[u8]) {
        if let Some(i) = self.map.get(key)
            && let Some(e) = self.entries.get_mut(*i as usize)
        {
            e.live = false;
        }
    }

    /// The variables that are set, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.map
            .iter()
            .filter_map(|(k, i)| self.live(*i).map(|e| (&**k, e.value.as_slice())))
    }

    /// Appends the values `v` selects (sorted by key, as [`map_values`]).
    fn values<'a>(&'a self, v: &CVar, coll: Coll, out: &mut Vec<Val<'a>>) {
        if let Sel::Key(k) = &v.sel {
            if let Some((key, data)) = self.get_key_value(k) {
                out.push(Val {
                    coll,
                    key: Cow::Borrowed(key),
                    data: Cow::Borrowed(data),
                    stable: false,
                });
            }
            return;
        }
        let start = out.len();
        for (k, d) in self.iter() {
            if v.sel.accepts(k) {
                out.push(Val {
                    coll,
                    key: Cow::Borrowed(k),
                    data: Cow::Borrowed(d),
                    stable: false,
                });
            }
        }
        if let Some(tail) = out.get_mut(start..) {
            tail.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_selectors_match_like_their_regex() {
        assert_eq!(
            literal_selector("^_pk_ref"),
            Some((b"_pk_ref".to_vec(), true))
        );
        assert_eq!(
            literal_selector("paramcounter_.*"),
            Some((b"paramcounter_".to_vec(), false))
        );
        assert_eq!(
            literal_selector("MULTIPART_HEADERS_CONTENT_TYPES_*"),
            Some((b"multipart_headers_content_types".to_vec(), false))
        );
        assert_eq!(literal_selector("^_ga(?:_\\w+)?$"), None);
        assert_eq!(literal_selector("a$"), None);
        let loc = rampart_seclang::Location {
            file: std::sync::Arc::from(std::path::Path::new("x.conf")),
            line: 1,
        };
        for (pattern, key, want) in [
            (
                "^header_name_920450_",
                "HEADER_NAME_920450_content-type",
                true,
            ),
            ("^header_name_920450_", "x_header_name_920450_", false),
            ("^header_name_920450_", "x\nheader_name_920450_a", true),
            ("^_pk_ref", "a\n_pk", false),
            ("paramcounter_.*", "tx_PARAMCOUNTER_a", true),
            ("paramcounter_.*", "paramcounte", false),
            (
                "MULTIPART_HEADERS_CONTENT_TYPES_*",
                "multipart_headers_content_types_x",
                true,
            ),
        ] {
            let sel = Sel::compile(
                Some(&rampart_seclang::Selector::Regex(pattern.into())),
                &loc,
            )
            .unwrap();
            assert!(matches!(sel, Sel::Literal(..)), "{pattern}");
            let re = crate::operators::rx::compile_ci(pattern).unwrap();
            assert_eq!(sel.accepts(key.as_bytes()), want, "{pattern} {key}");
            assert_eq!(re.is_match(key.as_bytes()), want, "{pattern} {key}");
        }
    }
}
