//! Criterion benchmark of one full WAF transaction (phases 1-5) with OWASP CRS v4 at paranoia
//! levels 1 and 4, blocking mode, ModSecurity's recommended engine settings, on four requests:
//! a clean browser GET, a form POST, a 10 KiB JSON POST and an SQL injection GET.
//!
//! `cargo bench -p rampart-waf --bench transaction`; `bench/waf/run.sh` runs the side-by-side
//! comparison with libmodsecurity 3.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn transactions(c: &mut Criterion) {
    let crs = common::crs_dir();
    let requests = common::requests();
    for level in common::LEVELS {
        let rules = common::load(&crs, level);
        let mut g = c.benchmark_group(format!("waf_crs4_pl{level}"));
        g.throughput(Throughput::Elements(1));
        for req in &requests {
            g.bench_function(req.name, |b| {
                b.iter(|| black_box(common::run(&rules, black_box(req))));
            });
        }
        g.finish();
    }
}

criterion_group!(benches, transactions);
criterion_main!(benches);
