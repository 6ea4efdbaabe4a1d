//! No input makes the parser panic: random bytes and mutated CRS lines, a few thousand of each,
//! parsed with includes disabled (no file access). The stable-Rust companion of the cargo-fuzz
//! target `fuzz/fuzz_targets/seclang_parse.rs`. `SECLANG_FUZZ_ITERATIONS` and
//! `SECLANG_FUZZ_SEED` change the run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use rampart_seclang::Parser;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const SAMPLES: &[&str] = &[
    "SecRuleEngine On\n",
    "SecRule ARGS|!ARGS:foo|&REQUEST_HEADERS:/^x-(a|b)/|XML:/* \"!@rx ^(?:a|b)$\" \\\n    \"id:1,phase:2,t:none,t:lowercase,block,msg:'a, b \\'c\\'',logdata:'%{TX.0}',setvar:'tx.x=+%{tx.y}',chain\"\n    SecRule &TX:x \"@eq 0\" \"t:none,ctl:ruleRemoveTargetById=1;ARGS:a,ctl:ruleEngine=Off\"\n",
    "SecAction \"id:2,phase:1,pass,nolog,setvar:tx.a=1,setvar:!tx.b,skipAfter:END\"\nSecMarker END\n",
    "SecDefaultAction \"phase:2,log,auditlog,pass\"\n",
    "SecRuleRemoveById 1 2-5 \"7\"\nSecRuleUpdateTargetById 3 \"!ARGS:'/x|y/'\"\nSecRuleUpdateActionById 3 \"pass\"\n",
    "# comment \\\n# more\nSecResponseBodyMimeType text/plain text/html\nSecUnicodeMapFile unicode.mapping 20127\n",
    "SecRule REQUEST_HEADERS:Content-Type \"@rx charset\\s*=\\s*[\\\"']?([^;\\\"'\\s]+)\" \"id:3,capture,msg:'x: \\\n(y)'\"\n",
    "Include rules/*.conf\nIncludeOptional x.conf\n",
];

const ALPHABET: &[u8] = b"\"'\\\n\r\t ,:|!&@%{}/#=+-;$[]()*?0123456789aAsSeErRcC";

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, donor: &[u8]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 => {
                let b = ALPHABET[rng.below(ALPHABET.len())];
                input.insert(rng.below(len + 1), b);
            }
            1 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(8)).min(len);
                input.drain(start..end);
            }
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                let piece = input[start..end].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, piece);
            }
            3 => input.truncate(rng.below(len + 1)),
            4 if !donor.is_empty() => {
                let start = rng.below(donor.len());
                let end = (start + 1 + rng.below(64)).min(donor.len());
                let at = rng.below(len + 1);
                input.splice(at..at, donor[start..end].iter().copied());
            }
            5 if len > 0 => {
                let i = rng.below(len);
                input[i] = input[i].to_ascii_uppercase() ^ (rng.below(2) as u8 * 0x20);
            }
            _ if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            _ => {}
        }
    }
}

/// Directives of CRS (from `../shared`, when present) as mutation seeds.
fn crs_seeds() -> Vec<String> {
    let Some(dir) = rampart_test_support::shared::shared_dir() else {
        return Vec::new();
    };
    let mut seeds = Vec::new();
    for name in [
        "rules/REQUEST-920-PROTOCOL-ENFORCEMENT.conf",
        "rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf",
        "rules/RESPONSE-980-CORRELATION.conf",
        "crs-setup.conf.example",
    ] {
        let Ok(text) = std::fs::read_to_string(dir.join("crs/v4.28.0").join(name)) else {
            continue;
        };
        // Split into blocks at blank lines: whole directives with their continuations.
        seeds.extend(
            text.split("\n\n")
                .filter(|b| b.contains("Sec"))
                .map(str::to_owned),
        );
    }
    seeds
}

fn check(parser: &Parser, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let result = catch_unwind(AssertUnwindSafe(|| {
        parser.parse_str(&text, Path::new("fuzz.conf"))
    }));
    match result {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            let shown = e.to_string();
            assert!(shown.starts_with("fuzz.conf"), "{shown}");
            let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
            assert!(
                e.line.is_none_or(|l| l >= 1 && l <= lines + 1),
                "{shown} for {text:?}"
            );
        }
        Err(_) => panic!("the parser panicked on {text:?}"),
    }
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let iterations: usize = std::env::var("SECLANG_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let seed: u64 = std::env::var("SECLANG_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5ec1_a46e);
    let mut rng = Rng(seed | 1);
    let parser = Parser::new().without_includes();
    let mut seeds: Vec<String> = SAMPLES.iter().map(|s| (*s).to_owned()).collect();
    seeds.extend(crs_seeds());

    // Every seed parses (or fails) cleanly as it is.
    for s in &seeds {
        check(&parser, s.as_bytes());
    }
    // Mutated seeds.
    for _ in 0..iterations {
        let mut input = seeds[rng.below(seeds.len())].clone().into_bytes();
        let donor = seeds[rng.below(seeds.len())].as_bytes();
        mutate(&mut rng, &mut input, donor);
        check(&parser, &input);
    }
    // Random bytes, biased towards SecLang's special characters.
    for _ in 0..iterations / 2 {
        let len = rng.below(200);
        let input: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(3) == 0 {
                    rng.next() as u8
                } else {
                    ALPHABET[rng.below(ALPHABET.len())]
                }
            })
            .collect();
        let mut text = b"SecRule ".to_vec();
        text.extend_from_slice(&input);
        check(&parser, &input);
        check(&parser, &text);
    }
}
