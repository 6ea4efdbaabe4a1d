//! Lowercase hexadecimal encoding and decoding of hashes (no allocation on the hot path).

#[inline]
fn digit(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'a' + n - 10 }
}

/// Appends the lowercase hex of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        out.push(char::from(digit(b >> 4)));
        out.push(char::from(digit(b & 0x0f)));
    }
}

/// Appends the lowercase hex of `bytes` to a byte buffer.
pub(crate) fn encode_bytes_into(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 0x0f));
    }
}

/// The lowercase hex of `bytes`.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    encode_into(bytes, &mut s);
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes exactly 64 lowercase hex digits into 32 bytes.
#[must_use]
pub fn decode32(s: &str) -> Option<[u8; 32]> {
    decode32_bytes(s.as_bytes())
}

/// Decodes exactly 64 lowercase hex digits (as bytes) into 32 bytes.
#[must_use]
pub(crate) fn decode32_bytes(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h: [u8; 32] = std::array::from_fn(|i| (i * 9) as u8);
        let s = encode(&h);
        assert_eq!(s.len(), 64);
        assert_eq!(decode32(&s), Some(h));
        assert_eq!(decode32(&s[1..]), None);
        assert_eq!(decode32(&s.to_uppercase()), None);
        let mut v = Vec::new();
        encode_bytes_into(&h, &mut v);
        assert_eq!(v, s.as_bytes());
    }
}
