//! Arbitrary bytes as a compact JWS and as a JWK Set (what a client and an IdP can send the
//! verifier): parsing and key compilation must refuse or accept, never panic; a parsed token's
//! signing input is always a prefix of the token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_identity::jwt::{JwkSet, Jws, VerifyingKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(jws) = Jws::parse(text) {
            assert!(text.as_bytes().starts_with(jws.signing_input()));
        }
    }
    if let Ok(set) = serde_json::from_slice::<JwkSet>(data) {
        for jwk in &set.keys {
            if let Ok(key) = VerifyingKey::from_jwk(jwk) {
                let _ = key.verify(key.algorithms().next().unwrap(), b"m", b"s");
            }
        }
    }
});
