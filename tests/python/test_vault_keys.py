"""Keys through the Azure SDK (azure-keyvault-keys KeyClient and CryptographyClient) against a
running `rampart up`, unchanged but for the vault URL and the credential; results are checked
with Python `cryptography` holding only the public key.

Run with pytest by crates/rampart/tests/vault_sdk_keys.rs, in the venv scripts/test.sh makes.
Environment:

  RAMPART_VAULT_URL     the vault URL from the banner (https://localhost:PORT)
  RAMPART_CA            the development CA the vault's certificate chains to
  IDENTITY_ENDPOINT, IDENTITY_HEADER   a workload holding "Key Vault Crypto Officer" on the
                        default vault (ManagedIdentityCredential reads them)
  RAMPART_ADMIN_HEADER  the identity header of a workload holding "Key Vault Administrator"
"""

import hashlib
import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential
from azure.keyvault.keys import (
    JsonWebKey,
    KeyClient,
    KeyCurveName,
    KeyOperation,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
    KeyType,
    KeyVaultKeyIdentifier,
)
from azure.keyvault.keys.crypto import (
    CryptographyClient,
    EncryptionAlgorithm,
    KeyWrapAlgorithm,
    SignatureAlgorithm,
)
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

VAULT_URL = os.environ["RAMPART_VAULT_URL"]
CA = os.environ["RAMPART_CA"]

HASHES = {"256": (hashes.SHA256(), hashlib.sha256), "384": (hashes.SHA384(), hashlib.sha384),
          "512": (hashes.SHA512(), hashlib.sha512)}
CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1(),
          "P-256K": ec.SECP256K1()}


def client(credential=None):
    return KeyClient(
        vault_url=VAULT_URL,
        credential=credential or ManagedIdentityCredential(),
        verify_challenge_resource=False,
        connection_verify=CA,
    )


def crypto(key_or_id, credential=None):
    return CryptographyClient(
        key_or_id,
        credential=credential or ManagedIdentityCredential(),
        verify_challenge_resource=False,
        connection_verify=CA,
    )


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def public_key(jwk):
    if jwk.n:
        return rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"),
                                    int.from_bytes(jwk.n, "big")).public_key()
    return ec.EllipticCurvePublicNumbers(int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"),
                                         CURVES[getattr(jwk.crv, "value", jwk.crv)]).public_key()


def verify_locally(jwk, alg, digest, signature):
    """Verifies with the public key alone, in `cryptography`."""
    h = HASHES[alg[2:5]][0]
    key = public_key(jwk)
    try:
        if alg.startswith("RS"):
            key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(h))
        elif alg.startswith("PS"):
            key.verify(signature, digest,
                       padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH),
                       utils.Prehashed(h))
        else:
            half = len(signature) // 2
            der = utils.encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                             int.from_bytes(signature[half:], "big"))
            key.verify(der, digest, ec.ECDSA(utils.Prehashed(h)))
        return True
    except InvalidSignature:
        return False


@pytest.fixture(scope="module")
def keys():
    return client()


def test_create_get_versions_and_ids(keys):
    n = name("signing")
    first = keys.create_rsa_key(n, size=3072, tags={"team": "payments"})
    assert first.name == n and first.key_type == KeyType.rsa
    assert len(first.key.n) == 384 and first.key.e == b"\x01\x00\x01"
    assert first.key.d is None and first.key.p is None
    assert set(first.key_operations) == {"encrypt", "decrypt", "sign", "verify", "wrapKey",
                                         "unwrapKey"}
    assert first.properties.tags == {"team": "payments"}
    assert first.properties.recovery_level == "Recoverable+Purgeable"
    ident = KeyVaultKeyIdentifier(first.id)
    assert ident.name == n and ident.version == first.properties.version
    second = keys.create_rsa_key(n, size=2048, hardware_protected=True)
    assert second.key_type == KeyType.rsa_hsm
    assert keys.get_key(n).id == second.id
    assert keys.get_key(n, first.properties.version).key.n == first.key.n
    versions = {p.version for p in keys.list_properties_of_key_versions(n)}
    assert versions == {first.properties.version, second.properties.version}
    assert n in {p.name for p in keys.list_properties_of_keys()}


@pytest.mark.parametrize(
    "curve,alg",
    [(KeyCurveName.p_256, "ES256"), (KeyCurveName.p_384, "ES384"),
     (KeyCurveName.p_521, "ES512"), (KeyCurveName.p_256_k, "ES256K")],
)
def test_ec_sign_verifies_with_the_public_key_alone(keys, curve, alg):
    key = keys.create_ec_key(name("ec"), curve=curve)
    assert key.key.crv == curve and key.key.d is None
    digest = HASHES[alg[2:5]][1](b"order 42").digest()
    result = crypto(key.id).sign(SignatureAlgorithm(alg), digest)
    assert result.key_id == key.id
    assert verify_locally(key.key, alg, digest, result.signature)
    tampered = bytes([digest[0] ^ 1]) + digest[1:]
    assert not verify_locally(key.key, alg, tampered, result.signature)
    assert crypto(key.id).verify(SignatureAlgorithm(alg), digest, result.signature).is_valid


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_rsa_sign_verifies_with_the_public_key_alone(keys, alg):
    key = keys.create_rsa_key(name("rsa"), size=2048)
    digest = HASHES[alg[2:5]][1](b"invoice").digest()
    result = crypto(key.id).sign(SignatureAlgorithm(alg), digest)
    assert verify_locally(key.key, alg, digest, result.signature)
    assert not verify_locally(key.key, alg, HASHES[alg[2:5]][1](b"other").digest(),
                              result.signature)


def test_encrypt_with_public_key_decrypt_in_vault_and_wrap(keys):
    key = keys.create_rsa_key(name("enc"), size=2048)
    public = public_key(key.key)
    remote = crypto(key.id)
    for alg, pad in [
        (EncryptionAlgorithm.rsa_oaep,
         padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)),
        (EncryptionAlgorithm.rsa_oaep_256,
         padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)),
        (EncryptionAlgorithm.rsa1_5, padding.PKCS1v15()),
    ]:
        plaintext = os.urandom(32)
        ciphertext = public.encrypt(plaintext, pad)
        assert remote.decrypt(alg, ciphertext).plaintext == plaintext
        # The SDK's own round trip (it may encrypt locally with the public key).
        assert remote.decrypt(alg, remote.encrypt(alg, plaintext).ciphertext).plaintext == plaintext
    cek = os.urandom(32)
    for alg in (KeyWrapAlgorithm.rsa_oaep, KeyWrapAlgorithm.rsa_oaep_256, KeyWrapAlgorithm.rsa1_5):
        wrapped = remote.wrap_key(alg, cek)
        assert wrapped.encrypted_key != cek
        assert remote.unwrap_key(alg, wrapped.encrypted_key).key == cek


def test_import_a_cryptography_key_then_sign(keys):
    private = ec.generate_private_key(ec.SECP384R1())
    numbers = private.private_numbers()
    jwk = JsonWebKey(
        kty=KeyType.ec, crv=KeyCurveName.p_384,
        x=numbers.public_numbers.x.to_bytes(48, "big"),
        y=numbers.public_numbers.y.to_bytes(48, "big"),
        d=numbers.private_value.to_bytes(48, "big"),
        key_ops=["sign", "verify"],
    )
    n = name("imported")
    imported = keys.import_key(n, jwk)
    assert imported.key.d is None and imported.key.x == jwk.x
    digest = hashlib.sha384(b"payload").digest()
    signature = crypto(imported.id).sign(SignatureAlgorithm.es384, digest).signature
    r, s = int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big")
    private.public_key().verify(utils.encode_dss_signature(r, s), digest,
                                ec.ECDSA(utils.Prehashed(hashes.SHA384())))


def test_key_ops_and_disabled_keys_are_enforced(keys):
    n = name("limited")
    key = keys.create_rsa_key(n, size=2048, key_operations=[KeyOperation.verify])
    digest = hashlib.sha256(b"x").digest()
    with pytest.raises(HttpResponseError) as err:
        crypto(key.id).sign(SignatureAlgorithm.rs256, digest)
    assert err.value.status_code == 403
    keys.update_key_properties(n, key_operations=[KeyOperation.sign], enabled=False)
    with pytest.raises(HttpResponseError) as err:
        crypto(key.id).sign(SignatureAlgorithm.rs256, digest)
    assert err.value.status_code == 403
    keys.update_key_properties(n, enabled=True)
    assert crypto(key.id).sign(SignatureAlgorithm.rs256, digest).signature


def test_rotate_and_rotation_policy(keys):
    n = name("rotating")
    first = keys.create_ec_key(n, curve=KeyCurveName.p_256)
    default = keys.get_key_rotation_policy(n)
    assert default.lifetime_actions[0].action == KeyRotationPolicyAction.notify
    policy = KeyRotationPolicy(
        expires_in="P90D",
        lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate,
                                                    time_after_create="P30D")],
    )
    updated = keys.update_key_rotation_policy(n, policy)
    assert updated.expires_in == "P90D"
    assert updated.lifetime_actions[0].time_after_create == "P30D"
    rotated = keys.rotate_key(n)
    assert rotated.properties.version != first.properties.version
    assert rotated.key.crv == first.key.crv and rotated.key.x != first.key.x
    expected = datetime.now(timezone.utc) + timedelta(days=90)
    assert abs((rotated.properties.expires_on - expected).total_seconds()) < 600


def test_delete_recover_purge_backup_restore(keys):
    n = name("lifecycle")
    created = keys.create_rsa_key(n, size=2048)
    backup = keys.backup_key(n)
    deleted = keys.begin_delete_key(n).result()
    assert deleted.name == n and deleted.recovery_id.endswith(f"/deletedkeys/{n}")
    with pytest.raises(ResourceNotFoundError):
        keys.get_key(n)
    with pytest.raises(ResourceExistsError):
        keys.create_rsa_key(n)
    assert keys.get_deleted_key(n).id == created.id
    assert n in {d.name for d in keys.list_deleted_keys()}
    recovered = keys.begin_recover_deleted_key(n).result()
    assert recovered.id == created.id
    keys.begin_delete_key(n).result()
    keys.purge_deleted_key(n)
    restored = keys.restore_key_backup(backup)
    assert restored.id == created.id and restored.key.n == created.key.n


def test_random_bytes_need_a_role_that_grants_rng(keys):
    with pytest.raises(HttpResponseError) as err:
        keys.get_random_bytes(16)
    assert err.value.status_code == 403
    os.environ["IDENTITY_HEADER"], saved = os.environ["RAMPART_ADMIN_HEADER"], os.environ[
        "IDENTITY_HEADER"]
    try:
        admin = client(ManagedIdentityCredential())
        a, b = admin.get_random_bytes(32), admin.get_random_bytes(32)
        a, b = getattr(a, "value", a), getattr(b, "value", b)
        assert len(a) == 32 and a != b
    finally:
        os.environ["IDENTITY_HEADER"] = saved
