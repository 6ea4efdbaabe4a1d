//! Variables: the targets of a rule (`ARGS|!ARGS:foo|&REQUEST_HEADERS:/^x-/|XML:/*`).
//!
//! A variable list is a `|`-separated list of items. Each item is an optional `!` (exclusion:
//! remove matching entries from the collection) or `&` (count the entries instead of
//! inspecting them), a collection name (case-insensitive; kept upper-cased) and an optional
//! selector after `:` (or `.`, as ModSecurity v3 also accepts):
//!
//! - `ARGS:foo` — a key ([`Selector::Key`]); a key may be single-quoted (`ARGS:'foo bar'`);
//! - `ARGS:/^foo/` or `ARGS:'/^foo/'` — a regular expression ([`Selector::Regex`]); it may
//!   contain `|` and escaped `\/`, and ends at the first unescaped `/`;
//! - `XML:/*`, `XML://@*` — an XPath expression ([`Selector::XPath`]: every selector of `XML`);
//!   it ends at the next `|`.
//!
//! Blanks around `|` are tolerated (in a quoted list).
//!
//! Collection names are checked against the variables ModSecurity v3 and Coraza know
//! ([`COLLECTIONS`]); a selector on a variable that holds a single value is an error.

use std::fmt;

use crate::error::ErrorKind;

/// One item of a rule's variable list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Variable {
    /// `!ARGS:foo`: exclude the selected entries from the collection named elsewhere in the list.
    pub negated: bool,
    /// `&ARGS`: the number of entries rather than their values.
    pub count: bool,
    /// The collection (or single-valued variable) name, upper-cased: `ARGS`, `TX`, `REQUEST_URI`.
    pub collection: String,
    /// Which entries, when not the whole collection.
    pub selector: Option<Selector>,
}

/// How a variable picks entries out of its collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// The entry with this name (`ARGS:foo`), as written, quotes removed.
    Key(String),
    /// Entries whose names match this regular expression (`ARGS:/^foo/`), without the slashes.
    Regex(String),
    /// An XPath expression over the XML body (`XML:/*`), as written.
    XPath(String),
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_str("!")?;
        }
        if self.count {
            f.write_str("&")?;
        }
        f.write_str(&self.collection)?;
        match &self.selector {
            None => Ok(()),
            Some(Selector::Key(k)) => write!(f, ":{k}"),
            Some(Selector::Regex(r)) => write!(f, ":/{r}/"),
            Some(Selector::XPath(x)) => write!(f, ":{x}"),
        }
    }
}

/// Whether a collection holds several named entries (and so takes a selector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Named entries: `ARGS`, `REQUEST_HEADERS`, `TX`, ...
    Collection,
    /// One value: `REQUEST_URI`, `REMOTE_ADDR`, ...
    Single,
}

/// Every variable name the parser accepts, with its [`Shape`].
///
/// This is the ModSecurity v3 list plus the few Coraza adds (`REQUEST_XML`, `RESPONSE_ARGS`,
/// `RESPONSE_XML`, `MSC_PCRE_LIMITS_EXCEEDED`, ...). The WAF engine implements a subset; that
/// is its decision, not the parser's.
pub const COLLECTIONS: &[(&str, Shape)] = &[
    ("ARGS", Shape::Collection),
    ("ARGS_COMBINED_SIZE", Shape::Single),
    ("ARGS_GET", Shape::Collection),
    ("ARGS_GET_NAMES", Shape::Collection),
    ("ARGS_NAMES", Shape::Collection),
    ("ARGS_POST", Shape::Collection),
    ("ARGS_POST_NAMES", Shape::Collection),
    ("AUTH_TYPE", Shape::Single),
    ("DURATION", Shape::Single),
    ("ENV", Shape::Collection),
    ("FILES", Shape::Collection),
    ("FILES_COMBINED_SIZE", Shape::Single),
    ("FILES_NAMES", Shape::Collection),
    ("FILES_SIZES", Shape::Collection),
    ("FILES_TMPNAMES", Shape::Collection),
    ("FILES_TMP_CONTENT", Shape::Collection),
    ("FULL_REQUEST", Shape::Single),
    ("FULL_REQUEST_LENGTH", Shape::Single),
    ("GEO", Shape::Collection),
    ("GLOBAL", Shape::Collection),
    ("HIGHEST_SEVERITY", Shape::Single),
    ("INBOUND_DATA_ERROR", Shape::Single),
    ("IP", Shape::Collection),
    ("JSON", Shape::Collection),
    ("MATCHED_VAR", Shape::Single),
    ("MATCHED_VARS", Shape::Collection),
    ("MATCHED_VARS_NAMES", Shape::Collection),
    ("MATCHED_VAR_NAME", Shape::Single),
    ("MODSEC_BUILD", Shape::Single),
    ("MSC_PCRE_LIMITS_EXCEEDED", Shape::Single),
    ("MULTIPART_BOUNDARY_QUOTED", Shape::Single),
    ("MULTIPART_BOUNDARY_WHITESPACE", Shape::Single),
    ("MULTIPART_CRLF_LF_LINES", Shape::Single),
    ("MULTIPART_DATA_AFTER", Shape::Single),
    ("MULTIPART_DATA_BEFORE", Shape::Single),
    ("MULTIPART_FILENAME", Shape::Collection),
    ("MULTIPART_FILE_LIMIT_EXCEEDED", Shape::Single),
    ("MULTIPART_HEADER_FOLDING", Shape::Single),
    ("MULTIPART_INVALID_HEADER_FOLDING", Shape::Single),
    ("MULTIPART_INVALID_PART", Shape::Single),
    ("MULTIPART_INVALID_QUOTING", Shape::Single),
    ("MULTIPART_LF_LINE", Shape::Single),
    ("MULTIPART_MISSING_SEMICOLON", Shape::Single),
    ("MULTIPART_NAME", Shape::Collection),
    ("MULTIPART_PART_HEADERS", Shape::Collection),
    ("MULTIPART_SEMICOLON_MISSING", Shape::Single),
    ("MULTIPART_STRICT_ERROR", Shape::Single),
    ("MULTIPART_UNMATCHED_BOUNDARY", Shape::Single),
    ("OUTBOUND_DATA_ERROR", Shape::Single),
    ("PATH_INFO", Shape::Single),
    ("QUERY_STRING", Shape::Single),
    ("REMOTE_ADDR", Shape::Single),
    ("REMOTE_HOST", Shape::Single),
    ("REMOTE_PORT", Shape::Single),
    ("REMOTE_USER", Shape::Single),
    ("REQBODY_ERROR", Shape::Single),
    ("REQBODY_ERROR_MSG", Shape::Single),
    ("REQBODY_PROCESSOR", Shape::Single),
    ("REQBODY_PROCESSOR_ERROR", Shape::Single),
    ("REQBODY_PROCESSOR_ERROR_MSG", Shape::Single),
    ("REQUEST_BASENAME", Shape::Single),
    ("REQUEST_BODY", Shape::Single),
    ("REQUEST_BODY_LENGTH", Shape::Single),
    ("REQUEST_COOKIES", Shape::Collection),
    ("REQUEST_COOKIES_NAMES", Shape::Collection),
    ("REQUEST_FILENAME", Shape::Single),
    ("REQUEST_HEADERS", Shape::Collection),
    ("REQUEST_HEADERS_NAMES", Shape::Collection),
    ("REQUEST_LINE", Shape::Single),
    ("REQUEST_METHOD", Shape::Single),
    ("REQUEST_PROTOCOL", Shape::Single),
    ("REQUEST_URI", Shape::Single),
    ("REQUEST_URI_RAW", Shape::Single),
    ("REQUEST_XML", Shape::Collection),
    ("RESOURCE", Shape::Collection),
    ("RESPONSE_ARGS", Shape::Collection),
    ("RESPONSE_BODY", Shape::Single),
    ("RESPONSE_CONTENT_LENGTH", Shape::Single),
    ("RESPONSE_CONTENT_TYPE", Shape::Single),
    ("RESPONSE_HEADERS", Shape::Collection),
    ("RESPONSE_HEADERS_NAMES", Shape::Collection),
    ("RESPONSE_PROTOCOL", Shape::Single),
    ("RESPONSE_STATUS", Shape::Single),
    ("RESPONSE_XML", Shape::Collection),
    ("RULE", Shape::Collection),
    ("SERVER_ADDR", Shape::Single),
    ("SERVER_NAME", Shape::Single),
    ("SERVER_PORT", Shape::Single),
    ("SESSION", Shape::Collection),
    ("SESSIONID", Shape::Single),
    ("STATUS", Shape::Single),
    ("STATUS_LINE", Shape::Single),
    ("TIME", Shape::Single),
    ("TIME_DAY", Shape::Single),
    ("TIME_EPOCH", Shape::Single),
    ("TIME_HOUR", Shape::Single),
    ("TIME_MIN", Shape::Single),
    ("TIME_MON", Shape::Single),
    ("TIME_SEC", Shape::Single),
    ("TIME_WDAY", Shape::Single),
    ("TIME_YEAR", Shape::Single),
    ("TX", Shape::Collection),
    ("UNIQUE_ID", Shape::Single),
    ("URLENCODED_ERROR", Shape::Single),
    ("USER", Shape::Collection),
    ("USERID", Shape::Single),
    ("WEBAPPID", Shape::Single),
    ("WEBSERVER_ERROR_LOG", Shape::Single),
    ("XML", Shape::Collection),
];

/// The [`Shape`] of a known variable name (upper-case), or `None` when it is unknown.
pub fn shape(collection: &str) -> Option<Shape> {
    COLLECTIONS
        .binary_search_by(|(name, _)| (*name).cmp(collection))
        .ok()
        .and_then(|i| COLLECTIONS.get(i))
        .map(|(_, shape)| *shape)
}

fn invalid(text: &str, reason: &'static str) -> ErrorKind {
    ErrorKind::InvalidVariable {
        text: text.to_owned(),
        reason,
    }
}

/// Parses a `|`-separated variable list.
pub(crate) fn parse_list(text: &str) -> Result<Vec<Variable>, ErrorKind> {
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid(text, "empty variable list"));
    }
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let (var, after) = parse_one(rest, text)?;
        out.push(var);
        match after.trim_start().strip_prefix('|') {
            Some(next) => rest = next.trim_start(),
            None if after.trim().is_empty() => return Ok(out),
            None => return Err(invalid(text, "expected | between variables")),
        }
    }
}

/// Parses one item at the start of `text`, returning it and the unparsed rest (which starts
/// with `|` or is empty/blank).
fn parse_one<'a>(text: &'a str, whole: &str) -> Result<(Variable, &'a str), ErrorKind> {
    let mut rest = text;
    let mut negated = false;
    let mut count = false;
    loop {
        if let Some(r) = rest.strip_prefix('!') {
            if negated {
                return Err(invalid(whole, "repeated !"));
            }
            negated = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('&') {
            if count {
                return Err(invalid(whole, "repeated &"));
            }
            count = true;
            rest = r;
        } else {
            break;
        }
    }
    if negated && count {
        return Err(invalid(
            whole,
            "a variable cannot be both excluded (!) and counted (&)",
        ));
    }
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (name, mut rest) = rest.split_at(name_len);
    if name.is_empty() {
        return Err(invalid(whole, "missing variable name"));
    }
    let collection = name.to_ascii_uppercase();
    let Some(shape) = shape(&collection) else {
        return Err(ErrorKind::UnknownVariable(name.to_owned()));
    };
    let mut selector = None;
    if let Some(r) = rest.strip_prefix(':').or_else(|| rest.strip_prefix('.')) {
        let (sel, r) = parse_selector(r, &collection, whole)?;
        if shape == Shape::Single {
            return Err(invalid(
                whole,
                "this variable holds one value and takes no selector",
            ));
        }
        selector = Some(sel);
        rest = r;
    }
    if !(rest.trim_start().is_empty() || rest.trim_start().starts_with('|')) {
        return Err(invalid(whole, "unexpected character after variable name"));
    }
    if negated && selector.is_none() {
        return Err(invalid(
            whole,
            "an exclusion (!) needs a selector, e.g. !ARGS:foo",
        ));
    }
    Ok((
        Variable {
            negated,
            count,
            collection,
            selector,
        },
        rest,
    ))
}

fn parse_selector<'a>(
    text: &'a str,
    collection: &str,
    whole: &str,
) -> Result<(Selector, &'a str), ErrorKind> {
    if collection == "XML" {
        let end = text.find('|').unwrap_or(text.len());
        let (xpath, rest) = text.split_at(end);
        let xpath = xpath.trim_end();
        if xpath.is_empty() {
            return Err(invalid(whole, "empty selector"));
        }
        return Ok((Selector::XPath(xpath.to_owned()), rest));
    }
    if let Some(quoted) = text.strip_prefix('\'') {
        // A quoted key or regex: runs to the next unescaped quote.
        let close = find_unescaped(quoted, b'\'')
            .ok_or_else(|| invalid(whole, "unterminated quote in selector"))?;
        let inner = quoted.get(..close).unwrap_or_default();
        let rest = quoted.get(close + 1..).unwrap_or_default();
        if let Some(regex) = inner.strip_prefix('/') {
            let regex = regex
                .strip_suffix('/')
                .filter(|r| !r.is_empty() || inner.len() >= 2)
                .ok_or_else(|| invalid(whole, "a quoted regular expression must end with /"))?;
            return Ok((Selector::Regex(regex.to_owned()), rest));
        }
        if inner.is_empty() {
            return Err(invalid(whole, "empty selector"));
        }
        return Ok((Selector::Key(inner.to_owned()), rest));
    }
    if let Some(regex) = text.strip_prefix('/') {
        let close = find_unescaped(regex, b'/')
            .ok_or_else(|| invalid(whole, "unterminated regular expression selector"))?;
        let inner = regex.get(..close).unwrap_or_default();
        return Ok((
            Selector::Regex(inner.to_owned()),
            regex.get(close + 1..).unwrap_or_default(),
        ));
    }
    let end = text
        .find(|c: char| c == '|' || c.is_whitespace())
        .unwrap_or(text.len());
    let (key, rest) = text.split_at(end);
    if key.is_empty() {
        return Err(invalid(whole, "empty selector"));
    }
    Ok((Selector::Key(key.to_owned()), rest))
}

/// The byte offset of the first `delim` in `text` not preceded by an odd run of backslashes.
fn find_unescaped(text: &str, delim: u8) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == delim {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(negated: bool, count: bool, c: &str, s: Option<Selector>) -> Variable {
        Variable {
            negated,
            count,
            collection: c.to_owned(),
            selector: s,
        }
    }

    #[test]
    fn table_is_sorted() {
        assert!(COLLECTIONS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn lists_with_selectors() {
        let got = parse_list(
            "REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|&ARGS|args:foo|XML:/*|TX:1|REQUEST_HEADERS:'/^x-(a|b)/'",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                v(false, false, "REQUEST_COOKIES", None),
                v(
                    true,
                    false,
                    "REQUEST_COOKIES",
                    Some(Selector::Regex("__utm".into()))
                ),
                v(false, true, "ARGS", None),
                v(false, false, "ARGS", Some(Selector::Key("foo".into()))),
                v(false, false, "XML", Some(Selector::XPath("/*".into()))),
                v(false, false, "TX", Some(Selector::Key("1".into()))),
                v(
                    false,
                    false,
                    "REQUEST_HEADERS",
                    Some(Selector::Regex("^x-(a|b)".into()))
                ),
            ]
        );
    }

    #[test]
    fn regex_with_pipe_and_escaped_slash() {
        let got = parse_list(r"ARGS:/^(a|b)\/c$/|ARGS_NAMES").unwrap();
        assert_eq!(got[0].selector, Some(Selector::Regex(r"^(a|b)\/c$".into())));
        assert_eq!(got[1].collection, "ARGS_NAMES");
    }

    #[test]
    fn blanks_around_pipes() {
        let got = parse_list(" ARGS | ARGS_NAMES |REQUEST_HEADERS:x ").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].selector, Some(Selector::Key("x".into())));
    }

    #[test]
    fn dot_separator_and_xpath_attribute() {
        let got = parse_list("TX.anomaly_score|XML://@*").unwrap();
        assert_eq!(got[0].selector, Some(Selector::Key("anomaly_score".into())));
        assert_eq!(got[1].selector, Some(Selector::XPath("//@*".into())));
    }

    #[test]
    fn display_round_trips() {
        for text in ["!ARGS:foo", "&TX:x", "ARGS:/^a/", "XML:/*", "REQUEST_URI"] {
            assert_eq!(parse_list(text).unwrap()[0].to_string(), text);
        }
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "ARGS|",
            "NOPE",
            "!ARGS",
            "!&ARGS:x",
            "REQUEST_URI:foo",
            "ARGS:/abc",
            "ARGS:'abc",
            "ARGS:",
            "XML:",
            "ARGS;x",
            "|ARGS",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
