//! Transformations (`t:`): pure functions from bytes to bytes, resolved by name once at rule
//! load into [`Transformation`], applied by the transaction through its per-request cache.
//!
//! Every function follows ModSecurity's byte semantics (no UTF-8 assumption). `apply` returns
//! `None` when the input is unchanged, so callers can keep borrowing the original value.

mod decode;
mod hash;
mod normalize;
mod simple;

pub(crate) use simple::is_space;

/// A transformation, compiled from its `t:` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transformation {
    /// `base64Decode`.
    Base64Decode,
    /// `base64DecodeExt` (skips invalid characters).
    Base64DecodeExt,
    /// `base64Encode`.
    Base64Encode,
    /// `cmdLine`.
    CmdLine,
    /// `compressWhitespace`.
    CompressWhitespace,
    /// `cssDecode`.
    CssDecode,
    /// `escapeSeqDecode`.
    EscapeSeqDecode,
    /// `hexDecode`.
    HexDecode,
    /// `hexEncode`.
    HexEncode,
    /// `htmlEntityDecode`.
    HtmlEntityDecode,
    /// `jsDecode`.
    JsDecode,
    /// `length`.
    Length,
    /// `lowercase`.
    Lowercase,
    /// `md5`.
    Md5,
    /// `normalizePath`.
    NormalizePath,
    /// `normalizePathWin`.
    NormalizePathWin,
    /// `parityEven7bit`.
    ParityEven7bit,
    /// `parityOdd7bit`.
    ParityOdd7bit,
    /// `parityZero7bit`.
    ParityZero7bit,
    /// `removeComments`.
    RemoveComments,
    /// `removeCommentsChar`.
    RemoveCommentsChar,
    /// `removeNulls`.
    RemoveNulls,
    /// `removeWhitespace`.
    RemoveWhitespace,
    /// `replaceComments`.
    ReplaceComments,
    /// `replaceNulls`.
    ReplaceNulls,
    /// `sha1`.
    Sha1,
    /// `sqlHexDecode`.
    SqlHexDecode,
    /// `trim`.
    Trim,
    /// `trimLeft`.
    TrimLeft,
    /// `trimRight`.
    TrimRight,
    /// `uppercase`.
    Uppercase,
    /// `urlDecode`.
    UrlDecode,
    /// `urlDecodeUni`.
    UrlDecodeUni,
    /// `urlEncode`.
    UrlEncode,
    /// `utf8toUnicode`.
    Utf8ToUnicode,
}

/// The registry: canonical (lower-case) name to transformation. `none` is not in it: it resets
/// the pipeline and is handled by the compiler.
pub const REGISTRY: &[(&str, Transformation)] = &[
    ("base64decode", Transformation::Base64Decode),
    ("base64decodeext", Transformation::Base64DecodeExt),
    ("base64encode", Transformation::Base64Encode),
    ("cmdline", Transformation::CmdLine),
    ("compresswhitespace", Transformation::CompressWhitespace),
    ("cssdecode", Transformation::CssDecode),
    ("escapeseqdecode", Transformation::EscapeSeqDecode),
    ("hexdecode", Transformation::HexDecode),
    ("hexencode", Transformation::HexEncode),
    ("htmlentitydecode", Transformation::HtmlEntityDecode),
    ("jsdecode", Transformation::JsDecode),
    ("length", Transformation::Length),
    ("lowercase", Transformation::Lowercase),
    ("md5", Transformation::Md5),
    ("normalizepath", Transformation::NormalizePath),
    ("normalizepathwin", Transformation::NormalizePathWin),
    ("parityeven7bit", Transformation::ParityEven7bit),
    ("parityodd7bit", Transformation::ParityOdd7bit),
    ("parityzero7bit", Transformation::ParityZero7bit),
    ("removecomments", Transformation::RemoveComments),
    ("removecommentschar", Transformation::RemoveCommentsChar),
    ("removenulls", Transformation::RemoveNulls),
    ("removewhitespace", Transformation::RemoveWhitespace),
    ("replacecomments", Transformation::ReplaceComments),
    ("replacenulls", Transformation::ReplaceNulls),
    ("sha1", Transformation::Sha1),
    ("sqlhexdecode", Transformation::SqlHexDecode),
    ("trim", Transformation::Trim),
    ("trimleft", Transformation::TrimLeft),
    ("trimright", Transformation::TrimRight),
    ("uppercase", Transformation::Uppercase),
    ("urldecode", Transformation::UrlDecode),
    ("urldecodeuni", Transformation::UrlDecodeUni),
    ("urlencode", Transformation::UrlEncode),
    ("utf8tounicode", Transformation::Utf8ToUnicode),
];

impl Transformation {
    /// Looks a transformation up by its canonical name (as the parser keeps it).
    pub fn by_name(name: &str) -> Option<Self> {
        REGISTRY
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| *t)
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        REGISTRY
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }

    /// Applies the transformation; `None` when the output equals the input.
    pub fn apply(self, input: &[u8]) -> Option<Vec<u8>> {
        let out = match self {
            Self::Base64Decode => decode::base64_decode(input, false),
            Self::Base64DecodeExt => decode::base64_decode(input, true),
            Self::Base64Encode => simple::base64_encode(input),
            Self::CmdLine => normalize::cmd_line(input),
            Self::CompressWhitespace => normalize::compress_whitespace(input),
            Self::CssDecode => decode::css_decode(input)?,
            Self::EscapeSeqDecode => decode::escape_seq_decode(input)?,
            Self::HexDecode => decode::hex_decode(input),
            Self::HexEncode => simple::hex_encode(input),
            Self::HtmlEntityDecode => decode::html_entity_decode(input)?,
            Self::JsDecode => decode::js_decode(input)?,
            Self::Length => input.len().to_string().into_bytes(),
            Self::Lowercase => {
                if !input.iter().any(u8::is_ascii_uppercase) {
                    return None;
                }
                input.to_ascii_lowercase()
            }
            Self::Uppercase => {
                if !input.iter().any(u8::is_ascii_lowercase) {
                    return None;
                }
                input.to_ascii_uppercase()
            }
            Self::Md5 => hash::md5(input).to_vec(),
            Self::Sha1 => hash::sha1(input).to_vec(),
            Self::NormalizePath => normalize::normalize_path(input, false)?,
            Self::NormalizePathWin => normalize::normalize_path(input, true)?,
            Self::ParityEven7bit => simple::parity(input, simple::Parity::Even),
            Self::ParityOdd7bit => simple::parity(input, simple::Parity::Odd),
            Self::ParityZero7bit => simple::parity(input, simple::Parity::Zero),
            Self::RemoveComments => normalize::remove_comments(input)?,
            Self::RemoveCommentsChar => normalize::remove_comments_char(input)?,
            Self::RemoveNulls => {
                if !input.contains(&0) {
                    return None;
                }
                input.iter().copied().filter(|b| *b != 0).collect()
            }
            Self::ReplaceNulls => {
                if !input.contains(&0) {
                    return None;
                }
                input
                    .iter()
                    .map(|b| if *b == 0 { b' ' } else { *b })
                    .collect()
            }
            Self::RemoveWhitespace => {
                if !input.iter().any(|b| simple::is_space(*b) || *b == 0xa0) {
                    return None;
                }
                input
                    .iter()
                    .copied()
                    .filter(|b| !(simple::is_space(*b) || *b == 0xa0))
                    .collect()
            }
            Self::ReplaceComments => normalize::replace_comments(input)?,
            Self::SqlHexDecode => decode::sql_hex_decode(input)?,
            Self::Trim => simple::trim(input, true, true)?,
            Self::TrimLeft => simple::trim(input, true, false)?,
            Self::TrimRight => simple::trim(input, false, true)?,
            Self::UrlDecode => decode::url_decode(input, false)?,
            Self::UrlDecodeUni => decode::url_decode(input, true)?,
            Self::UrlEncode => simple::url_encode(input),
            Self::Utf8ToUnicode => decode::utf8_to_unicode(input)?,
        };
        (out.as_slice() != input).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, input: &str) -> String {
        let tr = Transformation::by_name(name).unwrap();
        let out = tr
            .apply(input.as_bytes())
            .unwrap_or_else(|| input.as_bytes().to_vec());
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn names_are_unique() {
        for (i, (a, _)) in REGISTRY.iter().enumerate() {
            assert!(REGISTRY.iter().skip(i + 1).all(|(b, _)| a != b));
        }
    }

    #[test]
    fn decoders() {
        assert_eq!(t("urldecodeuni", "a%20b+c%u0041%uff21%zz%"), "a b cAA%zz%");
        assert_eq!(t("urldecode", "%41%4"), "A%4");
        assert_eq!(
            t("htmlentitydecode", "&lt;&#x41;&#66&amp;&foo;&"),
            "<AB&&foo;&"
        );
        assert_eq!(t("jsdecode", r"\x41\u0042\n\'\101"), "AB\n'A");
        assert_eq!(t("cssdecode", r"\41 x\\"), "Ax\\");
        assert_eq!(t("escapeseqdecode", r"\x41\n\q"), "A\nq");
        assert_eq!(t("base64decode", "SGVsbG8="), "Hello");
        assert_eq!(t("sqlhexdecode", "0x414243"), "ABC");
        assert_eq!(t("utf8tounicode", "é"), "%u00e9");
    }

    #[test]
    fn normalizers() {
        assert_eq!(t("cmdline", "C^OMMAND /c \"dir\"  ;x"), "command/c dir x");
        assert_eq!(t("compresswhitespace", "a \t\n b"), "a b");
        assert_eq!(t("normalizepath", "/a/./b/../../c//d/"), "/c/d/");
        assert_eq!(t("normalizepathwin", "\\a\\..\\b"), "/b");
        assert_eq!(t("removecommentschar", "a/*b*/c--d#e"), "abcde");
        assert_eq!(t("replacecomments", "a/*b*/c/*d"), "a c ");
        assert_eq!(t("removecomments", "a/*b*/c--d\ne"), "ac");
        assert_eq!(t("removecomments", "a<!--b-->c#d"), "ac");
        assert_eq!(t("length", "abc"), "3");
        assert_eq!(t("hexencode", "AB"), "4142");
        assert_eq!(t("trim", " a "), "a");
    }

    #[test]
    fn hashes() {
        let h = Transformation::Sha1.apply(b"abc").unwrap();
        assert_eq!(
            simple::hex_encode(&h),
            b"a9993e364706816aba3e25717850c26c9cd0d89d".to_vec()
        );
        let h = Transformation::Md5.apply(b"abc").unwrap();
        assert_eq!(
            simple::hex_encode(&h),
            b"900150983cd24fb0d6963f7d28e17f72".to_vec()
        );
    }
}
