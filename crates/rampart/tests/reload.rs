//! SIGHUP reloads the configuration of a running gateway, through the real binary: a new
//! route applies on a connection kept open across the reload, a broken file changes nothing,
//! and both attempts are in the audit trail.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rampart_test_support::http1::keep_alive_get;
use rampart_test_support::origin::ReflectingOrigin;
use tokio::net::TcpStream;

fn audit_tail(data_dir: &Path, filters: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "audit",
            "tail",
            "-n",
            "1000",
            "--filter",
            "action=config.reload",
        ])
        .args(filters.iter().flat_map(|filter| ["--filter", filter]))
        .output()
        .unwrap();
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data_dir)
        .args([
            "gateway",
            "--dangerous-plaintext",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let addr = first_line
        .strip_prefix("rampart gateway listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_owned();
    let hangup = || {
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };

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
    hangup();
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
    hangup();
    let mut attempts = 0;
    while audit_tail(&data_dir, &["decision=error"]).is_empty() {
        attempts += 1;
        assert!(attempts < 600, "the failed reload was never audited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = v2_app.requests();
    assert_eq!(keep_alive_get(&mut connection, "/v2/orders").await, 200);
    assert_eq!(v2_app.requests(), served + 1);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let reloads = audit_tail(&data_dir, &[]);
    assert_eq!(reloads.lines().count(), 2, "{reloads}");
    let refused = audit_tail(&data_dir, &["decision=error"]);
    assert!(refused.contains("route[0].path_prefix"), "{refused}");
}
