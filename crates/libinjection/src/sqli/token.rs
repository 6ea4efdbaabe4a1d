//! SQLi tokens: token types (the fingerprint alphabet), parsing flags and the token value.
//!
//! A token keeps at most [`MAX_VALUE`] bytes of its text, as libinjection does (its `val[32]`
//! with a terminating NUL): the length used by the heuristics is the truncated one.

/// Token types, one byte each: the fingerprint is the string of the token types.
pub(crate) mod kind {
    pub(crate) const NONE: u8 = 0;
    pub(crate) const KEYWORD: u8 = b'k';
    pub(crate) const UNION: u8 = b'U';
    pub(crate) const GROUP: u8 = b'B';
    pub(crate) const EXPRESSION: u8 = b'E';
    pub(crate) const SQLTYPE: u8 = b't';
    pub(crate) const FUNCTION: u8 = b'f';
    pub(crate) const BAREWORD: u8 = b'n';
    pub(crate) const NUMBER: u8 = b'1';
    pub(crate) const VARIABLE: u8 = b'v';
    pub(crate) const STRING: u8 = b's';
    pub(crate) const OPERATOR: u8 = b'o';
    pub(crate) const LOGIC_OPERATOR: u8 = b'&';
    pub(crate) const COMMENT: u8 = b'c';
    pub(crate) const COLLATE: u8 = b'A';
    pub(crate) const LEFTPARENS: u8 = b'(';
    pub(crate) const RIGHTPARENS: u8 = b')';
    pub(crate) const LEFTBRACE: u8 = b'{';
    pub(crate) const RIGHTBRACE: u8 = b'}';
    pub(crate) const DOT: u8 = b'.';
    pub(crate) const COMMA: u8 = b',';
    pub(crate) const COLON: u8 = b':';
    pub(crate) const SEMICOLON: u8 = b';';
    pub(crate) const TSQL: u8 = b'T';
    pub(crate) const UNKNOWN: u8 = b'?';
    pub(crate) const EVIL: u8 = b'X';
    pub(crate) const BACKSLASH: u8 = b'\\';
}

/// Parsing context flags (libinjection's `FLAG_*`).
pub(crate) mod flag {
    pub(crate) const QUOTE_NONE: u32 = 1;
    pub(crate) const QUOTE_SINGLE: u32 = 2;
    pub(crate) const QUOTE_DOUBLE: u32 = 4;
    pub(crate) const SQL_ANSI: u32 = 8;
    pub(crate) const SQL_MYSQL: u32 = 16;
}

/// Size of a token's value buffer in libinjection (the value holds one byte less).
pub(crate) const TOKEN_SIZE: usize = 32;
/// Most bytes a token keeps of its text.
pub(crate) const MAX_VALUE: usize = TOKEN_SIZE - 1;

/// One token: type, position, (truncated) value and the quotes that opened and closed it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Token {
    pub(crate) kind: u8,
    pub(crate) pos: usize,
    pub(crate) len: usize,
    pub(crate) str_open: u8,
    pub(crate) str_close: u8,
    val: [u8; MAX_VALUE],
}

impl Token {
    /// Sets type, position and value (truncated to [`MAX_VALUE`] bytes); quotes are kept.
    pub(crate) fn assign(&mut self, kind: u8, pos: usize, value: &[u8]) {
        let value = value.get(..MAX_VALUE).unwrap_or(value);
        self.kind = kind;
        self.pos = pos;
        self.len = value.len();
        if let Some(dst) = self.val.get_mut(..value.len()) {
            dst.copy_from_slice(value);
        }
    }

    /// The kept value.
    pub(crate) fn value(&self) -> &[u8] {
        self.val.get(..self.len).unwrap_or(&self.val)
    }

    /// The value's byte at `i`, or NUL past its end (libinjection's `val[i]`).
    pub(crate) fn byte(&self, i: usize) -> u8 {
        self.value().get(i).copied().unwrap_or(0)
    }

    /// The value, upper-cased (ASCII letters only), equals `upper` (libinjection's `cstrcasecmp`).
    pub(crate) fn is(&self, upper: &[u8]) -> bool {
        eq_upper(upper, self.value())
    }

    /// `+`, `-`, `!`, `~`, `!!` or `NOT`.
    pub(crate) fn is_unary_op(&self) -> bool {
        if self.kind != kind::OPERATOR {
            return false;
        }
        match self.value() {
            [b'+' | b'-' | b'!' | b'~'] | b"!!" => true,
            v @ [_, _, _] => eq_upper(b"NOT", v),
            _ => false,
        }
    }

    /// `*`, `/`, `-`, `+` or `%`.
    pub(crate) fn is_arithmetic_op(&self) -> bool {
        self.kind == kind::OPERATOR && matches!(self.value(), [b'*' | b'/' | b'-' | b'+' | b'%'])
    }
}

/// `upper` (already upper case) equals `text` with its ASCII letters upper-cased.
pub(crate) fn eq_upper(upper: &[u8], text: &[u8]) -> bool {
    upper.len() == text.len()
        && upper
            .iter()
            .zip(text)
            .all(|(&u, &t)| u == t.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_truncates_to_31_bytes() {
        let mut t = Token::default();
        t.assign(kind::BAREWORD, 3, &[b'a'; 40]);
        assert_eq!(t.len, 31);
        assert_eq!(t.value(), &[b'a'; 31][..]);
        assert_eq!(t.byte(31), 0);
        assert_eq!(t.byte(0), b'a');
    }

    #[test]
    fn unary_and_arithmetic_operators() {
        let mut t = Token::default();
        for (v, unary, arith) in [
            (&b"-"[..], true, true),
            (b"!!", true, false),
            (b"not", true, false),
            (b"*", false, true),
            (b"=", false, false),
            (b"nor", false, false),
        ] {
            t.assign(kind::OPERATOR, 0, v);
            assert_eq!(t.is_unary_op(), unary, "{v:?}");
            assert_eq!(t.is_arithmetic_op(), arith, "{v:?}");
        }
        t.assign(kind::BAREWORD, 0, b"-");
        assert!(!t.is_unary_op());
    }

    #[test]
    fn case_insensitive_compare() {
        assert!(eq_upper(b"UNION ALL", b"uNiOn aLL"));
        assert!(!eq_upper(b"UNION", b"UNIONS"));
        assert!(!eq_upper(b"IN", b"I\0"));
    }
}
