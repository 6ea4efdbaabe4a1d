//! The Azure SDK (azure-keyvault-keys KeyClient and CryptographyClient) against the real
//! binary: `rampart up`, workloads given roles through `rampart access assign` (Key Vault Crypto
//! Officer; Key Vault Administrator for random bytes), then the pytest suite
//! tests/python/test_vault_keys.py driving the key operations with `ManagedIdentityCredential`
//! and checking signatures and ciphertexts with Python `cryptography` (the venv
//! scripts/test.sh prepares). Fails when pytest fails.

mod common;

use common::{RunningPlane, python, rampart, stdout_of, workload};
use std::path::Path;
use std::process::Command;

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
    let plane = RunningPlane::launch(config.clone(), data.clone());
    let vault_url = plane.field("vault ");

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
