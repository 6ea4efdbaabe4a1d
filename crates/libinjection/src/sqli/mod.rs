//! SQL-injection detection, libinjection's `libinjection_sqli`.
//!
//! The input is tokenized and folded ([`fold`]) into a fingerprint of at most five token
//! types, e.g. `s&sos` for `1' OR '1'='1`. The fingerprint is looked up in libinjection's table
//! of known SQLi fingerprints ([`data`]); a match is then checked against a few false-positive
//! heuristics ([`not_whitelist`]). The input is tried as is, then as if it followed a single
//! quote, then a double quote (the usual injection points), each in ANSI and, when the input
//! had MySQL-only comment syntax, MySQL mode.

mod data;
mod fold;
mod token;
mod tokenizer;

use data::FINGERPRINTS;
use fold::Tokens;
use token::{Token, flag, kind};
use tokenizer::{Tokenizer, at};

/// One fingerprinting pass over an input in one context.
#[derive(Debug)]
struct Pass<'a> {
    tz: Tokenizer<'a>,
    tokens: Tokens,
    /// Token types; more than five only on the way to an evil "X".
    fingerprint: [u8; 8],
    len: usize,
}

impl<'a> Pass<'a> {
    /// Tokenizes and folds `input` in the context `flags`, computing the fingerprint.
    fn run(input: &'a [u8], flags: u32) -> Self {
        let mut pass = Pass {
            tz: Tokenizer::new(input, flags),
            tokens: Tokens::default(),
            fingerprint: [0; 8],
            len: 0,
        };
        let tlen = fold::fold(&mut pass.tz, &mut pass.tokens);

        // PHP's magic backquote comment: a trailing, empty, unclosed `` ` `` is a comment.
        let last = pass.tokens.get_mut(tlen.wrapping_sub(1)).filter(|t| {
            tlen > 2
                && t.kind == kind::BAREWORD
                && t.str_open == b'`'
                && t.len == 0
                && t.str_close == 0
        });
        if let Some(last) = last {
            last.kind = kind::COMMENT;
        }

        for (f, t) in pass.fingerprint.iter_mut().zip(&pass.tokens).take(tlen) {
            *f = t.kind;
        }
        pass.len = pass
            .fingerprint
            .iter()
            .take(tlen)
            .position(|&k| k == kind::NONE)
            .unwrap_or(tlen);

        // Unparsable ('X'): the whole fingerprint is "X".
        if pass.fp().contains(&kind::EVIL) {
            pass.fingerprint = [kind::EVIL, 0, 0, 0, 0, 0, 0, 0];
            pass.len = 1;
            let mut evil = Token::default();
            evil.assign(kind::EVIL, 0, b"X");
            let [first, second, ..] = &mut pass.tokens;
            {
                *first = evil;
                second.kind = kind::NONE;
            }
        }
        pass
    }

    fn fp(&self) -> &[u8] {
        self.fingerprint.get(..self.len).unwrap_or(&[])
    }

    fn tok(&self, i: usize) -> Token {
        self.tokens.get(i).copied().unwrap_or_default()
    }

    /// Known SQLi fingerprint, and not one of the known false positives.
    fn is_sqli(&self) -> bool {
        self.blacklisted() && self.not_whitelist()
    }

    /// The fingerprint (types upper-cased) is in libinjection's table.
    fn blacklisted(&self) -> bool {
        let fp = self.fp();
        if fp.is_empty() {
            return false;
        }
        FINGERPRINTS
            .binary_search_by(|f| f.bytes().cmp(fp.iter().map(|b| b.to_ascii_uppercase())))
            .is_ok()
    }

    /// libinjection's `libinjection_sqli_not_whitelist`: `true` when still SQLi.
    fn not_whitelist(&self) -> bool {
        let fp = self.fp();
        let s = self.tz.input();
        let stats_tokens = self.tz.stats_tokens;
        let (t0, t1, t2) = (self.tok(0), self.tok(1), self.tok(2));

        // 'sp_password' in a trailing comment hides the query from SQL Server's audit log.
        if fp.len() > 1
            && fp.last() == Some(&kind::COMMENT)
            && s.windows(11).any(|w| w == b"sp_password")
        {
            return true;
        }

        match fp.len() {
            2 => {
                // Very small SQLi: hard to tell from normal input.
                if fp.get(1) == Some(&kind::UNION) {
                    // "1 union" alone is fine; with folding or comments it is not.
                    return stats_tokens != 2;
                }
                if t1.byte(0) == b'#' {
                    return false;
                }
                // "nc": only /* comments count, not -- or #.
                if t0.kind == kind::BAREWORD && t1.kind == kind::COMMENT && t1.byte(0) != b'/' {
                    return false;
                }
                if t0.kind == kind::NUMBER && t1.kind == kind::COMMENT {
                    if t1.byte(0) == b'/' {
                        return true;
                    }
                    if stats_tokens > 2 {
                        // Folding happened: very likely SQLi.
                        return true;
                    }
                    // "1234 --", "1/*", "1--" are SQLi; base64-like "1234-ABC--" is not.
                    let ch = at(s, t0.len);
                    // Signed char in C: bytes from 0x80 are "<= 32" too.
                    if ch <= 32 || ch >= 0x80 {
                        return true;
                    }
                    let next = at(s, t0.len + 1);
                    return (ch == b'/' && next == b'*') || (ch == b'-' && next == b'-');
                }
                // Many people write "--" in plain text: only flag input ending with "--".
                if t1.len > 2 && t1.byte(0) == b'-' {
                    return false;
                }
                true
            }
            3 => {
                if fp == b"sos" || fp == b"s&s" {
                    // "...foo' + 'bar...": no opening quote, no closing quote.
                    return t0.str_open == 0 && t2.str_close == 0 && t0.str_close == t2.str_open;
                }
                if matches!(fp, b"s&n" | b"n&1" | b"1&1" | b"1&v" | b"1&s") {
                    // "sexy and 17" is not SQLi, "sexy and 17<18" is.
                    return stats_tokens != 3;
                }
                if t1.kind == kind::KEYWORD {
                    // Only "INTO OUTFILE" / "INTO DUMPFILE" (MySQL) count.
                    let into = t1
                        .value()
                        .get(..4)
                        .is_some_and(|v| token::eq_upper(b"INTO", v));
                    return t1.len >= 5 && into;
                }
                true
            }
            _ => true,
        }
    }

    /// The input had comment syntax whose meaning differs in MySQL.
    fn reparse_as_mysql(&self) -> bool {
        self.tz.stats_comment_ddx != 0 || self.tz.stats_comment_hash != 0
    }

    fn fingerprint_string(&self) -> String {
        self.fp().iter().map(|&b| char::from(b)).collect()
    }
}

/// libinjection's `libinjection_is_sqli`: the fingerprint when `input` is SQLi.
pub(crate) fn detect(input: &[u8]) -> Option<String> {
    if input.is_empty() {
        return None;
    }
    let check = |flags: u32| {
        let pass = Pass::run(input, flags);
        if pass.is_sqli() {
            Ok(pass.fingerprint_string())
        } else {
            Err(pass.reparse_as_mysql())
        }
    };
    let try_context = |quote: u32| match check(quote | flag::SQL_ANSI) {
        Ok(fp) => Some(fp),
        Err(true) => check(quote | flag::SQL_MYSQL).ok(),
        Err(false) => None,
    };

    if let Some(fp) = try_context(flag::QUOTE_NONE) {
        return Some(fp);
    }
    if let Some(fp) = input
        .contains(&b'\'')
        .then(|| try_context(flag::QUOTE_SINGLE))
        .flatten()
    {
        return Some(fp);
    }
    if input.contains(&b'"') {
        return check(flag::QUOTE_DOUBLE | flag::SQL_MYSQL).ok();
    }
    None
}

/// The fingerprint of `input` in one context (for tests): `quote` is `None`, `'` or `"`.
#[cfg(test)]
pub(crate) fn fingerprint(input: &[u8], quote: Option<u8>, mysql: bool) -> (String, bool) {
    let q = match quote {
        Some(b'\'') => flag::QUOTE_SINGLE,
        Some(_) => flag::QUOTE_DOUBLE,
        None => flag::QUOTE_NONE,
    };
    let d = if mysql {
        flag::SQL_MYSQL
    } else {
        flag::SQL_ANSI
    };
    let pass = Pass::run(input, q | d);
    (pass.fingerprint_string(), pass.is_sqli())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted() {
        assert!(data::KEYWORDS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(FINGERPRINTS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            data::KEYWORDS
                .iter()
                .all(|(k, _)| k.len() < token::TOKEN_SIZE)
        );
    }

    #[test]
    fn fingerprints_in_context() {
        assert_eq!(fingerprint(b"1' or '1'='1", Some(b'\''), false).0, "s&sos");
        assert_eq!(fingerprint(b"1 union select 1", None, false).0, "1UE1");
        assert_eq!(
            fingerprint(b"hello world", None, false),
            ("nn".into(), false)
        );
    }

    #[test]
    fn evil_sixth_token_is_seen() {
        // "{ ``" as the 6th token: fold returns 6 tokens, the last one evil.
        assert_eq!(detect(b"1 ~* benchmark{ `").as_deref(), Some("X"));
    }

    #[test]
    fn whitelist_small_fingerprints() {
        // "1 union" alone is not SQLi, "1 union --" is.
        assert_eq!(detect(b"1 union"), None);
        assert!(detect(b"1 union --").is_some());
        // number then comment: only when the comment follows the number directly or after white
        assert!(detect(b"1234 --").is_some());
        assert!(detect(b"1--").is_some());
        assert_eq!(detect(b"foo -- bar"), None);
        // sp_password in a trailing comment
        assert!(detect(b"foo -- sp_password").is_some());
    }
}
