//! The PKCS#11 seal against a real SoftHSM2 token.
//!
//! Each test creates a private token directory and `softhsm2.conf`, initializes a token with
//! `softhsm2-util`, then re-runs this test binary as a child (`hsm_child`, selected by
//! `RAMPART_VAULT_HSM_TARGET`) with `SOFTHSM2_CONF` pointing at it: the PKCS#11 module reads
//! its configuration once per process, and the child keeps the test process's environment
//! untouched. When SoftHSM2 is missing the tests fail if `CI` is set and are skipped otherwise
//! (`scripts/test.sh` installs it).

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_test_support::softhsm::{self, TOKEN_LABEL, USER_PIN};
use rampart_vault::{Barrier, InitMethod, PinSource, Pkcs11Config, VaultError};
use zeroize::Zeroizing;

const TARGET_ENV: &str = "RAMPART_VAULT_HSM_TARGET";
const DIR_ENV: &str = "RAMPART_VAULT_HSM_DIR";
const PIN_ENV: &str = "RAMPART_VAULT_TEST_HSM_PIN";

fn run_child(target: &str, dir: &Path, conf: &Path) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "hsm_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(TARGET_ENV, target)
        .env(DIR_ENV, dir)
        .env("SOFTHSM2_CONF", conf)
        .env(PIN_ENV, USER_PIN)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the HSM scenario failed:\n{text}");
    assert!(
        text.contains("hsm scenario passed"),
        "the scenario did not run:\n{text}"
    );
    assert!(
        !text.contains(USER_PIN),
        "the PIN appeared in the output:\n{text}"
    );
}

#[test]
fn softhsm_unseal_on_redb() {
    if !softhsm::present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm::init_token(dir.path());
    let target = format!("redb:{}", dir.path().join("kv.redb").display());
    run_child(&target, dir.path(), &conf);
}

#[test]
fn softhsm_unseal_on_postgres() {
    if !softhsm::present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm::init_token(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let table = unique_table("vaulthsm");
    rt.block_on(drop_table(&postgres_url(), &table))
        .unwrap_or_else(|e| panic!("PostgreSQL is required: {e}"));
    let result = std::panic::catch_unwind(|| {
        run_child(&format!("postgres:{table}"), dir.path(), &conf);
    });
    rt.block_on(drop_table(&postgres_url(), &table)).unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn config(pin: PinSource, key_label: &str) -> Pkcs11Config {
    Pkcs11Config {
        module: softhsm::module(),
        token_label: TOKEN_LABEL.into(),
        pin,
        key_label: key_label.into(),
    }
}

/// Reads the HSM key's protection attributes straight from the token.
fn key_attributes(label: &str) -> Vec<Attribute> {
    let pkcs11 = Pkcs11::new(softhsm::module()).unwrap();
    pkcs11.initialize(CInitializeArgs::OsThreads).unwrap();
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| pkcs11.get_token_info(*s).unwrap().label().trim_end() == TOKEN_LABEL)
        .unwrap();
    let session = pkcs11.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let keys = session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .unwrap();
    assert_eq!(keys.len(), 1, "exactly one key labelled {label}");
    session
        .get_attributes(
            keys[0],
            &[
                AttributeType::Extractable,
                AttributeType::Sensitive,
                AttributeType::Token,
                AttributeType::NeverExtractable,
            ],
        )
        .unwrap()
}

/// The scenario, run in the child process.
#[test]
#[ignore = "the HSM scenario, run by the softhsm tests as a child process"]
fn hsm_child() {
    let Ok(target) = std::env::var(TARGET_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_ENV).unwrap());
    let target = match target.split_once(':') {
        Some(("redb", path)) => common::Target::Redb(path.into()),
        Some(("postgres", table)) => common::Target::Postgres(table.into()),
        _ => panic!("bad {TARGET_ENV}"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(scenario(target, &dir));
    println!("hsm scenario passed");
}

async fn scenario(target: common::Target, dir: &Path) {
    let good = config(PinSource::Env(PIN_ENV.into()), "rampart-root");
    let b = Arc::new(Barrier::new(target.open().await));
    b.init(InitMethod::Pkcs11(good.clone())).await.unwrap();
    b.put("hsm/k", b"protected by the token").await.unwrap();
    let status = b.status().await.unwrap();
    assert_eq!(status.method, Some("pkcs11"));

    // The key was generated on the token: non-extractable, sensitive, persistent.
    let attrs = key_attributes("rampart-root");
    assert!(attrs.contains(&Attribute::Extractable(false)), "{attrs:?}");
    assert!(
        attrs.contains(&Attribute::NeverExtractable(true)),
        "{attrs:?}"
    );
    assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
    assert!(attrs.contains(&Attribute::Token(true)), "{attrs:?}");
    // The keyring key is not stored in the clear.
    let sealed = b
        .backend()
        .get(b"vault/sys/keyring-key")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sealed[0], 2, "sealed by the HSM");

    b.seal();
    // Wrong PIN, token or key label: clear errors, still sealed, and the PIN is never shown.
    let err = b
        .unseal_with_pkcs11(&config(
            PinSource::Value(Zeroizing::new("0000".into())),
            "rampart-root",
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Pkcs11 { .. }), "{err}");
    assert!(err.to_string().contains("login"), "{err}");
    let mut wrong_token = good.clone();
    wrong_token.token_label = "nope".into();
    let err = b.unseal_with_pkcs11(&wrong_token).await.unwrap_err();
    assert!(err.to_string().contains("no token labelled"), "{err}");
    let err = b
        .unseal_with_pkcs11(&config(PinSource::Env(PIN_ENV.into()), "absent"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no aes key labelled"), "{err}");
    let err = b
        .unseal_with_pkcs11(&config(
            PinSource::Env("RAMPART_VAULT_NO_SUCH_PIN".into()),
            "rampart-root",
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Pin { .. }), "{err}");
    // Another AES key on the same token does not open it (the GCM tag does not check).
    let other_store = Arc::new(
        rampart_storage::RedbBackend::open(dir.join("other.redb"))
            .await
            .unwrap(),
    );
    let other = Barrier::new(other_store);
    other
        .init(InitMethod::Pkcs11(config(
            PinSource::Env(PIN_ENV.into()),
            "other-root",
        )))
        .await
        .unwrap();
    let r = b
        .unseal_with_pkcs11(&config(PinSource::Env(PIN_ENV.into()), "other-root"))
        .await;
    assert!(matches!(r, Err(VaultError::WrongUnsealKey)), "{r:?}");
    assert!(matches!(
        b.unseal_with_key_file(dir.join("vault.key")).await,
        Err(VaultError::SealMethodMismatch {
            configured: "pkcs11",
            given: "key-file"
        })
    ));
    assert!(b.is_sealed());
    b.unseal_with_pkcs11(&good).await.unwrap();
    assert_eq!(
        b.get("hsm/k").await.unwrap().unwrap().as_slice(),
        b"protected by the token"
    );
    assert_eq!(b.rotate_root_key().await.unwrap(), 2);
    b.put("hsm/after-rotation", b"r").await.unwrap();

    // Restart: a new process unseals with the PIN from a file.
    drop(b);
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
    let b = Arc::new(Barrier::new(target.open().await));
    assert!(b.is_sealed());
    b.unseal_with_pkcs11(&config(PinSource::File(pin_file), "rampart-root"))
        .await
        .unwrap();
    assert_eq!(
        b.get("hsm/k").await.unwrap().unwrap().as_slice(),
        b"protected by the token"
    );
    assert_eq!(
        b.get("hsm/after-rotation")
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
        b"r"
    );

    // A tampered sealed keyring key is refused.
    b.seal();
    let mut bad = sealed.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    b.backend()
        .put(b"vault/sys/keyring-key", &bad)
        .await
        .unwrap();
    assert!(matches!(
        b.unseal_with_pkcs11(&good).await,
        Err(VaultError::WrongUnsealKey)
    ));
    b.backend()
        .put(b"vault/sys/keyring-key", &sealed)
        .await
        .unwrap();
    b.unseal_with_pkcs11(&good).await.unwrap();
    assert!(!b.is_sealed());
}
