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
        Self::start_with_env(extra_config, &[])
    }

    /// [`RunningPlane::start`] with extra environment variables for the plane.
    pub fn start_with_env(extra_config: &str, env: &[(&str, &std::ffi::OsStr)]) -> Self {
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
        let mut plane = Self::launch_with_env(config, data_dir, env);
        plane._temp = Some(temp);
        plane
    }

    /// Starts `rampart up` with a config file and data dir the caller prepared (and keeps).
    pub fn launch(config: std::path::PathBuf, data_dir: std::path::PathBuf) -> Self {
        Self::launch_with_env(config, data_dir, &[])
    }

    /// [`RunningPlane::launch`] with extra environment variables for the plane.
    pub fn launch_with_env(
        config: std::path::PathBuf,
        data_dir: std::path::PathBuf,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("up")
            .envs(env.iter().copied())
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

    /// SIGKILL, then waits (no shutdown: what was acknowledged must be on disk already).
    pub fn kill9(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success());
    }

    /// Runs `rampart ... ARGS` against this plane with `stdin` piped in.
    pub fn rampart_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// A client of this plane's vault API (the banner's vault URL, trusting the plane's CA).
    pub fn vault(&self) -> VaultHttp {
        VaultHttp::new(&self.field("vault "), &self.data_dir.join("tls/ca.pem"))
    }

    /// A vault token (audience [`VAULT_RESOURCE`]) for the workload whose managed-identity
    /// header is `header`, from this plane's managed-identity endpoint.
    pub fn vault_token(&self, header: &str) -> String {
        managed_identity_token(&self.field("workloads"), header, VAULT_RESOURCE).0
    }

    /// Registers workload `name`, gives it `role` on the default vault, and returns its vault
    /// token and its managed-identity header (for new tokens after a restart).
    pub fn vault_workload(&self, name: &str, role: &str) -> (String, String) {
        let (_, header, _) = workload(&self.config, &self.data_dir, name);
        let (token, oid) =
            managed_identity_token(&self.field("workloads"), &header, VAULT_RESOURCE);
        let assigned =
            self.rampart(&["access", "assign", &oid, role, "--scope", "/vaults/default"]);
        assert!(assigned.status.success(), "{assigned:?}");
        (token, header)
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

/// A command running `python()` with the Azure SDKs' credential environment cleared, so that
/// only what the test sets (IDENTITY_ENDPOINT/IDENTITY_HEADER, ...) picks the credential, and
/// with proxies off for loopback.
pub fn azure_python() -> Command {
    let mut command = Command::new(python());
    command.env("NO_PROXY", "*");
    for name in [
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_USERNAME",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IDENTITY_SERVER_THUMBPRINT",
    ] {
        command.env_remove(name);
    }
    command
}

/// Runs one of tests/python's pytest files with `azure_python()` and the given environment;
/// fails the test unless pytest succeeds and reports `expected` (e.g. "8 passed").
pub fn run_pytest(file: &str, env: &[(&str, &std::ffi::OsStr)], expected: &str) {
    let mut command = azure_python();
    command
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/python")
                .join(file),
        )
        .env_remove("RAMPART_TEST_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pytest {file} failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(expected), "{report}");
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

/// An HTTPS client trusting a CA.
pub type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// An HTTPS client (HTTP/1.1, or HTTP/2 only with `http2`) trusting the CA in `ca_pem`.
pub fn https_client(ca_pem: &Path, http2: bool) -> HttpsClient {
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

/// A workload's token for `resource` from the managed-identity endpoint (App Service
/// protocol), and its principal id (the token's `oid`). Registers the workload.
pub fn workload_token(plane: &RunningPlane, name: &str, resource: &str) -> (String, String) {
    let (endpoint, header, _) = workload(&plane.config, &plane.data_dir, name);
    managed_identity_token(&endpoint, &header, resource)
}

/// A token for `resource` from the managed-identity `endpoint` with the workload's `header`,
/// and its principal id (the token's `oid`).
pub fn managed_identity_token(endpoint: &str, header: &str, resource: &str) -> (String, String) {
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

/// An HTTPS client of the plane's vault API, trusting the plane's development CA.
#[derive(Clone)]
pub struct VaultHttp {
    client: HttpsClient,
    base: String,
}

/// The plane's default vault resource (`[vault] resource`): the audience of vault tokens.
pub const VAULT_RESOURCE: &str = "https://vault.rampart.local";

/// The API version the tests speak.
pub const API_VERSION: &str = "2026-04-01";

impl VaultHttp {
    /// A client of the vault at `base` (the banner's vault URL), trusting `ca_pem`.
    pub fn new(base: &str, ca_pem: &Path) -> Self {
        let client = https_client(ca_pem, false);
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// `method path?api-version=..` with an optional bearer token and JSON body: the status
    /// and the JSON answer (`Null` when the body is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<(http::StatusCode, serde_json::Value), hyper_util::client::legacy::Error> {
        use http_body_util::BodyExt;
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}?api-version={API_VERSION}", self.base))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = self
            .client
            .request(
                request
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap(),
            )
            .await?;
        let status = response.status();
        let bytes = match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => bytes::Bytes::new(),
        };
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// Sets a secret: the status and answer.
    pub async fn set_secret(
        &self,
        token: &str,
        name: &str,
        value: &str,
    ) -> Result<(http::StatusCode, serde_json::Value), hyper_util::client::legacy::Error> {
        self.call(
            "PUT",
            &format!("/secrets/{name}"),
            Some(token),
            Some(serde_json::json!({ "value": value })),
        )
        .await
    }
}
