//! `multipart/form-data`: parts become `ARGS_POST` (fields) or `FILES`/`FILES_NAMES`/
//! `FILES_SIZES` (uploads); every part header goes to `MULTIPART_PART_HEADERS` under the part
//! name; the strictness flags (`MULTIPART_BOUNDARY_QUOTED`, `..._DATA_BEFORE`, `..._LF_LINE`,
//! `..._HEADER_FOLDING`, `..._INVALID_QUOTING`, `..._UNMATCHED_BOUNDARY`, ...) and
//! `REQBODY_ERROR` are set as ModSecurity sets them.

use crate::variables::{ArgEntry, FileEntry, TxData};

use super::body_error;

/// The boundary of a `multipart/form-data` content type, with the quoted / whitespace flags.
fn boundary(ct: &[u8]) -> Result<(Vec<u8>, bool, bool), &'static str> {
    // The `boundary` parameter: a name after `;` (the value itself may contain the word).
    let mut found: Vec<usize> = Vec::new();
    let mut quoted_value = false;
    for (i, b) in ct.iter().enumerate() {
        if *b == b'"' {
            quoted_value = !quoted_value;
        }
        if *b == b';' && !quoted_value {
            let mut j = i + 1;
            while ct.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            if ct
                .get(j..j + 8)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"boundary"))
            {
                found.push(j);
            }
        }
    }
    let pos = match found.as_slice() {
        [] => return Err("Multipart: Boundary not found in C-T"),
        [p] => *p,
        _ => return Err("Multipart: Multiple boundary parameters in C-T"),
    };
    let mut rest = ct.get(pos + 8..).unwrap_or_default();
    let mut whitespace = false;
    if rest.first().is_some_and(|b| b.is_ascii_whitespace()) {
        whitespace = true;
        rest = rest.trim_ascii_start();
    }
    let Some(r) = rest.strip_prefix(b"=") else {
        return Err("Multipart: Invalid boundary in C-T");
    };
    rest = r;
    if rest.first().is_some_and(|b| b.is_ascii_whitespace()) {
        whitespace = true;
        rest = rest.trim_ascii_start();
    }
    let mut quoted = false;
    let b: Vec<u8> = if let Some(q) = rest.strip_prefix(b"\"") {
        quoted = true;
        let end = memchr::memchr(b'"', q).ok_or("Multipart: Invalid boundary in C-T")?;
        q.get(..end).unwrap_or_default().to_vec()
    } else {
        let end = rest
            .iter()
            .position(|b| *b == b';' || *b == b',' || b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        rest.get(..end).unwrap_or_default().to_vec()
    };
    if b.is_empty() || b.len() > 70 || !b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        return Err("Multipart: Invalid boundary in C-T");
    }
    Ok((b, quoted, whitespace))
}

#[derive(Default)]
struct Part {
    headers: Vec<Vec<u8>>,
    in_headers: bool,
    content: Vec<u8>,
    pending_eol: Vec<u8>,
}

/// A part's name and file name.
type NameAndFile = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Parses a `Content-Disposition` value: (name, filename), or an error message.
fn disposition(value: &[u8], data: &mut TxData) -> Result<NameAndFile, &'static str> {
    let v = value.trim_ascii();
    let lower = v.to_ascii_lowercase();
    if !lower.starts_with(b"form-data") {
        return Err("Multipart: Invalid Content-Disposition header");
    }
    let mut rest = v.get(9..).unwrap_or_default();
    let (mut name, mut filename) = (None, None);
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            break;
        }
        match rest.strip_prefix(b";") {
            Some(r) => rest = r.trim_ascii_start(),
            None => {
                data.multipart.missing_semicolon = true;
                return Err("Multipart: Invalid Content-Disposition header (missing semicolon)");
            }
        }
        if rest.is_empty() {
            break;
        }
        let eq =
            memchr::memchr(b'=', rest).ok_or("Multipart: Invalid Content-Disposition header")?;
        let pname = rest
            .get(..eq)
            .unwrap_or_default()
            .trim_ascii()
            .to_ascii_lowercase();
        rest = rest.get(eq + 1..).unwrap_or_default().trim_ascii_start();
        let value: Vec<u8>;
        if let Some(q) = rest.strip_prefix(b"\"") {
            let mut out = Vec::new();
            let mut i = 0;
            let mut closed = false;
            while let Some(&c) = q.get(i) {
                if c == b'\\' && matches!(q.get(i + 1), Some(b'"' | b'\\')) {
                    out.push(q.get(i + 1).copied().unwrap_or(b'\\'));
                    i += 2;
                } else if c == b'"' {
                    closed = true;
                    i += 1;
                    break;
                } else {
                    out.push(c);
                    i += 1;
                }
            }
            if !closed {
                data.multipart.invalid_quoting = true;
                return Err("Multipart: Invalid quoting in Content-Disposition");
            }
            value = out;
            rest = q.get(i..).unwrap_or_default();
        } else {
            if rest.first() == Some(&b'\'') {
                data.multipart.invalid_quoting = true;
            }
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            value = rest.get(..end).unwrap_or_default().trim_ascii().to_vec();
            if value.contains(&b'"') || value.contains(&b'\'') {
                data.multipart.invalid_quoting = true;
            }
            rest = rest.get(end..).unwrap_or_default();
        }
        match pname.as_slice() {
            b"name" => {
                if name.is_some() {
                    return Err("Multipart: Duplicate Content-Disposition name");
                }
                name = Some(value);
            }
            b"filename" | b"filename*" => {
                if filename.is_some() && pname == b"filename" {
                    return Err("Multipart: Duplicate Content-Disposition filename");
                }
                filename = Some(value);
            }
            _ => return Err("Multipart: Invalid Content-Disposition parameter"),
        }
    }
    Ok((name, filename))
}

fn finish(data: &mut TxData, part: Part) -> Result<(), &'static str> {
    let mut name = None;
    let mut filename = None;
    let mut has_cd = false;
    for h in &part.headers {
        let Some(colon) = memchr::memchr(b':', h) else {
            return Err("Multipart: Invalid part header (colon missing)");
        };
        let hname = h.get(..colon).unwrap_or_default().trim_ascii();
        let hval = h.get(colon + 1..).unwrap_or_default();
        if hname.eq_ignore_ascii_case(b"content-disposition") {
            if has_cd {
                return Err("Multipart: Duplicate Content-Disposition header");
            }
            has_cd = true;
            let (n, f) = disposition(hval, data)?;
            name = n;
            filename = f;
        }
    }
    if !has_cd {
        return Err("Multipart: Part missing Content-Disposition header");
    }
    let name = name.unwrap_or_default();
    for h in part.headers {
        data.part_headers.push((name.clone(), h));
    }
    match filename {
        Some(f) => data.files.push(FileEntry {
            field: name,
            filename: f,
            size: part.content.len(),
        }),
        None => data.args.push(ArgEntry {
            name,
            value: part.content,
            post: true,
        }),
    }
    Ok(())
}

/// Parses a multipart body into `data`.
pub(crate) fn parse(data: &mut TxData, body: &[u8], content_type: &[u8]) {
    let (b, quoted, ws) = match boundary(content_type) {
        Ok(x) => x,
        Err(msg) => return body_error(data, msg),
    };
    data.multipart.boundary_quoted = quoted;
    data.multipart.boundary_whitespace = ws;
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(&b);
    let mut part: Option<Part> = None;
    let mut seen_boundary = false;
    let mut done = false;
    let (mut crlf, mut lf) = (false, false);
    for raw in body.split_inclusive(|c| *c == b'\n') {
        let (line, eol): (&[u8], &[u8]) = if let Some(l) = raw.strip_suffix(b"\r\n") {
            crlf = true;
            (l, b"\r\n")
        } else if let Some(l) = raw.strip_suffix(b"\n") {
            lf = true;
            (l, b"\n")
        } else {
            (raw, b"")
        };
        if done {
            if !raw.trim_ascii().is_empty() {
                data.multipart.data_after = true;
            }
            continue;
        }
        if let Some(after) = line.strip_prefix(delim.as_slice()) {
            let after_trim = after.trim_ascii_end();
            if after_trim.is_empty() || after_trim == b"--" {
                if let Some(p) = part.take() {
                    if p.in_headers {
                        return body_error(data, "Multipart: Part headers not terminated");
                    }
                    if let Err(msg) = finish(data, p) {
                        return body_error(data, msg);
                    }
                }
                seen_boundary = true;
                if after_trim == b"--" {
                    done = true;
                } else {
                    part = Some(Part {
                        in_headers: true,
                        ..Part::default()
                    });
                }
                continue;
            }
            data.multipart.unmatched_boundary = true;
        }
        let Some(p) = part.as_mut() else {
            if !seen_boundary && !raw.trim_ascii().is_empty() {
                data.multipart.data_before = true;
            }
            continue;
        };
        if p.in_headers {
            if line.is_empty() {
                p.in_headers = false;
                continue;
            }
            if line.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
                data.multipart.header_folding = true;
                match p.headers.last_mut() {
                    Some(h) => {
                        h.push(b' ');
                        h.extend_from_slice(line.trim_ascii());
                    }
                    None => data.multipart.invalid_header_folding = true,
                }
                continue;
            }
            p.headers.push(line.to_vec());
        } else {
            let pending = std::mem::take(&mut p.pending_eol);
            p.content.extend_from_slice(&pending);
            p.content.extend_from_slice(line);
            p.pending_eol = eol.to_vec();
        }
    }
    data.multipart.crlf_lf_lines = crlf && lf;
    data.multipart.lf_line = lf;
    if !done {
        if seen_boundary {
            body_error(data, "Multipart: Final boundary missing");
        } else {
            body_error(data, "Multipart: No boundaries found in payload");
        }
    }
}
