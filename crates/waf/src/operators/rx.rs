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
///   under multi-line mode); `\z` is kept.
///
/// Everything else is passed through; a pattern the `regex` crate still rejects (look-around,
/// back-references) is reported at load.
pub fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
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
        assert_eq!(translate(r"a\\x{ff}"), r"a\\x{ff}");
        assert!(compile(r"[\x{bc}]").is_ok());
        assert!(compile("[é]").unwrap().is_match(b"\xa9"));
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
