//! The parser: files and `Include`s to a flat list of directives, chains folded.
//!
//! `Include PATH` (and Apache's `IncludeOptional PATH`) is resolved relative to the directory
//! of the file that holds it (absolute paths as they are). A path with glob characters
//! (`*`, `?`, `[`) expands to the matching files in sorted order. `Include` of a path or pattern
//! that matches nothing is an error; `IncludeOptional` ignores it. A file that includes itself,
//! directly or through others, is an error naming the chain ([`ErrorKind::IncludeCycle`]).
//!
//! After expansion the directives are checked as a whole: a rule with the `chain` action takes
//! the next `SecRule` as its [`chain`](crate::SecRule::chain), every rule that starts a chain
//! (and every `SecAction`) has an `id`, and ids are unique.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::action::ActionList;
use crate::directive::{self, Directive, Location, Parsed, SecRule};
use crate::error::{ErrorKind, ParseError};
use crate::lexer;

/// The deepest include nesting [`Parser::new`] allows.
pub const DEFAULT_MAX_INCLUDE_DEPTH: usize = 32;

/// A configurable SecLang parser. [`parse_str`](crate::parse_str) and
/// [`parse_file`](crate::parse_file) use [`Parser::new`].
#[derive(Debug, Clone)]
pub struct Parser {
    includes: bool,
    max_depth: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser that follows `Include` up to [`DEFAULT_MAX_INCLUDE_DEPTH`] levels.
    pub fn new() -> Self {
        Self {
            includes: true,
            max_depth: DEFAULT_MAX_INCLUDE_DEPTH,
        }
    }

    /// Makes `Include` an error ([`ErrorKind::IncludeDisabled`]): the parser then never touches
    /// the file system, for untrusted text (fuzzing, rules pushed over an API).
    #[must_use]
    pub fn without_includes(mut self) -> Self {
        self.includes = false;
        self
    }

    /// Sets how deep includes may nest.
    #[must_use]
    pub fn max_include_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Parses `text` as if it were the content of the file `origin` (used in locations and as
    /// the base directory of relative `Include`s; it need not exist).
    pub fn parse_str(&self, text: &str, origin: &Path) -> Result<Vec<Directive>, ParseError> {
        let mut run = Run::new(self);
        let file: Arc<Path> = Arc::from(origin);
        // Without includes there is no cycle to detect: do not even stat the origin.
        run.stack.push(if self.includes {
            identity(origin)
        } else {
            origin.to_path_buf()
        });
        run.text(text, &file)?;
        finish(run.out)
    }

    /// Reads and parses the file at `path`.
    pub fn parse_file(&self, path: &Path) -> Result<Vec<Directive>, ParseError> {
        let mut run = Run::new(self);
        run.file(path, None)?;
        finish(run.out)
    }
}

/// The identity of a file for cycle detection: its canonical path when it exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// One parse: the files being read (for cycles) and the directives so far.
struct Run<'p> {
    parser: &'p Parser,
    stack: Vec<PathBuf>,
    out: Vec<Directive>,
}

impl<'p> Run<'p> {
    fn new(parser: &'p Parser) -> Self {
        Self {
            parser,
            stack: Vec::new(),
            out: Vec::new(),
        }
    }

    fn text(&mut self, text: &str, file: &Arc<Path>) -> Result<(), ParseError> {
        let raws =
            lexer::lex(text).map_err(|(line, kind)| ParseError::new(file, Some(line), kind))?;
        for raw in raws {
            let line = raw.line;
            let location = Location {
                file: Arc::clone(file),
                line,
            };
            match directive::interpret(raw, location)
                .map_err(|kind| ParseError::new(file, Some(line), kind))?
            {
                Parsed::Directive(d) => self.out.push(d),
                Parsed::Include { path, optional } => self.include(&path, optional, file, line)?,
            }
        }
        Ok(())
    }

    /// Reads and parses one file; `from` is the including directive, if any.
    fn file(&mut self, path: &Path, from: Option<(&Path, u32)>) -> Result<(), ParseError> {
        let err = |kind: ErrorKind| match from {
            Some((file, line)) => ParseError::new(file, Some(line), kind),
            None => ParseError::new(path, None, kind),
        };
        let id = identity(path);
        if let Some(first) = self.stack.iter().position(|p| *p == id) {
            let mut chain: Vec<PathBuf> = self.stack.get(first..).unwrap_or_default().to_vec();
            chain.push(id);
            return Err(err(ErrorKind::IncludeCycle { chain }));
        }
        if self.stack.len() > self.parser.max_depth {
            return Err(err(ErrorKind::IncludeDepth(self.parser.max_depth)));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            err(ErrorKind::Io {
                path: path.to_path_buf(),
                error: e.kind(),
            })
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let line = bytes
                    .get(..valid)
                    .unwrap_or_default()
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                return Err(ParseError::new(
                    path,
                    u32::try_from(line + 1).ok(),
                    ErrorKind::InvalidUtf8 {
                        path: path.to_path_buf(),
                        line: u32::try_from(line + 1).unwrap_or(u32::MAX),
                    },
                ));
            }
        };
        self.stack.push(id);
        let file: Arc<Path> = Arc::from(path);
        let result = self.text(&text, &file);
        self.stack.pop();
        result
    }

    fn include(
        &mut self,
        pattern: &str,
        optional: bool,
        from: &Path,
        line: u32,
    ) -> Result<(), ParseError> {
        let err = |kind: ErrorKind| ParseError::new(from, Some(line), kind);
        if !self.parser.includes {
            return Err(err(ErrorKind::IncludeDisabled(pattern.to_owned())));
        }
        let written = Path::new(pattern);
        let base = from.parent().unwrap_or_else(|| Path::new(""));
        let full = if written.is_absolute() {
            written.to_path_buf()
        } else {
            base.join(written)
        };
        let files = if pattern.contains(['*', '?', '[']) {
            let glob_text = if written.is_absolute() {
                pattern.to_owned()
            } else {
                let base_text = base.to_string_lossy();
                if base_text.is_empty() {
                    pattern.to_owned()
                } else {
                    format!("{}/{}", glob::Pattern::escape(&base_text), pattern)
                }
            };
            let paths = glob::glob(&glob_text).map_err(|e| {
                err(ErrorKind::IncludePattern {
                    pattern: full.display().to_string(),
                    reason: e.msg.to_owned(),
                })
            })?;
            let mut files: Vec<PathBuf> = paths.flatten().filter(|p| p.is_file()).collect();
            files.sort();
            files
        } else if full.exists() || !optional {
            vec![full.clone()]
        } else {
            Vec::new()
        };
        if files.is_empty() && !optional {
            return Err(err(ErrorKind::IncludeNotFound {
                pattern: full.display().to_string(),
            }));
        }
        for file in files {
            if !file.exists() {
                return Err(err(ErrorKind::IncludeNotFound {
                    pattern: file.display().to_string(),
                }));
            }
            self.file(&file, Some((from, line)))?;
        }
        Ok(())
    }
}

/// Folds chains and checks ids over the whole configuration.
fn finish(flat: Vec<Directive>) -> Result<Vec<Directive>, ParseError> {
    let mut out = Vec::with_capacity(flat.len());
    let mut pending: Vec<SecRule> = Vec::new();
    let mut ids: HashMap<u64, Location> = HashMap::new();
    let dangling = |pending: &[SecRule]| -> Option<ParseError> {
        let last = pending.last()?;
        let id = pending.first().and_then(SecRule::id).unwrap_or(0);
        Some(ParseError::new(
            &last.location.file,
            Some(last.location.line),
            ErrorKind::DanglingChain { id },
        ))
    };
    for d in flat {
        match d {
            Directive::Rule(rule) => {
                let continues = rule.actions.has_chain();
                pending.push(rule);
                if !continues {
                    let mut chain = None;
                    while let Some(mut link) = pending.pop() {
                        link.chain = chain.map(Box::new);
                        chain = Some(link);
                    }
                    if let Some(rule) = chain {
                        check_id(&mut ids, rule.id(), &rule.location)?;
                        out.push(Directive::Rule(rule));
                    }
                }
            }
            other => {
                if let Some(e) = dangling(&pending) {
                    return Err(e);
                }
                if let Directive::Action(a) = &other {
                    check_id(&mut ids, a.id(), &a.location)?;
                }
                out.push(other);
            }
        }
    }
    if let Some(e) = dangling(&pending) {
        return Err(e);
    }
    Ok(out)
}

fn check_id(
    ids: &mut HashMap<u64, Location>,
    id: Option<u64>,
    location: &Location,
) -> Result<(), ParseError> {
    let at = |kind| ParseError::new(&location.file, Some(location.line), kind);
    let id = id.ok_or_else(|| at(ErrorKind::MissingId))?;
    if let Some(first) = ids.get(&id) {
        return Err(at(ErrorKind::DuplicateId {
            id,
            first: first.to_string(),
        }));
    }
    ids.insert(id, location.clone());
    Ok(())
}
