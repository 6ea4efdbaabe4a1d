//! `rampart access` end to end through the real binary and a running `rampart up`: the admin
//! assigns roles, a workload (a token from the managed-identity endpoint) requests elevation of
//! an eligible role, cannot approve its own request, an approver without rights cannot either,
//! an Access Administrator can; checks explain themselves; revocation is immediate; every step
//! is in the audit trail.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Output;

use base64::Engine;
use common::RunningPlane;
use serde_json::Value;

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn refused(output: &Output, needle: &str) {
    assert_eq!(
        output.status.code(),
        Some(2),
        "expected a refusal: {output:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(needle), "expected {needle:?} in {stderr}");
}

/// A workload's token from the managed-identity endpoint (App Service protocol), and its
/// principal id (the token's `oid`).
fn workload_token(plane: &RunningPlane, name: &str, resource: &str) -> (String, String) {
    let added = plane.rampart(&["identity", "workload", "add", name]);
    assert!(added.status.success(), "{added:?}");
    let text = String::from_utf8(added.stdout).unwrap();
    let endpoint = text
        .lines()
        .find_map(|l| l.strip_prefix("IDENTITY_ENDPOINT="))
        .unwrap();
    let header = text
        .lines()
        .find_map(|l| l.strip_prefix("IDENTITY_HEADER="))
        .unwrap();
    let rest = endpoint.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path}?resource={resource}&api-version=2019-08-01 HTTP/1.0\r\nHost: {host}\r\n\
         X-IDENTITY-HEADER: {header}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let token = serde_json::from_str::<Value>(body).unwrap()["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {response}"))
        .to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    (token, claims["oid"].as_str().unwrap().to_owned())
}

#[test]
fn elevation_needs_another_principals_approval_and_revocation_is_immediate() {
    let plane = RunningPlane::start("");
    let issuer = plane.field("identity");
    let (alice_token, alice) = workload_token(&plane, "alice", &issuer);
    let (bob_token, bob) = workload_token(&plane, "bob", &issuer);
    let scope = "/vaults/orders";
    let secret = "/vaults/orders/secrets/db-password";
    let set_secret = "Microsoft.KeyVault/vaults/secrets/setSecret/action";

    // Alice is only eligible: the check says so.
    let eligible = json_of(&plane.rampart(&[
        "access",
        "assign",
        &alice,
        "Key Vault Secrets Officer",
        "--scope",
        scope,
        "--eligible",
    ]));
    assert_eq!(eligible["principal"], alice.as_str());
    let before = json_of(&plane.rampart(&["access", "check", &alice, set_secret, secret]));
    assert_eq!(before["allowed"], false);
    assert!(before["reason"].to_string().contains("ligible"), "{before}");

    // Alice asks; neither she nor Bob (no rights yet) can approve.
    let request = json_of(&plane.rampart(&[
        "access",
        "request",
        "Key Vault Secrets Officer",
        "--scope",
        scope,
        "--for",
        "1h",
        "--reason",
        "rotate the db password",
        "--token",
        &alice_token,
    ]));
    let id = request["id"].as_str().unwrap().to_owned();
    refused(
        &plane.rampart(&["access", "approve", &id, "--token", &alice_token]),
        "403",
    );
    refused(
        &plane.rampart(&["access", "approve", &id, "--token", &bob_token]),
        "403",
    );
    // A request over the role's maximum is refused outright.
    refused(
        &plane.rampart(&[
            "access",
            "request",
            "Key Vault Secrets Officer",
            "--scope",
            scope,
            "--for",
            "72h",
            "--reason",
            "too long",
            "--token",
            &alice_token,
        ]),
        "refused",
    );

    // The admin makes Bob an Access Administrator; Bob approves.
    json_of(&plane.rampart(&[
        "access",
        "assign",
        &bob,
        "Rampart Access Administrator",
        "--scope",
        "/",
    ]));
    let approval = json_of(&plane.rampart(&["access", "approve", &id, "--token", &bob_token]));
    let assignment = approval["assignment"]["id"].as_str().unwrap().to_owned();
    let during = json_of(&plane.rampart(&["access", "check", &alice, set_secret, secret]));
    assert_eq!(during["allowed"], true, "{during}");

    // Alice sees her own requests.
    let mine = json_of(&plane.rampart(&["access", "requests", "--token", &alice_token]));
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");

    // Revocation takes effect at once.
    json_of(&plane.rampart(&["access", "revoke", &assignment]));
    let after = json_of(&plane.rampart(&["access", "check", &alice, set_secret, secret]));
    assert_eq!(after["allowed"], false, "{after}");

    // Without the admin token or a valid token, nothing.
    refused(
        &plane.rampart(&["access", "list", "--token", "not-a-token"]),
        "401",
    );

    let tail = plane.rampart(&["audit", "tail", "-n", "200"]);
    let trail = String::from_utf8_lossy(&tail.stdout);
    for action in [
        "access.assign",
        "access.request",
        "access.approve",
        "access.revoke",
    ] {
        assert!(
            trail.contains(action),
            "no {action} in the audit trail:\n{trail}"
        );
    }
}
