//! Folding: the token stream reduced to at most five tokens, libinjection's
//! `libinjection_sqli_fold`.
//!
//! Leading comments, `(`, SQL types and unary operators are skipped; then pairs and triples
//! of tokens are merged (`1+1` → `1`, `UNION` `ALL` → `UNION ALL`, `'a' 'b'` → `'a'`, ...) and
//! some types are refined from their neighbours (`IN (` is an operator, `USER(` a function).
//! A trailing comment is kept as the last token when there is room.

use super::token::{TOKEN_SIZE, Token, kind};
use super::tokenizer::{Tokenizer, lookup_word};

/// Most tokens in a fingerprint.
pub(crate) const MAX_TOKENS: usize = 5;

/// Token slots: up to two more than [`MAX_TOKENS`] are read to decide the fifth.
pub(crate) type Tokens = [Token; 8];

/// Words that are functions when followed by `(` (common as column names otherwise).
const FUNCTION_WORDS: &[&[u8]] = &[
    b"USER_ID",
    b"USER_NAME",
    b"DATABASE",
    b"PASSWORD",
    b"USER",
    b"CURRENT_USER",
    b"CURRENT_DATE",
    b"CURRENT_TIME",
    b"CURRENT_TIMESTAMP",
    b"LOCALTIME",
    b"LOCALTIMESTAMP",
];

/// The type of slot `i` (NONE past the slots).
fn ty(tokens: &Tokens, i: usize) -> u8 {
    tokens.get(i).map_or(kind::NONE, |t| t.kind)
}

fn tok(tokens: &Tokens, i: usize) -> Token {
    tokens.get(i).copied().unwrap_or_default()
}

fn set_kind(tokens: &mut Tokens, i: usize, k: u8) {
    if let Some(t) = tokens.get_mut(i) {
        t.kind = k;
    }
}

fn copy(tokens: &mut Tokens, dst: usize, src: usize) {
    let t = tok(tokens, src);
    if let Some(d) = tokens.get_mut(dst) {
        *d = t;
    }
}

fn read(tz: &mut Tokenizer<'_>, tokens: &mut Tokens, i: usize) -> bool {
    match tokens.get_mut(i) {
        Some(t) => tz.next_token(t),
        None => false,
    }
}

/// "UNION" "ALL" → "UNION ALL" when the pair is in the keyword table.
fn merge_words(tokens: &mut Tokens, left: usize) -> bool {
    let (a, b) = (tok(tokens, left), tok(tokens, left + 1));
    let mergeable = |k: u8| {
        matches!(
            k,
            kind::KEYWORD
                | kind::BAREWORD
                | kind::OPERATOR
                | kind::UNION
                | kind::FUNCTION
                | kind::EXPRESSION
                | kind::TSQL
                | kind::SQLTYPE
        )
    };
    if !mergeable(a.kind) || !(mergeable(b.kind) || b.kind == kind::LOGIC_OPERATOR) {
        return false;
    }
    let merged_len = a.len + b.len + 1;
    if merged_len >= TOKEN_SIZE {
        return false;
    }
    let mut tmp = [0u8; TOKEN_SIZE];
    let parts = a.value().iter().chain(b" ").chain(b.value());
    for (d, &c) in tmp.iter_mut().zip(parts) {
        *d = c;
    }
    let merged = tmp.get(..merged_len).unwrap_or(&[]);
    let k = lookup_word(merged);
    if k == kind::NONE {
        return false;
    }
    if let Some(t) = tokens.get_mut(left) {
        t.assign(k, a.pos, merged);
    }
    true
}

/// Folds the input into `tokens`; returns how many make the fingerprint (at most 5).
pub(crate) fn fold(tz: &mut Tokenizer<'_>, tokens: &mut Tokens) -> usize {
    let mut last_comment = Token::default();
    // Where the next token goes.
    let mut pos: usize = 0;
    // How many tokens are already folded.
    let mut left: usize = 0;
    let mut more = true;

    // Skip leading comments, '(', SQL types and unary operators.
    while more {
        more = read(tz, tokens, 0);
        let t = tok(tokens, 0);
        if !(t.kind == kind::COMMENT
            || t.kind == kind::LEFTPARENS
            || t.kind == kind::SQLTYPE
            || t.is_unary_op())
        {
            break;
        }
    }
    if !more {
        return 0;
    }
    pos += 1;

    // Each round reads a token or shrinks the vector; the guard only bounds a mistake.
    let mut budget = 64 + 16 * tz.input().len();
    loop {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            left = pos;
            break;
        }
        let t = |i: usize| ty(tokens, i);

        if pos >= MAX_TOKENS
            && ((t(0) == kind::NUMBER
                && (t(1) == kind::OPERATOR || t(1) == kind::COMMA)
                && t(2) == kind::LEFTPARENS
                && t(3) == kind::NUMBER
                && t(4) == kind::RIGHTPARENS)
                || (t(0) == kind::BAREWORD
                    && t(1) == kind::OPERATOR
                    && t(2) == kind::LEFTPARENS
                    && (t(3) == kind::BAREWORD || t(3) == kind::NUMBER)
                    && t(4) == kind::RIGHTPARENS)
                || (t(0) == kind::NUMBER
                    && t(1) == kind::RIGHTPARENS
                    && t(2) == kind::COMMA
                    && t(3) == kind::LEFTPARENS
                    && t(4) == kind::NUMBER)
                || (t(0) == kind::BAREWORD
                    && t(1) == kind::RIGHTPARENS
                    && t(2) == kind::OPERATOR
                    && t(3) == kind::LEFTPARENS
                    && t(4) == kind::BAREWORD))
        {
            if pos > MAX_TOKENS {
                copy(tokens, 1, MAX_TOKENS);
                pos = 2;
            } else {
                pos = 1;
            }
            left = 0;
        }

        if !more || left >= MAX_TOKENS {
            left = pos;
            break;
        }

        // Get up to two tokens.
        while more && pos <= MAX_TOKENS && pos.wrapping_sub(left) < 2 {
            more = read(tz, tokens, pos);
            if more {
                if ty(tokens, pos) == kind::COMMENT {
                    last_comment = tok(tokens, pos);
                } else {
                    last_comment.kind = kind::NONE;
                    pos += 1;
                }
            }
        }
        if pos.wrapping_sub(left) < 2 {
            left = pos;
            continue;
        }

        let (a, b) = (tok(tokens, left), tok(tokens, left + 1));
        if (a.kind == kind::STRING && b.kind == kind::STRING)
            || (a.kind == kind::SEMICOLON && b.kind == kind::SEMICOLON)
        {
            // "foo" "bar" is valid SQL: ignore the second string; fold repeated ';'.
            pos = pos.saturating_sub(1);
            continue;
        } else if (a.kind == kind::OPERATOR || a.kind == kind::LOGIC_OPERATOR)
            && (b.is_unary_op() || b.kind == kind::SQLTYPE)
        {
            pos = pos.saturating_sub(1);
            left = 0;
            continue;
        } else if (a.kind == kind::LEFTPARENS && b.is_unary_op()) || merge_words(tokens, left) {
            // "( -" drops the operator; "UNION" "ALL" → "UNION ALL".
            pos = pos.saturating_sub(1);
            left = left.saturating_sub(1);
            continue;
        } else if a.kind == kind::SEMICOLON
            && b.kind == kind::FUNCTION
            && matches!(b.byte(0), b'I' | b'i')
            && matches!(b.byte(1), b'F' | b'f')
        {
            // IF after ';' is Transact-SQL control flow, not the function.
            set_kind(tokens, left + 1, kind::TSQL);
            continue;
        } else if (a.kind == kind::BAREWORD || a.kind == kind::VARIABLE)
            && b.kind == kind::LEFTPARENS
            && FUNCTION_WORDS.iter().any(|w| a.is(w))
        {
            set_kind(tokens, left, kind::FUNCTION);
            continue;
        } else if a.kind == kind::KEYWORD && (a.is(b"IN") || a.is(b"NOT IN")) {
            // "IN (" is an operator; otherwise (MySQL "IN BOOLEAN MODE") a plain word.
            let k = if b.kind == kind::LEFTPARENS {
                kind::OPERATOR
            } else {
                kind::BAREWORD
            };
            set_kind(tokens, left, k);
            continue;
        } else if a.kind == kind::OPERATOR && (a.is(b"LIKE") || a.is(b"NOT LIKE")) {
            if b.kind == kind::LEFTPARENS {
                // SELECT LIKE(...: a function.
                set_kind(tokens, left, kind::FUNCTION);
            }
        } else if a.kind == kind::SQLTYPE
            && matches!(
                b.kind,
                kind::BAREWORD
                    | kind::NUMBER
                    | kind::SQLTYPE
                    | kind::LEFTPARENS
                    | kind::FUNCTION
                    | kind::VARIABLE
                    | kind::STRING
            )
        {
            copy(tokens, left, left + 1);
            pos = pos.saturating_sub(1);
            left = 0;
            continue;
        } else if a.kind == kind::COLLATE && b.kind == kind::BAREWORD {
            // Too many collations: a word with '_' after COLLATE is a type (C-string search).
            if b.value()
                .iter()
                .take_while(|&&c| c != 0)
                .any(|&c| c == b'_')
            {
                set_kind(tokens, left + 1, kind::SQLTYPE);
                left = 0;
            }
        } else if a.kind == kind::BACKSLASH {
            if b.is_arithmetic_op() {
                // T-SQL: '\%1' is '0 % 1'.
                set_kind(tokens, left, kind::NUMBER);
            } else {
                // T-SQL parses '\1' as '1'.
                copy(tokens, left, left + 1);
                pos = pos.saturating_sub(1);
            }
            left = 0;
            continue;
        } else if (a.kind == kind::LEFTPARENS && b.kind == kind::LEFTPARENS)
            || (a.kind == kind::RIGHTPARENS && b.kind == kind::RIGHTPARENS)
        {
            pos = pos.saturating_sub(1);
            left = 0;
            continue;
        } else if a.kind == kind::LEFTBRACE && b.kind == kind::BAREWORD {
            // MySQL's "{ ``.``.id }" is too odd to parse: evil.
            if b.len == 0 {
                set_kind(tokens, left + 1, kind::EVIL);
                return left + 2;
            }
            // ODBC "{foo expr}" → expr.
            left = 0;
            pos = pos.saturating_sub(2);
            continue;
        } else if b.kind == kind::RIGHTBRACE {
            pos = pos.saturating_sub(1);
            left = 0;
            continue;
        }

        // No two-token fold: get a third token.
        while more && pos <= MAX_TOKENS && pos.wrapping_sub(left) < 3 {
            more = read(tz, tokens, pos);
            if more {
                if ty(tokens, pos) == kind::COMMENT {
                    last_comment = tok(tokens, pos);
                } else {
                    last_comment.kind = kind::NONE;
                    pos += 1;
                }
            }
        }
        if pos.wrapping_sub(left) < 3 {
            left = pos;
            continue;
        }

        let (a, b, c) = (
            tok(tokens, left),
            tok(tokens, left + 1),
            tok(tokens, left + 2),
        );
        if drops_last_two(&a, &b, &c) {
            pos = pos.saturating_sub(2);
            left = 0;
            continue;
        } else if drops_unary(&a, &b, &c) {
            copy(tokens, left + 1, left + 2);
            pos = pos.saturating_sub(1);
            left = 0;
            continue;
        } else if a.kind == kind::COMMA && b.is_unary_op() && is_value(c.kind) {
            // ", -1" → ",1", then back up: "1,-1" → "1".
            copy(tokens, left + 1, left + 2);
            left = 0;
            pos = pos.saturating_sub(3);
            continue;
        } else if a.kind == kind::FUNCTION
            && b.kind == kind::LEFTPARENS
            && c.kind != kind::RIGHTPARENS
            && a.is(b"USER")
        {
            // USER() takes no argument: USER(foo) is not the function.
            set_kind(tokens, left, kind::BAREWORD);
        }

        // No fold: the left-most token is final.
        left += 1;
    }

    // Put a trailing comment back when there is room.
    if left < MAX_TOKENS && last_comment.kind == kind::COMMENT {
        if let Some(t) = tokens.get_mut(left) {
            *t = last_comment;
        }
        left += 1;
    }
    left.min(MAX_TOKENS)
}

/// A bare word, number, variable or string.
fn is_value(k: u8) -> bool {
    matches!(
        k,
        kind::BAREWORD | kind::NUMBER | kind::VARIABLE | kind::STRING
    )
}

/// Three tokens that fold into the first: `1+1`, `a.b`, `1,2`, `x::int`, `+(+`, `or 1 or`.
fn drops_last_two(a: &Token, b: &Token, c: &Token) -> bool {
    use kind::{BAREWORD, COMMA, DOT, LEFTPARENS, LOGIC_OPERATOR, NUMBER, OPERATOR, SQLTYPE};
    (a.kind == NUMBER && b.kind == OPERATOR && c.kind == NUMBER)
        || (a.kind == OPERATOR && b.kind != LEFTPARENS && c.kind == OPERATOR)
        || (a.kind == LOGIC_OPERATOR && c.kind == LOGIC_OPERATOR)
        || (a.kind == kind::VARIABLE
            && b.kind == OPERATOR
            && matches!(c.kind, kind::VARIABLE | NUMBER | BAREWORD))
        || (matches!(a.kind, BAREWORD | NUMBER)
            && b.kind == OPERATOR
            && matches!(c.kind, NUMBER | BAREWORD))
        || (is_value(a.kind)
            && b.kind == OPERATOR
            && b.value().split(|&ch| ch == 0).next() == Some(&b"::"[..])
            && c.kind == SQLTYPE)
        || (is_value(a.kind) && b.kind == COMMA && is_value(c.kind))
        // database.table
        || (a.kind == BAREWORD && b.kind == DOT && c.kind == BAREWORD)
}

/// Three tokens whose middle one goes: `SELECT + (`, `select - 1`, `1,-sin(1)`,
/// `` select . `foo` ``.
fn drops_unary(a: &Token, b: &Token, c: &Token) -> bool {
    use kind::{COMMA, EXPRESSION, FUNCTION, GROUP, KEYWORD, LEFTPARENS};
    (matches!(a.kind, EXPRESSION | GROUP | COMMA) && b.is_unary_op() && c.kind == LEFTPARENS)
        || (matches!(a.kind, KEYWORD | EXPRESSION | GROUP)
            && b.is_unary_op()
            && (is_value(c.kind) || c.kind == FUNCTION))
        || (a.kind == COMMA && b.is_unary_op() && c.kind == FUNCTION)
        || (a.kind == EXPRESSION && b.kind == kind::DOT && c.kind == kind::BAREWORD)
}
