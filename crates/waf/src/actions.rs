//! Actions: the compiled form of what a rule does when it matches.
//!
//! Meta-data (`id`, `msg`, `logdata`, `severity`, `tag`, `ver`), flow (`chain`, `skip`,
//! `skipAfter`) and disruptive actions (`deny`, `block`, `drop`, `pass`, `allow`, `redirect`)
//! are folded into the rule itself by the compiler; what remains runs in order after a chain
//! matched: [`RunAction`] (`setvar`, `ctl`, `setenv`, `initcol`, `expirevar`, ...).

use rampart_seclang::{AllowScope, Ctl, MacroString, SetVarOp};

/// A disruptive action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disruptive {
    Pass,
    Deny,
    Drop,
    Block,
    Allow(AllowScope),
    Redirect(MacroString),
}

/// A non-disruptive action executed when the rule (chain) matches.
#[derive(Debug, Clone)]
pub(crate) enum RunAction {
    /// `setvar:COLLECTION.name[=+-]value` / `setvar:!COLLECTION.name`.
    SetVar {
        collection: String,
        name: MacroString,
        op: SetVarOp,
        value: MacroString,
    },
    /// `ctl:...`.
    Ctl(Ctl),
    /// `setenv:name=value`.
    SetEnv { name: String, value: MacroString },
    /// `initcol:collection=key` (collections live for the transaction only).
    InitCol { collection: String },
}

/// The registry of actions this engine understands (all of the parser's list): each is either
/// folded into the rule at compile time or compiled into a [`RunAction`]. Actions that only
/// matter to logging or to features outside this engine (`exec`, `proxy`, `pause`,
/// `sanitise*`, `deprecatevar`, `expirevar`, `setuid`, `setsid`, `setrsc`, `append`,
/// `prepend`, `xmlns`) are accepted and have no effect.
pub const REGISTRY: &[&str] = rampart_seclang::action::ACTIONS;
