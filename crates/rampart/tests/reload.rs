//! SIGHUP reloads the configuration of a running gateway, through the real binary: a new
//! route applies on a connection kept open across the reload, a broken file changes nothing,
//! and both attempts are in the audit trail.

use std::path::Path;
use std::time::Duration;

use rampart_test_support::http1::keep_alive_get;
use rampart_test_support::origin::ReflectingOrigin;
use tokio::net::TcpStream;

mod common;
use common::{RunningGateway, audit};

fn audit_tail(data_dir: &Path, filters: &[&str]) -> String {
    let mut args = vec!["tail", "-n", "1000", "--filter", "action=config.reload"];
    for filter in filters {
        args.extend(["--filter", filter]);
    }
    let output = audit(data_dir, &args);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn sighup_applies_new_routes_without_dropping_connections() {
    let main_app = ReflectingOrigin::start().await.unwrap();
    let v2_app = ReflectingOrigin::start().await.unwrap();
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let config = temp.path().join("rampart.toml");
    let base = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[gateway]\nupstream = \"{}\"\n",
        main_app.url()
    );
    std::fs::write(&config, &base).unwrap();
    let mut gateway = RunningGateway::start(&config, &data_dir, &[]);
    let addr = gateway.addr.clone();

    let mut connection = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(keep_alive_get(&mut connection, "/v2/orders").await, 200);
    assert_eq!((main_app.requests(), v2_app.requests()), (1, 0));

    // A new route for /v2, applied on SIGHUP: the same connection reaches the new backend.
    std::fs::write(
        &config,
        format!(
            "{base}\n[[route]]\npath_prefix = \"/v2\"\nbackends = [\"{}\"]\n",
            v2_app.url()
        ),
    )
    .unwrap();
    gateway.signal("-HUP");
    let mut attempts = 0;
    while v2_app.requests() == 0 {
        attempts += 1;
        assert!(attempts < 600, "the reload never applied");
        assert_eq!(keep_alive_get(&mut connection, "/v2/orders").await, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A broken file is refused; the running routes stay, and the refusal is audited.
    std::fs::write(
        &config,
        format!("{base}\n[[route]]\npath_prefix = \"v2\"\n"),
    )
    .unwrap();
    gateway.signal("-HUP");
    let mut attempts = 0;
    while audit_tail(&data_dir, &["decision=error"]).is_empty() {
        attempts += 1;
        assert!(attempts < 600, "the failed reload was never audited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = v2_app.requests();
    assert_eq!(keep_alive_get(&mut connection, "/v2/orders").await, 200);
    assert_eq!(v2_app.requests(), served + 1);

    gateway.stop();
    let reloads = audit_tail(&data_dir, &[]);
    assert_eq!(reloads.lines().count(), 2, "{reloads}");
    let refused = audit_tail(&data_dir, &["decision=error"]);
    assert!(refused.contains("route[0].path_prefix"), "{refused}");
}
