//! X.509 and key plumbing for certificates: key pair generation and import (PKCS#8, PKCS#1,
//! SEC1) normalised to PKCS#8, self-signed certificates and CSRs built with `rcgen`,
//! certificate parsing with `x509-parser`, and the PEM / PKCS#12 containers (`p12-keystore`)
//! a certificate's secret is exported in and imported from.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING,
    EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose,
    OtherNameValue, SanType, SerialNumber,
};
use rustls_pemfile::Item;
use time::{Date, Month, OffsetDateTime};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
use zeroize::Zeroizing;

use super::policy::{SubjectAlternativeNames, X509Properties};
use crate::crypto::fill_random;
use crate::error::{Result, VaultError};

/// OID of the Microsoft UPN other-name SAN.
const UPN_OID: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3];
/// OID of the PKCS#9 e-mail address DN attribute.
const EMAIL_OID: [u64; 7] = [1, 2, 840, 113_549, 1, 9, 1];

fn invalid(reason: impl Into<String>) -> VaultError {
    VaultError::InvalidCertificate {
        reason: reason.into(),
    }
}

/// The curve of an EC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
}

impl Curve {
    /// The JWK name (`P-256`, ...).
    pub fn jwk_name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// The key size in bits as Azure reports it for EC keys.
    pub fn bits(self) -> u32 {
        match self {
            Self::P256 => 256,
            Self::P384 => 384,
            Self::P521 => 521,
        }
    }

    fn signing(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            Self::P256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
            Self::P384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
            Self::P521 => &ECDSA_P521_SHA512_ASN1_SIGNING,
        }
    }

    fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::P521 => &rcgen::PKCS_ECDSA_P521_SHA512,
        }
    }

    /// Parses a JWK curve name.
    pub fn from_jwk_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }
}

/// What a key pair is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with the modulus size in bits.
    Rsa(u32),
    /// EC on a curve.
    Ec(Curve),
}

/// A certificate's private key, held as PKCS#8 DER in a zeroized buffer.
pub struct CertKey {
    kind: KeyKind,
    pkcs8: Zeroizing<Vec<u8>>,
    public_raw: Vec<u8>,
}

impl fmt::Debug for CertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertKey")
            .field("kind", &self.kind)
            .field("pkcs8", &"<redacted>")
            .finish()
    }
}

impl CertKey {
    /// Generates a key pair of `kind` (RSA 2048/3072/4096 or an EC curve).
    pub fn generate(kind: KeyKind) -> Result<Self> {
        match kind {
            KeyKind::Rsa(bits) => {
                let size = match bits {
                    2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
                    3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                    4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
                    _ => return Err(invalid(format!("unsupported RSA key size {bits}"))),
                };
                let pair = RsaKeyPair::generate(size)
                    .map_err(|_| VaultError::Crypto("rsa key generation"))?;
                let der = pair
                    .as_der()
                    .map_err(|_| VaultError::Crypto("rsa key encoding"))?;
                Self::from_private_der(der.as_ref())
            }
            KeyKind::Ec(curve) => {
                let pair = EcdsaKeyPair::generate(curve.signing())
                    .map_err(|_| VaultError::Crypto("ec key generation"))?;
                let der = pair
                    .to_pkcs8v1()
                    .map_err(|_| VaultError::Crypto("ec key encoding"))?;
                Self::from_private_der(der.as_ref())
            }
        }
    }

    /// Reads a private key in PKCS#8, PKCS#1 (RSA) or SEC1 (EC) DER.
    pub fn from_private_der(der: &[u8]) -> Result<Self> {
        let rsa = RsaKeyPair::from_pkcs8(der).or_else(|_| RsaKeyPair::from_der(der));
        if let Ok(pair) = rsa {
            let pkcs8 = pair
                .as_der()
                .map_err(|_| VaultError::Crypto("rsa key encoding"))?;
            let bits = u32::try_from(pair.public_modulus_len() * 8).unwrap_or(0);
            return Ok(Self {
                kind: KeyKind::Rsa(bits),
                pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
                public_raw: pair.public_key().as_ref().to_vec(),
            });
        }
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let pair = EcdsaKeyPair::from_pkcs8(curve.signing(), der)
                .or_else(|_| EcdsaKeyPair::from_private_key_der(curve.signing(), der));
            if let Ok(pair) = pair {
                let pkcs8 = pair
                    .to_pkcs8v1()
                    .map_err(|_| VaultError::Crypto("ec key encoding"))?;
                return Ok(Self {
                    kind: KeyKind::Ec(curve),
                    pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
                    public_raw: pair.public_key().as_ref().to_vec(),
                });
            }
        }
        Err(invalid(
            "the private key is not an RSA or EC (P-256, P-384, P-521) key in PKCS#8, PKCS#1 or SEC1",
        ))
    }

    /// What the key is.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The private key as PKCS#8 DER.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The raw public key (RSA: PKCS#1 `RSAPublicKey`; EC: the uncompressed point), as found
    /// in a certificate's subjectPublicKeyInfo bit string.
    pub fn public_raw(&self) -> &[u8] {
        &self.public_raw
    }

    fn rcgen(&self) -> Result<rcgen::KeyPair> {
        let alg = match self.kind {
            KeyKind::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            KeyKind::Ec(curve) => curve.rcgen(),
        };
        let der = rustls_pki_der(&self.pkcs8);
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, alg)
            .map_err(|_| VaultError::Crypto("key pair for signing"))
    }
}

fn rustls_pki_der(pkcs8: &[u8]) -> rustls_pki_types::PrivatePkcs8KeyDer<'_> {
    rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8)
}

fn parse_subject(subject: &str) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    let mut any = false;
    for part in subject.split([',', ';']) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (attr, value) = part
            .split_once('=')
            .ok_or_else(|| invalid(format!("subject part {part:?} is not NAME=value")))?;
        let value = value.trim().trim_matches('"');
        let ty = match attr.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "L" => DnType::LocalityName,
            "ST" | "S" => DnType::StateOrProvinceName,
            "C" => DnType::CountryName,
            "E" | "EMAIL" | "EMAILADDRESS" => DnType::CustomDnType(EMAIL_OID.to_vec()),
            other => {
                return Err(invalid(format!(
                    "subject attribute {other:?} is not supported (CN, O, OU, L, ST, C, E)"
                )));
            }
        };
        dn.push(ty, value);
        any = true;
    }
    if !any {
        return Err(invalid("the subject is empty"));
    }
    Ok(dn)
}

fn ia5(value: &str, what: &str) -> Result<rcgen::Ia5String> {
    rcgen::Ia5String::try_from(value.to_owned())
        .map_err(|_| invalid(format!("{what} {value:?} is not ASCII")))
}

fn key_usage(name: &str) -> Result<KeyUsagePurpose> {
    Ok(match name {
        "digitalSignature" => KeyUsagePurpose::DigitalSignature,
        "nonRepudiation" => KeyUsagePurpose::ContentCommitment,
        "keyEncipherment" => KeyUsagePurpose::KeyEncipherment,
        "dataEncipherment" => KeyUsagePurpose::DataEncipherment,
        "keyAgreement" => KeyUsagePurpose::KeyAgreement,
        "keyCertSign" => KeyUsagePurpose::KeyCertSign,
        "cRLSign" => KeyUsagePurpose::CrlSign,
        "encipherOnly" => KeyUsagePurpose::EncipherOnly,
        "decipherOnly" => KeyUsagePurpose::DecipherOnly,
        other => return Err(invalid(format!("unknown key usage {other:?}"))),
    })
}

fn parse_oid(text: &str) -> Result<Vec<u64>> {
    let arcs: std::result::Result<Vec<u64>, _> = text.split('.').map(str::parse).collect();
    match arcs {
        Ok(arcs) if arcs.len() >= 2 => Ok(arcs),
        _ => Err(invalid(format!("{text:?} is not an OID"))),
    }
}

/// Adds `months` calendar months to `at` (the day clamped to the target month's length).
pub fn add_months(at: OffsetDateTime, months: u32) -> Result<OffsetDateTime> {
    let total = i64::from(at.month() as u8) - 1 + i64::from(months);
    let year = i64::from(at.year()) + total / 12;
    let year = i32::try_from(year).map_err(|_| invalid("validity too long"))?;
    let month = Month::try_from(u8::try_from(total % 12 + 1).unwrap_or(1))
        .map_err(|_| invalid("validity month"))?;
    let last_day = time::util::days_in_month(month, year);
    let date = Date::from_calendar_date(year, month, at.day().min(last_day))
        .map_err(|_| invalid("validity too long"))?;
    Ok(at.replace_date(date))
}

/// The certificate parameters a policy's X.509 properties ask for, valid from now for
/// `validity_months`.
pub fn params(x509: &X509Properties, validity_months: u32) -> Result<CertificateParams> {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::now_utc());
    params_from(x509, validity_months, now)
}

/// [`params`] for a certificate valid from `not_before` (Unix seconds) instead of now: the
/// lifetime-action scheduler issues renewals from its clock, which tests move.
pub fn params_at(
    x509: &X509Properties,
    validity_months: u32,
    not_before: i64,
) -> Result<CertificateParams> {
    let start = OffsetDateTime::from_unix_timestamp(not_before).map_err(|e| {
        VaultError::InvalidCertificate {
            reason: format!("validity start {not_before}: {e}"),
        }
    })?;
    params_from(x509, validity_months, start)
}

fn params_from(
    x509: &X509Properties,
    validity_months: u32,
    now: OffsetDateTime,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = parse_subject(x509.subject.as_deref().unwrap_or_default())?;
    params.not_before = now;
    params.not_after = add_months(now, validity_months)?;
    let mut serial = [0u8; 16];
    fill_random(&mut serial)?;
    if let Some(first) = serial.first_mut() {
        *first &= 0x7f; // positive
    }
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    if let Some(sans) = &x509.sans {
        for dns in sans.dns_names.iter().flatten() {
            params
                .subject_alt_names
                .push(SanType::DnsName(ia5(dns, "DNS name")?));
        }
        for email in sans.emails.iter().flatten() {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(ia5(email, "e-mail")?));
        }
        for upn in sans.upns.iter().flatten() {
            params.subject_alt_names.push(SanType::OtherName((
                UPN_OID.to_vec(),
                OtherNameValue::Utf8String(upn.clone()),
            )));
        }
    }
    for usage in x509.key_usage.iter().flatten() {
        params.key_usages.push(key_usage(usage)?);
    }
    for eku in x509.ekus.iter().flatten() {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::Other(parse_oid(eku)?));
    }
    Ok(params)
}

/// A self-signed certificate (DER) for `key` with `params`.
pub fn self_signed(params: CertificateParams, key: &CertKey) -> Result<Vec<u8>> {
    let pair = key.rcgen()?;
    let cert = params
        .self_signed(&pair)
        .map_err(|e| invalid(format!("cannot build the certificate: {e}")))?;
    Ok(cert.der().to_vec())
}

/// A certificate signing request (DER) for `key` with the subject and extensions of `params`.
pub fn csr(mut params: CertificateParams, key: &CertKey) -> Result<Vec<u8>> {
    params.serial_number = None; // the CA chooses it
    let pair = key.rcgen()?;
    let req = params
        .serialize_request(&pair)
        .map_err(|e| invalid(format!("cannot build the certificate request: {e}")))?;
    Ok(req.der().to_vec())
}

/// What the vault needs to know of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject as `CN=..., O=...`.
    pub subject: String,
    /// Not before (Unix seconds).
    pub not_before: i64,
    /// Not after (Unix seconds).
    pub not_after: i64,
    /// The raw public key (see [`CertKey::public_raw`]).
    pub public_raw: Vec<u8>,
    /// SHA-1 thumbprint, base64url without padding (`x5t`).
    pub x5t: String,
    /// The subject alternative names.
    pub sans: SubjectAlternativeNames,
    /// Key usage names (Azure spelling).
    pub key_usage: Vec<String>,
    /// Extended key usage OIDs.
    pub ekus: Vec<String>,
}

impl CertInfo {
    /// Validity in whole months, rounded to the nearest (for an imported certificate's policy).
    pub fn validity_months(&self) -> u32 {
        let days = (self.not_after - self.not_before).max(0) / 86_400;
        u32::try_from((days * 12 + 182) / 365)
            .unwrap_or(u32::MAX)
            .max(1)
    }
}

/// Parses a DER certificate.
pub fn parse_cert(der: &[u8]) -> Result<CertInfo> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| invalid(format!("not an X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid("trailing bytes after the certificate"));
    }
    let mut sans = SubjectAlternativeNames::default();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.dns_names.get_or_insert_default().push((*d).into()),
                GeneralName::RFC822Name(e) => sans.emails.get_or_insert_default().push((*e).into()),
                GeneralName::OtherName(oid, value)
                    if oid.to_id_string() == "1.3.6.1.4.1.311.20.2.3" =>
                {
                    if let Some(upn) = other_name_utf8(value) {
                        sans.upns.get_or_insert_default().push(upn);
                    }
                }
                _ => {}
            }
        }
    }
    let mut key_usage = Vec::new();
    if let Ok(Some(ku)) = cert.key_usage() {
        let ku = ku.value;
        for (set, name) in [
            (ku.digital_signature(), "digitalSignature"),
            (ku.non_repudiation(), "nonRepudiation"),
            (ku.key_encipherment(), "keyEncipherment"),
            (ku.data_encipherment(), "dataEncipherment"),
            (ku.key_agreement(), "keyAgreement"),
            (ku.key_cert_sign(), "keyCertSign"),
            (ku.crl_sign(), "cRLSign"),
            (ku.encipher_only(), "encipherOnly"),
            (ku.decipher_only(), "decipherOnly"),
        ] {
            if set {
                key_usage.push(name.to_owned());
            }
        }
    }
    let mut ekus = Vec::new();
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let eku = eku.value;
        for (set, oid) in [
            (eku.server_auth, "1.3.6.1.5.5.7.3.1"),
            (eku.client_auth, "1.3.6.1.5.5.7.3.2"),
            (eku.code_signing, "1.3.6.1.5.5.7.3.3"),
            (eku.email_protection, "1.3.6.1.5.5.7.3.4"),
            (eku.time_stamping, "1.3.6.1.5.5.7.3.8"),
            (eku.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
            (eku.any, "2.5.29.37.0"),
        ] {
            if set {
                ekus.push(oid.to_owned());
            }
        }
        ekus.extend(eku.other.iter().map(|o| o.to_id_string()));
    }
    let thumb = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        public_raw: cert.public_key().subject_public_key.data.to_vec(),
        x5t: URL_SAFE_NO_PAD.encode(thumb.as_ref()),
        sans,
        key_usage,
        ekus,
    })
}

/// The UTF8String inside an other-name value (`[0] EXPLICIT UTF8String`).
fn other_name_utf8(value: &[u8]) -> Option<String> {
    // value is the content of the [0] EXPLICIT tag: a UTF8String TLV (short or long length).
    let (&tag, rest) = value.split_first()?;
    let rest = if tag == 0xa0 {
        let (_, inner) = split_len(rest)?;
        let (&t, inner) = inner.split_first()?;
        if t != 0x0c {
            return None;
        }
        inner
    } else if tag == 0x0c {
        rest
    } else {
        return None;
    };
    let (len, body) = split_len(rest)?;
    std::str::from_utf8(body.get(..len)?)
        .ok()
        .map(str::to_owned)
}

fn split_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    if first < 0x80 {
        return Some((usize::from(first), rest));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let (len_bytes, rest) = rest.split_at_checked(n)?;
    let len = len_bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Some((len, rest))
}

/// What an imported certificate file holds.
pub struct Bundle {
    /// The private key.
    pub key: Option<CertKey>,
    /// Certificates (DER) in file order.
    pub certs: Vec<Vec<u8>>,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("key", &self.key)
            .field("certs", &self.certs.len())
            .finish()
    }
}

/// Reads PEM text: one private key (PKCS#8, PKCS#1 or SEC1) and certificates.
pub fn read_pem(text: &str) -> Result<Bundle> {
    let mut reader = text.as_bytes();
    let mut key = None;
    let mut certs = Vec::new();
    for item in rustls_pemfile::read_all(&mut reader) {
        let item = item.map_err(|_| invalid("the PEM text does not parse"))?;
        let der: Option<Zeroizing<Vec<u8>>> = match item {
            Item::X509Certificate(c) => {
                certs.push(c.to_vec());
                None
            }
            Item::Pkcs8Key(k) => Some(Zeroizing::new(k.secret_pkcs8_der().to_vec())),
            Item::Pkcs1Key(k) => Some(Zeroizing::new(k.secret_pkcs1_der().to_vec())),
            Item::Sec1Key(k) => Some(Zeroizing::new(k.secret_sec1_der().to_vec())),
            _ => None,
        };
        if let Some(der) = der {
            if key.is_some() {
                return Err(invalid("the PEM text holds more than one private key"));
            }
            key = Some(CertKey::from_private_der(&der)?);
        }
    }
    Ok(Bundle { key, certs })
}

/// Reads a PKCS#12 (PFX) file protected by `password` (empty when none).
pub fn read_pfx(der: &[u8], password: &str) -> Result<Bundle> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(der, password).map_err(|e| {
        invalid(format!(
            "the PKCS#12 data does not open (wrong password or damaged): {}",
            pfx_error(&e)
        ))
    })?;
    let mut keys = archive.keys.iter();
    let key = match (keys.next(), keys.next()) {
        (Some(bag), None) => Some(CertKey::from_private_der(bag.key.as_der())?),
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(invalid("the PKCS#12 data holds more than one private key"));
        }
    };
    let certs = archive
        .certs
        .iter()
        .map(|bag| bag.cert.as_der().to_vec())
        .collect();
    Ok(Bundle { key, certs })
}

fn pfx_error(e: &p12_keystore::error::Error) -> String {
    // The crate's messages carry no key material; keep them short.
    e.to_string().chars().take(120).collect()
}

/// Orders `certs` leaf first: the certificate whose public key is `key`'s, then the rest in
/// their order. Refused when no certificate matches the key.
pub fn leaf_first(key: &CertKey, certs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
    let mut leaf = None;
    let mut rest = Vec::with_capacity(certs.len());
    for der in certs {
        if leaf.is_none() && parse_cert(&der)?.public_raw == key.public_raw() {
            leaf = Some(der);
        } else {
            rest.push(der);
        }
    }
    let leaf = leaf.ok_or_else(|| invalid("no certificate matches the private key"))?;
    let mut out = Vec::with_capacity(rest.len() + 1);
    out.push(leaf);
    out.extend(rest);
    Ok(out)
}

/// A PKCS#12 file (empty password, AES-256 PBES2 and HMAC-SHA256, as OpenSSL 3 writes) with
/// the key (when given) and the chain, leaf first.
pub fn write_pfx(key: Option<&CertKey>, chain: &[Vec<u8>]) -> Result<Zeroizing<Vec<u8>>> {
    let mut store = p12_keystore::KeyStore::new();
    let mut certs = Vec::with_capacity(chain.len());
    for der in chain {
        certs.push(
            p12_keystore::Certificate::from_der(der)
                .map_err(|e| invalid(format!("certificate: {}", pfx_error(&e))))?,
        );
    }
    match key {
        Some(key) => {
            let private = p12_keystore::PrivateKey::from_der(key.pkcs8())
                .map_err(|e| invalid(format!("private key: {}", pfx_error(&e))))?;
            let id = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, key.public_raw());
            let entry = p12_keystore::PrivateKeyChain::new(id.as_ref().to_vec(), private, certs);
            store.add_entry("1", p12_keystore::KeyStoreEntry::PrivateKeyChain(entry));
        }
        None => {
            for (i, cert) in certs.into_iter().enumerate() {
                store.add_entry(
                    &i.to_string(),
                    p12_keystore::KeyStoreEntry::Certificate(cert),
                );
            }
        }
    }
    let pfx = store
        .writer("")
        .write()
        .map_err(|e| invalid(format!("cannot write PKCS#12: {}", pfx_error(&e))))?;
    Ok(Zeroizing::new(pfx))
}

fn pem_block(label: &str, der: &[u8], out: &mut String) {
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let b64 = STANDARD.encode(der);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// PEM text: the private key (PKCS#8, when given) then the chain, leaf first.
pub fn write_pem(key: Option<&CertKey>, chain: &[Vec<u8>]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    if let Some(key) = key {
        pem_block("PRIVATE KEY", key.pkcs8(), &mut out);
    }
    for der in chain {
        pem_block("CERTIFICATE", der, &mut out);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn months_are_calendar_months() {
        let at = OffsetDateTime::from_unix_timestamp(1_706_659_200).unwrap(); // 2024-01-31
        let later = add_months(at, 1).unwrap();
        assert_eq!(
            (later.year(), later.month(), later.day()),
            (2024, Month::February, 29)
        );
        let later = add_months(at, 25).unwrap();
        assert_eq!(
            (later.year(), later.month(), later.day()),
            (2026, Month::February, 28)
        );
        let later = add_months(at, 12).unwrap();
        assert_eq!(
            (later.year(), later.month(), later.day()),
            (2025, Month::January, 31)
        );
    }

    #[test]
    fn subjects_parse_and_bad_ones_are_refused() {
        assert!(parse_subject("CN=a.example, O=Contoso, C=US").is_ok());
        for bad in ["", "CN", "XX=1", " , "] {
            assert!(parse_subject(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_keys_and_certificates_are_typed_errors() {
        assert!(matches!(
            CertKey::from_private_der(b"not a key"),
            Err(VaultError::InvalidCertificate { .. })
        ));
        assert!(matches!(
            parse_cert(&[0x30, 0x03, 1, 2, 3]),
            Err(VaultError::InvalidCertificate { .. })
        ));
        assert!(read_pfx(b"garbage", "").is_err());
        let debug = format!("{:?}", CertKey::generate(KeyKind::Ec(Curve::P256)).unwrap());
        assert!(debug.contains("redacted"), "{debug}");
    }

    #[test]
    fn upn_other_name_decodes() {
        // [0] { UTF8String "a@b" }
        assert_eq!(
            other_name_utf8(&[0xa0, 5, 0x0c, 3, b'a', b'@', b'b']).as_deref(),
            Some("a@b")
        );
        assert_eq!(other_name_utf8(&[0xa0, 5, 0x04, 3, b'a', b'@', b'b']), None);
        assert_eq!(other_name_utf8(&[0xa0]), None);
    }
}
