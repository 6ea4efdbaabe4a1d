//! `[vault] seal = "pkcs11"` through `rampart up` with a real SoftHSM2 token: the first start
//! generates the AES key on the token and initializes the vault with it, every later start
//! unseals through the HSM; a wrong PIN or a PIN file others can read stops the start with a
//! clear error. Each test has a private token directory (`SOFTHSM2_CONF` for the plane only).
//! Fails when SoftHSM2 is missing and `CI` is set (`scripts/test.sh` installs it).

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{RunningPlane, VaultHttp, managed_identity_token};
use http::StatusCode;

const TOKEN: &str = "rampart";
const PIN: &str = "4321";
const PIN_ENV: &str = "RAMPART_TEST_HSM_PIN";
const RESOURCE: &str = "https://vault.rampart.local";

fn module() -> PathBuf {
    std::env::var_os("RAMPART_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// Whether SoftHSM2 is installed; panics when it is not and `CI` is set.
fn softhsm_present() -> bool {
    let util = Command::new("softhsm2-util").arg("--version").output();
    let present = util.is_ok_and(|o| o.status.success()) && module().exists();
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "SoftHSM2 is required in CI (apt-get install softhsm2; scripts/test.sh does it)"
        );
        eprintln!("skipping: SoftHSM2 is not installed (apt-get install softhsm2)");
    }
    present
}

/// A private token directory with an initialized token; returns its `softhsm2.conf`.
fn init_token(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            "1234",
            "--pin",
            PIN,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "softhsm2-util --init-token failed: {out:?}"
    );
    conf
}

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
    if !softhsm_present() {
        return;
    }
    let hsm = tempfile::tempdir().unwrap();
    let conf = init_token(hsm.path());
    let env: [(&str, &OsStr); 2] = [
        ("SOFTHSM2_CONF", conf.as_os_str()),
        (PIN_ENV, OsStr::new(PIN)),
    ];
    let extra = format!(
        "seal = \"pkcs11\"\npkcs11_module = \"{}\"\npkcs11_token_label = \"{TOKEN}\"\npkcs11_pin_env = \"{PIN_ENV}\"\n",
        module().display()
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

    let (_, header, _) = common::workload(&plane.config, &plane.data_dir, "app");
    let (token, oid) = managed_identity_token(&plane.field("workloads"), &header, RESOURCE);
    let assigned = plane.rampart(&[
        "access",
        "assign",
        &oid,
        "Key Vault Secrets Officer",
        "--scope",
        "/vaults/default",
    ]);
    assert!(assigned.status.success(), "{assigned:?}");
    let vault = VaultHttp::new(&plane.field("vault "), &plane.data_dir.join("tls/ca.pem"));
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
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
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
    let vault = VaultHttp::new(
        &restarted.field("vault "),
        &restarted.data_dir.join("tls/ca.pem"),
    );
    let (token, _) = managed_identity_token(&restarted.field("workloads"), &header, RESOURCE);
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
