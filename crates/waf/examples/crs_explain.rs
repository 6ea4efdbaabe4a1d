//! Explains one CRS test: `crs_explain CRS_DIR RULE-TEST`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(root), Some(id)) = (args.first(), args.get(1)) else {
        eprintln!("usage: crs_explain CRS_DIR RULE-TEST");
        std::process::exit(2);
    };
    let root = std::path::PathBuf::from(root);
    let (r, t) = id.split_once('-').unwrap_or((id, "1"));
    let id = rampart_waf::crs_tests::TestId {
        rule_id: r.parse().unwrap_or(0),
        test_id: t.parse().unwrap_or(0),
    };
    let rules = match rampart_waf::crs_tests::load_crs_for_tests(&root) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let stages = rampart_waf::crs_tests::explain(&rules, &root.join("tests/regression/tests"), id);
    for (i, stage) in stages.unwrap_or_default().iter().enumerate() {
        println!("stage {i}:");
        for m in stage {
            if m.logged {
                println!(
                    "  {} {} [{}] {} | {}",
                    m.id,
                    if m.logged { "L" } else { "-" },
                    m.matched_var_name,
                    m.msg,
                    m.logdata
                );
            }
        }
    }
}
