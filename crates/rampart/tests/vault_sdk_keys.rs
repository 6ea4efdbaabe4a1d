//! The Azure SDK (azure-keyvault-keys KeyClient and CryptographyClient) against the real
//! binary: `rampart up`, workloads given roles through `rampart access assign` (Key Vault Crypto
//! Officer; Key Vault Administrator for random bytes), then the pytest suite
//! tests/python/test_vault_keys.py driving the key operations with `ManagedIdentityCredential`
//! and checking signatures and ciphertexts with Python `cryptography` (the venv
//! scripts/test.sh prepares). Fails when pytest fails.

mod common;

use common::{RunningPlane, rampart, run_pytest, stdout_of, workload};

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

    let ca = data.join("tls/ca.pem");
    run_pytest(
        "test_vault_keys.py",
        &[
            ("RAMPART_VAULT_URL", vault_url.as_ref()),
            ("RAMPART_CA", ca.as_os_str()),
            ("IDENTITY_ENDPOINT", endpoint.as_ref()),
            ("IDENTITY_HEADER", header.as_ref()),
            ("RAMPART_ADMIN_HEADER", admin_header.as_ref()),
        ],
        "17 passed",
    );
    drop(plane);
}
