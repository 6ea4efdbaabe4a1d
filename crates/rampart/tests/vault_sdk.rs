//! The Azure SDK (azure-keyvault-secrets) against the real binary: `rampart up`, workloads
//! registered and given a role through the running plane, then the pytest suite
//! tests/python/test_vault_secrets.py driving every secrets operation (then, with the
//! Certificates Officer role, tests/python/test_vault_certificates.py) with
//! `ManagedIdentityCredential` (the venv scripts/test.sh prepares). Fails when pytest fails.

mod common;

use common::{RunningPlane, rampart, run_pytest, stdout_of, workload};

#[test]
fn azure_sdk_drives_every_secrets_operation() {
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
    let created = stdout_of(&rampart(
        &config,
        &data,
        &[
            "vault",
            "create",
            "stamp-2",
            "--retention-days",
            "30",
            "--purge-protection",
        ],
    ));
    assert!(created.contains("created vault stamp-2"), "{created}");
    for bad in [
        vec!["vault", "create", "stamp-2"],
        vec!["vault", "create", "2bad"],
        vec!["vault", "create", "ok-name", "--retention-days", "6"],
    ] {
        let output = rampart(&config, &data, &bad);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
    }
    let listed = stdout_of(&rampart(&config, &data, &["vault", "list"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with("default\tretention_days=90\tpurge_protection=false"),
        "{listed}"
    );
    assert!(
        lines[1].starts_with("stamp-2\tretention_days=30\tpurge_protection=true"),
        "{listed}"
    );

    let plane = RunningPlane::launch(config.clone(), data.clone());
    let vault_url = plane.field("vault ");

    // Through the running plane: two workloads, one with a role on the default vault.
    let (endpoint, header, oid) = workload(&config, &data, "orders-api");
    let (_, norole_header, _) = workload(&config, &data, "intruder");
    let assigned = stdout_of(&rampart(
        &config,
        &data,
        &[
            "access",
            "assign",
            &oid,
            "Key Vault Secrets Officer",
            "--scope",
            "/vaults/default",
        ],
    ));
    assert!(!assigned.is_empty());

    let ca = data.join("tls/ca.pem");
    run_pytest(
        "test_vault_secrets.py",
        &[
            ("RAMPART_VAULT_URL", vault_url.as_ref()),
            ("RAMPART_CA", ca.as_os_str()),
            ("IDENTITY_ENDPOINT", endpoint.as_ref()),
            ("IDENTITY_HEADER", header.as_ref()),
            ("RAMPART_NOROLE_HEADER", norole_header.as_ref()),
        ],
        "8 passed",
    );

    // Certificates: the same workload made Certificates Officer; CertificateClient creates,
    // imports, merges, deletes, recovers, purges, backs up, and SecretClient downloads the
    // private key (the Secrets Officer role above reads the managed secret).
    let assigned = stdout_of(&rampart(
        &config,
        &data,
        &[
            "access",
            "assign",
            &oid,
            "Key Vault Certificates Officer",
            "--scope",
            "/vaults/default",
        ],
    ));
    assert!(!assigned.is_empty());
    run_pytest(
        "test_vault_certificates.py",
        &[
            ("RAMPART_VAULT_URL", vault_url.as_ref()),
            ("RAMPART_CA", ca.as_os_str()),
            ("IDENTITY_ENDPOINT", endpoint.as_ref()),
            ("IDENTITY_HEADER", header.as_ref()),
        ],
        "6 passed",
    );
    drop(plane);
}
