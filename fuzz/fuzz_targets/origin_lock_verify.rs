//! Arbitrary origin-lock headers (what any client can send to a backend) through
//! `OriginLock::verify`: it must reject or accept, never panic; a record that verifies must be
//! one the edge signed.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use rampart_origin_lock::{Key, OriginLock};

fuzz_target!(|data: &[u8]| {
    let Ok(key) = Key::new("k1", b"0123456789abcdef0123456789abcdef") else {
        return;
    };
    let Ok(lock) = OriginLock::new("edge-1", key, Vec::new(), std::time::Duration::from_secs(30))
    else {
        return;
    };
    let (edge, record) = match data.iter().position(|&b| b == b'\n') {
        Some(split) => (&data[..split], &data[split + 1..]),
        None => (&b"edge-1"[..], data),
    };
    let mut headers = HeaderMap::new();
    if let (Ok(edge), Ok(record)) = (HeaderValue::from_bytes(edge), HeaderValue::from_bytes(record)) {
        headers.insert("x-rampart-edge-id", edge);
        headers.insert("x-rampart-forwarded", record);
    }
    if let Ok(forwarding) = lock.verify(&headers, "GET", "/", 1_700_000_000) {
        // Only a genuinely signed record verifies: re-signing it must give the same header.
        let mut signed = HeaderMap::new();
        lock.sign(&mut signed, "GET", "/", &forwarding);
        assert_eq!(signed.get("x-rampart-forwarded"), headers.get("x-rampart-forwarded"));
    }
});
