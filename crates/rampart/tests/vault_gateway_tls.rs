//! `gateway.tls = "vault"` end to end, through the real binary: `rampart up` creates the
//! missing certificate in the vault and the gateway serves exactly the vault's current version
//! (DER and x5t compared with what the Azure API returns); a new version made through the
//! Azure API is served to new connections without a restart while a keep-alive connection
//! opened before keeps working; a disabled new version is refused (audited) and the previous
//! one stays in service; a config without `tls_certificate` is refused with file, line and key.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rampart_test_support::http1::keep_alive_get;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

mod common;
use common::{RunningPlane, audit};

const CONFIG: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n[gateway]\nlisten = \"127.0.0.1:0\"\n\
    tls = \"vault\"\ntls_certificate = \"Edge-Cert\"\n[demo]\nlisten = \"127.0.0.1:0\"\n\
    [identity]\nlisten = \"127.0.0.1:0\"\nmanaged_identity_listen = \"127.0.0.1:0\"\n\
    [vault]\nlisten = \"127.0.0.1:0\"\n";

/// Opens a TLS connection to the gateway trusting only `trusted` (self-signed DER
/// certificates); returns it with the leaf the gateway presented.
async fn connect(addr: &str, trusted: &[Vec<u8>]) -> (TlsStream<TcpStream>, Vec<u8>) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for der in trusted {
        roots.add(der.clone().into()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (stream, leaf)
}

/// The certificate's latest version from the Azure API: (version id, DER, x5t).
async fn latest(plane: &RunningPlane, token: &str) -> (String, Vec<u8>, String) {
    let (status, body) = plane
        .vault()
        .call("GET", "/certificates/Edge-Cert", Some(token), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let der = STANDARD.decode(body["cer"].as_str().unwrap()).unwrap();
    let version = body["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    (version, der, body["x5t"].as_str().unwrap().to_owned())
}

fn sha1_x5t(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// New connections until one presents `want` (the watcher checks every few seconds).
async fn wait_until_served(addr: &str, trusted: &[Vec<u8>], want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, leaf) = connect(addr, trusted).await;
        if leaf == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never served the new version"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn audit_lines(data_dir: &Path, action: &str) -> String {
    let output = audit(
        data_dir,
        &[
            "tail",
            "-n",
            "1000",
            "--filter",
            &format!("action={action}"),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn the_gateway_serves_the_vaults_certificate_and_swaps_new_versions_in() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("rampart.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let plane = RunningPlane::launch(config, temp.path().join("data"));
    assert!(
        plane
            .banner
            .contains("vault certificate \"Edge-Cert\" in vault \"default\"")
            && plane.banner.contains("created now"),
        "{}",
        plane.banner
    );
    let gateway = plane
        .field("gateway ")
        .trim_start_matches("https://")
        .to_owned();
    let (token, _) = plane.vault_workload("certs", "Key Vault Certificates Officer");

    // The served certificate is the vault's current version.
    let (first_version, first_der, first_x5t) = latest(&plane, &token).await;
    assert!(
        plane.banner.contains(&first_version),
        "the banner names another version:\n{}",
        plane.banner
    );
    let (mut kept, served) = connect(&gateway, std::slice::from_ref(&first_der)).await;
    assert_eq!(served, first_der, "the gateway serves another certificate");
    assert_eq!(sha1_x5t(&served), first_x5t);
    assert_eq!(keep_alive_get(&mut kept, "/echo/before").await, 200);
    // The public copy the banner points at is the same certificate.
    let copy = std::fs::read(plane.field("gateway cert PEM")).unwrap();
    let copied = rustls_pemfile::certs(&mut copy.as_slice())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(copied.as_ref(), first_der.as_slice());

    // A new version through the Azure API, under the policy `up` gave it (a new key).
    let (status, policy) = plane
        .vault()
        .call("GET", "/certificates/Edge-Cert/policy", Some(&token), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{policy}");
    assert_eq!(policy["issuer"]["name"], "Self", "{policy}");
    let (status, body) = plane
        .vault()
        .call(
            "POST",
            "/certificates/Edge-Cert/create",
            Some(&token),
            Some(serde_json::json!({ "policy": policy })),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let (second_version, second_der, second_x5t) = latest(&plane, &token).await;
    assert_ne!(second_version, first_version);
    assert_ne!(second_der, first_der);
    let both = [first_der.clone(), second_der.clone()];
    wait_until_served(&gateway, &both, &second_der).await;
    let (_, served) = connect(&gateway, &both).await;
    assert_eq!(sha1_x5t(&served), second_x5t);
    // The connection opened before the swap still works, on its original certificate.
    assert_eq!(keep_alive_get(&mut kept, "/echo/after").await, 200);
    assert_eq!(
        kept.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
        first_der.as_slice()
    );
    assert!(audit_lines(&plane.data_dir, "gateway.certificate_swap").contains(&second_version));

    // A disabled new version is never served: the previous one stays, the refusal is audited.
    let (status, body) = plane
        .vault()
        .call(
            "POST",
            "/certificates/Edge-Cert/create",
            Some(&token),
            Some(serde_json::json!({ "policy": policy, "attributes": { "enabled": false } })),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let (third_version, third_der, _) = latest(&plane, &token).await;
    assert_ne!(third_version, second_version);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let refused = audit_lines(&plane.data_dir, "gateway.certificate_swap");
        if refused
            .lines()
            .any(|line| line.contains(&third_version) && line.contains("disabled"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no refusal audited:\n{refused}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all = [first_der, second_der.clone(), third_der];
    let (mut fresh, served) = connect(&gateway, &all).await;
    assert_eq!(served, second_der, "a disabled version was served");
    assert_eq!(keep_alive_get(&mut fresh, "/echo/still").await, 200);
}

#[test]
fn tls_vault_without_a_certificate_name_is_refused_with_file_line_and_key() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("rampart.toml");
    std::fs::write(
        &config,
        "[admin]\nlisten = \"127.0.0.1:0\"\n[gateway]\ntls = \"vault\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(temp.path().join("data"))
        .arg("up")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3: gateway.tls_certificate: missing, required when gateway.tls = \"vault\"",
            config.display()
        )),
        "{stderr}"
    );
}
