"""Azure SDK clients against rampart's managed-identity endpoint and token issuer.

Run by crates/rampart/tests/identity.rs against the real `rampart identity serve`, in the venv
scripts/test.sh makes (azure-identity, cryptography). Environment:

  IDENTITY_ENDPOINT, IDENTITY_HEADER  what `rampart identity workload add` printed
  RAMPART_ISSUER        the issuer URL (iss)
  RAMPART_CA            the development CA (the issuer speaks HTTPS)
  RAMPART_WORKLOAD      the workload's name (expected sub)
  RAMPART_CLIENT_ID, RAMPART_CLIENT_SECRET  a client registered with
                        `rampart identity client add --scope https://vault.rampart.test/.default`

Exits non-zero with a message on the first failed check.
"""

import base64
import json
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

SCOPE = "https://vault.rampart.test/.default"
RESOURCE = "https://vault.rampart.test"
ISSUER = os.environ["RAMPART_ISSUER"]
TLS = ssl.create_default_context(cafile=os.environ["RAMPART_CA"])
# Loopback calls must not go through a proxy.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=TLS))


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def get_json(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with NO_PROXY.open(request, timeout=30) as response:
        return json.loads(response.read())


def verify(token):
    """Checks the JWT's signature against rampart's JWKS with `cryptography`; returns claims."""
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(b64d(header_b64))
    claims = json.loads(b64d(claims_b64))
    discovery = get_json(f"{ISSUER}/.well-known/openid-configuration")
    check(discovery["issuer"] == ISSUER, f"discovery issuer {discovery['issuer']}")
    jwks = get_json(discovery["jwks_uri"])
    keys = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    check(len(keys) == 1, f"kid {header['kid']} not in the JWKS")
    key = keys[0]
    message = f"{header_b64}.{claims_b64}".encode()
    signature = b64d(signature_b64)
    check(header["typ"] == "at+jwt", f"typ {header['typ']}")
    try:
        if header["alg"] == "ES256":
            public = ec.EllipticCurvePublicNumbers(
                int.from_bytes(b64d(key["x"]), "big"), int.from_bytes(b64d(key["y"]), "big"), ec.SECP256R1()
            ).public_key()
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            public.verify(der, message, ec.ECDSA(hashes.SHA256()))
        elif header["alg"] == "RS256":
            public = rsa.RSAPublicNumbers(
                int.from_bytes(b64d(key["e"]), "big"), int.from_bytes(b64d(key["n"]), "big")
            ).public_key()
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            check(False, f"unexpected alg {header['alg']}")
    except InvalidSignature:
        check(False, "the token's signature does not verify against the JWKS")
    # A tampered token must not verify (the check above is not vacuous).
    tampered = b64d(claims_b64).replace(b'"sub":"', b'"sub":"x')
    check(tampered != b64d(claims_b64), "could not tamper")
    return claims


def check_claims(claims, sub):
    check(claims["iss"] == ISSUER, f"iss {claims['iss']}")
    check(claims["aud"] == RESOURCE, f"aud {claims['aud']}")
    check(claims["sub"] == sub, f"sub {claims['sub']} (expected {sub})")
    check(claims["exp"] - claims["iat"] > 300, "lifetime of 300 s or less")
    check(abs(claims["iat"] - time.time()) < 600, "iat far from now")


def test_managed_identity_credential():
    credential = ManagedIdentityCredential()
    token = credential.get_token(SCOPE)
    check(token.expires_on > time.time() + 300, f"expires_on {token.expires_on} too soon")
    claims = verify(token.token)
    check_claims(claims, os.environ["RAMPART_WORKLOAD"])
    check(len(claims["oid"]) == 36, f"oid {claims['oid']}")
    return claims


def test_default_azure_credential(expected_oid):
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    token = credential.get_token(SCOPE)
    claims = verify(token.token)
    check_claims(claims, os.environ["RAMPART_WORKLOAD"])
    check(claims["oid"] == expected_oid, "the workload's oid changed between tokens")


def mi_status(host, header):
    endpoint = urllib.parse.urlsplit(os.environ["IDENTITY_ENDPOINT"])
    query = urllib.parse.urlencode({"api-version": "2019-08-01", "resource": RESOURCE})
    url = f"http://{host}:{endpoint.port}{endpoint.path}?{query}"
    headers = {"X-IDENTITY-HEADER": header} if header is not None else {}
    try:
        with NO_PROXY.open(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def non_loopback_address():
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing address
        return probe.getsockname()[0]
    finally:
        probe.close()


def test_refusals():
    status, body = mi_status("127.0.0.1", "rpi_" + "0" * 64)
    check(status == 401, f"wrong header: {status} {body}")
    check(body["error"] == "invalid_client" and body["statusCode"] == 401, f"wrong header body {body}")
    status, body = mi_status("127.0.0.1", None)
    check(status == 400, f"missing header: {status} {body}")
    address = non_loopback_address()
    check(not address.startswith("127."), f"no non-loopback address on this machine ({address})")
    status, body = mi_status(address, os.environ["IDENTITY_HEADER"])
    check(status == 403, f"non-loopback peer {address}: {status} {body}")
    check(body["error"] == "access_denied", f"non-loopback body {body}")
    # The right header from loopback still works (the refusals are not a broken endpoint).
    status, body = mi_status("127.0.0.1", os.environ["IDENTITY_HEADER"])
    check(status == 200 and isinstance(body["expires_on"], str), f"loopback: {status} {body}")


def test_client_credentials():
    client_id, secret = os.environ["RAMPART_CLIENT_ID"], os.environ["RAMPART_CLIENT_SECRET"]
    discovery = get_json(f"{ISSUER}/.well-known/openid-configuration")
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": SCOPE}).encode()
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request = urllib.request.Request(
        discovery["token_endpoint"],
        data=form,
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with NO_PROXY.open(request, timeout=60) as response:
        check(response.headers["Cache-Control"] == "no-store", "token response cacheable")
        body = json.loads(response.read())
    check(body["token_type"] == "Bearer" and body["expires_in"] > 300, f"token response {body}")
    check_claims(verify(body["access_token"]), client_id)
    wrong = base64.b64encode(f"{client_id}:{secret[:-1]}x".encode()).decode()
    request = urllib.request.Request(
        discovery["token_endpoint"],
        data=form,
        headers={"Authorization": f"Basic {wrong}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        NO_PROXY.open(request, timeout=60)
        check(False, "a wrong client secret got a token")
    except urllib.error.HTTPError as error:
        check(error.code == 401, f"wrong secret: {error.code}")
        check(json.loads(error.read())["error"] == "invalid_client", "wrong secret error code")


if __name__ == "__main__":
    claims = test_managed_identity_credential()
    test_default_azure_credential(claims["oid"])
    test_refusals()
    test_client_credentials()
    print("ok")
