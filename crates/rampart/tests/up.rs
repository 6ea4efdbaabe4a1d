//! `rampart up` end to end, through the real binary: banner, TLS + HTTP/2 to the demo app,
//! `--upstream`, the admin endpoint, file modes, and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

use bytes::Bytes;
use common::https_client;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_test_support::origin::ReflectingOrigin;

/// A running `rampart up` and what its banner said.
struct Plane {
    child: Child,
    banner: String,
    gateway_url: String,
    admin_addr: String,
    vault_url: String,
    data_dir: PathBuf,
    _temp: tempfile::TempDir,
}

impl Plane {
    fn start(extra_args: &[&str]) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().join("data");
        let config = temp.path().join("rampart.toml");
        std::fs::write(
            &config,
            "[admin]\nlisten = \"127.0.0.1:0\"\n[gateway]\nlisten = \"127.0.0.1:0\"\n\
             shutdown_grace = \"10s\"\n[demo]\nlisten = \"127.0.0.1:0\"\n\
             [identity]\nlisten = \"127.0.0.1:0\"\nmanaged_identity_listen = \"127.0.0.1:0\"\n\
             [vault]\nlisten = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("up")
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut banner = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("Ctrl-C stops it") {
                break;
            }
        }
        let field = |label: &str| -> String {
            banner
                .lines()
                .find_map(|line| line.trim_start().strip_prefix(label))
                .unwrap_or_else(|| panic!("no {label} line in banner:\n{banner}"))
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        };
        let gateway_url = field("gateway");
        let admin_addr = field("admin").trim_start_matches("http://").to_owned();
        let vault_url = field("vault");
        Self {
            child,
            banner,
            gateway_url,
            admin_addr,
            vault_url,
            data_dir,
            _temp: temp,
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // A hang guard, not a timing assertion: shutdown must finish, however slow the machine.
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.kill().unwrap();
        panic!("rampart did not stop within 60 s of SIGTERM");
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_json(
    client: &Client<
        impl hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
        Full<Bytes>,
    >,
    url: &str,
    body: &'static str,
) -> (http::StatusCode, http::Version, serde_json::Value) {
    let request = Request::post(url)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let version = response.version();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        version,
        serde_json::from_slice(&bytes).unwrap_or_default(),
    )
}

#[tokio::test]
async fn up_serves_the_vault_api_over_tls_with_the_key_vault_challenge() {
    let plane = Plane::start(&[]);
    assert!(
        plane.vault_url.starts_with("https://localhost:"),
        "{}",
        plane.banner
    );
    let ca = plane.data_dir.join("tls/ca.pem");
    let client = https_client(&ca, false);
    // The Azure SDK's first request: no token, no body. 401 with the Key Vault challenge.
    let request = Request::put(format!(
        "{}/secrets/db-password?api-version=2026-04-01",
        plane.vault_url
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer authorization=\"https://")
            && challenge.contains("resource=\"https://vault.rampart.local\""),
        "{challenge}"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "Unauthorized");
    // Unknown api-version: Azure's 400.
    let response = client
        .request(
            Request::get(format!("{}/secrets?api-version=1.0", plane.vault_url))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // The unseal key is private.
    let key = plane.data_dir.join("vault-unseal.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn up_serves_the_demo_app_over_tls_and_http2_and_stops_on_sigterm() {
    let mut plane = Plane::start(&[]);
    let ca = plane.data_dir.join("tls/ca.pem");
    assert!(
        plane.banner.contains(&ca.display().to_string()),
        "{}",
        plane.banner
    );
    assert!(
        plane.gateway_url.starts_with("https://localhost:"),
        "{}",
        plane.banner
    );
    let commands: Vec<&str> = plane
        .banner
        .lines()
        .skip_while(|line| *line != "Try:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect();
    assert_eq!(commands.len(), 3, "{}", plane.banner);

    // The data dir and credential files are private.
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&plane.data_dir), 0o700);
    let token_path = plane.data_dir.join("credentials/admin-token");
    assert_eq!(mode(&token_path), 0o600);
    assert_eq!(mode(&plane.data_dir.join("tls/server.key")), 0o600);
    let token = std::fs::read_to_string(&token_path).unwrap();
    assert!(token.len() > 32);
    assert!(
        !plane.banner.contains(token.trim()),
        "the banner printed the whole admin token"
    );

    // Through the gateway to the demo app, over HTTP/2 and HTTP/1.1.
    let url = format!("{}/echo/anything?x=1", plane.gateway_url);
    let (status, version, echoed) = get_json(&https_client(&ca, true), &url, "hello").await;
    assert_eq!(status, 200);
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(echoed["path"], "/echo/anything");
    assert_eq!(echoed["query"], "x=1");
    assert_eq!(echoed["body"], "hello");
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "https");
    let (status, version, _) = get_json(&https_client(&ca, false), &url, "").await;
    assert_eq!(
        (status, version),
        (http::StatusCode::OK, http::Version::HTTP_11)
    );

    // The admin endpoint: metrics need the token.
    let plain: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let metrics_url = format!("http://{}/metrics", plane.admin_addr);
    let anonymous = plain
        .request(Request::get(&metrics_url).body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let authorized = plain
        .request(
            Request::get(&metrics_url)
                .header("authorization", format!("Bearer {}", token.trim()))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(authorized.status(), 200);
    let metrics = authorized.into_body().collect().await.unwrap().to_bytes();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("rampart_gateway_requests_total{status=\"2xx\"} 2"),
        "{metrics}"
    );
    for series in [
        "rampart_gateway_connections{state=\"idle\"}",
        "rampart_gateway_connections{state=\"active\"}",
        "rampart_gateway_request_duration_seconds",
        "rampart_admin_denied_total 1",
    ] {
        assert!(metrics.contains(series), "no {series} in:\n{metrics}");
    }

    let status = plane.terminate();
    assert!(status.success(), "exit status {status:?}");

    // The audit trail holds the refused admin request, and the log (closed with a final signed
    // checkpoint on shutdown) verifies.
    let audit = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("--data-dir")
            .arg(&plane.data_dir)
            .arg("audit")
            .args(args)
            .output()
            .unwrap()
    };
    let denies = audit(&["tail", "-n", "100", "--filter", "decision=deny"]);
    assert!(denies.status.success(), "{denies:?}");
    let denies = String::from_utf8_lossy(&denies.stdout);
    assert!(
        denies.contains("admin") && denies.contains("/metrics"),
        "no audited admin denial in:\n{denies}"
    );
    let everything = audit(&["tail", "-n", "100"]);
    let everything = String::from_utf8_lossy(&everything.stdout);
    assert!(everything.contains("plane.start"), "{everything}");
    assert!(everything.contains("plane.stop"), "{everything}");
    let verify = audit(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

#[tokio::test]
async fn up_with_upstream_lets_in_flight_requests_finish_on_sigterm() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let mut plane = Plane::start(&["--upstream", &origin.url()]);
    assert!(plane.banner.contains(&origin.url()), "{}", plane.banner);
    let ca = plane.data_dir.join("tls/ca.pem");
    let client = https_client(&ca, false);
    let url = format!("{}/slow?ms=1500", plane.gateway_url);
    let in_flight = tokio::spawn(async move { get_json(&client, &url, "").await });
    // Give the request time to reach the origin, then stop the plane under it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = plane.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let (status, _, reflected) = in_flight.await.unwrap();
    assert_eq!(status, 200, "the in-flight request was cut off");
    assert_eq!(reflected["uri"], "/slow?ms=1500");
    assert!(plane.terminate().success());
}

#[test]
fn a_port_in_use_is_a_clear_runtime_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("rampart.toml");
    std::fs::write(
        &config,
        format!("[admin]\nlisten = \"{addr}\"\n[gateway]\nlisten = \"127.0.0.1:0\"\n[demo]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(temp.path().join("data"))
        .arg("up")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr} for the admin endpoint")),
        "{stderr}"
    );
}
