//! The Rust side of `bench/waf/run.sh`: CPU time per full WAF transaction (CRS v4, blocking,
//! ModSecurity's recommended settings) for the four benchmark requests, in the same output
//! format as `bench/waf/modsec_bench.c` (`PL KIND US_PER_TX STATUS MATCHED`).
//!
//! ```text
//! bench_transactions run [ITERATIONS]        # time both paranoia levels
//!                                            # (BENCH_LEVEL=1, BENCH_REQUEST=clean_get: only those)
//! bench_transactions write-peer-inputs DIR   # modsec-pl1.conf, modsec-pl4.conf, *.req for the C peer
//! ```
//!
//! CPU time is the thread's own (`/proc/thread-self/schedstat`, nanoseconds), falling back to
//! wall-clock time where that file does not exist.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let crs = common::crs_dir();
    match args.get(1).map(String::as_str) {
        Some("write-peer-inputs") => {
            let dir = std::path::PathBuf::from(args.get(2).expect("DIR"));
            std::fs::create_dir_all(&dir).unwrap();
            for level in common::LEVELS {
                let conf = common::modsecurity_conf(&crs, level).unwrap();
                std::fs::write(dir.join(format!("modsec-pl{level}.conf")), conf).unwrap();
            }
            for r in common::requests() {
                common::write_request(&r, &dir.join(format!("{}.req", r.name))).unwrap();
            }
        }
        Some("run") | None => {
            let iters: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
            // Optional filters (for profiling): a paranoia level and a request name.
            let only_level: Option<u8> = std::env::var("BENCH_LEVEL")
                .ok()
                .and_then(|s| s.parse().ok());
            let only_req = std::env::var("BENCH_REQUEST").ok();
            let requests: Vec<_> = common::requests()
                .into_iter()
                .filter(|r| only_req.as_deref().is_none_or(|n| n == r.name))
                .collect();
            for level in common::LEVELS
                .into_iter()
                .filter(|l| only_level.is_none_or(|o| o == *l))
            {
                let t = Instant::now();
                let rules = common::load(&crs, level);
                eprintln!(
                    "rampart: PL{level}: {} rules loaded in {:.0?}",
                    rules.rule_count(),
                    t.elapsed()
                );
                for req in &requests {
                    // Warm up (and check the verdict); at most about 2 s of CPU per request.
                    let first = Instant::now();
                    let (i, n) = common::run(&rules, req);
                    let first = first.elapsed().as_secs_f64();
                    // BENCH_EXACT: exactly ITERATIONS (for instruction counts under callgrind).
                    let exact = std::env::var_os("BENCH_EXACT").is_some();
                    let iters = if !exact && f64::from(iters) * first > 2.0 {
                        ((2.0 / first) as u32).max(20)
                    } else {
                        iters
                    };
                    for _ in 0..iters / 10 {
                        black_box(common::run(&rules, black_box(req)));
                    }
                    let (c0, w0) = (cpu_ns(), Instant::now());
                    for _ in 0..iters {
                        black_box(common::run(&rules, black_box(req)));
                    }
                    let wall = w0.elapsed().as_nanos() as f64;
                    let ns = match (c0, cpu_ns()) {
                        (Some(a), Some(b)) => (b - a) as f64,
                        _ => wall,
                    };
                    let status = i.map_or(200, |i| i.status);
                    println!(
                        "PL{level} {} {:.2} {status} {n}",
                        req.name,
                        ns / 1000.0 / f64::from(iters)
                    );
                }
            }
        }
        Some(other) => panic!("unknown command {other}"),
    }
}
