//! Prints the AST of the rules with the given ids: `cargo run -p rampart-seclang --example seclang_dump -- FILE ID...`.

use std::path::PathBuf;

use rampart_seclang::{Directive, parse_file};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: seclang_dump FILE ID...");
        std::process::exit(2);
    };
    let ids: Vec<u64> = args.filter_map(|a| a.parse().ok()).collect();
    match parse_file(&path) {
        Ok(directives) => {
            for d in directives {
                let id = match &d {
                    Directive::Rule(r) => r.id(),
                    Directive::Action(a) => a.id(),
                    _ => None,
                };
                if id.is_some_and(|id| ids.contains(&id)) {
                    println!("{d:#?}");
                }
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
