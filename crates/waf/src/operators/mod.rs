//! Operators (`@rx`, `@pm`, `@eq`, ...): compiled once at rule load from the parser's
//! [`rampart_seclang::Operator`], evaluated per value by the transaction.
//!
//! `Op::compile` accepts every operator the parser knows (a test checks it against
//! `rampart_seclang::operator::OPERATORS`). Arguments holding macros
//! (`@lt %{tx.blocking_paranoia_level}`) are expanded per evaluation through [`Expand`].

mod compare;

pub(crate) use compare::to_int;
mod injection;
mod ipmatch;
mod pm;
pub mod rx;
mod validate;

use std::borrow::Cow;
use std::path::Path;

use rampart_seclang::{Location, MacroString};
use regex::bytes::Regex;

use crate::error::{CompileError, CompileErrorKind};

thread_local! {
    /// Patterns approximated while compiling on this thread (drained by the rule set).
    pub(crate) static APPROXIMATED: std::cell::RefCell<Vec<String>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Macro expansion, provided by the transaction.
pub(crate) trait Expand {
    /// Appends `m` with its `%{...}` references expanded to `out`.
    fn expand_into(&self, m: &MacroString, out: &mut Vec<u8>);

    /// Expands `%{...}` references in `m`.
    fn expand(&self, m: &MacroString) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        self.expand_into(m, &mut out);
        out
    }

    /// Expands `m`, borrowing the value when `m` is a single reference the implementation can
    /// lend (`%{tx.allowed_methods}`), else as [`Expand::expand`].
    fn expand_cow<'s>(&'s self, m: &MacroString) -> Cow<'s, [u8]> {
        Cow::Owned(self.expand(m))
    }
}

/// An operator argument: literal, or with macros to expand per evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Lit(Vec<u8>),
    Macro(MacroString),
}

impl Arg {
    fn new(text: &str) -> Self {
        let m = MacroString::parse(text);
        if m.is_literal() {
            Self::Lit(text.as_bytes().to_vec())
        } else {
            Self::Macro(m)
        }
    }

    fn get<'a>(&'a self, ex: &'a dyn Expand) -> Cow<'a, [u8]> {
        match self {
            Self::Lit(v) => Cow::Borrowed(v),
            Self::Macro(m) => ex.expand_cow(m),
        }
    }
}

/// A compiled operator.
#[derive(Debug)]
pub(crate) enum Op {
    Rx(Box<rx::Rx>),
    RxMacro(MacroString),
    Pm(pm::Pm),
    StrEq(Arg),
    BeginsWith(Arg),
    EndsWith(Arg),
    Contains(Arg),
    ContainsWord(Arg),
    Within(Arg),
    Num(compare::Cmp, Arg),
    Unconditional,
    NoMatch,
    DetectSqli,
    DetectXss,
    ValidateByteRange(Box<[bool; 256]>),
    ValidateUrlEncoding,
    ValidateUtf8,
    IpMatch(ipmatch::IpList),
    VerifyCc(Box<Regex>),
}

/// The outcome of one evaluation.
#[derive(Debug, Default)]
pub(crate) struct OpMatch {
    /// `TX:0`..`TX:9` candidates (whole match first), filled only when captures are wanted.
    pub captures: Vec<Vec<u8>>,
}

impl Op {
    /// The operator's argument when it has macros (expanded per evaluation).
    pub(crate) fn macros(&self) -> Option<&MacroString> {
        match self {
            Self::RxMacro(m)
            | Self::StrEq(Arg::Macro(m))
            | Self::BeginsWith(Arg::Macro(m))
            | Self::EndsWith(Arg::Macro(m))
            | Self::Contains(Arg::Macro(m))
            | Self::ContainsWord(Arg::Macro(m))
            | Self::Within(Arg::Macro(m))
            | Self::Num(_, Arg::Macro(m)) => Some(m),
            _ => None,
        }
    }

    /// Compiles `op` (its argument, data files relative to `location`).
    pub fn compile(
        op: &rampart_seclang::Operator,
        location: &Location,
    ) -> Result<Self, CompileError> {
        let arg = op.argument.as_str();
        let err = |kind: CompileErrorKind| CompileError::new(kind, location);
        let bad = |reason: String| {
            err(CompileErrorKind::Operator {
                name: op.name.clone(),
                argument: arg.to_owned(),
                reason,
            })
        };
        Ok(match op.name.as_str() {
            "rx" | "rxglobal" | "rsub" => {
                if MacroString::parse(arg).is_literal() {
                    match rx::compile_rx(arg) {
                        Ok(r) => Self::Rx(Box::new(r)),
                        Err(e) => {
                            let approx = rx::approximate(arg);
                            let re = rx::compile(&approx).map_err(|_| bad(e.clone()))?;
                            APPROXIMATED.with(|a| {
                                a.borrow_mut().push(format!(
                                    "{}:{}: @rx approximated (back-references or look-around \
                                     dropped; matches a superset): {e}",
                                    location.file.display(),
                                    location.line
                                ));
                            });
                            Self::Rx(Box::new(rx::Rx::Plain(re)))
                        }
                    }
                } else {
                    Self::RxMacro(MacroString::parse(arg))
                }
            }
            "pm" => Self::Pm(pm::Pm::from_words(arg).map_err(bad)?),
            "pmfromfile" => {
                let mut words = Vec::new();
                for file in arg.split_whitespace() {
                    let path = location.resolve(file);
                    let text = std::fs::read(&path)
                        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
                    words.extend(pm::data_file_lines(&text));
                }
                Self::Pm(pm::Pm::new(words).map_err(bad)?)
            }
            "streq" => Self::StrEq(Arg::new(arg)),
            "beginswith" => Self::BeginsWith(Arg::new(arg)),
            "endswith" => Self::EndsWith(Arg::new(arg)),
            "contains" | "strmatch" => Self::Contains(Arg::new(arg)),
            "containsword" => Self::ContainsWord(Arg::new(arg)),
            "within" => Self::Within(Arg::new(arg)),
            "eq" => Self::Num(compare::Cmp::Eq, Arg::new(arg)),
            "ge" => Self::Num(compare::Cmp::Ge, Arg::new(arg)),
            "gt" => Self::Num(compare::Cmp::Gt, Arg::new(arg)),
            "le" => Self::Num(compare::Cmp::Le, Arg::new(arg)),
            "lt" => Self::Num(compare::Cmp::Lt, Arg::new(arg)),
            "unconditionalmatch" => Self::Unconditional,
            "nomatch" => Self::NoMatch,
            "detectsqli" => Self::DetectSqli,
            "detectxss" => Self::DetectXss,
            "validatebyterange" => {
                Self::ValidateByteRange(Box::new(validate::byte_ranges(arg).map_err(bad)?))
            }
            "validateurlencoding" => Self::ValidateUrlEncoding,
            "validateutf8encoding" => Self::ValidateUtf8,
            "ipmatch" => Self::IpMatch(ipmatch::IpList::parse(arg.split([',', ' '])).map_err(bad)?),
            "ipmatchfromfile" => {
                let path = location.resolve(arg.trim());
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
                Self::IpMatch(
                    ipmatch::IpList::parse(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#')),
                    )
                    .map_err(bad)?,
                )
            }
            "verifycc" | "verifycpf" | "verifyssn" | "verifysvnr" => {
                Self::VerifyCc(Box::new(rx::compile(arg).map_err(bad)?))
            }
            // Operators that need an external service or database this engine does not ship
            // (GeoIP, RBL, Google Safe Browsing, external scripts, fuzzy hashes, DTD/XSD
            // validation): they load, and never match.
            "geolookup" | "rbl" | "gsblookup" | "inspectfile" | "fuzzyhash" | "validatedtd"
            | "validateschema" | "validatehash" => Self::NoMatch,
            other => {
                return Err(err(CompileErrorKind::UnsupportedOperator(other.to_owned())));
            }
        })
    }

    /// Literals one of which (ASCII case-insensitively) occurs in every input the operator
    /// matches, lower-cased; `None` when there is no such set (see [`crate::prefilter`]).
    pub(crate) fn factors(&self) -> Option<Vec<Vec<u8>>> {
        match self {
            Self::Rx(rx) => match &**rx {
                rx::Rx::Plain(re) => crate::prefilter::translated_rx_factors(re.as_str()),
                rx::Rx::Emulated(_) | rx::Rx::Whole => None,
            },
            Self::Pm(pm) => pm.factors(),
            Self::StrEq(Arg::Lit(v))
            | Self::BeginsWith(Arg::Lit(v))
            | Self::EndsWith(Arg::Lit(v))
            | Self::Contains(Arg::Lit(v))
            | Self::ContainsWord(Arg::Lit(v))
                if !v.is_empty() =>
            {
                Some(vec![v.to_ascii_lowercase()])
            }
            _ => None,
        }
    }

    /// Whether the (non-negated) operator matches `input`; fills `m.captures` when `capture`.
    pub fn eval(&self, input: &[u8], ex: &dyn Expand, capture: bool, m: &mut OpMatch) -> bool {
        match self {
            Self::Rx(re) => re.captures(input, capture.then_some(&mut m.captures)),
            Self::RxMacro(pat) => {
                let p = String::from_utf8_lossy(&ex.expand(pat)).into_owned();
                match rx::compile(&p) {
                    Ok(re) => rx_eval(&re, input, capture, m),
                    Err(_) => false,
                }
            }
            Self::Pm(pm) => match pm.find(input) {
                Some(found) => {
                    if capture {
                        m.captures.push(found.to_vec());
                    }
                    true
                }
                None => false,
            },
            Self::StrEq(a) => cap(a.get(ex).as_ref() == input, input, capture, m),
            Self::BeginsWith(a) => cap(input.starts_with(&a.get(ex)), &a.get(ex), capture, m),
            Self::EndsWith(a) => cap(input.ends_with(&a.get(ex)), &a.get(ex), capture, m),
            Self::Contains(a) => {
                let needle = a.get(ex);
                cap(
                    memchr::memmem::find(input, &needle).is_some(),
                    &needle,
                    capture,
                    m,
                )
            }
            Self::ContainsWord(a) => {
                let needle = a.get(ex);
                cap(compare::contains_word(input, &needle), &needle, capture, m)
            }
            Self::Within(a) => {
                let hay = a.get(ex);
                cap(
                    input.is_empty() || memchr::memmem::find(&hay, input).is_some(),
                    input,
                    capture,
                    m,
                )
            }
            Self::Num(c, a) => c.eval(input, &a.get(ex)),
            Self::Unconditional => true,
            Self::NoMatch => false,
            Self::DetectSqli => match injection::sqli(input) {
                Some(fp) => {
                    if capture {
                        m.captures.push(fp.into_bytes());
                    }
                    true
                }
                None => false,
            },
            Self::DetectXss => injection::xss(input),
            Self::ValidateByteRange(allowed) => input
                .iter()
                .any(|b| !allowed.get(usize::from(*b)).copied().unwrap_or(false)),
            Self::ValidateUrlEncoding => validate::invalid_url_encoding(input),
            Self::ValidateUtf8 => std::str::from_utf8(input).is_err(),
            Self::IpMatch(list) => list.matches(input),
            Self::VerifyCc(re) => validate::verify_cc(re, input, capture, m),
        }
    }
}

fn cap(hit: bool, what: &[u8], capture: bool, m: &mut OpMatch) -> bool {
    if hit && capture {
        m.captures.push(what.to_vec());
    }
    hit
}

fn rx_eval(re: &Regex, input: &[u8], capture: bool, m: &mut OpMatch) -> bool {
    if !capture {
        return re.is_match(input);
    }
    match re.captures(input) {
        Some(c) => {
            for i in 0..c.len().min(10) {
                m.captures
                    .push(c.get(i).map(|g| g.as_bytes().to_vec()).unwrap_or_default());
            }
            true
        }
        None => false,
    }
}

/// Reads a data file for `@pmFromFile` (exposed for tests).
pub fn read_data_file(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    Ok(pm::data_file_lines(&std::fs::read(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoMacros;
    impl Expand for NoMacros {
        fn expand_into(&self, _: &MacroString, out: &mut Vec<u8>) {
            out.extend_from_slice(b"5");
        }
    }

    fn op(name: &str, arg: &str) -> Op {
        let loc = Location {
            file: std::sync::Arc::from(Path::new("/tmp/x.conf")),
            line: 1,
        };
        Op::compile(
            &rampart_seclang::Operator {
                negated: false,
                name: name.into(),
                argument: arg.into(),
            },
            &loc,
        )
        .unwrap()
    }

    fn eval(o: &Op, input: &str) -> bool {
        o.eval(input.as_bytes(), &NoMacros, false, &mut OpMatch::default())
    }

    #[test]
    fn every_operator_the_parser_knows_compiles() {
        let data = std::env::temp_dir().join(format!("rampart-op-data-{}", std::process::id()));
        std::fs::write(&data, "127.0.0.1\n10.0.0.0/8\n").unwrap();
        let file = data.to_str().unwrap();
        for name in rampart_seclang::operator::OPERATORS {
            let arg = match *name {
                "ipmatch" => "127.0.0.1",
                "validatebyterange" => "1-255",
                "pmfromfile" | "ipmatchfromfile" => file,
                _ => "1",
            };
            let compiled = Op::compile(
                &rampart_seclang::Operator {
                    negated: false,
                    name: (*name).into(),
                    argument: arg.into(),
                },
                &Location {
                    file: std::sync::Arc::from(Path::new("/tmp/x.conf")),
                    line: 1,
                },
            );
            assert!(compiled.is_ok(), "@{name} {arg}: {:?}", compiled.err());
        }
        let _ = std::fs::remove_file(&data);
    }

    #[test]
    fn strings_and_numbers() {
        assert!(eval(&op("streq", "GET"), "GET"));
        assert!(eval(&op("within", "GET POST"), "POST"));
        assert!(!eval(&op("within", "GET POST"), "PUT"));
        assert!(eval(&op("beginswith", "ab"), "abc"));
        assert!(eval(&op("endswith", "bc"), "abc"));
        assert!(eval(&op("contains", "b"), "abc"));
        assert!(eval(&op("containsword", "cat"), "a cat!"));
        assert!(!eval(&op("containsword", "cat"), "concat"));
        assert!(eval(&op("eq", "0"), "0"));
        assert!(eval(&op("lt", "%{tx.x}"), "4"));
        assert!(eval(&op("gt", "3"), "10"));
        assert!(eval(&op("ge", "3"), "3"));
        assert!(eval(&op("le", "3"), "abc"));
    }

    #[test]
    fn validators() {
        assert!(eval(&op("validatebyterange", "32-126"), "a\x01"));
        assert!(!eval(&op("validatebyterange", "1-255"), "abc"));
        assert!(eval(&op("validateurlencoding", ""), "%zz"));
        assert!(!eval(&op("validateurlencoding", ""), "%41"));
        assert!(eval(&op("ipmatch", "10.0.0.0/8,::1"), "10.1.2.3"));
        assert!(eval(&op("ipmatch", "10.0.0.0/8,::1"), "::1"));
        assert!(!eval(&op("ipmatch", "10.0.0.0/8"), "11.0.0.1"));
        assert!(eval(&op("pm", "foo bar"), "xxBARxx"));
        assert!(eval(&op("verifycc", r"\d{13,16}"), "4111111111111111"));
        assert!(!eval(&op("verifycc", r"\d{13,16}"), "4111111111111112"));
    }
}
