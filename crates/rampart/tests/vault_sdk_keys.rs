//! The Azure SDK (azure-keyvault-keys KeyClient and CryptographyClient) against the real
//! binary: `rampart up`, workloads given roles through `rampart access assign` (Key Vault Crypto
//! Officer; Key Vault Administrator for random bytes), then the pytest suite
//! tests/python/test_vault_keys.py driving the key operations with `ManagedIdentityCredential`
//! and checking signatures and ciphertexts with Python `cryptography` (the venv
//! scripts/test.sh prepares). Fails when pytest fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

struct Plane(Child);

impl Drop for Plane {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rampart(config: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The venv scripts/test.sh prepares (azure-identity, azure-keyvault-*, pytest).
fn python() -> PathBuf {
    let path = std::env::var_os("RAMPART_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("rampart/venv-identity/bin/python")
        });
    assert!(
        path.exists(),
        "{} is missing: run scripts/test.sh (it creates the venv with the Azure SDKs)",
        path.display()
    );
    path
}

/// Registers a workload; returns (identity endpoint, identity header, oid).
fn workload(config: &Path, data: &Path, name: &str) -> (String, String, String) {
    let added = stdout_of(&rampart(
        config,
        data,
        &["identity", "workload", "add", name],
    ));
    let line = |prefix: &str| {
        added
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {added}"))
            .to_owned()
    };
    let (endpoint, header) = (line("IDENTITY_ENDPOINT="), line("IDENTITY_HEADER="));
    let listed = stdout_of(&rampart(config, data, &["identity", "workload", "list"]));
    let oid = listed
        .lines()
        .find(|l| l.starts_with(&format!("{name}\t")))
        .and_then(|l| l.split('\t').find_map(|f| f.strip_prefix("oid=")))
        .unwrap_or_else(|| panic!("no oid for {name} in {listed}"))
        .to_owned();
    (endpoint, header, oid)
}

#[test]
fn azure_sdk_drives_the_key_operations() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let config = temp.path().join("rampart.toml");
    std::fs::write(
        &config,
        "[admin]\nlisten = \"127.0.0.1:0\"\n[gateway]\nlisten = \"127.0.0.1:0\"\n\
         [demo]\nlisten = \"127.0.0.1:0\"\n[identity]\nlisten = \"127.0.0.1:0\"\n\
         managed_identity_listen = \"127.0.0.1:0\"\n[vault]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();

    // On the data directory, before the plane runs.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg("up")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let plane = Plane(child);
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Ctrl-C stops it") {
            break;
        }
    }
    let field = |label: &str| -> String {
        banner
            .lines()
            .find_map(|line| line.trim_start().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} line in banner:\n{banner}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let vault_url = field("vault ");

    // Through the running plane: two workloads, one with a role on the default vault.
    let (endpoint, header, oid) = workload(&config, &data, "orders-api");
    let (_, admin_header, admin_oid) = workload(&config, &data, "vault-admin");
    for (principal, role) in [
        (&oid, "Key Vault Crypto Officer"),
        (&admin_oid, "Key Vault Administrator"),
    ] {
        let assigned = stdout_of(&rampart(
            &config,
            &data,
            &[
                "access",
                "assign",
                principal,
                role,
                "--scope",
                "/vaults/default",
            ],
        ));
        assert!(!assigned.is_empty());
    }

    let mut command = Command::new(python());
    command
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/test_vault_keys.py"))
        .env("RAMPART_VAULT_URL", &vault_url)
        .env("RAMPART_CA", data.join("tls/ca.pem"))
        .env("IDENTITY_ENDPOINT", &endpoint)
        .env("IDENTITY_HEADER", &header)
        .env("RAMPART_ADMIN_HEADER", &admin_header)
        .env("NO_PROXY", "*");
    for name in [
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_USERNAME",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IDENTITY_SERVER_THUMBPRINT",
    ] {
        command.env_remove(name);
    }
    let output = command.output().unwrap();
    drop(plane);
    assert!(
        output.status.success(),
        "pytest failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("17 passed"), "{report}");
}
