//! The SQL tokenizer: bytes to [`Token`]s, one at a time, in a given quoting/dialect context.
//!
//! Each byte selects a parser (white space, operator, string, word, number, comment, ...), as
//! in libinjection's `char_parse_map`. Parsing never looks back more than the current token and
//! every parser advances, so tokenizing the whole input is linear. Reads past the end yield NUL,
//! as libinjection reads the NUL terminator of its C strings.

use super::data::KEYWORDS;
use super::token::{TOKEN_SIZE, Token, flag, kind};

/// The byte at `i`, or NUL past the end.
pub(crate) fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// `s[from..to]`, clamped to `s`.
fn sub(s: &[u8], from: usize, to: usize) -> &[u8] {
    let to = to.min(s.len());
    s.get(from..to).unwrap_or(&[])
}

/// Position of the first `c` at or after `from`.
fn find_byte(s: &[u8], from: usize, c: u8) -> Option<usize> {
    let tail = s.get(from..)?;
    tail.iter().position(|&b| b == c).map(|i| i + from)
}

/// Position of the first `c0 c1` pair starting at or after `from` and ending before `end`.
fn find_pair(s: &[u8], from: usize, end: usize, c0: u8, c1: u8) -> Option<usize> {
    sub(s, from, end)
        .windows(2)
        .position(|w| w == [c0, c1])
        .map(|i| i + from)
}

/// Position of the first `needle` in `s[from..end]`.
fn find_slice(s: &[u8], from: usize, end: usize, needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    sub(s, from, end)
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Length of the prefix of `s[from..]` made of bytes `accept` takes; NUL is always taken
/// (libinjection's `strlenspn` finds NUL in its C-string set).
fn span(s: &[u8], from: usize, accept: impl Fn(u8) -> bool) -> usize {
    let tail = s.get(from..).unwrap_or(&[]);
    tail.iter()
        .position(|&b| b != 0 && !accept(b))
        .unwrap_or(tail.len())
}

/// Length of the prefix of `s[from..]` without bytes `reject` takes; NUL always stops.
fn cspan(s: &[u8], from: usize, reject: impl Fn(u8) -> bool) -> usize {
    let tail = s.get(from..).unwrap_or(&[]);
    tail.iter()
        .position(|&b| b == 0 || reject(b))
        .unwrap_or(tail.len())
}

/// White space for SQL, with NUL (Oracle) and 0xA0 (Latin-1 no-break space).
pub(crate) fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0 | 0)
}

fn is_word_delim(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'['
            | b']'
            | b'{'
            | b'}'
            | b'<'
            | b'>'
            | b':'
            | b'\\'
            | b'?'
            | b'='
            | b'@'
            | b'!'
            | b'#'
            | b'~'
            | b'+'
            | b'-'
            | b'*'
            | b'/'
            | b'&'
            | b'|'
            | b'^'
            | b'%'
            | b'('
            | b')'
            | b','
            | b'\''
            | b';'
            | b'\t'
            | b'\n'
            | 0x0b
            | 0x0c
            | b'\r'
            | b'"'
            | 0xa0
    )
}

fn is_var_delim(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'<'
            | b'>'
            | b':'
            | b'\\'
            | b'?'
            | b'='
            | b'@'
            | b'!'
            | b'#'
            | b'~'
            | b'+'
            | b'-'
            | b'*'
            | b'/'
            | b'&'
            | b'|'
            | b'^'
            | b'%'
            | b'('
            | b')'
            | b','
            | b'\''
            | b';'
            | b'\t'
            | b'\n'
            | 0x0b
            | 0x0c
            | b'\r'
            | b'`'
            | b'"'
    )
}

/// The keyword table's type for `word` (case-insensitive), or [`kind::NONE`].
pub(crate) fn lookup_word(word: &[u8]) -> u8 {
    if word.len() >= TOKEN_SIZE {
        return kind::NONE;
    }
    KEYWORDS
        .binary_search_by(|(k, _)| k.bytes().cmp(word.iter().map(|b| b.to_ascii_uppercase())))
        .ok()
        .and_then(|i| KEYWORDS.get(i))
        .map_or(kind::NONE, |&(_, t)| t)
}

/// Which parser a byte starts.
#[derive(Clone, Copy)]
enum Parser {
    White,
    Operator1,
    Operator2,
    Other,
    Char,
    Hash,
    Dash,
    Slash,
    Backslash,
    String,
    Money,
    Number,
    Var,
    Word,
    BString,
    EString,
    NqString,
    QString,
    UString,
    XString,
    BWord,
    Tick,
}

fn parser_for(b: u8) -> Parser {
    match b {
        0..=32 | 127 | 160 => Parser::White,
        b'!' | b'&' | b'*' | b':' | b'<' | b'=' | b'>' | b'|' => Parser::Operator2,
        b'"' | b'\'' => Parser::String,
        b'#' => Parser::Hash,
        b'$' => Parser::Money,
        b'%' | b'+' | b'^' | b'~' => Parser::Operator1,
        b'(' | b')' | b',' | b';' | b'{' | b'}' => Parser::Char,
        b'-' => Parser::Dash,
        b'.' | b'0'..=b'9' => Parser::Number,
        b'/' => Parser::Slash,
        b'?' | b']' => Parser::Other,
        b'@' => Parser::Var,
        b'B' | b'b' => Parser::BString,
        b'E' | b'e' => Parser::EString,
        b'N' | b'n' => Parser::NqString,
        b'Q' | b'q' => Parser::QString,
        b'U' | b'u' => Parser::UString,
        b'X' | b'x' => Parser::XString,
        b'[' => Parser::BWord,
        b'\\' => Parser::Backslash,
        b'`' => Parser::Tick,
        _ => Parser::Word,
    }
}

/// Streaming tokenizer over one input in one context.
#[derive(Debug)]
pub(crate) struct Tokenizer<'a> {
    s: &'a [u8],
    flags: u32,
    pos: usize,
    /// `--x` comments (a dash-dash not followed by white space) seen in ANSI mode.
    pub(crate) stats_comment_ddx: u32,
    /// `#` seen (twice for each in MySQL mode).
    pub(crate) stats_comment_hash: u32,
    /// Tokens returned so far, comments included.
    pub(crate) stats_tokens: u32,
}

impl<'a> Tokenizer<'a> {
    pub(crate) fn new(s: &'a [u8], flags: u32) -> Self {
        Self {
            s,
            flags,
            pos: 0,
            stats_comment_ddx: 0,
            stats_comment_hash: 0,
            stats_tokens: 0,
        }
    }

    /// The input.
    pub(crate) fn input(&self) -> &'a [u8] {
        self.s
    }

    /// Reads the next token into `t`; `false` (and `t` cleared) at the end of the input.
    pub(crate) fn next_token(&mut self, t: &mut Token) -> bool {
        let slen = self.s.len();
        if slen == 0 {
            return false;
        }
        *t = Token::default();
        if self.pos == 0 && self.flags & (flag::QUOTE_SINGLE | flag::QUOTE_DOUBLE) != 0 {
            let delim = if self.flags & flag::QUOTE_SINGLE != 0 {
                b'\''
            } else {
                b'"'
            };
            self.pos = parse_string_core(self.s, 0, t, delim, 0);
            self.stats_tokens += 1;
            return true;
        }
        while self.pos < slen {
            let next = self.dispatch(at(self.s, self.pos), t);
            // Every parser advances; guard anyway so a mistake cannot loop forever.
            self.pos = next.max(self.pos + 1);
            if t.kind != kind::NONE {
                self.stats_tokens += 1;
                return true;
            }
        }
        false
    }

    fn dispatch(&mut self, b: u8, t: &mut Token) -> usize {
        match parser_for(b) {
            Parser::White => self.pos + 1,
            Parser::Operator1 => self.parse_operator1(t),
            Parser::Operator2 => self.parse_operator2(t),
            Parser::Other => {
                t.assign(kind::UNKNOWN, self.pos, &[b]);
                self.pos + 1
            }
            Parser::Char => {
                t.assign(b, self.pos, &[b]);
                self.pos + 1
            }
            Parser::Hash => self.parse_hash(t),
            Parser::Dash => self.parse_dash(t),
            Parser::Slash => self.parse_slash(t),
            Parser::Backslash => self.parse_backslash(t),
            Parser::String => parse_string_core(self.s, self.pos, t, b, 1),
            Parser::Money => self.parse_money(t),
            Parser::Number => self.parse_number(t),
            Parser::Var => self.parse_var(t),
            Parser::Word => self.parse_word(t),
            Parser::BString => self.parse_bxstring(t, |c| c == b'0' || c == b'1'),
            Parser::XString => self.parse_bxstring(t, |c| c.is_ascii_hexdigit()),
            Parser::EString => self.parse_estring(t),
            Parser::NqString => self.parse_nqstring(t),
            Parser::QString => self.parse_qstring_core(t, 0),
            Parser::UString => self.parse_ustring(t),
            Parser::BWord => self.parse_bword(t),
            Parser::Tick => self.parse_tick(t),
        }
    }

    fn parse_operator1(&self, t: &mut Token) -> usize {
        t.assign(kind::OPERATOR, self.pos, &[at(self.s, self.pos)]);
        self.pos + 1
    }

    fn parse_eol_comment(&self, t: &mut Token) -> usize {
        let pos = self.pos;
        match find_byte(self.s, pos, b'\n') {
            None => {
                t.assign(kind::COMMENT, pos, sub(self.s, pos, self.s.len()));
                self.s.len()
            }
            Some(nl) => {
                t.assign(kind::COMMENT, pos, sub(self.s, pos, nl));
                nl + 1
            }
        }
    }

    /// `#`: an operator in ANSI mode, an end-of-line comment in MySQL mode.
    fn parse_hash(&mut self, t: &mut Token) -> usize {
        self.stats_comment_hash += 1;
        if self.flags & flag::SQL_MYSQL != 0 {
            self.stats_comment_hash += 1;
            self.parse_eol_comment(t)
        } else {
            t.assign(kind::OPERATOR, self.pos, b"#");
            self.pos + 1
        }
    }

    /// `--` followed by white space or the end is a comment; `--x` is one only in ANSI mode.
    fn parse_dash(&mut self, t: &mut Token) -> usize {
        let (s, pos, slen) = (self.s, self.pos, self.s.len());
        let dash2 = at(s, pos + 1) == b'-';
        if dash2 && ((pos + 2 < slen && is_white(at(s, pos + 2))) || pos + 2 == slen) {
            self.parse_eol_comment(t)
        } else if pos + 1 < slen && dash2 && self.flags & flag::SQL_ANSI != 0 {
            self.stats_comment_ddx += 1;
            self.parse_eol_comment(t)
        } else {
            t.assign(kind::OPERATOR, pos, b"-");
            pos + 1
        }
    }

    /// `/` operator or a `/* */` comment; nested `/*` and MySQL `/*!` comments are evil.
    fn parse_slash(&self, t: &mut Token) -> usize {
        let (s, pos, slen) = (self.s, self.pos, self.s.len());
        if pos + 1 == slen || at(s, pos + 1) != b'*' {
            return self.parse_operator1(t);
        }
        let close = find_pair(s, pos + 2, slen, b'*', b'/');
        let clen = close.map_or(slen - pos, |c| c + 2 - pos);
        // A "/*" inside the comment (up to and including the '*' of "*/").
        let nested = close.is_some_and(|c| find_pair(s, pos + 2, c + 1, b'/', b'*').is_some());
        let mysql = pos + 2 < slen && at(s, pos + 2) == b'!';
        let k = if nested || mysql {
            kind::EVIL
        } else {
            kind::COMMENT
        };
        t.assign(k, pos, sub(s, pos, pos + clen));
        pos + clen
    }

    /// `\N` is MySQL's NULL; any other backslash is its own token.
    fn parse_backslash(&self, t: &mut Token) -> usize {
        let pos = self.pos;
        if pos + 1 < self.s.len() && at(self.s, pos + 1) == b'N' {
            t.assign(kind::NUMBER, pos, sub(self.s, pos, pos + 2));
            pos + 2
        } else {
            t.assign(kind::BACKSLASH, pos, b"\\");
            pos + 1
        }
    }

    fn parse_operator2(&self, t: &mut Token) -> usize {
        let (s, pos, slen) = (self.s, self.pos, self.s.len());
        if pos + 1 >= slen {
            return self.parse_operator1(t);
        }
        if pos + 2 < slen && sub(s, pos, pos + 3) == b"<=>" {
            t.assign(kind::OPERATOR, pos, b"<=>");
            return pos + 3;
        }
        let two = sub(s, pos, pos + 2);
        let k = lookup_word(two);
        if k != kind::NONE {
            t.assign(k, pos, two);
            return pos + 2;
        }
        if at(s, pos) == b':' {
            t.assign(kind::COLON, pos, b":");
            pos + 1
        } else {
            self.parse_operator1(t)
        }
    }

    /// `E'...'` (PostgreSQL escaped string) and `N'...'` (national character set).
    fn parse_estring(&self, t: &mut Token) -> usize {
        let pos = self.pos;
        if pos + 2 >= self.s.len() || at(self.s, pos + 1) != b'\'' {
            return self.parse_word(t);
        }
        parse_string_core(self.s, pos, t, b'\'', 2)
    }

    /// `U&'...'`: a unicode string.
    fn parse_ustring(&mut self, t: &mut Token) -> usize {
        let pos = self.pos;
        if pos + 2 < self.s.len() && at(self.s, pos + 1) == b'&' && at(self.s, pos + 2) == b'\'' {
            let end = parse_string_core(self.s, pos + 2, t, b'\'', 1);
            t.str_open = b'u';
            if t.str_close == b'\'' {
                t.str_close = b'u';
            }
            end
        } else {
            self.parse_word(t)
        }
    }

    /// Oracle's `q'[...]'` string (and `nq'...'` with `offset` 1).
    fn parse_qstring_core(&self, t: &mut Token, offset: usize) -> usize {
        let (s, slen) = (self.s, self.s.len());
        let pos = self.pos + offset;
        if pos >= slen
            || !matches!(at(s, pos), b'q' | b'Q')
            || pos + 2 >= slen
            || at(s, pos + 1) != b'\''
        {
            return self.parse_word(t);
        }
        let mut ch = at(s, pos + 2);
        // Signed char in C: bytes from 0x80 are negative, so below 33 too.
        if !(33..128).contains(&ch) {
            return self.parse_word(t);
        }
        ch = match ch {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            b'<' => b'>',
            c => c,
        };
        match find_pair(s, pos + 3, slen, ch, b'\'') {
            None => {
                t.assign(kind::STRING, pos + 3, sub(s, pos + 3, slen));
                t.str_open = b'q';
                t.str_close = 0;
                slen
            }
            Some(end) => {
                t.assign(kind::STRING, pos + 3, sub(s, pos + 3, end));
                t.str_open = b'q';
                t.str_close = b'q';
                end + 2
            }
        }
    }

    fn parse_nqstring(&self, t: &mut Token) -> usize {
        let pos = self.pos;
        if pos + 2 < self.s.len() && at(self.s, pos + 1) == b'\'' {
            return self.parse_estring(t);
        }
        self.parse_qstring_core(t, 1)
    }

    /// `b'0101'` and `x'CAFE'` literals: numbers.
    fn parse_bxstring(&self, t: &mut Token, digit: impl Fn(u8) -> bool) -> usize {
        let (s, pos, slen) = (self.s, self.pos, self.s.len());
        if pos + 2 >= slen || at(s, pos + 1) != b'\'' {
            return self.parse_word(t);
        }
        let wlen = span(s, pos + 2, digit);
        if pos + 2 + wlen >= slen || at(s, pos + 2 + wlen) != b'\'' {
            return self.parse_word(t);
        }
        t.assign(kind::NUMBER, pos, sub(s, pos, pos + wlen + 3));
        pos + wlen + 3
    }

    /// SQL Server's `[bracketed words]` in MySQL mode; elsewhere `[` is a left parenthesis
    /// (libinjection 4).
    fn parse_bword(&self, t: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        if self.flags & flag::SQL_MYSQL == 0 {
            t.assign(kind::LEFTPARENS, pos, b"[");
            return pos + 1;
        }
        match find_byte(s, pos, b']') {
            None => {
                t.assign(kind::BAREWORD, pos, sub(s, pos, s.len()));
                s.len()
            }
            Some(end) => {
                t.assign(kind::BAREWORD, pos, sub(s, pos, end + 1));
                end + 1
            }
        }
    }

    /// A word: keyword, function, operator word (`AND`, `LIKE`) or bare word.
    fn parse_word(&self, t: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        let wlen = cspan(s, pos, is_word_delim);
        t.assign(kind::BAREWORD, pos, sub(s, pos, pos + wlen));
        // "SELECT.1" or "SELECT`column`": a keyword before a '.' or '`' stands alone.
        for i in 0..t.len {
            let d = t.byte(i);
            if d == b'.' || d == b'`' {
                let k = lookup_word(t.value().get(..i).unwrap_or(&[]));
                if k != kind::NONE && k != kind::BAREWORD {
                    *t = Token::default();
                    t.assign(k, pos, sub(s, pos, pos + i));
                    return pos + i;
                }
            }
        }
        if wlen < TOKEN_SIZE {
            let k = lookup_word(t.value());
            t.kind = if k == kind::NONE { kind::BAREWORD } else { k };
        }
        pos + wlen
    }

    /// MySQL's `` `quoted` `` identifiers: a function name or a bare word.
    fn parse_tick(&self, t: &mut Token) -> usize {
        let end = parse_string_core(self.s, self.pos, t, b'`', 1);
        t.kind = if lookup_word(t.value()) == kind::FUNCTION {
            kind::FUNCTION
        } else {
            kind::BAREWORD
        };
        end
    }

    /// `@var`, `@@system_var`, ``@`quoted` ``, `@'quoted'`.
    fn parse_var(&mut self, t: &mut Token) -> usize {
        let (s, slen) = (self.s, self.s.len());
        let mut pos = self.pos + 1;
        if pos < slen && at(s, pos) == b'@' {
            pos += 1;
        }
        if pos < slen {
            match at(s, pos) {
                b'`' => {
                    self.pos = pos;
                    let end = self.parse_tick(t);
                    t.kind = kind::VARIABLE;
                    return end;
                }
                q @ (b'\'' | b'"') => {
                    self.pos = pos;
                    let end = parse_string_core(s, pos, t, q, 1);
                    t.kind = kind::VARIABLE;
                    return end;
                }
                _ => {}
            }
        }
        let xlen = cspan(s, pos, is_var_delim);
        t.assign(kind::VARIABLE, pos, sub(s, pos, pos + xlen));
        pos + xlen
    }

    /// `$1,000.00` (a number), `$$ string $$` and `$tag$ string $tag$` (PostgreSQL).
    fn parse_money(&self, t: &mut Token) -> usize {
        let (s, pos, slen) = (self.s, self.pos, self.s.len());
        if pos + 1 == slen {
            t.assign(kind::BAREWORD, pos, b"$");
            return slen;
        }
        let xlen = span(s, pos + 1, |c| c.is_ascii_digit() || c == b'.' || c == b',');
        if xlen == 0 {
            if at(s, pos + 1) == b'$' {
                return match find_pair(s, pos + 2, slen, b'$', b'$') {
                    None => {
                        t.assign(kind::STRING, pos + 2, sub(s, pos + 2, slen));
                        t.str_open = b'$';
                        t.str_close = 0;
                        slen
                    }
                    Some(end) => {
                        t.assign(kind::STRING, pos + 2, sub(s, pos + 2, end));
                        t.str_open = b'$';
                        t.str_close = b'$';
                        end + 2
                    }
                };
            }
            let xlen = span(s, pos + 1, |c| c.is_ascii_alphabetic());
            if xlen == 0 || pos + xlen + 1 == slen || at(s, pos + xlen + 1) != b'$' {
                t.assign(kind::BAREWORD, pos, b"$");
                return pos + 1;
            }
            // "$tag$": find the closing tag (libinjection 4; 3.9 searched from the wrong offset).
            let start = pos + xlen + 2;
            let tag = sub(s, pos, start);
            match find_slice(s, start, slen, tag) {
                Some(end) => {
                    t.assign(kind::STRING, start, sub(s, start, end));
                    t.str_open = b'$';
                    t.str_close = b'$';
                    end + xlen + 2
                }
                _ => {
                    t.assign(kind::STRING, start, sub(s, start, slen));
                    t.str_open = b'$';
                    t.str_close = 0;
                    slen
                }
            }
        } else if xlen == 1 && at(s, pos + 1) == b'.' {
            self.parse_word(t)
        } else {
            t.assign(kind::NUMBER, pos, sub(s, pos, pos + 1 + xlen));
            pos + 1 + xlen
        }
    }

    /// Numbers: `0x1F`, `0b101`, `12`, `1.5`, `.5`, `1e10`, `1.2f`; a lone `.` is a dot.
    fn parse_number(&self, t: &mut Token) -> usize {
        let (s, slen) = (self.s, self.s.len());
        let mut pos = self.pos;
        if at(s, pos) == b'0' && pos + 1 < slen {
            let digits: Option<fn(u8) -> bool> = match at(s, pos + 1) {
                b'X' | b'x' => Some(|c: u8| c.is_ascii_hexdigit()),
                b'B' | b'b' => Some(|c: u8| c == b'0' || c == b'1'),
                _ => None,
            };
            if let Some(digit) = digits {
                let xlen = span(s, pos + 2, digit);
                if xlen == 0 {
                    t.assign(kind::BAREWORD, pos, sub(s, pos, pos + 2));
                    return pos + 2;
                }
                t.assign(kind::NUMBER, pos, sub(s, pos, pos + 2 + xlen));
                return pos + 2 + xlen;
            }
        }
        let start = pos;
        while pos < slen && at(s, pos).is_ascii_digit() {
            pos += 1;
        }
        if pos < slen && at(s, pos) == b'.' {
            pos += 1;
            while pos < slen && at(s, pos).is_ascii_digit() {
                pos += 1;
            }
            if pos - start == 1 {
                t.assign(kind::DOT, start, b".");
                return pos;
            }
        }
        let mut have_e = false;
        let mut have_exp = false;
        if pos < slen && matches!(at(s, pos), b'E' | b'e') {
            have_e = true;
            pos += 1;
            if pos < slen && matches!(at(s, pos), b'+' | b'-') {
                pos += 1;
            }
            while pos < slen && at(s, pos).is_ascii_digit() {
                have_exp = true;
                pos += 1;
            }
        }
        // Oracle's float/double suffixes.
        if pos < slen && matches!(at(s, pos), b'd' | b'D' | b'f' | b'F') {
            let next = at(s, pos + 1);
            if pos + 1 == slen || is_white(next) || next == b';' || matches!(next, b'u' | b'U') {
                pos += 1;
            }
        }
        // "1.e", "10.10E", ".E": MySQL ignores these while parsing ("1.e(1)" is "(1)"), so
        // they make no token (libinjection 4; 3.9 made a bare word, an evasion).
        if !have_e || have_exp {
            t.assign(kind::NUMBER, start, sub(s, start, pos));
        }
        pos
    }
}

/// A string delimited by `delim`, starting at `pos + offset` (offset 0: the opening quote is
/// implied by the context). Backslash-escaped and doubled delimiters do not close it.
fn parse_string_core(s: &[u8], pos: usize, t: &mut Token, delim: u8, offset: usize) -> usize {
    let start = pos + offset;
    t.str_open = if offset > 0 { delim } else { 0 };
    let mut from = start;
    loop {
        match find_byte(s, from, delim) {
            None => {
                t.assign(kind::STRING, start, sub(s, start, s.len()));
                t.str_close = 0;
                return s.len();
            }
            Some(q) => {
                let backslashes = sub(s, start, q)
                    .iter()
                    .rev()
                    .take_while(|&&b| b == b'\\')
                    .count();
                if backslashes % 2 == 1 {
                    from = q + 1;
                } else if q + 1 < s.len() && at(s, q + 1) == delim {
                    from = q + 2;
                } else {
                    t.assign(kind::STRING, start, sub(s, start, q));
                    t.str_close = delim;
                    return q + 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: &str, flags: u32) -> Vec<(char, String)> {
        let mut tz = Tokenizer::new(input.as_bytes(), flags);
        let mut t = Token::default();
        let mut out = Vec::new();
        while tz.next_token(&mut t) {
            out.push((
                t.kind as char,
                String::from_utf8_lossy(t.value()).into_owned(),
            ));
        }
        out
    }

    fn kinds(input: &str, flags: u32) -> String {
        tokens(input, flags).into_iter().map(|(k, _)| k).collect()
    }

    const ANSI: u32 = flag::QUOTE_NONE | flag::SQL_ANSI;
    const MYSQL: u32 = flag::QUOTE_NONE | flag::SQL_MYSQL;

    #[test]
    fn keyword_lookup_is_case_insensitive() {
        assert_eq!(lookup_word(b"select"), kind::EXPRESSION);
        assert_eq!(lookup_word(b"UnIoN"), kind::UNION);
        assert_eq!(lookup_word(b"union all"), kind::UNION);
        assert_eq!(lookup_word(b"or"), kind::LOGIC_OPERATOR);
        assert_eq!(lookup_word(b"hello"), kind::NONE);
        assert_eq!(lookup_word(b""), kind::NONE);
        assert_eq!(lookup_word(b"!="), kind::OPERATOR);
    }

    #[test]
    fn basic_tokens() {
        assert_eq!(kinds("1 union select", ANSI), "1UE");
        assert_eq!(kinds("'abc' or 1=1", ANSI), "s&1o1");
        assert_eq!(
            tokens("a.b `x` @@version", ANSI),
            [
                ('n', "a.b".into()),
                ('n', "x".into()),
                ('v', "version".into())
            ]
        );
        assert_eq!(kinds("(1),;{}", ANSI), "(1),;{}");
        assert_eq!(kinds("? ]", ANSI), "??");
        assert_eq!(kinds("[a b]", ANSI), "(nn?");
        assert_eq!(kinds("[a b]", MYSQL), "n");
        // "1.e" makes no token: "1.e(1)" is "(1)"
        assert_eq!(kinds("1.e(1)", ANSI), "(1)");
    }

    #[test]
    fn quote_context_starts_inside_a_string() {
        assert_eq!(
            tokens("1' or '1'='1", flag::QUOTE_SINGLE | flag::SQL_ANSI),
            [
                ('s', "1".into()),
                ('&', "or".into()),
                ('s', "1".into()),
                ('o', "=".into()),
                ('s', "1".into())
            ]
        );
    }

    #[test]
    fn strings_with_escapes() {
        assert_eq!(tokens(r"'a\'b'", ANSI), [('s', r"a\'b".into())]);
        assert_eq!(tokens("'a''b'", ANSI), [('s', "a''b".into())]);
        assert_eq!(
            tokens(r"'a\\'b", ANSI),
            [('s', r"a\\".into()), ('n', "b".into())]
        );
        assert_eq!(tokens("E'x'", ANSI), [('s', "x".into())]);
        assert_eq!(tokens("q'[x]'", ANSI), [('s', "x".into())]);
        assert_eq!(tokens("nq'<x>'", ANSI), [('s', "x".into())]);
        assert_eq!(tokens("U&'x'", ANSI), [('s', "x".into())]);
        assert_eq!(tokens("$$x$$", ANSI), [('s', "x".into())]);
        assert_eq!(tokens("$a$x$a$", ANSI), [('s', "x".into())]);
    }

    #[test]
    fn comments_depend_on_dialect() {
        assert_eq!(kinds("1 -- x", ANSI), "1c");
        assert_eq!(kinds("1 --x", ANSI), "1c");
        assert_eq!(kinds("1 --x", MYSQL), "1oon");
        assert_eq!(kinds("1 # x", ANSI), "1on");
        assert_eq!(kinds("1 # x", MYSQL), "1c");
        assert_eq!(kinds("1 /* x */ 2", ANSI), "1c1");
        assert_eq!(kinds("1 /*! x */", ANSI), "1X");
        assert_eq!(kinds("1 /* /* */", ANSI), "1X");
        assert_eq!(kinds("1 /* x", ANSI), "1c");
    }

    #[test]
    fn numbers() {
        assert_eq!(
            tokens("0x1F 0b2 1.5e3 .5 . 1e 1.2f $1,000 \\N", ANSI),
            [
                ('1', "0x1F".into()),
                ('n', "0b".into()),
                ('1', "2".into()),
                ('1', "1.5e3".into()),
                ('1', ".5".into()),
                ('.', ".".into()),
                ('1', "1.2f".into()),
                ('1', "$1,000".into()),
                ('1', "\\N".into()),
            ]
        );
        assert_eq!(kinds("x'4F' b'01'", ANSI), "11");
    }

    #[test]
    fn keyword_before_dot_or_tick() {
        assert_eq!(tokens("select.1", ANSI)[0], ('E', "select".into()));
        assert_eq!(kinds("select`a`", ANSI), "En");
    }

    #[test]
    fn never_panics_on_edge_inputs() {
        for input in [
            &b""[..],
            b"'",
            b"\"",
            b"$",
            b"$a",
            b"$a$",
            b"q'",
            b"q'(",
            b"nq'",
            b"0x",
            b"/*",
            b"/*!",
            b"--",
            b"@",
            b"@@",
            b"@`",
            b"\\",
            b"U&'",
            b"[",
            b"\xff\xa0\x00",
            b"1e+",
        ] {
            for flags in [ANSI, MYSQL, flag::QUOTE_SINGLE | flag::SQL_ANSI] {
                let mut tz = Tokenizer::new(input, flags);
                let mut t = Token::default();
                let mut n = 0;
                while tz.next_token(&mut t) {
                    n += 1;
                    assert!(n <= input.len() + 1);
                }
            }
        }
    }
}
