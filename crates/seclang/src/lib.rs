//! ModSecurity SecLang: configuration text to a typed directive AST.
//!
//! Rampart's WAF loads the OWASP Core Rule Set unchanged; this crate reads it. It knows SecLang's
//! syntax (quoting, escaping, line continuations, comments, `Include` with globs), checks every
//! directive, variable, operator, action, transformation and `ctl` option against what
//! ModSecurity accepts, and hands the engine a precise AST: no raw strings left to re-parse,
//! values kept exactly as written, every directive with its file and line. It knows nothing of
//! evaluation.
//!
//! ```
//! use rampart_seclang::{parse_str, ActionKind, ActionList, Directive, Phase};
//!
//! let text = r#"
//! SecRule REQUEST_HEADERS:User-Agent|!REQUEST_HEADERS:Referer "@rx ^curl/" \
//!     "id:1001,phase:1,t:none,t:lowercase,deny,msg:'no curl, please'"
//! "#;
//! let directives = parse_str(text, "inline.conf".as_ref()).unwrap();
//! let Directive::Rule(rule) = &directives[0] else { panic!() };
//! assert_eq!(rule.id(), Some(1001));
//! assert_eq!(rule.phase(), Some(Phase::RequestHeaders));
//! assert_eq!(rule.operator.name, "rx");
//! assert_eq!(rule.variables[1].to_string(), "!REQUEST_HEADERS:Referer");
//! assert_eq!(rule.actions.msg(), Some("no curl, please"));
//! assert_eq!(rule.location.line, 2);
//! assert!(rule.actions.iter().any(|a| a.kind == ActionKind::Deny));
//! ```
//!
//! Modules: `lexer` (private) splits text into directives; [`variable`], [`operator`] and
//! [`action`] parse a rule's three parts; [`directive`] holds the AST and interprets each
//! directive; [`parser`] follows includes and folds chains; [`macros`] splits `%{...}`
//! references out of values; [`error`] is [`ParseError`].
//!
//! Values are kept as written: inside a double-quoted argument `\"` becomes `"` (every other
//! backslash stays, so regular expressions keep their meaning), inside a single-quoted action
//! value `\'` becomes `'`. Operator arguments are not otherwise unescaped: `\'` in an `@rx`
//! pattern (CRS 932240) reaches the engine as written, as it reaches PCRE in ModSecurity.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod action;
pub mod directive;
pub mod error;
mod lexer;
pub mod macros;
pub mod operator;
pub mod parser;
pub mod variable;

use std::path::Path;

pub use action::{
    Action, ActionKind, ActionList, AllowScope, Ctl, Phase, SetVar, SetVarOp, Severity,
};
pub use directive::{
    AuditEngine, BodyLimitAction, Directive, EngineMode, IdRange, Location, RuleRemove,
    RuleSelector, RuleUpdateAction, RuleUpdateTarget, SecAction, SecDefaultAction, SecMarker,
    SecRule, Setting, SettingDirective,
};
pub use error::{ErrorKind, ParseError};
pub use macros::{MacroPart, MacroString};
pub use operator::Operator;
pub use parser::Parser;
pub use variable::{Selector, Variable};

/// Parses SecLang `text` as the content of the file `origin`: `origin` names the file in
/// locations and errors, and relative `Include`s resolve against its directory (it need not
/// exist).
pub fn parse_str(text: &str, origin: &Path) -> Result<Vec<Directive>, ParseError> {
    Parser::new().parse_str(text, origin)
}

/// Reads and parses the SecLang file at `path`, following its `Include`s.
pub fn parse_file(path: &Path) -> Result<Vec<Directive>, ParseError> {
    Parser::new().parse_file(path)
}
