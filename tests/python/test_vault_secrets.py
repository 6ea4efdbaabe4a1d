"""Every secrets operation of the Azure SDK (azure-keyvault-secrets SecretClient) against a
running `rampart up`, unchanged but for the vault URL and the credential.

Run with pytest by crates/rampart/tests/vault_sdk.rs, in the venv scripts/test.sh makes.
Environment:

  RAMPART_VAULT_URL     the vault URL from the banner (https://localhost:PORT)
  RAMPART_CA            the development CA the vault's certificate chains to
  IDENTITY_ENDPOINT, IDENTITY_HEADER   a workload holding "Key Vault Secrets Officer" on the
                        default vault (ManagedIdentityCredential reads them)
  RAMPART_NOROLE_HEADER the identity header of a workload without any role
"""

import os
import time
import uuid

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import KeyVaultSecretIdentifier, SecretClient

VAULT_URL = os.environ["RAMPART_VAULT_URL"]
CA = os.environ["RAMPART_CA"]


def client(credential=None):
    return SecretClient(
        vault_url=VAULT_URL,
        credential=credential or ManagedIdentityCredential(),
        verify_challenge_resource=False,
        connection_verify=CA,
    )


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def secrets():
    return client()


def test_set_get_versions_and_ids(secrets):
    n = name("db-password")
    first = secrets.set_secret(n, "hunter2", content_type="text/plain", tags={"env": "test"})
    assert first.value == "hunter2"
    assert first.name == n
    assert first.properties.content_type == "text/plain"
    assert first.properties.tags == {"env": "test"}
    assert first.properties.enabled is True
    assert first.properties.recovery_level == "Recoverable+Purgeable"
    assert first.properties.recoverable_days == 90
    ident = KeyVaultSecretIdentifier(first.id)
    assert ident.name == n and ident.version == first.properties.version
    assert ident.vault_url.rstrip("/") == VAULT_URL.rstrip("/")
    second = secrets.set_secret(n, "correct horse battery staple")
    assert second.properties.version != first.properties.version
    assert secrets.get_secret(n).value == "correct horse battery staple"
    assert secrets.get_secret(n, first.properties.version).value == "hunter2"
    versions = {p.version for p in secrets.list_properties_of_secret_versions(n)}
    assert versions == {first.properties.version, second.properties.version}


def test_update_properties_and_disabled_get(secrets):
    n = name("api-key")
    created = secrets.set_secret(n, "v1")
    expires = int(time.time()) + 86400
    from datetime import datetime, timezone

    updated = secrets.update_secret_properties(
        n,
        content_type="application/json",
        tags={"owner": "orders"},
        expires_on=datetime.fromtimestamp(expires, tz=timezone.utc),
    )
    assert updated.content_type == "application/json"
    assert updated.tags == {"owner": "orders"}
    assert int(updated.expires_on.timestamp()) == expires
    assert updated.version == created.properties.version
    disabled = secrets.update_secret_properties(n, created.properties.version, enabled=False)
    assert disabled.enabled is False
    with pytest.raises(HttpResponseError) as refused:
        secrets.get_secret(n)
    assert refused.value.status_code == 403
    assert refused.value.error.code == "Forbidden"
    assert "disabled secret" in refused.value.message


def test_list_pages_and_never_values(secrets):
    prefix = name("page")
    created = {f"{prefix}-{i}" for i in range(7)}
    for n in created:
        secrets.set_secret(n, "x")
    pages = secrets.list_properties_of_secrets(max_page_size=3).by_page()
    seen = set()
    page_count = 0
    for page in pages:
        page_count += 1
        for props in page:
            seen.add(props.name)
    assert created <= seen
    assert page_count >= 3


def test_delete_recover_purge_and_name_lock(secrets):
    n = name("rotating")
    secrets.set_secret(n, "old")
    deleted = secrets.begin_delete_secret(n).result()
    assert deleted.name == n
    assert deleted.recovery_id.endswith(f"/deletedsecrets/{n}")
    assert (deleted.scheduled_purge_date - deleted.deleted_date).days == 90
    with pytest.raises(ResourceNotFoundError):
        secrets.get_secret(n)
    with pytest.raises(ResourceExistsError) as conflict:
        secrets.set_secret(n, "new")
    assert conflict.value.status_code == 409
    assert "deleted but recoverable" in conflict.value.message
    assert secrets.get_deleted_secret(n).name == n
    assert n in {d.name for d in secrets.list_deleted_secrets()}
    recovered = secrets.begin_recover_deleted_secret(n).result()
    assert recovered.name == n
    assert secrets.get_secret(n).value == "old"
    secrets.begin_delete_secret(n).result()
    secrets.purge_deleted_secret(n)
    with pytest.raises(ResourceNotFoundError):
        secrets.get_deleted_secret(n)
    assert secrets.set_secret(n, "reborn").value == "reborn"


def test_backup_and_restore_all_versions(secrets):
    n = name("backed-up")
    values = ["one", "two", "three"]
    ids = [secrets.set_secret(n, v).properties.version for v in values]
    blob = secrets.backup_secret(n)
    assert isinstance(blob, bytes) and b"three" not in blob
    with pytest.raises(ResourceExistsError):
        secrets.restore_secret_backup(blob)
    secrets.begin_delete_secret(n).result()
    secrets.purge_deleted_secret(n)
    restored = secrets.restore_secret_backup(blob)
    assert restored.name == n and restored.version == ids[-1]
    for version, value in zip(ids, values):
        assert secrets.get_secret(n, version).value == value


def test_missing_secret_is_azure_404(secrets):
    with pytest.raises(ResourceNotFoundError) as missing:
        secrets.get_secret(name("nothing"))
    assert missing.value.error.code == "SecretNotFound"


def test_a_workload_without_a_role_is_forbidden(monkeypatch):
    monkeypatch.setenv("IDENTITY_HEADER", os.environ["RAMPART_NOROLE_HEADER"])
    outsider = client(ManagedIdentityCredential())
    with pytest.raises(HttpResponseError) as refused:
        outsider.set_secret(name("nope"), "x")
    assert refused.value.status_code == 403


class _OtherAudience:
    """A managed-identity credential that asks for a token of another resource (wrong aud)."""

    def __init__(self):
        self._inner = ManagedIdentityCredential()

    def get_token(self, *scopes, **kwargs):
        return self._inner.get_token("https://storage.rampart.local/.default")


def test_a_token_for_another_audience_is_refused():
    wrong = client(_OtherAudience())
    with pytest.raises(HttpResponseError) as refused:
        wrong.get_secret(name("any"))
    assert refused.value.status_code == 401
