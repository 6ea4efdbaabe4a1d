//! `rampart access` end to end through the real binary and a running `rampart up`: the admin
//! assigns roles, a workload (a token from the managed-identity endpoint) requests elevation of
//! an eligible role, cannot approve its own request, an approver without rights cannot either,
//! an Access Administrator can; checks explain themselves; revocation is immediate; every step
//! is in the audit trail.

mod common;

use std::process::Output;

use common::{RunningPlane, workload_token};
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

#[test]
fn elevation_needs_another_principals_approval_and_revocation_is_immediate() {
    let plane = RunningPlane::start("");
    // Without a credential, even a malformed body is a 401 (the body is read after the caller
    // is known).
    let admin = plane.field("admin");
    let mut stream = std::net::TcpStream::connect(admin.strip_prefix("http://").unwrap()).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"POST /access/assignments HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 401"), "{answer}");
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
