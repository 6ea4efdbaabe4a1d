//! The certificates service against redb and PostgreSQL (`$RAMPART_TEST_POSTGRES_URL`):
//! self-signed creation checked with `openssl`, the `Unknown`-issuer CSR signed by a test CA
//! (rcgen) and merged, PEM and password-protected PKCS#12 import (files made by
//! `openssl pkcs12 -export`), the linked managed key and secret, policy, soft delete, recover,
//! purge and contacts; the lifetime-action scheduler's sweep with a moved clock (AutoRenew,
//! EmailContacts once per version) and two schedulers racing on one store (PostgreSQL: two
//! connection pools), which must renew each due certificate exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rampart_vault::certificates::{
    Certificates, Contact, ImportCertificate, NewCertificate, Policy, VaultInfo, refuse_managed,
};
use rampart_vault::{ObjectKind, VaultError, VersionedStore};
use x509_parser::prelude::FromDer as _;
use zeroize::Zeroizing;

fn vault() -> VaultInfo {
    VaultInfo {
        name: "stamp1".into(),
        retention_days: 7,
        purge_protection: false,
        geography: "local".into(),
        created: 0,
    }
}

async fn service(ctx: &common::Ctx) -> Certificates {
    let barrier = ctx.init_key_file().await;
    Certificates::new(VersionedStore::new(barrier))
}

fn policy(json: serde_json::Value) -> Policy {
    serde_json::from_value(json).unwrap()
}

/// Runs openssl with `args` in `dir`; returns stdout, panics with stderr on failure.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn sha1_b64url(der: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

async fn self_signed_certificate_matches_its_policy(ctx: &common::Ctx) {
    let certs = service(ctx).await;
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    for (name, key_props, key_text) in [
        (
            "web-rsa",
            serde_json::json!({"kty": "RSA", "key_size": 2048}),
            "Public-Key: (2048 bit)",
        ),
        (
            "web-ec",
            serde_json::json!({"kty": "EC", "crv": "P-384"}),
            "NIST CURVE: P-384",
        ),
    ] {
        let op = certs
            .create(
                &v,
                name,
                NewCertificate {
                    policy: policy(serde_json::json!({
                        "key_props": key_props,
                        "x509_props": {
                            "subject": "CN=app.example.com, O=Contoso",
                            "sans": {"dns_names": ["app.example.com", "www.example.com"],
                                     "emails": ["ops@example.com"], "upns": ["svc@example.com"]},
                            "validity_months": 6,
                            "ekus": ["1.3.6.1.5.5.7.3.1"],
                        },
                        "issuer": {"name": "Self"},
                    })),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(op.status, "completed", "{name}");
        assert_eq!(op.issuer_name, "Self");
        let cert = certs.get(&v.name, name, None).await.unwrap();
        assert_eq!(Some(&cert.version), op.target_version.as_ref());
        assert_eq!(cert.x5t, sha1_b64url(&cert.cer));

        // What openssl sees.
        std::fs::write(dir.path().join("c.pem"), pem(&cert.cer)).unwrap();
        let text =
            openssl(dir.path(), &["x509", "-in", "c.pem", "-noout", "-text"]).replace(" = ", "=");
        assert!(text.contains("CN=app.example.com"), "{text}");
        assert!(text.contains("O=Contoso"), "{text}");
        assert!(
            text.contains("DNS:app.example.com") && text.contains("DNS:www.example.com"),
            "{text}"
        );
        assert!(text.contains("email:ops@example.com"), "{text}");
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        assert!(text.contains(key_text), "{name}: {text}");
        let verify = openssl(
            dir.path(),
            &[
                "verify",
                "-CAfile",
                "c.pem",
                "-purpose",
                "sslserver",
                "c.pem",
            ],
        );
        assert!(verify.contains("c.pem: OK"), "signature: {verify}");

        // Validity: six calendar months from now.
        let nbf = cert.attributes.not_before.unwrap();
        let exp = cert.attributes.expires.unwrap();
        let days = (exp - nbf) / 86_400;
        assert!((180..=185).contains(&days), "6 months = {days} days");
        let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&cert.cer).unwrap();
        assert_eq!(parsed.validity().not_after.timestamp(), exp);

        // The linked key and secret: same version, managed.
        let store = certs.store();
        let key = store
            .get_version(&v.name, ObjectKind::Key, name, None)
            .await
            .unwrap();
        let secret = store
            .get_version(&v.name, ObjectKind::Secret, name, None)
            .await
            .unwrap();
        assert_eq!(key.version, cert.version);
        assert_eq!(secret.version, cert.version);
        assert!(key.attributes.managed && secret.attributes.managed);
        assert_eq!(
            secret.attributes.content_type.as_deref(),
            Some("application/x-pkcs12")
        );
        // The secret is a PFX (empty password) holding the private key and the certificate.
        let pfx = STANDARD.decode(secret.value.as_slice()).unwrap();
        std::fs::write(dir.path().join("s.pfx"), &pfx).unwrap();
        let dump = openssl(
            dir.path(),
            &["pkcs12", "-in", "s.pfx", "-passin", "pass:", "-nodes"],
        );
        assert!(dump.contains("BEGIN PRIVATE KEY"), "{name}");
        assert!(
            dump.contains(&pem(&cert.cer)[28..90]),
            "{name}: leaf in PFX"
        );
        // The private key in the key object is the certificate's.
        // The keys service's stored form: a type byte (1 RSA, 3 P-384), then PKCS#8.
        let expected_tag = if name == "web-rsa" { 1 } else { 3 };
        assert_eq!(key.value[0], expected_tag, "{name}");
        assert_eq!(
            key.attributes.extra["kty"],
            if name == "web-rsa" { "RSA" } else { "EC" }
        );
        std::fs::write(dir.path().join("k.der"), &key.value[1..]).unwrap();
        let pubkey = openssl(
            dir.path(),
            &["pkey", "-inform", "DER", "-in", "k.der", "-pubout"],
        );
        let cert_pub = openssl(dir.path(), &["x509", "-in", "c.pem", "-noout", "-pubkey"]);
        assert_eq!(pubkey, cert_pub, "{name}: key object holds the cert's key");

        // Policy round trip.
        let p = certs.policy(&v, name).await.unwrap();
        assert_eq!(
            p.x509_props.as_ref().unwrap().subject.as_deref(),
            Some("CN=app.example.com, O=Contoso")
        );
        assert_eq!(p.x509_props.as_ref().unwrap().validity_months, Some(6));
    }
}

/// A public key taken from a CSR, for rcgen to certify.
struct CsrKey {
    raw: Vec<u8>,
}

impl rcgen::PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }
    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A test CA (rcgen) that signs `public` as `CN=<cn>`.
struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Rampart Test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    fn sign(&self, public_raw: Vec<u8>, cn: &str) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(vec!["merged.example.com".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .signed_by(&CsrKey { raw: public_raw }, &self.cert, &self.key)
            .unwrap()
            .der()
            .to_vec()
    }
}

async fn unknown_issuer_csr_is_signed_and_merged(ctx: &common::Ctx) {
    let certs = service(ctx).await;
    let v = vault();
    let name = "ext-cert";
    let op = certs
        .create(
            &v,
            name,
            NewCertificate {
                policy: policy(serde_json::json!({
                    "key_props": {"kty": "EC", "crv": "P-256"},
                    "secret_props": {"contentType": "application/x-pem-file"},
                    "x509_props": {"subject": "CN=merged.example.com", "validity_months": 12},
                    "issuer": {"name": "Unknown"},
                })),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(op.status, "inProgress");
    let csr_der = op.csr.clone().expect("a CSR");
    assert_eq!(certs.operation(&v, name).await.unwrap(), op);
    // No certificate version until the merge; the policy is the pending one.
    assert!(matches!(
        certs.get(&v.name, name, None).await,
        Err(VaultError::NotFound { .. })
    ));
    assert_eq!(
        certs
            .policy(&v, name)
            .await
            .unwrap()
            .issuer
            .unwrap()
            .name
            .as_deref(),
        Some("Unknown")
    );
    // A second create while this one is pending conflicts.
    let again = certs
        .create(
            &v,
            name,
            NewCertificate {
                policy: policy(serde_json::json!({
                    "x509_props": {"subject": "CN=x"}, "issuer": {"name": "Self"}})),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(again, Err(VaultError::PendingOperation { .. })),
        "{again:?}"
    );

    // The CSR is well formed, self-signed by the pending key, with the policy's subject.
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&csr_der).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.der"), &csr_der).unwrap();
    let out = Command::new("openssl")
        .args(["req", "-inform", "DER", "-in", "r.der", "-verify", "-noout"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "CSR signature: {out:?}");
    assert_eq!(
        csr.certification_request_info.subject.to_string(),
        "CN=merged.example.com"
    );
    let csr_pub = csr
        .certification_request_info
        .subject_pki
        .subject_public_key
        .data
        .to_vec();

    let ca = TestCa::new();
    // A certificate for another key is refused, and the operation stays pending.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let wrong = ca.sign(other.public_key_raw().to_vec(), "merged.example.com");
    let refused = certs
        .merge(&v, name, vec![wrong, ca.cert.der().to_vec()], None, None)
        .await;
    assert!(
        matches!(refused, Err(VaultError::InvalidCertificate { .. })),
        "{refused:?}"
    );
    assert_eq!(
        certs.operation(&v, name).await.unwrap().status,
        "inProgress"
    );

    // The right one completes the operation.
    let leaf = ca.sign(csr_pub, "merged.example.com");
    let cert = certs
        .merge(
            &v,
            name,
            vec![leaf.clone(), ca.cert.der().to_vec()],
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(cert.cer, leaf);
    let op = certs.operation(&v, name).await.unwrap();
    assert_eq!(op.status, "completed");
    assert_eq!(op.target_version.as_deref(), Some(cert.version.as_str()));
    // Merging again: nothing pending.
    assert!(matches!(
        certs.merge(&v, name, vec![leaf.clone()], None, None).await,
        Err(VaultError::NotFound { .. })
    ));

    // The PEM secret holds the key and the chain, and verifies against the CA.
    let secret = certs
        .store()
        .get_version(&v.name, ObjectKind::Secret, name, None)
        .await
        .unwrap();
    let text = String::from_utf8(secret.value.to_vec()).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2);
    std::fs::write(dir.path().join("ca.pem"), pem(ca.cert.der())).unwrap();
    std::fs::write(dir.path().join("bundle.pem"), &text).unwrap();
    let verify = openssl(dir.path(), &["verify", "-CAfile", "ca.pem", "bundle.pem"]);
    assert!(verify.contains("OK"), "{verify}");
    let check = openssl(dir.path(), &["pkey", "-in", "bundle.pem", "-pubout"]);
    std::fs::write(dir.path().join("leaf.pem"), pem(&leaf)).unwrap();
    let leaf_pub = openssl(
        dir.path(),
        &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
    );
    assert_eq!(check, leaf_pub);

    // Cancel / delete of the operation record.
    let op2 = certs
        .create(
            &v,
            "to-cancel",
            NewCertificate {
                policy: policy(serde_json::json!({
                    "x509_props": {"subject": "CN=c"}, "issuer": {"name": "Unknown"}})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(op2.status, "inProgress");
    let cancelled = certs.cancel_operation(&v, "to-cancel").await.unwrap();
    assert!(cancelled.cancellation_requested);
    assert_eq!(cancelled.status, "cancelled");
    assert!(
        certs
            .merge(&v, "to-cancel", vec![leaf], None, None)
            .await
            .is_err()
    );
    certs.delete_operation(&v, "to-cancel").await.unwrap();
    assert!(matches!(
        certs.operation(&v, "to-cancel").await,
        Err(VaultError::NotFound { .. })
    ));
}

fn make_pem_pair(dir: &Path, cn: &str, prefix: &str) -> (String, String) {
    let key = format!("{prefix}.key");
    let crt = format!("{prefix}.crt");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "30",
        ],
    );
    (key, crt)
}

async fn pem_and_pkcs12_imports(ctx: &common::Ctx) {
    let certs = service(ctx).await;
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let (key, crt) = make_pem_pair(dir.path(), "imported.example.com", "a");
    let key_pem = std::fs::read_to_string(dir.path().join(&key)).unwrap();
    let crt_pem = std::fs::read_to_string(dir.path().join(&crt)).unwrap();

    // PEM: key + certificate text.
    let cert = certs
        .import(
            &v,
            "from-pem",
            ImportCertificate {
                value: Zeroizing::new(format!("{key_pem}{crt_pem}")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p = certs.policy(&v, "from-pem").await.unwrap();
    assert_eq!(p.content_type(), "application/x-pem-file");
    assert_eq!(
        p.x509_props.as_ref().unwrap().subject.as_deref(),
        Some("CN=imported.example.com")
    );
    assert_eq!(p.key().key_size, Some(2048));
    let crt_der = {
        let b64: String = crt_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        STANDARD.decode(b64).unwrap()
    };
    assert_eq!(cert.cer, crt_der);

    // PKCS#12 with a password (OpenSSL 3 default: AES-256 PBES2), and legacy 3DES.
    for (label, extra) in [
        ("modern", vec![]),
        (
            "legacy",
            vec![
                "-certpbe",
                "PBE-SHA1-3DES",
                "-keypbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ],
        ),
    ] {
        let out = format!("{label}.pfx");
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            &key,
            "-in",
            &crt,
            "-passout",
            "pass:s3cret",
            "-out",
            &out,
        ];
        args.extend(extra);
        openssl(dir.path(), &args);
        let pfx_b64 = STANDARD.encode(std::fs::read(dir.path().join(&out)).unwrap());
        let name = format!("from-pfx-{label}");
        let wrong = certs
            .import(
                &v,
                &name,
                ImportCertificate {
                    value: Zeroizing::new(pfx_b64.clone()),
                    password: Some(Zeroizing::new("wrong".into())),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(wrong, Err(VaultError::InvalidCertificate { .. })),
            "{label}: {wrong:?}"
        );
        let imported = certs
            .import(
                &v,
                &name,
                ImportCertificate {
                    value: Zeroizing::new(pfx_b64),
                    password: Some(Zeroizing::new("s3cret".into())),
                    policy: Some(serde_json::json!({"key_props": {"exportable": true}})),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(imported.cer, crt_der, "{label}");
        let secret = certs
            .store()
            .get_version(&v.name, ObjectKind::Secret, &name, None)
            .await
            .unwrap();
        assert_eq!(
            secret.attributes.content_type.as_deref(),
            Some("application/x-pkcs12")
        );
        std::fs::write(
            dir.path().join("out.pfx"),
            STANDARD.decode(secret.value.as_slice()).unwrap(),
        )
        .unwrap();
        let dump = openssl(
            dir.path(),
            &["pkcs12", "-in", "out.pfx", "-passin", "pass:", "-nodes"],
        );
        assert!(dump.contains("BEGIN PRIVATE KEY"), "{label}");
    }

    // A key that is not the certificate's is refused; so is a certificate without a key.
    let (other_key, _) = make_pem_pair(dir.path(), "other", "b");
    let other_pem = std::fs::read_to_string(dir.path().join(other_key)).unwrap();
    for (what, value) in [
        ("mismatched key", format!("{other_pem}{crt_pem}")),
        ("no key", crt_pem.clone()),
        ("garbage", "bm90IGEgY2VydA==".to_owned()),
    ] {
        let r = certs
            .import(
                &v,
                "bad-import",
                ImportCertificate {
                    value: Zeroizing::new(value),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(r, Err(VaultError::InvalidCertificate { .. })),
            "{what}: {r:?}"
        );
    }
}

async fn linked_objects_policy_and_soft_delete(ctx: &common::Ctx) {
    let certs = service(ctx).await;
    let v = vault();
    let name = "life";
    let store = certs.store().clone();
    let create = |exportable: bool| NewCertificate {
        policy: policy(serde_json::json!({
            "key_props": {"kty": "RSA", "exportable": exportable},
            "x509_props": {"subject": "CN=life"},
            "issuer": {"name": "Self"},
        })),
        ..Default::default()
    };
    certs.create(&v, name, create(true)).await.unwrap();

    // Managed key and secret refuse direct changes.
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        assert!(matches!(
            refuse_managed(&store, &v.name, kind, name, "delete").await,
            Err(VaultError::ManagedByCertificate { .. })
        ));
    }
    store
        .create_version(
            &v.name,
            ObjectKind::Secret,
            "plain",
            b"x",
            Default::default(),
        )
        .await
        .unwrap();
    refuse_managed(&store, &v.name, ObjectKind::Secret, "plain", "set")
        .await
        .unwrap();

    // Policy update: the next version is made under it (non-exportable: no key in the secret).
    let updated = certs
        .update_policy(
            &v,
            name,
            &serde_json::json!({"key_props": {"exportable": false}, "x509_props": {"validity_months": 24}}),
        )
        .await
        .unwrap();
    assert_eq!(updated.key().exportable, Some(false));
    assert_eq!(
        updated.x509_props.as_ref().unwrap().validity_months,
        Some(24)
    );
    assert_eq!(certs.policy(&v, name).await.unwrap(), updated);
    assert!(matches!(
        certs
            .update_policy(
                &v,
                name,
                &serde_json::json!({"x509_props": {"validity_months": 0}})
            )
            .await,
        Err(VaultError::InvalidPolicy { .. })
    ));
    let op = certs
        .create(
            &v,
            name,
            NewCertificate {
                policy: updated.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let v2 = op.target_version.unwrap();
    let secret = store
        .get_version(&v.name, ObjectKind::Secret, name, None)
        .await
        .unwrap();
    assert_eq!(secret.version, v2);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.pfx"),
        STANDARD.decode(secret.value.as_slice()).unwrap(),
    )
    .unwrap();
    let dump = openssl(
        dir.path(),
        &["pkcs12", "-in", "s.pfx", "-passin", "pass:", "-nodes"],
    );
    assert!(
        !dump.contains("PRIVATE KEY"),
        "non-exportable: no key in the secret"
    );
    assert!(dump.contains("BEGIN CERTIFICATE"));
    let versions = certs.list_versions(&v, name, None, 10).await.unwrap();
    assert_eq!(versions.items.len(), 2);

    // Disabling the certificate disables its key and secret version.
    let cert = certs
        .update(
            &v,
            name,
            None,
            rampart_vault::certificates::CertificateUpdate {
                enabled: Some(false),
                tags: Some([("env".to_owned(), "prod".to_owned())].into()),
                policy: None,
            },
        )
        .await
        .unwrap();
    assert!(!cert.attributes.enabled);
    assert_eq!(
        cert.attributes.tags.get("env").map(String::as_str),
        Some("prod")
    );
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        assert!(
            !store
                .get_version(&v.name, kind, name, Some(&v2))
                .await
                .unwrap()
                .attributes
                .enabled
        );
    }
    let list = certs.list(&v, None, 10).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.items[0].policy.is_none());

    // Soft delete takes the key and secret along; the name is then reserved.
    let deleted = certs.delete(&v, name).await.unwrap();
    assert_eq!(
        deleted.deletion.scheduled_purge - deleted.deletion.deleted_on,
        7 * 86_400
    );
    assert!(matches!(
        certs.get(&v.name, name, None).await,
        Err(VaultError::NotFound { .. })
    ));
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        store.get_deleted(&v.name, kind, name).await.unwrap();
    }
    assert_eq!(
        certs.list_deleted(&v, None, 10).await.unwrap().items.len(),
        1
    );
    assert!(matches!(
        certs.create(&v, name, create(true)).await,
        Err(VaultError::DeletedButRecoverable { .. })
    ));
    // Recover brings all three back.
    let back = certs.recover(&v, name).await.unwrap();
    assert_eq!(back.version, v2);
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        store.get_version(&v.name, kind, name, None).await.unwrap();
    }
    // Purge protection refuses purge; otherwise purge removes all three.
    certs.delete(&v, name).await.unwrap();
    let protected = VaultInfo {
        purge_protection: true,
        ..vault()
    };
    assert!(certs.purge(&protected, name).await.is_err());
    certs.purge(&v, name).await.unwrap();
    for kind in [ObjectKind::Certificate, ObjectKind::Key, ObjectKind::Secret] {
        assert!(matches!(
            store.meta(&v.name, kind, name).await,
            Err(VaultError::NotFound { .. })
        ));
    }
    certs.create(&v, name, create(true)).await.unwrap();

    // reuse_key: a renewal under the policy keeps the private key; without it, a new key.
    let mut keys = Vec::new();
    for reuse in [true, true, false] {
        certs
            .create(
                &v,
                "renewed",
                NewCertificate {
                    policy: policy(serde_json::json!({
                        "key_props": {"kty": "EC", "crv": "P-256", "reuse_key": reuse},
                        "x509_props": {"subject": "CN=renewed"},
                        "issuer": {"name": "Self"},
                    })),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let key = store
            .get_version(&v.name, ObjectKind::Key, "renewed", None)
            .await
            .unwrap();
        keys.push(key.value.to_vec());
    }
    assert_eq!(keys[0], keys[1], "reuse_key keeps the key");
    assert_ne!(keys[1], keys[2], "a new key otherwise");

    // Contacts.
    assert!(certs.contacts(&v).await.unwrap().is_empty());
    let contacts = vec![Contact {
        email: Some("ops@example.com".into()),
        name: Some("Ops".into()),
        phone: None,
    }];
    certs.set_contacts(&v, contacts.clone()).await.unwrap();
    assert_eq!(certs.contacts(&v).await.unwrap(), contacts);
    assert!(
        certs
            .set_contacts(
                &v,
                vec![Contact {
                    email: None,
                    name: Some("x".into()),
                    phone: None
                }]
            )
            .await
            .is_err()
    );
    assert_eq!(certs.delete_contacts(&v).await.unwrap(), contacts);
    assert!(certs.delete_contacts(&v).await.is_err());
}

/// The key and secret behind a certificate refuse every direct change through the keys and
/// secrets services (Azure: `KeyManagedByKeyVault` / `SecretManagedByKeyVault`), live and
/// deleted; crypto with the key and reads keep working; a plain key of another name is not
/// affected.
async fn managed_key_and_secret_refuse_direct_changes(ctx: &common::Ctx) {
    use rampart_vault::keys::{
        ImportKey, IsoDuration, JsonWebKey, KeyType, KeyUpdate, Keys, LifetimeAction, NewKey,
        RotationAction, RotationPolicy, SignatureAlgorithm, Trigger,
    };
    use rampart_vault::secrets::{NewSecret, SecretUpdate, Secrets};

    let certs = service(ctx).await;
    let store = certs.store().clone();
    let keys = Keys::new(store.clone());
    let secrets = Secrets::new(store.clone());
    let v = vault();
    let name = "tls-web";
    certs
        .create(
            &v,
            name,
            NewCertificate {
                policy: policy(serde_json::json!({
                    "key_props": {"kty": "EC", "crv": "P-256"},
                    "x509_props": {"subject": "CN=web"},
                    "issuer": {"name": "Self"},
                })),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let refused = |r: Result<(), VaultError>, expected: &str| match r {
        Err(VaultError::ManagedByCertificate { operation, .. }) => {
            assert_eq!(operation, expected)
        }
        other => panic!("{expected}: {other:?}"),
    };
    let plain_jwk = keys
        .create(&v.name, "plain", NewKey::new(KeyType::Ec))
        .await;
    assert!(plain_jwk.is_ok(), "a plain key is not managed");

    refused(
        keys.create(&v.name, name, NewKey::new(KeyType::Ec))
            .await
            .map(drop),
        "create",
    );
    refused(
        keys.update(
            &v.name,
            name,
            None,
            KeyUpdate {
                enabled: Some(false),
                ..KeyUpdate::default()
            },
        )
        .await
        .map(drop),
        "update",
    );
    refused(keys.rotate(&v.name, name).await.map(drop), "rotate");
    let policy = RotationPolicy {
        lifetime_actions: vec![LifetimeAction {
            trigger: Trigger::TimeAfterCreate(IsoDuration::parse("P30D").unwrap()),
            action: RotationAction::Rotate,
        }],
        ..RotationPolicy::default()
    };
    refused(
        keys.set_rotation_policy(&v.name, name, policy.clone())
            .await
            .map(drop),
        "setRotationPolicy",
    );
    // Import over it (refused before the JWK is even looked at).
    refused(
        keys.import(
            &v.name,
            name,
            ImportKey {
                key: JsonWebKey {
                    kty: Some("EC".into()),
                    ..JsonWebKey::default()
                },
                hsm: false,
                attributes: Default::default(),
            },
        )
        .await
        .map(drop),
        "import",
    );
    refused(keys.delete(&v.name, name, 86_400).await.map(drop), "delete");
    refused(
        secrets
            .set(
                &v,
                name,
                NewSecret {
                    value: Zeroizing::new("x".into()),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
        "set",
    );
    refused(
        secrets
            .update(&v, name, None, SecretUpdate::default())
            .await
            .map(drop),
        "update",
    );
    refused(secrets.delete(&v, name).await.map(drop), "delete");

    // Nothing changed: one version, enabled; the key still signs and reads.
    let key = keys.get(&v.name, name, None).await.unwrap();
    assert!(key.attributes.enabled && key.attributes.managed);
    assert_eq!(
        keys.list_versions(&v.name, name, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let digest = [7u8; 32];
    let signed = keys
        .sign(&v.name, name, None, SignatureAlgorithm::Es256, &digest)
        .await
        .unwrap();
    assert!(
        keys.verify(
            &v.name,
            name,
            None,
            SignatureAlgorithm::Es256,
            &digest,
            &signed.value
        )
        .await
        .unwrap()
    );
    // The scheduler leaves it alone too.
    let report = keys.run_due_rotations(&v.name, i64::MAX / 2).await.unwrap();
    assert!(
        report.rotated.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );

    // Deleted with its certificate: recover and purge go through the certificate only.
    certs.delete(&v, name).await.unwrap();
    refused(keys.recover(&v.name, name).await.map(drop), "recover");
    refused(keys.purge(&v.name, name, false).await, "purge");
    refused(secrets.recover(&v, name).await.map(drop), "recover");
    refused(secrets.purge(&v, name).await, "purge");
    certs.recover(&v, name).await.unwrap();
    keys.get(&v.name, name, None).await.unwrap();

    // The plain key still changes freely.
    keys.rotate(&v.name, "plain").await.unwrap();
    keys.set_rotation_policy(&v.name, "plain", policy)
        .await
        .unwrap();
    keys.delete(&v.name, "plain", 86_400).await.unwrap();
    keys.purge(&v.name, "plain", false).await.unwrap();
}

const DAY: i64 = 86_400;

fn self_policy(extra: serde_json::Value) -> Policy {
    let mut base = serde_json::json!({
        "key_props": {"kty": "EC", "crv": "P-256"},
        "x509_props": {"subject": "CN=renew.example", "sans": {"dns_names": ["renew.example", "www.renew.example"]}, "validity_months": 12},
        "issuer": {"name": "Self"},
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    policy(base)
}

async fn make(
    certs: &Certificates,
    v: &VaultInfo,
    name: &str,
    p: Policy,
) -> rampart_vault::certificates::Certificate {
    let op = certs
        .create(
            v,
            name,
            NewCertificate {
                policy: p,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    certs
        .get(&v.name, name, op.target_version.as_deref())
        .await
        .unwrap()
}

fn versions(report: &rampart_vault::certificates::LifetimeReport) -> Vec<(String, String)> {
    report
        .renewed
        .iter()
        .map(|r| (r.name.clone(), r.previous.clone()))
        .collect()
}

/// The lifetime-action scheduler's sweep with a moved clock: AutoRenew (percentage and days
/// before expiry) makes exactly one next version from the policy (new key, or the same one
/// with reuse_key; same subject, SANs and validity; linked managed key and secret); disabled
/// and deleted certificates are left alone; EmailContacts is reported once per version with
/// the vault's contacts; AutoRenew with issuer Unknown is refused when the policy is set.
async fn lifetime_actions_renew_and_notify(ctx: &common::Ctx) {
    use rampart_vault::certificates::x509::parse_cert;
    let certs = service(ctx).await;
    let v = vault();
    let store = certs.store().clone();
    certs
        .set_contacts(
            &v,
            vec![Contact {
                email: Some("pki@example.com".into()),
                name: Some("PKI team".into()),
                phone: None,
            }],
        )
        .await
        .unwrap();
    // Default lifetime action for Self: AutoRenew at 80% of the lifetime.
    let auto = make(&certs, &v, "Auto", self_policy(serde_json::json!({}))).await;
    let reuse = make(
        &certs,
        &v,
        "reuse",
        self_policy(serde_json::json!({
            "key_props": {"kty": "EC", "crv": "P-256", "reuse_key": true},
            "lifetime_actions": [{"trigger": {"days_before_expiry": 30}, "action": {"action_type": "AutoRenew"}}],
        })),
    )
    .await;
    let mail = make(
        &certs,
        &v,
        "mail",
        self_policy(serde_json::json!({
            "lifetime_actions": [{"trigger": {"days_before_expiry": 30}, "action": {"action_type": "EmailContacts"}}],
        })),
    )
    .await;
    let off = make(&certs, &v, "off", self_policy(serde_json::json!({}))).await;
    certs
        .update(
            &v,
            "off",
            None,
            rampart_vault::certificates::CertificateUpdate {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    make(&certs, &v, "gone", self_policy(serde_json::json!({}))).await;
    certs.delete(&v, "gone").await.unwrap();
    let unknown = certs
        .create(
            &v,
            "ext",
            NewCertificate {
                policy: policy(serde_json::json!({
                    "x509_props": {"subject": "CN=ext"},
                    "issuer": {"name": "Unknown"},
                    "lifetime_actions": [{"trigger": {"lifetime_percentage": 50}, "action": {"action_type": "AutoRenew"}}],
                })),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(unknown, Err(VaultError::InvalidPolicy { .. })),
        "{unknown:?}"
    );

    let (nbf, exp) = (
        auto.attributes.not_before.unwrap(),
        auto.attributes.expires.unwrap(),
    );
    let at80 = nbf + (exp - nbf) * 80 / 100;
    // Nothing is due now, nor a minute before 80%.
    for t in [nbf, at80 - 60] {
        let report = certs.run_lifetime_actions(&v, t).await.unwrap();
        // Live: Auto, reuse, mail, off ("gone" is deleted, "ext" was refused).
        assert_eq!(report.examined, 4, "{report:?}");
        assert!(
            report.renewed.is_empty() && report.near_expiry.is_empty() && report.failed.is_empty(),
            "at {t}: {report:?}"
        );
    }
    // 80%: "Auto" is renewed, once.
    let report = certs.run_lifetime_actions(&v, at80).await.unwrap();
    assert_eq!(
        versions(&report),
        vec![("Auto".to_owned(), auto.version.clone())]
    );
    assert!(report.failed.is_empty(), "{report:?}");
    let renewed = certs.get(&v.name, "auto", None).await.unwrap();
    assert_eq!(renewed.version, report.renewed[0].version);
    assert_ne!(renewed.version, auto.version);
    let again = certs.run_lifetime_actions(&v, at80).await.unwrap();
    assert!(again.renewed.is_empty(), "renewed twice: {again:?}");
    assert_eq!(
        store
            .meta(&v.name, ObjectKind::Certificate, "auto")
            .await
            .unwrap()
            .version_count,
        2
    );
    let (old, new) = (
        parse_cert(&auto.cer).unwrap(),
        parse_cert(&renewed.cer).unwrap(),
    );
    assert_eq!(new.subject, old.subject);
    assert_eq!(new.sans, old.sans);
    assert_ne!(
        new.public_raw, old.public_raw,
        "a new key without reuse_key"
    );
    assert_eq!(new.not_before, at80, "valid from the renewal");
    assert_eq!(new.validity_months(), old.validity_months());
    assert_eq!(renewed.policy, auto.policy);
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        let linked = store
            .get_version(&v.name, kind, "auto", None)
            .await
            .unwrap();
        assert_eq!(linked.version, renewed.version, "{kind:?}");
        assert!(linked.attributes.managed, "{kind:?}");
    }
    assert_eq!(
        certs.operation(&v, "auto").await.unwrap().target_version,
        Some(renewed.version.clone())
    );
    // The store's compare-and-swap: a writer that still expects the old latest writes nothing.
    let lost = store
        .create_linked_versions_after(
            &v.name,
            &[rampart_vault::LinkedVersion {
                kind: ObjectKind::Certificate,
                name: "auto",
                value: b"x",
                attributes: Default::default(),
            }],
            Some(&auto.version),
        )
        .await
        .unwrap();
    assert_eq!(lost, None);
    assert_eq!(
        certs.get(&v.name, "auto", None).await.unwrap().version,
        renewed.version
    );

    // 30 days before expiry: "reuse" renewed with the same key; "mail" reported once.
    // (Both made in this test, maybe a second apart: the later one's time.)
    let before = reuse
        .attributes
        .expires
        .unwrap()
        .max(mail.attributes.expires.unwrap())
        - 30 * DAY;
    let report = certs.run_lifetime_actions(&v, before).await.unwrap();
    assert_eq!(
        versions(&report),
        vec![("reuse".to_owned(), reuse.version.clone())]
    );
    let reused = certs.get(&v.name, "reuse", None).await.unwrap();
    assert_eq!(
        parse_cert(&reused.cer).unwrap().public_raw,
        parse_cert(&reuse.cer).unwrap().public_raw,
        "reuse_key keeps the key"
    );
    assert_eq!(report.near_expiry.len(), 1, "{report:?}");
    let near = &report.near_expiry[0];
    assert_eq!(
        (near.name.as_str(), near.version.as_str(), near.expires),
        (
            "mail",
            mail.version.as_str(),
            mail.attributes.expires.unwrap()
        )
    );
    assert_eq!(near.contacts, vec!["pki@example.com".to_owned()]);
    let again = certs.run_lifetime_actions(&v, before + DAY).await.unwrap();
    assert!(
        again.near_expiry.is_empty() && again.renewed.is_empty(),
        "reported twice: {again:?}"
    );
    assert_eq!(
        certs.get(&v.name, "mail", None).await.unwrap().version,
        mail.version,
        "EmailContacts does not renew"
    );
    // Disabled and deleted certificates were never renewed, whatever the clock.
    let late = certs.run_lifetime_actions(&v, exp - 60).await.unwrap();
    assert!(
        late.renewed
            .iter()
            .all(|r| r.name != "off" && r.name != "gone"),
        "{late:?}"
    );
    assert_eq!(
        certs.get(&v.name, "off", None).await.unwrap().version,
        off.version
    );
    let deleted = certs.get_deleted(&v, "gone").await.unwrap();
    assert_eq!(
        store
            .meta(&v.name, ObjectKind::Certificate, "gone")
            .await
            .unwrap()
            .version_count,
        1,
        "{:?}",
        deleted.certificate.version
    );
}

/// Two schedulers (two "processes": on PostgreSQL each has its own connection pool and
/// barrier) sweep the same vault at the same time, several ticks each: every due renewal
/// makes exactly one new version, and a due EmailContacts is reported exactly once.
async fn concurrent_schedulers_renew_once(ctx: &common::Ctx) {
    let first = ctx.init_key_file().await;
    let second_backend = match &ctx.target {
        common::Target::Postgres(_) => ctx.target.open().await,
        common::Target::Redb(_) => first.backend().clone(),
    };
    let second = Arc::new(rampart_vault::Barrier::new(second_backend));
    second.unseal_with_key_file(ctx.key_file()).await.unwrap();
    let services = [
        Certificates::new(VersionedStore::new(first)),
        Certificates::new(VersionedStore::new(second)),
    ];
    let v = vault();
    const RENEWED: usize = 4;
    let mut latest = Vec::new();
    for i in 0..RENEWED {
        let c = make(
            &services[i % 2],
            &v,
            &format!("c{i}"),
            self_policy(serde_json::json!({})),
        )
        .await;
        latest.push(c);
    }
    make(
        &services[0],
        &v,
        "mail",
        self_policy(serde_json::json!({
            "lifetime_actions": [{"trigger": {"lifetime_percentage": 50}, "action": {"action_type": "EmailContacts"}}],
        })),
    )
    .await;
    // Past every certificate's 80% (all made within this test).
    let at = latest
        .iter()
        .map(|c| {
            let (nbf, exp) = (
                c.attributes.not_before.unwrap(),
                c.attributes.expires.unwrap(),
            );
            nbf + (exp - nbf) * 80 / 100
        })
        .max()
        .unwrap()
        + 60;
    let mut tasks = Vec::new();
    for s in 0..4 {
        let service = services[s % 2].clone();
        let v = v.clone();
        tasks.push(tokio::spawn(async move {
            let mut reports = Vec::new();
            for _ in 0..3 {
                reports.push(service.run_lifetime_actions(&v, at).await.unwrap());
            }
            reports
        }));
    }
    let mut renewed = Vec::new();
    let mut notified = 0;
    for t in tasks {
        for report in t.await.unwrap() {
            assert!(report.failed.is_empty(), "{report:?}");
            renewed.extend(report.renewed);
            notified += report.near_expiry.len();
        }
    }
    assert_eq!(renewed.len(), RENEWED, "{renewed:?}");
    assert_eq!(notified, 1, "EmailContacts reported {notified} times");
    let store = services[1].store();
    for c in &latest {
        let meta = store
            .meta(&v.name, ObjectKind::Certificate, &c.name)
            .await
            .unwrap();
        assert_eq!(meta.version_count, 2, "{}", c.name);
        let r = renewed.iter().find(|r| r.name == c.name).unwrap();
        assert_eq!((&r.previous, &meta.latest), (&c.version, &r.version));
        for kind in [ObjectKind::Key, ObjectKind::Secret] {
            let linked = store.meta(&v.name, kind, &c.name).await.unwrap();
            assert_eq!(
                (linked.version_count, &linked.latest),
                (2, &meta.latest),
                "{} {kind:?}",
                c.name
            );
        }
    }
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        mod redb {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let ctx = common::Ctx { target: common::Target::redb(dir.path()), dir };
                    super::$case(&ctx).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let ctx = Arc::new(common::Ctx {
                        target: common::Target::postgres().await,
                        dir: tempfile::tempdir().unwrap(),
                    });
                    let c = ctx.clone();
                    let outcome = tokio::spawn(async move { super::$case(&c).await }).await;
                    ctx.target.cleanup().await;
                    if let Err(e) = outcome {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
    };
}

cases!(
    self_signed_certificate_matches_its_policy,
    unknown_issuer_csr_is_signed_and_merged,
    pem_and_pkcs12_imports,
    linked_objects_policy_and_soft_delete,
    managed_key_and_secret_refuse_direct_changes,
    lifetime_actions_renew_and_notify,
    concurrent_schedulers_renew_once,
);
