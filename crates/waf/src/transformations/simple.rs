//! Simple byte-wise transformations: case, trimming, parity, encodings.

/// C `isspace` in the "C" locale.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `trim`, `trimLeft`, `trimRight`.
pub(super) fn trim(input: &[u8], left: bool, right: bool) -> Option<Vec<u8>> {
    let mut s = input;
    if left {
        while let Some((first, rest)) = s.split_first() {
            if !is_space(*first) {
                break;
            }
            s = rest;
        }
    }
    if right {
        while let Some((last, rest)) = s.split_last() {
            if !is_space(*last) {
                break;
            }
            s = rest;
        }
    }
    (s.len() != input.len()).then(|| s.to_vec())
}

/// The lower-case hex digit for `v` (0-15).
fn hex_digit(v: u8) -> u8 {
    if v < 10 { b'0' + v } else { b'a' + v - 10 }
}

/// Lower-case hex of every byte.
pub(crate) fn hex_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 2);
    for b in input {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0xf));
    }
    out
}

/// `urlEncode`.
pub(super) fn url_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for &b in input {
        if b == b' ' {
            out.push(b'+');
        } else if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0xf));
        }
    }
    out
}

/// `base64Encode`.
pub(super) fn base64_encode(input: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(input)
        .into_bytes()
}

/// Which parity bit to set.
#[derive(Debug, Clone, Copy)]
pub(super) enum Parity {
    Even,
    Odd,
    Zero,
}

/// `parityEven7bit`, `parityOdd7bit`, `parityZero7bit`.
pub(super) fn parity(input: &[u8], p: Parity) -> Vec<u8> {
    input
        .iter()
        .map(|&b| {
            let low = b & 0x7f;
            let ones = low.count_ones();
            match p {
                Parity::Zero => low,
                Parity::Even => low | if ones % 2 == 1 { 0x80 } else { 0 },
                Parity::Odd => low | if ones % 2 == 0 { 0x80 } else { 0 },
            }
        })
        .collect()
}
