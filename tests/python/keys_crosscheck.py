#!/usr/bin/env python3
"""Cross-checks the vault's key operations with the `cryptography` package, holding only what a
client would hold (public JWKs, or its own private keys before import).

Driven by crates/vault/tests/keys_python.rs:

  keys_crosscheck.py verify IN OUT
      IN  {"signatures": [{"id", "jwk", "alg", "digest", "signature"}],
           "encrypt":    [{"id", "jwk", "alg", "plaintext"}]}
      OUT {"verified": {id: bool}, "tampered": {id: bool},
           "ciphertexts": [{"id", "ciphertext"}]}
      Signatures are checked with the public key alone; "tampered" is the result for the digest
      with one bit flipped (must be false). Plaintexts are encrypted with the public key.

  keys_crosscheck.py genkeys OUT
      OUT {"keys": [{"name", "jwk" (private), "alg", "digest", "signature",
                     "ciphertexts": [{"alg", "plaintext", "ciphertext"}]}]}
      Private keys made here, to be imported into the vault; each with a signature made here
      (the vault must verify it) and, for RSA, ciphertexts the vault must decrypt.

Binary values are base64url without padding, as Azure Key Vault writes them.
"""

import base64
import json
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

CURVES = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
    "P-256K": ec.SECP256K1,
}
FIELD = {"P-256": 32, "P-384": 48, "P-521": 66, "P-256K": 32}


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def as_int(text):
    return int.from_bytes(b64d(text), "big")


def int_b64(value, length=None):
    length = length or max(1, (value.bit_length() + 7) // 8)
    return b64e(value.to_bytes(length, "big"))


def hash_of(alg):
    bits = alg[2:5]
    return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[bits]


def public_key(jwk):
    if jwk["kty"] in ("RSA", "RSA-HSM"):
        return rsa.RSAPublicNumbers(as_int(jwk["e"]), as_int(jwk["n"])).public_key()
    curve = CURVES[jwk["crv"]]()
    return ec.EllipticCurvePublicNumbers(as_int(jwk["x"]), as_int(jwk["y"]), curve).public_key()


def verify(jwk, alg, digest, signature):
    key = public_key(jwk)
    h = hash_of(alg)
    try:
        if alg.startswith("RS"):
            key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(h))
        elif alg.startswith("PS"):
            pss = padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH)
            key.verify(signature, digest, pss, utils.Prehashed(h))
        else:
            if len(signature) != 2 * FIELD[jwk["crv"]]:
                return False
            half = len(signature) // 2
            r = int.from_bytes(signature[:half], "big")
            s = int.from_bytes(signature[half:], "big")
            key.verify(utils.encode_dss_signature(r, s), digest, ec.ECDSA(utils.Prehashed(h)))
        return True
    except InvalidSignature:
        return False


def encryption_padding(alg):
    if alg == "RSA-OAEP":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    if alg == "RSA-OAEP-256":
        return padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
    if alg == "RSA1_5":
        return padding.PKCS1v15()
    raise ValueError(f"unknown encryption algorithm {alg}")


def sign(private, alg, digest, crv=None):
    h = hash_of(alg)
    if alg.startswith("RS"):
        return private.sign(digest, padding.PKCS1v15(), utils.Prehashed(h))
    if alg.startswith("PS"):
        pss = padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH)
        return private.sign(digest, pss, utils.Prehashed(h))
    r, s = utils.decode_dss_signature(private.sign(digest, ec.ECDSA(utils.Prehashed(h))))
    return r.to_bytes(FIELD[crv], "big") + s.to_bytes(FIELD[crv], "big")


def digest_for(alg, data):
    d = hashes.Hash(hash_of(alg))
    d.update(data)
    return d.finalize()


def cmd_verify(src, dst):
    with open(src) as f:
        req = json.load(f)
    verified, tampered, ciphertexts = {}, {}, []
    for item in req.get("signatures", []):
        digest, sig = b64d(item["digest"]), b64d(item["signature"])
        verified[item["id"]] = verify(item["jwk"], item["alg"], digest, sig)
        flipped = bytes([digest[0] ^ 0x01]) + digest[1:]
        tampered[item["id"]] = verify(item["jwk"], item["alg"], flipped, sig)
    for item in req.get("encrypt", []):
        key = public_key(item["jwk"])
        ct = key.encrypt(b64d(item["plaintext"]), encryption_padding(item["alg"]))
        ciphertexts.append({"id": item["id"], "ciphertext": b64e(ct)})
    with open(dst, "w") as f:
        json.dump({"verified": verified, "tampered": tampered, "ciphertexts": ciphertexts}, f)


def rsa_jwk(private):
    priv = private.private_numbers()
    pub = priv.public_numbers
    return {
        "kty": "RSA",
        "n": int_b64(pub.n),
        "e": int_b64(pub.e),
        "d": int_b64(priv.d),
        "p": int_b64(priv.p),
        "q": int_b64(priv.q),
        "dp": int_b64(priv.dmp1),
        "dq": int_b64(priv.dmq1),
        "qi": int_b64(priv.iqmp),
    }


def ec_jwk(private, crv):
    priv = private.private_numbers()
    n = FIELD[crv]
    return {
        "kty": "EC",
        "crv": crv,
        "x": int_b64(priv.public_numbers.x, n),
        "y": int_b64(priv.public_numbers.y, n),
        "d": int_b64(priv.private_value, n),
    }


def cmd_genkeys(dst):
    keys = []
    for bits, alg in ((2048, "PS256"), (3072, "RS384"), (4096, "RS512")):
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        digest = digest_for(alg, os.urandom(32))
        cts = []
        for enc in ("RSA-OAEP", "RSA-OAEP-256", "RSA1_5"):
            pt = os.urandom(32)
            ct = private.public_key().encrypt(pt, encryption_padding(enc))
            cts.append({"alg": enc, "plaintext": b64e(pt), "ciphertext": b64e(ct)})
        keys.append(
            {
                "name": f"py-rsa-{bits}",
                "jwk": rsa_jwk(private),
                "alg": alg,
                "digest": b64e(digest),
                "signature": b64e(sign(private, alg, digest)),
                "ciphertexts": cts,
            }
        )
    for crv, alg in (("P-256", "ES256"), ("P-384", "ES384"), ("P-521", "ES512"), ("P-256K", "ES256K")):
        private = ec.generate_private_key(CURVES[crv]())
        digest = digest_for(alg, os.urandom(32))
        keys.append(
            {
                "name": "py-ec-" + crv.lower().replace("-", ""),
                "jwk": ec_jwk(private, crv),
                "alg": alg,
                "digest": b64e(digest),
                "signature": b64e(sign(private, alg, digest, crv)),
                "ciphertexts": [],
            }
        )
    with open(dst, "w") as f:
        json.dump({"keys": keys}, f)


def main(argv):
    if len(argv) == 4 and argv[1] == "verify":
        cmd_verify(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "genkeys":
        cmd_genkeys(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
