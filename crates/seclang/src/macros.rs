//! Macro expansions: `%{TX.anomaly_score}`, `%{MATCHED_VAR}` inside action values (`msg`,
//! `logdata`, `setvar`, ...) and operator arguments (`@ge %{tx.threshold}`).
//!
//! The AST keeps those values as written; [`MacroString::parse`] splits one into literal text
//! and variable references once, at rule load, so the engine only substitutes at run time.
//! A reference is `%{NAME}` or `%{NAME.key}` (ModSecurity v3 also accepts `%{NAME:key}`), where
//! NAME is a variable name (upper-cased here, e.g. `TX`, `MATCHED_VAR`, `RULE`). Text that only
//! looks like a macro (`%{` without a closing `}`, or with something other than a name) stays
//! literal, as in ModSecurity v2.

/// One piece of a [`MacroString`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MacroPart {
    /// Literal text.
    Text(String),
    /// A variable reference.
    Var {
        /// The variable name, upper-cased (`TX`, `MATCHED_VAR_NAME`, `REQUEST_HEADERS`).
        collection: String,
        /// The key after `.` or `:`, as written (`critical_anomaly_score`, `0`, `host`).
        key: Option<String>,
    },
}

/// A value split into literal text and macro references.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MacroString {
    /// The pieces, in order; adjacent text is merged.
    pub parts: Vec<MacroPart>,
}

impl MacroString {
    /// Splits `text` into literal text and `%{...}` references. Never fails.
    pub fn parse(text: &str) -> Self {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("%{") {
            let (before, after_start) = rest.split_at(start);
            literal.push_str(before);
            let body_and_rest = after_start.get(2..).unwrap_or_default();
            match body_and_rest.find('}').and_then(|end| {
                let body = body_and_rest.get(..end)?;
                Some((parse_reference(body)?, end))
            }) {
                Some((part, end)) => {
                    if !literal.is_empty() {
                        parts.push(MacroPart::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    rest = body_and_rest.get(end + 1..).unwrap_or_default();
                }
                None => {
                    literal.push_str("%{");
                    rest = body_and_rest;
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(MacroPart::Text(literal));
        }
        Self { parts }
    }

    /// Whether the value has no macro (it is one literal text, or empty).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, MacroPart::Text(_)))
    }

    /// The variable references, in order.
    pub fn references(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.parts.iter().filter_map(|p| match p {
            MacroPart::Var { collection, key } => Some((collection.as_str(), key.as_deref())),
            MacroPart::Text(_) => None,
        })
    }
}

/// `NAME` or `NAME.key` / `NAME:key`.
fn parse_reference(body: &str) -> Option<MacroPart> {
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, rest) = body.split_at(name_len);
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let key = match rest.chars().next() {
        None => None,
        Some('.' | ':') => {
            let key = rest.get(1..).unwrap_or_default();
            if key.is_empty() || key.contains(['%', '{']) {
                return None;
            }
            Some(key.to_owned())
        }
        Some(_) => return None,
    };
    Some(MacroPart::Var {
        collection: name.to_ascii_uppercase(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> MacroPart {
        MacroPart::Text(s.into())
    }

    fn var(c: &str, k: Option<&str>) -> MacroPart {
        MacroPart::Var {
            collection: c.into(),
            key: k.map(Into::into),
        }
    }

    #[test]
    fn splits() {
        let m = MacroString::parse(
            "Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{matched_var}",
        );
        assert_eq!(
            m.parts,
            vec![
                text("Matched Data: "),
                var("TX", Some("0")),
                text(" found within "),
                var("MATCHED_VAR_NAME", None),
                text(": "),
                var("MATCHED_VAR", None),
            ]
        );
        assert!(!m.is_literal());
        assert_eq!(
            MacroString::parse("%{request_headers:host}").parts,
            vec![var("REQUEST_HEADERS", Some("host"))]
        );
    }

    #[test]
    fn lookalikes_stay_literal() {
        for s in [
            "",
            "100%",
            "%{",
            "a %{ b",
            "%{}",
            "%{1x}",
            "%{tx.}",
            "%{a b}",
            "x%{tx.%{y}}",
        ] {
            let m = MacroString::parse(s);
            assert!(m.is_literal() || s.starts_with('x'), "{s:?}: {m:?}");
        }
        assert_eq!(MacroString::parse("a %{ b").parts, vec![text("a %{ b")]);
        assert_eq!(
            MacroString::parse("x%{tx.%{y}}").parts,
            vec![text("x%{tx."), var("Y", None), text("}")]
        );
        assert_eq!(MacroString::parse("").parts, vec![]);
    }
}
