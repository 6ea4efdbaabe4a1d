//! The phase-1 preset: what the setup rules at the start of phase 1 compute, once per rule
//! set instead of once per transaction.
//!
//! A rule set opens phase 1 with rules that read only `TX` (CRS's `crs-setup.conf` and
//! `REQUEST-901`: defaults set when a variable is missing, scores zeroed, paranoia-level and
//! sampling checks), so their outcome is the same for every transaction. At load they are run
//! once against an empty transaction ([`crate::Transaction`]'s simulation), and each
//! transaction then starts phase 1 from the result: the `TX` variables they set, and per rule
//! whether it matched (with its matched-rule record, as the audit trail shows it). The skips
//! they decide still happen, in order, from the recorded outcomes, and their `ctl` actions
//! (engine mode, rule removals: constant arguments) run again in their place.
//!
//! Rules met on the way that neither read nor write `TX` (*neutral*: `modsecurity.conf`'s
//! body-processor choice, CRS 901340) are evaluated per transaction as before; as they cannot
//! see `TX`, restoring the setup's `TX` before them changes nothing they do. The preset ends
//! at the first rule that is neither (its first link reads request data, and the rule could
//! match). The simulation follows the engine exactly, with the same code; a rule set whose
//! setup would interrupt or allow every transaction gets no preset.

use rampart_seclang::{Ctl, MacroPart, MacroString};

use crate::actions::{Disruptive, RunAction};
use crate::ruleset::{Link, Rule};
use crate::transaction::MatchedRule;
use crate::variables::Coll;

/// The outcome of the phase-1 setup rules (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Preset {
    /// Per phase-1 entry before the preset's end: how a transaction treats it.
    pub replay: Vec<Replay>,
    /// The `TX` variables the setup rules leave set.
    pub tx: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What a transaction does with one phase-1 entry covered by the preset.
#[derive(Debug)]
pub(crate) enum Replay {
    /// Evaluate it (a neutral rule).
    Evaluate,
    /// It does not match (or is skipped, or is a marker: the loop never asks for those).
    NoMatch,
    /// It matches: its record, and the matched variable it leaves.
    Match(Box<Recorded>),
}

/// A setup rule that matched, as the simulation recorded it.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub record: MatchedRule,
    pub matched_var: Vec<u8>,
    pub matched_var_name: Vec<u8>,
}

/// Macro collections a setup rule may read: `TX`, the rule's own metadata, and the variable
/// its own link matched.
const CONSTANT_MACROS: &[&str] = &["TX", "RULE", "MATCHED_VAR", "MATCHED_VAR_NAME"];

/// Collections through which a rule sees `TX` or another rule's match.
fn reads_setup_state(coll: Coll) -> bool {
    matches!(
        coll,
        Coll::Tx
            | Coll::MatchedVar
            | Coll::MatchedVarName
            | Coll::MatchedVars
            | Coll::MatchedVarsNames
    )
}

fn macro_reads_only(m: &MacroString, allowed: &[&str]) -> bool {
    m.parts.iter().all(|p| match p {
        MacroPart::Text(_) => true,
        MacroPart::Var { collection, .. } => allowed.iter().any(|a| collection == a),
    })
}

fn macro_reads_none(m: &MacroString, denied: &[&str]) -> bool {
    m.parts.iter().all(|p| match p {
        MacroPart::Text(_) => true,
        MacroPart::Var { collection, .. } => !denied.iter().any(|d| collection == d),
    })
}

/// Whether `link` reads only `TX` and constants: its outcome is the same in every transaction
/// that has the same `TX`.
pub(crate) fn link_is_constant(link: &Link) -> bool {
    link.vars.iter().all(|v| v.coll == Coll::Tx)
        && link
            .op
            .macros()
            .is_none_or(|m| macro_reads_only(m, &["TX"]))
}

/// Whether the whole rule reads only `TX` and constants and changes only `TX` and the engine
/// state (`ctl`, replayed per transaction; no `setenv`, `initcol`): matched or not, it does the
/// same in every transaction.
pub(crate) fn rule_is_constant(rule: &Rule) -> bool {
    let meta = |m: &Option<MacroString>| {
        m.as_ref()
            .is_none_or(|m| macro_reads_only(m, CONSTANT_MACROS))
    };
    meta(&rule.msg)
        && meta(&rule.logdata)
        && rule.links.iter().all(|link| {
            link_is_constant(link)
                && meta(&link.logdata)
                && link.actions.iter().all(|a| match a {
                    RunAction::SetVar {
                        collection,
                        name,
                        value,
                        ..
                    } => {
                        collection == "TX"
                            && macro_reads_only(name, CONSTANT_MACROS)
                            && macro_reads_only(value, CONSTANT_MACROS)
                    }
                    RunAction::Ctl(_) => true,
                    RunAction::SetEnv { .. } | RunAction::InitCol { .. } => false,
                })
        })
}

/// Whether the rule neither reads `TX` (nor another rule's match) nor writes it, never skips
/// and only passes: evaluating it after the setup's `TX` is restored is the same as evaluating
/// it in its place.
pub(crate) fn rule_is_neutral(rule: &Rule) -> bool {
    let denied = &["TX", "MATCHED_VARS", "MATCHED_VARS_NAMES"];
    let meta = |m: &Option<MacroString>| m.as_ref().is_none_or(|m| macro_reads_none(m, denied));
    let op_denied = &[
        "TX",
        "MATCHED_VAR",
        "MATCHED_VAR_NAME",
        "MATCHED_VARS",
        "MATCHED_VARS_NAMES",
    ];
    rule.disruptive == Disruptive::Pass
        && rule.skip == 0
        && rule.skip_after.is_none()
        && meta(&rule.msg)
        && meta(&rule.logdata)
        && rule.links.iter().all(|link| {
            // `capture` writes TX:0-9.
            !link.capture
                && link
                    .vars
                    .iter()
                    .chain(&link.excl)
                    .all(|v| !reads_setup_state(v.coll))
                && link
                    .op
                    .macros()
                    .is_none_or(|m| macro_reads_none(m, op_denied))
                && meta(&link.logdata)
                && link.actions.iter().all(|a| match a {
                    RunAction::Ctl(c) => matches!(
                        c,
                        Ctl::RequestBodyProcessor(_)
                            | Ctl::RequestBodyAccess(_)
                            | Ctl::ForceRequestBodyVariable(_)
                            | Ctl::RequestBodyLimit(_)
                            | Ctl::ResponseBodyAccess(_)
                            | Ctl::AuditEngine(_)
                    ),
                    RunAction::SetVar { .. }
                    | RunAction::SetEnv { .. }
                    | RunAction::InitCol { .. } => false,
                })
        })
}
