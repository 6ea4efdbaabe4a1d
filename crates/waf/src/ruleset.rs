//! The compiled, immutable rule set: SecLang directives become [`Rule`]s grouped per phase,
//! with markers resolved, defaults merged, operators and variables compiled, transformation
//! pipelines interned in a prefix tree (so transactions cache shared prefixes once).
//!
//! A [`Ruleset`] is `Send + Sync` and cheap to clone (an `Arc`); every transaction of a
//! gateway shares one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_seclang::{
    Action, ActionKind, AuditEngine, BodyLimitAction, Directive, EngineMode, Location, MacroString,
    Phase, RuleSelector, SecRule, Setting, Severity, Variable,
};

use crate::actions::{Disruptive, RunAction};
use crate::error::{CompileError, CompileErrorKind, LoadError};
use crate::operators::Op;
use crate::transformations::Transformation;
use crate::variables::CVar;

/// Engine configuration from `Sec*` directives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// `SecRuleEngine`.
    pub engine: EngineMode,
    /// `SecRequestBodyAccess`.
    pub request_body_access: bool,
    /// `SecResponseBodyAccess`.
    pub response_body_access: bool,
    /// `SecRequestBodyLimit` (bytes).
    pub request_body_limit: u64,
    /// `SecRequestBodyNoFilesLimit` (bytes).
    pub request_body_no_files_limit: u64,
    /// `SecRequestBodyLimitAction`.
    pub request_body_limit_action: BodyLimitAction,
    /// `SecResponseBodyLimit` (bytes).
    pub response_body_limit: u64,
    /// `SecResponseBodyLimitAction`.
    pub response_body_limit_action: BodyLimitAction,
    /// `SecResponseBodyMimeType`.
    pub response_body_mime_types: Vec<String>,
    /// `SecArgumentSeparator`.
    pub argument_separator: u8,
    /// `SecArgumentsLimit`.
    pub arguments_limit: u64,
    /// `SecRequestBodyJsonDepthLimit`.
    pub json_depth_limit: u64,
    /// `SecAuditEngine`.
    pub audit_engine: AuditEngine,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            engine: EngineMode::On,
            request_body_access: false,
            response_body_access: false,
            request_body_limit: 128 * 1024 * 1024,
            request_body_no_files_limit: 1024 * 1024,
            request_body_limit_action: BodyLimitAction::Reject,
            response_body_limit: 512 * 1024,
            response_body_limit_action: BodyLimitAction::ProcessPartial,
            response_body_mime_types: vec!["text/plain".into(), "text/html".into()],
            argument_separator: b'&',
            arguments_limit: 1000,
            json_depth_limit: 10_000,
            audit_engine: AuditEngine::Off,
        }
    }
}

/// One link of a rule chain.
#[derive(Debug)]
pub(crate) struct Link {
    pub vars: Vec<CVar>,
    pub excl: Vec<CVar>,
    pub op: Op,
    pub negated: bool,
    /// No variables: a `SecAction` (always evaluated once).
    pub no_vars: bool,
    /// Pipeline nodes from the first transformation to the last.
    pub path: Vec<u32>,
    pub multi_match: bool,
    pub capture: bool,
    pub actions: Vec<RunAction>,
    pub logdata: Option<MacroString>,
    /// The operator's necessary factors (until the prefilter groups are built).
    pub factors: Option<Vec<Vec<u8>>>,
    /// The link's prefilter (group, member) per variable (see [`crate::prefilter`]); empty
    /// when the link always runs.
    pub pre: Vec<(u32, u32)>,
}

/// A compiled rule (a chain head with its links).
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: u64,
    pub phase: usize,
    pub links: Vec<Link>,
    pub msg: Option<MacroString>,
    pub msg_text: Option<String>,
    pub logdata: Option<MacroString>,
    pub severity: Option<Severity>,
    /// Shared with every [`crate::MatchedRule`] of the rule (no copy per match).
    pub tags: Arc<[String]>,
    pub ver: Option<String>,
    pub disruptive: Disruptive,
    /// The phase default's disruptive action (what `block` means).
    pub block_as: Disruptive,
    pub status: Option<u16>,
    pub skip: u32,
    pub skip_after: Option<String>,
    pub log: bool,
    pub location: Location,
}

/// An entry of a phase: a rule or a marker.
#[derive(Debug)]
pub(crate) enum Entry {
    Rule(usize),
    Marker(Arc<str>),
}

/// A node of the transformation prefix tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PipeNode {
    #[allow(dead_code)]
    pub parent: Option<u32>,
    pub t: Transformation,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub rules: Vec<Rule>,
    pub phases: [Vec<Entry>; 5],
    pub config: Config,
    pub pipes: Vec<PipeNode>,
    pub warnings: Vec<String>,
    /// The prefilter groups.
    pub groups: Vec<crate::prefilter::Group>,
    /// The prefilter groups' families (groups of one variable and phase).
    pub families: Vec<crate::prefilter::Family>,
    /// The number of 64-bit words of all groups' member bit sets.
    pub pre_words: usize,
    /// (id, index in `rules`) of every rule, by id: what `ctl:ruleRemoveById` looks up.
    pub rule_ids: Vec<(u64, u32)>,
    /// The rules (indexes in `rules`) by tag, lower-cased: what `ctl:ruleRemoveByTag` looks up.
    pub rule_tags: HashMap<String, Vec<u32>>,
    /// What phase 1's setup rules compute (see [`crate::preset`]).
    pub preset: Option<crate::preset::Preset>,
}

/// A compiled rule set, shared by transactions.
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub(crate) inner: Arc<Inner>,
}

impl Ruleset {
    /// Parses and compiles the files at `paths`, in order, as one configuration.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Self, LoadError> {
        let parser = rampart_seclang::Parser::new();
        let mut directives = Vec::new();
        for p in paths {
            directives.extend(parser.parse_file(p.as_ref())?);
        }
        Ok(Self::from_directives(&directives)?)
    }

    /// Parses and compiles SecLang text (`origin` names it in errors and anchors relative
    /// paths).
    pub fn parse_str(text: &str, origin: &Path) -> Result<Self, LoadError> {
        let directives = rampart_seclang::parse_str(text, origin)?;
        Ok(Self::from_directives(&directives)?)
    }

    /// Compiles parsed directives.
    pub fn from_directives(directives: &[Directive]) -> Result<Self, CompileError> {
        let mut ruleset = Compiler::default().run(directives)?;
        let preset = crate::Transaction::simulate_preset(&ruleset);
        if let Some(inner) = Arc::get_mut(&mut ruleset.inner) {
            inner.preset = preset;
        }
        Ok(ruleset)
    }

    /// [`Ruleset::from_directives`] without the phase-1 preset: every transaction evaluates
    /// the setup rules itself (for checking the preset against the rules it stands for).
    pub(crate) fn from_directives_without_preset(
        directives: &[Directive],
    ) -> Result<Self, CompileError> {
        Compiler::default().run(directives)
    }

    /// The engine configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The number of rules (chains count once; markers not at all).
    pub fn rule_count(&self) -> usize {
        self.inner.rules.len()
    }

    /// What the compiler had to approximate (an `@rx` the linear-time engine cannot express
    /// exactly), with file and line. Empty for CRS v4.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// Starts a transaction.
    pub fn transaction(&self) -> crate::Transaction {
        crate::Transaction::new(self.clone())
    }
}

/// A rule being assembled (updates apply to the AST before compiling).
struct Pending {
    rule: SecRule,
    defaults: Arc<Vec<Action>>,
    removed: bool,
    is_action: bool,
}

#[derive(Default)]
struct Compiler {
    config: Config,
    pending: Vec<Pending>,
    markers: Vec<(usize, Arc<str>)>,
    defaults: HashMap<u8, Arc<Vec<Action>>>,
    pipes: Vec<PipeNode>,
    pipe_index: HashMap<(Option<u32>, Transformation), u32>,
}

fn default_defaults() -> Arc<Vec<Action>> {
    Arc::new(Vec::new())
}

fn tags_of(rule: &SecRule) -> impl Iterator<Item = &str> {
    rule.actions.iter().filter_map(|a| match &a.kind {
        ActionKind::Tag(t) => Some(t.as_str()),
        _ => None,
    })
}

fn msg_of(rule: &SecRule) -> Option<&str> {
    rule.actions.iter().find_map(|a| match &a.kind {
        ActionKind::Msg(m) => Some(m.as_str()),
        _ => None,
    })
}

fn selects(sel: &RuleSelector, rule: &SecRule) -> bool {
    match sel {
        RuleSelector::Ids(ranges) => rule
            .id()
            .is_some_and(|id| ranges.iter().any(|r| r.contains(id))),
        RuleSelector::Tag(t) => {
            let re = crate::operators::rx::compile(t).ok();
            tags_of(rule).any(|tag| match &re {
                Some(re) => re.is_match(tag.as_bytes()),
                None => tag == t,
            })
        }
        RuleSelector::Msg(m) => {
            let re = crate::operators::rx::compile(m).ok();
            msg_of(rule).is_some_and(|msg| match &re {
                Some(re) => re.is_match(msg.as_bytes()),
                None => msg == m,
            })
        }
    }
}

impl Compiler {
    fn run(mut self, directives: &[Directive]) -> Result<Ruleset, CompileError> {
        crate::operators::APPROXIMATED.with(|a| a.borrow_mut().clear());
        for d in directives {
            self.directive(d);
        }
        let mut rules = Vec::new();
        let mut phases: [Vec<Entry>; 5] = Default::default();
        let mut ids = std::collections::HashSet::new();
        let mut marker_iter = self.markers.clone().into_iter().peekable();
        let pending = std::mem::take(&mut self.pending);
        for (i, p) in pending.iter().enumerate() {
            while let Some((_, name)) = marker_iter.next_if(|(pos, _)| *pos <= i) {
                for ph in &mut phases {
                    ph.push(Entry::Marker(name.clone()));
                }
            }
            if p.removed {
                continue;
            }
            let rule = self.compile_rule(p)?;
            if rule.id != 0 && !ids.insert(rule.id) {
                return Err(CompileError::new(
                    CompileErrorKind::DuplicateId(rule.id),
                    &rule.location,
                ));
            }
            let phase = rule.phase;
            rules.push(rule);
            if let Some(list) = phases.get_mut(phase.saturating_sub(1)) {
                list.push(Entry::Rule(rules.len() - 1));
            }
        }
        for (_, name) in marker_iter {
            for ph in &mut phases {
                ph.push(Entry::Marker(name.clone()));
            }
        }
        let (groups, families, pre_words) = prefilter_groups(&mut rules);
        let mut rule_ids = Vec::with_capacity(rules.len());
        let mut rule_tags: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            rule_ids.push((rule.id, i));
            for tag in rule.tags.iter() {
                let ids = rule_tags.entry(tag.to_ascii_lowercase()).or_default();
                if ids.last() != Some(&i) {
                    ids.push(i);
                }
            }
        }
        rule_ids.sort_unstable();
        Ok(Ruleset {
            inner: Arc::new(Inner {
                rules,
                phases,
                config: self.config,
                pipes: self.pipes,
                warnings: crate::operators::APPROXIMATED.with(|a| a.take()),
                groups,
                families,
                pre_words,
                rule_ids,
                rule_tags,
                preset: None,
            }),
        })
    }

    fn directive(&mut self, d: &Directive) {
        match d {
            Directive::Rule(r) => {
                let phase = r.phase().map_or(2, Phase::number);
                let defaults = self
                    .defaults
                    .get(&phase)
                    .cloned()
                    .unwrap_or_else(default_defaults);
                self.pending.push(Pending {
                    rule: r.clone(),
                    defaults,
                    removed: false,
                    is_action: false,
                });
            }
            Directive::Action(a) => {
                let phase = a.phase().map_or(2, Phase::number);
                let defaults = self
                    .defaults
                    .get(&phase)
                    .cloned()
                    .unwrap_or_else(default_defaults);
                self.pending.push(Pending {
                    rule: SecRule {
                        variables: Vec::new(),
                        operator: rampart_seclang::Operator {
                            negated: false,
                            name: "unconditionalmatch".into(),
                            argument: String::new(),
                        },
                        actions: a.actions.clone(),
                        chain: None,
                        location: a.location.clone(),
                    },
                    defaults,
                    removed: false,
                    is_action: true,
                });
            }
            Directive::DefaultAction(d) => {
                let phase = d
                    .actions
                    .iter()
                    .find_map(|a| match a.kind {
                        ActionKind::Phase(p) => Some(p.number()),
                        _ => None,
                    })
                    .unwrap_or(2);
                self.defaults.insert(phase, Arc::new(d.actions.clone()));
            }
            Directive::Marker(m) => {
                self.markers
                    .push((self.pending.len(), Arc::from(m.name.as_str())));
            }
            Directive::RuleRemove(r) => {
                for p in &mut self.pending {
                    if selects(&r.rules, &p.rule) {
                        p.removed = true;
                    }
                }
            }
            Directive::RuleUpdateTarget(u) => {
                for p in &mut self.pending {
                    if selects(&u.rules, &p.rule) {
                        update_targets(&mut p.rule.variables, &u.targets, &u.replaced);
                    }
                }
            }
            Directive::RuleUpdateAction(u) => {
                for p in &mut self.pending {
                    if p.rule.id() == Some(u.id) {
                        update_actions(&mut p.rule.actions, &u.actions);
                    }
                }
            }
            Directive::Setting(s) => self.setting(&s.setting),
            _ => {}
        }
    }

    fn setting(&mut self, s: &Setting) {
        let c = &mut self.config;
        match s {
            Setting::RuleEngine(m) => c.engine = *m,
            Setting::RequestBodyAccess(b) => c.request_body_access = *b,
            Setting::ResponseBodyAccess(b) => c.response_body_access = *b,
            Setting::RequestBodyLimit(n) => c.request_body_limit = *n,
            Setting::RequestBodyNoFilesLimit(n) => c.request_body_no_files_limit = *n,
            Setting::RequestBodyLimitAction(a) => c.request_body_limit_action = *a,
            Setting::ResponseBodyLimit(n) => c.response_body_limit = *n,
            Setting::ResponseBodyLimitAction(a) => c.response_body_limit_action = *a,
            Setting::ResponseBodyMimeType(t) => {
                c.response_body_mime_types.extend(t.iter().cloned())
            }
            Setting::ResponseBodyMimeTypesClear => c.response_body_mime_types.clear(),
            Setting::ArgumentSeparator(s) => {
                c.argument_separator = s.bytes().next().unwrap_or(b'&');
            }
            Setting::ArgumentsLimit(n) => c.arguments_limit = *n,
            Setting::RequestBodyJsonDepthLimit(n) => c.json_depth_limit = *n,
            Setting::AuditEngine(a) => c.audit_engine = *a,
            _ => {}
        }
    }

    fn pipe_node(&mut self, parent: Option<u32>, t: Transformation) -> u32 {
        if let Some(n) = self.pipe_index.get(&(parent, t)) {
            return *n;
        }
        let id = u32::try_from(self.pipes.len()).unwrap_or(u32::MAX);
        self.pipes.push(PipeNode { parent, t });
        self.pipe_index.insert((parent, t), id);
        id
    }

    fn compile_rule(&mut self, p: &Pending) -> Result<Rule, CompileError> {
        let head = &p.rule;
        let loc = &head.location;
        let defaults = p.defaults.as_slice();
        let mut rule = Rule {
            id: head.id().unwrap_or(0),
            phase: usize::from(head.phase().map_or(2, Phase::number)),
            links: Vec::new(),
            msg: None,
            msg_text: None,
            logdata: None,
            severity: None,
            tags: Arc::from(Vec::new()),
            ver: None,
            disruptive: Disruptive::Pass,
            block_as: Disruptive::Pass,
            status: None,
            skip: 0,
            skip_after: None,
            log: true,
            location: loc.clone(),
        };
        if rule.id == 0 && !p.is_action {
            return Err(CompileError::new(CompileErrorKind::MissingId, loc));
        }
        // Defaults first: disruptive action, status, log flag.
        let mut default_disruptive = Disruptive::Pass;
        let mut default_status = None;
        for a in defaults {
            if let Some(d) = disruptive_of(&a.kind) {
                default_disruptive = d;
            }
            match &a.kind {
                ActionKind::Status(s) => default_status = Some(*s),
                ActionKind::NoLog => rule.log = false,
                ActionKind::Log => rule.log = true,
                _ => {}
            }
        }
        rule.block_as = default_disruptive.clone();
        rule.disruptive = default_disruptive;
        rule.status = default_status;
        let mut explicit_disruptive = false;
        for a in &head.actions {
            if let Some(d) = disruptive_of(&a.kind) {
                rule.disruptive = d;
                explicit_disruptive = true;
            }
            match &a.kind {
                ActionKind::Msg(m) => {
                    rule.msg = Some(MacroString::parse(m));
                    rule.msg_text = Some(m.clone());
                }
                ActionKind::LogData(l) => rule.logdata = Some(MacroString::parse(l)),
                ActionKind::Severity(s) => rule.severity = Some(*s),
                ActionKind::Ver(v) => rule.ver = Some(v.clone()),
                ActionKind::Status(s) => rule.status = Some(*s),
                ActionKind::Skip(n) => rule.skip = *n,
                ActionKind::SkipAfter(m) => rule.skip_after = Some(m.clone()),
                ActionKind::Log => rule.log = true,
                ActionKind::NoLog => rule.log = false,
                _ => {}
            }
        }
        let _ = explicit_disruptive;
        rule.tags = tags_of(head).map(str::to_owned).collect::<Vec<_>>().into();
        let mut link_rule = Some(head);
        while let Some(r) = link_rule {
            let link = self.compile_link(r, defaults, p.is_action)?;
            if rule.logdata.is_none() {
                rule.logdata.clone_from(&link.logdata);
            }
            rule.links.push(link);
            link_rule = r.chain.as_deref();
        }
        Ok(rule)
    }

    fn compile_link(
        &mut self,
        r: &SecRule,
        defaults: &[Action],
        is_action: bool,
    ) -> Result<Link, CompileError> {
        let loc = &r.location;
        let mut vars = Vec::new();
        let mut excl = Vec::new();
        for v in &r.variables {
            let c = CVar::compile(v, loc)?;
            if v.negated {
                excl.push(c);
            } else {
                vars.push(c);
            }
        }
        let op = Op::compile(&r.operator, loc)?;
        let factors = op.factors();
        let mut pipeline: Vec<Transformation> = Vec::new();
        let mut multi_match = false;
        let mut capture = false;
        let mut actions = Vec::new();
        let mut logdata = None;
        let all = defaults
            .iter()
            .filter(|a| matches!(a.kind, ActionKind::Transformation(_)))
            .chain(r.actions.iter());
        for a in all {
            match &a.kind {
                ActionKind::Transformation(t) => {
                    if t == "none" {
                        pipeline.clear();
                    } else {
                        pipeline.push(Transformation::by_name(t).ok_or_else(|| {
                            CompileError::new(
                                CompileErrorKind::UnsupportedTransformation(t.clone()),
                                loc,
                            )
                        })?);
                    }
                }
                ActionKind::MultiMatch => multi_match = true,
                ActionKind::Capture => capture = true,
                ActionKind::LogData(l) => logdata = Some(MacroString::parse(l)),
                ActionKind::SetVar(s) => actions.push(RunAction::SetVar {
                    collection: s.collection.clone(),
                    name: MacroString::parse(&s.name.to_ascii_lowercase()),
                    op: s.op,
                    value: MacroString::parse(&s.value),
                }),
                ActionKind::Ctl(c) => actions.push(RunAction::Ctl(c.clone())),
                ActionKind::SetEnv(s) => {
                    let (n, v) = s.split_once('=').unwrap_or((s.as_str(), "1"));
                    actions.push(RunAction::SetEnv {
                        name: n.trim().to_owned(),
                        value: MacroString::parse(v),
                    });
                }
                ActionKind::InitCol { collection, .. } => actions.push(RunAction::InitCol {
                    collection: collection.clone(),
                }),
                _ => {}
            }
        }
        let mut path = Vec::with_capacity(pipeline.len());
        let mut parent = None;
        for t in pipeline {
            let n = self.pipe_node(parent, t);
            path.push(n);
            parent = Some(n);
        }
        Ok(Link {
            vars,
            excl,
            op,
            negated: r.operator.negated,
            no_vars: is_action || r.variables.is_empty(),
            path,
            multi_match,
            capture,
            actions,
            logdata,
            factors,
            pre: Vec::new(),
        })
    }
}

/// Puts the links whose operator has necessary factors and whose variables are request or
/// response data (stable during a phase) into prefilter groups: same phase, variables,
/// pipeline and `multiMatch`. Negated operators never take part (they match when the pattern
/// does not).
fn prefilter_groups(
    rules: &mut [Rule],
) -> (
    Vec<crate::prefilter::Group>,
    Vec<crate::prefilter::Family>,
    usize,
) {
    let mut candidates = Vec::new();
    for (ri, rule) in rules.iter_mut().enumerate() {
        let phase = rule.phase;
        for (li, link) in rule.links.iter_mut().enumerate() {
            let Some(factors) = link.factors.take() else {
                continue;
            };
            if link.negated || link.no_vars || link.vars.is_empty() {
                continue;
            }
            // A single letter or digit occurs in nearly every value: such a link would pass
            // the prefilter anyway, and its matches would only slow the scan down.
            if factors
                .iter()
                .any(|f| f.len() == 1 && f.iter().all(u8::is_ascii_alphanumeric))
            {
                continue;
            }
            let Some(streams) = link
                .vars
                .iter()
                .map(|v| {
                    v.prefilter_key().map(|k| {
                        (
                            format!("{phase}|{k}|{:?}|{}", link.path, link.multi_match),
                            format!("{phase}|{k}"),
                            v.clone(),
                        )
                    })
                })
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            candidates.push(crate::prefilter::Candidate {
                rule: ri,
                link: li,
                streams,
                path: link.path.clone(),
                multi: link.multi_match,
                factors,
            });
        }
    }
    let (groups, families, words, assigned) = crate::prefilter::build_groups(candidates);
    for (ri, li, refs) in assigned {
        if let Some(link) = rules.get_mut(ri).and_then(|r| r.links.get_mut(li)) {
            link.pre = refs;
        }
    }
    (groups, families, words)
}

fn disruptive_of(kind: &ActionKind) -> Option<Disruptive> {
    Some(match kind {
        ActionKind::Pass => Disruptive::Pass,
        ActionKind::Deny => Disruptive::Deny,
        ActionKind::Drop => Disruptive::Drop,
        ActionKind::Block => Disruptive::Block,
        ActionKind::Allow(s) => Disruptive::Allow(*s),
        ActionKind::Redirect(u) => Disruptive::Redirect(MacroString::parse(u)),
        _ => return None,
    })
}

fn update_targets(vars: &mut Vec<Variable>, targets: &[Variable], replaced: &[Variable]) {
    if !replaced.is_empty() {
        for old in replaced {
            if let Some(pos) = vars.iter().position(|v| v == old) {
                vars.remove(pos);
            }
        }
    }
    for t in targets {
        if !vars.contains(t) {
            vars.push(t.clone());
        }
    }
}

fn update_actions(actions: &mut Vec<Action>, new: &[Action]) {
    for a in new {
        let replace_kind = |k: &ActionKind| -> bool {
            match (&a.kind, k) {
                (x, y) if disruptive_of(x).is_some() => disruptive_of(y).is_some(),
                (ActionKind::Msg(_), ActionKind::Msg(_))
                | (ActionKind::LogData(_), ActionKind::LogData(_))
                | (ActionKind::Severity(_), ActionKind::Severity(_))
                | (ActionKind::Status(_), ActionKind::Status(_))
                | (ActionKind::Ver(_), ActionKind::Ver(_)) => true,
                (ActionKind::Log | ActionKind::NoLog, ActionKind::Log | ActionKind::NoLog) => true,
                _ => false,
            }
        };
        actions.retain(|old| !replace_kind(&old.kind));
        actions.push(a.clone());
    }
}

/// The default CRS load order: `crs-setup.conf(.example)`, extra files, then `rules/*.conf`
/// sorted by name.
pub fn crs_files(
    setup: &Path,
    extra: &[PathBuf],
    rules_dir: &Path,
) -> std::io::Result<Vec<PathBuf>> {
    let mut files = vec![setup.to_path_buf()];
    files.extend(extra.iter().cloned());
    let mut rules: Vec<PathBuf> = std::fs::read_dir(rules_dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    rules.sort();
    files.extend(rules);
    Ok(files)
}
