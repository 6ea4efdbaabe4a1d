//! The test OIDC identity provider (panva oidc-provider on node, from the shared
//! `tools/test-idp`): a real IdP issuing RFC 9068 JWT access tokens by client credentials.
//!
//! `idp.mjs` and `package.json` are copied from `$RAMPART_SHARED_DIR/tools/test-idp` into an
//! install directory (`$RAMPART_TEST_IDP_DIR`, default `<tmp>/rampart-test-idp`, the one
//! `scripts/test.sh` prepares), because node resolves `oidc-provider` next to the script;
//! `npm install` runs there once, under a file lock. Each [`TestIdp`] is one `node idp.mjs`
//! child on its own loopback port, its stderr in `idp-<port>.log` of the install directory
//! (shown when it fails to start); dropping it kills the process and removes the log.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// How to run the IdP (each field maps to one of `idp.mjs`'s environment variables).
#[derive(Debug, Clone)]
pub struct IdpOptions {
    /// `IDP_ALG`: the access tokens' signature algorithm, `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// `IDP_TTL`: access token lifetime in seconds (the IdP's default is 300).
    pub ttl_secs: Option<u64>,
    /// `IDP_AUDIENCE`: the default audience (the IdP's default is `https://gateway.test/api`).
    pub audience: Option<String>,
    /// `IDP_KEYS`: a file keeping the signing keys, so kids survive a restart.
    pub keys_file: Option<PathBuf>,
}

impl IdpOptions {
    /// Tokens signed with `alg`, other settings the IdP's defaults.
    pub fn new(alg: &str) -> Self {
        Self {
            alg: alg.to_owned(),
            ttl_secs: None,
            audience: None,
            keys_file: None,
        }
    }
}

/// A running test IdP; killed when dropped.
#[derive(Debug)]
pub struct TestIdp {
    child: Option<Child>,
    addr: SocketAddr,
    dir: PathBuf,
}

/// The IdP's default audience.
pub const DEFAULT_AUDIENCE: &str = "https://gateway.test/api";

/// Where the IdP is installed: `$RAMPART_TEST_IDP_DIR`, else `<tmp>/rampart-test-idp`.
pub fn install_dir() -> PathBuf {
    std::env::var_os("RAMPART_TEST_IDP_DIR").map_or_else(
        || std::env::temp_dir().join("rampart-test-idp"),
        PathBuf::from,
    )
}

fn skip_or_fail(reason: &str) -> Option<TestIdp> {
    assert!(
        std::env::var_os("CI").is_none(),
        "test IdP unavailable: {reason}"
    );
    eprintln!("skipping: test IdP unavailable: {reason}");
    None
}

fn copy_if_changed(from: &Path, to: &Path) {
    let source = std::fs::read(from)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", from.display()));
    if std::fs::read(to).ok().as_deref() != Some(source.as_slice()) {
        std::fs::write(to, &source)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", to.display()));
    }
}

/// Copies the IdP next to its `node_modules` and installs them when missing.
fn ensure_installed(source: &Path) -> PathBuf {
    let dir = install_dir();
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
    let lock = File::create(dir.join(".lock"))
        .unwrap_or_else(|error| panic!("cannot create the install lock: {error}"));
    lock.lock()
        .unwrap_or_else(|error| panic!("cannot take the install lock: {error}"));
    copy_if_changed(&source.join("idp.mjs"), &dir.join("idp.mjs"));
    copy_if_changed(&source.join("package.json"), &dir.join("package.json"));
    if !dir
        .join("node_modules/oidc-provider/package.json")
        .is_file()
    {
        let status = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|error| panic!("cannot run npm: {error}"));
        assert!(
            status.success(),
            "npm install in {} failed: {status}",
            dir.display()
        );
    }
    drop(lock);
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("no free port: {error}"))
}

/// One HTTP/1.0 exchange (the server closes the connection after answering); returns the
/// status code and the body.
fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl TestIdp {
    /// Starts the IdP on a free loopback port and waits until its JWKS answers.
    ///
    /// Returns `None` (the test skips) when the shared tools or node are missing and `CI` is
    /// not set.
    ///
    /// # Panics
    /// When `CI` is set and node or the shared tools are missing, when `npm install` fails,
    /// or when the IdP does not answer within 30 s.
    pub fn start(options: &IdpOptions) -> Option<Self> {
        let Some(shared) = crate::shared::shared_dir() else {
            return skip_or_fail("shared test data not found (set RAMPART_SHARED_DIR)");
        };
        if Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            return skip_or_fail("node is not installed");
        }
        let dir = ensure_installed(&shared.join("tools/test-idp"));
        let mut idp = Self {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            dir,
        };
        idp.spawn(options);
        Some(idp)
    }

    fn spawn(&mut self, options: &IdpOptions) {
        let log_path = self.dir.join(format!("idp-{}.log", self.addr.port()));
        let log = File::create(&log_path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", log_path.display()));
        let mut command = Command::new("node");
        command
            .arg("idp.mjs")
            .current_dir(&self.dir)
            .env("IDP_PORT", self.addr.port().to_string())
            .env("IDP_HOST", "127.0.0.1")
            .env("IDP_ALG", &options.alg)
            .env_remove("IDP_ISSUER")
            .env_remove("IDP_TTL")
            .env_remove("IDP_AUDIENCE")
            .env_remove("IDP_KEYS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(ttl) = options.ttl_secs {
            command.env("IDP_TTL", ttl.to_string());
        }
        if let Some(audience) = &options.audience {
            command.env("IDP_AUDIENCE", audience);
        }
        if let Some(keys) = &options.keys_file {
            command.env("IDP_KEYS", keys);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start node: {error}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("test IdP exited ({status}): {log}");
            }
            let request = format!("GET /jwks HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
            if matches!(exchange(self.addr, request.as_bytes()), Ok((200, _))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("test IdP did not answer on {} within 30 s", self.addr);
    }

    /// The issuer, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the IdP (SIGKILL), as an outage would; the port stays reserved for
    /// [`TestIdp::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the IdP if running and starts it again on the same port with `options`
    /// (without `keys_file` the keys, hence the kids, are new).
    pub fn restart(&mut self, options: &IdpOptions) {
        self.kill();
        self.spawn(options);
    }

    /// The current JWKS as JSON.
    ///
    /// # Panics
    /// When the IdP does not answer 200 with JSON.
    pub fn jwks(&self) -> serde_json::Value {
        let request = format!("GET /jwks HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
        let (status, body) = exchange(self.addr, request.as_bytes())
            .unwrap_or_else(|error| panic!("jwks request failed: {error}"));
        assert_eq!(status, 200, "jwks: {body}");
        serde_json::from_str(&body).unwrap_or_else(|error| panic!("jwks not json: {error}"))
    }

    /// A client-credentials access token for `client_id`/`secret`, with `scope` and an RFC
    /// 8707 `resource` (the token's audience) when given.
    ///
    /// # Panics
    /// When the IdP refuses (the body is in the message).
    pub fn token(
        &self,
        client_id: &str,
        secret: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> String {
        let mut form = String::from("grant_type=client_credentials");
        if let Some(scope) = scope {
            form.push_str(&format!("&scope={}", form_encode(scope)));
        }
        if let Some(resource) = resource {
            form.push_str(&format!("&resource={}", form_encode(resource)));
        }
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(client_id),
            form_encode(secret)
        ));
        let request = format!(
            "POST /token HTTP/1.0\r\nHost: {}\r\nAuthorization: Basic {credentials}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            self.addr,
            form.len()
        );
        let (status, body) = exchange(self.addr, request.as_bytes())
            .unwrap_or_else(|error| panic!("token request failed: {error}"));
        assert_eq!(status, 200, "token request refused: {body}");
        let response: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|error| panic!("token not json: {error}"));
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {body}"))
            .to_owned()
    }

    /// [`TestIdp::token`] for the `gateway-test` client.
    pub fn gateway_token(&self, scope: Option<&str>) -> String {
        self.token("gateway-test", "gateway-test-secret", scope, None)
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.dir.join(format!("idp-{}.log", self.addr.port())));
    }
}
