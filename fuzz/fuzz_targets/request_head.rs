//! Arbitrary bytes from a client through the gateway's lean HTTP/1.1 server side
//! (`rampart_gateway::decode_request_heads`: request heads parsed as they arrive, in pieces
//! of a size the first byte picks): never a panic, and the bytes handed to hyper for the rest
//! of the connection are exactly the ones not taken as served request heads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, wire)) = data.split_first() else {
        return;
    };
    let decoded = rampart_gateway::decode_request_heads(wire, usize::from(first & 0x3f) + 1);
    if let Some(rest) = decoded.handed_off {
        assert!(wire.ends_with(&rest));
    }
    for (_, target, _, _) in &decoded.served {
        assert!(target.starts_with('/'));
    }
});
