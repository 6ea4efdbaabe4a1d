//! The secrets API through the router (`oneshot`), on a real barrier (redb; the lifecycle and
//! backup cases also on PostgreSQL) with a real audit log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Harness, Store, contains};
use rampart_vault::{VaultOptions, purge_expired};
use rampart_vault_api::{ApiConfig, ThrottleLimits};
use serde_json::json;

const V: &str = "api-version=2026-04-01";

fn config() -> ApiConfig {
    ApiConfig {
        authority: "https://127.0.0.1:8443/tenant".into(),
        ..ApiConfig::default()
    }
}

async fn lifecycle(store: Store) {
    let mut h = Harness::new(store, config()).await;
    // set two versions
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/Db-Password?{V}"),
            Some(json!({"value": "hunter2-first", "contentType": "text/plain", "tags": {"env": "prod"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let id1 = r.body["id"].as_str().unwrap().to_owned();
    let v1 = id1.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        id1,
        format!("https://127.0.0.1:8446/secrets/Db-Password/{v1}")
    );
    assert_eq!(r.body["value"], "hunter2-first");
    assert_eq!(r.body["contentType"], "text/plain");
    assert_eq!(r.body["tags"]["env"], "prod");
    assert_eq!(r.body["attributes"]["enabled"], true);
    assert_eq!(
        r.body["attributes"]["recoveryLevel"],
        "Recoverable+Purgeable"
    );
    assert_eq!(r.body["attributes"]["recoverableDays"], 90);
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/db-password?{V}"),
            Some(json!({"value": "hunter2-second", "attributes": {"exp": 4102444800i64}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v2 = r.body["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(v1, v2);

    // latest with the SDK's empty version, and an explicit version
    let r = h
        .call(Method::GET, &format!("/secrets/db-password/?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["value"], "hunter2-second");
    assert_eq!(r.body["attributes"]["exp"], 4102444800i64);
    let r = h
        .call(Method::GET, &format!("/secrets/db-password/{v1}?{V}"), None)
        .await;
    assert_eq!(r.body["value"], "hunter2-first");

    // versions list: ids carry the version
    let r = h
        .call(
            Method::GET,
            &format!("/secrets/db-password/versions?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<&str> = r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.iter()
            .all(|i| i.starts_with("https://127.0.0.1:8446/secrets/Db-Password/"))
    );
    assert!(
        r.body["value"][0].get("value").is_none(),
        "lists never carry values"
    );

    // update: disable v1, tags on v2
    let r = h
        .call(
            Method::PATCH,
            &format!("/secrets/db-password/{v1}?{V}"),
            Some(json!({"attributes": {"enabled": false}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["attributes"]["enabled"], false);
    assert!(r.body.get("value").is_none());
    let r = h
        .call(Method::GET, &format!("/secrets/db-password/{v1}?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"]["code"], "Forbidden");
    assert_eq!(
        r.body["error"]["message"],
        "Operation get is not allowed on a disabled secret."
    );
    assert_eq!(r.body["error"]["innererror"]["code"], "SecretDisabled");
    let r = h
        .call(
            Method::PATCH,
            &format!("/secrets/db-password/?{V}"),
            Some(json!({"tags": {"a": "b"}, "contentType": "application/x-pem-file"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["tags"], json!({"a": "b"}));
    assert_eq!(
        r.body["id"].as_str().unwrap().rsplit('/').next().unwrap(),
        v2
    );

    // delete: soft delete with Azure's dates, then the name is locked (409)
    let r = h
        .call(Method::DELETE, &format!("/secrets/db-password?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let deleted = r.body["deletedDate"].as_i64().unwrap();
    assert_eq!(
        r.body["scheduledPurgeDate"].as_i64().unwrap(),
        deleted + 90 * 86_400
    );
    assert_eq!(
        r.body["recoveryId"],
        "https://127.0.0.1:8446/deletedsecrets/Db-Password"
    );
    assert!(r.body.get("value").is_none());
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/db-password?{V}"),
            Some(json!({"value": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"]["code"], "Conflict");
    assert_eq!(
        r.body["error"]["message"],
        "Secret db-password is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
    );
    assert_eq!(
        r.body["error"]["innererror"]["code"],
        "ObjectIsDeletedButRecoverable"
    );
    let r = h
        .call(Method::GET, &format!("/secrets/db-password?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "SecretNotFound");

    // deleted views, recover, delete again, purge
    let r = h
        .call(
            Method::GET,
            &format!("/deletedsecrets/db-password?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["deletedDate"], deleted);
    let r = h
        .call(Method::GET, &format!("/deletedsecrets?{V}"), None)
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        r.body["value"][0]["id"],
        "https://127.0.0.1:8446/secrets/Db-Password"
    );
    let r = h
        .call(
            Method::POST,
            &format!("/deletedsecrets/db-password/recover?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["id"].as_str().unwrap().rsplit('/').next().unwrap(),
        v2
    );
    let r = h
        .call(Method::GET, &format!("/secrets/db-password?{V}"), None)
        .await;
    assert_eq!(r.body["value"], "hunter2-second");
    h.call(Method::DELETE, &format!("/secrets/db-password?{V}"), None)
        .await;
    let r = h
        .call(
            Method::DELETE,
            &format!("/deletedsecrets/db-password?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(
            Method::GET,
            &format!("/deletedsecrets/db-password?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["message"], "Deleted Secret not found");
    // purged: the name is free again
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/db-password?{V}"),
            Some(json!({"value": "new"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // audit: every operation is there, values never are
    let audit = h.audit_bytes().await;
    for action in [
        "secret.set",
        "secret.get",
        "secret.update",
        "secret.delete",
        "secret.recover",
        "secret.purge",
        "secret.list_versions",
    ] {
        assert!(contains(&audit, action.as_bytes()), "{action} not audited");
    }
    for value in ["hunter2-first", "hunter2-second"] {
        assert!(
            !contains(&audit, value.as_bytes()),
            "a secret value reached the audit log"
        );
    }
    h.cleanup().await;
}

#[tokio::test]
async fn secrets_lifecycle_redb() {
    lifecycle(Store::Redb).await;
}

#[tokio::test]
async fn secrets_lifecycle_postgres() {
    lifecycle(Store::Postgres).await;
}

#[tokio::test]
async fn paging_follows_next_link() {
    let h = Harness::new(Store::Redb, config()).await;
    for i in 0..7 {
        let r = h
            .call(
                Method::PUT,
                &format!("/secrets/s{i}?{V}"),
                Some(json!({"value": "v"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let mut seen = Vec::new();
    let mut uri = format!("/secrets?{V}&maxresults=3");
    let mut pages = 0;
    loop {
        let r = h.call(Method::GET, &uri, None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        pages += 1;
        let items = r.body["value"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match r.body["nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(
                    "https://127.0.0.1:8446/secrets?api-version=2026-04-01&$skiptoken="
                ));
                uri = next
                    .strip_prefix("https://127.0.0.1:8446")
                    .unwrap()
                    .to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..7)
        .map(|i| format!("https://127.0.0.1:8446/secrets/s{i}"))
        .collect();
    assert_eq!(seen, want);
    for bad in ["0", "26", "x", "-1"] {
        let r = h
            .call(Method::GET, &format!("/secrets?{V}&maxresults={bad}"), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["error"]["code"], "BadParameter");
    }
    // a token from another list, or garbage
    let r = h
        .call(
            Method::GET,
            &format!("/deletedsecrets?{V}&$skiptoken=c2VjcmV0cwpzMQ"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .call(
            Method::GET,
            &format!("/secrets?{V}&$skiptoken=%00%01"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn api_version_is_required_and_checked() {
    let h = Harness::new(Store::Redb, config()).await;
    let r = h.call(Method::GET, "/secrets", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], "BadParameter");
    let r = h
        .call(Method::GET, "/secrets?api-version=2099-01-01", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"]["message"],
        "The specified version (2099-01-01) is not recognized. Consider using the latest supported version (2026-04-01)."
    );
    for v in [
        "7.0",
        "7.1",
        "7.2",
        "7.3",
        "7.4",
        "7.5",
        "7.6",
        "2025-07-01",
        "2026-04-01",
    ] {
        let r = h
            .call(Method::GET, &format!("/secrets?api-version={v}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{v}");
    }
}

#[tokio::test]
async fn challenge_unauthenticated_and_forbidden() {
    let h = Harness::new(Store::Redb, config()).await;
    // The SDK's first request: no token, no body (even on PUT).
    let r = h
        .send(
            Method::PUT,
            "127.0.0.1:8446",
            &format!("/secrets/x?{V}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer authorization=\"https://127.0.0.1:8443/tenant\", resource=\"https://vault.rampart.local\""
    );
    assert_eq!(r.body["error"]["code"], "Unauthorized");
    assert_eq!(
        r.body["error"]["message"],
        "AKV10000: Request is missing a Bearer or PoP token."
    );
    let r = h
        .send(
            Method::GET,
            "127.0.0.1:8446",
            &format!("/secrets/x?{V}"),
            Some("forged"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.contains_key("www-authenticate"));
    let r = h
        .send(
            Method::GET,
            "127.0.0.1:8446",
            &format!("/secrets/X?{V}"),
            Some("deny:bob"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"]["innererror"]["code"], "ForbiddenByRbac");
    let r = h
        .send(
            Method::GET,
            "127.0.0.1:8446",
            &format!("/secrets?{V}"),
            Some("deny:bob"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let seen = h.authz.seen.lock().unwrap().clone();
    assert!(seen.contains(&(
        "Microsoft.KeyVault/vaults/secrets/getSecret/action".into(),
        "/vaults/default/secrets/x".into()
    )));
    assert!(seen.contains(&(
        "Microsoft.KeyVault/vaults/secrets/readMetadata/action".into(),
        "/vaults/default".into()
    )));
}

#[tokio::test]
async fn errors_are_azure_json() {
    let h = Harness::new(Store::Redb, config()).await;
    let tok = Some("allow:alice");
    let host = "127.0.0.1:8446";
    for body in ["{", "[]", "{\"value\": 5}", "{\"tags\": {}}", "", "null"] {
        let r = h
            .send_raw(
                Method::PUT,
                host,
                &format!("/secrets/x?{V}"),
                tok,
                Some(body.into()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(r.body["error"]["code"], "BadParameter", "{body:?}");
    }
    // a value given with a wrong type is never echoed back
    let r = h
        .send_raw(
            Method::PUT,
            host,
            &format!("/secrets/x?{V}"),
            tok,
            Some("{\"value\": 123456789}".into()),
        )
        .await;
    assert!(!r.body.to_string().contains("123456789"));
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/x?{V}"),
            Some(json!({"value": "a".repeat(25 * 1024 + 1)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/x?{V}"),
            Some(json!({"value": "a".repeat(25 * 1024)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for path in [
        "/secrets/bad_name",
        "/secrets/a.b",
        "/secrets/x/not-a-version",
    ] {
        let r = h.call(Method::GET, &format!("{path}?{V}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(r.body["error"]["code"], "BadParameter");
    }
    let r = h
        .call(Method::GET, &format!("/secrets/missing?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("A secret with (name/id) missing was not found in this key vault.")
    );
    let r = h
        .call(Method::GET, &format!("/nothing/here?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["error"]["code"].is_string());
    let r = h.call(Method::POST, &format!("/secrets?{V}"), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["error"]["code"], "MethodNotAllowed");
    // a secret called "restore" is still a secret
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/restore?{V}"),
            Some(json!({"value": "r"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call(Method::GET, &format!("/secrets/restore?{V}"), None)
        .await;
    assert_eq!(r.body["value"], "r");
    // hostile hosts and paths never panic
    for host in ["", "a b", "evil.com", "x.y.vault.localhost", "[zz]:1"] {
        let r = h
            .send(Method::GET, host, &format!("/secrets?{V}"), tok, None)
            .await;
        assert!(r.status.is_client_error(), "{host:?}: {}", r.status);
    }
    let r = h
        .call(Method::GET, &format!("/secrets/%FF%FE?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn vaults_are_chosen_by_host() {
    let h = Harness::new(Store::Redb, config()).await;
    let r = h
        .send(
            Method::GET,
            "prod.vault.localhost:8446",
            &format!("/secrets?{V}"),
            Some("allow:a"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "VaultNotFound");
    h.api
        .registry()
        .create("prod", &VaultOptions::default())
        .await
        .unwrap();
    let r = h
        .send(
            Method::PUT,
            "prod.vault.localhost:8446",
            &format!("/secrets/only-in-prod?{V}"),
            Some("allow:a"),
            Some(json!({"value": "p"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body["id"]
            .as_str()
            .unwrap()
            .starts_with("https://prod.vault.localhost:8446/secrets/only-in-prod/")
    );
    let r = h
        .call(Method::GET, &format!("/secrets/only-in-prod?{V}"), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "the default vault does not see prod's secrets"
    );
    let seen = h.authz.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(_, s)| s == "/vaults/prod/secrets/only-in-prod")
    );
}

#[tokio::test]
async fn purge_protection_refuses_purge() {
    let h = Harness::new(Store::Redb, config()).await;
    h.api
        .registry()
        .create(
            "locked",
            &VaultOptions {
                retention_days: 7,
                purge_protection: true,
                ..VaultOptions::default()
            },
        )
        .await
        .unwrap();
    let host = "locked.vault.localhost";
    let tok = Some("allow:a");
    let r = h
        .send(
            Method::PUT,
            host,
            &format!("/secrets/s?{V}"),
            tok,
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(r.body["attributes"]["recoveryLevel"], "Recoverable");
    assert_eq!(r.body["attributes"]["recoverableDays"], 7);
    let r = h
        .send(Method::DELETE, host, &format!("/secrets/s?{V}"), tok, None)
        .await;
    let deleted = r.body["deletedDate"].as_i64().unwrap();
    assert_eq!(
        r.body["scheduledPurgeDate"].as_i64().unwrap(),
        deleted + 7 * 86_400
    );
    let r = h
        .send(
            Method::DELETE,
            host,
            &format!("/deletedsecrets/s?{V}"),
            tok,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"]["code"], "Forbidden");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("purge protection is enabled")
    );
    // still there; the scheduler purges it once the retention has passed
    let r = h
        .send(
            Method::GET,
            host,
            &format!("/deletedsecrets/s?{V}"),
            tok,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let report = purge_expired(h.api.registry(), h.api.store(), deleted + 7 * 86_400 - 1)
        .await
        .unwrap();
    assert_eq!(report.purged, 0);
    let report = purge_expired(h.api.registry(), h.api.store(), deleted + 7 * 86_400)
        .await
        .unwrap();
    assert_eq!(report.purged, 1);
    let r = h
        .send(
            Method::GET,
            host,
            &format!("/deletedsecrets/s?{V}"),
            tok,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // purge protection cannot be turned off
    let info = h.api.registry().get("locked").await.unwrap();
    assert!(info.purge_protection);
}

async fn backup_restore(store: Store) {
    let h = Harness::new(store, config()).await;
    let mut versions = Vec::new();
    for value in ["one", "two", "three"] {
        let r = h
            .call(
                Method::PUT,
                &format!("/secrets/bk?{V}"),
                Some(json!({"value": value, "tags": {"v": value}})),
            )
            .await;
        versions.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let r = h
        .call(Method::POST, &format!("/secrets/bk/backup?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let blob = r.body["value"].as_str().unwrap().to_owned();
    assert!(!blob.contains("three"));
    // the name exists: 409
    let r = h
        .call(
            Method::POST,
            &format!("/secrets/restore?{V}"),
            Some(json!({"value": blob})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // deleted (not purged) still blocks; after purge it restores with every version
    h.call(Method::DELETE, &format!("/secrets/bk?{V}"), None)
        .await;
    let r = h
        .call(
            Method::POST,
            &format!("/secrets/restore?{V}"),
            Some(json!({"value": blob})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    h.call(Method::DELETE, &format!("/deletedsecrets/bk?{V}"), None)
        .await;
    let r = h
        .call(
            Method::POST,
            &format!("/secrets/restore?{V}"),
            Some(json!({"value": blob})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["id"], versions[2].as_str());
    for (id, value) in versions.iter().zip(["one", "two", "three"]) {
        let path = id.strip_prefix("https://127.0.0.1:8446").unwrap();
        let r = h.call(Method::GET, &format!("{path}?{V}"), None).await;
        assert_eq!(r.body["value"], value);
        assert_eq!(r.body["tags"]["v"], value);
    }
    // a vault of another geography refuses it; a tampered blob is refused
    h.api
        .registry()
        .create(
            "elsewhere",
            &VaultOptions {
                geography: "us".into(),
                ..VaultOptions::default()
            },
        )
        .await
        .unwrap();
    let r = h
        .send(
            Method::POST,
            "elsewhere.vault.localhost",
            &format!("/secrets/restore?{V}"),
            Some("allow:a"),
            Some(json!({"value": blob})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("geography")
    );
    h.api
        .registry()
        .create(
            "same-geo",
            &VaultOptions {
                geography: "eu".into(),
                ..VaultOptions::default()
            },
        )
        .await
        .unwrap();
    let mut tampered = blob.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let r = h
        .send(
            Method::POST,
            "same-geo.vault.localhost",
            &format!("/secrets/restore?{V}"),
            Some("allow:a"),
            Some(json!({"value": String::from_utf8(tampered).unwrap()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // same geography, other vault: restores
    let r = h
        .send(
            Method::POST,
            "same-geo.vault.localhost",
            &format!("/secrets/restore?{V}"),
            Some("allow:a"),
            Some(json!({"value": blob})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for bad in ["", "!!!", "QUJD"] {
        let r = h
            .call(
                Method::POST,
                &format!("/secrets/restore?{V}"),
                Some(json!({"value": bad})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn backup_restore_redb() {
    backup_restore(Store::Redb).await;
}

#[tokio::test]
async fn backup_restore_postgres() {
    backup_restore(Store::Postgres).await;
}

#[tokio::test]
async fn throttling_answers_429() {
    let config = ApiConfig {
        throttle: ThrottleLimits {
            window: Duration::from_secs(3600),
            all: 6,
            classes: BTreeMap::from([("secret-create".to_owned(), 2)]),
        },
        ..config()
    };
    let h = Harness::new(Store::Redb, config).await;
    for i in 0..2 {
        let r = h
            .call(
                Method::PUT,
                &format!("/secrets/t{i}?{V}"),
                Some(json!({"value": "v"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/t9?{V}"),
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"]["code"], "Throttled");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    // reads still pass until the vault's overall budget is spent
    for _ in 0..4 {
        let r = h.call(Method::GET, &format!("/secrets/t0?{V}"), None).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = h.call(Method::GET, &format!("/secrets/t0?{V}"), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sealed_barrier_answers_503() {
    let h = Harness::new(Store::Redb, config()).await;
    h.call(
        Method::PUT,
        &format!("/secrets/s?{V}"),
        Some(json!({"value": "v"})),
    )
    .await;
    h.barrier.seal();
    let r = h.call(Method::GET, &format!("/secrets/s?{V}"), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["error"]["code"], "ServiceUnavailable");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sealed")
    );
}

/// Invalid object names (characters, length, empty) answer Azure's 400 `BadParameter` before
/// authorization, for secrets, keys and certificates alike: no token, a caller RBAC would
/// refuse, or one it would allow, all get the same 400, and the authorizer never sees the
/// name (the RBAC scope parse used to answer 403 "invalid scope").
#[tokio::test]
async fn invalid_object_names_are_bad_parameters_before_authorization() {
    let h = Harness::new(Store::Redb, config()).await;
    h.enable_rbac().await;
    h.assign_role("officer", "Key Vault Administrator", "/vaults/default")
        .await;
    let too_long = "a".repeat(128);
    let cases: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, "/secrets/bad_name".into(), None),
        (
            Method::PUT,
            "/secrets/bad_name".into(),
            Some(json!({"value": "v"})),
        ),
        (Method::GET, format!("/secrets/{too_long}"), None),
        (Method::GET, "/secrets/a.b/versions".into(), None),
        (Method::DELETE, "/deletedsecrets/bad_name".into(), None),
        (Method::POST, "/secrets/bad%20name/backup".into(), None),
        (Method::GET, "/keys/bad_name".into(), None),
        (
            Method::POST,
            "/keys/bad_name/create".into(),
            Some(json!({"kty": "EC"})),
        ),
        (Method::GET, format!("/keys/{too_long}/versions"), None),
        (
            Method::POST,
            "/keys/bad_name/0123456789abcdef0123456789abcdef/sign".into(),
            Some(json!({"alg": "ES256", "value": "AA"})),
        ),
        (Method::POST, "/deletedkeys/bad_name/recover".into(), None),
        (Method::GET, "/certificates/bad_name".into(), None),
        (
            Method::POST,
            "/certificates/bad_name/create".into(),
            Some(json!({"policy": {"issuer": {"name": "Self"}}})),
        ),
        (
            Method::GET,
            format!("/certificates/{too_long}/policy"),
            None,
        ),
        (Method::GET, "/deletedcertificates/bad_name".into(), None),
    ];
    for (method, path, body) in cases {
        let shown = path.split('/').nth(2).unwrap().replace("%20", " ");
        for token in [None, Some("rbac:nobody"), Some("rbac:officer")] {
            let r = h
                .send(
                    method.clone(),
                    "127.0.0.1:8446",
                    &format!("{path}?{V}"),
                    token,
                    body.clone(),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{method} {path} as {token:?}: {:?}",
                r.body
            );
            assert_eq!(r.body["error"]["code"], "BadParameter", "{path}");
            assert_eq!(
                r.body["error"]["message"],
                format!("The request URI contains an invalid name: {shown}"),
                "{path}"
            );
        }
    }
    assert!(
        h.authz
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|(_, scope)| !scope.contains("bad") && !scope.contains(&too_long)),
        "an invalid name reached the authorizer"
    );
    // The longest valid name and every allowed character pass.
    let longest = format!("A-{}", "z9".repeat(62) + "x");
    assert_eq!(longest.len(), 127);
    let r = h
        .send(
            Method::PUT,
            "127.0.0.1:8446",
            &format!("/secrets/{longest}?{V}"),
            Some("rbac:officer"),
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // An empty name is not a name either: the path is not an object's.
    let r = h
        .call(Method::GET, &format!("/secrets//versions?{V}"), None)
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(r.body["error"]["code"].is_string(), "{:?}", r.body);
}
