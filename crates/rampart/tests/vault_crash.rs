//! Acknowledged writes survive kill -9, through the API: `rampart up`, concurrent secret sets
//! over HTTPS from a workload with the Secrets Officer role, every 2xx answer recorded with
//! its version, SIGKILL while the load runs, then `rampart up` again on the same data: the
//! store unseals and every acknowledged version reads back with its value. On redb (the
//! default) and on PostgreSQL (127.0.0.1:5432, database `test`, a table of its own).

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::RunningPlane;
use http::StatusCode;

/// Writers running at once, and how many acknowledged writes to wait for before the kill.
const WRITERS: usize = 8;
const ACKED_BEFORE_KILL: usize = 400;

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Acked {
    name: String,
    version: String,
    value: String,
}

async fn crash_and_recover(extra_config: &str) {
    let mut plane = RunningPlane::start(&format!(
        "throttle_all = 10000000\nthrottle_secret_create = 10000000\n{extra_config}"
    ));
    let (token, header) = plane.vault_workload("writer", "Key Vault Secrets Officer");
    let vault = plane.vault();

    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (vault, token) = (vault.clone(), token.clone());
        let (acked, refused, killed) = (acked.clone(), refused.clone(), killed.clone());
        writers.spawn(async move {
            for round in 0u64.. {
                // A few names per writer, so names get many versions.
                let name = format!("crash-{writer}-{}", round % 4);
                let value = format!("value {writer}/{round}");
                match vault.set_secret(&token, &name, &value).await {
                    Ok((StatusCode::OK, body)) => {
                        let id = body["id"].as_str().unwrap_or_default();
                        let version = id.rsplit('/').next().unwrap_or_default().to_owned();
                        assert_eq!(version.len(), 32, "{body}");
                        acked.lock().unwrap().push(Acked {
                            name,
                            version,
                            value,
                        });
                    }
                    Ok((status, body)) => refused.lock().unwrap().push(format!("{status} {body}")),
                    // The connection died: the plane was killed.
                    Err(_) if killed.load(Ordering::SeqCst) => return,
                    Err(error) => panic!("request failed before the kill: {error}"),
                }
            }
        });
    }
    while acked.lock().unwrap().len() < ACKED_BEFORE_KILL {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(
            refused.lock().unwrap().is_empty(),
            "writes refused: {:?}",
            refused.lock().unwrap()
        );
    }
    killed.store(true, Ordering::SeqCst);
    plane.kill9();
    while let Some(joined) = writers.join_next().await {
        joined.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= ACKED_BEFORE_KILL);
    assert!(
        refused.lock().unwrap().is_empty(),
        "writes refused: {:?}",
        refused.lock().unwrap()
    );

    // Restart on the same data: the store unseals (the banner only prints once the vault is
    // open) and every acknowledged version is there with its value.
    let restarted = RunningPlane::launch(plane.config.clone(), plane.data_dir.clone());
    let vault = restarted.vault();
    // The issuer listens on a new port: a new token for the same workload.
    let token = restarted.vault_token(&header);
    let status = restarted.rampart(&["vault", "status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("sealed        false"), "{status}");
    for write in &acked {
        let (code, body) = vault
            .call(
                "GET",
                &format!("/secrets/{}/{}", write.name, write.version),
                Some(&token),
                None,
            )
            .await
            .unwrap();
        assert_eq!(code, StatusCode::OK, "{write:?} lost: {body}");
        assert_eq!(body["value"], write.value.as_str(), "{write:?}");
    }
    eprintln!(
        "{} acknowledged writes from {WRITERS} writers all read back after SIGKILL",
        acked.len()
    );
    drop(restarted);
    drop(plane);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_on_redb() {
    crash_and_recover("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_on_postgres() {
    let url = std::env::var("RAMPART_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let table = format!("rampart_kv_crash_{}", std::process::id());
    crash_and_recover(&format!(
        "[storage]\nbackend = \"postgres\"\npostgres_url = \"{url}\"\npostgres_table = \"{table}\"\n"
    ))
    .await;
    let dropped = Command::new("psql")
        .args([&url, "-q", "-c", &format!("DROP TABLE IF EXISTS {table}")])
        .output();
    if let Ok(output) = dropped {
        assert!(output.status.success(), "{output:?}");
    }
}
