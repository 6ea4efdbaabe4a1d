//! Running the real `rampart` binary from integration tests: `rampart gateway` processes and
//! `rampart audit` queries.

#![allow(dead_code)] // each test binary uses part of this

use std::io::{BufRead, BufReader};
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
