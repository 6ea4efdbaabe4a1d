//! Schema fuzzing of the vault API: `rampart up`, a workload made Key Vault Administrator of the
//! default vault (so requests get past RBAC), then tests/python/vault_schemathesis.py builds
//! the OpenAPI description of the served operations from Azure's spec
//! (`$RAMPART_SHARED_DIR/specs/azure-keyvault/2026-04-01`) and runs `schemathesis run` on every
//! one of them with the `not_a_server_error` and `response_schema_conformance` checks. Fails
//! when schemathesis reports any failure. The seed is fixed (reproducible CI);
//! `RAMPART_SCHEMA_SEED=random` (or a number) explores other inputs, see docs/vault-api.md.

mod common;

use common::{RunningPlane, python, stdout_of, workload};
use std::path::Path;
use std::process::Command;

/// No 429 while fuzzing: the throttle is tested elsewhere (crates/vault-api/tests/router.rs).
const UNTHROTTLED: &str =
    "throttle_window = \"1s\"\nthrottle_all = 10000000\nthrottle_secret_create = 10000000\n";

#[test]
fn schemathesis_finds_no_server_error_or_schema_deviation() {
    let Some(shared) = rampart_test_support::shared::shared_dir() else {
        return;
    };
    let plane = RunningPlane::start(UNTHROTTLED);
    let vault_url = plane.field("vault ");
    let (endpoint, header, oid) = workload(&plane.config, &plane.data_dir, "fuzzer");
    stdout_of(&plane.rampart(&[
        "access",
        "assign",
        &oid,
        "Key Vault Administrator",
        "--scope",
        "/vaults/default",
    ]));

    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vault-schema");
    let output = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/vault_schemathesis.py"))
        .env("RAMPART_SHARED_DIR", &shared)
        .env("RAMPART_VAULT_URL", &vault_url)
        .env("RAMPART_VAULT_RESOURCE", "https://vault.rampart.local")
        .env("RAMPART_CA", plane.data_dir.join("tls/ca.pem"))
        .env("RAMPART_SCHEMA_OUT", &out_dir)
        .env("IDENTITY_ENDPOINT", &endpoint)
        .env("IDENTITY_HEADER", &header)
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    drop(plane);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures (reports in {}):\n{report}\n{}",
        out_dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    // Every served operation ran (a description that lost operations would pass vacuously).
    assert!(report.contains("Tested: 57"), "{report}");
}
