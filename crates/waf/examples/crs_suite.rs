//! Runs the CRS regression suite: `cargo run --release -p rampart-waf --example crs_suite -- CRS_DIR [FILTER]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(root) = args.next() else {
        eprintln!("usage: crs_suite CRS_DIR [TESTS_DIR] [OVERRIDES]");
        std::process::exit(2);
    };
    let root = std::path::PathBuf::from(root);
    let tests = args.next().map_or_else(
        || root.join("tests/regression/tests"),
        std::path::PathBuf::from,
    );
    let overrides = args.next().map(std::path::PathBuf::from);
    match rampart_waf::crs_tests::run(&root, &tests, overrides.as_deref()) {
        Ok(r) => println!("{r}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
