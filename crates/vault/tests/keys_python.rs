//! Cross-check of the keys service with Python `cryptography` (`tests/python/keys_crosscheck.py`
//! at the workspace root; interpreter `$RAMPART_TEST_PYTHON`, default `python3`, which must have
//! `cryptography` — `scripts/test.sh` provides a venv with it). This test fails, rather than
//! skips, when Python or the package is missing.
//!
//! * signatures made by the vault (every algorithm) verify in `cryptography` with the public
//!   JWK alone, and do not verify for a tampered digest;
//! * ciphertexts made by `cryptography` with the public JWK (RSA-OAEP, RSA-OAEP-256, RSA1_5)
//!   decrypt (and unwrap) in the vault;
//! * private keys made by `cryptography` import into the vault: the vault verifies
//!   `cryptography`'s signatures, decrypts its ciphertexts, and its own signatures with the
//!   imported keys verify in `cryptography`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_vault::VersionedStore;
use rampart_vault::keys::{
    B64, Curve, EncryptionAlgorithm, ImportKey, JsonWebKey, KeyAttributesIn, KeyType, Keys, NewKey,
    SignatureAlgorithm,
};
use serde_json::{Value, json};

const VAULT: &str = "crosscheck";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/keys_crosscheck.py")
}

fn python(args: &[&Path]) {
    // The venv scripts/test.sh prepares (RAMPART_TEST_PYTHON), else python3.
    let interpreter = std::env::var("RAMPART_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&interpreter)
        .arg(script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {interpreter} (set RAMPART_TEST_PYTHON): {e}"));
    assert!(
        out.status.success(),
        "{interpreter} {:?} failed (is `cryptography` installed? scripts/test.sh makes a venv): {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn b64(bytes: &[u8]) -> String {
    B64::new(bytes.to_vec()).encode()
}

fn unb64(v: &Value) -> Vec<u8> {
    B64::decode(v.as_str().unwrap()).unwrap().bytes().to_vec()
}

fn digest(alg: SignatureAlgorithm) -> Vec<u8> {
    let mut seed = [0u8; 16];
    aws_lc_rs::rand::fill(&mut seed).unwrap();
    aws_lc_rs::digest::digest(alg.digest(), &seed)
        .as_ref()
        .to_vec()
}

async fn verify_in_python(dir: &Path, request: &Value) -> Value {
    let (src, dst) = (dir.join("request.json"), dir.join("response.json"));
    std::fs::write(&src, serde_json::to_vec(request).unwrap()).unwrap();
    python(&[Path::new("verify"), &src, &dst]);
    serde_json::from_slice(&std::fs::read(&dst).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_results_check_out_in_python_cryptography() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = common::Ctx {
        target: common::Target::redb(dir.path()),
        dir,
    };
    let keys = Keys::new(VersionedStore::new(ctx.init_key_file().await));

    // 1. Vault signatures and public JWKs → cryptography.
    let mut specs: Vec<(&str, NewKey)> = vec![
        (
            "rsa-2048",
            NewKey {
                key_size: Some(2048),
                ..NewKey::new(KeyType::Rsa)
            },
        ),
        (
            "rsa-hsm-3072",
            NewKey {
                key_size: Some(3072),
                ..NewKey::new(KeyType::RsaHsm)
            },
        ),
    ];
    for (name, curve) in [
        ("ec-p256", Curve::P256),
        ("ec-p384", Curve::P384),
        ("ec-p521", Curve::P521),
        ("ec-p256k", Curve::P256K),
    ] {
        specs.push((
            name,
            NewKey {
                curve: Some(curve),
                ..NewKey::new(KeyType::Ec)
            },
        ));
    }
    let (mut signatures, mut encrypt, mut plaintexts) = (vec![], vec![], vec![]);
    for (name, req) in specs {
        let rsa = req.kty.is_rsa();
        let bundle = keys.create(VAULT, name, req).await.unwrap();
        let jwk = serde_json::to_value(&bundle.key).unwrap();
        let algs: Vec<SignatureAlgorithm> = SignatureAlgorithm::ALL
            .into_iter()
            .filter(|a| {
                if rsa {
                    a.is_rsa()
                } else {
                    Curve::parse(bundle.key.crv.as_deref().unwrap())
                        .unwrap()
                        .signature_algorithm()
                        == *a
                }
            })
            .collect();
        for alg in algs {
            let d = digest(alg);
            let sig = keys.sign(VAULT, name, None, alg, &d).await.unwrap();
            signatures.push(json!({
                "id": format!("{name}/{}", alg.as_str()),
                "jwk": jwk, "alg": alg.as_str(), "digest": b64(&d), "signature": b64(&sig.value),
            }));
        }
        if rsa {
            for alg in EncryptionAlgorithm::ALL {
                let pt = Keys::random_bytes(32).unwrap();
                let id = format!("{name}/{}", alg.as_str());
                encrypt.push(
                    json!({"id": id, "jwk": jwk, "alg": alg.as_str(), "plaintext": b64(&pt)}),
                );
                plaintexts.push((id, name, alg, pt));
            }
        }
    }
    assert_eq!(signatures.len(), 2 * 6 + 4);
    let response = verify_in_python(
        ctx.dir.path(),
        &json!({"signatures": signatures, "encrypt": encrypt}),
    )
    .await;
    for item in &signatures {
        let id = item["id"].as_str().unwrap();
        assert_eq!(response["verified"][id], true, "cryptography rejects {id}");
        assert_eq!(
            response["tampered"][id], false,
            "tampered digest verifies for {id}"
        );
    }

    // 2. cryptography's ciphertexts (made with the public JWK) → vault decrypt and unwrap.
    let cts = response["ciphertexts"].as_array().unwrap();
    assert_eq!(cts.len(), plaintexts.len());
    for (id, name, alg, pt) in &plaintexts {
        let ct = cts.iter().find(|c| c["id"] == id.as_str()).unwrap();
        let ct = unb64(&ct["ciphertext"]);
        let decrypted = keys.decrypt(VAULT, name, None, *alg, &ct).await.unwrap();
        assert_eq!(decrypted.value.as_slice(), pt.as_slice(), "decrypt {id}");
        let unwrapped = keys.unwrap_key(VAULT, name, None, *alg, &ct).await.unwrap();
        assert_eq!(unwrapped.value.as_slice(), pt.as_slice(), "unwrap {id}");
    }

    // 3. cryptography's private keys → import; both directions of sign/verify, decrypt.
    let generated = ctx.dir.path().join("keys.json");
    python(&[Path::new("genkeys"), &generated]);
    let generated: Value = serde_json::from_slice(&std::fs::read(&generated).unwrap()).unwrap();
    let mut vault_signatures = vec![];
    for item in generated["keys"].as_array().unwrap() {
        let name = item["name"].as_str().unwrap();
        let jwk: JsonWebKey = serde_json::from_value(item["jwk"].clone()).unwrap();
        let imported = keys
            .import(
                VAULT,
                name,
                ImportKey {
                    key: jwk,
                    hsm: false,
                    attributes: KeyAttributesIn::default(),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("import {name}: {e}"));
        let alg = SignatureAlgorithm::parse(item["alg"].as_str().unwrap()).unwrap();
        let py_digest = unb64(&item["digest"]);
        assert!(
            keys.verify(
                VAULT,
                name,
                None,
                alg,
                &py_digest,
                &unb64(&item["signature"])
            )
            .await
            .unwrap(),
            "the vault rejects cryptography's {} signature with imported {name}",
            alg.as_str()
        );
        for ct in item["ciphertexts"].as_array().unwrap() {
            let enc = EncryptionAlgorithm::parse(ct["alg"].as_str().unwrap()).unwrap();
            let out = keys
                .decrypt(VAULT, name, None, enc, &unb64(&ct["ciphertext"]))
                .await
                .unwrap();
            assert_eq!(
                out.value.as_slice(),
                unb64(&ct["plaintext"]).as_slice(),
                "{name}"
            );
        }
        let d = digest(alg);
        let sig = keys.sign(VAULT, name, None, alg, &d).await.unwrap();
        vault_signatures.push(json!({
            "id": name, "jwk": serde_json::to_value(&imported.key).unwrap(),
            "alg": alg.as_str(), "digest": b64(&d), "signature": b64(&sig.value),
        }));
    }
    assert_eq!(vault_signatures.len(), 7);
    let response = verify_in_python(ctx.dir.path(), &json!({"signatures": vault_signatures})).await;
    for item in &vault_signatures {
        let id = item["id"].as_str().unwrap();
        assert_eq!(
            response["verified"][id], true,
            "cryptography rejects imported {id}"
        );
        assert_eq!(response["tampered"][id], false, "{id}");
    }
}
