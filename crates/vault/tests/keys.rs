//! The keys service against real storage: every case runs on redb (a fresh file) and on
//! PostgreSQL (`$RAMPART_TEST_POSTGRES_URL`, a fresh table dropped afterwards; these fail when
//! the server is unreachable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, AsDer, EcPrivateKeyBin, Pkcs8V1Der};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use rampart_vault::keys::{
    B64, Curve, EncryptionAlgorithm, ImportKey, IsoDuration, JsonWebKey, KeyAttributesIn,
    KeyOperation, KeyType, KeyUpdate, Keys, LifetimeAction, NewKey, RotationAction, RotationPolicy,
    SignatureAlgorithm, Trigger, verify_with_public_jwk,
};
use rampart_vault::{ObjectKind, VaultError, VaultOptions, VaultRegistry, VersionedStore};

const VAULT: &str = "stamp-1";
const DAY: i64 = 86_400;

async fn keys(ctx: &common::Ctx) -> Keys {
    Keys::new(VersionedStore::new(ctx.init_key_file().await))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn ec(curve: Curve) -> NewKey {
    NewKey {
        curve: Some(curve),
        ..NewKey::new(KeyType::Ec)
    }
}

fn rsa(bits: usize) -> NewKey {
    NewKey {
        key_size: Some(bits),
        ..NewKey::new(KeyType::Rsa)
    }
}

fn random_digest(alg: SignatureAlgorithm) -> Vec<u8> {
    let mut seed = [0u8; 16];
    aws_lc_rs::rand::fill(&mut seed).unwrap();
    digest::digest(alg.digest(), &seed).as_ref().to_vec()
}

fn rsa_algs() -> Vec<SignatureAlgorithm> {
    SignatureAlgorithm::ALL
        .into_iter()
        .filter(|a| a.is_rsa())
        .collect()
}

pub async fn every_algorithm_signs_and_verifies(ctx: &common::Ctx) {
    let k = keys(ctx).await;
    let cases: Vec<(&str, NewKey, Vec<SignatureAlgorithm>)> = vec![
        ("rsa", rsa(2048), rsa_algs()),
        (
            "rsa-hsm",
            NewKey {
                key_size: Some(3072),
                ..NewKey::new(KeyType::RsaHsm)
            },
            rsa_algs(),
        ),
        ("p256", ec(Curve::P256), vec![SignatureAlgorithm::Es256]),
        ("p384", ec(Curve::P384), vec![SignatureAlgorithm::Es384]),
        ("p521", ec(Curve::P521), vec![SignatureAlgorithm::Es512]),
        ("p256k", ec(Curve::P256K), vec![SignatureAlgorithm::Es256K]),
    ];
    for (name, req, algs) in cases {
        let kty = req.kty;
        let created = k.create(VAULT, name, req).await.unwrap();
        assert_eq!(created.key.kty.as_deref(), Some(kty.as_str()), "{name}");
        assert!(created.key.d.is_none());
        let public = k.get(VAULT, name, None).await.unwrap().key;
        assert_eq!(public, created.key);
        for alg in algs {
            let digest = random_digest(alg);
            let sig = k.sign(VAULT, name, None, alg, &digest).await.unwrap();
            assert_eq!(sig.version, created.version);
            assert!(
                k.verify(VAULT, name, None, alg, &digest, &sig.value)
                    .await
                    .unwrap(),
                "{name} {alg:?}"
            );
            assert!(verify_with_public_jwk(&public, alg, &digest, &sig.value).unwrap());
            let mut tampered = digest.clone();
            tampered[3] ^= 0x40;
            assert!(
                !k.verify(VAULT, name, None, alg, &tampered, &sig.value)
                    .await
                    .unwrap(),
                "tampered digest verified: {name} {alg:?}"
            );
            assert!(!verify_with_public_jwk(&public, alg, &tampered, &sig.value).unwrap());
            let mut bad_sig = sig.value.to_vec();
            bad_sig[0] ^= 1;
            assert!(
                !k.verify(VAULT, name, None, alg, &digest, &bad_sig)
                    .await
                    .unwrap()
            );
            // A digest of the wrong size is a bad request, not a panic.
            assert!(matches!(
                k.sign(VAULT, name, None, alg, &digest[..10]).await,
                Err(VaultError::InvalidKeyRequest { .. })
            ));
        }
    }
    // ES256 with a P-384 key: refused.
    assert!(matches!(
        k.sign(
            VAULT,
            "p384",
            None,
            SignatureAlgorithm::Es256,
            &random_digest(SignatureAlgorithm::Es256)
        )
        .await,
        Err(VaultError::InvalidKeyRequest { .. })
    ));
    // RSA 4096: the modulus has the asked size.
    let big = k.create(VAULT, "rsa4096", rsa(4096)).await.unwrap();
    assert_eq!(big.key.n.as_ref().unwrap().bytes().len(), 512);
    assert_eq!(big.attributes.extra["key_size"], 4096);
    for bad in [rsa(1024), rsa(2047)] {
        assert!(matches!(
            k.create(VAULT, "bad", bad).await,
            Err(VaultError::InvalidKeyRequest { .. })
        ));
    }
}

pub async fn encrypt_decrypt_wrap_unwrap(ctx: &common::Ctx) {
    let k = keys(ctx).await;
    k.create(VAULT, "enc", rsa(2048)).await.unwrap();
    for alg in EncryptionAlgorithm::ALL {
        let ct = k
            .encrypt(VAULT, "enc", None, alg, b"attack at dawn")
            .await
            .unwrap();
        let pt = k.decrypt(VAULT, "enc", None, alg, &ct.value).await.unwrap();
        assert_eq!(pt.value.as_slice(), b"attack at dawn", "{alg:?}");
        let cek = Keys::random_bytes(32).unwrap();
        let wrapped = k.wrap_key(VAULT, "enc", None, alg, &cek).await.unwrap();
        assert_ne!(wrapped.value.as_slice(), cek.as_slice());
        let unwrapped = k
            .unwrap_key(VAULT, "enc", None, alg, &wrapped.value)
            .await
            .unwrap();
        assert_eq!(unwrapped.value.as_slice(), cek.as_slice(), "{alg:?}");
        let mut damaged = ct.value.to_vec();
        damaged[100] ^= 1;
        if alg != EncryptionAlgorithm::Rsa15 {
            assert!(matches!(
                k.decrypt(VAULT, "enc", None, alg, &damaged).await,
                Err(VaultError::InvalidKeyRequest { .. })
            ));
        }
    }
    // EC keys do not encrypt.
    k.create(VAULT, "ec", ec(Curve::P256)).await.unwrap();
    assert!(matches!(
        k.encrypt(VAULT, "ec", None, EncryptionAlgorithm::RsaOaep, b"x")
            .await,
        Err(VaultError::KeyOperationNotAllowed { .. })
    ));
}

/// Reads the DER TLV at the start of `input`: (tag, content, rest).
fn der(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let (len, header) = if input[1] < 0x80 {
        (input[1] as usize, 2)
    } else {
        let n = (input[1] & 0x7f) as usize;
        let len = input[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    (tag, &input[header..header + len], &input[header + len..])
}

/// A private RSA JWK from a PKCS#8 RSA key (what a client holding the key would send).
fn rsa_private_jwk(pkcs8: &[u8]) -> JsonWebKey {
    let (_, info, _) = der(pkcs8);
    let (_, _version, rest) = der(info);
    let (_, _alg, rest) = der(rest);
    let (_, octets, _) = der(rest);
    let (_, mut seq, _) = der(octets);
    let mut ints = Vec::new();
    while !seq.is_empty() {
        let (tag, value, rest) = der(seq);
        assert_eq!(tag, 0x02);
        // JWK integers are unsigned big-endian without the DER sign byte.
        let unsigned: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
        ints.push(B64::new(unsigned));
        seq = rest;
    }
    let [_, n, e, d, p, q, dp, dq, qi] = <[B64; 9]>::try_from(ints).unwrap();
    JsonWebKey {
        kty: Some("RSA".into()),
        n: Some(n),
        e: Some(e),
        d: Some(d),
        p: Some(p),
        q: Some(q),
        dp: Some(dp),
        dq: Some(dq),
        qi: Some(qi),
        key_ops: Some(vec!["sign".into(), "verify".into()]),
        ..JsonWebKey::default()
    }
}

pub async fn imported_keys_sign_for_the_original_public_key(ctx: &common::Ctx) {
    let k = keys(ctx).await;

    let original = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8: Pkcs8V1Der = original.as_der().unwrap();
    let jwk = rsa_private_jwk(pkcs8.as_ref());
    let imported = k
        .import(
            VAULT,
            "imported-rsa",
            ImportKey {
                key: jwk.clone(),
                hsm: true,
                attributes: KeyAttributesIn::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(imported.key.kty.as_deref(), Some("RSA-HSM"));
    assert_eq!(imported.key.n, jwk.n);
    assert_eq!(
        imported.key.key_ops,
        Some(vec!["sign".to_owned(), "verify".to_owned()])
    );
    let digest = random_digest(SignatureAlgorithm::Ps256);
    let sig = k
        .sign(
            VAULT,
            "imported-rsa",
            None,
            SignatureAlgorithm::Ps256,
            &digest,
        )
        .await
        .unwrap();
    let d = digest::Digest::import_less_safe(&digest, &digest::SHA256).unwrap();
    UnparsedPublicKey::new(
        &signature::RSA_PSS_2048_8192_SHA256,
        original.public_key().as_ref(),
    )
    .verify_digest(&d, &sig.value)
    .expect("the original public key verifies the vault's signature");

    let ec_pair =
        signature::EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let d_bytes: EcPrivateKeyBin = ec_pair.private_key().as_be_bytes().unwrap();
    let point = ec_pair.public_key().as_ref();
    let ec_jwk = JsonWebKey {
        kty: Some("EC".into()),
        crv: Some("P-384".into()),
        x: Some(B64::new(point[1..49].to_vec())),
        y: Some(B64::new(point[49..97].to_vec())),
        d: Some(B64::new(d_bytes.as_ref().to_vec())),
        ..JsonWebKey::default()
    };
    let imported = k
        .import(
            VAULT,
            "imported-ec",
            ImportKey {
                key: ec_jwk.clone(),
                hsm: false,
                attributes: KeyAttributesIn::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(imported.key.kty.as_deref(), Some("EC"));
    assert_eq!(
        (imported.key.x.clone(), imported.key.y.clone()),
        (ec_jwk.x.clone(), ec_jwk.y.clone())
    );
    let digest = random_digest(SignatureAlgorithm::Es384);
    let sig = k
        .sign(
            VAULT,
            "imported-ec",
            None,
            SignatureAlgorithm::Es384,
            &digest,
        )
        .await
        .unwrap();
    let d = digest::Digest::import_less_safe(&digest, &digest::SHA384).unwrap();
    UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
        .verify_digest(&d, &sig.value)
        .expect("the original EC public key verifies");

    // Bad imports: typed errors.
    let mut no_d = ec_jwk.clone();
    no_d.d = None;
    let mut wrong_x = ec_jwk.clone();
    wrong_x.x = Some(B64::new(vec![7; 48]));
    let mut short_rsa = jwk.clone();
    short_rsa.n = Some(B64::new(vec![0xff; 128]));
    let oct = JsonWebKey {
        kty: Some("oct".into()),
        k: Some(B64::new(vec![1; 32])),
        ..JsonWebKey::default()
    };
    let mut bad_op = ec_jwk.clone();
    bad_op.key_ops = Some(vec!["encrypt".into()]);
    for bad in [no_d, wrong_x, short_rsa, oct, bad_op, JsonWebKey::default()] {
        let r = k
            .import(
                VAULT,
                "bad-import",
                ImportKey {
                    key: bad.clone(),
                    hsm: false,
                    attributes: KeyAttributesIn::default(),
                },
            )
            .await;
        assert!(
            matches!(r, Err(VaultError::InvalidKeyRequest { .. })),
            "{bad:?}: {r:?}"
        );
    }
}

pub async fn key_ops_and_validity_are_enforced(ctx: &common::Ctx) {
    let k = keys(ctx).await;
    let req = NewKey {
        key_ops: Some(vec![KeyOperation::Sign, KeyOperation::Verify]),
        ..rsa(2048)
    };
    k.create(VAULT, "signer", req).await.unwrap();
    let digest = random_digest(SignatureAlgorithm::Rs256);
    k.sign(VAULT, "signer", None, SignatureAlgorithm::Rs256, &digest)
        .await
        .unwrap();
    for r in [
        k.encrypt(VAULT, "signer", None, EncryptionAlgorithm::RsaOaep256, b"x")
            .await,
        k.wrap_key(VAULT, "signer", None, EncryptionAlgorithm::RsaOaep256, b"x")
            .await,
        k.decrypt(
            VAULT,
            "signer",
            None,
            EncryptionAlgorithm::RsaOaep256,
            &[0; 256],
        )
        .await,
        k.unwrap_key(
            VAULT,
            "signer",
            None,
            EncryptionAlgorithm::RsaOaep256,
            &[0; 256],
        )
        .await,
    ] {
        assert!(
            matches!(r, Err(VaultError::KeyOperationNotAllowed { .. })),
            "{r:?}"
        );
    }
    // Granting encrypt lets it encrypt, and only that.
    k.update(
        VAULT,
        "signer",
        None,
        KeyUpdate {
            key_ops: Some(vec![KeyOperation::Encrypt]),
            ..KeyUpdate::default()
        },
    )
    .await
    .unwrap();
    k.encrypt(VAULT, "signer", None, EncryptionAlgorithm::RsaOaep256, b"x")
        .await
        .unwrap();
    assert!(matches!(
        k.sign(VAULT, "signer", None, SignatureAlgorithm::Rs256, &digest)
            .await,
        Err(VaultError::KeyOperationNotAllowed { .. })
    ));
    // EC keys cannot be given RSA-only operations.
    let r = k
        .create(
            VAULT,
            "ec-enc",
            NewKey {
                key_ops: Some(vec![KeyOperation::Decrypt]),
                ..ec(Curve::P256)
            },
        )
        .await;
    assert!(
        matches!(r, Err(VaultError::InvalidKeyRequest { .. })),
        "{r:?}"
    );

    // Disabled: refused for use, still readable; re-enabled: usable.
    k.create(VAULT, "toggle", ec(Curve::P256)).await.unwrap();
    let disable = |enabled| KeyUpdate {
        enabled: Some(enabled),
        ..KeyUpdate::default()
    };
    let updated = k
        .update(VAULT, "toggle", None, disable(false))
        .await
        .unwrap();
    assert!(!updated.attributes.enabled);
    let digest = random_digest(SignatureAlgorithm::Es256);
    let r = k
        .sign(VAULT, "toggle", None, SignatureAlgorithm::Es256, &digest)
        .await;
    assert!(matches!(r, Err(VaultError::Disabled { .. })), "{r:?}");
    assert!(
        !k.get(VAULT, "toggle", None)
            .await
            .unwrap()
            .attributes
            .enabled
    );
    k.update(VAULT, "toggle", None, disable(true))
        .await
        .unwrap();
    k.sign(VAULT, "toggle", None, SignatureAlgorithm::Es256, &digest)
        .await
        .unwrap();

    // Expired and not-yet-valid versions are refused.
    for (name, attributes) in [
        (
            "expired",
            KeyAttributesIn {
                expires: Some(now() - 60),
                ..KeyAttributesIn::default()
            },
        ),
        (
            "future",
            KeyAttributesIn {
                not_before: Some(now() + 3600),
                ..KeyAttributesIn::default()
            },
        ),
    ] {
        k.create(
            VAULT,
            name,
            NewKey {
                attributes,
                ..ec(Curve::P256)
            },
        )
        .await
        .unwrap();
        let r = k
            .sign(VAULT, name, None, SignatureAlgorithm::Es256, &digest)
            .await;
        assert!(
            matches!(r, Err(VaultError::KeyNotUsable { .. })),
            "{name}: {r:?}"
        );
    }
}

pub async fn rotation_and_versions(ctx: &common::Ctx) {
    let k = keys(ctx).await;
    let req = NewKey {
        key_ops: Some(vec![KeyOperation::Sign, KeyOperation::Verify]),
        attributes: KeyAttributesIn {
            tags: BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
            ..KeyAttributesIn::default()
        },
        ..NewKey {
            key_size: Some(3072),
            ..NewKey::new(KeyType::RsaHsm)
        }
    };
    let first = k.create(VAULT, "Rotating", req).await.unwrap();
    assert_eq!(first.name, "Rotating");
    let second = k.rotate(VAULT, "rotating").await.unwrap();
    assert_ne!(second.version, first.version);
    assert_ne!(second.key.n, first.key.n);
    assert_eq!(second.key.n.as_ref().unwrap().bytes().len(), 384);
    assert_eq!(second.key.kty, first.key.kty);
    assert_eq!(second.key.key_ops, first.key.key_ops);
    assert_eq!(second.attributes.tags, first.attributes.tags);
    assert_eq!(
        k.get(VAULT, "rotating", None).await.unwrap().version,
        second.version
    );

    let versions = k.list_versions(VAULT, "rotating", None, 10).await.unwrap();
    let mut ids: Vec<_> = versions.items.iter().map(|p| p.version.clone()).collect();
    ids.sort();
    let mut expected = vec![first.version.clone(), second.version.clone()];
    expected.sort();
    assert_eq!(ids, expected);

    // The old version still signs, with its own key.
    let digest = random_digest(SignatureAlgorithm::Rs256);
    let sig = k
        .sign(
            VAULT,
            "rotating",
            Some(&first.version),
            SignatureAlgorithm::Rs256,
            &digest,
        )
        .await
        .unwrap();
    assert_eq!(sig.version, first.version);
    assert!(
        verify_with_public_jwk(&first.key, SignatureAlgorithm::Rs256, &digest, &sig.value).unwrap()
    );
    assert!(
        !verify_with_public_jwk(&second.key, SignatureAlgorithm::Rs256, &digest, &sig.value)
            .unwrap()
    );

    // Listing: one entry per key, latest version.
    k.create(VAULT, "another", ec(Curve::P256)).await.unwrap();
    let page = k.list(VAULT, None, 1).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let page2 = k.list(VAULT, page.next.as_deref(), 10).await.unwrap();
    let names: Vec<_> = page
        .items
        .iter()
        .chain(&page2.items)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&("Rotating".to_owned(), second.version.clone())));
}

fn policy(actions: Vec<(Trigger, RotationAction)>, expiry: Option<&str>) -> RotationPolicy {
    RotationPolicy {
        lifetime_actions: actions
            .into_iter()
            .map(|(trigger, action)| LifetimeAction { trigger, action })
            .collect(),
        expiry_time: expiry.map(|e| IsoDuration::parse(e).unwrap()),
        ..RotationPolicy::default()
    }
}

/// Two schedulers (two "processes": on PostgreSQL each has its own connection pool and
/// barrier) run due rotations over the same vault at the same time, several ticks each: every
/// due key gets exactly one new version.
pub async fn concurrent_schedulers_rotate_once(ctx: &common::Ctx) {
    let first = ctx.init_key_file().await;
    let second_backend = match &ctx.target {
        common::Target::Postgres(_) => ctx.target.open().await,
        common::Target::Redb(_) => first.backend().clone(),
    };
    let second = Arc::new(rampart_vault::Barrier::new(second_backend));
    second.unseal_with_key_file(ctx.key_file()).await.unwrap();
    let services = [
        Keys::new(VersionedStore::new(first)),
        Keys::new(VersionedStore::new(second)),
    ];
    const DUE: usize = 4;
    let t0 = now();
    for i in 0..DUE {
        let name = format!("k{i}");
        let service = &services[i % 2];
        service.create(VAULT, &name, ec(Curve::P256)).await.unwrap();
        service
            .set_rotation_policy(
                VAULT,
                &name,
                policy(
                    vec![(
                        Trigger::TimeAfterCreate(IsoDuration::parse("P30D").unwrap()),
                        RotationAction::Rotate,
                    )],
                    Some("P90D"),
                ),
            )
            .await
            .unwrap();
    }
    let at = t0 + 31 * DAY;
    let mut tasks = Vec::new();
    for s in 0..4 {
        let service = services[s % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut rotated = Vec::new();
            for _ in 0..3 {
                rotated.extend(service.run_due_rotations(VAULT, at).await.unwrap().rotated);
            }
            rotated
        }));
    }
    let mut rotated = Vec::new();
    for task in tasks {
        rotated.extend(task.await.unwrap());
    }
    assert_eq!(rotated.len(), DUE, "{rotated:?}");
    for i in 0..DUE {
        let name = format!("k{i}");
        let versions = services[1]
            .list_versions(VAULT, &name, None, 10)
            .await
            .unwrap()
            .items;
        assert_eq!(versions.len(), 2, "{name}");
        let latest = services[0].get(VAULT, &name, None).await.unwrap();
        assert!(
            rotated
                .iter()
                .any(|(n, version)| n == &name && version == &latest.version),
            "{name}: {rotated:?}"
        );
    }
}

pub async fn rotation_policy_scheduler(ctx: &common::Ctx) {
    let k = keys(ctx).await;
    let t0 = now();
    let first = k.create(VAULT, "auto", ec(Curve::P256)).await.unwrap();
    // Default policy before one is set.
    let default = k.rotation_policy(VAULT, "auto").await.unwrap();
    assert_eq!(default.lifetime_actions.len(), 1);
    assert_eq!(default.lifetime_actions[0].action, RotationAction::Notify);

    let rotate_after_30d = policy(
        vec![(
            Trigger::TimeAfterCreate(IsoDuration::parse("P30D").unwrap()),
            RotationAction::Rotate,
        )],
        Some("P90D"),
    );
    let set = k
        .set_rotation_policy(VAULT, "auto", rotate_after_30d)
        .await
        .unwrap();
    assert!(set.created >= t0);
    assert_eq!(k.rotation_policy(VAULT, "auto").await.unwrap(), set);
    let bad = policy(
        vec![(
            Trigger::TimeAfterCreate(IsoDuration::parse("P1D").unwrap()),
            RotationAction::Rotate,
        )],
        None,
    );
    assert!(matches!(
        k.set_rotation_policy(VAULT, "auto", bad).await,
        Err(VaultError::InvalidKeyRequest { .. })
    ));

    // Not due yet.
    let report = k.run_due_rotations(VAULT, t0 + 29 * DAY).await.unwrap();
    assert!(report.rotated.is_empty(), "{report:?}");
    // Due: one new version, expiring 90 days after the (injected) rotation time.
    let at = t0 + 31 * DAY;
    let report = k.run_due_rotations(VAULT, at).await.unwrap();
    assert_eq!(report.rotated.len(), 1, "{report:?}");
    let (name, version) = &report.rotated[0];
    assert_eq!(name, "auto");
    assert_ne!(version, &first.version);
    let latest = k.get(VAULT, "auto", None).await.unwrap();
    assert_eq!(&latest.version, version);
    assert_eq!(latest.attributes.expires, Some(at + 90 * DAY));
    assert_eq!(latest.key.crv.as_deref(), Some("P-256"));
    // Running again at the same time does nothing; 30 days later it rotates again.
    assert!(
        k.run_due_rotations(VAULT, at)
            .await
            .unwrap()
            .rotated
            .is_empty()
    );
    let report = k.run_due_rotations(VAULT, at + 30 * DAY).await.unwrap();
    assert_eq!(report.rotated.len(), 1);
    assert_eq!(
        k.list_versions(VAULT, "auto", None, 10)
            .await
            .unwrap()
            .items
            .len(),
        3
    );

    // Notify before expiry: fires once per version.
    k.create(
        VAULT,
        "expiring",
        NewKey {
            attributes: KeyAttributesIn {
                expires: Some(t0 + 40 * DAY),
                ..KeyAttributesIn::default()
            },
            ..ec(Curve::P256)
        },
    )
    .await
    .unwrap();
    let notify = policy(
        vec![(
            Trigger::TimeBeforeExpiry(IsoDuration::parse("P30D").unwrap()),
            RotationAction::Notify,
        )],
        None,
    );
    k.set_rotation_policy(VAULT, "expiring", notify)
        .await
        .unwrap();
    let report = k.run_due_rotations(VAULT, t0 + 5 * DAY).await.unwrap();
    assert!(report.notified.is_empty(), "{report:?}");
    let report = k.run_due_rotations(VAULT, t0 + 11 * DAY).await.unwrap();
    assert_eq!(report.notified.len(), 1, "{report:?}");
    assert_eq!(report.notified[0].0, "expiring");
    assert!(report.rotated.is_empty());
    let report = k.run_due_rotations(VAULT, t0 + 12 * DAY).await.unwrap();
    assert!(report.notified.is_empty(), "notified twice: {report:?}");

    // Deleted keys are left alone; other vaults are not swept.
    k.delete(VAULT, "auto", 7 * DAY).await.unwrap();
    let report = k.run_due_rotations(VAULT, at + 365 * DAY).await.unwrap();
    assert!(
        report.rotated.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    let report = k
        .run_due_rotations("other-vault", at + 365 * DAY)
        .await
        .unwrap();
    assert_eq!(report, Default::default());
}

pub async fn soft_delete_recover_purge(ctx: &common::Ctx) {
    let k = keys(ctx).await;
    let created = k.create(VAULT, "doomed", rsa(2048)).await.unwrap();
    k.set_rotation_policy(
        VAULT,
        "doomed",
        policy(
            vec![(
                Trigger::TimeAfterCreate(IsoDuration::parse("P30D").unwrap()),
                RotationAction::Rotate,
            )],
            None,
        ),
    )
    .await
    .unwrap();
    let deleted = k.delete(VAULT, "doomed", 7 * DAY).await.unwrap();
    assert_eq!(deleted.key.version, created.version);
    assert_eq!(
        deleted.deletion.scheduled_purge - deleted.deletion.deleted_on,
        7 * DAY
    );
    assert!(matches!(
        k.get(VAULT, "doomed", None).await,
        Err(VaultError::NotFound { .. })
    ));
    let digest = random_digest(SignatureAlgorithm::Rs256);
    assert!(matches!(
        k.sign(VAULT, "doomed", None, SignatureAlgorithm::Rs256, &digest)
            .await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(matches!(
        k.create(VAULT, "doomed", rsa(2048)).await,
        Err(VaultError::DeletedButRecoverable { .. })
    ));
    assert_eq!(k.get_deleted(VAULT, "doomed").await.unwrap().key, created);
    let listed = k.list_deleted(VAULT, None, 10).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    let recovered = k.recover(VAULT, "doomed").await.unwrap();
    assert_eq!(recovered, created);
    k.sign(VAULT, "doomed", None, SignatureAlgorithm::Rs256, &digest)
        .await
        .unwrap();

    // Purge: refused under purge protection, then gone with its policy.
    k.delete(VAULT, "doomed", 7 * DAY).await.unwrap();
    assert!(matches!(
        k.purge(VAULT, "doomed", true).await,
        Err(VaultError::PurgeProtected { .. })
    ));
    k.purge(VAULT, "doomed", false).await.unwrap();
    assert!(matches!(
        k.get_deleted(VAULT, "doomed").await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(matches!(
        k.purge(VAULT, "doomed", false).await,
        Err(VaultError::NotFound { .. })
    ));
    let again = k.create(VAULT, "doomed", ec(Curve::P256)).await.unwrap();
    let policy_now = k.rotation_policy(VAULT, "doomed").await.unwrap();
    assert_eq!(
        policy_now,
        RotationPolicy::default(),
        "the old policy was purged"
    );
    assert_ne!(again.version, created.version);

    // Purged behind the service's back (the purge scheduler works on the store): the old
    // policy must not apply to a new key of the same name.
    k.create(VAULT, "orphan", ec(Curve::P256)).await.unwrap();
    k.set_rotation_policy(
        VAULT,
        "orphan",
        policy(
            vec![(
                Trigger::TimeAfterCreate(IsoDuration::parse("P30D").unwrap()),
                RotationAction::Rotate,
            )],
            None,
        ),
    )
    .await
    .unwrap();
    k.delete(VAULT, "orphan", 7 * DAY).await.unwrap();
    k.store()
        .purge(VAULT, ObjectKind::Key, "orphan")
        .await
        .unwrap();
    k.create(VAULT, "orphan", ec(Curve::P256)).await.unwrap();
    assert_eq!(
        k.rotation_policy(VAULT, "orphan").await.unwrap(),
        RotationPolicy::default()
    );
    let report = k.run_due_rotations(VAULT, now() + 365 * DAY).await.unwrap();
    assert!(
        !report.rotated.iter().any(|(n, _)| n == "orphan"),
        "{report:?}"
    );
}

pub async fn private_key_is_encrypted_at_rest(ctx: &common::Ctx) {
    let k = keys(ctx).await;
    let created = k.create(VAULT, "at-rest", rsa(2048)).await.unwrap();
    let raw_key = format!("vault/data/obj/{VAULT}/keys/at-rest/v/{}", created.version);
    let raw = k
        .store()
        .barrier()
        .backend()
        .get(raw_key.as_bytes())
        .await
        .unwrap()
        .expect("the version record is where the store schema says");
    let n = created.key.n.as_ref().unwrap().bytes();
    // The modulus is inside the PKCS#8 private key: it must not appear in the clear.
    assert!(!raw.windows(32).any(|w| w == &n[..32]));
    let text = format!(
        "{created:?} {:?}",
        k.get(VAULT, "at-rest", None).await.unwrap()
    );
    assert!(!text.contains("\"d\""), "{text}");
}

pub async fn backup_and_restore(ctx: &common::Ctx) {
    let barrier = ctx.init_key_file().await;
    let registry = VaultRegistry::new(barrier.clone());
    let here = registry
        .create(VAULT, &VaultOptions::default())
        .await
        .unwrap();
    let elsewhere = registry
        .create(
            "far-away",
            &VaultOptions {
                geography: "other-geo".into(),
                ..VaultOptions::default()
            },
        )
        .await
        .unwrap();
    let k = Keys::new(VersionedStore::new(barrier));
    let first = k.create(VAULT, "Backed-Up", rsa(2048)).await.unwrap();
    let second = k.rotate(VAULT, "backed-up").await.unwrap();
    let blob = k.backup(&here, "backed-up").await.unwrap();
    let n = second.key.n.as_ref().unwrap().bytes();
    assert!(
        !blob.windows(32).any(|w| w == &n[..32]),
        "blob is encrypted"
    );
    assert!(matches!(
        k.restore(&here, &blob).await,
        Err(VaultError::AlreadyExists { .. })
    ));
    k.delete(VAULT, "backed-up", 7 * DAY).await.unwrap();
    assert!(matches!(
        k.backup(&here, "backed-up").await,
        Err(VaultError::NotFound { .. })
    ));
    k.purge(VAULT, "backed-up", false).await.unwrap();
    assert!(matches!(
        k.restore(&elsewhere, &blob).await,
        Err(VaultError::WrongGeography { .. })
    ));
    let restored = k.restore(&here, &blob).await.unwrap();
    assert_eq!(restored, second);
    let old = k
        .get(VAULT, "backed-up", Some(&first.version))
        .await
        .unwrap();
    assert_eq!(old, first);
    let digest = random_digest(SignatureAlgorithm::Rs256);
    let sig = k
        .sign(VAULT, "backed-up", None, SignatureAlgorithm::Rs256, &digest)
        .await
        .unwrap();
    assert!(
        verify_with_public_jwk(&second.key, SignatureAlgorithm::Rs256, &digest, &sig.value)
            .unwrap()
    );
    let mut damaged = blob.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    k.delete(VAULT, "backed-up", 7 * DAY).await.unwrap();
    k.purge(VAULT, "backed-up", false).await.unwrap();
    assert!(matches!(
        k.restore(&here, &damaged).await,
        Err(VaultError::InvalidBackup { .. })
    ));
}

pub async fn random_bytes_bounds(_ctx: &common::Ctx) {
    assert_eq!(Keys::random_bytes(1).unwrap().len(), 1);
    let a = Keys::random_bytes(128).unwrap();
    let b = Keys::random_bytes(128).unwrap();
    assert_eq!(a.len(), 128);
    assert_ne!(a, b);
    for bad in [0, 129, usize::MAX] {
        assert!(matches!(
            Keys::random_bytes(bad),
            Err(VaultError::InvalidKeyRequest { .. })
        ));
    }
}

async fn on_redb<F, Fut>(body: F)
where
    F: FnOnce(Arc<common::Ctx>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(common::Ctx {
        target: common::Target::redb(dir.path()),
        dir,
    });
    body(ctx).await;
}

async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Arc<common::Ctx>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ctx = Arc::new(common::Ctx {
        target: common::Target::postgres().await,
        dir: tempfile::tempdir().unwrap(),
    });
    let outcome = tokio::spawn(body(ctx.clone())).await;
    ctx.target.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! keys_suite {
    ($($case:ident),* $(,)?) => {
        mod redb {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::on_redb(|ctx: ::std::sync::Arc<super::common::Ctx>| async move {
                        super::$case(&ctx).await;
                    })
                    .await;
                }
            )*
        }
        mod postgres {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::on_postgres(|ctx: ::std::sync::Arc<super::common::Ctx>| async move {
                        super::$case(&ctx).await;
                    })
                    .await;
                }
            )*
        }
    };
}

keys_suite!(
    every_algorithm_signs_and_verifies,
    encrypt_decrypt_wrap_unwrap,
    imported_keys_sign_for_the_original_public_key,
    key_ops_and_validity_are_enforced,
    rotation_and_versions,
    rotation_policy_scheduler,
    concurrent_schedulers_rotate_once,
    soft_delete_recover_purge,
    private_key_is_encrypted_at_rest,
    backup_and_restore,
    random_bytes_bounds,
);
