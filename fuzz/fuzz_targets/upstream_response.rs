//! Arbitrary bytes as an upstream's reply through the gateway's direct upstream path
//! (`rampart_gateway::decode_upstream_response`: response head, 1xx skipped, body by
//! Content-Length, chunked with trailers or until close), arriving in pieces of a size the
//! first byte picks: a response or an error, never a panic; the body never holds more bytes
//! than arrived, and no hop-by-hop field is among the fields passed on.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, wire)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first & 0x3f) + 1;
    let head_only = first & 0x40 != 0;
    if let Ok(decoded) = rampart_gateway::decode_upstream_response(wire, piece, head_only) {
        assert!(decoded.body.len() <= wire.len());
        for (name, _) in &decoded.fields {
            assert!(
                !matches!(
                    name.as_str(),
                    "connection"
                        | "keep-alive"
                        | "transfer-encoding"
                        | "te"
                        | "trailer"
                        | "upgrade"
                        | "proxy-connection"
                        | "proxy-authenticate"
                        | "proxy-authorization"
                ),
                "hop-by-hop field {name} passed"
            );
        }
    }
});
