//! The gateway's certificate from the plane's vault (`gateway.tls = "vault"`).
//!
//! The gateway serves the latest version of a vault certificate, read in-process through the
//! vault's object store: the chain and private key come from the certificate's linked secret
//! (PEM or PKCS#12, as Azure exports it), or from the linked key when the policy marks the key
//! not exportable. A watcher checks every [`POLL_INTERVAL`] for a new version and swaps it into
//! the gateway's [`ReloadingCertificate`]: new handshakes get the new certificate, established
//! connections keep running.
//!
//! Nothing unusable is served: a version that is disabled, expired, not yet valid, or whose
//! key does not match is refused. At start that stops `rampart up` with the reason; later the
//! previous certificate stays in use, and the refusal is logged (once per version and reason),
//! counted (`rampart_gateway_certificate_reloads_total{result="error"}`) and audited. A missing
//! certificate is created at start under [`default_policy`] (self-signed by the vault,
//! `CN=localhost`, auto-renewed at 80% of its lifetime). Renewal is the vault's: its
//! certificate lifetime-action scheduler ([`crate::vault::certificate_scheduler`]) carries out
//! the policy's `AutoRenew` action for this certificate as for every other, and the watcher
//! serves the new version at its next check. While the served certificate is expired (no
//! usable newer version), an error is logged at every check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rampart_audit::{Auditor, Decision, Record};
use rampart_gateway::{GatewayTls, ReloadingCertificate};
use rampart_vault::certificates::policy::{
    CONTENT_TYPE_PEM, IssuerParameters, KeyProperties, KeyType, Policy, SubjectAlternativeNames,
    X509Properties,
};
use rampart_vault::certificates::x509::{self, CertKey};
use rampart_vault::certificates::{Certificate, NewCertificate};
use rampart_vault::store::unix_now;
use rampart_vault::{Certificates, ObjectKind, VaultError, VaultInfo};
use rampart_vault_api::VaultApi;

use crate::datadir::DataDir;

/// How often the watcher looks for a new version.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The file (in the data directory's `tls/`) holding a public copy of the certificate in
/// service, PEM, rewritten on every swap: clients trust it to reach the gateway when it is
/// self-signed.
pub const PUBLIC_COPY: &str = "gateway-vault.pem";

/// The policy of the certificate `rampart up` creates when the configured one does not exist:
/// issuer `Self`, EC P-256, `CN=localhost` with the DNS names `hosts`, 12 months, auto-renewed
/// at 80% of its lifetime (the vault's default lifetime action for `Self`).
pub fn default_policy(hosts: &[String]) -> Policy {
    Policy {
        key_props: Some(KeyProperties {
            kty: Some(KeyType::Ec),
            crv: Some("P-256".to_owned()),
            exportable: Some(true),
            ..KeyProperties::default()
        }),
        x509_props: Some(X509Properties {
            subject: Some("CN=localhost".to_owned()),
            sans: Some(SubjectAlternativeNames {
                dns_names: Some(hosts.to_vec()),
                ..SubjectAlternativeNames::default()
            }),
            validity_months: Some(12),
            ..X509Properties::default()
        }),
        issuer: Some(IssuerParameters {
            name: Some("Self".to_owned()),
            ..IssuerParameters::default()
        }),
        ..Policy::default()
    }
}

/// The gateway's vault certificate and what start did about it.
#[derive(Debug)]
pub struct VaultCertificate {
    /// The gateway's TLS settings, serving the certificate.
    pub tls: GatewayTls,
    /// The watcher to spawn.
    pub watcher: Watcher,
    /// What the banner says.
    pub summary: Summary,
}

/// What the banner says about the gateway's certificate.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The certificate's name.
    pub name: String,
    /// Its vault.
    pub vault: String,
    /// The version in service.
    pub version: String,
    /// Whether `rampart up` created it just now.
    pub created: bool,
    /// The public copy of the certificate in service.
    pub public_copy: PathBuf,
}

/// Why a version cannot be served.
#[derive(Debug, thiserror::Error)]
enum Unusable {
    #[error("certificate {name:?} does not exist in vault {vault:?}")]
    Missing { name: String, vault: String },
    #[error("version {version} is {reason}")]
    Refused { version: String, reason: String },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A certificate version ready to serve.
struct Loaded {
    version: String,
    certified: rustls::sign::CertifiedKey,
    leaf: Vec<u8>,
    expires: Option<i64>,
}

/// Reads the latest version of `name` and checks it may be served at `now`.
async fn load(
    certificates: &Certificates,
    vault: &str,
    name: &str,
    now: i64,
) -> Result<Loaded, Unusable> {
    let cert = match certificates.get(vault, name, None).await {
        Ok(cert) => cert,
        Err(VaultError::NotFound { .. }) => {
            return Err(Unusable::Missing {
                name: name.to_owned(),
                vault: vault.to_owned(),
            });
        }
        Err(error) => return Err(error.into()),
    };
    let refused = |reason: String| Unusable::Refused {
        version: cert.version.clone(),
        reason,
    };
    check_validity(&cert, now).map_err(refused)?;
    let store = certificates.store();
    let secret = store
        .get_version(vault, ObjectKind::Secret, name, Some(&cert.version))
        .await?;
    let bundle = if secret.attributes.content_type.as_deref() == Some(CONTENT_TYPE_PEM) {
        let text = std::str::from_utf8(&secret.value)
            .map_err(|_| refused("a linked secret that is not PEM text".to_owned()))?;
        x509::read_pem(text)
    } else {
        let mut der = STANDARD
            .decode(secret.value.as_slice())
            .map_err(|_| refused("a linked secret that is not base64 PKCS#12".to_owned()))?;
        let bundle = x509::read_pfx(&der, "");
        // The PKCS#12 holds the private key: overwrite it before it is freed.
        der.iter_mut().for_each(|byte| *byte = 0);
        std::hint::black_box(&der);
        bundle
    }
    .map_err(|error| refused(format!("a linked secret that does not read: {error}")))?;
    let key = match bundle.key {
        Some(key) => key,
        // Not exportable: the secret has the chain only; the key is the linked key version.
        None => {
            let linked = store
                .get_version(vault, ObjectKind::Key, name, Some(&cert.version))
                .await?;
            let (_, der) = linked
                .value
                .split_first()
                .ok_or_else(|| refused("an empty linked key".to_owned()))?;
            CertKey::from_private_der(der)
                .map_err(|error| refused(format!("a linked key that does not read: {error}")))?
        }
    };
    let chain = x509::leaf_first(&key, bundle.certs)
        .map_err(|_| refused("a private key that matches none of its certificates".to_owned()))?;
    if chain.first() != Some(&cert.cer) {
        return Err(refused(
            "a linked secret whose leaf is not the certificate".to_owned(),
        ));
    }
    let certified = rampart_gateway::certified_key(chain, key.pkcs8().to_vec())
        .map_err(|error| refused(format!("not usable for TLS: {error}")))?;
    Ok(Loaded {
        version: cert.version,
        certified,
        leaf: cert.cer,
        expires: cert.attributes.expires,
    })
}

/// Refuses a disabled, expired or not yet valid version.
fn check_validity(cert: &Certificate, now: i64) -> Result<(), String> {
    let at = |seconds: i64| {
        u64::try_from(seconds)
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .map(|nanos| rampart_audit::Timestamp::from_unix_nanos(nanos).to_rfc3339(0))
            .unwrap_or_else(|| format!("unix time {seconds}"))
    };
    if !cert.attributes.enabled {
        return Err("disabled".to_owned());
    }
    if let Some(not_before) = cert.attributes.not_before
        && not_before > now
    {
        return Err(format!("not valid before {}", at(not_before)));
    }
    if let Some(expires) = cert.attributes.expires
        && expires <= now
    {
        return Err(format!("expired at {}", at(expires)));
    }
    Ok(())
}

/// Writes the public copy of the leaf in service (PEM).
fn write_public_copy(path: &std::path::Path, leaf: &[u8]) {
    let pem = x509::write_pem(None, &[leaf.to_vec()]);
    if let Err(error) = std::fs::write(path, pem.as_bytes()) {
        tracing::warn!(%error, path = %path.display(), "cannot write the public copy of the gateway certificate");
    }
}

/// Loads the certificate `name` of `vault` for the gateway, creating it under
/// [`default_policy`] (`hosts` as its DNS names) when it does not exist.
pub async fn start(
    api: &VaultApi,
    data: &DataDir,
    vault: &str,
    name: &str,
    hosts: &[String],
    auditor: Auditor,
) -> anyhow::Result<VaultCertificate> {
    let vault_info = api
        .registry()
        .get(vault)
        .await
        .with_context(|| format!("gateway.tls = \"vault\": cannot open vault {vault:?}"))?;
    let certificates = Certificates::new(api.store().clone());
    let context = || format!("gateway.tls = \"vault\": certificate {name:?} in vault {vault:?}");
    let (loaded, created) = match load(&certificates, vault, name, unix_now()).await {
        Ok(loaded) => (loaded, false),
        Err(Unusable::Missing { .. }) => {
            let mut tags = std::collections::BTreeMap::new();
            tags.insert("created-by".to_owned(), "rampart up".to_owned());
            certificates
                .create(
                    &vault_info,
                    name,
                    NewCertificate {
                        policy: default_policy(hosts),
                        enabled: None,
                        tags,
                    },
                )
                .await
                .with_context(|| format!("{}: cannot create it", context()))?;
            let loaded = load(&certificates, vault, name, unix_now())
                .await
                .with_context(context)?;
            auditor.record_routine(
                Record::new("vault", "certificate.create", Decision::Allow)
                    .actor("rampart", "system")
                    .resource(format!(
                        "/vaults/{vault}/certificates/{}",
                        name.to_ascii_lowercase()
                    ))
                    .detail("version", loaded.version.clone())
                    .detail("trigger", "gateway.tls = \"vault\": missing at start"),
            );
            tracing::info!(certificate = %name, vault = %vault, version = %loaded.version, "created the gateway's certificate in the vault (self-signed)");
            (loaded, true)
        }
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!(
                "{}: not served (create a new version, or enable it)",
                context()
            )));
        }
    };
    let public_copy = data.subdir("tls")?.join(PUBLIC_COPY);
    write_public_copy(&public_copy, &loaded.leaf);
    let source = Arc::new(ReloadingCertificate::new(loaded.certified));
    let summary = Summary {
        name: name.to_owned(),
        vault: vault.to_owned(),
        version: loaded.version.clone(),
        created,
        public_copy: public_copy.clone(),
    };
    Ok(VaultCertificate {
        tls: GatewayTls::from_source(Arc::clone(&source)),
        watcher: Watcher {
            api: api.clone(),
            certificates,
            vault: vault_info,
            name: name.to_owned(),
            source,
            served: loaded.version,
            expires: loaded.expires,
            last_error: None,
            public_copy,
            auditor,
        },
        summary,
    })
}

/// Swaps new versions into the gateway (the vault's lifetime-action scheduler renews it).
#[derive(Debug)]
pub struct Watcher {
    api: VaultApi,
    certificates: Certificates,
    vault: VaultInfo,
    name: String,
    source: Arc<ReloadingCertificate>,
    served: String,
    expires: Option<i64>,
    last_error: Option<String>,
    public_copy: PathBuf,
    auditor: Auditor,
}

impl Watcher {
    fn resource(&self) -> String {
        format!(
            "/vaults/{}/certificates/{}",
            self.vault.name,
            self.name.to_ascii_lowercase()
        )
    }

    /// One check at `now`: swaps in a new usable version; returns whether it did.
    async fn check(&mut self, now: i64) -> bool {
        let latest = match self
            .certificates
            .get(&self.vault.name, &self.name, None)
            .await
        {
            Ok(cert) => Some(cert),
            Err(VaultError::NotFound { .. }) => None,
            Err(error) => {
                self.refused(format!("cannot read it: {error}"), None);
                return false;
            }
        };
        let Some(latest) = latest else {
            self.refused(
                "it no longer exists (deleted?); still serving the previous version".to_owned(),
                None,
            );
            return false;
        };
        if latest.version == self.served {
            self.last_error = None;
            self.warn_if_expired(now);
            return false;
        }
        match load(&self.certificates, &self.vault.name, &self.name, now).await {
            Ok(loaded) => {
                self.source.replace(loaded.certified);
                write_public_copy(&self.public_copy, &loaded.leaf);
                tracing::info!(certificate = %self.name, vault = %self.vault.name, version = %loaded.version, previous = %self.served, "gateway certificate swapped to a new vault version");
                metrics::counter!("rampart_gateway_certificate_reloads_total", "result" => "ok")
                    .increment(1);
                self.auditor.record_routine(
                    Record::new("gateway", "gateway.certificate_swap", Decision::Allow)
                        .actor("rampart", "system")
                        .resource(self.resource())
                        .detail("version", loaded.version.clone())
                        .detail("previous", self.served.clone()),
                );
                self.served = loaded.version;
                self.expires = loaded.expires;
                self.last_error = None;
                true
            }
            Err(error) => {
                self.refused(error.to_string(), Some(&latest.version));
                self.warn_if_expired(now);
                false
            }
        }
    }

    /// Logs, counts and audits a refused version, once per distinct reason.
    fn refused(&mut self, reason: String, version: Option<&str>) {
        if self.last_error.as_deref() == Some(reason.as_str()) {
            return;
        }
        tracing::error!(certificate = %self.name, vault = %self.vault.name, served = %self.served, %reason, "gateway certificate from the vault not swapped; still serving the previous version");
        metrics::counter!("rampart_gateway_certificate_reloads_total", "result" => "error")
            .increment(1);
        self.auditor.record_routine(
            Record::new("gateway", "gateway.certificate_swap", Decision::Deny)
                .actor("rampart", "system")
                .resource(self.resource())
                .detail("version", version.unwrap_or("-").to_owned())
                .detail("served", self.served.clone())
                .reason(reason.clone()),
        );
        self.last_error = Some(reason);
    }

    /// Says loudly that the served version expired.
    fn warn_if_expired(&self, now: i64) {
        if let Some(expires) = self.expires
            && expires <= now
        {
            tracing::error!(certificate = %self.name, vault = %self.vault.name, version = %self.served, "the gateway's certificate has EXPIRED and no usable newer version exists: clients will refuse it");
            metrics::counter!("rampart_gateway_certificate_expired_checks_total").increment(1);
        }
    }

    /// Checks every [`POLL_INTERVAL`] until the task is aborted or `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            if self.api.store().barrier().is_sealed() {
                continue;
            }
            self.check(unix_now()).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rampart_vault::certificates::policy::{ActionType, IssuerKind};

    async fn store() -> (tempfile::TempDir, Certificates, VaultInfo) {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(
            rampart_storage::RedbBackend::open(dir.path().join("kv.redb"))
                .await
                .unwrap(),
        );
        let barrier = Arc::new(rampart_vault::Barrier::new(backend));
        barrier
            .init(rampart_vault::InitMethod::KeyFile(dir.path().join("key")))
            .await
            .unwrap();
        let vault = rampart_vault::VaultRegistry::new(Arc::clone(&barrier))
            .ensure("default", &rampart_vault::VaultOptions::default())
            .await
            .unwrap();
        let certificates = Certificates::new(rampart_vault::VersionedStore::new(barrier));
        (dir, certificates, vault)
    }

    async fn create(certificates: &Certificates, vault: &VaultInfo, policy: Policy) -> Certificate {
        let operation = certificates
            .create(
                vault,
                "edge",
                NewCertificate {
                    policy,
                    ..NewCertificate::default()
                },
            )
            .await
            .unwrap();
        let version = operation.target_version.unwrap();
        certificates
            .get(&vault.name, "edge", Some(&version))
            .await
            .unwrap()
    }

    /// PKCS#12 and PEM secrets, exportable or not (then the key comes from the linked key):
    /// each loads as the certificate's own leaf with a matching key; a missing certificate, a
    /// disabled version and one past its expiry are refused.
    #[tokio::test]
    async fn versions_load_from_every_secret_form_and_unusable_ones_are_refused() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let (_dir, certificates, vault) = store().await;
        assert!(matches!(
            load(&certificates, "default", "edge", unix_now()).await,
            Err(Unusable::Missing { .. })
        ));
        for (content_type, exportable) in [
            ("application/x-pkcs12", true),
            (CONTENT_TYPE_PEM, true),
            ("application/x-pkcs12", false),
            (CONTENT_TYPE_PEM, false),
        ] {
            let mut policy = default_policy(&["localhost".to_owned()]);
            policy.secret_props = Some(rampart_vault::certificates::policy::SecretProperties {
                content_type: Some(content_type.to_owned()),
            });
            if let Some(key) = policy.key_props.as_mut() {
                key.exportable = Some(exportable);
            }
            let cert = create(&certificates, &vault, policy).await;
            let loaded = load(&certificates, "default", "edge", unix_now())
                .await
                .unwrap_or_else(|e| panic!("{content_type} exportable={exportable}: {e}"));
            assert_eq!(loaded.version, cert.version);
            assert_eq!(loaded.certified.cert[0].as_ref(), cert.cer.as_slice());
            loaded.certified.keys_match().unwrap();
            // Past its expiry, the same version is refused.
            let later = cert.attributes.expires.unwrap();
            let error = load(&certificates, "default", "edge", later)
                .await
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains("expired at"), "{error}");
        }
        let mut policy = default_policy(&["localhost".to_owned()]);
        policy.attributes = Some(rampart_vault::certificates::policy::PolicyAttributes {
            enabled: Some(false),
            ..Default::default()
        });
        let cert = create(&certificates, &vault, policy).await;
        let error = load(&certificates, "default", "edge", unix_now())
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(error, format!("version {} is disabled", cert.version));
    }

    /// `start` creates the missing certificate; the vault's lifetime-action scheduler renews
    /// it when its AutoRenew trigger is due (not before; nothing while the API is read-only),
    /// and the watcher swaps the new version in.
    #[tokio::test]
    async fn start_creates_the_scheduler_renews_and_the_watcher_swaps() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let (dir, certificates, _) = store().await;
        let data = DataDir::create(&dir.path().join("data")).unwrap();
        let log = rampart_audit::AuditLog::open(
            dir.path().join("audit"),
            rampart_audit::AuditOptions::default(),
        )
        .unwrap();
        let api = VaultApi::new(
            rampart_vault_api::ApiConfig::default(),
            certificates.store().clone(),
            Arc::new(crate::vault::tests::NoCallers),
            log.auditor(),
        );
        let started = start(
            &api,
            &data,
            "default",
            "edge",
            &["localhost".to_owned()],
            log.auditor(),
        )
        .await
        .unwrap();
        assert!(started.summary.created);
        let first = certificates.get("default", "edge", None).await.unwrap();
        assert_eq!(started.summary.version, first.version);
        let mut watcher = started.watcher;
        let source = Arc::clone(&watcher.source);
        assert_eq!(source.current().cert[0].as_ref(), first.cer.as_slice());

        let (not_before, expires) = (
            first.attributes.not_before.unwrap(),
            first.attributes.expires.unwrap(),
        );
        let due = not_before + (expires - not_before) * 8 / 10;
        let auditor = log.auditor();
        crate::vault::certificate_lifetime_sweep(&api, &auditor, due - 60).await;
        assert!(!watcher.check(due - 60).await);
        let latest = certificates.get("default", "edge", None).await.unwrap();
        assert_eq!(latest.version, first.version, "renewed before the trigger");

        api.set_read_only(true);
        crate::vault::certificate_lifetime_sweep(&api, &auditor, due).await;
        assert!(!watcher.check(due).await);
        let latest = certificates.get("default", "edge", None).await.unwrap();
        assert_eq!(latest.version, first.version, "renewed while read-only");
        api.set_read_only(false);

        assert!(
            !watcher.check(due).await,
            "the watcher renews nothing itself"
        );
        let latest = certificates.get("default", "edge", None).await.unwrap();
        assert_eq!(latest.version, first.version, "renewed by the watcher");
        let reports = crate::vault::certificate_lifetime_sweep(&api, &auditor, due).await;
        let renewed = certificates.get("default", "edge", None).await.unwrap();
        assert_ne!(renewed.version, first.version, "not renewed when due");
        assert_eq!(reports[0].1.renewed[0].version, renewed.version);
        assert!(
            watcher.check(due).await,
            "the renewed version was not swapped in"
        );
        assert_eq!(source.current().cert[0].as_ref(), renewed.cer.as_slice());
        let copy = std::fs::read(data.root().join("tls").join(PUBLIC_COPY)).unwrap();
        let copied = rustls_pemfile::certs(&mut copy.as_slice())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(copied.as_ref(), renewed.cer.as_slice());

        // A start whose latest version is unusable stops with the reason.
        let mut policy = renewed.policy.clone().unwrap();
        policy.attributes = Some(rampart_vault::certificates::policy::PolicyAttributes {
            enabled: Some(false),
            ..Default::default()
        });
        let vault = api.registry().get("default").await.unwrap();
        create(&certificates, &vault, policy).await;
        let error = start(&api, &data, "default", "edge", &[], log.auditor())
            .await
            .err()
            .unwrap();
        let message = format!("{error:#}");
        assert!(
            message.contains("certificate \"edge\" in vault \"default\": not served")
                && message.contains("is disabled"),
            "{message}"
        );
    }

    #[test]
    fn the_default_policy_resolves_to_a_self_signed_auto_renewed_localhost_certificate() {
        let policy = default_policy(&["localhost".to_owned()])
            .resolve(true, 0)
            .unwrap();
        assert_eq!(policy.issuer_kind().unwrap(), IssuerKind::SelfSigned);
        let actions = policy.lifetime_actions.unwrap();
        assert_eq!(actions[0].action.action_type, ActionType::AutoRenew);
        assert_eq!(actions[0].trigger.lifetime_percentage, Some(80));
    }
}
