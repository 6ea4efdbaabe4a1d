//! `rampart identity` end to end through the real binary: `serve`, workloads and clients
//! registered through the running plane's admin API, and the Azure SDK's
//! `ManagedIdentityCredential` / `DefaultAzureCredential` getting tokens from the
//! managed-identity endpoint with only IDENTITY_ENDPOINT and IDENTITY_HEADER set
//! (tests/python/test_managed_identity.py, in the venv scripts/test.sh prepares).

mod common;

use common::{azure_python, rampart, stdout_of};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `rampart identity serve`, stopped on drop.
struct Serve {
    child: Child,
    issuer: String,
    managed_identity: String,
}

impl Serve {
    fn start(config: &Path, data: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .args(["identity", "serve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = |prefix: &str| {
            let line = lines.next().unwrap().unwrap();
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"))
                .to_owned()
        };
        let issuer = next("rampart identity issuer ");
        let managed_identity = next("managed identity endpoint ");
        let _admin = next("admin ");
        Self {
            child,
            issuer,
            managed_identity,
        }
    }

    fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // A hang guard, not a timing assertion.
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status:?}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("rampart identity serve did not stop within 60 s");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn azure_sdk_gets_tokens_from_the_managed_identity_endpoint() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let config = temp.path().join("rampart.toml");
    // The managed-identity endpoint listens on every address, so that the test can call it
    // from a non-loopback address and see the refusal.
    std::fs::write(
        &config,
        "[admin]\nlisten = \"127.0.0.1:0\"\n[identity]\nlisten = \"127.0.0.1:0\"\n\
         managed_identity_listen = \"0.0.0.0:0\"\n",
    )
    .unwrap();
    let mut serve = Serve::start(&config, &data);
    assert!(
        serve.issuer.starts_with("https://localhost:"),
        "{}",
        serve.issuer
    );
    assert!(data.join("run/admin.url").exists());

    // Registered through the running plane's admin API (the plane holds the storage).
    let added = stdout_of(&rampart(
        &config,
        &data,
        &["identity", "workload", "add", "orders-api"],
    ));
    let lines: Vec<&str> = added.lines().collect();
    assert_eq!(lines.len(), 2, "{added}");
    let endpoint = lines[0].strip_prefix("IDENTITY_ENDPOINT=").unwrap();
    let header = lines[1].strip_prefix("IDENTITY_HEADER=").unwrap();
    assert_eq!(endpoint, serve.managed_identity);
    assert!(endpoint.starts_with("http://127.0.0.1:") && endpoint.ends_with("/msi/token"));

    let client = stdout_of(&rampart(
        &config,
        &data,
        &[
            "identity",
            "client",
            "add",
            "billing",
            "--scope",
            "https://vault.rampart.test/.default",
        ],
    ));
    let secret = client
        .lines()
        .find_map(|line| line.strip_prefix("client_secret="))
        .unwrap_or_else(|| panic!("no secret in {client}"));
    let listed = stdout_of(&rampart(&config, &data, &["identity", "client", "list"]));
    assert!(
        listed.starts_with("billing\tauth=client_secret"),
        "{listed}"
    );
    assert!(!listed.contains(secret));

    let mut command = azure_python();
    command
        .arg(repo_root().join("tests/python/test_managed_identity.py"))
        .env("IDENTITY_ENDPOINT", endpoint)
        .env("IDENTITY_HEADER", header)
        .env("RAMPART_ISSUER", &serve.issuer)
        .env("RAMPART_CA", data.join("tls/ca.pem"))
        .env("RAMPART_WORKLOAD", "orders-api")
        .env("RAMPART_CLIENT_ID", "billing")
        .env("RAMPART_CLIENT_SECRET", secret);
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "python test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");

    let workloads = stdout_of(&rampart(&config, &data, &["identity", "workload", "list"]));
    assert!(workloads.starts_with("orders-api\toid="), "{workloads}");
    assert!(!workloads.contains(header));
    stdout_of(&rampart(
        &config,
        &data,
        &["identity", "workload", "remove", "orders-api"],
    ));
    let gone = rampart(
        &config,
        &data,
        &["identity", "workload", "remove", "orders-api"],
    );
    assert_eq!(gone.status.code(), Some(2), "{gone:?}");

    serve.stop();
    assert!(!data.join("run/admin.url").exists());
    // With no plane running, the commands open the storage themselves.
    let offline = stdout_of(&rampart(&config, &data, &["identity", "client", "list"]));
    assert!(offline.starts_with("billing\t"), "{offline}");
    assert_eq!(
        stdout_of(&rampart(&config, &data, &["identity", "workload", "list"])),
        ""
    );
    let added = stdout_of(&rampart(
        &config,
        &data,
        &["identity", "workload", "add", "batch"],
    ));
    assert!(
        added.starts_with("IDENTITY_ENDPOINT=http://127.0.0.1:0/msi/token\n"),
        "{added}"
    );

    // Every registry change and issuance is in the audit log, with no secret in it.
    let tail = stdout_of(&rampart(&config, &data, &["audit", "tail", "-n", "1000"]));
    for action in [
        "workload.add",
        "client.add",
        "workload.remove",
        "managed_identity.token",
        "token.issue",
    ] {
        assert!(tail.contains(action), "{action} not audited:\n{tail}");
    }
    assert!(!tail.contains(header) && !tail.contains(secret));
}

#[test]
fn admin_identity_routes_need_the_admin_token() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let config = temp.path().join("rampart.toml");
    std::fs::write(
        &config,
        "[admin]\nlisten = \"127.0.0.1:0\"\n[identity]\nlisten = \"127.0.0.1:0\"\n\
         managed_identity_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut serve = Serve::start(&config, &data);
    let admin = std::fs::read_to_string(data.join("run/admin.url")).unwrap();
    let admin = admin.trim().strip_prefix("http://").unwrap().to_owned();
    // The status; a 401 must be the admin APIs' common JSON answer with the challenge.
    let status = |request: &str| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&admin).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer.split_whitespace().nth(1).unwrap().to_owned();
        if status == "401" {
            let (head, body) = answer.split_once("\r\n\r\n").unwrap();
            let head = head.to_ascii_lowercase();
            assert!(
                head.contains("content-type: application/json")
                    && head.contains("www-authenticate: bearer realm=\"rampart-admin\""),
                "{head}"
            );
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["error"], "the admin token is required", "{body}");
        }
        status
    };
    let body = r#"{"name":"sneaky"}"#;
    let post = |auth: &str| {
        format!(
            "POST /identity/workloads HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(status(&post("")), "401");
    assert_eq!(status(&post("Authorization: Bearer rpa_wrong\r\n")), "401");
    assert_eq!(
        status("GET /identity/clients HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        "401"
    );
    let listed = stdout_of(&rampart(&config, &data, &["identity", "workload", "list"]));
    assert_eq!(listed, "", "a refused request registered a workload");
    // Refusals of the admin token's holder are JSON too (as the /access and /vault APIs').
    let token = std::fs::read_to_string(data.join("credentials/admin-token")).unwrap();
    let auth = format!("Authorization: Bearer {}\r\n", token.trim());
    let json_answer = |request: &str| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&admin).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().to_owned();
        (
            status,
            serde_json::from_str::<serde_json::Value>(body).unwrap(),
        )
    };
    let (code, body) = json_answer(&format!(
        "POST /identity/workloads HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: 1\r\n\r\n{{"
    ));
    assert_eq!(code, "400");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not the expected JSON"),
        "{body}"
    );
    let (code, body) = json_answer(&format!(
        "DELETE /identity/workloads/nosuch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n"
    ));
    assert_eq!(
        (code.as_str(), &body["error"]),
        ("404", &serde_json::json!("no such workload"))
    );
    serve.stop();
}
