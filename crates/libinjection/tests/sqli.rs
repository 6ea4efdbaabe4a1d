//! SQLi: known payloads with the fingerprints libinjection gives them, and benign inputs.
//!
//! The expected fingerprints were produced by libinjection 3.9.2 (C) on the same inputs.

use rampart_libinjection::detect_sqli;

/// (payload, fingerprint)
const ATTACKS: &[(&str, &str)] = &[
    ("1' OR '1'='1", "s&sos"),
    ("1 OR 1=1", "1&1"),
    ("1' OR 1=1--", "s&1c"),
    ("' OR ''='", "s&sos"),
    ("admin'--", "sc"),
    ("1; DROP TABLE users", "1;Tnn"),
    ("1 UNION SELECT username, password FROM users", "1UEnk"),
    ("' UNION ALL SELECT NULL,NULL,NULL--", "sUEvc"),
    ("1' AND SLEEP(5)--", "s&f(1"),
    ("1 AND 1=1", "1&1"),
    ("' AND 1=0 UNION SELECT 1,2,3 --", "s&1UE"),
    ("1)) OR ((1=1", "1)&(1"),
    ("-1' UNION SELECT @@version --", "sUEvc"),
    ("1' WAITFOR DELAY '0:0:5'--", "sEsc"),
    ("'; EXEC xp_cmdshell('dir')--", "s;Tn("),
    ("1 AND (SELECT COUNT(*) FROM users) > 0", "1&(Ef"),
    ("SELECT * FROM users WHERE id = 1", "Eoknk"),
    ("' OR 'x'='x", "s&sos"),
    ("\" OR \"\"=\"", "s&sos"),
    ("1' ORDER BY 3--", "sB1c"),
    ("1/**/UNION/**/SELECT/**/1", "1UE1"),
    ("1 /*!UNION*/ SELECT 1", "X"),
    ("x' AND extractvalue(1,concat(0x7e,version()))--", "s&f(1"),
    ("1' and benchmark(10000000,md5(1))#", "s&f(1"),
    ("') or ('a'='a", "s)&(s"),
    ("1 || 1=1", "1&1"),
    ("0x41424344 UNION SELECT 1", "1UE1"),
    ("1' INTO OUTFILE '/tmp/x'--", "sksc"),
    ("'||(SELECT version())||'", "s&(Ef"),
    ("1;SELECT pg_sleep(5)", "1;Ef("),
    ("1 ; IF (1=1) WAITFOR DELAY '0:0:5'", "1;T(1"),
    ("1-- ", "1c"),
    ("1234 --", "1c"),
    ("foo' -- sp_password", "sc"),
];

const BENIGN: &[&str] = &[
    "",
    "hello",
    "hello world",
    "john.doe@example.com",
    "O'Reilly",
    "it's a nice day",
    "Mr. O'Brien's pub",
    "123",
    "3.14159",
    "-42",
    "select a product",
    "Select your country",
    "SELECT",
    "union station",
    "1 union",
    "rock and roll",
    "sexy and 17",
    "black & white",
    "Tom & Jerry",
    "drop",
    "c++ programming",
    "\"quoted\" text",
    "The \"best\" one",
    "New York, NY 10001",
    "2024-01-15",
    "https://example.com/path?x=1",
    "price: $10.99",
    "a-b-c",
    "user_name",
    "I'd like 2 apples and 3 oranges",
    "100%",
    "foo -- bar",
    "#hashtag",
    "admin' #",
    "{\"key\": \"value\"}",
    "to be or not to be",
    "@@version",
];

#[test]
fn attacks_have_libinjection_fingerprints() {
    let mut wrong = Vec::new();
    for &(payload, fingerprint) in ATTACKS {
        let got = detect_sqli(payload.as_bytes());
        if got.as_deref() != Some(fingerprint) {
            wrong.push((payload, fingerprint, got));
        }
    }
    assert!(wrong.is_empty(), "(payload, expected, got): {wrong:#?}");
}

#[test]
fn benign_inputs_are_not_sqli() {
    let flagged: Vec<_> = BENIGN
        .iter()
        .filter_map(|b| detect_sqli(b.as_bytes()).map(|fp| (b, fp)))
        .collect();
    assert!(flagged.is_empty(), "false positives: {flagged:?}");
}

#[test]
fn case_and_whitespace_do_not_matter() {
    assert_eq!(detect_sqli(b"1' oR '1'='1").as_deref(), Some("s&sos"));
    assert_eq!(
        detect_sqli(b"1'\tOR\n'1'\x0b=\r'1").as_deref(),
        Some("s&sos")
    );
}

#[test]
fn any_bytes_are_fine() {
    // Invalid UTF-8, NULs, long inputs, and every single byte.
    assert!(detect_sqli(b"\xff\xfe' OR 1=1 -- \x00\x80").is_some());
    for b in 0..=255u8 {
        let _ = detect_sqli(&[b]);
        let _ = detect_sqli(&[b'\'', b, b'\'']);
    }
    let long = "' OR 1=1 /* ".repeat(10_000);
    let _ = detect_sqli(long.as_bytes());
    let slashes = "/".repeat(100_000);
    assert_eq!(detect_sqli(slashes.as_bytes()), None);
}
