//! Lexer: configuration text to logical directives (a name and its arguments).
//!
//! The rules follow Apache's configuration reader, which is where SecLang comes from, with the
//! refinements ModSecurity v3 and Coraza make:
//!
//! - A directive ends at the end of its line. A `\` that ends a physical line (trailing spaces
//!   and tabs after it are tolerated) continues the directive on the next line: between
//!   arguments the break counts as whitespace; inside a double-quoted argument the `\`, the line
//!   break and the next line's indentation are removed and the text before the `\` is kept
//!   as written (so `msg:'Anomaly Scores: \` + `(Inbound ...` gives `Anomaly Scores: (Inbound ...`).
//! - A line whose first non-blank character is `#` is a comment. A comment that itself ends with
//!   `\` would, in ModSecurity, swallow the next line: when that next line holds a directive this
//!   is an error ([`ErrorKind::CommentContinuation`]) rather than a silently skipped rule.
//! - Arguments are separated by spaces or tabs. A double-quoted argument runs to the next `"`
//!   that is not escaped; `\"` inside it stands for `"` (and is unescaped), `\\` is kept as
//!   written (two characters, so regular expressions keep their meaning) and every other
//!   backslash is kept too. A quote must close on the same logical line.
//! - Unquoted arguments run to the next blank; backslashes and quotes inside them are literal.
//!
//! Line numbers are 1-based and name the line where a directive starts.

use crate::error::ErrorKind;

/// One argument of a directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arg {
    /// The text, with the surrounding quotes removed and `\"` unescaped.
    pub text: String,
    /// Whether it was written in double quotes.
    pub quoted: bool,
}

/// A directive as written: its name and arguments, before interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDirective {
    /// The 1-based line where the directive starts.
    pub line: u32,
    /// The directive name as written.
    pub name: String,
    /// The arguments after the name.
    pub args: Vec<Arg>,
}

/// A lexing error and the line it belongs to.
pub(crate) type LexError = (u32, ErrorKind);

/// Splits `text` into logical directives.
pub(crate) fn lex(text: &str) -> Result<Vec<RawDirective>, LexError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        lexer.skip_blanks();
        match lexer.peek() {
            None => break,
            Some(b'\n') => lexer.newline(),
            Some(b'#') => lexer.comment()?,
            Some(_) => {
                let start_line = lexer.line;
                let mut tokens = lexer.tokens(start_line)?;
                if tokens.is_empty() {
                    continue;
                }
                let name = tokens.remove(0).text;
                out.push(RawDirective {
                    line: start_line,
                    name,
                    args: tokens,
                });
            }
        }
    }
    Ok(out)
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: u32,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
    }

    /// Skips spaces, tabs and carriage returns (not line feeds).
    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')) {
            self.pos += 1;
        }
    }

    /// The text between two byte offsets (both on ASCII boundaries, so always valid).
    fn slice(&self, start: usize, end: usize) -> &str {
        self.text.get(start..end).unwrap_or_default()
    }

    /// When the cursor is on a `\` that continues the line (only blanks until the line feed or
    /// the end of the text), returns how many bytes the continuation takes, line feed included.
    fn continuation_len(&self) -> Option<usize> {
        if self.peek() != Some(b'\\') {
            return None;
        }
        let mut i = 1;
        loop {
            match self.peek_at(i) {
                Some(b' ' | b'\t' | b'\r') => i += 1,
                Some(b'\n') => return Some(i + 1),
                None => return Some(i),
                Some(_) => return None,
            }
        }
    }

    /// Consumes a continuation (the cursor is on its `\`).
    fn take_continuation(&mut self, len: usize) {
        let ends_with_newline = self.bytes.get(self.pos + len - 1) == Some(&b'\n');
        self.pos += len;
        if ends_with_newline {
            self.line += 1;
        }
    }

    /// Consumes a comment line (the cursor is on its `#`), checking that a trailing `\` does not
    /// swallow a directive.
    fn comment(&mut self) -> Result<(), LexError> {
        let start_line = self.line;
        let start = self.pos;
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.pos += 1;
        }
        let body = self.slice(start, self.pos).trim_end();
        if body.ends_with('\\') {
            // Look at the next physical line: blank, a comment or the end are harmless.
            let mut i = self.pos + 1;
            while matches!(self.bytes.get(i), Some(b' ' | b'\t' | b'\r')) {
                i += 1;
            }
            if !matches!(self.bytes.get(i), None | Some(b'\n' | b'#')) && self.peek().is_some() {
                return Err((start_line, ErrorKind::CommentContinuation));
            }
        }
        Ok(())
    }

    /// Reads the tokens of one logical line, up to (not including) its final line feed.
    fn tokens(&mut self, start_line: u32) -> Result<Vec<Arg>, LexError> {
        let mut tokens = Vec::new();
        loop {
            self.skip_blanks();
            if let Some(len) = self.continuation_len() {
                self.take_continuation(len);
                continue;
            }
            match self.peek() {
                None | Some(b'\n') => return Ok(tokens),
                Some(b'"') => tokens.push(self.quoted(start_line)?),
                Some(_) => tokens.push(self.unquoted()),
            }
        }
    }

    fn unquoted(&mut self) -> Arg {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c')
                || self.continuation_len().is_some()
            {
                break;
            }
            self.pos += 1;
        }
        Arg {
            text: self.slice(start, self.pos).to_owned(),
            quoted: false,
        }
    }

    fn quoted(&mut self, start_line: u32) -> Result<Arg, LexError> {
        let open = self.pos;
        self.pos += 1;
        let mut text = String::new();
        let mut run = self.pos;
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    let mut shown = self.slice(open, self.pos).trim_end().to_owned();
                    if shown.len() > 60 {
                        let cut = (0..=60).rev().find(|&i| shown.is_char_boundary(i));
                        shown.truncate(cut.unwrap_or(0));
                        shown.push_str("...");
                    }
                    return Err((start_line, ErrorKind::UnterminatedQuote(shown)));
                }
                Some(b'"') => {
                    text.push_str(self.slice(run, self.pos));
                    self.pos += 1;
                    return Ok(Arg { text, quoted: true });
                }
                Some(b'\\') => {
                    if let Some(len) = self.continuation_len() {
                        text.push_str(self.slice(run, self.pos));
                        self.take_continuation(len);
                        while matches!(self.peek(), Some(b' ' | b'\t')) {
                            self.pos += 1;
                        }
                        run = self.pos;
                        continue;
                    }
                    match self.peek_at(1) {
                        Some(b'"') => {
                            text.push_str(self.slice(run, self.pos));
                            text.push('"');
                            self.pos += 2;
                            run = self.pos;
                        }
                        Some(b'\\') => {
                            // A pair stays as written, unless its second half ends the line.
                            self.pos += 1;
                            if self.continuation_len().is_none() {
                                self.pos += 1;
                            }
                        }
                        _ => self.pos += 1,
                    }
                }
                Some(_) => self.pos += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(d: &RawDirective) -> Vec<&str> {
        d.args.iter().map(|a| a.text.as_str()).collect()
    }

    #[test]
    fn splits_directives_and_skips_comments() {
        let ds =
            lex("# comment\n\nSecRuleEngine On\n  # indented comment\nSecAction \"id:1,pass\"\n")
                .unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].name, "SecRuleEngine");
        assert_eq!(ds[0].line, 3);
        assert_eq!(args(&ds[0]), ["On"]);
        assert_eq!(ds[1].line, 5);
        assert_eq!(args(&ds[1]), ["id:1,pass"]);
        assert!(ds[1].args[0].quoted);
    }

    #[test]
    fn continuation_between_and_inside_arguments() {
        let text = "SecRule ARGS \"@rx a\" \\\n    \"id:1,\\\n    msg:'x: \\\n(y)',\\\n    pass\"\nSecMarker END\n";
        let ds = lex(text).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(args(&ds[0]), ["ARGS", "@rx a", "id:1,msg:'x: (y)',pass"]);
        assert_eq!(ds[1].line, 6);
    }

    #[test]
    fn escapes_in_quotes() {
        let ds = lex(r#"SecRule ARGS "@rx [\"'] \\d \w" "msg:'it\'s'""#).unwrap();
        assert_eq!(args(&ds[0]), ["ARGS", r#"@rx ["'] \\d \w"#, r"msg:'it\'s'"]);
        // An even run of backslashes before a quote closes the string.
        let ds = lex(r#"SecRule ARGS "@rx a\\" "id:1""#).unwrap();
        assert_eq!(args(&ds[0]), ["ARGS", r"@rx a\\", "id:1"]);
    }

    #[test]
    fn crlf_and_trailing_blanks_after_backslash() {
        let ds = lex("SecAction \\  \r\n  \"id:1\"\r\nSecMarker A\r\n").unwrap();
        assert_eq!(args(&ds[0]), ["id:1"]);
        assert_eq!(args(&ds[1]), ["A"]);
        assert_eq!(ds[1].line, 3);
    }

    #[test]
    fn adjacent_quoted_arguments() {
        let ds = lex("SecRule ARGS \"@rx a\"\"id:1\"").unwrap();
        assert_eq!(args(&ds[0]), ["ARGS", "@rx a", "id:1"]);
    }

    #[test]
    fn unterminated_quote_names_start_line() {
        let err = lex("\n\nSecRule ARGS \"@rx a \\\n  b\n").unwrap_err();
        assert_eq!(err.0, 3);
        assert!(matches!(err.1, ErrorKind::UnterminatedQuote(_)));
    }

    #[test]
    fn comment_continuation() {
        // Followed by another comment or a blank line: harmless.
        assert!(lex("#SecRule ARGS \"@rx a\" \\\n#  \"id:1\"\n").is_ok());
        assert!(lex("# note \\\n\nSecMarker A\n").is_ok());
        assert!(lex("# note \\").is_ok());
        let err = lex("SecMarker A\n# note \\\nSecMarker B\n").unwrap_err();
        assert_eq!(err, (2, ErrorKind::CommentContinuation));
    }

    #[test]
    fn byte_order_mark_and_non_ascii() {
        let ds = lex("\u{feff}SecAction \"msg:'héllo \u{2713}'\"").unwrap();
        assert_eq!(args(&ds[0]), ["msg:'héllo \u{2713}'"]);
    }
}
