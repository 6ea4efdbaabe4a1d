"""Schema fuzzing of the vault: builds the OpenAPI (Swagger 2.0) description of the part of
Azure Key Vault's data-plane API that rampart serves, from Azure's own spec, then runs
`schemathesis run` against a running `rampart up` with it.

Run by crates/rampart/tests/vault_schema.rs in the venv scripts/test.sh makes. Environment:

  RAMPART_SHARED_DIR    holds specs/azure-keyvault/2026-04-01 (Azure's Swagger files)
  RAMPART_VAULT_URL     the vault URL from the banner (https://localhost:PORT)
  RAMPART_CA            the development CA the vault's certificate chains to
  RAMPART_VAULT_RESOURCE  the token audience (`[vault] resource`)
  IDENTITY_ENDPOINT, IDENTITY_HEADER  a workload holding "Key Vault Administrator" on the
                        default vault (the bearer token comes from there)
  RAMPART_SCHEMA_SEED   the Hypothesis seed (a number); "random" draws one (printed)
  RAMPART_SCHEMA_EXAMPLES  examples per operation in the fuzzing phase
  RAMPART_SCHEMA_OUT    where the description and schemathesis' reports are written

Extra arguments are passed to `schemathesis run`. The exit code is schemathesis'.
"""

import json
import os
import random
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

SPEC_VERSION = "2026-04-01"
SPEC_FILES = ["Secrets/secrets.json", "Keys/keys.json", "Certificates/certificates.json",
              "Administration/administration.json"]

# The operations rampart serves (operationIds of Azure's spec): every one is fuzzed.
SERVED = {
    # Secrets: all of them.
    "SetSecret", "DeleteSecret", "UpdateSecret", "GetSecret", "GetSecrets", "GetSecretVersions",
    "GetDeletedSecrets", "GetDeletedSecret", "PurgeDeletedSecret", "RecoverDeletedSecret",
    "BackupSecret", "RestoreSecret",
    # Keys.
    "CreateKey", "RotateKey", "ImportKey", "DeleteKey", "UpdateKey", "GetKey", "GetKeyVersions",
    "GetKeys", "BackupKey", "RestoreKey", "encrypt", "decrypt", "sign", "verify", "wrapKey",
    "unwrapKey", "GetKeyRotationPolicy", "UpdateKeyRotationPolicy", "GetRandomBytes",
    "GetDeletedKeys", "GetDeletedKey", "PurgeDeletedKey", "RecoverDeletedKey",
    # Certificates (no issuers).
    "GetCertificates", "DeleteCertificate", "GetCertificate", "UpdateCertificate",
    "BackupCertificate", "CreateCertificate", "ImportCertificate", "GetCertificateOperation",
    "UpdateCertificateOperation", "DeleteCertificateOperation", "MergeCertificate",
    "GetCertificatePolicy", "UpdateCertificatePolicy", "GetCertificateVersions",
    "GetCertificateContacts", "SetCertificateContacts", "DeleteCertificateContacts",
    "RestoreCertificate", "GetDeletedCertificates", "GetDeletedCertificate",
    "PurgeDeletedCertificate", "RecoverDeletedCertificate",
}

# Azure operations rampart deliberately does not serve, and what it answers for them.
LEFT_OUT = {
    # Keys needing hardware attestation or secure key release (Managed HSM / confidential
    # computing): POST .../release|securewrapkey|secureunwrapkey is 404 (no route, Azure's
    # error body); GET .../attestation matches GET /keys/{name}/{version}: 404 KeyNotFound.
    "GetKeyAttestation": "404 KeyNotFound (read as version 'attestation')",
    "release": "404 no route",
    "securewrapkey": "404 no route",
    "secureunwrapkey": "404 no route",
    # Certificate issuers (a CA integration rampart does not have): GET /certificates/issuers
    # reads a certificate named "issuers" (404 CertificateNotFound); the {issuer-name} routes
    # are GET/PATCH certificate versions (404) or PUT/DELETE 405.
    "GetCertificateIssuers": "404 CertificateNotFound",
    "GetCertificateIssuer": "404 CertificateNotFound",
    "SetCertificateIssuer": "405",
    "UpdateCertificateIssuer": "404 CertificateNotFound",
    "DeleteCertificateIssuer": "405",
    # Managed HSM administration (RBAC, full backup/restore, EKM, settings): rampart manages
    # roles with `rampart access` and backups with its storage; every route is 404.
    "RoleAssignments_ListForScope": "404", "RoleAssignments_Get": "404",
    "RoleAssignments_Create": "404", "RoleAssignments_Delete": "404",
    "RoleDefinitions_List": "404", "RoleDefinitions_Get": "404",
    "RoleDefinitions_CreateOrUpdate": "404", "RoleDefinitions_Delete": "404",
    "FullBackup": "404", "FullBackupStatus": "404", "PreFullBackup": "404",
    "PreFullRestoreOperation": "404", "FullRestoreOperation": "404", "RestoreStatus": "404",
    "SelectiveKeyRestoreOperation": "405 (PUT /keys/{name}/restore is no route)",
    "GetEkmConnection": "404", "UpdateEkmConnection": "404", "DeleteEkmConnection": "404",
    "GetEkmCertificate": "404", "CheckEkmConnection": "404", "CreateEkmConnection": "404",
    "GetSettings": "404", "GetSetting": "404", "UpdateSetting": "404",
}


def shared_dir():
    default = Path(__file__).resolve().parents[2].parent / "shared"
    return Path(os.environ.get("RAMPART_SHARED_DIR", default))


def prefixed(node, prefix):
    """`node` with `#/definitions/X` and `#/parameters/X` refs renamed to `prefix.X` (the four
    files define different `Attributes`, `KeyProperties`, ...); example refs dropped."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "x-ms-examples":
                continue  # refs to example files, not part of the contract
            if key == "$ref" and value.startswith("#/"):
                section, name = value[2:].split("/", 1)
                value = f"#/{section}/{prefix}.{name}"
            out[key] = prefixed(value, prefix)
        return out
    if isinstance(node, list):
        return [prefixed(item, prefix) for item in node]
    return node


def description(spec_dir, vault_url):
    """The Swagger 2.0 description of the served operations, on `vault_url`, bearer auth."""
    url = urllib.parse.urlsplit(vault_url)
    out = {
        "swagger": "2.0",
        "info": {"title": "rampart vault (Azure Key Vault data plane)", "version": SPEC_VERSION},
        "host": url.netloc, "schemes": [url.scheme], "basePath": "/",
        "consumes": ["application/json"], "produces": ["application/json"],
        # Swagger 2.0 has no bearer type: an API key in the Authorization header is its form.
        "securityDefinitions": {"bearer": {"type": "apiKey", "in": "header",
                                           "name": "Authorization"}},
        "security": [{"bearer": []}],
        "paths": {}, "definitions": {}, "parameters": {},
    }
    seen = set()
    for name in SPEC_FILES:
        prefix = name.split("/")[0]
        spec = prefixed(json.loads((spec_dir / name).read_text()), prefix)
        for section in ("definitions", "parameters"):
            for key, value in spec.get(section, {}).items():
                out[section][f"{prefix}.{key}"] = value
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                op_id = operation["operationId"]
                if op_id not in SERVED and op_id not in LEFT_OUT:
                    sys.exit(f"{op_id} ({method.upper()} {path}) is in neither SERVED nor "
                             "LEFT_OUT: review it")
                seen.add(op_id)
                if op_id in SERVED:
                    out["paths"].setdefault(path, {})[method] = operation
    missing = (SERVED | LEFT_OUT.keys()) - seen
    if missing:
        sys.exit(f"not in the spec: {sorted(missing)}")
    # The version this description is of; others are 400 (negative cases still send them).
    for key, param in out["parameters"].items():
        if param["name"] == "api-version":
            param.pop("minLength", None)
            param["enum"] = [SPEC_VERSION]
    return out


def bearer_token():
    query = urllib.parse.urlencode({"api-version": "2019-08-01",
                                    "resource": os.environ["RAMPART_VAULT_RESOURCE"]})
    request = urllib.request.Request(f"{os.environ['IDENTITY_ENDPOINT']}?{query}",
                                     headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["access_token"]


def main():
    spec_dir = shared_dir() / "specs/azure-keyvault" / SPEC_VERSION
    vault_url = os.environ["RAMPART_VAULT_URL"]
    out_dir = Path(os.environ["RAMPART_SCHEMA_OUT"])
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = out_dir / "vault-openapi.json"
    schema.write_text(json.dumps(description(spec_dir, vault_url), indent=1))
    seed = os.environ.get("RAMPART_SCHEMA_SEED", "1")
    if seed == "random":
        seed = str(random.randrange(2**32))
    print(f"schemathesis seed {seed} (RAMPART_SCHEMA_SEED={seed} reproduces this run)",
          flush=True)
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run", str(schema),
        "--url", vault_url.rstrip("/"),
        "--header", f"Authorization: Bearer {bearer_token()}",
        "--tls-verify", os.environ["RAMPART_CA"],
        "--checks", "not_a_server_error,response_schema_conformance",
        "--seed", seed,
        "--max-examples", os.environ.get("RAMPART_SCHEMA_EXAMPLES", "10"),
        "--generation-database", "none",
        "--report", "junit", "--report-dir", str(out_dir),
        "--no-color",
        *sys.argv[1:],
    ]
    return subprocess.run(command, cwd=out_dir, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
