//! Decoding transformations: URL, HTML entities, JavaScript, CSS, C escapes, Base64, hex.
//!
//! Each follows ModSecurity's algorithm byte for byte, including its leniency: invalid
//! encodings are kept as written.

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex2(a: u8, b: u8) -> Option<u8> {
    Some(hex_val(a)? << 4 | hex_val(b)?)
}

fn at(input: &[u8], i: usize) -> u8 {
    input.get(i).copied().unwrap_or(0)
}

fn is_ff(b: u8) -> bool {
    b == b'f' || b == b'F'
}

/// `urlDecode` / `urlDecodeUni` (with `%uXXXX`: the low byte, full-width ASCII folded).
pub(super) fn url_decode(input: &[u8], uni: bool) -> Option<Vec<u8>> {
    // Nothing to decode: unchanged.
    memchr::memchr2(b'%', b'+', input)?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        if c == b'+' {
            out.push(b' ');
            i += 1;
        } else if c == b'%' {
            if uni && matches!(input.get(i + 1), Some(b'u' | b'U')) {
                let digits = input.get(i + 2..i + 6);
                if let Some(d) = digits.filter(|d| d.iter().all(u8::is_ascii_hexdigit)) {
                    let mut v = hex2(at(d, 2), at(d, 3)).unwrap_or(0);
                    if v > 0 && v < 0x5f && is_ff(at(d, 0)) && is_ff(at(d, 1)) {
                        v += 0x20;
                    }
                    out.push(v);
                    i += 6;
                    continue;
                }
                out.push(c);
                i += 1;
                continue;
            }
            match input
                .get(i + 1..i + 3)
                .and_then(|d| hex2(at(d, 0), at(d, 1)))
            {
                Some(v) => {
                    out.push(v);
                    i += 3;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    Some(out)
}

/// `htmlEntityDecode`: `&#DDD;`, `&#xHH;`, `&quot;`, `&amp;`, `&lt;`, `&gt;`, `&nbsp;` (the
/// `;` is optional).
pub(super) fn html_entity_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'&') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        if c != b'&' {
            out.push(c);
            i += 1;
            continue;
        }
        if input.get(i + 1) == Some(&b'#') {
            let hex = matches!(input.get(i + 2), Some(b'x' | b'X'));
            let start = if hex { i + 3 } else { i + 2 };
            let mut j = start;
            while input.get(j).is_some_and(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            }) {
                j += 1;
            }
            if j > start {
                let digits = input.get(start..j).unwrap_or_default();
                let mut v: u32 = 0;
                for d in digits {
                    v = v
                        .wrapping_mul(if hex { 16 } else { 10 })
                        .wrapping_add(u32::from(hex_val(*d).unwrap_or(0)));
                }
                out.push((v & 0xff) as u8);
                if input.get(j) == Some(&b';') {
                    j += 1;
                }
                i = j;
                continue;
            }
        } else {
            let start = i + 1;
            let mut j = start;
            while input.get(j).is_some_and(u8::is_ascii_alphanumeric) {
                j += 1;
            }
            let name = input.get(start..j).unwrap_or_default().to_ascii_lowercase();
            let v = match name.as_slice() {
                b"quot" => Some(b'"'),
                b"amp" => Some(b'&'),
                b"lt" => Some(b'<'),
                b"gt" => Some(b'>'),
                b"nbsp" => Some(0xa0),
                _ => None,
            };
            if let Some(v) = v {
                out.push(v);
                if input.get(j) == Some(&b';') {
                    j += 1;
                }
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Some(out)
}

fn is_odigit(b: Option<&u8>) -> bool {
    matches!(b, Some(b'0'..=b'7'))
}

/// Reads up to three octal digits after `input[i]` (a backslash), as ModSecurity does.
fn octal(input: &[u8], i: usize) -> Option<(u8, usize)> {
    let mut j = 0;
    let mut buf = [0u8; 3];
    while j < 3 {
        let Some(&d) = input.get(i + 1 + j) else {
            break;
        };
        if !(b'0'..=b'7').contains(&d) {
            break;
        }
        if let Some(slot) = buf.get_mut(j) {
            *slot = d;
        }
        j += 1;
    }
    if j == 0 {
        return None;
    }
    if j == 3 && buf[0] > b'3' {
        j = 2;
    }
    let mut v: u32 = 0;
    for d in buf.iter().take(j) {
        v = v * 8 + u32::from(d - b'0');
    }
    Some(((v & 0xff) as u8, j))
}

/// `jsDecode`: `\uHHHH` (low byte, full-width folded), `\xHH`, `\OOO`, `\n` and friends.
pub(super) fn js_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let next = input.get(i + 1).copied();
        if next == Some(b'u')
            && input
                .get(i + 2..i + 6)
                .is_some_and(|d| d.iter().all(u8::is_ascii_hexdigit))
        {
            let mut v = hex2(at(input, i + 4), at(input, i + 5)).unwrap_or(0);
            if v > 0 && v < 0x5f && is_ff(at(input, i + 2)) && is_ff(at(input, i + 3)) {
                v += 0x20;
            }
            out.push(v);
            i += 6;
        } else if next == Some(b'x')
            && let Some(v) = input
                .get(i + 2..i + 4)
                .and_then(|d| hex2(at(d, 0), at(d, 1)))
        {
            out.push(v);
            i += 4;
        } else if is_odigit(input.get(i + 1))
            && let Some((v, n)) = octal(input, i)
        {
            out.push(v);
            i += 1 + n;
        } else if let Some(n) = next {
            out.push(match n {
                b'a' => 7,
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 11,
                other => other,
            });
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Some(out)
}

/// `cssDecode` (CSS 2.1 escapes).
pub(super) fn css_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        if i + 1 >= input.len() {
            i += 1;
            continue;
        }
        i += 1;
        let mut j = 0;
        while j < 6 && input.get(i + j).is_some_and(u8::is_ascii_hexdigit) {
            j += 1;
        }
        if j > 0 {
            let mut full = false;
            let v = match j {
                1 => hex_val(at(input, i)).unwrap_or(0),
                2 | 3 => hex2(at(input, i + j - 2), at(input, i + j - 1)).unwrap_or(0),
                4 => {
                    full = true;
                    hex2(at(input, i + 2), at(input, i + 3)).unwrap_or(0)
                }
                5 => {
                    full = at(input, i) == b'0';
                    hex2(at(input, i + 3), at(input, i + 4)).unwrap_or(0)
                }
                _ => {
                    full = at(input, i) == b'0' && at(input, i + 1) == b'0';
                    hex2(at(input, i + 4), at(input, i + 5)).unwrap_or(0)
                }
            };
            let mut v = v;
            if full
                && v > 0
                && v < 0x5f
                && j >= 4
                && is_ff(at(input, i + j - 3))
                && is_ff(at(input, i + j - 4))
            {
                v += 0x20;
            }
            out.push(v);
            if input
                .get(i + j)
                .is_some_and(|b| super::simple::is_space(*b))
            {
                j += 1;
            }
            i += j;
        } else if at(input, i) == b'\n' {
            i += 1;
        } else {
            out.push(at(input, i));
            i += 1;
        }
    }
    Some(out)
}

/// `escapeSeqDecode`: ANSI C escape sequences.
pub(super) fn escape_seq_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        let Some(&n) = input.get(i + 1).filter(|_| c == b'\\') else {
            out.push(c);
            i += 1;
            continue;
        };
        let simple = match n {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' | b'?' | b'\'' | b'"' => Some(n),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            i += 2;
        } else if (n == b'x' || n == b'X')
            && let Some(v) = input
                .get(i + 2..i + 4)
                .and_then(|d| hex2(at(d, 0), at(d, 1)))
        {
            out.push(v);
            i += 4;
        } else if let Some((v, k)) = octal(input, i) {
            out.push(v);
            i += 1 + k;
        } else {
            out.push(n);
            i += 2;
        }
    }
    Some(out)
}

fn b64_val(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// `base64Decode` (stops at the first invalid character) and `base64DecodeExt` (skips them).
pub(super) fn base64_decode(input: &[u8], ext: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in input {
        if b == b'=' {
            break;
        }
        let Some(v) = b64_val(b) else {
            if ext {
                continue;
            }
            break;
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// `hexDecode`: pairs of hex digits to bytes (invalid pairs are dropped).
pub(super) fn hex_decode(input: &[u8]) -> Vec<u8> {
    input
        .chunks_exact(2)
        .filter_map(|p| hex2(at(p, 0), at(p, 1)))
        .collect()
}

/// `sqlHexDecode`: `0xHHHH...` literals to bytes.
pub(super) fn sql_hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    memchr::memmem::find(&input.to_ascii_lowercase(), b"0x")?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        if c == b'0'
            && matches!(input.get(i + 1), Some(b'x' | b'X'))
            && input.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            && input.get(i + 3).is_some_and(u8::is_ascii_hexdigit)
        {
            i += 2;
            while let Some(v) = input.get(i..i + 2).and_then(|d| hex2(at(d, 0), at(d, 1))) {
                out.push(v);
                i += 2;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    Some(out)
}

/// `utf8toUnicode`: multi-byte UTF-8 sequences to `%uHHHH`.
pub(super) fn utf8_to_unicode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_ascii() {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 2);
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        let len = match c {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 1,
        };
        let seq = input.get(i..i + len);
        match seq.and_then(|s| std::str::from_utf8(s).ok()) {
            Some(s) if len > 1 => {
                let cp = s.chars().next().map_or(0, u32::from);
                out.extend_from_slice(format!("%u{cp:04x}").as_bytes());
                i += len;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}
