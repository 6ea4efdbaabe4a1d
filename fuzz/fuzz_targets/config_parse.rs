//! Arbitrary text as a configuration file: `Config::from_toml_str` must return a config or an
//! error naming the file, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = rampart_config::Config::from_toml_str(text, "fuzz.toml".as_ref()) {
        assert!(error.to_string().starts_with("fuzz.toml"));
    }
});
