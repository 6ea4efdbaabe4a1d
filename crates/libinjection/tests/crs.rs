//! The CRS regression tests of the rules that call libinjection: 942101 (`@detectSQLi` on the
//! path), 941100 (`@detectXSS` on arguments, cookies, User-Agent, XML) and 941101
//! (`@detectXSS` on the path and Referer), plus any test naming 942100.
//!
//! A small model of the WAF: each test's request is split into the variables the rule
//! inspects, each value goes through the rule's transformations (URL decoding with `%uXXXX`
//! and `+`, NUL removal; for XSS also HTML entity decoding), and the rule matches when
//! libinjection flags any value. Tests expecting the rule must match, tests excluding it must
//! not.

use std::path::Path;

use rampart_libinjection::{detect_sqli, detect_xss};
use serde_yaml_ng::Value;

/// A request as the tests describe it.
#[derive(Debug, Default)]
struct Request {
    uri: String,
    data: Option<String>,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }

    fn is_xml(&self) -> bool {
        self.header("Content-Type")
            .is_some_and(|c| c.contains("xml"))
            || self
                .data
                .as_deref()
                .is_some_and(|d| d.trim_start().starts_with("<?xml"))
    }

    /// ARGS_NAMES and ARGS: query string and url-encoded body (parser-decoded).
    fn args(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut add = |qs: &str| {
            for pair in qs.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                out.push(url_decode(k.as_bytes()));
                out.push(url_decode(v.as_bytes()));
            }
        };
        if let Some((_, qs)) = self.uri.split_once('?') {
            add(qs);
        }
        if let Some(data) = self.data.as_deref().filter(|_| !self.is_xml()) {
            add(data);
        }
        out
    }

    /// REQUEST_COOKIES_NAMES and REQUEST_COOKIES.
    fn cookies(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (k, v) in &self.headers {
            if k.eq_ignore_ascii_case("Cookie") {
                for c in v.split(';') {
                    let (n, val) = c.trim().split_once('=').unwrap_or((c.trim(), ""));
                    out.push(n.as_bytes().to_vec());
                    out.push(val.as_bytes().to_vec());
                }
            }
        }
        out
    }

    /// XML:/* and XML://@*: text and attribute values of an XML body, entities decoded.
    fn xml(&self) -> Vec<Vec<u8>> {
        let Some(data) = self.data.as_deref().filter(|_| self.is_xml()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // Attribute values.
        for part in data.split('"').skip(1).step_by(2) {
            out.push(entity_decode(part.as_bytes()));
        }
        // Text between tags.
        for part in data.split('>').skip(1) {
            let text = part.split('<').next().unwrap_or("");
            if !text.trim().is_empty() {
                out.push(entity_decode(text.as_bytes()));
            }
        }
        out
    }
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// URL decoding as ModSecurity's `urlDecodeUni`: `%XX`, `%uXXXX` (low byte), `+` is a space.
fn url_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 6 <= s.len() && matches!(s[i + 1], b'u' | b'U') => {
                let digits: Option<Vec<u8>> = s[i + 2..i + 6].iter().map(|&b| hex(b)).collect();
                match digits {
                    Some(d) => {
                        out.push((d[2] << 4) | d[3]);
                        i += 6;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'%' => {
                match (
                    s.get(i + 1).copied().and_then(hex),
                    s.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h << 4) | l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A basic `htmlEntityDecode`: the common named entities and numeric ones.
fn entity_decode(s: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(s);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_ref();
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "amp" => Some('&'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, n)) => {
                out.push(c);
                rest = &rest[n..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into_bytes()
}

fn sqli_transform(v: &[u8]) -> Vec<u8> {
    url_decode(v).into_iter().filter(|&b| b != 0).collect()
}

fn xss_transform(v: &[u8]) -> Vec<u8> {
    entity_decode(&url_decode(v))
        .into_iter()
        .filter(|&b| b != 0)
        .collect()
}

/// The values a rule inspects, before its transformations.
fn targets(rule: u32, req: &Request) -> Vec<Vec<u8>> {
    let header = |name: &str| req.header(name).map(|h| h.as_bytes().to_vec());
    let path = url_decode(req.path().as_bytes());
    let basename = path.rsplit(|&b| b == b'/').next().unwrap_or(&[]).to_vec();
    let mut out = Vec::new();
    match rule {
        942100 | 941100 => {
            out.extend(req.cookies());
            out.extend(header("User-Agent"));
            if rule == 942100 {
                out.extend(header("Referer"));
            }
            out.extend(req.args());
            out.extend(req.xml());
        }
        942101 => {
            out.push(basename);
            out.push(path);
        }
        941101 => {
            out.push(path);
            out.extend(header("Referer"));
        }
        _ => {}
    }
    out
}

fn rule_matches(rule: u32, req: &Request) -> bool {
    targets(rule, req).iter().any(|v| {
        if rule / 100 == 9421 {
            detect_sqli(&sqli_transform(v)).is_some()
        } else {
            detect_xss(&xss_transform(v))
        }
    })
}

fn ids(v: &Value, key: &str) -> Vec<u32> {
    v.get(key)
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(Value::as_u64)
                .filter_map(|n| u32::try_from(n).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn request(input: &Value) -> Request {
    let s = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
    let headers = input
        .get("headers")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Request {
        uri: s("uri").unwrap_or_default(),
        data: s("data"),
        headers,
    }
}

/// (rule, test id, expected, got) for each stage of the files that name a libinjection rule.
fn outcomes(dir: &Path) -> Vec<(u32, String, bool, bool)> {
    const RULES: [u32; 4] = [942100, 942101, 941100, 941101];
    let mut out = Vec::new();
    for sub in [
        "REQUEST-942-APPLICATION-ATTACK-SQLI",
        "REQUEST-941-APPLICATION-ATTACK-XSS",
    ] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable test file");
            let doc: Value = serde_yaml_ng::from_str(&text).expect("valid yaml");
            let name = file.file_stem().and_then(|n| n.to_str()).unwrap_or("?");
            let tests = doc.get("tests").and_then(Value::as_sequence).cloned();
            for test in tests.unwrap_or_default() {
                let id = test.get("test_id").and_then(Value::as_u64).unwrap_or(0);
                let stages = test.get("stages").and_then(Value::as_sequence).cloned();
                for stage in stages.unwrap_or_default() {
                    let (Some(input), Some(log)) = (
                        stage.get("input"),
                        stage.get("output").and_then(|o| o.get("log")),
                    ) else {
                        continue;
                    };
                    let req = request(input);
                    for rule in RULES {
                        let expect = ids(log, "expect_ids").contains(&rule);
                        let exclude = ids(log, "no_expect_ids").contains(&rule);
                        if expect || exclude {
                            let got = rule_matches(rule, &req);
                            out.push((rule, format!("{name}-{id}"), expect, got));
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn crs_regression_tests_of_the_libinjection_rules() {
    let Some(shared) = rampart_test_support::shared::shared_dir() else {
        eprintln!("shared data not found: skipped");
        return;
    };
    let dir = shared.join("crs/v4.28.0/tests/regression/tests");
    let results = outcomes(&dir);
    assert!(
        results.len() >= 20,
        "too few CRS tests found in {}",
        dir.display()
    );
    for rule in [942100, 942101, 941100, 941101] {
        let of_rule: Vec<_> = results.iter().filter(|r| r.0 == rule).collect();
        let attacks = of_rule.iter().filter(|r| r.2).count();
        let detected = of_rule.iter().filter(|r| r.2 && r.3).count();
        let benign = of_rule.len() - attacks;
        let clean = of_rule.iter().filter(|r| !r.2 && !r.3).count();
        eprintln!(
            "rule {rule}: {detected}/{attacks} attacks detected, {clean}/{benign} negatives clean"
        );
    }
    let (sqli_attacks, sqli_seen) = sqli_suite_coverage(&dir);
    eprintln!(
        "942100 model over all REQUEST-942 attack stages (informational): {sqli_seen}/{sqli_attacks}"
    );
    let failures: Vec<_> = results.iter().filter(|r| r.2 != r.3).collect();
    assert!(failures.is_empty(), "CRS tests failing: {failures:?}");
}

/// Stages of the SQLi suite expecting some 942xxx rule, and how many 942100 would flag.
fn sqli_suite_coverage(dir: &Path) -> (usize, usize) {
    let Ok(entries) = std::fs::read_dir(dir.join("REQUEST-942-APPLICATION-ATTACK-SQLI")) else {
        return (0, 0);
    };
    let (mut total, mut seen) = (0, 0);
    for file in entries.filter_map(Result::ok).map(|e| e.path()) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(doc) = serde_yaml_ng::from_str::<Value>(&text) else {
            continue;
        };
        let tests = doc.get("tests").and_then(Value::as_sequence).cloned();
        for test in tests.unwrap_or_default() {
            let stages = test.get("stages").and_then(Value::as_sequence).cloned();
            for stage in stages.unwrap_or_default() {
                let (Some(input), Some(log)) = (
                    stage.get("input"),
                    stage.get("output").and_then(|o| o.get("log")),
                ) else {
                    continue;
                };
                if ids(log, "expect_ids").iter().any(|id| id / 1000 == 942) {
                    total += 1;
                    let req = request(input);
                    if rule_matches(942100, &req) || rule_matches(942101, &req) {
                        seen += 1;
                    }
                }
            }
        }
    }
    (total, seen)
}

#[test]
fn url_decoding_model() {
    assert_eq!(url_decode(b"a%20b+c%u0041%zz%"), b"a b cA%zz%");
    assert_eq!(
        entity_decode(b"&lt;x&gt; &#x41;&#66;&amp;&bogus;"),
        b"<x> AB&&bogus;"
    );
}
