//! JSON Lines export: one record per line, byte-identical to the stored canonical payload.
//!
//! Because the line *is* the Merkle leaf's payload, a SIEM holding the export can hash a line
//! (`SHA-256(0x00 || line)`) and check it against a signed checkpoint with an inclusion proof.
//! [`parse_line`] turns a line back into an [`Entry`] (with its `seq` and `prev`).

use crate::error::{ErrorKind, Result};
use crate::record::Entry;

/// Appends the jsonl line for a stored payload (the payload and a newline).
pub fn write_line(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(payload);
    out.push(b'\n');
}

/// Parses one exported line (with or without its trailing newline).
///
/// # Errors
/// [`ErrorKind::Record`] if the line is not a canonical entry.
pub fn parse_line(line: &str) -> Result<Entry> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    Entry::decode(line.as_bytes()).map_err(|reason| {
        ErrorKind::Record {
            what: "jsonl line".into(),
            reason,
        }
        .into()
    })
}
