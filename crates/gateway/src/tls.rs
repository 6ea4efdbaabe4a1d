//! TLS for the listeners: certificates loaded from PEM files and reloaded when the files
//! change, or handed in by another source (the plane's vault) and swapped in place, so a
//! renewed certificate takes effect without a restart or a dropped connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0}: no certificate found")]
    NoCertificate(PathBuf),
    /// The key file holds no private key.
    #[error("{0}: no private key found")]
    NoKey(PathBuf),
    /// The key is of an unsupported type or does not parse.
    #[error("{path}: unusable private key: {reason}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// rustls's reason.
        reason: String,
    },
}

/// TLS settings of a listener.
#[derive(Debug, Clone)]
pub struct GatewayTls {
    /// The rustls configuration (ALPN `h2`, `http/1.1`).
    pub config: Arc<rustls::ServerConfig>,
    /// Watches the certificate files, when loaded from files.
    pub reloader: Option<Arc<ReloadingCertificate>>,
}

impl GatewayTls {
    /// A listener configuration from PEM files, reloaded when they change.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let reloader = Arc::new(ReloadingCertificate::load(cert, key)?);
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&reloader) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            reloader: Some(reloader),
        })
    }

    /// A listener configuration serving whatever certificate `source` currently holds (ALPN
    /// `h2`, `http/1.1`); the owner of `source` swaps new ones in with
    /// [`ReloadingCertificate::replace`].
    pub fn from_source(source: Arc<ReloadingCertificate>) -> Self {
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&source) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self {
            config: Arc::new(config),
            reloader: Some(source),
        }
    }

    /// A fixed configuration (ALPN is the caller's to set).
    pub fn from_config(config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            config,
            reloader: None,
        }
    }
}

/// A certificate and key swapped in place: from files (checked by
/// [`ReloadingCertificate::watch`]) or from another source that calls
/// [`ReloadingCertificate::replace`]. Handshakes in progress keep the certificate they
/// started with; established connections are not touched.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: Option<(PathBuf, PathBuf)>,
    current: RwLock<Arc<CertifiedKey>>,
    loaded_stamp: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

/// A certificate chain (DER, leaf first) and PKCS#8 private key as rustls serves them.
pub fn certified_key(chain: Vec<Vec<u8>>, pkcs8: Vec<u8>) -> Result<CertifiedKey, rustls::Error> {
    if chain.is_empty() {
        return Err(rustls::Error::General("no certificate".to_owned()));
    }
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8.into());
    let signing_key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)?;
    let chain = chain.into_iter().map(Into::into).collect();
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match()?;
    Ok(certified)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert_path)?;
    let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: cert_path.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_path_buf()));
    }
    let key_pem = read(key_path)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: key_path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(key_path.to_path_buf()))?;
    let signing_key =
        rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|error| {
            TlsError::BadKey {
                path: key_path.to_path_buf(),
                reason: error.to_string(),
            }
        })?;
    Ok(CertifiedKey::new(chain, signing_key))
}

impl ReloadingCertificate {
    /// Loads the certificate chain and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let stamp = (modified(cert), modified(key));
        let certified = load_certified_key(cert, key)?;
        Ok(Self {
            files: Some((cert.to_path_buf(), key.to_path_buf())),
            current: RwLock::new(Arc::new(certified)),
            loaded_stamp: Mutex::new(stamp),
        })
    }

    /// Serves `certified` until [`ReloadingCertificate::replace`] swaps another one in (no
    /// files to watch).
    pub fn new(certified: CertifiedKey) -> Self {
        Self {
            files: None,
            current: RwLock::new(Arc::new(certified)),
            loaded_stamp: Mutex::new((None, None)),
        }
    }

    /// Serves `certified` from the next handshake on.
    pub fn replace(&self, certified: CertifiedKey) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
    }

    /// Reloads if either file changed since the last load; a failed reload keeps serving the
    /// previous certificate. Returns whether a new certificate is now in use.
    pub fn reload_if_changed(&self) -> bool {
        let Some((cert_path, key_path)) = &self.files else {
            return false;
        };
        let stamp = (modified(cert_path), modified(key_path));
        let mut loaded = self
            .loaded_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *loaded == stamp {
            return false;
        }
        *loaded = stamp;
        match load_certified_key(cert_path, key_path) {
            Ok(certified) => {
                self.replace(certified);
                tracing::info!(cert = %cert_path.display(), "certificate reloaded");
                metrics::counter!("rampart_gateway_certificate_reloads_total", "result" => "ok")
                    .increment(1);
                true
            }
            Err(error) => {
                tracing::error!(%error, "certificate reload failed; still serving the previous one");
                metrics::counter!("rampart_gateway_certificate_reloads_total", "result" => "error")
                    .increment(1);
                false
            }
        }
    }

    /// Checks the files every `interval` until the task is aborted (returns at once when
    /// the certificate does not come from files: its source swaps it in).
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        if self.files.is_none() {
            return;
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.reload_if_changed();
        }
    }

    /// The certificate currently served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn a_changed_certificate_is_picked_up_and_a_broken_one_is_not() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let temp = tempfile::tempdir().unwrap();
        let (cert, key) = write_certificate(temp.path(), "first.test");
        let reloading = ReloadingCertificate::load(&cert, &key).unwrap();
        let first = reloading.current().cert[0].clone();
        assert!(!reloading.reload_if_changed(), "reloaded unchanged files");

        std::thread::sleep(Duration::from_millis(20));
        write_certificate(temp.path(), "second.test");
        assert!(reloading.reload_if_changed());
        let second = reloading.current().cert[0].clone();
        assert_ne!(first, second);

        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&cert, "garbage").unwrap();
        assert!(!reloading.reload_if_changed());
        assert_eq!(
            reloading.current().cert[0],
            second,
            "a broken file replaced the certificate"
        );
    }

    #[test]
    fn a_replaced_certificate_is_served_from_the_next_handshake() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let make = |name: &str| {
            let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
            (
                generated.cert.der().to_vec(),
                generated.key_pair.serialize_der(),
            )
        };
        let (first_cert, first_key) = make("first.test");
        let (second_cert, second_key) = make("second.test");
        // A key that is not the certificate's is refused.
        assert!(certified_key(vec![first_cert.clone()], second_key.clone()).is_err());
        assert!(certified_key(vec![], first_key.clone()).is_err());
        let source = Arc::new(ReloadingCertificate::new(
            certified_key(vec![first_cert.clone()], first_key).unwrap(),
        ));
        let tls = GatewayTls::from_source(Arc::clone(&source));
        assert_eq!(tls.config.alpn_protocols[0], b"h2");
        assert!(!source.reload_if_changed(), "no files to reload");
        assert_eq!(source.current().cert[0].as_ref(), first_cert.as_slice());
        source.replace(certified_key(vec![second_cert.clone()], second_key).unwrap());
        assert_eq!(source.current().cert[0].as_ref(), second_cert.as_slice());
    }

    #[test]
    fn load_errors_name_the_file() {
        let temp = tempfile::tempdir().unwrap();
        let missing = temp.path().join("missing.pem");
        let error = ReloadingCertificate::load(&missing, &missing).unwrap_err();
        assert!(error.to_string().contains("missing.pem"), "{error}");
        std::fs::write(&missing, "not pem").unwrap();
        let error = ReloadingCertificate::load(&missing, &missing).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{}: no certificate found", missing.display())
        );
    }
}
