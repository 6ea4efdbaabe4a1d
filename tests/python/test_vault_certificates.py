"""Certificate operations of the Azure SDK (azure-keyvault-certificates CertificateClient, and
SecretClient for the private key, as Azure apps download it) against rampart's vault,
unchanged but for the vault URL and the credential.

Run with pytest by crates/vault-api/tests/certificates_sdk.rs (in-process HTTPS server, static
token) and by crates/rampart/tests/vault_sdk.rs (`rampart up`, ManagedIdentityCredential, the
Certificates Officer role), in the venv scripts/test.sh makes. Environment:

  RAMPART_VAULT_URL   the vault URL (https://localhost:PORT)
  RAMPART_CA          the CA the vault's TLS certificate chains to
  RAMPART_TEST_TOKEN  a bearer token to use (else ManagedIdentityCredential: IDENTITY_ENDPOINT,
                      IDENTITY_HEADER of a workload with "Key Vault Certificates Officer" and
                      "Key Vault Secrets User")
"""

import base64
import os
import subprocess
import tempfile
import time
import uuid

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContact,
    CertificateContentType,
    CertificatePolicy,
    KeyType,
)
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

VAULT_URL = os.environ["RAMPART_VAULT_URL"]
CA = os.environ["RAMPART_CA"]


class StaticToken:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self.token, int(time.time()) + 3600)


def credential():
    token = os.environ.get("RAMPART_TEST_TOKEN")
    if token:
        return StaticToken(token)
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential()


def options():
    return {"verify_challenge_resource": False, "connection_verify": CA}


@pytest.fixture(scope="module")
def certs():
    return CertificateClient(vault_url=VAULT_URL, credential=credential(), **options())


@pytest.fixture(scope="module")
def secrets():
    return SecretClient(vault_url=VAULT_URL, credential=credential(), **options())


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_create_default_policy_and_download_private_key(certs, secrets):
    n = name("default")
    cert = certs.begin_create_certificate(n, CertificatePolicy.get_default(), _polling_interval=0).result()
    assert cert.name == n
    parsed = x509.load_der_x509_certificate(bytes(cert.cer))
    assert parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "DefaultPolicy"
    assert cert.policy.issuer_name == "Self"
    assert cert.policy.key_type == KeyType.rsa and cert.policy.key_size == 2048
    assert cert.key_id.endswith(f"/keys/{n}/{cert.properties.version}")
    assert cert.secret_id.endswith(f"/secrets/{n}/{cert.properties.version}")
    digest = hashes.Hash(hashes.SHA1())
    digest.update(bytes(cert.cer))
    assert cert.properties.x509_thumbprint == digest.finalize()
    # Self-signed: the signature verifies with its own public key.
    parsed.public_key().verify(
        parsed.signature, parsed.tbs_certificate_bytes, padding.PKCS1v15(), parsed.signature_hash_algorithm
    )
    # The private key, as apps download it: the secret holds a PFX (no password).
    secret = secrets.get_secret(n)
    assert secret.properties.content_type == "application/x-pkcs12"
    assert secret.properties.managed is True
    key, leaf, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert leaf.public_bytes(serialization.Encoding.DER) == bytes(cert.cer)
    signature = key.sign(b"hello", padding.PKCS1v15(), hashes.SHA256())
    parsed.public_key().verify(signature, b"hello", padding.PKCS1v15(), hashes.SHA256())
    # The managed secret cannot be changed directly.
    with pytest.raises(HttpResponseError) as refused:
        secrets.set_secret(n, "overwrite")
    assert refused.value.status_code == 403


def test_ec_pem_policy_sans_and_validity(certs, secrets):
    n = name("ec")
    policy = CertificatePolicy(
        issuer_name="Self",
        subject="CN=svc.example.com",
        san_dns_names=["svc.example.com", "alt.example.com"],
        key_type=KeyType.ec,
        key_curve_name="P-256",
        content_type=CertificateContentType.pem,
        validity_in_months=3,
    )
    cert = certs.begin_create_certificate(n, policy, _polling_interval=0).result()
    parsed = x509.load_der_x509_certificate(bytes(cert.cer))
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"svc.example.com", "alt.example.com"}
    days = (parsed.not_valid_after_utc - parsed.not_valid_before_utc).days
    assert 88 <= days <= 92
    pem = secrets.get_secret(n).value
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    sig = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    parsed.public_key().verify(sig, b"data", ec.ECDSA(hashes.SHA256()))
    got = certs.get_certificate_policy(n)
    assert got.content_type == CertificateContentType.pem and got.validity_in_months == 3
    updated = certs.update_certificate_policy(
        n,
        CertificatePolicy(
            issuer_name="Self",
            subject="CN=svc.example.com",
            key_type=KeyType.ec,
            key_curve_name="P-256",
            content_type=CertificateContentType.pem,
            validity_in_months=6,
        ),
    )
    assert updated.validity_in_months == 6
    assert certs.get_certificate_policy(n).validity_in_months == 6


def _self_signed_pfx(password):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imported.example.com")])
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as d:
        kp, cp, out = (os.path.join(d, f) for f in ("k.pem", "c.pem", "o.pfx"))
        with open(kp, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        with open(cp, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-inkey", kp, "-in", cp, "-passout", f"pass:{password}", "-out", out],
            check=True,
        )
        with open(out, "rb") as f:
            return f.read(), cert


def test_import_password_pfx_and_list(certs):
    n = name("imported")
    pfx, cert = _self_signed_pfx("s3cret")
    with pytest.raises(HttpResponseError) as wrong:
        certs.import_certificate(n, pfx, password="wrong")
    assert wrong.value.status_code == 400
    imported = certs.import_certificate(n, pfx, password="s3cret")
    assert bytes(imported.cer) == cert.public_bytes(serialization.Encoding.DER)
    assert imported.policy.subject == "CN=imported.example.com"
    assert n in {c.name for c in certs.list_properties_of_certificates()}
    assert len(list(certs.list_properties_of_certificate_versions(n))) == 1


def test_unknown_issuer_merge(certs):
    n = name("external")
    policy = CertificatePolicy(issuer_name="Unknown", subject="CN=external.example.com")
    op = certs.begin_create_certificate(n, policy, _polling_interval=0).result()
    assert op.status == "inProgress"
    csr = x509.load_der_x509_csr(bytes(certs.get_certificate_operation(n).csr))
    assert csr.is_signature_valid
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SDK test CA")])
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    signed = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=90))
        .sign(ca_key, hashes.SHA256())
    )
    merged = certs.merge_certificate(n, [signed.public_bytes(serialization.Encoding.DER)])
    assert bytes(merged.cer) == signed.public_bytes(serialization.Encoding.DER)
    assert certs.get_certificate_operation(n).status == "completed"


def test_delete_recover_purge_and_contacts(certs):
    n = name("lifecycle")
    certs.begin_create_certificate(n, CertificatePolicy.get_default(), _polling_interval=0).result()
    deleted = certs.begin_delete_certificate(n, _polling_interval=0).result()
    assert deleted.name == n and deleted.recovery_id.endswith(f"/deletedcertificates/{n}")
    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate(n)
    assert certs.get_deleted_certificate(n).name == n
    recovered = certs.begin_recover_deleted_certificate(n, _polling_interval=0).result()
    assert recovered.name == n
    certs.begin_delete_certificate(n, _polling_interval=0).result()
    certs.purge_deleted_certificate(n)
    with pytest.raises(ResourceNotFoundError):
        certs.get_deleted_certificate(n)

    contacts = [CertificateContact(email="ops@example.com", name="Ops", phone="555")]
    saved = certs.set_contacts(contacts)
    assert [c.email for c in saved] == ["ops@example.com"]
    assert [c.name for c in certs.get_contacts()] == ["Ops"]
    certs.delete_contacts()


def test_backup_restore(certs):
    n = name("backed")
    first = certs.begin_create_certificate(n, CertificatePolicy.get_default(), _polling_interval=0).result()
    blob = certs.backup_certificate(n)
    certs.begin_delete_certificate(n, _polling_interval=0).result()
    certs.purge_deleted_certificate(n)
    restored = certs.restore_certificate_backup(blob)
    assert restored.name == n and bytes(restored.cer) == bytes(first.cer)
