//! `[vault] seal = "pkcs11"` through `rampart up` with a real SoftHSM2 token: the first start
//! generates the AES key on the token and initializes the vault with it, every later start
//! unseals through the HSM; a wrong PIN or a PIN file others can read stops the start with a
//! clear error. Each test has a private token directory (`SOFTHSM2_CONF` for the plane only).
//! Fails when SoftHSM2 is missing and `CI` is set (`scripts/test.sh` installs it).

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::RunningPlane;
use http::StatusCode;
use rampart_test_support::softhsm::{self, TOKEN_LABEL, USER_PIN};

const PIN_ENV: &str = "RAMPART_TEST_HSM_PIN";

/// `rampart up` that must fail to start: its stderr.
fn failed_start(plane: &RunningPlane, env: &[(&str, &OsStr)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--config")
        .arg(&plane.config)
        .arg("--data-dir")
        .arg(&plane.data_dir)
        .arg("up")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success(), "started: {output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("Ctrl-C stops it"), "{stdout}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs11_seal_initializes_and_unseals_at_start() {
    if !softhsm::present() {
        return;
    }
    let hsm = tempfile::tempdir().unwrap();
    let conf = softhsm::init_token(hsm.path());
    let env: [(&str, &OsStr); 2] = [
        ("SOFTHSM2_CONF", conf.as_os_str()),
        (PIN_ENV, OsStr::new(USER_PIN)),
    ];
    let extra = format!(
        "seal = \"pkcs11\"\npkcs11_module = \"{}\"\npkcs11_token_label = \"{TOKEN_LABEL}\"\npkcs11_pin_env = \"{PIN_ENV}\"\n",
        softhsm::module().display()
    );
    let mut plane = RunningPlane::start_with_env(&extra, &env);
    assert!(
        plane
            .banner
            .contains("HSM key \"rampart-vault-root\" on PKCS#11 token \"rampart\""),
        "{}",
        plane.banner
    );
    assert!(!plane.data_dir.join("vault-unseal.key").exists());
    let status = String::from_utf8(plane.rampart(&["vault", "status"]).stdout).unwrap();
    assert!(status.contains("seal type     pkcs11"), "{status}");
    assert!(status.contains("sealed        false"), "{status}");
    refused_init(&plane);

    let (token, header) = plane.vault_workload("app", "Key Vault Secrets Officer");
    let vault = plane.vault();
    let (code, body) = vault.set_secret(&token, "api-key", "s3cret").await.unwrap();
    assert_eq!(code, StatusCode::OK, "{body}");
    plane.stop();

    // Without the HSM PIN, or with a wrong one, the plane does not start.
    let wrong: [(&str, &OsStr); 2] = [
        ("SOFTHSM2_CONF", conf.as_os_str()),
        (PIN_ENV, OsStr::new("wrongpin")),
    ];
    let stderr = failed_start(&plane, &wrong);
    assert!(
        stderr.contains("cannot unseal the vault with the HSM key"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrongpin"),
        "the PIN is in the output: {stderr}"
    );
    let stderr = failed_start(&plane, &[("SOFTHSM2_CONF", conf.as_os_str())]);
    assert!(stderr.contains(PIN_ENV), "{stderr}");

    // The right PIN, from a 0600 file this time: unsealed at start, the secret is there.
    let pin_file = hsm.path().join("pin");
    std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = std::fs::read_to_string(&plane.config).unwrap().replace(
        &format!("pkcs11_pin_env = \"{PIN_ENV}\""),
        &format!("pkcs11_pin_file = \"{}\"", pin_file.display()),
    );
    std::fs::write(&plane.config, config).unwrap();
    let stderr = failed_start(&plane, &[("SOFTHSM2_CONF", conf.as_os_str())]);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let restarted = RunningPlane::launch_with_env(
        plane.config.clone(),
        plane.data_dir.clone(),
        &[("SOFTHSM2_CONF", conf.as_os_str())],
    );
    let vault = restarted.vault();
    let token = restarted.vault_token(&header);
    let (code, body) = vault
        .call("GET", "/secrets/api-key", Some(&token), None)
        .await
        .unwrap();
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["value"], "s3cret");
}

/// The HSM seal is initialized at start: `rampart vault init` is refused.
fn refused_init(plane: &RunningPlane) {
    let output = plane.rampart(&["vault", "init"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("pkcs11 seal"),
        "{output:?}"
    );
}
