//! The vault's authorization end to end through `rampart up` (the real token verifier, issuer
//! and access model), for each object kind — secrets, keys, certificates: no token → 401 with
//! the Key Vault challenge; a valid token of the plane's issuer for another audience → 401;
//! a valid vault token without a role → 403 `ForbiddenByRbac`; with Key Vault Administrator
//! at the vault → the operation succeeds. (Every role × operation: crates/vault-api/tests/rbac.rs.)

mod common;

use bytes::Bytes;
use common::{RunningPlane, https_client, workload_token};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};

const V: &str = "api-version=2026-04-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_refuses_missing_tokens_wrong_audiences_and_callers_without_a_role() {
    let plane = RunningPlane::start("");
    let vault_url = plane.field("vault ");
    let client = https_client(&plane.data_dir.join("tls/ca.pem"), false);
    let resource = "https://vault.rampart.local";
    let (vault_token, admin_oid) = workload_token(&plane, "ops", resource);
    let (other_audience, _) = workload_token(&plane, "ops2", "https://management.example.com");
    let (no_role_token, _) = workload_token(&plane, "intruder", resource);
    let assigned = plane.rampart(&[
        "access",
        "assign",
        &admin_oid,
        "Key Vault Administrator",
        "--scope",
        "/vaults/default",
    ]);
    assert!(assigned.status.success(), "{assigned:?}");

    let send = |method: &'static str, path: String, token: Option<String>, body: Value| {
        let client = client.clone();
        let url = format!("{vault_url}{path}?{V}");
        async move {
            let mut request = Request::builder()
                .method(method)
                .uri(url)
                .header("content-type", "application/json");
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let response = client
                .request(
                    request
                        .body(Full::new(Bytes::from(body.to_string())))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (status, challenge, body)
        }
    };

    for (kind, method, path, body) in [
        (
            "secret",
            "PUT",
            "/secrets/db-password",
            json!({"value": "hunter2"}),
        ),
        ("key", "POST", "/keys/signer/create", json!({"kty": "EC"})),
        (
            "certificate",
            "POST",
            "/certificates/web/create",
            json!({"policy": {"x509_props": {"subject": "CN=web"}, "issuer": {"name": "Self"}}}),
        ),
    ] {
        let (status, challenge, reply) = send(method, path.into(), None, Value::Null).await;
        assert_eq!(status, 401, "{kind} without a token: {reply}");
        let challenge = challenge.unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer authorization=\"https://")
                && challenge.ends_with(&format!("resource=\"{resource}\"")),
            "{kind}: {challenge}"
        );

        let (status, again, reply) = send(
            method,
            path.into(),
            Some(other_audience.clone()),
            body.clone(),
        )
        .await;
        assert_eq!(status, 401, "{kind} with another audience: {reply}");
        assert_eq!(again.as_deref(), Some(challenge.as_str()), "{kind}");
        assert_eq!(reply["error"]["code"], "Unauthorized", "{kind}");

        let (status, _, reply) = send(
            method,
            path.into(),
            Some(no_role_token.clone()),
            body.clone(),
        )
        .await;
        assert_eq!(status, 403, "{kind} without a role: {reply}");
        assert_eq!(
            reply["error"]["innererror"]["code"], "ForbiddenByRbac",
            "{kind}"
        );

        let (status, _, reply) = send(method, path.into(), Some(vault_token.clone()), body).await;
        assert!(
            (200..300).contains(&status),
            "{kind} as administrator: {status} {reply}"
        );
    }
}
