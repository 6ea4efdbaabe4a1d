//! The multi-pattern prefilter: for each operator, a set of literals at least one of which
//! every matching input contains (its *necessary factors*). Each variable of a rule link, seen
//! through the link's transformation pipeline in its phase, is a *value stream*; the links that
//! read the same stream share one Aho-Corasick automaton over all their factors, so one scan of
//! each transformed value per phase tells which of those links can match at all. A link whose
//! factors occur in none of its streams is skipped without collecting variables, transforming
//! or running its regex.
//!
//! Exactness: a link is skipped only when none of its factors occurs in any value it could see
//! (a stream holds every value of its variable, before exclusions, which only remove values),
//! and the factors of a regex are derived from its syntax tree so that every match contains
//! one of them. Factors are ASCII-lower-cased and the automaton is ASCII case-insensitive:
//! folding can only make a factor occur more often, never less.
//!
//! The analysis ([`necessary_factors`]) works on the `regex-syntax` HIR of the very pattern the
//! engine compiles, bottom up, keeping for each node
//!
//! - `exact`: the set of (folded) strings the node can match, when it is small; and
//! - `need`: a set of strings one of which every match of the node contains.
//!
//! A concatenation crosses the exact sets of adjacent children into longer strings and keeps
//! the most selective candidate (rare punctuation counts for more than letters, see
//! [`rarity`]); a repetition `x{n,m}` joins its first and last n copies to its neighbours; an alternation unions its children's sets (any child without
//! one leaves the alternation without one); a repetition with a minimum of one passes its
//! child's set on. Anything else (`.`, large classes, `x*`) yields no requirement.

use std::collections::BTreeSet;

use std::collections::HashMap;

use aho_corasick::automaton::Automaton;
use aho_corasick::{Anchored, MatchKind, dfa, nfa};
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::variables::CVar;

/// Exact sets larger than this are turned into requirements.
const EXACT_MAX: usize = 64;
/// Classes with more distinct folded bytes than this are not expanded.
const CLASS_MAX: usize = 10;
/// Requirement sets larger than this are dropped (the rule then always runs).
const NEED_MAX: usize = 4096;

/// Groups with more factors than this use Aho-Corasick's default automaton, not a DFA.
const DFA_MAX_PATTERNS: usize = 300;

type Set = BTreeSet<Vec<u8>>;

#[derive(Debug, Default)]
struct Info {
    exact: Option<Set>,
    need: Option<Set>,
    /// For a repetition that is not exact: a set one of which every match starts with and one
    /// of which it ends with, so that a concatenation can join it to its neighbours (`x{2,}`
    /// starts and ends with `xx`).
    affix: Option<Set>,
}

impl Info {
    fn exact(set: Set) -> Self {
        Self {
            exact: Some(set),
            ..Self::default()
        }
    }

    /// The requirement: `need`, or the exact set when it has no empty string.
    fn requirement(&self) -> Option<Set> {
        if let Some(n) = &self.need {
            return Some(n.clone());
        }
        let e = self.exact.as_ref()?;
        (!e.is_empty() && !e.iter().any(Vec::is_empty)).then(|| e.clone())
    }
}

fn fold(b: &[u8]) -> Vec<u8> {
    b.to_ascii_lowercase()
}

fn empty_set() -> Set {
    std::iter::once(Vec::new()).collect()
}

/// How rarely byte `b` occurs in ordinary request data (letters, digits and the punctuation of
/// URLs, headers and text are common; shell, code and markup punctuation is not), in quarters.
fn rarity(b: u8) -> usize {
    match b {
        b'a'..=b'z' | b'0'..=b'9' => 4,
        b'/' | b'.' | b'-' | b',' | b';' | b'=' | b' ' | b':' | b'_' | b'(' | b')' | b'&'
        | b'+' | b'%' | b'?' | b'*' => 6,
        _ => 16,
    }
}

/// How selective a requirement is (greater is better): its least rare literal (each literal
/// weighs the sum of its bytes' [`rarity`]), then fewer literals.
fn score(s: &Set) -> (usize, std::cmp::Reverse<usize>) {
    let weakest = s
        .iter()
        .map(|l| l.iter().map(|b| rarity(*b)).sum::<usize>())
        .min()
        .unwrap_or(0);
    (weakest, std::cmp::Reverse(s.len()))
}

/// `set` repeated `n` times (every combination), when small enough.
fn power(set: &Set, n: u32) -> Option<Set> {
    let mut out = empty_set();
    for _ in 0..n {
        out = cross(&out, set)?;
    }
    Some(out)
}

fn better(a: Option<Set>, b: Option<Set>) -> Option<Set> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if score(&b) > score(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn cross(a: &Set, b: &Set) -> Option<Set> {
    if a.len().saturating_mul(b.len()) > EXACT_MAX {
        return None;
    }
    let mut out = Set::new();
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.insert(s);
        }
    }
    Some(out)
}

fn class_bytes(c: &Class) -> Option<Set> {
    let mut bytes = BTreeSet::new();
    match c {
        Class::Bytes(b) => {
            for r in b.iter() {
                for x in r.start()..=r.end() {
                    bytes.insert(x.to_ascii_lowercase());
                    if bytes.len() > CLASS_MAX {
                        return None;
                    }
                }
            }
        }
        Class::Unicode(u) => {
            for r in u.iter() {
                for ch in r.start()..=r.end() {
                    let b = u8::try_from(u32::from(ch)).ok().filter(u8::is_ascii)?;
                    bytes.insert(b.to_ascii_lowercase());
                    if bytes.len() > CLASS_MAX {
                        return None;
                    }
                }
            }
        }
    }
    Some(bytes.into_iter().map(|b| vec![b]).collect())
}

fn analyze(h: &Hir) -> Info {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::exact(empty_set()),
        HirKind::Literal(l) => Info::exact(std::iter::once(fold(&l.0)).collect()),
        HirKind::Class(c) => match class_bytes(c) {
            Some(s) if !s.is_empty() => Info::exact(s),
            _ => Info::default(),
        },
        HirKind::Capture(c) => analyze(&c.sub),
        HirKind::Repetition(r) => {
            let sub = analyze(&r.sub);
            if r.max == Some(1) {
                // `x?` or `x{1}`.
                if r.min == 1 {
                    return sub;
                }
                if let Some(mut e) = sub.exact {
                    e.insert(Vec::new());
                    return Info::exact(e);
                }
                return Info::default();
            }
            if r.min >= 1 {
                // `x{n,m}`: its first n and its last n copies are adjacent to its neighbours.
                let copies = sub.exact.as_ref().and_then(|e| power(e, r.min));
                if r.max == Some(r.min)
                    && let Some(e) = copies
                {
                    return Info::exact(e);
                }
                let need = better(
                    sub.requirement(),
                    copies.clone().filter(|c| !c.contains(&Vec::new())),
                );
                return Info {
                    exact: None,
                    need,
                    affix: copies,
                };
            }
            Info::default()
        }
        HirKind::Concat(children) => {
            let mut run = empty_set();
            let mut all_exact = true;
            let mut best: Option<Set> = None;
            let flush = |run: &Set, best: Option<Set>| {
                if run.iter().any(Vec::is_empty) {
                    best
                } else {
                    better(best, Some(run.clone()))
                }
            };
            for child in children {
                let info = analyze(child);
                match info.exact {
                    Some(e) => match cross(&run, &e) {
                        Some(next) => run = next,
                        None => {
                            all_exact = false;
                            best = flush(&run, best);
                            run = e;
                        }
                    },
                    None => {
                        all_exact = false;
                        // A repetition's mandatory copies join the run before it and start
                        // the next one.
                        if let Some(a) = &info.affix
                            && let Some(joined) = cross(&run, a)
                        {
                            best = flush(&joined, best);
                        } else {
                            best = flush(&run, best);
                        }
                        run = info.affix.unwrap_or_else(empty_set);
                        best = better(best, info.need);
                    }
                }
            }
            if all_exact {
                return Info::exact(run);
            }
            best = flush(&run, best);
            Info {
                need: best,
                ..Info::default()
            }
        }
        HirKind::Alternation(children) => {
            let infos: Vec<Info> = children.iter().map(analyze).collect();
            if infos.iter().all(|i| i.exact.is_some()) {
                let mut union = Set::new();
                for i in &infos {
                    union.extend(i.exact.iter().flatten().cloned());
                }
                if union.len() <= EXACT_MAX {
                    return Info::exact(union);
                }
            }
            Info {
                need: union_of_requirements(&infos),
                ..Info::default()
            }
        }
    }
}

/// Every alternative's requirement together (`None` if one alternative has none).
fn union_of_requirements(infos: &[Info]) -> Option<Set> {
    let mut need = Set::new();
    for i in infos {
        need.extend(i.requirement()?);
        if need.len() > NEED_MAX {
            return None;
        }
    }
    Some(need)
}

/// A set of literals (ASCII lower-case, none empty) one of which occurs, ASCII
/// case-insensitively, in every input that `hir` matches; `None` when no such set was found.
pub(crate) fn necessary_factors(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let set = analyze(hir).requirement()?;
    if set.is_empty() || set.len() > NEED_MAX || set.iter().any(Vec::is_empty) {
        return None;
    }
    Some(minimize(set))
}

/// Drops literals that contain another literal of the set (the shorter one occurs whenever the
/// longer one does).
fn minimize(set: Set) -> Vec<Vec<u8>> {
    let mut by_len: Vec<Vec<u8>> = set.into_iter().collect();
    by_len.sort_by_key(Vec::len);
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(by_len.len());
    for s in by_len {
        if !out.iter().any(|o| memchr::memmem::find(&s, o).is_some()) {
            out.push(s);
        }
    }
    out
}

/// The factors of an `@rx` pattern as written in a rule (translated as the engine does, see
/// [`crate::operators::rx`]).
#[cfg(test)]
pub(crate) fn rx_factors(pattern: &str) -> Option<Vec<Vec<u8>>> {
    translated_rx_factors(&crate::operators::rx::translate(pattern))
}

/// The factors of a pattern already translated, parsed with the options the engine compiles
/// it with (bytes, Unicode off, `(?s)`, `(?m)`).
pub(crate) fn translated_rx_factors(translated: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .multi_line(true)
        .build()
        .parse(translated)
        .ok()?;
    necessary_factors(&hir)
}

/// A value stream (one variable through one pipeline in one phase) and the links that read it,
/// with one automaton over all their factors.
#[derive(Debug)]
pub(crate) struct Group {
    /// The variables (exclusions left out: they only remove values).
    pub vars: Vec<CVar>,
    /// The transformation pipeline (prefix-tree nodes).
    pub path: Vec<u32>,
    /// `multiMatch`: every stage of the pipeline is inspected.
    pub multi: bool,
    /// ASCII case-insensitive, all matches reported; `None` for a group answered by its
    /// family's automaton (or, should its own fail to build, a group that passes everything).
    pub ac: Option<Scanner>,
    /// For each pattern of `ac`, the member (link) it belongs to.
    pub pat_member: Vec<u32>,
    /// The patterns of `ac` (folded factors).
    pub patterns: Vec<Vec<u8>>,
    /// The number of members (links).
    pub members: u32,
    /// The length of the shortest factor: shorter values need no scan.
    pub min_len: usize,
    /// The group's first word in the per-transaction bit set.
    pub off: usize,
    /// The number of words (64 members each).
    pub words: usize,
    /// The family this group is answered with (see [`Family`]), if any.
    pub family: Option<u32>,
}

/// The groups of one variable in one phase (up to 64 of them, one per pipeline): they read
/// the same values, and a clean value is mostly left as it is by most pipelines, so the
/// family collects the values once, transforms them through each group's pipeline and scans
/// each distinct transformed value once, with one automaton over all the groups' factors,
/// crediting each occurrence to the groups that produced that value.
#[derive(Debug)]
pub(crate) struct Family {
    /// The variable (as in each of its groups).
    pub var: CVar,
    /// The groups, by index in the rule set; a group's place here is its bit in the masks.
    pub groups: Vec<u32>,
    /// All the groups' factors (each distinct one once).
    pub ac: Scanner,
    /// Per pattern of `ac`: its range in `targets`.
    pub pat_targets: Vec<(u32, u32)>,
    /// (place of the group in `groups`, member) pairs for which a pattern is a factor.
    pub targets: Vec<(u32, u32)>,
    /// The pipeline nodes of all the groups' paths, parents first: (position of the parent
    /// in this list, `None` for the first step; pipeline node).
    pub nodes: Vec<(Option<u32>, u32)>,
    /// Each stage some group inspects, once (a position in `nodes`, `None`: the value itself;
    /// a group inspects its whole pipeline, or every stage for `multiMatch`), with the groups
    /// (bits by place) that inspect it and the shortest factor among them (shorter values need
    /// no scan).
    pub stages: Vec<(Option<u32>, u64, usize)>,
}

/// A group's automaton (ASCII case-insensitive, standard match semantics), searched by
/// [`Scanner::scan`]'s own loop: a group scans a few short values per phase, where the
/// `AhoCorasick` searcher's per-call setup (input configuration, iterator state, prefilter
/// checks) costs more than the bytes themselves.
#[derive(Debug)]
pub(crate) enum Scanner {
    /// A DFA (one table lookup per byte), for groups small enough to build one quickly.
    Dfa(dfa::DFA),
    /// A contiguous NFA, for the larger groups.
    Nfa(nfa::contiguous::NFA),
}

impl Scanner {
    /// The automaton for `patterns` (`None` when it cannot be built).
    fn build(patterns: &[Vec<u8>]) -> Option<Self> {
        if patterns.len() <= DFA_MAX_PATTERNS
            && let Ok(d) = dfa::DFA::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .prefilter(false)
                .build(patterns)
        {
            return Some(Self::Dfa(d));
        }
        nfa::contiguous::NFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(patterns)
            .ok()
            .map(Self::Nfa)
    }

    /// Calls `hit` with the pattern of every occurrence in `hay` (overlapping ones included)
    /// until it returns true (enough seen). Should the automaton refuse an unanchored search,
    /// every pattern is reported (the prefilter then skips nothing).
    pub(crate) fn scan(&self, hay: &[u8], hit: impl FnMut(usize) -> bool) {
        match self {
            Self::Dfa(a) => scan_with(a, hay, hit),
            Self::Nfa(a) => scan_with(a, hay, hit),
        }
    }
}

fn scan_with<A: Automaton>(a: &A, hay: &[u8], mut hit: impl FnMut(usize) -> bool) {
    let Ok(mut sid) = a.start_state(Anchored::No) else {
        for p in 0..a.patterns_len() {
            if hit(p) {
                return;
            }
        }
        return;
    };
    for &b in hay {
        sid = a.next_state(Anchored::No, sid, b);
        if a.is_special(sid) {
            if a.is_dead(sid) {
                return;
            }
            if a.is_match(sid) {
                for i in 0..a.match_len(sid) {
                    if hit(a.match_pattern(sid, i).as_usize()) {
                        return;
                    }
                }
            }
        }
    }
}

/// A link that may take part: where it is, the value streams it inspects (one per variable:
/// key and variable), its pipeline and its factors.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub rule: usize,
    pub link: usize,
    /// (stream key, family key: phase and variable, variable).
    pub streams: Vec<(String, String, CVar)>,
    pub path: Vec<u32>,
    pub multi: bool,
    pub factors: Vec<Vec<u8>>,
}

/// A group before its automaton is built.
struct Pending {
    family: String,
    var: CVar,
    path: Vec<u32>,
    multi: bool,
    patterns: Vec<Vec<u8>>,
    pat_member: Vec<u32>,
    members: u32,
}

/// Where a link's prefilter answers are: rule index, link index, and its (group, member)
/// pairs (the link can match only if one of them is set).
pub(crate) type Assignment = (usize, usize, Vec<(u32, u32)>);

/// Groups the links by value stream (phase, variable, pipeline, `multiMatch`: the key) and
/// builds one automaton per stream. Returns the groups, the total number of bit-set words, and
/// for each candidate (rule, link) its (group, member) pairs: the link can match only if one
/// of them is set.
pub(crate) fn build_groups(
    candidates: Vec<Candidate>,
) -> (Vec<Group>, Vec<Family>, usize, Vec<Assignment>) {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut links = Vec::new();
    for c in candidates {
        let mut refs = Vec::with_capacity(c.streams.len());
        for (key, family, var) in c.streams {
            let g = *index.entry(key).or_insert_with(|| {
                pending.push(Pending {
                    family,
                    var,
                    path: c.path.clone(),
                    multi: c.multi,
                    patterns: Vec::new(),
                    pat_member: Vec::new(),
                    members: 0,
                });
                pending.len() - 1
            });
            if refs.iter().any(|(rg, _)| *rg == g) {
                continue;
            }
            let Some(p) = pending.get_mut(g) else {
                continue;
            };
            let member = p.members;
            p.members += 1;
            for f in &c.factors {
                p.patterns.push(f.clone());
                p.pat_member.push(member);
            }
            refs.push((g, member));
        }
        links.push((c.rule, c.link, refs));
    }
    let mut groups = Vec::with_capacity(pending.len());
    // Old group index -> new one.
    let mut renumber: Vec<Option<u32>> = Vec::with_capacity(pending.len());
    let mut off = 0;
    // Family key -> the families of that key (new ones once one has 64 groups).
    let mut fam_index: HashMap<String, Vec<usize>> = HashMap::new();
    let mut fam_pending: Vec<(CVar, Vec<u32>)> = Vec::new();
    for p in pending {
        let Ok(g) = u32::try_from(groups.len()) else {
            renumber.push(None);
            continue;
        };
        renumber.push(Some(g));
        let fams = fam_index.entry(p.family).or_default();
        match fams
            .last()
            .copied()
            .filter(|f| fam_pending.get(*f).is_some_and(|(_, gs)| gs.len() < 64))
        {
            Some(f) => {
                if let Some((_, gs)) = fam_pending.get_mut(f) {
                    gs.push(g);
                }
            }
            None => {
                fams.push(fam_pending.len());
                fam_pending.push((p.var.clone(), vec![g]));
            }
        }
        let words = (p.members as usize).div_ceil(64);
        let min_len = p.patterns.iter().map(Vec::len).min().unwrap_or(0);
        groups.push(Group {
            min_len,
            vars: vec![p.var],
            path: p.path,
            multi: p.multi,
            ac: None,
            pat_member: p.pat_member,
            patterns: p.patterns,
            members: p.members,
            off,
            words,
            family: None,
        });
        off += words;
    }
    let families = build_families(fam_pending, &mut groups);
    // A group outside a family scans with its own automaton (one that fails to build leaves
    // the group passing everything: its links run unfiltered).
    for g in &mut groups {
        if g.family.is_none() {
            g.ac = Scanner::build(&g.patterns);
        }
    }
    let assigned = links
        .into_iter()
        .filter_map(|(r, l, refs)| {
            let refs = refs
                .into_iter()
                .map(|(g, m)| renumber.get(g).copied().flatten().map(|g| (g, m)))
                .collect::<Option<Vec<_>>>()?;
            Some((r, l, refs))
        })
        .collect();
    (groups, families, off, assigned)
}

/// The families of more than one group (a single group is scanned on its own), with their
/// automata; sets each member group's `family` (its own automaton is then never built).
fn build_families(pending: Vec<(CVar, Vec<u32>)>, groups: &mut [Group]) -> Vec<Family> {
    let mut families = Vec::new();
    for (var, members) in pending {
        if members.len() < 2 {
            continue;
        }
        // Each distinct factor once, with every (group place, member) it stands for.
        let mut by_factor: std::collections::BTreeMap<Vec<u8>, Vec<(u32, u32)>> =
            std::collections::BTreeMap::new();
        for (place, g) in (0u32..).zip(&members) {
            let Some(group) = groups.get(*g as usize) else {
                continue;
            };
            for (pat, member) in group.patterns.iter().zip(&group.pat_member) {
                let t = by_factor.entry(fold(pat)).or_default();
                if !t.contains(&(place, *member)) {
                    t.push((place, *member));
                }
            }
        }
        let mut patterns = Vec::with_capacity(by_factor.len());
        let mut pat_targets = Vec::with_capacity(by_factor.len());
        let mut targets = Vec::new();
        for (pat, t) in by_factor {
            let (Ok(start), Ok(end)) = (
                u32::try_from(targets.len()),
                u32::try_from(targets.len() + t.len()),
            ) else {
                break;
            };
            patterns.push(pat);
            pat_targets.push((start, end));
            targets.extend(t);
        }
        let (Some(ac), Ok(f)) = (Scanner::build(&patterns), u32::try_from(families.len())) else {
            continue;
        };
        // The union of the groups' paths: a path lists a node after its parent, so taking
        // them in path order puts parents first.
        let mut nodes: Vec<(Option<u32>, u32)> = Vec::new();
        let mut pos: HashMap<u32, u32> = HashMap::new();
        let mut stages: Vec<(Option<u32>, u64, usize)> = Vec::new();
        for (place, g) in members.iter().enumerate() {
            let Some(group) = groups.get(*g as usize) else {
                continue;
            };
            let bit = 1u64
                .checked_shl(u32::try_from(place).unwrap_or(64))
                .unwrap_or(0);
            let mut parent = None;
            let mut at = vec![None];
            for node in &group.path {
                let p = *pos.entry(*node).or_insert_with(|| {
                    nodes.push((parent, *node));
                    u32::try_from(nodes.len() - 1).unwrap_or(u32::MAX)
                });
                at.push(Some(p));
                parent = Some(p);
            }
            if !group.multi {
                at.drain(..at.len() - 1);
            }
            for stage in at {
                match stages.iter_mut().find(|(s, _, _)| *s == stage) {
                    Some((_, mask, min_len)) => {
                        *mask |= bit;
                        *min_len = (*min_len).min(group.min_len);
                    }
                    None => stages.push((stage, bit, group.min_len)),
                }
            }
        }
        for g in &members {
            if let Some(group) = groups.get_mut(*g as usize) {
                group.family = Some(f);
            }
        }
        families.push(Family {
            var,
            groups: members,
            ac,
            pat_targets,
            targets,
            nodes,
            stages,
        });
    }
    families
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn f(p: &str) -> Option<Vec<String>> {
        rx_factors(p).map(|v| {
            v.into_iter()
                .map(|s| String::from_utf8(s).unwrap())
                .collect()
        })
    }

    #[test]
    fn factors_of_simple_patterns() {
        assert_eq!(f("abc"), Some(vec!["abc".into()]));
        assert_eq!(f("(?i)SeLeCt"), Some(vec!["select".into()]));
        assert_eq!(f("a|bc"), Some(vec!["a".into(), "bc".into()]));
        assert_eq!(
            f(r"\s*(?:union|select)\b"),
            Some(vec!["union".into(), "select".into()])
        );
        assert_eq!(f("a*"), None);
        assert_eq!(f(".+"), None);
        assert_eq!(f("x?y?"), None);
        assert_eq!(f("^$"), None);
        assert_eq!(f("(?:ab)+c"), Some(vec!["abc".into()]));
        // A repetition's mandatory copies join its neighbours.
        assert_eq!(
            f(r"[/;]\.{2,3}[/;]"),
            Some(vec!["/..".into(), ";..".into()])
        );
        // Rare punctuation is preferred to a common word.
        assert_eq!(f(r"\$(?:eq|ne)"), Some(vec!["$eq".into(), "$ne".into()]));
    }

    /// The scanner reports the patterns `AhoCorasick`'s overlapping search finds, for both
    /// automaton kinds.
    #[test]
    fn scanner_finds_what_aho_corasick_finds() {
        let small: Vec<Vec<u8>> = ["../", "<script", "union", "on", "select", "x"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let large: Vec<Vec<u8>> = (0..DFA_MAX_PATTERNS + 20)
            .map(|i| format!("k{i}=").into_bytes())
            .chain(small.iter().cloned())
            .collect();
        let inputs: [&[u8]; 6] = [
            b"",
            b"a/../../b",
            b"1 UNION SeLeCt x",
            b"<SCRIPT onload=k17=k3=",
            b"nothing here",
            b"k299=k300=k301=",
        ];
        for patterns in [&small, &large] {
            let scanner = Scanner::build(patterns).unwrap();
            assert_eq!(
                matches!(scanner, Scanner::Dfa(_)),
                patterns.len() <= DFA_MAX_PATTERNS
            );
            let ac = aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(patterns)
                .unwrap();
            for input in inputs {
                let mut want: Vec<usize> = ac
                    .find_overlapping_iter(input)
                    .map(|m| m.pattern().as_usize())
                    .collect();
                let mut got = Vec::new();
                scanner.scan(input, |p| {
                    got.push(p);
                    false
                });
                want.sort_unstable();
                got.sort_unstable();
                assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
            }
        }
    }

    #[test]
    fn factors_cross_small_classes() {
        assert_eq!(
            f("[<>]script"),
            Some(vec!["<script".into(), ">script".into()])
        );
        // Too many alternatives in a class: the literal part is used.
        assert_eq!(f("[a-z]+=javascript:"), Some(vec!["=javascript:".into()]));
        // A set contained in another is dropped.
        assert_eq!(f("ab|xaby"), Some(vec!["ab".into()]));
    }

    /// Every line of the CRS regression files, as written and percent-decoded (the payloads).
    fn crs_payloads(dir: &std::path::Path, out: &mut BTreeSet<Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                crs_payloads(&p, out);
                continue;
            }
            let text = std::fs::read(&p).unwrap();
            for line in text.split(|b| *b == b'\n') {
                let line = line.trim_ascii();
                let line = line
                    .iter()
                    .position(|b| *b == b':')
                    .map_or(line, |i| line[i + 1..].trim_ascii());
                if line.is_empty() {
                    continue;
                }
                out.insert(line.to_vec());
                let decoded = crate::transformations::Transformation::by_name("urlDecodeUni")
                    .and_then(|t| t.apply(line));
                if let Some(d) = decoded {
                    out.insert(d);
                }
            }
        }
    }

    /// xorshift64*: reproducible random inputs without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// For every `@rx` of CRS v4 with factors: on every CRS regression payload and on random
    /// inputs built from pieces of the factors and of the payloads, a match of the regex
    /// implies that one of its factors occurs (so the prefilter never skips a match).
    #[test]
    fn crs_rx_factors_are_necessary() {
        let Some(shared) = rampart_test_support::shared::shared_dir() else {
            return;
        };
        let crs = shared.join("crs/v4.28.0");
        let rules = crate::crs_tests::load_crs_for_tests(&crs).unwrap();
        let mut payloads = BTreeSet::new();
        crs_payloads(&crs.join("tests/regression/tests"), &mut payloads);
        let payloads: Vec<Vec<u8>> = payloads.into_iter().filter(|p| p.len() <= 512).collect();
        let mut checked = 0usize;
        let mut with_factors = 0usize;
        let mut positives = 0usize;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let punct = b" \t\r\n'\"<>()[]{};:,./\\|&=%$#@!?*+-_`~^0aZ";
        for rule in &rules.inner.rules {
            for link in &rule.links {
                let crate::operators::Op::Rx(rx) = &link.op else {
                    continue;
                };
                let crate::operators::rx::Rx::Plain(re) = &**rx else {
                    continue;
                };
                checked += 1;
                let Some(factors) = link.op.factors() else {
                    continue;
                };
                with_factors += 1;
                // The engine's own scanner (its search loop is under test too).
                let ac = Scanner::build(&factors).unwrap();
                let mut check = |input: &[u8]| {
                    if re.is_match(input) {
                        positives += 1;
                        let mut found = false;
                        ac.scan(input, |_| {
                            found = true;
                            true
                        });
                        assert!(
                            found,
                            "rule {}: {:?} matches {:?} but no factor of {:?} occurs",
                            rule.id,
                            re.as_str(),
                            String::from_utf8_lossy(input),
                            factors
                                .iter()
                                .map(|f| String::from_utf8_lossy(f).into_owned())
                                .collect::<Vec<_>>()
                        );
                    }
                };
                for p in &payloads {
                    check(p);
                }
                // Random inputs around the factors: a factor with its case flipped, cut, or
                // surrounded by punctuation and payload pieces.
                for _ in 0..300 {
                    let mut input = Vec::new();
                    for _ in 0..1 + rng.below(4) {
                        match rng.below(4) {
                            0 => {
                                let f = &factors[rng.below(factors.len())];
                                let cut = rng.below(f.len() + 1);
                                let piece = if rng.below(3) == 0 { &f[..cut] } else { &f[..] };
                                input.extend(piece.iter().map(|b| {
                                    if rng.below(2) == 0 {
                                        b.to_ascii_uppercase()
                                    } else {
                                        *b
                                    }
                                }));
                            }
                            1 => {
                                for _ in 0..1 + rng.below(3) {
                                    input.push(punct[rng.below(punct.len())]);
                                }
                            }
                            2 => {
                                let p = &payloads[rng.below(payloads.len())];
                                let a = rng.below(p.len());
                                let b = (a + 1 + rng.below(16)).min(p.len());
                                input.extend_from_slice(&p[a..b]);
                            }
                            _ => input.push(rng.next() as u8),
                        }
                    }
                    check(&input);
                }
            }
        }
        println!("{checked} CRS @rx checked, {with_factors} with factors, {positives} matches");
        assert!(checked > 250, "CRS @rx operators: {checked}");
        assert!(
            with_factors * 10 > checked * 7,
            "{with_factors} of {checked} have factors"
        );
        assert!(
            positives > 1000,
            "too few matching inputs to mean anything: {positives}"
        );
    }
}
