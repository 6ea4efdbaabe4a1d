//! XSS: payloads libinjection flags, and HTML-ish text it does not.

use rampart_libinjection::detect_xss;

const ATTACKS: &[&str] = &[
    "<script>alert(1)</script>",
    "<ScRiPt>alert(1)</sCrIpT>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<svg onload=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"&#106;avascript:alert(1)\">",
    "<a href=vbscript:msgbox(1)>",
    "<form action=\"javascript:alert(1)\">",
    "<math><a xlink:href=\"javascript:alert(1)\">",
    "<img src=\"data:image/svg+xml,<svg onload=alert(1)>\">",
    // injected into an attribute value
    "\" onmouseover=\"alert(1)",
    "' onfocus='alert(1)' autofocus='",
    "x onclick=alert(1)",
    "<iframe src=\"//evil\">",
    "<body onload=alert(1)>",
    "<div style=\"background:url(javascript:alert(1))\">",
    "<object data=\"x\">",
    "<embed src=x>",
    "<meta http-equiv=refresh content=0>",
    "<link rel=stylesheet href=x>",
    "<base href=//evil/>",
    "<input onfocus=alert(1) autofocus>",
    "<xss onbeforehellfreezes=alert(1)>",
    "<isindex action=javascript:alert(1)>",
    "<!DOCTYPE html>",
    "<!--[if IE]><script>alert(1)</script><![endif]-->",
    "<?import namespace=x>",
    "<!-- x ` -->",
];

const BENIGN: &[&str] = &[
    "",
    "hello world",
    "a < b and c > d",
    "<b>bold</b>",
    "<p>paragraph</p>",
    "</p>",
    "<br/>",
    "<i>italic</i>",
    "<a href=\"https://example.com\">link</a>",
    "<img src=\"/logo.png\" alt=\"logo\">",
    "<div class=\"x\">text</div>",
    "<span title='x'>y</span>",
    "x < 3",
    "<3 you",
    "1 + 1 = 2",
    "email@example.com",
    "I said \"hi\" and 'bye'",
    "onion rings",
    "on the other hand",
    "java is a language",
    "data science",
    "path/to/file.txt",
    // libinjection only judges URLs inside URL attributes
    "javascript:alert(1)",
];

#[test]
fn attacks_are_xss() {
    let missed: Vec<_> = ATTACKS
        .iter()
        .filter(|a| !detect_xss(a.as_bytes()))
        .collect();
    assert!(missed.is_empty(), "missed: {missed:#?}");
}

#[test]
fn benign_html_is_not_xss() {
    let flagged: Vec<_> = BENIGN.iter().filter(|b| detect_xss(b.as_bytes())).collect();
    assert!(flagged.is_empty(), "false positives: {flagged:#?}");
}

#[test]
fn any_bytes_are_fine() {
    for b in 0..=255u8 {
        let _ = detect_xss(&[b]);
        let _ = detect_xss(&[b'<', b]);
        let _ = detect_xss(&[b'<', b'a', b' ', b, b'=', b]);
    }
    // Deep, repetitive inputs: no recursion, linear time.
    let slashes = format!("<a {}", "/".repeat(200_000));
    assert!(!detect_xss(slashes.as_bytes()));
    let comments = "<!--".repeat(50_000);
    let _ = detect_xss(comments.as_bytes());
    let attrs = "<a b=c ".repeat(50_000);
    assert!(!detect_xss(attrs.as_bytes()));
}
