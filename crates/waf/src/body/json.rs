//! `application/json`: every scalar becomes an argument named by its path from the root
//! `json` (`json.user.name`, `json.items.0`); numbers and booleans as written, `null` empty.

use serde_json::Value;

/// The arguments of a JSON body, or the parse error.
pub(crate) fn parse(body: &[u8], max_depth: u64) -> Result<Vec<super::Pair>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("JSON parsing error: {e}"))?;
    let mut out = Vec::new();
    walk(&value, "json".to_owned(), 0, max_depth, &mut out)?;
    Ok(out)
}

fn walk(
    v: &Value,
    path: String,
    depth: u64,
    max: u64,
    out: &mut Vec<super::Pair>,
) -> Result<(), String> {
    if depth > max {
        return Err("JSON depth limit exceeded".to_owned());
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                walk(child, format!("{path}.{k}"), depth + 1, max, out)?;
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                walk(child, format!("{path}.{i}"), depth + 1, max, out)?;
            }
        }
        Value::String(s) => out.push((path.into_bytes(), s.as_bytes().to_vec())),
        Value::Number(n) => out.push((path.into_bytes(), n.to_string().into_bytes())),
        Value::Bool(b) => out.push((path.into_bytes(), b.to_string().into_bytes())),
        Value::Null => out.push((path.into_bytes(), Vec::new())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let args = parse(br#"{"a":{"b":"x"},"l":[1,true,null]}"#, 100).unwrap();
        let names: Vec<String> = args
            .iter()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert_eq!(names, ["json.a.b", "json.l.0", "json.l.1", "json.l.2"]);
        assert!(parse(b"{", 100).is_err());
        assert!(parse(b"[[[1]]]", 2).is_err());
    }
}
