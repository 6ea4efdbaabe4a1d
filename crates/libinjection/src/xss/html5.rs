//! A small HTML5 tokenizer, libinjection's `libinjection_html5`: tags, attribute names and
//! values, comments and doctypes, enough to find script vectors.
//!
//! It starts in one of five states (data, or inside an attribute value: unquoted, `'`, `"`,
//! `` ` ``), the contexts an injected string may land in. The spec's states become [`State`];
//! where libinjection tail-calls another state function this tokenizer loops instead, so
//! deep inputs (`//////...`) cannot exhaust the stack. Every step advances or emits, so
//! tokenizing is linear in the input.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenType {
    DataText,
    TagNameOpen,
    TagNameClose,
    TagNameSelfClose,
    TagClose,
    AttrName,
    AttrValue,
    TagComment,
    Doctype,
}

/// The context the input starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    Data,
    ValueNoQuote,
    ValueSingleQuote,
    ValueDoubleQuote,
    ValueBackQuote,
}

/// One token: its type and its bytes (`start..start + len` of the input).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub(crate) kind: TokenType,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Eof,
    Data,
    TagOpen,
    EndTagOpen,
    TagName,
    TagNameClose,
    BeforeAttributeName,
    AttributeName,
    AfterAttributeName,
    BeforeAttributeValue,
    AttributeValueQuote(u8),
    AttributeValueNoQuote,
    AfterAttributeValueQuoted,
    SelfClosingStartTag,
    BogusComment,
    BogusComment2,
    MarkupDeclarationOpen,
    Comment,
    Cdata,
    Doctype,
}

/// One state's outcome: a token, the end, or another state to run on the same input.
enum Step {
    Emit(TokenType, usize, usize),
    Stop,
    Goto(State),
}

/// HTML5 white space, with NUL (libinjection finds NUL in its C-string set).
fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0)
}

/// The tokenizer.
#[derive(Debug)]
pub(crate) struct Html5<'a> {
    s: &'a [u8],
    pos: usize,
    is_close: bool,
    state: State,
}

impl<'a> Html5<'a> {
    pub(crate) fn new(s: &'a [u8], start: Start) -> Self {
        let state = match start {
            Start::Data => State::Data,
            Start::ValueNoQuote => State::BeforeAttributeName,
            Start::ValueSingleQuote => State::AttributeValueQuote(b'\''),
            Start::ValueDoubleQuote => State::AttributeValueQuote(b'"'),
            Start::ValueBackQuote => State::AttributeValueQuote(b'`'),
        };
        Self {
            s,
            pos: 0,
            is_close: false,
            state,
        }
    }

    /// The bytes of `t`.
    pub(crate) fn bytes(&self, t: &Token) -> &'a [u8] {
        let end = t.start.saturating_add(t.len).min(self.s.len());
        self.s.get(t.start..end).unwrap_or(&[])
    }

    /// The bytes from `t`'s start to the end of the input.
    pub(crate) fn rest(&self, t: &Token) -> &'a [u8] {
        self.s.get(t.start..).unwrap_or(&[])
    }

    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    fn find(&self, from: usize, c: u8) -> Option<usize> {
        let tail = self.s.get(from..)?;
        tail.iter().position(|&b| b == c).map(|i| i + from)
    }

    /// Skips white space (and NUL); `None` at the end. Like libinjection on a signed-char
    /// platform, byte 0xFF reads as the end (`(char)0xFF == EOF`).
    fn skip_white(&mut self) -> Option<u8> {
        while let Some(&ch) = self.s.get(self.pos) {
            match ch {
                0x00 | 0x20 | 0x09 | 0x0a | 0x0b | 0x0c | 0x0d => self.pos += 1,
                0xff => return None,
                _ => return Some(ch),
            }
        }
        None
    }

    /// The next token, or `None` at the end.
    pub(crate) fn next_token(&mut self) -> Option<Token> {
        // Each Goto either advances `pos` or moves to a state that emits or stops without
        // looping back; the bound is a safety net only.
        let mut budget = 8 + 4 * self.s.len();
        loop {
            budget = budget.checked_sub(1)?;
            match self.step(self.state) {
                Step::Emit(kind, start, len) => return Some(Token { kind, start, len }),
                Step::Stop => return None,
                Step::Goto(next) => self.state = next,
            }
        }
    }

    fn emit(&mut self, kind: TokenType, start: usize, len: usize, next: State) -> Step {
        self.state = next;
        Step::Emit(kind, start, len)
    }

    fn step(&mut self, state: State) -> Step {
        let len = self.s.len();
        match state {
            State::Eof => Step::Stop,
            State::Data => match self.find(self.pos, b'<') {
                None => {
                    let start = self.pos;
                    self.state = State::Eof;
                    if len <= start {
                        return Step::Stop;
                    }
                    Step::Emit(TokenType::DataText, start, len - start)
                }
                Some(idx) => {
                    let start = self.pos;
                    self.pos = idx + 1;
                    self.state = State::TagOpen;
                    if idx == start {
                        return Step::Goto(State::TagOpen);
                    }
                    Step::Emit(TokenType::DataText, start, idx - start)
                }
            },
            State::TagOpen => {
                let Some(&ch) = self.s.get(self.pos) else {
                    return Step::Stop;
                };
                match ch {
                    b'!' => {
                        self.pos += 1;
                        Step::Goto(State::MarkupDeclarationOpen)
                    }
                    b'/' => {
                        self.pos += 1;
                        self.is_close = true;
                        Step::Goto(State::EndTagOpen)
                    }
                    b'?' => {
                        self.pos += 1;
                        Step::Goto(State::BogusComment)
                    }
                    // Not in the spec: IE <= 9 and old Safari "<% %>" comments.
                    b'%' => {
                        self.pos += 1;
                        Step::Goto(State::BogusComment2)
                    }
                    // NUL: an IE-ism, ignored.
                    c if c.is_ascii_alphabetic() || c == 0 => Step::Goto(State::TagName),
                    _ => {
                        if self.pos == 0 {
                            return Step::Goto(State::Data);
                        }
                        self.emit(TokenType::DataText, self.pos - 1, 1, State::Data)
                    }
                }
            }
            State::EndTagOpen => {
                let Some(&ch) = self.s.get(self.pos) else {
                    return Step::Stop;
                };
                if ch == b'>' {
                    Step::Goto(State::Data)
                } else if ch.is_ascii_alphabetic() {
                    Step::Goto(State::TagName)
                } else {
                    self.is_close = false;
                    Step::Goto(State::BogusComment)
                }
            }
            State::TagNameClose => {
                self.is_close = false;
                let start = self.pos;
                self.pos += 1;
                let next = if self.pos < len {
                    State::Data
                } else {
                    State::Eof
                };
                self.emit(TokenType::TagNameClose, start, 1, next)
            }
            State::TagName => self.tag_name(),
            State::BeforeAttributeName => match self.skip_white() {
                None => Step::Stop,
                Some(b'/') => {
                    self.pos += 1;
                    Step::Goto(State::SelfClosingStartTag)
                }
                Some(b'>') => {
                    let start = self.pos;
                    self.pos += 1;
                    self.emit(TokenType::TagNameClose, start, 1, State::Data)
                }
                Some(_) => Step::Goto(State::AttributeName),
            },
            State::AttributeName => self.attribute_name(),
            State::AfterAttributeName => match self.skip_white() {
                None => Step::Stop,
                Some(b'/') => {
                    self.pos += 1;
                    Step::Goto(State::SelfClosingStartTag)
                }
                Some(b'=') => {
                    self.pos += 1;
                    Step::Goto(State::BeforeAttributeValue)
                }
                Some(b'>') => Step::Goto(State::TagNameClose),
                Some(_) => Step::Goto(State::AttributeName),
            },
            State::BeforeAttributeValue => match self.skip_white() {
                None => {
                    self.state = State::Eof;
                    Step::Stop
                }
                Some(q @ (b'"' | b'\'' | b'`')) => Step::Goto(State::AttributeValueQuote(q)),
                Some(_) => Step::Goto(State::AttributeValueNoQuote),
            },
            State::AttributeValueQuote(q) => {
                // Skip the opening quote, unless the input starts inside the value.
                if self.pos > 0 {
                    self.pos += 1;
                }
                let start = self.pos.min(len);
                match self.find(start, q) {
                    None => self.emit(TokenType::AttrValue, start, len - start, State::Eof),
                    Some(idx) => {
                        self.pos = idx + 1;
                        self.emit(
                            TokenType::AttrValue,
                            start,
                            idx - start,
                            State::AfterAttributeValueQuoted,
                        )
                    }
                }
            }
            State::AttributeValueNoQuote => {
                let start = self.pos;
                let mut pos = start;
                while let Some(&ch) = self.s.get(pos) {
                    if is_white(ch) {
                        self.pos = pos + 1;
                        return self.emit(
                            TokenType::AttrValue,
                            start,
                            pos - start,
                            State::BeforeAttributeName,
                        );
                    } else if ch == b'>' {
                        self.pos = pos;
                        return self.emit(
                            TokenType::AttrValue,
                            start,
                            pos - start,
                            State::TagNameClose,
                        );
                    }
                    pos += 1;
                }
                self.emit(
                    TokenType::AttrValue,
                    start,
                    len.saturating_sub(start),
                    State::Eof,
                )
            }
            State::AfterAttributeValueQuoted => {
                let Some(&ch) = self.s.get(self.pos) else {
                    return Step::Stop;
                };
                if is_white(ch) {
                    self.pos += 1;
                    Step::Goto(State::BeforeAttributeName)
                } else if ch == b'/' {
                    self.pos += 1;
                    Step::Goto(State::SelfClosingStartTag)
                } else if ch == b'>' {
                    let start = self.pos;
                    self.pos += 1;
                    self.emit(TokenType::TagNameClose, start, 1, State::Data)
                } else {
                    Step::Goto(State::BeforeAttributeName)
                }
            }
            State::SelfClosingStartTag => {
                let Some(&ch) = self.s.get(self.pos) else {
                    return Step::Stop;
                };
                if ch == b'>' {
                    let start = self.pos.saturating_sub(1);
                    self.pos += 1;
                    self.emit(TokenType::TagNameSelfClose, start, 2, State::Data)
                } else {
                    Step::Goto(State::BeforeAttributeName)
                }
            }
            State::BogusComment => {
                let start = self.pos.min(len);
                match self.find(start, b'>') {
                    None => {
                        self.pos = len;
                        self.emit(TokenType::TagComment, start, len - start, State::Eof)
                    }
                    Some(idx) => {
                        self.pos = idx + 1;
                        self.emit(TokenType::TagComment, start, idx - start, State::Data)
                    }
                }
            }
            State::BogusComment2 => {
                let start = self.pos.min(len);
                let mut from = start;
                loop {
                    match self.find(from, b'%') {
                        Some(idx) if idx + 1 < len => {
                            if self.at(idx + 1) != b'>' {
                                from = idx + 1;
                                continue;
                            }
                            self.pos = idx + 2;
                            return self.emit(
                                TokenType::TagComment,
                                start,
                                idx - start,
                                State::Data,
                            );
                        }
                        _ => {
                            self.pos = len;
                            return self.emit(
                                TokenType::TagComment,
                                start,
                                len - start,
                                State::Eof,
                            );
                        }
                    }
                }
            }
            State::MarkupDeclarationOpen => {
                let rest = self.s.get(self.pos..).unwrap_or(&[]);
                if rest.len() >= 7
                    && rest
                        .get(..7)
                        .is_some_and(|w| w.eq_ignore_ascii_case(b"DOCTYPE"))
                {
                    Step::Goto(State::Doctype)
                } else if rest.starts_with(b"[CDATA[") {
                    self.pos += 7;
                    Step::Goto(State::Cdata)
                } else if rest.starts_with(b"--") {
                    self.pos += 2;
                    Step::Goto(State::Comment)
                } else {
                    Step::Goto(State::BogusComment)
                }
            }
            State::Comment => self.comment(),
            State::Cdata => {
                let start = self.pos.min(len);
                let mut from = start;
                loop {
                    match self.find(from, b']') {
                        Some(idx) if idx + 3 <= len => {
                            if self.at(idx + 1) == b']' && self.at(idx + 2) == b'>' {
                                self.pos = idx + 3;
                                return self.emit(
                                    TokenType::DataText,
                                    start,
                                    idx - start,
                                    State::Data,
                                );
                            }
                            from = idx + 1;
                        }
                        _ => {
                            return self.emit(TokenType::DataText, start, len - start, State::Eof);
                        }
                    }
                }
            }
            State::Doctype => {
                let start = self.pos.min(len);
                match self.find(start, b'>') {
                    None => self.emit(TokenType::Doctype, start, len - start, State::Eof),
                    Some(idx) => {
                        self.pos = idx + 1;
                        self.emit(TokenType::Doctype, start, idx - start, State::Data)
                    }
                }
            }
        }
    }

    fn tag_name(&mut self) -> Step {
        let start = self.pos;
        let mut pos = start;
        while let Some(&ch) = self.s.get(pos) {
            if ch == 0 {
                // Old browsers allow and ignore NUL in tag names.
                pos += 1;
            } else if is_white(ch) {
                self.pos = pos + 1;
                return self.emit(
                    TokenType::TagNameOpen,
                    start,
                    pos - start,
                    State::BeforeAttributeName,
                );
            } else if ch == b'/' {
                self.pos = pos + 1;
                return self.emit(
                    TokenType::TagNameOpen,
                    start,
                    pos - start,
                    State::SelfClosingStartTag,
                );
            } else if ch == b'>' {
                if self.is_close {
                    self.pos = pos + 1;
                    self.is_close = false;
                    return self.emit(TokenType::TagClose, start, pos - start, State::Data);
                }
                self.pos = pos;
                return self.emit(
                    TokenType::TagNameOpen,
                    start,
                    pos - start,
                    State::TagNameClose,
                );
            } else {
                pos += 1;
            }
        }
        let len = self.s.len();
        self.emit(
            TokenType::TagNameOpen,
            start,
            len.saturating_sub(start),
            State::Eof,
        )
    }

    fn attribute_name(&mut self) -> Step {
        let start = self.pos;
        let mut pos = start + 1;
        while let Some(&ch) = self.s.get(pos) {
            let next = if is_white(ch) {
                Some((pos + 1, State::AfterAttributeName))
            } else if ch == b'/' {
                Some((pos + 1, State::SelfClosingStartTag))
            } else if ch == b'=' {
                Some((pos + 1, State::BeforeAttributeValue))
            } else if ch == b'>' {
                Some((pos, State::TagNameClose))
            } else {
                None
            };
            if let Some((resume, state)) = next {
                self.pos = resume;
                return self.emit(TokenType::AttrName, start, pos - start, state);
            }
            pos += 1;
        }
        let len = self.s.len();
        self.pos = len;
        self.emit(
            TokenType::AttrName,
            start,
            len.saturating_sub(start),
            State::Eof,
        )
    }

    /// Comments end at the end of input, `-->` or `-!>` (NULs between the dashes ignored).
    fn comment(&mut self) -> Step {
        let len = self.s.len();
        let start = self.pos.min(len);
        let mut from = start;
        loop {
            let idx = match self.find(from, b'-') {
                Some(idx) if idx + 3 <= len => idx,
                _ => return self.emit(TokenType::TagComment, start, len - start, State::Eof),
            };
            let mut offset = 1;
            while idx + offset < len && self.at(idx + offset) == 0 {
                offset += 1;
            }
            if idx + offset == len {
                return self.emit(TokenType::TagComment, start, len - start, State::Eof);
            }
            let ch = self.at(idx + offset);
            if ch != b'-' && ch != b'!' {
                from = idx + 1;
                continue;
            }
            offset += 1;
            if idx + offset == len {
                return self.emit(TokenType::TagComment, start, len - start, State::Eof);
            }
            if self.at(idx + offset) != b'>' {
                from = idx + 1;
                continue;
            }
            offset += 1;
            self.pos = idx + offset;
            return self.emit(TokenType::TagComment, start, idx - start, State::Data);
        }
    }
}
