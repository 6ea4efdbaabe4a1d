//! Positions in the file: byte offsets to lines, the dotted key at an offset, and the schema
//! check that turns an unknown section or key into an error with a suggestion.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table};

use crate::ConfigErrorKind;
use crate::raw::{SCHEMA, SECTIONS};

/// The 1-based line holding byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |head| head.iter().filter(|&&b| b == b'\n').count())
        + 1
}

/// An unknown name found by [`check_schema`]: where, which key, what is wrong.
pub(crate) struct Unknown {
    pub offset: usize,
    pub key: String,
    pub kind: ConfigErrorKind,
}

/// Finds the first section or key (in file order) that the schema does not know.
pub(crate) fn check_schema(document: &ImDocument<&str>) -> Option<Unknown> {
    let mut found: Vec<Unknown> = Vec::new();
    for (name, item) in document.as_table().iter() {
        let offset = key_offset(document.as_table(), name, item);
        let Some((_, keys)) = SCHEMA.iter().find(|(section, _)| *section == name) else {
            found.push(Unknown {
                offset,
                key: name.to_owned(),
                kind: ConfigErrorKind::UnknownSection {
                    name: name.to_owned(),
                    suggestion: closest(name, SECTIONS),
                    valid: SECTIONS,
                },
            });
            continue;
        };
        let tables: Vec<(String, &dyn toml_edit::TableLike)> = match item {
            Item::ArrayOfTables(array) => array
                .iter()
                .enumerate()
                .map(|(index, table)| {
                    (
                        format!("{name}[{index}]"),
                        table as &dyn toml_edit::TableLike,
                    )
                })
                .collect(),
            _ => match item.as_table_like() {
                Some(table) => vec![(name.to_owned(), table)],
                None => continue, // not a table: serde reports the wrong type
            },
        };
        for (prefix, table) in tables {
            for (key, value) in table.iter() {
                if keys.contains(&key) {
                    continue;
                }
                let offset = table
                    .key(key)
                    .and_then(toml_edit::Key::span)
                    .or_else(|| value.span())
                    .map_or(offset, |span| span.start);
                found.push(Unknown {
                    offset,
                    key: format!("{prefix}.{key}"),
                    kind: ConfigErrorKind::UnknownKey {
                        name: key.to_owned(),
                        suggestion: closest(key, keys),
                        valid: keys,
                    },
                });
            }
        }
    }
    found.into_iter().min_by_key(|unknown| unknown.offset)
}

fn key_offset(table: &Table, name: &str, item: &Item) -> usize {
    table
        .key(name)
        .and_then(toml_edit::Key::span)
        .or_else(|| item.span())
        .map_or(0, |span| span.start)
}

/// The dotted key whose value (or key) covers `span`, e.g. `gateway.listen`.
pub(crate) fn key_at(document: &ImDocument<&str>, span: &Range<usize>) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for (name, item) in document.as_table().iter() {
        let tables: Vec<(String, &dyn toml_edit::TableLike)> = match item {
            Item::ArrayOfTables(array) => array
                .iter()
                .enumerate()
                .map(|(index, table)| {
                    (
                        format!("{name}[{index}]"),
                        table as &dyn toml_edit::TableLike,
                    )
                })
                .collect(),
            _ => item
                .as_table_like()
                .map(|table| (name.to_owned(), table))
                .into_iter()
                .collect(),
        };
        for (prefix, table) in tables {
            for (key, value) in table.iter() {
                let start = table
                    .key(key)
                    .and_then(toml_edit::Key::span)
                    .map(|s| s.start);
                if let Some(value_span) = value.span() {
                    let start = start.unwrap_or(value_span.start).min(value_span.start);
                    if start <= span.start && span.start < value_span.end.max(start + 1) {
                        let width = value_span.end - start;
                        if best.as_ref().is_none_or(|(w, _)| width < *w) {
                            best = Some((width, format!("{prefix}.{key}")));
                        }
                    }
                }
            }
        }
        if best.is_none()
            && let Some(item_span) = item.span()
            && item_span.contains(&span.start)
        {
            best = Some((item_span.len(), name.to_owned()));
        }
    }
    best.map(|(_, key)| key)
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a typo.
pub(crate) fn closest(name: &str, candidates: &[&'static str]) -> Option<&'static str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, candidate)| {
            *distance <= (candidate.len() / 3).max(1)
                || (candidate.len() >= 4
                    && (name.starts_with(candidate) || candidate.starts_with(name)))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let delete = previous.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = current.get(j).copied().unwrap_or(0) + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 99), 3);
    }

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(closest("lisen", &["listen", "upstream"]), Some("listen"));
        assert_eq!(closest("gatway", SECTIONS), Some("gateway"));
        assert_eq!(closest("zzzzzz", SECTIONS), None);
    }

    #[test]
    fn finds_the_key_at_an_offset() {
        let text = "[gateway]\nlisten = \"x\"\n\n[admin]\nlisten = \"y\"\n";
        let document = ImDocument::parse(text).unwrap();
        let at = |needle: &str| {
            let start = text.find(needle).unwrap();
            key_at(&document, &(start..start + needle.len()))
        };
        assert_eq!(at("\"x\"").as_deref(), Some("gateway.listen"));
        assert_eq!(at("\"y\"").as_deref(), Some("admin.listen"));
    }
}
