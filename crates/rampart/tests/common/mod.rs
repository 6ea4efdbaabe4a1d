//! Running the real `rampart` binary from integration tests: `rampart gateway` processes and
//! `rampart audit` queries, `rampart up` ([`RunningPlane`]), workloads and their tokens
//! ([`workload`], [`workload_token`]), and an HTTPS client trusting the plane's CA
//! ([`https_client`]).

#![allow(dead_code)] // each test binary uses part of this

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A running `rampart gateway`, killed on drop if still running.
pub struct RunningGateway {
    /// The process.
    pub child: Child,
    /// The address it listens on.
    pub addr: String,
}

impl RunningGateway {
    /// Starts `rampart --config CONFIG --data-dir DATA gateway --dangerous-plaintext --listen
    /// 127.0.0.1:0 ARGS...` and waits for its "listening on" line.
    pub fn start(config: &Path, data_dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "gateway",
                "--dangerous-plaintext",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(args)
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
        Self { child, addr }
    }

    /// Sends a signal (`-HUP`, `-TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then waits; asserts a clean exit.
    pub fn stop(&mut self) {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Runs `rampart --data-dir DATA audit ARGS...`.
pub fn audit(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("audit")
        .args(args)
        .output()
        .unwrap()
}

/// A running `rampart up` on free ports in a temporary data dir, killed on drop.
pub struct RunningPlane {
    /// The process.
    pub child: Child,
    /// What it printed up to "Ctrl-C stops it".
    pub banner: String,
    /// The config file it runs with.
    pub config: std::path::PathBuf,
    /// Its data dir.
    pub data_dir: std::path::PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl RunningPlane {
    /// Starts `rampart up` with every listener on port 0 and `extra_config` appended.
    pub fn start(extra_config: &str) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().join("data");
        let config = temp.path().join("rampart.toml");
        std::fs::write(
            &config,
            format!(
                "[admin]\nlisten = \"127.0.0.1:0\"\n[gateway]\nlisten = \"127.0.0.1:0\"\n\
                 [demo]\nlisten = \"127.0.0.1:0\"\n[identity]\nlisten = \"127.0.0.1:0\"\n\
                 managed_identity_listen = \"127.0.0.1:0\"\n[vault]\nlisten = \"127.0.0.1:0\"\n\
                 {extra_config}"
            ),
        )
        .unwrap();
        let mut plane = Self::launch(config, data_dir);
        plane._temp = Some(temp);
        plane
    }

    /// Starts `rampart up` with a config file and data dir the caller prepared (and keeps).
    pub fn launch(config: std::path::PathBuf, data_dir: std::path::PathBuf) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("up")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut banner = String::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("Ctrl-C stops it") {
                break;
            }
        }
        assert!(
            banner.contains("Ctrl-C stops it"),
            "rampart up failed:\n{banner}"
        );
        Self {
            child,
            banner,
            config,
            data_dir,
            _temp: None,
        }
    }

    /// The first word after `label` on a banner line.
    pub fn field(&self, label: &str) -> String {
        self.banner
            .lines()
            .find_map(|line| line.trim_start().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} line in banner:\n{}", self.banner))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    /// Runs `rampart --config .. --data-dir .. ARGS...` against this plane.
    pub fn rampart(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for RunningPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rampart(config: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

pub fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The venv scripts/test.sh prepares (azure-identity, azure-keyvault-*, pytest).
pub fn python() -> PathBuf {
    let path = std::env::var_os("RAMPART_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("rampart/venv-identity/bin/python")
        });
    assert!(
        path.exists(),
        "{} is missing: run scripts/test.sh (it creates the venv with the Azure SDKs)",
        path.display()
    );
    path
}

/// Registers a workload; returns (identity endpoint, identity header, oid).
pub fn workload(config: &Path, data: &Path, name: &str) -> (String, String, String) {
    let added = stdout_of(&rampart(
        config,
        data,
        &["identity", "workload", "add", name],
    ));
    let line = |prefix: &str| {
        added
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {added}"))
            .to_owned()
    };
    let (endpoint, header) = (line("IDENTITY_ENDPOINT="), line("IDENTITY_HEADER="));
    let listed = stdout_of(&rampart(config, data, &["identity", "workload", "list"]));
    let oid = listed
        .lines()
        .find(|l| l.starts_with(&format!("{name}\t")))
        .and_then(|l| l.split('\t').find_map(|f| f.strip_prefix("oid=")))
        .unwrap_or_else(|| panic!("no oid for {name} in {listed}"))
        .to_owned();
    (endpoint, header, oid)
}

/// An HTTPS client (HTTP/1.1, or HTTP/2 only with `http2`) trusting the CA in `ca_pem`.
pub fn https_client(
    ca_pem: &Path,
    http2: bool,
) -> hyper_util::client::legacy::Client<
    impl Clone + Send + Sync + 'static + hyper_util::client::legacy::connect::Connect,
    http_body_util::Full<bytes::Bytes>,
> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca_pem).unwrap();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    if http2 {
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build(builder.enable_http2().build())
    } else {
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(builder.enable_http1().build())
    }
}

/// A workload's token from the managed-identity endpoint (App Service protocol), and its
/// principal id (the token's `oid`).
pub fn workload_token(plane: &RunningPlane, name: &str, resource: &str) -> (String, String) {
    let added = plane.rampart(&["identity", "workload", "add", name]);
    assert!(added.status.success(), "{added:?}");
    let text = String::from_utf8(added.stdout).unwrap();
    let endpoint = text
        .lines()
        .find_map(|l| l.strip_prefix("IDENTITY_ENDPOINT="))
        .unwrap();
    let header = text
        .lines()
        .find_map(|l| l.strip_prefix("IDENTITY_HEADER="))
        .unwrap();
    let rest = endpoint.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path}?resource={resource}&api-version=2019-08-01 HTTP/1.0\r\nHost: {host}\r\n\
         X-IDENTITY-HEADER: {header}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let token = serde_json::from_str::<serde_json::Value>(body).unwrap()["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {response}"))
        .to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    (token, claims["oid"].as_str().unwrap().to_owned())
}
