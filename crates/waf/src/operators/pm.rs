//! `@pm` / `@pmFromFile`: case-insensitive multi-phrase matching with Aho-Corasick.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// A compiled phrase set.
#[derive(Debug)]
pub(crate) struct Pm {
    ac: AhoCorasick,
    /// The phrases, lower-cased (the prefilter's factors).
    words: Vec<Vec<u8>>,
}

impl Pm {
    /// `@pm a b c`: blank-separated phrases.
    pub(crate) fn from_words(arg: &str) -> Result<Self, String> {
        Self::new(
            arg.split_whitespace()
                .map(|w| w.as_bytes().to_vec())
                .collect(),
        )
    }

    pub(crate) fn new(words: Vec<Vec<u8>>) -> Result<Self, String> {
        let words: Vec<Vec<u8>> = words.into_iter().filter(|w| !w.is_empty()).collect();
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(&words)
            .map_err(|e| e.to_string())?;
        let words = words.iter().map(|w| w.to_ascii_lowercase()).collect();
        Ok(Self { ac, words })
    }

    /// The phrases (one of them occurs in every input that matches), if any.
    pub(crate) fn factors(&self) -> Option<Vec<Vec<u8>>> {
        (!self.words.is_empty()).then(|| self.words.clone())
    }

    /// The first phrase found in `input`.
    pub(crate) fn find<'a>(&self, input: &'a [u8]) -> Option<&'a [u8]> {
        self.ac
            .find(input)
            .and_then(|m| input.get(m.start()..m.end()))
    }
}

/// The phrases of a data file: one per line, blank lines and `#` comments skipped.
pub(crate) fn data_file_lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(<[u8]>::to_vec)
        .collect()
}
