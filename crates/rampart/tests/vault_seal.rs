//! The vault's seal from `rampart up`, end to end through the real binary: the Shamir seal
//! (the plane starts sealed, `rampart vault init|unseal|status` through the admin API, the API
//! answering 503 until a quorum of shares is in, wrong, foreign and repeated shares refused,
//! sealed again after a restart), and the plane's one verifier (a token issued for the gateway
//! is refused by the vault, a token issued for the vault by the gateway and the access API).

mod common;

use std::process::Output;
use std::sync::Arc;

use common::{RunningPlane, VAULT_RESOURCE, VaultHttp, managed_identity_token};
use http::StatusCode;
use rampart_vault::{Barrier, InitMethod};

fn stdout_ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
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

/// `rampart vault status` as (key, value) lines.
fn status(plane: &RunningPlane) -> String {
    stdout_ok(&plane.rampart(&["vault", "status"]))
}

/// A share of a different `init` (another storage), for the foreign-share refusal.
async fn foreign_share() -> String {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(
        rampart_storage::RedbBackend::open(dir.path().join("other.redb"))
            .await
            .unwrap(),
    );
    let output = Barrier::new(backend)
        .init(InitMethod::Shamir {
            shares: 5,
            threshold: 3,
        })
        .await
        .unwrap();
    output.shares[0].as_str().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shamir_seal_through_the_cli_and_a_restart() {
    let mut plane = RunningPlane::start("seal = \"shamir\"\n");
    assert!(
        plane.banner.contains("The vault is SEALED"),
        "{}",
        plane.banner
    );
    assert!(plane.banner.contains("vault init --shares 5 --threshold 3"));
    let before = status(&plane);
    assert!(before.contains("initialized   false"), "{before}");
    assert!(before.contains("sealed        true"), "{before}");
    assert!(before.contains("seal type     -"), "{before}");

    // Sealed: every data request answers the API's 503, token or not.
    let vault = plane.vault();
    let sealed = |(status, body): (StatusCode, serde_json::Value)| {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], "ServiceUnavailable", "{body}");
    };
    sealed(vault.call("GET", "/secrets", None, None).await.unwrap());
    refused(
        &plane.rampart_with_stdin(&["vault", "unseal"], "rvs1-AAAA\n"),
        "not initialized",
    );
    let listed = plane.rampart(&["vault", "list"]);
    assert_eq!(listed.status.code(), Some(1), "{listed:?}");
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("sealed"),
        "{listed:?}"
    );
    // The admin API wants the admin token (the refusal is audited).
    let admin = plane.field("admin");
    let mut stream = std::net::TcpStream::connect(admin.strip_prefix("http://").unwrap()).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"POST /vault/unseal HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 401"), "{answer}");

    // init 5/3: five shares, printed once; the vault stays sealed.
    let init = stdout_ok(&plane.rampart(&["vault", "init", "--shares", "5", "--threshold", "3"]));
    let shares: Vec<String> = init
        .lines()
        .filter_map(|line| line.split_once(": rvs1-").map(|(_, s)| format!("rvs1-{s}")))
        .collect();
    assert_eq!(shares.len(), 5, "{init}");
    refused(
        &plane.rampart(&["vault", "init", "--shares", "3", "--threshold", "2"]),
        "already initialized",
    );
    let after_init = status(&plane);
    assert!(after_init.contains("initialized   true"), "{after_init}");
    assert!(after_init.contains("sealed        true"), "{after_init}");
    assert!(after_init.contains("seal type     shamir"), "{after_init}");
    assert!(
        after_init.contains("threshold     3 of 5 shares"),
        "{after_init}"
    );
    assert!(after_init.contains("progress      0 of 3"), "{after_init}");
    sealed(vault.call("GET", "/secrets", None, None).await.unwrap());

    // Two shares: progress, still sealed; repeated, mistyped and foreign shares are refused
    // without losing the progress.
    let one =
        stdout_ok(&plane.rampart_with_stdin(&["vault", "unseal"], &format!("{}\n", shares[0])));
    assert!(one.contains("unseal progress: 1 of 3"), "{one}");
    refused(
        &plane.rampart_with_stdin(&["vault", "unseal"], &shares[0]),
        "already submitted",
    );
    let mut typo = shares[1].clone().into_bytes();
    let last = typo.len() - 3;
    typo[last] = if typo[last] == b'A' { b'B' } else { b'A' };
    refused(
        &plane.rampart_with_stdin(&["vault", "unseal"], &String::from_utf8(typo).unwrap()),
        "invalid unseal share",
    );
    refused(
        &plane.rampart_with_stdin(&["vault", "unseal"], &foreign_share().await),
        "another vault initialization",
    );
    refused(
        &plane.rampart_with_stdin(&["vault", "unseal"], ""),
        "no share given",
    );
    let two = stdout_ok(&plane.rampart_with_stdin(&["vault", "unseal"], &shares[3]));
    assert!(two.contains("unseal progress: 2 of 3"), "{two}");
    assert!(status(&plane).contains("progress      2 of 3"));
    sealed(vault.call("GET", "/secrets", None, None).await.unwrap());

    // The third share opens it: the default vault exists and the API serves requests.
    let three = stdout_ok(&plane.rampart_with_stdin(&["vault", "unseal"], &shares[4]));
    assert!(three.contains("vault unsealed"), "{three}");
    let open = status(&plane);
    assert!(open.contains("sealed        false"), "{open}");
    let (token, header) = plane.vault_workload("orders-api", "Key Vault Secrets Officer");
    let (status_code, set) = vault
        .set_secret(&token, "db-password", "hunter2")
        .await
        .unwrap();
    assert_eq!(status_code, StatusCode::OK, "{set}");
    let version = set["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    // Vaults through the running plane (the redb file is the plane's).
    let created =
        stdout_ok(&plane.rampart(&["vault", "create", "stamp-9", "--retention-days", "30"]));
    assert!(
        created.contains("created vault stamp-9 (retention 30 days"),
        "{created}"
    );
    refused(&plane.rampart(&["vault", "create", "stamp-9"]), "409");
    refused(
        &plane.rampart(&["vault", "create", "x", "--retention-days", "6"]),
        "400",
    );
    let listed = stdout_ok(&plane.rampart(&["vault", "list"]));
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(names, ["default", "stamp-9"], "{listed}");

    // Restart: sealed again, no progress kept; a quorum of other shares opens it again and
    // the secret is there.
    plane.stop();
    let mut plane = RunningPlane::launch(plane.config.clone(), plane.data_dir.clone());
    assert!(
        plane.banner.contains("The vault is SEALED"),
        "{}",
        plane.banner
    );
    assert!(!plane.banner.contains("vault init"), "{}", plane.banner);
    let restarted = status(&plane);
    assert!(restarted.contains("sealed        true"), "{restarted}");
    assert!(restarted.contains("progress      0 of 3"), "{restarted}");
    let vault = plane.vault();
    // The issuer listens on a new port: a new token for the same workload.
    let token = plane.vault_token(&header);
    sealed(
        vault
            .call("GET", "/secrets/db-password", Some(&token), None)
            .await
            .unwrap(),
    );
    for (share, expected) in [(&shares[1], "1 of 3"), (&shares[2], "2 of 3")] {
        let out = stdout_ok(&plane.rampart_with_stdin(&["vault", "unseal"], share));
        assert!(out.contains(expected), "{out}");
    }
    let out = stdout_ok(&plane.rampart_with_stdin(&["vault", "unseal"], &shares[0]));
    assert!(out.contains("vault unsealed"), "{out}");
    let (status_code, got) = vault
        .call(
            "GET",
            &format!("/secrets/db-password/{version}"),
            Some(&token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status_code, StatusCode::OK, "{got}");
    assert_eq!(got["value"], "hunter2");

    // The audit trail has the init and every unseal step, and never a share.
    plane.stop();
    let audit = stdout_ok(&common::audit(&plane.data_dir, &["tail", "-n", "500"]));
    assert!(audit.contains("vault.init"), "{audit}");
    assert!(audit.contains("vault.unseal"), "{audit}");
    assert!(audit.contains("vault.create"), "{audit}");
    assert!(
        audit.contains("/vault/unseal"),
        "the refused admin call: {audit}"
    );
    for share in &shares {
        assert!(
            !audit.contains(share.as_str()),
            "a share is in the audit trail"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_and_the_gateway_share_one_verifier_but_not_their_audiences() {
    // A bearer route naming no audience: the own issuer's gateway audience is its URL.
    let plane = RunningPlane::start(
        "[[route]]\nname = \"secure\"\npath_prefix = \"/secure\"\n\
         backends = [\"http://127.0.0.1:9\"]\nauth = \"bearer\"\n",
    );
    let issuer = plane.field("identity");
    let (endpoint, header, _) = common::workload(&plane.config, &plane.data_dir, "svc");
    let (gateway_token, oid) = managed_identity_token(&endpoint, &header, &issuer);
    let (vault_token, vault_oid) = managed_identity_token(&endpoint, &header, VAULT_RESOURCE);
    assert_eq!(oid, vault_oid, "one workload, one principal");
    stdout_ok(&plane.rampart(&[
        "access",
        "assign",
        &oid,
        "Key Vault Secrets Officer",
        "--scope",
        "/vaults/default",
    ]));
    let vault = plane.vault();

    // A token of the plane's own issuer, for the gateway: valid, but not for the vault.
    let (status_code, body) = vault.set_secret(&gateway_token, "s1", "v").await.unwrap();
    assert_eq!(status_code, StatusCode::UNAUTHORIZED, "{body}");
    let (status_code, body) = vault.set_secret(&vault_token, "s1", "v").await.unwrap();
    assert_eq!(status_code, StatusCode::OK, "{body}");

    // The gateway lets the gateway-audience token through (to a backend that is down: 502)
    // and refuses the vault's.
    let gateway = VaultHttp::new(&plane.field("gateway"), &plane.data_dir.join("tls/ca.pem"));
    let (status_code, _) = gateway
        .call("GET", "/secure/x", Some(&vault_token), None)
        .await
        .unwrap();
    assert_eq!(status_code, StatusCode::UNAUTHORIZED);
    let (status_code, _) = gateway
        .call("GET", "/secure/x", Some(&gateway_token), None)
        .await
        .unwrap();
    assert!(
        status_code != StatusCode::UNAUTHORIZED && status_code != StatusCode::FORBIDDEN,
        "{status_code}"
    );

    // And the other way round: the access API takes the gateway-audience token (the caller's
    // own elevation requests need no role), not the vault's.
    stdout_ok(&plane.rampart(&["access", "requests", "--token", &gateway_token]));
    refused(
        &plane.rampart(&["access", "requests", "--token", &vault_token]),
        "401",
    );
}
