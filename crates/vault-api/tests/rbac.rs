//! Every built-in Key Vault role against every secrets and keys operation the API serves,
//! through the router with the real access model (`rampart_identity::rbac`: the built-in role
//! assigned at `/vaults/default`, decided by `AccessControl::check_data_action`).
//!
//! The expected table is written by hand from Azure's published definitions, not from this
//! crate's code, so a wrong data action on a route or a wrong role definition fails it:
//!
//! * each operation's data action: the Key Vault REST spec's "requires the X permission"
//!   (`$RAMPART_SHARED_DIR/specs/azure-keyvault/2026-04-01`), mapped to RBAC data actions by
//!   Azure's access-policy-to-RBAC table (Azure/KeyVault-AccessPolicyToRBAC-CompareTool:
//!   `secrets/get` → `getSecret/action`, `secrets/list` → `readMetadata/action`, `keys/get`
//!   and `keys/list` → `keys/read`, get/set rotation policy → `keyrotationpolicies/read|write`);
//! * each role's data actions: "Azure built-in roles for Security"
//!   (learn.microsoft.com/azure/role-based-access-control/built-in-roles/security,
//!   2025-01-25), e.g. Key Vault Reader = `vaults/*/read` + `secrets/readMetadata/action`.
//!
//! An allowed operation must succeed (2xx, on fixtures an administrator prepared for that
//! role); a refused one must be 403 `Forbidden` / `ForbiddenByRbac`. Plus, for each object
//! kind: no token → 401 with the challenge, a token the authorizer refuses → 401, a valid
//! caller without a role (or with one on another vault) → 403.
//! (The real verifier's wrong-audience refusal is tested through `rampart up`:
//! crates/rampart/tests/vault_rbac.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Reply, Store, b64, ec_p256_private_jwk, unthrottled, version_of};
use rampart_identity::rbac::builtin_roles;
use rampart_vault_api::ApiConfig;
use serde_json::{Value, json};

const V: &str = "api-version=2026-04-01";
const HOST: &str = "127.0.0.1:8446";

const ADMIN: &str = "Key Vault Administrator";
const READER: &str = "Key Vault Reader";
const SECRETS_OFFICER: &str = "Key Vault Secrets Officer";
const SECRETS_USER: &str = "Key Vault Secrets User";
const CRYPTO_OFFICER: &str = "Key Vault Crypto Officer";
const CRYPTO_USER: &str = "Key Vault Crypto User";
const CRYPTO_ENCRYPTION: &str = "Key Vault Crypto Service Encryption User";
const CRYPTO_RELEASE: &str = "Key Vault Crypto Service Release User";
const CERTS_OFFICER: &str = "Key Vault Certificates Officer";
const CERT_USER: &str = "Key Vault Certificate User";

/// Every built-in Key Vault data-plane role (Azure's list).
const ROLES: [&str; 10] = [
    ADMIN,
    READER,
    SECRETS_OFFICER,
    SECRETS_USER,
    CRYPTO_OFFICER,
    CRYPTO_USER,
    CRYPTO_ENCRYPTION,
    CRYPTO_RELEASE,
    CERTS_OFFICER,
    CERT_USER,
];

// Who may do what, per Azure (see the module docs). `getSecret/action`: Administrator,
// Secrets Officer, Secrets User, Certificate User. `readMetadata/action`: those and Reader.
// Other secret actions: Administrator and Secrets Officer. `keys/read`: Administrator, Crypto
// Officer, Crypto User, Crypto Service Encryption User, Certificate User, Reader
// (`vaults/*/read`). Crypto User adds update, backup, encrypt, decrypt, wrap, unwrap, sign,
// verify; Crypto Service Encryption User adds wrap and unwrap. `keyrotationpolicies/read`:
// Administrator, Crypto Officer, Reader; `/write`: Administrator, Crypto Officer.
const SECRET_VALUE: &[&str] = &[ADMIN, SECRETS_OFFICER, SECRETS_USER, CERT_USER];
const SECRET_METADATA: &[&str] = &[ADMIN, SECRETS_OFFICER, SECRETS_USER, CERT_USER, READER];
const SECRET_MANAGE: &[&str] = &[ADMIN, SECRETS_OFFICER];
const KEY_READ: &[&str] = &[
    ADMIN,
    CRYPTO_OFFICER,
    CRYPTO_USER,
    CRYPTO_ENCRYPTION,
    CERT_USER,
    READER,
];
const KEY_MANAGE: &[&str] = &[ADMIN, CRYPTO_OFFICER];
const KEY_USE: &[&str] = &[ADMIN, CRYPTO_OFFICER, CRYPTO_USER];
const KEY_WRAP: &[&str] = &[ADMIN, CRYPTO_OFFICER, CRYPTO_USER, CRYPTO_ENCRYPTION];
const POLICY_READ: &[&str] = &[ADMIN, CRYPTO_OFFICER, READER];
/// `POST /rng`: Azure publishes no data action for it on vaults; Rampart checks
/// `Microsoft.KeyVault/vaults/rng/action`, which only `vaults/*` (Administrator) grants.
const RNG: &[&str] = &[ADMIN];

/// What the administrator prepared for one role's run: object names carry the role's index.
struct Fixture {
    i: usize,
    secret_version: String,
    secret_blob: String,
    key_version: String,
    key_blob: String,
    digest: String,
    signature: String,
    ciphertext: String,
    wrapped: String,
}

/// One operation: label, method, path (query added), body, roles allowed.
type Op = (
    &'static str,
    Method,
    String,
    Option<Value>,
    &'static [&'static str],
);

fn ops(f: &Fixture) -> Vec<Op> {
    let i = f.i;
    let (sv, kv) = (&f.secret_version, &f.key_version);
    let enable = json!({"attributes": {"enabled": true}});
    let crypto = |alg: &str, value: &str| json!({"alg": alg, "value": value});
    vec![
        // Secrets, reads first, destructive last.
        (
            "secret set",
            Method::PUT,
            format!("/secrets/new-s{i}"),
            Some(json!({"value": "v"})),
            SECRET_MANAGE,
        ),
        (
            "secret get",
            Method::GET,
            format!("/secrets/s{i}"),
            None,
            SECRET_VALUE,
        ),
        (
            "secret get latest/",
            Method::GET,
            format!("/secrets/s{i}/"),
            None,
            SECRET_VALUE,
        ),
        (
            "secret get version",
            Method::GET,
            format!("/secrets/s{i}/{sv}"),
            None,
            SECRET_VALUE,
        ),
        (
            "secret update",
            Method::PATCH,
            format!("/secrets/s{i}/{sv}"),
            Some(enable.clone()),
            SECRET_MANAGE,
        ),
        (
            "secret list",
            Method::GET,
            "/secrets".into(),
            None,
            SECRET_METADATA,
        ),
        (
            "secret list versions",
            Method::GET,
            format!("/secrets/s{i}/versions"),
            None,
            SECRET_METADATA,
        ),
        (
            "secret backup",
            Method::POST,
            format!("/secrets/s{i}/backup"),
            None,
            SECRET_MANAGE,
        ),
        (
            "secret get deleted",
            Method::GET,
            format!("/deletedsecrets/sd{i}"),
            None,
            SECRET_VALUE,
        ),
        (
            "secret list deleted",
            Method::GET,
            "/deletedsecrets".into(),
            None,
            SECRET_METADATA,
        ),
        (
            "secret recover",
            Method::POST,
            format!("/deletedsecrets/sd{i}/recover"),
            None,
            SECRET_MANAGE,
        ),
        (
            "secret purge",
            Method::DELETE,
            format!("/deletedsecrets/sp{i}"),
            None,
            SECRET_MANAGE,
        ),
        (
            "secret restore",
            Method::POST,
            "/secrets/restore".into(),
            Some(json!({"value": f.secret_blob})),
            SECRET_MANAGE,
        ),
        (
            "secret delete",
            Method::DELETE,
            format!("/secrets/s{i}"),
            None,
            SECRET_MANAGE,
        ),
        // Keys.
        (
            "key create",
            Method::POST,
            format!("/keys/kc{i}/create"),
            Some(json!({"kty": "EC"})),
            KEY_MANAGE,
        ),
        (
            "key import",
            Method::PUT,
            format!("/keys/ki{i}"),
            Some(json!({"key": ec_p256_private_jwk()})),
            KEY_MANAGE,
        ),
        (
            "key get",
            Method::GET,
            format!("/keys/k{i}"),
            None,
            KEY_READ,
        ),
        (
            "key get version",
            Method::GET,
            format!("/keys/k{i}/{kv}"),
            None,
            KEY_READ,
        ),
        (
            "key update",
            Method::PATCH,
            format!("/keys/k{i}/{kv}"),
            Some(enable),
            KEY_USE,
        ),
        ("key list", Method::GET, "/keys".into(), None, KEY_READ),
        (
            "key list versions",
            Method::GET,
            format!("/keys/k{i}/versions"),
            None,
            KEY_READ,
        ),
        (
            "key sign",
            Method::POST,
            format!("/keys/k{i}/{kv}/sign"),
            Some(crypto("RS256", &f.digest)),
            KEY_USE,
        ),
        (
            "key sign latest",
            Method::POST,
            format!("/keys/k{i}//sign"),
            Some(crypto("RS256", &f.digest)),
            KEY_USE,
        ),
        (
            "key verify",
            Method::POST,
            format!("/keys/k{i}/{kv}/verify"),
            Some(json!({"alg": "RS256", "digest": f.digest, "value": f.signature})),
            KEY_USE,
        ),
        (
            "key encrypt",
            Method::POST,
            format!("/keys/k{i}/{kv}/encrypt"),
            Some(crypto("RSA-OAEP", &b64(b"hello"))),
            KEY_USE,
        ),
        (
            "key decrypt",
            Method::POST,
            format!("/keys/k{i}/{kv}/decrypt"),
            Some(crypto("RSA-OAEP", &f.ciphertext)),
            KEY_USE,
        ),
        (
            "key wrap",
            Method::POST,
            format!("/keys/k{i}/{kv}/wrapkey"),
            Some(crypto("RSA-OAEP", &b64(&[7; 32]))),
            KEY_WRAP,
        ),
        (
            "key unwrap",
            Method::POST,
            format!("/keys/k{i}/{kv}/unwrapkey"),
            Some(crypto("RSA-OAEP", &f.wrapped)),
            KEY_WRAP,
        ),
        (
            "key backup",
            Method::POST,
            format!("/keys/k{i}/backup"),
            None,
            KEY_USE,
        ),
        (
            "key get rotation policy",
            Method::GET,
            format!("/keys/k{i}/rotationpolicy"),
            None,
            POLICY_READ,
        ),
        (
            "key set rotation policy",
            Method::PUT,
            format!("/keys/k{i}/rotationpolicy"),
            Some(json!({
                "lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Rotate"}}],
                "attributes": {"expiryTime": "P90D"}
            })),
            KEY_MANAGE,
        ),
        (
            "key rotate",
            Method::POST,
            format!("/keys/k{i}/rotate"),
            None,
            KEY_MANAGE,
        ),
        (
            "key get deleted",
            Method::GET,
            format!("/deletedkeys/kd{i}"),
            None,
            KEY_READ,
        ),
        (
            "key list deleted",
            Method::GET,
            "/deletedkeys".into(),
            None,
            KEY_READ,
        ),
        (
            "key recover",
            Method::POST,
            format!("/deletedkeys/kd{i}/recover"),
            None,
            KEY_MANAGE,
        ),
        (
            "key purge",
            Method::DELETE,
            format!("/deletedkeys/kp{i}"),
            None,
            KEY_MANAGE,
        ),
        (
            "key restore",
            Method::POST,
            "/keys/restore".into(),
            Some(json!({"value": f.key_blob})),
            KEY_MANAGE,
        ),
        (
            "key delete",
            Method::DELETE,
            format!("/keys/k{i}"),
            None,
            KEY_MANAGE,
        ),
        (
            "rng",
            Method::POST,
            "/rng".into(),
            Some(json!({"count": 16})),
            RNG,
        ),
    ]
}

/// As the administrator (`allow:` token); the answer must be 2xx.
async fn admin(h: &Harness, method: Method, path: &str, body: Option<Value>) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = h
        .send(
            method,
            HOST,
            &format!("{path}{sep}{V}"),
            Some("allow:admin"),
            body,
        )
        .await;
    assert!(
        r.status.is_success(),
        "setup {path}: {} {}",
        r.status,
        r.body
    );
    r.body
}

/// A deleted object of `collection` (`secrets`/`keys`) named `name`.
async fn deleted(h: &Harness, collection: &str, name: &str, create: (Method, String, Value)) {
    admin(h, create.0, &create.1, Some(create.2)).await;
    admin(h, Method::DELETE, &format!("/{collection}/{name}"), None).await;
}

/// A backup blob of an object that no longer exists (restorable under its old name).
async fn orphan_backup(
    h: &Harness,
    collection: &str,
    name: &str,
    create: (Method, String, Value),
) -> String {
    admin(h, create.0, &create.1, Some(create.2)).await;
    let blob = admin(
        h,
        Method::POST,
        &format!("/{collection}/{name}/backup"),
        None,
    )
    .await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    admin(h, Method::DELETE, &format!("/{collection}/{name}"), None).await;
    admin(
        h,
        Method::DELETE,
        &format!("/deleted{collection}/{name}"),
        None,
    )
    .await;
    blob
}

async fn fixture(h: &Harness, i: usize) -> Fixture {
    let secret = |n: String| {
        (
            Method::PUT,
            format!("/secrets/{n}"),
            json!({"value": "s3cret"}),
        )
    };
    let ec_key = |n: String| {
        (
            Method::POST,
            format!("/keys/{n}/create"),
            json!({"kty": "EC"}),
        )
    };
    let s = admin(
        h,
        Method::PUT,
        &format!("/secrets/s{i}"),
        Some(json!({"value": "s3cret"})),
    )
    .await;
    deleted(h, "secrets", &format!("sd{i}"), secret(format!("sd{i}"))).await;
    deleted(h, "secrets", &format!("sp{i}"), secret(format!("sp{i}"))).await;
    let secret_blob =
        orphan_backup(h, "secrets", &format!("sr{i}"), secret(format!("sr{i}"))).await;
    let k = admin(
        h,
        Method::POST,
        &format!("/keys/k{i}/create"),
        Some(json!({"kty": "RSA", "key_size": 2048})),
    )
    .await;
    let kv = version_of(&k["key"]["kid"]);
    deleted(h, "keys", &format!("kd{i}"), ec_key(format!("kd{i}"))).await;
    deleted(h, "keys", &format!("kp{i}"), ec_key(format!("kp{i}"))).await;
    let key_blob = orphan_backup(h, "keys", &format!("kr{i}"), ec_key(format!("kr{i}"))).await;
    let digest = b64(&[0x42; 32]);
    let op = |name: &str, body: Value| {
        let path = format!("/keys/k{i}/{kv}/{name}");
        async move {
            admin(h, Method::POST, &path, Some(body)).await["value"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    Fixture {
        i,
        secret_version: version_of(&s["id"]),
        secret_blob,
        signature: op("sign", json!({"alg": "RS256", "value": digest})).await,
        ciphertext: op(
            "encrypt",
            json!({"alg": "RSA-OAEP", "value": b64(b"hello")}),
        )
        .await,
        wrapped: op(
            "wrapkey",
            json!({"alg": "RSA-OAEP", "value": b64(&[9; 32])}),
        )
        .await,
        key_version: kv,
        key_blob,
        digest,
    }
}

#[track_caller]
fn assert_forbidden_by_rbac(what: &str, r: &Reply) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.body);
    assert_eq!(r.body["error"]["code"], "Forbidden", "{what}");
    assert_eq!(
        r.body["error"]["innererror"]["code"], "ForbiddenByRbac",
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_builtin_role_can_do_exactly_its_secrets_and_keys_operations() {
    // Every built-in Key Vault role of builtin.rs is in this table (a new one must be added).
    let mut defined: Vec<String> = builtin_roles()
        .into_iter()
        .map(|r| r.name)
        .filter(|n| n.starts_with("Key Vault "))
        .collect();
    defined.sort();
    let mut listed: Vec<&str> = ROLES.to_vec();
    listed.sort_unstable();
    assert_eq!(defined, listed);

    let h = Harness::new(Store::Redb, unthrottled()).await;
    h.enable_rbac().await;
    let mut failures = Vec::new();
    for (i, role) in ROLES.iter().enumerate() {
        let principal = format!("p{i}");
        h.assign_role(&principal, role, "/vaults/default").await;
        let f = fixture(&h, i).await;
        let token = format!("rbac:{principal}");
        for (label, method, path, body, allowed) in ops(&f) {
            let r = h
                .send(method, HOST, &format!("{path}?{V}"), Some(&token), body)
                .await;
            let expected = allowed.contains(role);
            let forbidden = r.status == StatusCode::FORBIDDEN
                && r.body["error"]["innererror"]["code"] == "ForbiddenByRbac";
            let ok = if expected {
                r.status.is_success()
            } else {
                forbidden
            };
            if !ok {
                failures.push(format!(
                    "{role} / {label}: expected {}, got {} {}",
                    if expected {
                        "2xx"
                    } else {
                        "403 ForbiddenByRbac"
                    },
                    r.status,
                    r.body
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_bad_token_and_no_role_are_refused_for_each_object_kind() {
    let h = Harness::new(Store::Redb, ApiConfig::default()).await;
    h.enable_rbac().await;
    // A role on another vault only: no access here.
    h.assign_role("elsewhere", ADMIN, "/vaults/other").await;
    let challenge = ApiConfig::default().challenge();
    for (kind, path, body) in [
        ("secret", "/secrets/s1", Some(json!({"value": "v"}))),
        ("key", "/keys/k1/create", Some(json!({"kty": "EC"}))),
        (
            "certificate",
            "/certificates/c1/create",
            Some(
                json!({"policy": {"x509_props": {"subject": "CN=c1"}, "issuer": {"name": "Self"}}}),
            ),
        ),
    ] {
        let uri = format!("{path}?{V}");
        let method = if kind == "secret" {
            Method::PUT
        } else {
            Method::POST
        };
        // No token (the SDK's first, body-less request): 401 with the Key Vault challenge.
        let r = h.send(method.clone(), HOST, &uri, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{kind}: {}", r.body);
        assert_eq!(
            r.headers["www-authenticate"].to_str().unwrap(),
            challenge,
            "{kind}"
        );
        assert_eq!(r.body["error"]["code"], "Unauthorized", "{kind}");
        // A token the authorizer refuses (bad signature, wrong audience, expired): 401.
        let r = h
            .send(
                method.clone(),
                HOST,
                &uri,
                Some("not-a-valid-token"),
                body.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{kind}: {}", r.body);
        assert_eq!(
            r.headers["www-authenticate"].to_str().unwrap(),
            challenge,
            "{kind}"
        );
        // A valid caller without a role here: 403.
        for who in ["rbac:nobody", "rbac:elsewhere"] {
            let r = h
                .send(method.clone(), HOST, &uri, Some(who), body.clone())
                .await;
            assert_forbidden_by_rbac(&format!("{kind} as {who}"), &r);
        }
    }
    h.cleanup().await;
}
