//! Read-only mode switched on a running plane, through the real binary: `rampart vault
//! read-only on` makes writes answer 503 `ReadOnlyMode` while reads continue, `off` lets
//! writes through again, both switches are audited, and the admin endpoint refuses a caller
//! without the admin token with a JSON 401 that is audited too.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::{RunningPlane, audit, stdout_of};

fn audit_lines(plane: &RunningPlane, filter: &str) -> String {
    let output = audit(&plane.data_dir, &["tail", "-n", "1000", "--filter", filter]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn read_only_mode_is_switched_on_a_running_plane() {
    let plane = RunningPlane::start("");
    let vault = plane.vault();
    let (token, _) = plane.vault_workload("ops", "Key Vault Secrets Officer");
    let (status, body) = vault.set_secret(&token, "db", "one").await.unwrap();
    assert_eq!(status, 200, "{body}");

    let shown = stdout_of(&plane.rampart(&["vault", "read-only", "status"]));
    assert!(shown.starts_with("read-only: off\n"), "{shown}");
    let switched = stdout_of(&plane.rampart(&["vault", "read-only", "on"]));
    assert!(switched.starts_with("read-only: on"), "{switched}");
    assert!(
        switched.contains("at restart: off ([vault] read_only; this switch is not persisted)"),
        "{switched}"
    );

    // Writes are refused with Azure's 503 body; reads continue.
    let (status, body) = vault.set_secret(&token, "db", "two").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "ServiceUnavailable", "{body}");
    assert_eq!(
        body["error"]["innererror"]["code"], "ReadOnlyMode",
        "{body}"
    );
    let (status, body) = vault
        .call("DELETE", "/secrets/db", Some(&token), None)
        .await
        .unwrap();
    assert_eq!(status, 503, "{body}");
    let (status, body) = vault
        .call("GET", "/secrets/db", Some(&token), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], "one");
    let shown = stdout_of(&plane.rampart(&["vault", "read-only", "status"]));
    assert!(shown.starts_with("read-only: on"), "{shown}");

    // Off: writes work again.
    let switched = stdout_of(&plane.rampart(&["vault", "read-only", "off"]));
    assert!(switched.starts_with("read-only: off\n"), "{switched}");
    let (status, body) = vault.set_secret(&token, "db", "three").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (_, body) = vault
        .call("GET", "/secrets/db", Some(&token), None)
        .await
        .unwrap();
    assert_eq!(body["value"], "three");

    let switches = audit_lines(&plane, "action=vault.read_only");
    let on = switches
        .lines()
        .position(|l| l.contains("ALLOW") && l.contains("read_only=\"true\""));
    let off = switches
        .lines()
        .position(|l| l.contains("ALLOW") && l.contains("read_only=\"false\""));
    assert!(
        matches!((on, off), (Some(a), Some(b)) if a < b),
        "{switches}"
    );

    // Without the admin token (none, or a wrong one): a JSON 401, audited; nothing switched.
    let admin = plane
        .field("admin ")
        .trim_start_matches("http://")
        .to_owned();
    for authorization in ["", "Authorization: Bearer rpa_wrong\r\n"] {
        let mut stream = TcpStream::connect(&admin).await.unwrap();
        let body = r#"{"read_only":true}"#;
        let request = format!(
            "PUT /vault/read-only HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             {authorization}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 401"), "{response}");
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "the admin token is required", "{body}");
    }
    let (status, body) = vault.set_secret(&token, "db", "four").await.unwrap();
    assert_eq!(
        status, 200,
        "an unauthenticated call switched read-only on: {body}"
    );
    let denied = audit_lines(&plane, "resource=/vault/read-only");
    assert!(
        denied.lines().filter(|l| l.contains("DENY")).count() >= 2,
        "{denied}"
    );
}
