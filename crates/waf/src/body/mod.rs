//! Request body processors: `URLENCODED`, `MULTIPART`, `JSON`, `XML`. Each fills the
//! transaction's collections (`ARGS_POST`, `FILES`, `MULTIPART_*`, `XML`) from the buffered
//! body, and flags `REQBODY_ERROR` with a message on malformed input; none panics on any input.

pub(crate) mod json;
pub(crate) mod multipart;
pub(crate) mod urlencoded;
pub(crate) mod xml;

use crate::variables::{ArgEntry, TxData};

/// A name and a value.
pub(crate) type Pair = (Vec<u8>, Vec<u8>);

/// Runs the body processor `processor` (or none) over `data.req_body`.
pub(crate) fn process(
    data: &mut TxData,
    processor: Option<&str>,
    content_type: &[u8],
    sep: u8,
    json_depth: u64,
) {
    let body = std::mem::take(&mut data.req_body);
    match processor.map(str::to_ascii_uppercase).as_deref() {
        Some("URLENCODED") => {
            let (args, err) = urlencoded::parse(&body, sep);
            data.urlencoded_error |= err;
            push_post(data, args);
        }
        Some("MULTIPART") => multipart::parse(data, &body, content_type),
        Some("JSON") => match json::parse(&body, json_depth) {
            Ok(args) => push_post(data, args),
            Err(msg) => body_error(data, &msg),
        },
        Some("XML") => {
            if let Err(msg) = xml::parse(data, &body) {
                body_error(data, &msg);
            }
        }
        _ => {}
    }
    data.req_body = body;
}

fn push_post(data: &mut TxData, args: Vec<Pair>) {
    for (name, value) in args {
        data.args.push(ArgEntry {
            name,
            value,
            post: true,
        });
    }
}

pub(crate) fn body_error(data: &mut TxData, msg: &str) {
    data.reqbody_error = true;
    data.reqbody_error_msg = msg.as_bytes().to_vec();
}
