//! The development CA and `localhost` certificate that `rampart up` generates in the data
//! directory on first start (loading and reloading certificates is the gateway's job).

use std::path::PathBuf;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::datadir::{DataDir, write_secret_file};

/// The certificate and key files a listener uses.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The development certificate authority and server certificate under `<data>/tls`.
#[derive(Debug, Clone)]
pub struct DevCertificates {
    /// The CA certificate clients should trust (`curl --cacert`).
    pub ca_cert: PathBuf,
    /// The server certificate and key.
    pub server: CertificateFiles,
    /// Whether they were generated just now.
    pub generated: bool,
}

/// Returns the development certificates, generating them on first use.
///
/// The CA's private key is not kept: nothing else can be signed with it later.
pub fn ensure_dev_certificates(data: &DataDir) -> anyhow::Result<DevCertificates> {
    let dir = data.subdir("tls")?;
    let certificates = DevCertificates {
        ca_cert: dir.join("ca.pem"),
        server: CertificateFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        },
        generated: false,
    };
    if certificates.ca_cert.exists()
        && certificates.server.cert.exists()
        && certificates.server.key.exists()
    {
        return Ok(certificates);
    }
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Rampart development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;

    let mut server_params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        // The vault selects vaults by host: https://{vault}.vault.localhost:8446.
        "*.vault.localhost".to_owned(),
    ])?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server = server_params.signed_by(&server_key, &ca, &ca_key)?;

    std::fs::write(&certificates.ca_cert, ca.pem())
        .with_context(|| format!("cannot write {}", certificates.ca_cert.display()))?;
    std::fs::write(&certificates.server.cert, server.pem())
        .with_context(|| format!("cannot write {}", certificates.server.cert.display()))?;
    write_secret_file(
        &certificates.server.key,
        server_key.serialize_pem().as_bytes(),
    )?;
    Ok(DevCertificates {
        generated: true,
        ..certificates
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certificates_are_generated_once_and_load() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let temp = tempfile::tempdir().unwrap();
        let data = DataDir::create(temp.path()).unwrap();
        let first = ensure_dev_certificates(&data).unwrap();
        assert!(first.generated);
        let again = ensure_dev_certificates(&data).unwrap();
        assert!(!again.generated);
        assert_eq!(
            std::fs::read(&first.server.cert).unwrap(),
            std::fs::read(&again.server.cert).unwrap()
        );
        let tls =
            rampart_gateway::GatewayTls::from_files(&again.server.cert, &again.server.key).unwrap();
        assert_eq!(tls.config.alpn_protocols[0], b"h2");
    }
}
