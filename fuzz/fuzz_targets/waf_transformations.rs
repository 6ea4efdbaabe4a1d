//! Arbitrary bytes through every transformation (`t:`) of the WAF, alone and chained: the
//! first byte picks a pipeline of up to four transformations, the rest is the input.
//!
//! `cargo +nightly fuzz run waf_transformations` (seeds in `fuzz/corpus/waf_transformations`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_waf::transformations::REGISTRY;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    // Every transformation on its own.
    for (_, t) in REGISTRY {
        let _ = t.apply(input);
    }
    // A pipeline picked by the first byte (four transformations), as rules chain them.
    let n = REGISTRY.len();
    let mut cur = input.to_vec();
    let mut pick = usize::from(sel);
    for _ in 0..4 {
        let (_, t) = REGISTRY[pick % n];
        pick = pick / n + 7;
        if let Some(out) = t.apply(&cur) {
            cur = out;
        }
    }
});
