//! `application/x-www-form-urlencoded` (and query strings): `a=1&b=2`, names and values
//! URL-decoded (`+` is a space, invalid `%` escapes are kept as written).

/// The arguments, and whether an invalid `%` escape was seen.
pub(crate) fn parse(input: &[u8], sep: u8) -> (Vec<super::Pair>, bool) {
    let mut out = Vec::new();
    let mut invalid = false;
    for pair in input.split(|b| *b == sep) {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(p) => (
                pair.get(..p).unwrap_or_default(),
                pair.get(p + 1..).unwrap_or_default(),
            ),
            None => (pair, &b""[..]),
        };
        let (n, e1) = decode(name);
        let (v, e2) = decode(value);
        invalid |= e1 || e2;
        out.push((n, v));
    }
    (out, invalid)
}

/// URL-decodes (`+` to space); the flag tells whether an invalid escape was kept.
pub(crate) fn decode(input: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(input.len());
    let mut invalid = false;
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        match c {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let v = input.get(i + 1..i + 3).and_then(|d| {
                    let s = std::str::from_utf8(d).ok()?;
                    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return None;
                    }
                    u8::from_str_radix(s, 16).ok()
                });
                match v {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        invalid = true;
                        out.push(c);
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let (args, err) = parse(b"a=1&b=x+y%21&c&&=v&d=%zz", b'&');
        assert!(err);
        assert_eq!(args.len(), 5);
        assert_eq!(args[1], (b"b".to_vec(), b"x y!".to_vec()));
        assert_eq!(args[2], (b"c".to_vec(), b"".to_vec()));
        assert_eq!(args[3], (b"".to_vec(), b"v".to_vec()));
        assert_eq!(args[4].1, b"%zz".to_vec());
    }
}
