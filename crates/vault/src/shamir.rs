//! Shamir secret sharing over GF(2^8), and the text encoding of unseal shares.
//!
//! **Field.** GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11B).
//! Addition is XOR; multiplication is shift-and-add with no lookup tables and no
//! data-dependent branches (table lookups indexed by secret bytes leak through the cache);
//! the inverse is a^254.
//!
//! **Split.** For each byte `s` of the secret, a random polynomial
//! `p(x) = s + a1·x + … + a(t-1)·x^(t-1)` is drawn; share `i` (for `x = 1..=n`) holds `p(i)` for
//! every byte. **Combine.** Lagrange interpolation at `x = 0` over any `t` distinct shares.
//! Fewer than `t` shares say nothing about the secret: for every candidate secret there is
//! exactly one polynomial through them. Combining too few shares therefore yields a wrong key,
//! which the caller detects with a verification tag (the vault's sealed keyring is AES-GCM
//! encrypted under the unseal key, so a wrong key fails its tag).
//!
//! **Encoding.** A share is printed as `rvs1-` followed by base64url (no padding) of
//! `key id (4) || threshold (1) || index (1) || share bytes || checksum (4)`, where the checksum
//! is the first 4 bytes of SHA-256 over the preceding bytes. A typo is caught by the checksum;
//! shares of another `init` run are caught by the key id.

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::fill_random;
use crate::error::{Result, VaultError};

/// The text prefix of an encoded share.
pub const SHARE_PREFIX: &str = "rvs1-";
const CHECKSUM_LEN: usize = 4;

/// Multiplication in GF(2^8) mod 0x11B, constant time.
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        // mask is 0xFF when the low bit of b is set, else 0.
        product ^= a & (b & 1).wrapping_neg();
        let carry = (a >> 7).wrapping_neg();
        a = (a << 1) ^ (0x1B & carry);
        b >>= 1;
    }
    product
}

/// The multiplicative inverse in GF(2^8) (a^254); 0 maps to 0.
fn gf_inv(a: u8) -> u8 {
    // a^254 = a^(2+4+8+16+32+64+128)
    let mut result = 1u8;
    let mut power = a;
    for _ in 0..7 {
        power = gf_mul(power, power);
        result = gf_mul(result, power);
    }
    result
}

/// One share: its index `x` (1..=255) and the polynomial values at `x`.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    /// The share's x coordinate, 1..=255.
    pub index: u8,
    /// The polynomial values, one per secret byte.
    pub bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("index", &self.index)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

/// Checks `shares`/`threshold`: `1 <= threshold <= shares`, and a threshold of at least 2
/// whenever there is more than one share (a threshold of 1 would make each share the secret).
pub fn check_parameters(shares: u8, threshold: u8) -> Result<()> {
    if threshold == 0 || threshold > shares || (shares > 1 && threshold < 2) {
        return Err(VaultError::InvalidShamirParameters { shares, threshold });
    }
    Ok(())
}

/// Splits `secret` into `shares` shares, any `threshold` of which recombine it.
pub fn split(secret: &[u8], shares: u8, threshold: u8) -> Result<Vec<Share>> {
    check_parameters(shares, threshold)?;
    let degree = usize::from(threshold) - 1;
    let mut out: Vec<Share> = (1..=shares)
        .map(|index| Share {
            index,
            bytes: Zeroizing::new(Vec::with_capacity(secret.len())),
        })
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; degree]);
    for &s in secret {
        fill_random(coefficients.as_mut_slice())?;
        for share in &mut out {
            // Horner: p(x) = s + x(a1 + x(a2 + ...)).
            let mut y = 0u8;
            for &c in coefficients.iter().rev() {
                y = gf_mul(y, share.index) ^ c;
            }
            y = gf_mul(y, share.index) ^ s;
            share.bytes.push(y);
        }
    }
    coefficients.zeroize();
    Ok(out)
}

/// Recombines the secret from `shares` by interpolation at zero. Indices must be distinct and
/// non-zero and all shares the same length. With fewer shares than the split's threshold the
/// result is a wrong (uniformly random-looking) secret: verify it.
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>> {
    let Some(first) = shares.first() else {
        return Err(VaultError::InvalidShare {
            reason: "no shares",
        });
    };
    let len = first.bytes.len();
    for (i, share) in shares.iter().enumerate() {
        if share.index == 0 {
            return Err(VaultError::InvalidShare {
                reason: "share index 0",
            });
        }
        if share.bytes.len() != len {
            return Err(VaultError::InvalidShare {
                reason: "shares of different lengths",
            });
        }
        if shares.iter().take(i).any(|s| s.index == share.index) {
            return Err(VaultError::DuplicateShare { index: share.index });
        }
    }
    // Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); subtraction is XOR.
    let basis: Vec<u8> = shares
        .iter()
        .map(|si| {
            let (mut num, mut den) = (1u8, 1u8);
            for sj in shares.iter().filter(|sj| sj.index != si.index) {
                num = gf_mul(num, sj.index);
                den = gf_mul(den, sj.index ^ si.index);
            }
            gf_mul(num, gf_inv(den))
        })
        .collect();
    let mut secret = Zeroizing::new(vec![0u8; len]);
    for (share, &l) in shares.iter().zip(&basis) {
        for (out, &y) in secret.iter_mut().zip(share.bytes.iter()) {
            *out ^= gf_mul(y, l);
        }
    }
    Ok(secret)
}

/// A share together with the split's identity, as handed to operators.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedShare {
    /// Identifies the `init` run that made the share.
    pub key_id: [u8; 4],
    /// The split's threshold.
    pub threshold: u8,
    /// The share itself.
    pub share: Share,
}

impl fmt::Debug for EncodedShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedShare")
            .field("threshold", &self.threshold)
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

fn checksum(data: &[u8]) -> [u8; CHECKSUM_LEN] {
    let hash = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(
        hash.as_ref()
            .get(..CHECKSUM_LEN)
            .unwrap_or(&[0; CHECKSUM_LEN]),
    );
    out
}

impl EncodedShare {
    /// The text form, `rvs1-<base64url>`.
    pub fn encode(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(6 + self.share.bytes.len() + 4));
        raw.extend_from_slice(&self.key_id);
        raw.push(self.threshold);
        raw.push(self.share.index);
        raw.extend_from_slice(&self.share.bytes);
        let sum = checksum(&raw);
        raw.extend_from_slice(&sum);
        let mut text = Zeroizing::new(String::from(SHARE_PREFIX));
        URL_SAFE_NO_PAD.encode_string(raw.as_slice(), &mut text);
        text
    }

    /// Parses the text form (surrounding whitespace ignored).
    pub fn decode(text: &str) -> Result<Self> {
        let body = text
            .trim()
            .strip_prefix(SHARE_PREFIX)
            .ok_or(VaultError::InvalidShare {
                reason: "missing rvs1- prefix",
            })?;
        let raw =
            Zeroizing::new(
                URL_SAFE_NO_PAD
                    .decode(body)
                    .map_err(|_| VaultError::InvalidShare {
                        reason: "not base64url",
                    })?,
            );
        if raw.len() < 6 + 1 + CHECKSUM_LEN {
            return Err(VaultError::InvalidShare {
                reason: "too short",
            });
        }
        let (payload, sum) = raw.split_at(raw.len() - CHECKSUM_LEN);
        if aws_lc_rs::constant_time::verify_slices_are_equal(&checksum(payload), sum).is_err() {
            return Err(VaultError::InvalidShare {
                reason: "checksum mismatch (typo?)",
            });
        }
        let (head, bytes) = payload.split_at(6);
        let mut key_id = [0u8; 4];
        key_id.copy_from_slice(head.get(..4).unwrap_or(&[0; 4]));
        let threshold = head.get(4).copied().unwrap_or(0);
        let index = head.get(5).copied().unwrap_or(0);
        if index == 0 || threshold == 0 {
            return Err(VaultError::InvalidShare {
                reason: "index and threshold must be non-zero",
            });
        }
        Ok(Self {
            key_id,
            threshold,
            share: Share {
                index,
                bytes: Zeroizing::new(bytes.to_vec()),
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn gf_mul_reference(a: u8, b: u8) -> u8 {
        // Carry-less multiply to 16 bits, then reduce by 0x11B.
        let mut p: u16 = 0;
        for i in 0..8 {
            if b & (1 << i) != 0 {
                p ^= u16::from(a) << i;
            }
        }
        for bit in (8..16).rev() {
            if p & (1 << bit) != 0 {
                p ^= 0x11B << (bit - 8);
            }
        }
        p as u8
    }

    #[test]
    fn field_multiplication_matches_the_reference_and_inverses_invert() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(gf_mul(a, b), gf_mul_reference(a, b), "{a} * {b}");
            }
            if a != 0 {
                assert_eq!(gf_mul(a, gf_inv(a)), 1, "inverse of {a}");
            }
        }
        // FIPS-197 worked example: {57} x {83} = {c1}.
        assert_eq!(gf_mul(0x57, 0x83), 0xC1);
    }

    #[test]
    fn every_threshold_subset_reconstructs() -> Result<()> {
        let secret: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
        let shares = split(&secret, 5, 3)?;
        assert_eq!(shares.len(), 5);
        let mut subsets = 0;
        for a in 0..5 {
            for b in 0..5 {
                for c in 0..5 {
                    if a == b || b == c || a == c {
                        continue;
                    }
                    let pick = [shares[a].clone(), shares[b].clone(), shares[c].clone()];
                    assert_eq!(combine(&pick)?.as_slice(), secret.as_slice());
                    subsets += 1;
                }
            }
        }
        assert_eq!(subsets, 60);
        // More than the threshold works too.
        assert_eq!(combine(&shares)?.as_slice(), secret.as_slice());
        Ok(())
    }

    #[test]
    fn fewer_than_threshold_shares_do_not_reconstruct() -> Result<()> {
        let secret = [0x42u8; 32];
        let shares = split(&secret, 5, 3)?;
        let two = combine(&shares[..2])?;
        assert_ne!(two.as_slice(), secret.as_slice());
        Ok(())
    }

    #[test]
    fn threshold_minus_one_shares_are_consistent_with_every_secret() -> Result<()> {
        // Information-theoretic: two shares of a threshold-3 split of one byte fit a
        // degree-2 polynomial with any constant term, so they reveal nothing.
        let shares = split(&[0x99], 5, 3)?;
        let (s1, s2) = (&shares[0], &shares[1]);
        for candidate in 0..=255u8 {
            // A third point (0, candidate) always completes a valid set whose secret is it.
            let pick = [
                Share {
                    index: 200,
                    bytes: Zeroizing::new(vec![0]),
                },
                s1.clone(),
                s2.clone(),
            ];
            // Find the y at x=200 making the secret equal `candidate`: the secret is linear in
            // that y with a non-zero coefficient, so exactly one y works.
            let hits = (0..=255u8)
                .filter(|&y| {
                    let mut p = pick.clone();
                    p[0].bytes = Zeroizing::new(vec![y]);
                    combine(&p).map(|s| s[0] == candidate).unwrap_or(false)
                })
                .count();
            assert_eq!(hits, 1, "candidate {candidate}");
        }
        Ok(())
    }

    #[test]
    fn duplicate_and_zero_indices_are_refused() -> Result<()> {
        let shares = split(&[1, 2, 3], 3, 2)?;
        let dup = [shares[0].clone(), shares[0].clone()];
        assert!(matches!(
            combine(&dup),
            Err(VaultError::DuplicateShare { index: 1 })
        ));
        let mut zero = shares[1].clone();
        zero.index = 0;
        assert!(matches!(
            combine(&[zero]),
            Err(VaultError::InvalidShare { .. })
        ));
        assert!(matches!(combine(&[]), Err(VaultError::InvalidShare { .. })));
        Ok(())
    }

    #[test]
    fn bad_parameters_are_refused() {
        for (n, t) in [(0, 0), (3, 0), (3, 4), (3, 1), (255, 1)] {
            assert!(
                matches!(
                    split(b"k", n, t),
                    Err(VaultError::InvalidShamirParameters { .. })
                ),
                "{n}/{t}"
            );
        }
        assert!(split(b"k", 1, 1).is_ok());
        assert!(split(b"k", 255, 255).is_ok());
    }

    #[test]
    fn encoding_round_trips_and_catches_typos() -> Result<()> {
        let shares = split(&[7u8; 32], 3, 2)?;
        let encoded = EncodedShare {
            key_id: [1, 2, 3, 4],
            threshold: 2,
            share: shares[2].clone(),
        };
        let text = encoded.encode();
        assert!(text.starts_with(SHARE_PREFIX));
        assert_eq!(
            EncodedShare::decode(&format!(" {}\n", text.as_str()))?,
            encoded
        );
        // Change each character in turn to another base64url character: always caught.
        let body_start = SHARE_PREFIX.len();
        for pos in body_start..text.len() {
            let mut typo = text.as_bytes().to_vec();
            typo[pos] = if typo[pos] == b'A' { b'B' } else { b'A' };
            let typo = String::from_utf8(typo).unwrap();
            let err = EncodedShare::decode(&typo).unwrap_err();
            assert!(
                matches!(err, VaultError::InvalidShare { .. }),
                "pos {pos}: {err}"
            );
        }
        assert!(EncodedShare::decode("rvs1-").is_err());
        assert!(EncodedShare::decode("hello").is_err());
        assert!(EncodedShare::decode("rvs1-!!!!").is_err());
        Ok(())
    }

    #[test]
    fn debug_hides_share_bytes() -> Result<()> {
        let shares = split(&[0xEE; 4], 2, 2)?;
        let text = format!("{:?}", shares[0]);
        assert!(text.contains("redacted"), "{text}");
        Ok(())
    }
}
