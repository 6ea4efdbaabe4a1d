//! `@eq`, `@ge`, `@gt`, `@le`, `@lt` (integers as C `strtol` reads them; anything else is 0) and
//! the word test of `@containsWord`.

/// A numeric comparison.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cmp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

impl Cmp {
    pub(crate) fn eval(self, input: &[u8], arg: &[u8]) -> bool {
        let (a, b) = (to_int(input), to_int(arg));
        match self {
            Self::Eq => a == b,
            Self::Ge => a >= b,
            Self::Gt => a > b,
            Self::Le => a <= b,
            Self::Lt => a < b,
        }
    }
}

/// Leading blanks, an optional sign, digits; 0 when there are none.
pub(crate) fn to_int(s: &[u8]) -> i64 {
    let mut i = 0;
    while s
        .get(i)
        .is_some_and(|b| crate::transformations::is_space(*b))
    {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while let Some(d) = s.get(i).filter(|b| b.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        i += 1;
    }
    if neg { -v } else { v }
}

/// `@containsWord`: `word` occurs with no word character (alphanumeric or `_`) on either side.
pub(crate) fn contains_word(input: &[u8], word: &[u8]) -> bool {
    if word.is_empty() {
        return true;
    }
    let is_word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    let mut start = 0;
    while let Some(pos) = input
        .get(start..)
        .and_then(|h| memchr::memmem::find(h, word))
    {
        let at = start + pos;
        let before = at.checked_sub(1).and_then(|i| input.get(i));
        let after = input.get(at + word.len());
        if !is_word(before) && !is_word(after) {
            return true;
        }
        start = at + 1;
    }
    false
}
