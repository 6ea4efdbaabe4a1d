//! The PKCS#11 seal: an AES-256 key that lives on an HSM token (generated there, sensitive and
//! non-extractable) encrypts and decrypts the keyring key with `CKM_AES_GCM`, so the keyring
//! key exists in plaintext only in this process's memory and the HSM key never leaves the token.
//!
//! The sealed form: `iv (12) || ciphertext || tag (16)`. The IV is drawn from our CSPRNG
//! (SoftHSM2 takes the caller's IV). Every call opens the module, logs in, works and finalizes
//! again; calls are serialized process-wide because `C_Initialize` is per process.
//!
//! The PIN comes from an environment variable or a file ([`PinSource`]); it is held in
//! [`Zeroizing`] memory and never printed.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::crypto::{GCM_NONCE_LEN, fill_random};
use crate::error::{Result, VaultError};

/// Where SoftHSM2's module usually is on Debian and Ubuntu.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Serializes module initialization: `C_Initialize`/`C_Finalize` are process-wide.
static MODULE_LOCK: Mutex<()> = Mutex::new(());

/// Where the token's user PIN comes from.
#[derive(Clone)]
#[non_exhaustive]
pub enum PinSource {
    /// An environment variable holding the PIN.
    Env(String),
    /// A file holding the PIN (trailing newline ignored).
    File(PathBuf),
    /// The PIN itself (tests, or a caller that already read it from somewhere safe).
    Value(Zeroizing<String>),
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => f.debug_tuple("Env").field(name).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

impl PinSource {
    fn read(&self) -> Result<Zeroizing<String>> {
        let pin = match self {
            Self::Env(name) => {
                Zeroizing::new(std::env::var(name).map_err(|_| VaultError::Pin {
                    reason: format!("environment variable {name} is not set"),
                })?)
            }
            Self::File(path) => {
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| VaultError::Pin {
                    reason: format!("cannot read {}: {}", path.display(), e.kind()),
                })?)
            }
            Self::Value(pin) => pin.clone(),
        };
        let trimmed = Zeroizing::new(pin.trim_end_matches(['\r', '\n']).to_owned());
        if trimmed.is_empty() {
            return Err(VaultError::Pin {
                reason: "empty pin".into(),
            });
        }
        Ok(trimmed)
    }
}

/// How to reach the HSM key.
#[derive(Debug, Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The label of the token holding the key.
    pub token_label: String,
    /// The user PIN.
    pub pin: PinSource,
    /// The label of the AES key on the token.
    pub key_label: String,
}

impl Pkcs11Config {
    /// A configuration for SoftHSM2's default module path.
    pub fn softhsm(token_label: &str, pin: PinSource, key_label: &str) -> Self {
        Self {
            module: PathBuf::from(DEFAULT_MODULE),
            token_label: token_label.to_owned(),
            pin,
            key_label: key_label.to_owned(),
        }
    }
}

fn ck(context: &str) -> impl FnOnce(CkError) -> VaultError + '_ {
    move |source| VaultError::Pkcs11 {
        context: context.to_owned(),
        source: Some(source),
    }
}

/// Opens the module, logs in to the token and finds (or, with `create`, generates) the key;
/// runs `f` with the session and key handle.
fn with_key<R>(
    config: &Pkcs11Config,
    create: bool,
    f: impl FnOnce(&Session, ObjectHandle) -> Result<R>,
) -> Result<R> {
    let _guard = MODULE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let pin = config.pin.read()?;
    let module = Pkcs11::new(&config.module).map_err(|e| VaultError::Pkcs11 {
        context: format!("cannot load module {}", config.module.display()),
        source: Some(e),
    })?;
    module
        .initialize(CInitializeArgs::OsThreads)
        .map_err(ck("initialize"))?;
    let mut slot = None;
    for candidate in module.get_slots_with_token().map_err(ck("list slots"))? {
        let info = module.get_token_info(candidate).map_err(ck("token info"))?;
        if info.label().trim_end() == config.token_label {
            slot = Some(candidate);
            break;
        }
    }
    let slot = slot.ok_or_else(|| VaultError::Pkcs11 {
        context: format!("no token labelled {:?}", config.token_label),
        source: None,
    })?;
    let session = module.open_rw_session(slot).map_err(ck("open session"))?;
    let auth = AuthPin::new(pin.as_str().to_owned());
    match session.login(UserType::User, Some(&auth)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(ck("login")(e)),
    }
    let label = config.key_label.as_bytes().to_vec();
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(label.clone()),
        ])
        .map_err(ck("find key"))?;
    let key = match found.as_slice() {
        [key] => *key,
        [] if create => session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Label(label),
                ],
            )
            .map_err(ck("generate key"))?,
        [] => {
            return Err(VaultError::Pkcs11 {
                context: format!("no aes key labelled {:?} on the token", config.key_label),
                source: None,
            });
        }
        _ => {
            return Err(VaultError::Pkcs11 {
                context: format!("several aes keys labelled {:?}", config.key_label),
                source: None,
            });
        }
    };
    let result = f(&session, key);
    let _ = session.logout();
    drop(session);
    module.finalize();
    result
}

/// Encrypts `plaintext` under the HSM key (generated on the token when absent and `create`).
pub(crate) fn hsm_seal(
    config: &Pkcs11Config,
    plaintext: &[u8],
    aad: &[u8],
    create: bool,
) -> Result<Vec<u8>> {
    with_key(config, create, |session, key| {
        let mut iv = [0u8; GCM_NONCE_LEN];
        fill_random(&mut iv)?;
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, aad, 128.into()).map_err(ck("gcm params"))?;
        let ct = session
            .encrypt(&Mechanism::AesGcm(params), key, plaintext)
            .map_err(ck("encrypt"))?;
        let mut out = Vec::with_capacity(GCM_NONCE_LEN + ct.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        Ok(out)
    })
}

/// Decrypts [`hsm_seal`]'s output; `None` when it does not authenticate under the HSM key.
pub(crate) fn hsm_open(
    config: &Pkcs11Config,
    sealed: &[u8],
    aad: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    with_key(config, false, |session, key| {
        let Some((iv, ct)) = sealed.split_at_checked(GCM_NONCE_LEN) else {
            return Ok(None);
        };
        let mut iv = iv.to_vec();
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(ck("gcm params"))?;
        match session.decrypt(&Mechanism::AesGcm(params), key, ct) {
            Ok(plain) => Ok(Some(Zeroizing::new(plain))),
            // A GCM tag mismatch: the standard says CKR_ENCRYPTED_DATA_INVALID; SoftHSM2
            // 2.6 answers CKR_GENERAL_ERROR (its OpenSSL decrypt-final fails). Login and key
            // lookup already succeeded here, so either means "not sealed under this key".
            Err(CkError::Pkcs11(
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange
                | RvError::GeneralError,
                _,
            )) => Ok(None),
            Err(e) => Err(ck("decrypt")(e)),
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn pin_values_are_redacted_and_read() -> Result<()> {
        let pin = PinSource::Value(Zeroizing::new("4321\n".into()));
        assert_eq!(format!("{pin:?}"), "Value(<redacted>)");
        assert_eq!(pin.read()?.as_str(), "4321");
        let config = Pkcs11Config::softhsm("rampart", pin, "root");
        assert!(!format!("{config:?}").contains("4321"));
        assert!(matches!(
            PinSource::Env("RAMPART_VAULT_TEST_SURELY_UNSET".into()).read(),
            Err(VaultError::Pin { .. })
        ));
        assert!(matches!(
            PinSource::Value(Zeroizing::new(String::new())).read(),
            Err(VaultError::Pin { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_missing_module_is_a_clear_error() {
        let config = Pkcs11Config {
            module: "/nonexistent/libnothing.so".into(),
            token_label: "t".into(),
            pin: PinSource::Value(Zeroizing::new("1".into())),
            key_label: "k".into(),
        };
        let err = hsm_seal(&config, b"x", b"", true).unwrap_err();
        assert!(err.to_string().contains("cannot load module"), "{err}");
    }
}
