//! Normalising transformations: command lines, whitespace, comments, paths.

use super::simple::is_space;

/// `cmdLine`: drops `\ " ' ^`, folds separators to one space, removes spaces before `/` and
/// `(`, lower-cases.
pub(super) fn cmd_line(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut space = false;
    for &a in input {
        match a {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(a);
            }
            _ => {
                out.push(a.to_ascii_lowercase());
                space = false;
            }
        }
    }
    out
}

/// `compressWhitespace`: runs of whitespace (and NBSP) become one space.
pub(super) fn compress_whitespace(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut in_ws = false;
    for &b in input {
        if is_space(b) || b == 0xa0 {
            if !in_ws {
                out.push(b' ');
                in_ws = true;
            }
        } else {
            out.push(b);
            in_ws = false;
        }
    }
    out
}

/// `removeCommentsChar`: drops `/*`, `*/`, `--` and `#`.
pub(super) fn remove_comments_char(input: &[u8]) -> Option<Vec<u8>> {
    if !input.iter().any(|b| matches!(b, b'/' | b'*' | b'-' | b'#')) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        let n = input.get(i + 1).copied();
        match (c, n) {
            (b'/', Some(b'*')) | (b'*', Some(b'/')) | (b'-', Some(b'-')) => i += 2,
            (b'#', _) => i += 1,
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// `replaceComments`: each `/* ... */` (also unterminated) becomes one space.
pub(super) fn replace_comments(input: &[u8]) -> Option<Vec<u8>> {
    memchr::memmem::find(input, b"/*")?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let mut in_comment = false;
    while let Some(&c) = input.get(i) {
        let n = input.get(i + 1).copied();
        if in_comment {
            if c == b'*' && n == Some(b'/') {
                in_comment = false;
                out.push(b' ');
                i += 2;
            } else {
                i += 1;
            }
        } else if c == b'/' && n == Some(b'*') {
            in_comment = true;
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    Some(out)
}

/// `removeComments`: drops `/* */` and `<!-- -->` comments, and everything from `--` or `#`.
pub(super) fn remove_comments(input: &[u8]) -> Option<Vec<u8>> {
    if !input.iter().any(|b| matches!(b, b'/' | b'<' | b'-' | b'#')) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        let rest = input.get(i..).unwrap_or_default();
        if rest.starts_with(b"/*") {
            i = memchr::memmem::find(input.get(i + 2..).unwrap_or_default(), b"*/")
                .map_or(input.len(), |p| i + 2 + p + 2);
        } else if rest.starts_with(b"<!--") {
            i = memchr::memmem::find(input.get(i + 4..).unwrap_or_default(), b"-->")
                .map_or(input.len(), |p| i + 4 + p + 3);
        } else if rest.starts_with(b"--") || c == b'#' {
            // ModSecurity stops at an SQL or shell line comment: the rest is dropped.
            break;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Some(out)
}

/// `normalizePath` (`win`: `normalizePathWin`, backslashes become slashes first): removes `.`
/// segments and empty segments, resolves `..`.
pub(super) fn normalize_path(input: &[u8], win: bool) -> Option<Vec<u8>> {
    let converted;
    let input = if win && input.contains(&b'\\') {
        converted = input
            .iter()
            .map(|&b| if b == b'\\' { b'/' } else { b })
            .collect::<Vec<u8>>();
        converted.as_slice()
    } else {
        if !input.contains(&b'/') && !input.starts_with(b".") {
            return None;
        }
        input
    };
    let absolute = input.first() == Some(&b'/');
    let trailing = input.ends_with(b"/")
        || input.ends_with(b"/.")
        || input.ends_with(b"/..")
        || input == b"."
        || input == b"..";
    let mut stack: Vec<&[u8]> = Vec::new();
    for seg in input.split(|b| *b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if stack.last().is_some_and(|s| *s != b"..") {
                    stack.pop();
                } else if !absolute {
                    stack.push(seg);
                }
            }
            _ => stack.push(seg),
        }
    }
    let mut out = Vec::with_capacity(input.len());
    if absolute {
        out.push(b'/');
    }
    for (k, seg) in stack.iter().enumerate() {
        if k > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(seg);
    }
    if trailing && !stack.is_empty() {
        out.push(b'/');
    }
    Some(out)
}
