//! `@rx`: regular expressions on the linear-time `regex` engine, in bytes mode.
//!
//! ModSecurity compiles patterns with PCRE in byte (non-UTF) mode with `DOTALL` and
//! `MULTILINE`; this module gives the `regex` crate the same meaning: Unicode off (`\w`, `\d`,
//! `\s`, case folding and `.` are byte-wise, ASCII), `(?s)` and `(?m)` on. PCRE spellings the
//! `regex` crate reads differently are translated before compiling (see [`translate`]).

use regex::bytes::{Regex, RegexBuilder};

/// Compiles a ModSecurity regular expression.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern);
    RegexBuilder::new(&translated)
        .unicode(false)
        .dot_matches_new_line(true)
        .multi_line(true)
        .size_limit(64 << 20)
        .dfa_size_limit(16 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// Compiles a case-insensitive regular expression (variable selectors such as `ARGS:/^id_/`).
pub fn compile_ci(pattern: &str) -> Result<Regex, String> {
    compile(&format!("(?i){pattern}"))
}

/// Rewrites PCRE spellings the `regex` crate does not read the same way:
///
/// - `\x{HH}` (two hex digits or fewer) becomes `\xHH`: with Unicode off the `regex` crate only
///   accepts byte escapes in that spelling inside classes;
/// - a literal non-ASCII character becomes the `\xHH` escapes of its UTF-8 bytes (PCRE in byte
///   mode sees bytes, also inside classes);
/// - `\Z` becomes `$` (end of input or before a final newline is approximated by end of line
///   under multi-line mode); `\z` is kept;
/// - possessive quantifiers (`*+`, `++`, `?+`) and atomic groups (`(?>...)`) become greedy
///   ones and plain groups: with no back-references the match decision only differs when the
///   next token can match what the quantifier took, which the CRS patterns that use them
///   (CRS 3.3's `\s*+;`) never allow;
/// - a `{` that does not start a valid quantifier is escaped (PCRE reads it literally);
/// - `\<` and `\>` (PCRE: the literal characters; `regex`: word boundaries) lose the backslash;
/// - inside a class, `[`, `&` and `~` are escaped (literal in PCRE; nesting and set operators
///   in the `regex` crate).
///
/// Everything else is passed through; a pattern the `regex` crate still rejects (look-around,
/// back-references) is reported at load.
pub fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.char_indices().peekable();
    let mut in_class = false;
    let mut prev_quantifier = false;
    while let Some((i, c)) = chars.next() {
        let was_quantifier = std::mem::take(&mut prev_quantifier);
        if !in_class && c == '+' && was_quantifier {
            // A possessive quantifier (`*+`, `++`, `?+`, `{n}+`): kept greedy.
            continue;
        }
        if !in_class && c == '(' && pattern.get(i..i + 3) == Some("(?>") {
            // An atomic group: kept as a plain group.
            out.push_str("(?:");
            chars.next();
            chars.next();
            continue;
        }
        if c == '[' && !in_class {
            in_class = true;
            out.push(c);
            // A `]` (after an optional `^`) first in a class is literal.
            if let Some((_, '^')) = chars.peek() {
                out.push('^');
                chars.next();
            }
            if let Some((_, ']')) = chars.peek() {
                out.push_str("\\]");
                chars.next();
            }
            continue;
        }
        if c == ']' && in_class {
            in_class = false;
            out.push(c);
            continue;
        }
        if in_class && matches!(c, '[' | '&' | '~') {
            // Literal in a PCRE class; nesting or set operators in the `regex` crate.
            out.push('\\');
            out.push(c);
            continue;
        }
        if !in_class && c == '{' {
            let rest = pattern.get(i + 1..).unwrap_or_default();
            let close = rest.find('}');
            let valid = close.is_some_and(|e| {
                let body = rest.get(..e).unwrap_or_default();
                let (a, b) = body.split_once(',').unwrap_or((body, "0"));
                !a.is_empty()
                    && a.bytes().all(|d| d.is_ascii_digit())
                    && b.bytes().all(|d| d.is_ascii_digit())
            });
            if !valid {
                // PCRE reads a `{` that does not start a quantifier as a literal.
                out.push_str("\\{");
                continue;
            }
        }
        if !in_class && matches!(c, '*' | '+' | '?' | '}') {
            prev_quantifier = !(c == '?' && out.ends_with('('));
            out.push(c);
            continue;
        }
        if c == '\\' {
            let Some((_, n)) = chars.next() else {
                out.push('\\');
                break;
            };
            match n {
                'x' if pattern.get(i + 2..i + 3) == Some("{") => {
                    let rest = pattern.get(i + 3..).unwrap_or_default();
                    match rest.find('}') {
                        Some(end)
                            if end > 0
                                && end <= 2
                                && rest
                                    .get(..end)
                                    .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())) =>
                        {
                            let hex = rest.get(..end).unwrap_or("0");
                            out.push_str("\\x");
                            if hex.len() == 1 {
                                out.push('0');
                            }
                            out.push_str(hex);
                            // skip "{HH}"
                            for _ in 0..end + 2 {
                                chars.next();
                            }
                        }
                        _ => out.push_str("\\x"),
                    }
                }
                'Z' => out.push('$'),
                // PCRE reads an escaped punctuation character as itself; the `regex` crate
                // reads `\<` and `\>` as word boundaries.
                '<' | '>' => out.push(n),
                _ => {
                    out.push('\\');
                    push_char(&mut out, n);
                }
            }
        } else {
            push_char(&mut out, c);
        }
    }
    out
}

fn push_char(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c);
    } else {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translations() {
        assert_eq!(translate(r"[\x{ff}\x{7f}]"), r"[\xff\x7f]");
        assert_eq!(translate(r"\x{100}"), r"\x{100}");
        assert_eq!(translate("[é]"), r"[\xc3\xa9]");
        assert_eq!(translate(r"a\\x{ff}"), r"a\\x\{ff}");
        assert!(compile(r"[\x{bc}]").is_ok());
        assert!(compile("[é]").unwrap().is_match(b"\xa9"));
        assert_eq!(translate(r"\s*+;a++(?>b)[+]+"), r"\s*;a+(?:b)[+]+");
        assert_eq!(translate(r"[]a]"), r"[\]a]");
        assert_eq!(translate(r"[\<\>]\<"), r"[<>]<");
        assert_eq!(translate(r"a{2}b{,3}c{x}"), r"a{2}b\{,3}c\{x}");
        assert_eq!(translate(r"[![\]&&]"), r"[!\[\]\&\&]");
    }

    #[test]
    fn byte_semantics() {
        let re = compile(r"^\w+$").unwrap();
        assert!(!re.is_match("é".as_bytes()));
        assert!(compile("a.b").unwrap().is_match(b"a\nb"));
        assert!(compile("(?i)select").unwrap().is_match(b"SeLeCt"));
        assert!(compile(r"\xff").unwrap().is_match(b"\xff"));
    }
}

/// A compiled `@rx` operand: a plain regex, or (for patterns with look-around, which the
/// `regex` crate does not have) an exact emulation of a look-behind at the start or a
/// look-ahead at the end of a top-level alternative, checked in a bounded window around each
/// candidate match; or, as a last resort, an approximation without look-around and
/// back-references (reported at load).
#[derive(Debug)]
pub enum Rx {
    /// A plain regular expression.
    Plain(Regex),
    /// Top-level alternatives, some with look-around.
    Emulated(Vec<Branch>),
    /// A pattern that matches every input, the whole input being the match (`^.*$`: `.`
    /// matches every byte under `DOTALL`, and the greedy star reaches the end): no search.
    Whole,
}

/// The spellings of [`Rx::Whole`]: without groups, anchored at most at the start and the end.
const WHOLE: [&str; 4] = ["^.*$", "^.*", ".*$", ".*"];

/// One alternative of an emulated pattern.
#[derive(Debug)]
pub struct Branch {
    behind: Option<Around>,
    body: Regex,
    ahead: Option<Around>,
}

/// A bounded look-around check.
#[derive(Debug)]
struct Around {
    negated: bool,
    re: Regex,
    max_len: usize,
}

impl Rx {
    /// Whether the pattern matches; `caps` receives the groups (or the whole match).
    pub fn captures(&self, input: &[u8], caps: Option<&mut Vec<Vec<u8>>>) -> bool {
        match self {
            Self::Plain(re) => match caps {
                None => re.is_match(input),
                // The lazy DFA answers most inputs (no match) without the capture engine.
                Some(_) if !re.is_match(input) => false,
                Some(out) => match re.captures(input) {
                    Some(c) => {
                        for i in 0..c.len().min(10) {
                            out.push(c.get(i).map(|g| g.as_bytes().to_vec()).unwrap_or_default());
                        }
                        true
                    }
                    None => false,
                },
            },
            Self::Whole => {
                if let Some(out) = caps {
                    out.push(input.to_vec());
                }
                true
            }
            Self::Emulated(branches) => {
                for b in branches {
                    if let Some((s, e)) = b.find(input) {
                        if let Some(out) = caps {
                            out.push(input.get(s..e).unwrap_or_default().to_vec());
                        }
                        return true;
                    }
                }
                false
            }
        }
    }
}

impl Branch {
    fn find(&self, input: &[u8]) -> Option<(usize, usize)> {
        let mut at = 0;
        while at <= input.len() {
            let m = self.body.find_at(input, at)?;
            let ok_behind = self.behind.as_ref().is_none_or(|a| {
                let from = m.start().saturating_sub(a.max_len);
                let window = input.get(from..m.start()).unwrap_or_default();
                a.re.is_match(window) != a.negated
            });
            let ok_ahead = self.ahead.as_ref().is_none_or(|a| {
                let to = m.end().saturating_add(a.max_len).min(input.len());
                let window = input.get(m.end()..to).unwrap_or_default();
                a.re.is_match(window) != a.negated
            });
            if ok_behind && ok_ahead {
                return Some((m.start(), m.end()));
            }
            at = m.start() + 1;
        }
        None
    }
}

/// Splits `p` at its top-level `|`.
fn top_level_alternatives(p: &str) -> Vec<&str> {
    let bytes = p.as_bytes();
    let mut out = Vec::new();
    let (mut depth, mut in_class, mut start, mut i) = (0i32, false, 0, 0);
    while let Some(&c) = bytes.get(i) {
        match c {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                if bytes.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if bytes.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => depth -= 1,
            b'|' if !in_class && depth == 0 => {
                out.push(p.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(p.get(start..).unwrap_or_default());
    out
}

/// The index of the `)` closing the group opened at `open`.
fn group_end(p: &str, open: usize) -> Option<usize> {
    let bytes = p.as_bytes();
    let (mut depth, mut in_class, mut i) = (0i32, false, open);
    while let Some(&c) = bytes.get(i) {
        match c {
            b'\\' => i += 1,
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn around(inner: &str, negated: bool, anchor_end: bool) -> Result<Around, String> {
    let pat = if anchor_end {
        format!("(?:{inner})\\z")
    } else {
        format!("\\A(?:{inner})")
    };
    let re = compile(&pat)?;
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(&translate(inner))
        .map_err(|e| e.to_string())?;
    let max_len = hir
        .properties()
        .maximum_len()
        .ok_or("look-around of unbounded length")?;
    Ok(Around {
        negated,
        re,
        max_len,
    })
}

fn branch(alt: &str) -> Result<Branch, String> {
    let mut body = alt;
    let mut behind = None;
    let mut ahead = None;
    for (prefix, negated) in [("(?<!", true), ("(?<=", false)] {
        if body.starts_with(prefix) {
            let end = group_end(body, 0).ok_or("unbalanced look-behind")?;
            let inner = body.get(prefix.len()..end).unwrap_or_default();
            behind = Some(around(inner, negated, true)?);
            body = body.get(end + 1..).unwrap_or_default();
        }
    }
    for (prefix, negated) in [("(?!", true), ("(?=", false)] {
        if let Some(pos) = body.rfind(prefix)
            && group_end(body, pos) == Some(body.len() - 1)
        {
            let inner = body
                .get(pos + prefix.len()..body.len() - 1)
                .unwrap_or_default();
            ahead = Some(around(inner, negated, false)?);
            body = body.get(..pos).unwrap_or_default();
        }
    }
    Ok(Branch {
        behind,
        body: compile(body)?,
        ahead,
    })
}

/// Compiles an `@rx` operand: plainly when the `regex` crate reads it, else by emulating a
/// leading look-behind / trailing look-ahead per alternative; `Err` when neither works.
pub fn compile_rx(pattern: &str) -> Result<Rx, String> {
    if WHOLE.contains(&pattern) {
        return Ok(Rx::Whole);
    }
    match compile(pattern) {
        Ok(re) => Ok(Rx::Plain(re)),
        Err(plain_err) => {
            let branches: Result<Vec<Branch>, String> = top_level_alternatives(pattern)
                .into_iter()
                .map(branch)
                .collect();
            branches.map(Rx::Emulated).map_err(|_| plain_err)
        }
    }
}

#[cfg(test)]
mod lookaround_tests {
    use super::*;

    /// `Rx::Whole` answers as the compiled regex does, captures included.
    #[test]
    fn whole_input_patterns_match_like_the_regex() {
        let inputs: [&[u8]; 5] = [b"", b"abc", b"a\nb\n", b"\n", b"\xff\x00 x"];
        for p in WHOLE {
            let rx = compile_rx(p).unwrap();
            assert!(matches!(rx, Rx::Whole));
            let re = compile(p).unwrap();
            for input in inputs {
                let mut got = Vec::new();
                assert_eq!(rx.captures(input, Some(&mut got)), re.is_match(input));
                let want = re.captures(input).unwrap();
                assert_eq!(got, vec![want.get(0).unwrap().as_bytes().to_vec()], "{p}");
            }
        }
    }

    #[test]
    fn emulated_lookbehind_and_lookahead() {
        let rx = compile_rx(r#"(?<!&(?:amp)|&(?:apos));|['"=]"#).unwrap();
        assert!(matches!(rx, Rx::Emulated(_)));
        assert!(rx.captures(b"a;b", None));
        assert!(!rx.captures(b"a&amp;b", None));
        assert!(rx.captures(b"a&amp;b=", None));
        let rx = compile_rx(r"<\?(?!xml)").unwrap();
        assert!(rx.captures(b"<?php", None));
        assert!(!rx.captures(b"<?xml version", None));
        assert!(compile_rx(r"(a)\1").is_err());
        assert_eq!(
            approximate(r"\b(\w+)=(?!\b\1\b)\w+|x\1"),
            r"\b(\w+)=\w+|x(?:\w+)"
        );
    }
}

/// The last resort for patterns the `regex` crate cannot express (back-references, look-around
/// in the middle of a pattern, as in CRS 3.3's 942130): look-around groups are dropped and
/// each back-reference `\N` is replaced by the pattern of group N. The result matches a
/// superset of the original (it can only add detections); the compiler reports it.
pub fn approximate(pattern: &str) -> String {
    let bytes = pattern.as_bytes();
    // The text of each capturing group, by number.
    let mut groups: Vec<String> = Vec::new();
    let mut in_class = false;
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        match c {
            b'\\' => i += 1,
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class && bytes.get(i + 1) != Some(&b'?') => {
                if let Some(end) = group_end(pattern, i) {
                    groups.push(pattern.get(i..=end).unwrap_or_default().to_owned());
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    in_class = false;
    while let Some(&c) = bytes.get(i) {
        let rest = pattern.get(i..).unwrap_or_default();
        if !in_class
            && (rest.starts_with("(?!")
                || rest.starts_with("(?=")
                || rest.starts_with("(?<!")
                || rest.starts_with("(?<="))
            && let Some(end) = group_end(pattern, i)
        {
            i = end + 1;
            continue;
        }
        if c == b'\\'
            && let Some(d) = bytes.get(i + 1).filter(|d| (b'1'..=b'9').contains(d))
        {
            let n = usize::from(d - b'1');
            let g = groups.get(n).cloned().unwrap_or_else(|| "(?:)".to_owned());
            out.push_str(&g.replacen('(', "(?:", 1));
            i += 2;
            continue;
        }
        match c {
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            _ => {}
        }
        let len = if c == b'\\' { 2 } else { 1 };
        let end = (i + len).min(pattern.len());
        // Copy whole UTF-8 characters.
        let mut e = end;
        while !pattern.is_char_boundary(e) && e < pattern.len() {
            e += 1;
        }
        out.push_str(pattern.get(i..e).unwrap_or_default());
        i = e;
    }
    out
}
