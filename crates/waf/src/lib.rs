//! Rampart's WAF engine: runs ModSecurity SecLang rule sets (the OWASP Core Rule Set,
//! unchanged) over HTTP transactions, phases 1-5.
//!
//! - [`Ruleset`] compiles the parsed directives (`rampart-seclang`) once: operators, variables,
//!   transformation pipelines, markers and defaults. It is immutable, `Send + Sync`, and shared
//!   by `Arc` between transactions.
//! - [`Transaction`] holds one request/response: the gateway feeds it and asks, after each
//!   phase, for an [`Interruption`].
//! - Every `@rx` runs on the `regex` crate (finite automata, linear time in the input): no
//!   request can make a rule backtrack (see `docs/waf.md`).
//! - [`crs_tests`] runs the CRS go-ftw regression suite in-process.
//!
//! ```no_run
//! use rampart_waf::Ruleset;
//! let rules = Ruleset::parse_str(
//!     r#"SecRuleEngine On
//! SecRule ARGS "@rx <script" "id:1,phase:2,deny,status:403,msg:'xss'""#,
//!     "inline.conf".as_ref(),
//! ).unwrap();
//! let mut tx = rules.transaction();
//! tx.process_connection("192.0.2.1", 40000, "192.0.2.2", 443);
//! tx.process_uri("/?q=<script>", "GET", "HTTP/1.1");
//! tx.add_request_header("Host", "example.com");
//! assert!(tx.process_request_headers().is_none());
//! assert_eq!(tx.process_request_body().map(|i| i.status), Some(403));
//! ```
//!
//! Modules: [`operators`], [`transformations`], `variables`, `actions`, `body` (request body
//! processors), `cache` (per-transaction transformation cache), [`ruleset`], `transaction`,
//! [`crs_tests`], [`error`].

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod actions;
mod body;
mod cache;
pub mod crs_tests;
pub mod error;
pub mod operators;
mod prefilter;
mod preset;
pub mod ruleset;
mod transaction;
pub mod transformations;
mod variables;

pub use error::{CompileError, CompileErrorKind, LoadError};
pub use rampart_seclang::{EngineMode, Severity};
pub use ruleset::{Config, Ruleset};
pub use transaction::{Interruption, InterruptionAction, MatchedRule, Transaction};
