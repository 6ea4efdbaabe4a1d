//! The Python Azure SDK (`azure-keyvault-certificates` CertificateClient, plus SecretClient for
//! the private key) against the certificates API served over HTTPS in-process: runs
//! `tests/python/test_vault_certificates.py` with pytest in the venv `scripts/test.sh` makes
//! (`$RAMPART_TEST_PYTHON`, default `~/.cache/rampart/venv-identity/bin/python`). The
//! credential is a static token the test authorizer accepts (the end-to-end suite through
//! `rampart up` uses the managed-identity endpoint instead). Fails when the venv is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use common::{Harness, Store};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rampart_vault_api::ApiConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("RAMPART_TEST_PYTHON") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/rampart/venv-identity/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_drives_certificates() {
    let py = python();
    let probe = Command::new(&py)
        .args([
            "-c",
            "import azure.keyvault.certificates, azure.keyvault.secrets, cryptography, pytest",
        ])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "the Azure SDK venv is required (run scripts/test.sh or set RAMPART_TEST_PYTHON): {probe:?}"
    );

    let h = Harness::new(Store::Redb, ApiConfig::default()).await;
    // A CA and a server certificate for localhost.
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "rampart test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let ca_path = h.dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(leaf.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = h.api.router();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                }
            });
        }
    });

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python/test_vault_certificates.py");
    let out = tokio::process::Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&script)
        .env("RAMPART_VAULT_URL", format!("https://localhost:{port}"))
        .env("RAMPART_CA", &ca_path)
        .env("RAMPART_TEST_TOKEN", "allow:sdk-test")
        .current_dir(h.dir.path())
        .output()
        .await
        .unwrap();
    server.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("passed"), "{stdout}");
    h.cleanup().await;
}
