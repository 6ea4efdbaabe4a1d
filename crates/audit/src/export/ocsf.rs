//! OCSF export: each record becomes an OCSF 1.3 **API Activity** event (`class_uid` 6003,
//! category Application Activity 6), one JSON object per line.
//!
//! | record | OCSF |
//! |---|---|
//! | `time` | `time` (ms since epoch), `metadata.original_time` (RFC 3339, ns) |
//! | `seq` | `metadata.uid` (string), `metadata.sequence` |
//! | `component` | `api.service.name`, `metadata.product.feature.name` |
//! | `actor.id` | `actor.user.uid`, `actor.user.name` |
//! | `actor.auth` | `unmapped.auth_method` |
//! | `action` | `api.operation`; its verb sets `activity_id` (create/issue/put/set/add/import → 1 Create, get/read/list/show → 2 Read, update/rotate/patch/restore/recover → 3 Update, delete/purge/remove/revoke → 4 Delete, else 99 Other) and `type_uid` = 600300 + `activity_id` |
//! | `resource` | `resources[0].name` |
//! | `decision` | `actor.authorizations[0].decision`; `status_id`/`status` (allow → 1 Success, deny/error → 2 Failure); `severity_id` (allow 1 Informational, deny 3 Medium, error 4 High) |
//! | `reason` | `status_detail` |
//! | `request_id` | `api.request.uid`, `metadata.correlation_uid` |
//! | `source` | `src_endpoint.ip` and `.port` when it parses as an address, else `src_endpoint.name` |
//! | `details`, `prev`, leaf hash | `unmapped.details`, `unmapped.prev_hash`, `unmapped.leaf_hash` |

use std::net::{IpAddr, SocketAddr};

use serde_json::{Map, Value, json};

use crate::hex;
use crate::merkle::Hash;
use crate::record::{Decision, Entry};

/// OCSF class: API Activity.
pub const CLASS_UID: u32 = 6003;

/// The OCSF activity for an action name.
#[must_use]
pub fn activity(action: &str) -> (u32, &'static str) {
    let verb = action
        .rsplit(['.', '/', ':', ' '])
        .next()
        .unwrap_or(action)
        .to_ascii_lowercase();
    match verb.as_str() {
        "create" | "issue" | "put" | "set" | "add" | "import" => (1, "Create"),
        "get" | "read" | "list" | "show" => (2, "Read"),
        "update" | "rotate" | "patch" | "restore" | "recover" => (3, "Update"),
        "delete" | "purge" | "remove" | "revoke" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

/// The OCSF event for an entry.
#[must_use]
pub fn event(entry: &Entry, leaf: &Hash) -> Value {
    let r = &entry.record;
    let (activity_id, activity_name) = activity(&r.action);
    let (status_id, status) = match r.decision {
        Decision::Allow => (1, "Success"),
        Decision::Deny | Decision::Error => (2, "Failure"),
    };
    let (severity_id, severity) = match r.decision {
        Decision::Allow => (1, "Informational"),
        Decision::Deny => (3, "Medium"),
        Decision::Error => (4, "High"),
    };
    let mut src = Map::new();
    if let Some(s) = &r.source {
        if let Ok(sa) = s.parse::<SocketAddr>() {
            src.insert("ip".into(), json!(sa.ip().to_string()));
            src.insert("port".into(), json!(sa.port()));
        } else if let Ok(ip) = s.parse::<IpAddr>() {
            src.insert("ip".into(), json!(ip.to_string()));
        } else {
            src.insert("name".into(), json!(s));
        }
    }
    let mut ev = json!({
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": CLASS_UID * 100 + activity_id,
        "time": r.time.unix_millis(),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "status_detail": r.reason,
        "message": super::human_line(entry),
        "actor": {
            "user": { "uid": r.actor.id, "name": r.actor.id },
            "authorizations": [ { "decision": r.decision.as_str() } ],
            "app_name": r.component,
        },
        "api": {
            "operation": r.action,
            "service": { "name": r.component },
        },
        "resources": [ { "name": r.resource } ],
        "metadata": {
            "version": "1.3.0",
            "product": { "name": "Rampart", "vendor_name": "Rampart", "feature": { "name": r.component } },
            "log_name": "rampart-audit",
            "uid": entry.seq.to_string(),
            "sequence": entry.seq,
            "original_time": r.time.to_string(),
        },
        "unmapped": {
            "auth_method": r.actor.auth,
            "details": r.details,
            "prev_hash": hex::encode(&entry.prev),
            "leaf_hash": hex::encode(leaf),
        },
    });
    if let Some(obj) = ev.as_object_mut() {
        if !src.is_empty() {
            obj.insert("src_endpoint".into(), Value::Object(src));
        }
        if let Some(id) = &r.request_id {
            if let Some(api) = obj.get_mut("api").and_then(Value::as_object_mut) {
                api.insert("request".into(), json!({ "uid": id }));
            }
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("correlation_uid".into(), json!(id));
            }
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Record;

    #[test]
    fn maps_fields() {
        let e = Entry {
            seq: 9,
            prev: [0; 32],
            record: Record::new("vault", "secret.delete", Decision::Deny)
                .actor("bob", "mtls")
                .resource("secrets/x")
                .request_id("req-1")
                .source("192.0.2.1:443"),
        };
        let v = event(&e, &[2; 32]);
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["activity_id"], 4);
        assert_eq!(v["type_uid"], 600_304);
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["actor"]["user"]["uid"], "bob");
        assert_eq!(v["actor"]["authorizations"][0]["decision"], "deny");
        assert_eq!(v["src_endpoint"]["ip"], "192.0.2.1");
        assert_eq!(v["src_endpoint"]["port"], 443);
        assert_eq!(v["api"]["request"]["uid"], "req-1");
        assert_eq!(v["metadata"]["uid"], "9");
        assert_eq!(activity("token.issue").0, 1);
        assert_eq!(activity("request").0, 99);
    }
}
