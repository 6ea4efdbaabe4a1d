//! Every value the configuration rejects, with the file, line and key its error names; and the
//! example file, which must parse to exactly the defaults.

use std::path::Path;
use std::time::Duration;

use rampart_config::{
    Config, ConfigErrorKind, LogFormat, RateLimitKey, RoutineRecords, StorageBackend, TlsMode,
    Upstream,
};

fn parse(text: &str) -> Result<Config, rampart_config::ConfigError> {
    Config::from_toml_str(text, Path::new("rampart.toml"))
}

/// Asserts that `text` is rejected with a message starting `rampart.toml:LINE: KEY: ` and
/// containing `needle`.
#[track_caller]
fn rejected(text: &str, line: usize, key: &str, needle: &str) -> ConfigErrorKind {
    let error = parse(text).expect_err("the config should be rejected");
    let message = error.to_string();
    let prefix = format!("rampart.toml:{line}: {key}: ");
    assert!(
        message.starts_with(&prefix),
        "expected prefix {prefix:?} in {message:?}"
    );
    assert!(
        message.contains(needle),
        "expected {needle:?} in {message:?}"
    );
    *error.kind
}

#[test]
fn an_empty_file_is_the_default() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn the_example_parses_to_the_defaults() {
    assert_eq!(parse(rampart_config::example()).unwrap(), Config::default());
}

#[test]
fn the_example_sets_every_key_and_comments_every_section() {
    let example = rampart_config::example();
    let document: toml::Table = example.parse().unwrap();
    // Keys the example leaves commented out, because setting them changes the mode.
    let commented = [
        "cert_file",
        "key_file",
        "tls_certificate",
        "tls_vault",
        "postgres_url",
        "postgres_table",
        "postgres_pool_size",
        "issuer_url",
        "pkcs11_module",
        "pkcs11_token_label",
        "pkcs11_key_label",
        "pkcs11_pin_env",
        "pkcs11_pin_file",
    ];
    for section in [
        "data", "log", "admin", "gateway", "demo", "storage", "audit", "identity", "vault",
    ] {
        assert!(
            document.contains_key(section),
            "section [{section}] missing"
        );
        assert!(
            example.contains(&format!("[{section}]\n#")),
            "[{section}] has no comment"
        );
    }
    for key in commented {
        assert!(example.contains(&format!("# {key} = ")), "{key} not shown");
    }
}

#[test]
fn a_full_file_is_read_into_typed_values() {
    let config = parse(
        r#"
[data]
dir = "/var/lib/rampart"
[log]
format = "json"
level = "warn,rampart_gateway=debug"
[admin]
listen = "0.0.0.0:9000"
dangerous_public_admin = true
[gateway]
listen = "[::1]:443"
upstream = "https://app.internal:8443/base"
tls = "files"
cert_file = "cert.pem"
key_file = "key.pem"
shutdown_grace = "0s"
request_timeout = "2m"
[storage]
backend = "postgres"
postgres_url = "postgres://rampart:pw@127.0.0.1:5432/test"
postgres_table = "kv_2"
postgres_pool_size = 4
[audit]
checkpoint_interval = "1h"
group_commit_max_delay = "5ms"
segment_max_bytes = 1048576
routine_records = 0.25
"#,
    )
    .unwrap();
    assert_eq!(config.data.dir, Path::new("/var/lib/rampart"));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.admin.listen.port(), 9000);
    assert_eq!(config.gateway.listen.to_string(), "[::1]:443");
    assert_eq!(
        config.gateway.upstream,
        Upstream::Url("https://app.internal:8443/base".into())
    );
    assert_eq!(
        config.gateway.tls,
        TlsMode::Files {
            cert: "cert.pem".into(),
            key: "key.pem".into()
        }
    );
    assert_eq!(config.gateway.shutdown_grace, Duration::ZERO);
    assert_eq!(config.gateway.request_timeout, Duration::from_secs(120));
    assert_eq!(
        config.storage.backend,
        StorageBackend::Postgres {
            url: "postgres://rampart:pw@127.0.0.1:5432/test".into(),
            table: "kv_2".into(),
            pool_size: 4
        }
    );
    assert_eq!(config.audit.checkpoint_interval, Duration::from_secs(3600));
    assert_eq!(
        config.audit.group_commit_max_delay,
        Duration::from_millis(5)
    );
    assert_eq!(config.audit.segment_max_bytes, 1 << 20);
    assert_eq!(config.audit.routine_records, RoutineRecords::Sample(0.25));
}

#[test]
fn plaintext_and_routine_choices() {
    let config =
        parse("[gateway]\ndangerous_plaintext = true\n[audit]\nroutine_records = \"none\"\n")
            .unwrap();
    assert_eq!(config.gateway.tls, TlsMode::DangerousPlaintext);
    assert_eq!(config.audit.routine_records, RoutineRecords::None);
    let config = parse("[audit]\nroutine_records = \"0.1\"\n").unwrap();
    assert_eq!(config.audit.routine_records, RoutineRecords::Sample(0.1));
}

#[test]
fn the_file_must_exist() {
    let error = Config::load(Path::new("/nonexistent/rampart.toml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/rampart.toml: cannot read config file"),
        "{error}"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let kind = rejected_syntax("[gateway]\nlisten = \"127.0.0.1:1\"\nupstream = \n", 3);
    assert!(matches!(kind, ConfigErrorKind::Syntax { .. }));
}

#[track_caller]
fn rejected_syntax(text: &str, line: usize) -> ConfigErrorKind {
    let error = parse(text).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("rampart.toml:{line}: invalid TOML")),
        "{error}"
    );
    *error.kind
}

#[test]
fn unknown_sections_and_keys_get_suggestions() {
    rejected(
        "[gatway]\nlisten = \"1\"\n",
        1,
        "gatway",
        "did you mean \"gateway\"?",
    );
    rejected(
        "[zzzz]\n",
        1,
        "zzzz",
        "unknown section (expected one of: data, log,",
    );
    rejected(
        "[gateway]\nlisten = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n",
        3,
        "gateway.listen_addr",
        "unknown key, did you mean \"listen\"?",
    );
    rejected(
        "[audit]\nfoo = 1\n",
        2,
        "audit.foo",
        "expected one of: checkpoint_interval",
    );
    rejected("data = 5\n", 1, "data", "expected");
}

#[test]
fn wrong_types_name_the_key() {
    let kind = rejected(
        "[gateway]\n\nlisten = 8443\n",
        3,
        "gateway.listen",
        "expected a string, found integer 8443",
    );
    assert!(matches!(kind, ConfigErrorKind::WrongType { .. }));
    rejected(
        "[admin]\ndangerous_public_admin = \"yes\"\n",
        2,
        "admin.dangerous_public_admin",
        "expected a boolean",
    );
    rejected(
        "[storage]\nbackend = \"postgres\"\npostgres_url = \"postgres://h/d\"\npostgres_pool_size = \"8\"\n",
        4,
        "storage.postgres_pool_size",
        "expected i64",
    );
}

#[test]
fn socket_addresses() {
    rejected(
        "# c\n\n[gateway]\n\nlisten = \"0.0.0.0:99999\"\n",
        5,
        "gateway.listen",
        "\"0.0.0.0:99999\" is not a socket address (expected IP:PORT, e.g. \"127.0.0.1:8443\")",
    );
    rejected(
        "[admin]\nlisten = \"localhost:9901\"\n",
        2,
        "admin.listen",
        "is not a socket address",
    );
    rejected(
        "[demo]\nlisten = \"8081\"\n",
        2,
        "demo.listen",
        "e.g. \"127.0.0.1:8081\"",
    );
}

#[test]
fn the_admin_listener_stays_on_loopback_unless_asked() {
    let kind = rejected(
        "[admin]\nlisten = \"0.0.0.0:9901\"\n",
        2,
        "admin.listen",
        "is not a loopback address",
    );
    assert!(matches!(kind, ConfigErrorKind::PublicAdmin { .. }));
    assert!(parse("[admin]\nlisten = \"[::1]:9901\"\n").is_ok());
}

#[test]
fn listeners_cannot_share_a_port() {
    rejected(
        "[gateway]\nlisten = \"127.0.0.1:9901\"\n",
        2,
        "gateway.listen",
        "\"127.0.0.1:9901\" is already used by admin.listen",
    );
    rejected(
        "[gateway]\nlisten = \"0.0.0.0:8081\"\n",
        2,
        "gateway.listen",
        "already used by demo.listen",
    );
    // The demo app only listens when it is the upstream.
    assert!(
        parse("[gateway]\nlisten = \"127.0.0.1:8081\"\nupstream = \"http://127.0.0.1:3000\"\n")
            .is_ok()
    );
    // Port 0 picks a free port: never a conflict.
    assert!(
        parse("[gateway]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n").is_ok()
    );
}

#[test]
fn log_settings() {
    rejected(
        "[log]\nformat = \"xml\"\n",
        2,
        "log.format",
        "\"xml\" is not a log format (expected \"text\" or \"json\")",
    );
    rejected(
        "[log]\nlevel = \"loud\"\n",
        2,
        "log.level",
        "\"loud\" is not a level",
    );
    rejected(
        "[log]\nlevel = \"rampart=verbose\"\n",
        2,
        "log.level",
        "\"verbose\" is not a level",
    );
    rejected(
        "[log]\nlevel = \"bad target=info\"\n",
        2,
        "log.level",
        "\"bad target\" is not a target",
    );
    rejected("[log]\nlevel = \"\"\n", 2, "log.level", "it is empty");
    assert!(parse("[log]\nlevel = \"rampart_audit::log=trace\"\n").is_ok());
}

#[test]
fn upstreams() {
    for (value, reason) in [
        ("ftp://x", "the scheme is not http or https"),
        ("http://", "the host is missing"),
        ("http://:80", "the host is missing"),
        ("http://app:99999", "\"99999\" is not a port"),
        ("http://app /x", "whitespace"),
        ("http://[::1/", "IPv6 host is not closed"),
    ] {
        rejected(
            &format!("[gateway]\nupstream = \"{value}\"\n"),
            2,
            "gateway.upstream",
            reason,
        );
    }
    let error = parse("[gateway]\nupstream = \"http://u:secret@app\"\n").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("carries credentials"), "{message}");
    assert!(!message.contains("secret"), "{message}");
    assert!(parse("[gateway]\nupstream = \"http://[::1]:3000\"\n").is_ok());
}

#[test]
fn tls_modes() {
    rejected(
        "[gateway]\ntls = \"acme\"\n",
        2,
        "gateway.tls",
        "\"acme\" is not a TLS mode",
    );
    rejected(
        "[gateway]\ntls = \"files\"\nkey_file = \"k.pem\"\n",
        1,
        "gateway.cert_file",
        "missing, required when gateway.tls = \"files\"",
    );
    rejected(
        "[gateway]\ntls = \"files\"\ncert_file = \"c.pem\"\n",
        1,
        "gateway.key_file",
        "missing",
    );
    rejected(
        "[gateway]\ncert_file = \"c.pem\"\n",
        2,
        "gateway.cert_file",
        "only allowed when gateway.tls = \"files\"",
    );
    rejected(
        "[gateway]\ntls = \"files\"\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\ndangerous_plaintext = true\n",
        5,
        "gateway.dangerous_plaintext",
        "plain HTTP cannot be combined",
    );
    rejected(
        "[gateway]\ntls = \"files\"\ncert_file = \"\"\nkey_file = \"k.pem\"\n",
        3,
        "gateway.cert_file",
        "must not be empty",
    );
    rejected(
        "[gateway]\ntls = \"files\"\ncert_file = \"~/c.pem\"\nkey_file = \"k.pem\"\n",
        3,
        "gateway.cert_file",
        "starts with \"~\"",
    );
}

#[test]
fn tls_from_the_vault() {
    let config = parse("[gateway]\ntls = \"vault\"\ntls_certificate = \"Edge-Cert\"\n").unwrap();
    assert_eq!(
        config.gateway.tls,
        TlsMode::Vault {
            certificate: "Edge-Cert".into(),
            vault: None
        }
    );
    let config =
        parse("[gateway]\ntls = \"vault\"\ntls_certificate = \"edge\"\ntls_vault = \"Stamp-2\"\n")
            .unwrap();
    assert_eq!(
        config.gateway.tls,
        TlsMode::Vault {
            certificate: "edge".into(),
            vault: Some("stamp-2".into())
        }
    );
    rejected(
        "[log]\nlevel = \"info\"\n[gateway]\ntls = \"vault\"\n",
        3,
        "gateway.tls_certificate",
        "missing, required when gateway.tls = \"vault\" (expected the name of a certificate",
    );
    rejected(
        "[gateway]\ntls = \"vault\"\ntls_certificate = \"bad_name\"\n",
        3,
        "gateway.tls_certificate",
        "\"bad_name\" is not a certificate name",
    );
    rejected(
        &format!(
            "[gateway]\ntls = \"vault\"\ntls_certificate = \"{}\"\n",
            "a".repeat(128)
        ),
        3,
        "gateway.tls_certificate",
        "is not a certificate name",
    );
    rejected(
        "[gateway]\ntls = \"vault\"\ntls_certificate = \"edge\"\ntls_vault = \"x\"\n",
        4,
        "gateway.tls_vault",
        "\"x\" is not a vault name",
    );
    rejected(
        "[gateway]\ntls_certificate = \"edge\"\n",
        2,
        "gateway.tls_certificate",
        "only allowed when gateway.tls = \"vault\"",
    );
    rejected(
        "[gateway]\ntls = \"vault\"\ntls_certificate = \"edge\"\ncert_file = \"c.pem\"\n",
        4,
        "gateway.cert_file",
        "only allowed when gateway.tls = \"files\"",
    );
    rejected(
        "[gateway]\ntls = \"vault\"\ntls_certificate = \"edge\"\ndangerous_plaintext = true\n",
        4,
        "gateway.dangerous_plaintext",
        "plain HTTP cannot be combined",
    );
    rejected(
        "[gateway]\ntls = \"vault\"\ntls_certificate = \"edge\"\n[vault]\nseal = \"shamir\"\n",
        2,
        "gateway.tls",
        "vault.seal = \"shamir\" starts sealed",
    );
}

#[test]
fn durations() {
    rejected(
        "[gateway]\nshutdown_grace = \"10\"\n",
        2,
        "gateway.shutdown_grace",
        "\"10\" is not a duration: the unit is missing",
    );
    rejected(
        "[gateway]\nrequest_timeout = \"1.5s\"\n",
        2,
        "gateway.request_timeout",
        "e.g. \"60s\"",
    );
    rejected(
        "[gateway]\nrequest_timeout = \"500ms\"\n",
        2,
        "gateway.request_timeout",
        "\"500ms\" is out of range (expected 1s to 1h)",
    );
    rejected(
        "[gateway]\nshutdown_grace = \"2h\"\n",
        2,
        "gateway.shutdown_grace",
        "out of range",
    );
    rejected(
        "[audit]\ncheckpoint_interval = \"0s\"\n",
        2,
        "audit.checkpoint_interval",
        "(expected 1s to 24h)",
    );
    rejected(
        "[audit]\ngroup_commit_max_delay = \"2s\"\n",
        2,
        "audit.group_commit_max_delay",
        "(expected 0s to 1s)",
    );
}

#[test]
fn data_and_storage_paths() {
    rejected(
        "[data]\ndir = \"~/rampart\"\n",
        2,
        "data.dir",
        "relative to the working directory",
    );
    rejected("[data]\ndir = \" \"\n", 2, "data.dir", "must not be empty");
    rejected(
        "[storage]\npath = \"~/x.redb\"\n",
        2,
        "storage.path",
        "relative to data.dir",
    );
}

#[test]
fn storage_backends() {
    rejected(
        "[storage]\nbackend = \"sqlite\"\n",
        2,
        "storage.backend",
        "\"sqlite\" is not a storage backend (expected \"redb\" or \"postgres\")",
    );
    rejected(
        "[storage]\nbackend = \"postgres\"\n",
        1,
        "storage.postgres_url",
        "missing, required when storage.backend = \"postgres\"",
    );
    rejected(
        "[storage]\npostgres_url = \"postgres://h/d\"\n",
        2,
        "storage.postgres_url",
        "only allowed when storage.backend = \"postgres\"",
    );
    rejected(
        "[storage]\npostgres_pool_size = 3\n",
        2,
        "storage.postgres_pool_size",
        "only allowed when",
    );
    rejected(
        "[storage]\nbackend = \"postgres\"\npostgres_url = \"postgres://h/d\"\npath = \"x\"\n",
        4,
        "storage.path",
        "only allowed when storage.backend = \"redb\"",
    );
    let pg = "[storage]\nbackend = \"postgres\"\n";
    rejected(
        &format!("{pg}postgres_url = \"mysql://h/d\"\n"),
        3,
        "storage.postgres_url",
        "is not a PostgreSQL URL",
    );
    rejected(
        &format!("{pg}postgres_url = \"postgres://\"\n"),
        3,
        "storage.postgres_url",
        "is not a PostgreSQL URL",
    );
    let error = parse(&format!("{pg}postgres_url = \"mysql://u:hunter2@h/d\"\n")).unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
    let pg = format!("{pg}postgres_url = \"postgres://h/d\"\n");
    rejected(
        &format!("{pg}postgres_table = \"Bad-Name\"\n"),
        4,
        "storage.postgres_table",
        "is not a valid table name",
    );
    rejected(
        &format!("{pg}postgres_table = \"1kv\"\n"),
        4,
        "storage.postgres_table",
        "is not a valid table name",
    );
    rejected(
        &format!("{pg}postgres_table = \"{}\"\n", "a".repeat(64)),
        4,
        "storage.postgres_table",
        "is not a valid table name",
    );
    rejected(
        &format!("{pg}postgres_pool_size = 0\n"),
        4,
        "storage.postgres_pool_size",
        "0 is out of range (expected 1 to 1024)",
    );
    rejected(
        &format!("{pg}postgres_pool_size = 5000\n"),
        4,
        "storage.postgres_pool_size",
        "out of range",
    );
}

#[test]
fn vault_settings() {
    let config = parse(
        "[vault]\nlisten = \"127.0.0.1:9446\"\ndomain = \"Vault.Example.com\"\ndefault_vault = \"Stamp-1\"\nresource = \"https://kv.example.com\"\ngeography = \"westeurope\"\nseal = \"key-file\"\nthrottle_window = \"1s\"\nthrottle_all = 10\nthrottle_secret_create = 2\npurge_interval = \"5m\"\n",
    )
    .unwrap();
    assert_eq!(config.vault.listen.port(), 9446);
    assert_eq!(config.vault.domain, "vault.example.com");
    assert_eq!(config.vault.default_vault, "stamp-1");
    assert_eq!(config.vault.resource, "https://kv.example.com");
    assert_eq!(config.vault.geography, "westeurope");
    assert_eq!(config.vault.throttle_window, Duration::from_secs(1));
    assert_eq!(
        (
            config.vault.throttle_all,
            config.vault.throttle_secret_create
        ),
        (10, 2)
    );
    assert_eq!(config.vault.purge_interval, Duration::from_secs(300));
    assert_eq!(config.vault.seal, rampart_config::VaultSeal::KeyFile);

    let shamir = parse("[vault]\nseal = \"shamir\"\n").unwrap();
    assert_eq!(shamir.vault.seal, rampart_config::VaultSeal::Shamir);
    let hsm = parse(
        "[vault]\nseal = \"pkcs11\"\npkcs11_token_label = \"rampart\"\npkcs11_pin_file = \"/etc/rampart/pin\"\n",
    )
    .unwrap();
    assert_eq!(
        hsm.vault.seal,
        rampart_config::VaultSeal::Pkcs11(rampart_config::Pkcs11Seal {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "rampart".into(),
            key_label: "rampart-vault-root".into(),
            pin: rampart_config::PinSource::File("/etc/rampart/pin".into()),
        })
    );
    let by_env = parse(
        "[vault]\nseal = \"pkcs11\"\npkcs11_module = \"/opt/hsm.so\"\npkcs11_token_label = \"t\"\npkcs11_key_label = \"k\"\npkcs11_pin_env = \"HSM_PIN\"\n",
    )
    .unwrap();
    let rampart_config::VaultSeal::Pkcs11(seal) = by_env.vault.seal else {
        panic!("not pkcs11");
    };
    assert_eq!(seal.module, Path::new("/opt/hsm.so"));
    assert_eq!(seal.key_label, "k");
    assert_eq!(seal.pin, rampart_config::PinSource::Env("HSM_PIN".into()));

    rejected(
        "[vault]\nlisten = \"8446\"\n",
        2,
        "vault.listen",
        "is not a socket address",
    );
    rejected(
        "[vault]\nlisten = \"127.0.0.1:8443\"\n",
        2,
        "vault.listen",
        "is already used by gateway.listen",
    );
    for bad in ["", "a..b", "-a.com", "a_b.com", "a.com:80", "https://a.com"] {
        rejected(
            &format!("[vault]\ndomain = \"{bad}\"\n"),
            2,
            "vault.domain",
            "is not a host",
        );
    }
    for bad in ["ab", "1abc", "abc-", "a--b", "a_b", &"a".repeat(25)] {
        rejected(
            &format!("[vault]\ndefault_vault = \"{bad}\"\n"),
            2,
            "vault.default_vault",
            "is not a vault name",
        );
    }
    for bad in [
        "",
        "vault.rampart.local",
        "ftp://x",
        "https://",
        "https://a b",
    ] {
        rejected(
            &format!("[vault]\nresource = \"{bad}\"\n"),
            2,
            "vault.resource",
            "is not a resource URI",
        );
    }
    for bad in ["", "west europe", "eu/1", &"g".repeat(65)] {
        rejected(
            &format!("[vault]\ngeography = \"{bad}\"\n"),
            2,
            "vault.geography",
            "is not a geography id",
        );
    }
    rejected(
        "[vault]\nseal = \"sss\"\n",
        2,
        "vault.seal",
        "\"sss\" is not a vault seal method (expected \"key-file\", \"shamir\" or \"pkcs11\")",
    );
    rejected(
        "[vault]\nseal = \"shamir\"\npkcs11_token_label = \"t\"\n",
        3,
        "vault.pkcs11_token_label",
        "only allowed when vault.seal = \"pkcs11\"",
    );
    rejected(
        "[vault]\nseal = \"pkcs11\"\npkcs11_pin_env = \"PIN\"\n",
        1,
        "vault.pkcs11_token_label",
        "missing, required when vault.seal = \"pkcs11\"",
    );
    rejected(
        "[vault]\nseal = \"pkcs11\"\npkcs11_token_label = \"t\"\n",
        1,
        "vault.pkcs11_pin_env",
        "missing, required when vault.seal = \"pkcs11\"",
    );
    rejected(
        "[vault]\nseal = \"pkcs11\"\npkcs11_token_label = \"t\"\npkcs11_pin_env = \"1234\"\n",
        4,
        "vault.pkcs11_pin_env",
        "is not an environment variable name",
    );
    rejected(
        "[vault]\nseal = \"pkcs11\"\npkcs11_token_label = \"t\"\npkcs11_pin_env = \"P\"\npkcs11_pin_file = \"/p\"\n",
        5,
        "vault.pkcs11_pin_file",
        "not both",
    );
    rejected(
        &format!(
            "[vault]\nseal = \"pkcs11\"\npkcs11_token_label = \"{}\"\npkcs11_pin_env = \"P\"\n",
            "t".repeat(33)
        ),
        3,
        "vault.pkcs11_token_label",
        "is not a PKCS#11 label",
    );
    rejected(
        "[vault]\nthrottle_window = \"0s\"\n",
        2,
        "vault.throttle_window",
        "out of range",
    );
    rejected(
        "[vault]\nthrottle_window = \"2h\"\n",
        2,
        "vault.throttle_window",
        "out of range",
    );
    rejected(
        "[vault]\nthrottle_window = \"soon\"\n",
        2,
        "vault.throttle_window",
        "soon",
    );
    for key in ["throttle_all", "throttle_secret_create"] {
        for bad in ["0", "-1", "10000001"] {
            rejected(
                &format!("[vault]\n{key} = {bad}\n"),
                2,
                &format!("vault.{key}"),
                "is out of range (expected 1 to 10000000)",
            );
        }
    }
    rejected(
        "[vault]\npurge_interval = \"0s\"\n",
        2,
        "vault.purge_interval",
        "out of range",
    );
    rejected(
        "[vault]\npurge_interval = \"2d\"\n",
        2,
        "vault.purge_interval",
        "",
    );
    rejected("[vault]\nlisen = \"x\"\n", 2, "vault.lisen", "unknown key");
}

#[test]
fn vault_key_throttle_classes_and_read_only() {
    let config = parse(
        "[vault]\nthrottle_keys = { hsm-rsa-4096 = 3, software-ec-p-256k-create = 7 }\nread_only = true\n",
    )
    .unwrap();
    assert_eq!(
        config.vault.throttle_keys,
        [
            ("hsm-rsa-4096".to_owned(), 3),
            ("software-ec-p-256k-create".to_owned(), 7)
        ]
        .into()
    );
    assert!(config.vault.read_only);
    // The sub-table form too; defaults: no overrides, writable.
    let config = parse("[vault]\n[vault.throttle_keys]\nsoftware-rsa-2048 = 10\n").unwrap();
    assert_eq!(
        config.vault.throttle_keys.get("software-rsa-2048"),
        Some(&10)
    );
    assert!(!config.vault.read_only);
    assert!(parse("").unwrap().vault.throttle_keys.is_empty());

    for bad in [
        "rsa-2048",
        "hsm-rsa-1024",
        "software-rsa-2048-created",
        "HSM-rsa-2048",
    ] {
        rejected(
            &format!("[vault]\nthrottle_keys = {{ {bad} = 5 }}\n"),
            2,
            &format!("vault.throttle_keys.{bad}"),
            "is not a key throttle class",
        );
    }
    for bad in ["0", "-1", "10000001"] {
        rejected(
            &format!("[vault]\nthrottle_all = 5\n[vault.throttle_keys]\nhsm-ec-p-384 = {bad}\n"),
            4,
            "vault.throttle_keys.hsm-ec-p-384",
            "is out of range (expected 1 to 10000000)",
        );
    }
    rejected("[vault]\nread_only = \"yes\"\n", 2, "vault.read_only", "");
}

#[test]
fn audit_settings() {
    rejected(
        "[audit]\nsegment_max_bytes = 100\n",
        2,
        "audit.segment_max_bytes",
        "100 is out of range (expected 4096 to 4294967296 (4 GiB) bytes)",
    );
    rejected(
        "[audit]\nsegment_max_bytes = -1\n",
        2,
        "audit.segment_max_bytes",
        "out of range",
    );
    rejected(
        "[audit]\nroutine_records = \"some\"\n",
        2,
        "audit.routine_records",
        "\"some\" is not a record setting",
    );
    rejected(
        "[audit]\nroutine_records = 1.5\n",
        2,
        "audit.routine_records",
        "\"1.5\" is not a record setting",
    );
    rejected(
        "[audit]\nroutine_records = \"-0.1\"\n",
        2,
        "audit.routine_records",
        "is not a record setting",
    );
}

#[test]
fn gateway_shields() {
    let config = parse(
        "[gateway]\nheader_timeout = \"5s\"\nmax_connections = 20000\nmax_connections_per_client = 64\n\
         min_request_body_rate = \"2048B/5s\"\nmax_queued = 0\nmax_queue_wait = \"250ms\"\n\
         trusted_proxies = [\"10.0.0.0/8\", \"192.168.1.7\", \"fd00::/8\"]\n",
    )
    .unwrap();
    let gateway = &config.gateway;
    assert_eq!(gateway.header_timeout, Duration::from_secs(5));
    assert_eq!(gateway.max_connections, 20_000);
    assert_eq!(gateway.max_connections_per_client, 64);
    assert_eq!(gateway.min_request_body_rate.bytes, 2048);
    assert_eq!(gateway.min_request_body_rate.per, Duration::from_secs(5));
    assert_eq!(gateway.max_queued, 0);
    assert_eq!(gateway.max_queue_wait, Duration::from_millis(250));
    let proxies: Vec<String> = gateway
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]);

    rejected(
        "[gateway]\nheader_timeout = \"0s\"\n",
        2,
        "gateway.header_timeout",
        "(expected 1s to 5m)",
    );
    rejected(
        "[gateway]\ntls_handshake_timeout = \"10m\"\n",
        2,
        "gateway.tls_handshake_timeout",
        "out of range",
    );
    rejected(
        "[gateway]\nmax_connections = 0\n",
        2,
        "gateway.max_connections",
        "0 is out of range (expected 1 to 1000000)",
    );
    rejected(
        "[gateway]\nmax_connections_per_client = -3\n",
        2,
        "gateway.max_connections_per_client",
        "out of range",
    );
    rejected(
        "[gateway]\nmax_in_flight = 0\n",
        2,
        "gateway.max_in_flight",
        "out of range",
    );
    rejected(
        "[gateway]\nmax_queue_wait = \"2m\"\n",
        2,
        "gateway.max_queue_wait",
        "(expected 0s to 1m)",
    );
    for rate in ["1024", "1024B/0s", "0B/10s", "1KB/10s", "1024B/2h", "B/10s"] {
        rejected(
            &format!("[gateway]\nmin_response_rate = \"{rate}\"\n"),
            2,
            "gateway.min_response_rate",
            "is not a data rate",
        );
    }
    for (network, reason) in [
        ("10.0.0.1/8", "host bits are set after /8"),
        ("10.0.0.0/33", "\"33\" is not a prefix length (0 to 32)"),
        ("example.com", "is not an IP address"),
        ("fd00::/129", "(0 to 128)"),
    ] {
        rejected(
            &format!("[gateway]\ntrusted_proxies = [\n  \"10.0.0.0/8\",\n  \"{network}\",\n]\n"),
            4,
            "gateway.trusted_proxies",
            reason,
        );
    }
    rejected(
        "[gateway]\ntrusted_proxies = \"10.0.0.0/8\"\n",
        2,
        "gateway.trusted_proxies",
        "expected a sequence",
    );
}

#[test]
fn gateway_workers() {
    assert_eq!(parse("").unwrap().gateway.workers, 0);
    assert_eq!(
        parse("[gateway]\nworkers = 3\n").unwrap().gateway.workers,
        3
    );
    rejected(
        "[gateway]\nworkers = -1\n",
        2,
        "gateway.workers",
        "out of range",
    );
    rejected(
        "\n[gateway]\nworkers = 5000\n",
        3,
        "gateway.workers",
        "out of range",
    );
}

#[test]
fn rate_limits() {
    assert_eq!(parse("").unwrap().rate_limit, None);
    let config = parse("[rate_limit]\nrequests_per_second = 2.5\n").unwrap();
    let limit = config.rate_limit.unwrap();
    assert_eq!((limit.requests_per_second, limit.burst), (2.5, 3));
    assert_eq!(limit.key, RateLimitKey::ClientIp);
    assert_eq!(limit.redis_url, None);
    let config = parse(
        "[rate_limit]\nrequests_per_second = 100\nburst = 500\nkey = \"header:X-Api-Key\"\n\
         redis_url = \"redis://127.0.0.1:6379/0\"\nredis_timeout = \"20ms\"\n",
    )
    .unwrap();
    let limit = config.rate_limit.unwrap();
    assert_eq!(limit.burst, 500);
    assert_eq!(limit.key, RateLimitKey::Header("x-api-key".into()));
    assert_eq!(limit.redis_url.as_deref(), Some("redis://127.0.0.1:6379/0"));
    assert_eq!(limit.redis_timeout, Duration::from_millis(20));
    let config = parse("[rate_limit]\nrequests_per_second = 1\nkey = \"principal\"\n").unwrap();
    assert_eq!(config.rate_limit.unwrap().key, RateLimitKey::Principal);

    rejected(
        "\n[rate_limit]\nburst = 5\n",
        2,
        "rate_limit.requests_per_second",
        "missing, required when the [rate_limit] section is present",
    );
    rejected(
        "[rate_limit]\nrequests_per_second = 0\n",
        2,
        "rate_limit.requests_per_second",
        "0 is out of range",
    );
    rejected(
        "[rate_limit]\nrequests_per_second = -1.0\n",
        2,
        "rate_limit.requests_per_second",
        "out of range",
    );
    rejected(
        "[rate_limit]\nrequests_per_second = nan\n",
        2,
        "rate_limit.requests_per_second",
        "out of range",
    );
    rejected(
        "[rate_limit]\nrequests_per_second = 1\nburst = 0\n",
        3,
        "rate_limit.burst",
        "out of range",
    );
    for key in ["ip", "header:", "header:bad name", "cookie:x", "Principal"] {
        rejected(
            &format!("[rate_limit]\nrequests_per_second = 1\nkey = \"{key}\"\n"),
            3,
            "rate_limit.key",
            "is not a rate-limit key",
        );
    }
    rejected(
        "[rate_limit]\nrequests_per_second = 1\nredis_url = \"http://127.0.0.1:6379\"\n",
        3,
        "rate_limit.redis_url",
        "is not a Redis URL",
    );
    let error = parse("[rate_limit]\nrequests_per_second = 1\nredis_url = \"tcp://:hunter2@h\"\n")
        .unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
    rejected(
        "[rate_limit]\nrequests_per_second = 1\nredis_prefix = \"\"\n",
        3,
        "rate_limit.redis_prefix",
        "must not be empty",
    );
    rejected(
        "[rate_limit]\nrequests_per_second = 1\nredis_timeout = \"0ms\"\n",
        3,
        "rate_limit.redis_timeout",
        "out of range",
    );
}

#[test]
fn routes() {
    let config = parse(
        "[[route]]\nhost = \"API.example.com\"\npath_prefix = \"/api\"\n\
         backends = [\"http://10.0.0.1:8080\", \"https://10.0.0.2\"]\nrequest_timeout = \"5s\"\n\
         health_check_path = \"/healthz\"\nretries = 2\n\n\
         [[route]]\nhost = \"*.example.com\"\nbackends = [\"http://10.0.0.3\"]\n",
    )
    .unwrap();
    assert_eq!(config.routes.len(), 2);
    let api = &config.routes[0];
    assert_eq!(api.host.as_deref(), Some("api.example.com"));
    assert_eq!(api.path_prefix, "/api");
    assert_eq!(api.backends.len(), 2);
    assert_eq!(api.request_timeout, Some(Duration::from_secs(5)));
    let check = api.health_check.as_ref().unwrap();
    assert_eq!(
        (check.path.as_str(), check.interval),
        ("/healthz", Duration::from_secs(5))
    );
    assert_eq!(api.retries, 2);
    let wildcard = &config.routes[1];
    assert_eq!((wildcard.path_prefix.as_str(), wildcard.retries), ("/", 1));
    assert_eq!(wildcard.health_check, None);

    let second = "[[route]]\nbackends = [\"http://a\"]\n\n[[route]]\n";
    rejected(
        &format!("{second}host = \"x\"\n"),
        4,
        "route[1].backends",
        "missing, required when a [[route]] is defined",
    );
    rejected(
        &format!("{second}backends = []\n"),
        5,
        "route[1].backends",
        "must not be empty",
    );
    rejected(
        &format!("{second}backends = [\"ftp://x\"]\n"),
        5,
        "route[1].backends",
        "the scheme is not http or https",
    );
    rejected(
        &format!("{second}backends = [\"http://a\"]\nbackend = 1\n"),
        6,
        "route[1].backend",
        "unknown key, did you mean \"backends\"?",
    );
    rejected(
        &format!("{second}backends = [\"http://a\"]\nretries = \"1\"\n"),
        6,
        "route[1].retries",
        "expected i64",
    );
    let one = "[[route]]\nbackends = [\"http://a\"]\n";
    for host in [
        "example.com:8080",
        "http://example.com",
        "-bad.com",
        "a..b",
        "*",
        "**.x.com",
    ] {
        rejected(
            &format!("{one}host = \"{host}\"\n"),
            3,
            "route[0].host",
            "is not a host",
        );
    }
    for prefix in ["api", "/a b", "/api?x=1"] {
        rejected(
            &format!("{one}path_prefix = \"{prefix}\"\n"),
            3,
            "route[0].path_prefix",
            "is not a path prefix",
        );
    }
    rejected(
        &format!("{one}retries = 9\n"),
        3,
        "route[0].retries",
        "9 is out of range (expected 0 to 5)",
    );
    rejected(
        &format!("{one}request_timeout = \"0s\"\n"),
        3,
        "route[0].request_timeout",
        "out of range",
    );
    rejected(
        &format!("{one}health_check_interval = \"5s\"\n"),
        3,
        "route[0].health_check_interval",
        "only allowed when health_check_path is set",
    );
    rejected(
        &format!("{one}health_check_path = \"healthz\"\n"),
        3,
        "route[0].health_check_path",
        "is not a path prefix",
    );
}

#[test]
fn route_identity() {
    use rampart_config::RouteAuthConfig;
    let config = parse(
        "[[route]]\nname = \"orders\"\npath_prefix = \"/orders\"\nbackends = [\"http://a\"]\n\
         auth = \"bearer\"\naudiences = [\"https://orders.test\"]\n\
         required_scopes = [\"orders:read\", \"orders:write\"]\nauthorize = true\n\n\
         [[route]]\nbackends = [\"http://b\"]\nauth = \"none\"\n",
    )
    .unwrap();
    let orders = &config.routes[0];
    assert_eq!(orders.name, "orders");
    assert_eq!(
        orders.auth,
        Some(RouteAuthConfig {
            audiences: vec!["https://orders.test".into()],
            required_scopes: vec!["orders:read".into(), "orders:write".into()],
            authorize: true,
        })
    );
    assert_eq!(
        (config.routes[1].name.as_str(), &config.routes[1].auth),
        ("route-1", &None)
    );
    let bearer_only = parse("[[route]]\nbackends = [\"http://a\"]\nauth = \"bearer\"\n").unwrap();
    assert_eq!(
        bearer_only.routes[0].auth,
        Some(RouteAuthConfig {
            audiences: vec![],
            required_scopes: vec![],
            authorize: false
        })
    );

    let one = "[[route]]\nbackends = [\"http://a\"]\n";
    rejected(
        &format!("{one}auth = \"basic\"\n"),
        3,
        "route[0].auth",
        "\"basic\" is not a route auth mode (expected \"none\" or \"bearer\")",
    );
    for key in [
        "audiences = [\"x\"]",
        "required_scopes = [\"x\"]",
        "authorize = true",
    ] {
        let name = key.split(' ').next().unwrap();
        rejected(
            &format!("{one}{key}\n"),
            3,
            &format!("route[0].{name}"),
            "only allowed when auth = \"bearer\"",
        );
    }
    rejected(
        &format!("{one}auth = \"bearer\"\nrequired_scopes = [\"a b\"]\n"),
        4,
        "route[0].required_scopes",
        "is not a token claim value",
    );
    rejected(
        &format!("{one}auth = \"bearer\"\naudiences = [\"\"]\n"),
        4,
        "route[0].audiences",
        "is not a token claim value",
    );
    for name in ["", "a/b", "has space", &"x".repeat(65)] {
        rejected(
            &format!("{one}name = \"{name}\"\n"),
            3,
            "route[0].name",
            "is not a route name",
        );
    }
    rejected(
        &format!("{one}name = \"api\"\n\n[[route]]\nbackends = [\"http://b\"]\nname = \"api\"\n"),
        5,
        "route[1].name",
        "\"api\" is not a route name of its own",
    );
}

#[test]
fn trusted_issuers() {
    use rampart_config::{IssuerKeys, TrustedIssuerConfig};
    let config = parse(
        "[[trusted_issuer]]\nissuer = \"https://login.example.com\"\n\
         audiences = [\"https://api.example.com\"]\ntenant = \"contoso\"\n\n\
         [[trusted_issuer]]\nissuer = \"http://127.0.0.1:9400\"\naudiences = [\"a\", \"b\"]\n\
         jwks_uri = \"http://127.0.0.1:9400/jwks\"\n",
    )
    .unwrap();
    assert_eq!(
        config.trusted_issuers,
        [
            TrustedIssuerConfig {
                issuer: "https://login.example.com".into(),
                keys: IssuerKeys::Discovery,
                audiences: vec!["https://api.example.com".into()],
                tenant: Some("contoso".into()),
            },
            TrustedIssuerConfig {
                issuer: "http://127.0.0.1:9400".into(),
                keys: IssuerKeys::JwksUri("http://127.0.0.1:9400/jwks".into()),
                audiences: vec!["a".into(), "b".into()],
                tenant: None,
            },
        ]
    );
    rejected(
        "[[trusted_issuer]]\naudiences = [\"a\"]\n",
        1,
        "trusted_issuer[0].issuer",
        "missing, required when a [[trusted_issuer]] is defined",
    );
    let one = "[[trusted_issuer]]\nissuer = \"https://id.test\"\n";
    rejected(
        one,
        1,
        "trusted_issuer[0].audiences",
        "missing, required when a [[trusted_issuer]] is defined",
    );
    for issuer in ["id.test", "https://id.test/", "ftp://id.test", "https://"] {
        rejected(
            &format!("[[trusted_issuer]]\nissuer = \"{issuer}\"\naudiences = [\"a\"]\n"),
            2,
            "trusted_issuer[0].issuer",
            "is not an issuer URL",
        );
    }
    rejected(
        &format!("{one}audiences = []\n"),
        3,
        "trusted_issuer[0].audiences",
        "must not be empty",
    );
    rejected(
        &format!("{one}audiences = [\"a b\"]\n"),
        3,
        "trusted_issuer[0].audiences",
        "is not a token claim value",
    );
    rejected(
        &format!("{one}audiences = [\"a\"]\njwks_uri = \"jwks\"\n"),
        4,
        "trusted_issuer[0].jwks_uri",
        "is not a URL",
    );
    rejected(
        &format!(
            "{one}audiences = [\"a\"]\ndiscovery_url = \"https://id.test/d\"\njwks_uri = \"https://id.test/k\"\n"
        ),
        5,
        "trusted_issuer[0].jwks_uri",
        "only allowed when discovery_url is not set",
    );
    rejected(
        &format!("{one}audiences = [\"a\"]\ntenant = \"\"\n"),
        4,
        "trusted_issuer[0].tenant",
        "must not be empty",
    );
    rejected(
        &format!("{one}audiences = [\"a\"]\naudience = \"a\"\n"),
        4,
        "trusted_issuer[0].audience",
        "unknown key, did you mean \"audiences\"?",
    );
}

#[test]
fn waf_settings() {
    use rampart_config::{CrsSource, WafEngine};
    let waf = parse("").unwrap().waf;
    assert_eq!(
        (waf.crs, waf.engine, waf.paranoia_level),
        (CrsSource::Auto, WafEngine::On, 1)
    );
    let waf = parse(
        "[waf]\ncrs = \"/opt/crs\"\ncrs_setup = \"/etc/crs-setup.conf\"\n\
         before_crs = [\"/etc/rampart/before/*.conf\"]\nafter_crs = [\"after.conf\"]\n\
         engine = \"detection-only\"\nparanoia_level = 4\nrequest_body_limit = 1048576\n\
         response_body_access = false\n",
    )
    .unwrap()
    .waf;
    assert_eq!(waf.crs, CrsSource::Dir("/opt/crs".into()));
    assert_eq!(
        waf.crs_setup.as_deref(),
        Some(Path::new("/etc/crs-setup.conf"))
    );
    assert_eq!(waf.before_crs, [Path::new("/etc/rampart/before/*.conf")]);
    assert_eq!(waf.after_crs, [Path::new("after.conf")]);
    assert_eq!(
        (waf.engine, waf.paranoia_level),
        (WafEngine::DetectionOnly, 4)
    );
    assert_eq!(waf.request_body_limit, 1 << 20);
    assert!(!waf.response_body_access);
    assert_eq!(
        parse("[waf]\ncrs = \"off\"\n").unwrap().waf.crs,
        CrsSource::Off
    );

    rejected(
        "[waf]\nengine = \"block\"\n",
        2,
        "waf.engine",
        "\"block\" is not a WAF engine mode (expected \"on\", \"detection-only\" or \"off\")",
    );
    rejected(
        "[waf]\nparanoia_level = 5\n",
        2,
        "waf.paranoia_level",
        "5 is out of range (expected 1 to 4)",
    );
    rejected(
        "[waf]\nparanoia_level = 0\n",
        2,
        "waf.paranoia_level",
        "out of range",
    );
    rejected(
        "[waf]\ncrs = \"~/crs\"\n",
        2,
        "waf.crs",
        "starts with \"~\"",
    );
    rejected("[waf]\ncrs = \"\"\n", 2, "waf.crs", "must not be empty");
    rejected(
        "[waf]\ncrs = \"off\"\ncrs_setup = \"x.conf\"\n",
        3,
        "waf.crs_setup",
        "only allowed when waf.crs is not \"off\"",
    );
    rejected(
        "[waf]\nbefore_crs = [\"a.conf\", \"\"]\n",
        2,
        "waf.before_crs",
        "must not be empty",
    );
    rejected(
        "[waf]\nrequest_body_limit = 0\n",
        2,
        "waf.request_body_limit",
        "0 is out of range (expected 1 to 1073741824 (1 GiB) bytes)",
    );
    rejected(
        "[waf]\nrequest_body_no_files_limit = 2147483648\n",
        2,
        "waf.request_body_no_files_limit",
        "out of range",
    );
    rejected(
        "[waf]\nresponse_body_access = \"on\"\n",
        2,
        "waf.response_body_access",
        "expected a boolean",
    );
}

#[test]
fn new_connection_rate() {
    assert_eq!(
        parse("").unwrap().gateway.max_new_connections_per_client,
        200
    );
    let config = parse("[gateway]\nmax_new_connections_per_client = 50\n").unwrap();
    assert_eq!(config.gateway.max_new_connections_per_client, 50);
    rejected(
        "[gateway]\nmax_new_connections_per_client = 0\n",
        2,
        "gateway.max_new_connections_per_client",
        "0 is out of range (expected 1 to 1000000)",
    );
}

#[test]
fn over_rate_connection_hold() {
    assert_eq!(
        parse("").unwrap().gateway.over_rate_connection_hold,
        Duration::from_secs(10)
    );
    let config = parse("[gateway]\nover_rate_connection_hold = \"0s\"\n").unwrap();
    assert_eq!(config.gateway.over_rate_connection_hold, Duration::ZERO);
    rejected(
        "[gateway]\nover_rate_connection_hold = \"10m\"\n",
        2,
        "gateway.over_rate_connection_hold",
        "out of range",
    );
}

#[test]
fn identity_settings() {
    let config = parse(
        "[identity]\nlisten = \"0.0.0.0:9444\"\nissuer_url = \"https://id.example.com\"\n\
         managed_identity_listen = \"127.0.0.1:9445\"\ntoken_lifetime = \"2h\"\n\
         key_rotation = \"24h\"\nsigning_algorithm = \"RS256\"\n",
    )
    .unwrap();
    assert_eq!(config.identity.listen.port(), 9444);
    assert_eq!(
        config.identity.issuer_url.as_deref(),
        Some("https://id.example.com")
    );
    assert_eq!(config.identity.managed_identity_listen.port(), 9445);
    assert_eq!(config.identity.token_lifetime, Duration::from_secs(7200));
    assert_eq!(config.identity.key_rotation, Duration::from_secs(24 * 3600));
    assert_eq!(
        config.identity.signing_algorithm,
        rampart_config::SigningAlgorithm::Rs256
    );
    rejected(
        "[identity]\nlisten = \"localhost\"\n",
        2,
        "identity.listen",
        "is not a socket address",
    );
    rejected(
        "[identity]\nmanaged_identity_listen = \"8445\"\n",
        2,
        "identity.managed_identity_listen",
        "is not a socket address",
    );
    for url in [
        "ftp://id.example.com",
        "https://",
        "https://id.example.com/",
        "https://id.example.com?x=1",
        "https://id.example.com#f",
        "id.example.com",
    ] {
        rejected(
            &format!("[identity]\nissuer_url = \"{url}\"\n"),
            2,
            "identity.issuer_url",
            "is not an issuer URL",
        );
    }
    rejected(
        "[identity]\ntoken_lifetime = \"300s\"\n",
        2,
        "identity.token_lifetime",
        "(expected 301s to 24h)",
    );
    rejected(
        "[identity]\ntoken_lifetime = \"2d\"\n",
        2,
        "identity.token_lifetime",
        "is not a unit",
    );
    rejected(
        "[identity]\nkey_rotation = \"30m\"\n",
        2,
        "identity.key_rotation",
        "out of range",
    );
    rejected(
        "[identity]\nsigning_algorithm = \"HS256\"\n",
        2,
        "identity.signing_algorithm",
        "expected \"ES256\" or \"RS256\"",
    );
    rejected(
        "[identity]\nmanaged_identity_listen = \"127.0.0.1:8444\"\n",
        2,
        "identity.managed_identity_listen",
        "identity.listen",
    );
    rejected(
        "[identity]\nlisten = \"127.0.0.1:9901\"\n",
        2,
        "identity.listen",
        "admin.listen",
    );
}
