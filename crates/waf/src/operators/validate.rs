//! `@validateByteRange`, `@validateUrlEncoding` and `@verifyCC` (Luhn check).

use regex::bytes::Regex;

use super::OpMatch;

/// Parses `1-255`, `9,10,13,32-126`: the allowed bytes.
pub(crate) fn byte_ranges(arg: &str) -> Result<[bool; 256], String> {
    let mut allowed = [false; 256];
    for part in arg
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: u8 = a.parse().map_err(|_| format!("invalid byte {a:?}"))?;
        let b: u8 = b.parse().map_err(|_| format!("invalid byte {b:?}"))?;
        if a > b {
            return Err(format!("invalid range {part:?}"));
        }
        for v in a..=b {
            if let Some(slot) = allowed.get_mut(usize::from(v)) {
                *slot = true;
            }
        }
    }
    Ok(allowed)
}

/// A `%` not followed by two hex digits.
pub(crate) fn invalid_url_encoding(input: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = input.get(i..).and_then(|s| memchr::memchr(b'%', s)) {
        let at = i + p;
        let ok = input
            .get(at + 1..at + 3)
            .is_some_and(|d| d.iter().all(u8::is_ascii_hexdigit));
        if !ok {
            return true;
        }
        i = at + 3;
    }
    false
}

/// `@verifyCC`: a match of the pattern whose digits pass the Luhn check.
pub(crate) fn verify_cc(re: &Regex, input: &[u8], capture: bool, m: &mut OpMatch) -> bool {
    for found in re.find_iter(input) {
        let digits: Vec<u32> = found
            .as_bytes()
            .iter()
            .filter(|b| b.is_ascii_digit())
            .map(|b| u32::from(b - b'0'))
            .collect();
        if digits.len() < 2 {
            continue;
        }
        let sum: u32 = digits
            .iter()
            .rev()
            .enumerate()
            .map(|(i, d)| {
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    *d
                }
            })
            .sum();
        if sum.is_multiple_of(10) {
            if capture {
                m.captures.push(found.as_bytes().to_vec());
            }
            return true;
        }
    }
    false
}
