//! Parses a SecLang file and prints what it uses: `cargo run -p rampart-seclang --example seclang_stats -- FILE`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use rampart_seclang::{ActionKind, Directive, SecRule, parse_file};

fn main() {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: seclang_stats FILE");
        std::process::exit(2);
    };
    let start = Instant::now();
    let directives = match parse_file(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let elapsed = start.elapsed();
    let (mut ops, mut ts, mut cols, mut acts, mut ctls) = Default::default();
    let (mut rules, mut chained, mut actions) = (0, 0, 0);
    for d in &directives {
        match d {
            Directive::Rule(r) => {
                rules += 1;
                collect(r, &mut ops, &mut ts, &mut cols, &mut acts, &mut ctls);
                for c in r.chained() {
                    chained += 1;
                    collect(c, &mut ops, &mut ts, &mut cols, &mut acts, &mut ctls);
                }
            }
            Directive::Action(a) => {
                actions += 1;
                actions_of(&a.actions, &mut ts, &mut acts, &mut ctls);
            }
            _ => {}
        }
    }
    let mut out = std::io::stdout().lock();
    // Write errors (a closed pipe) end the listing quietly.
    let _ = writeln!(
        out,
        "directives: {} ({rules} SecRule, {chained} chained SecRule, {actions} SecAction) in {elapsed:?}",
        directives.len()
    );
    for (name, set) in [
        ("operators", &ops),
        ("transformations", &ts),
        ("collections", &cols),
        ("actions", &acts),
        ("ctl", &ctls),
    ] {
        let _ = writeln!(
            out,
            "{name} ({}): {}",
            set.len(),
            set.iter().cloned().collect::<Vec<_>>().join(" ")
        );
    }
}

type Set = BTreeSet<String>;

fn collect(
    r: &SecRule,
    ops: &mut Set,
    ts: &mut Set,
    cols: &mut Set,
    acts: &mut Set,
    ctls: &mut Set,
) {
    ops.insert(r.operator.name.clone());
    for v in &r.variables {
        cols.insert(v.collection.clone());
    }
    actions_of(&r.actions, ts, acts, ctls);
}

fn actions_of(list: &[rampart_seclang::Action], ts: &mut Set, acts: &mut Set, ctls: &mut Set) {
    for a in list {
        acts.insert(a.name.clone());
        match &a.kind {
            ActionKind::Transformation(t) => {
                ts.insert(t.clone());
            }
            ActionKind::Ctl(c) => {
                ctls.insert(c.name().to_owned());
            }
            _ => {}
        }
    }
}
