//! Operators: the test a rule applies to each variable (`"@rx ^foo"`, `"!@streq bar"`).
//!
//! The operator string is `[!]@name[ argument]`. A string that does not start with `@` (after
//! an optional `!`) is an `@rx` argument, as in ModSecurity. Blanks between `!`, the name and
//! the argument are skipped; the argument is kept as written to the end of the string (the
//! lexer has already turned `\"` into `"`). Names are case-insensitive and kept lower-cased;
//! the aliases `@pmf` and `@ipMatchF` become `pmfromfile` and `ipmatchfromfile`.

use std::fmt;

use crate::error::ErrorKind;

/// A rule's operator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operator {
    /// `!@rx`: the rule matches when the operator does not.
    pub negated: bool,
    /// The canonical lower-case name, without `@`: `rx`, `pm`, `detectsqli`, `pmfromfile`.
    pub name: String,
    /// The argument as written (may be empty, may contain `%{...}` macros).
    pub argument: String,
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_str("!")?;
        }
        write!(f, "@{}", self.name)?;
        if !self.argument.is_empty() {
            write!(f, " {}", self.argument)?;
        }
        Ok(())
    }
}

/// Every operator name the parser accepts (canonical, lower-case).
pub const OPERATORS: &[&str] = &[
    "beginswith",
    "contains",
    "containsword",
    "detectsqli",
    "detectxss",
    "endswith",
    "eq",
    "fuzzyhash",
    "ge",
    "geolookup",
    "gsblookup",
    "gt",
    "inspectfile",
    "ipmatch",
    "ipmatchfromfile",
    "le",
    "lt",
    "nomatch",
    "pm",
    "pmfromfile",
    "rbl",
    "rsub",
    "rx",
    "rxglobal",
    "streq",
    "strmatch",
    "unconditionalmatch",
    "validatebyterange",
    "validatedtd",
    "validatehash",
    "validateschema",
    "validateurlencoding",
    "validateutf8encoding",
    "verifycc",
    "verifycpf",
    "verifyssn",
    "verifysvnr",
    "within",
];

/// The canonical name for `name` (any case, without `@`), or `None` if unknown.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let lower = match lower.as_str() {
        "pmf" => "pmfromfile",
        "ipmatchf" => "ipmatchfromfile",
        other => other,
    };
    OPERATORS
        .binary_search(&lower)
        .ok()
        .and_then(|i| OPERATORS.get(i))
        .copied()
}

/// Parses an operator string (the second argument of `SecRule`, quotes removed).
pub(crate) fn parse(text: &str) -> Result<Operator, ErrorKind> {
    let mut rest = text.trim_start();
    let mut negated = false;
    if let Some(r) = rest.strip_prefix('!') {
        negated = true;
        rest = r.trim_start();
    }
    let Some(after_at) = rest.strip_prefix('@') else {
        return Ok(Operator {
            negated,
            name: "rx".to_owned(),
            argument: rest.to_owned(),
        });
    };
    let end = after_at
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(after_at.len());
    let (name, argument) = after_at.split_at(end);
    let canonical =
        canonical_name(name).ok_or_else(|| ErrorKind::UnknownOperator(name.to_owned()))?;
    Ok(Operator {
        negated,
        name: canonical.to_owned(),
        argument: argument.trim_start().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(negated: bool, name: &str, argument: &str) -> Operator {
        Operator {
            negated,
            name: name.into(),
            argument: argument.into(),
        }
    }

    #[test]
    fn table_is_sorted() {
        assert!(OPERATORS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse("@rx ^(?:a|b)$").unwrap(),
            op(false, "rx", "^(?:a|b)$")
        );
        assert_eq!(parse("!@streq GET").unwrap(), op(true, "streq", "GET"));
        assert_eq!(parse("@detectSQLi").unwrap(), op(false, "detectsqli", ""));
        assert_eq!(parse("^foo bar$").unwrap(), op(false, "rx", "^foo bar$"));
        assert_eq!(parse("!^$").unwrap(), op(true, "rx", "^$"));
        assert_eq!(parse("").unwrap(), op(false, "rx", ""));
        assert_eq!(
            parse("! @pmf a.data").unwrap(),
            op(true, "pmfromfile", "a.data")
        );
        assert_eq!(parse("@pm  a b ").unwrap(), op(false, "pm", "a b "));
        assert_eq!(
            parse("@IPMATCHF x").unwrap(),
            op(false, "ipmatchfromfile", "x")
        );
    }

    #[test]
    fn display() {
        assert_eq!(parse("!@rx a b").unwrap().to_string(), "!@rx a b");
        assert_eq!(parse("@detectXSS").unwrap().to_string(), "@detectxss");
    }

    #[test]
    fn unknown() {
        assert_eq!(
            parse("@nope x").unwrap_err(),
            ErrorKind::UnknownOperator("nope".into())
        );
        assert!(parse("@").is_err());
    }
}
