//! Compact JWS serialization: `base64url(header) . base64url(payload) . base64url(signature)`.
//!
//! Parsing is bounded ([`MAX_TOKEN_LEN`]) and strict: exactly three parts, canonical
//! unpadded base64url, a JSON object header with a string `alg`, no duplicate members, no
//! `crit` extensions. The payload is returned as bytes: the caller decodes claims after (or,
//! for routing by issuer, before) checking the signature.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::alg::Algorithm;
use super::error::JwtError;

/// The longest token accepted, in bytes (16 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The JOSE header members the verifier reads. Other members (`jku`, `x5u`, `jwk`...) are
/// ignored: keys come only from the configured issuer's JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Header {
    /// The signature algorithm, as named.
    pub alg: String,
    /// The key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// The token type (`at+jwt` for RFC 9068 access tokens).
    #[serde(default)]
    pub typ: Option<String>,
    /// Critical extensions; any present makes the token unacceptable.
    #[serde(default)]
    pub crit: Option<Vec<String>>,
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug, Clone)]
pub struct Jws<'a> {
    header: Header,
    alg: Algorithm,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn decode_part(part: &str, what: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed(what))
}

impl<'a> Jws<'a> {
    /// Splits and decodes `token`.
    ///
    /// # Errors
    /// [`JwtError::TooLarge`], [`JwtError::Malformed`], [`JwtError::BadHeader`],
    /// [`JwtError::CriticalExtension`], and the algorithm errors of
    /// [`Algorithm::from_name`] (so `alg: none` and `HS*` never get further).
    pub fn parse(token: &'a str) -> Result<Self, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLarge {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("expected three dot-separated parts"));
        };
        if header_b64.is_empty() || payload_b64.is_empty() {
            return Err(JwtError::Malformed("empty header or payload"));
        }
        let header_json = decode_part(header_b64, "header is not base64url")?;
        let header: Header = serde_json::from_slice(&header_json)
            .map_err(|error| JwtError::BadHeader(error.to_string()))?;
        let alg = Algorithm::from_name(&header.alg)?;
        if let Some(crit) = &header.crit {
            return Err(JwtError::CriticalExtension(
                crit.iter()
                    .take(8)
                    .map(|c| c.chars().take(64).collect())
                    .collect(),
            ));
        }
        let payload = decode_part(payload_b64, "payload is not base64url")?;
        let signature = decode_part(signature_b64, "signature is not base64url")?;
        if signature.is_empty() {
            return Err(JwtError::Malformed("empty signature"));
        }
        // header + '.' + payload: the bytes the signature covers.
        let signing_input = token
            .get(..header_b64.len() + 1 + payload_b64.len())
            .ok_or(JwtError::Malformed("expected three dot-separated parts"))?;
        Ok(Self {
            header,
            alg,
            signing_input,
            payload,
            signature,
        })
    }

    /// The decoded protected header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's algorithm (never `none` or `HS*`).
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The decoded payload (claims JSON for a JWT), not yet authenticated.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// `base64url(header) || '.' || base64url(payload)`.
    #[must_use]
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Checks the signature with `key`, refusing an algorithm the key is not pinned to.
    ///
    /// # Errors
    /// [`JwtError::AlgorithmMismatch`] or [`JwtError::BadSignature`].
    pub fn verify(&self, key: &super::VerifyingKey) -> Result<(), JwtError> {
        key.verify(self.alg, self.signing_input(), &self.signature)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn token(header: &str, payload: &str, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(payload.as_bytes()),
            b64(signature)
        )
    }

    #[test]
    fn parses_header_payload_and_signing_input() {
        let t = token(
            r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#,
            r#"{"sub":"a"}"#,
            b"sig",
        );
        let jws = Jws::parse(&t).unwrap();
        assert_eq!(jws.algorithm(), Algorithm::ES256);
        assert_eq!(jws.header().kid.as_deref(), Some("k1"));
        assert_eq!(jws.header().typ.as_deref(), Some("at+jwt"));
        assert_eq!(jws.payload(), br#"{"sub":"a"}"#);
        assert_eq!(jws.signature(), b"sig");
        let dot = t.rfind('.').unwrap();
        assert_eq!(jws.signing_input(), &t.as_bytes()[..dot]);
    }

    #[test]
    fn refuses_wrong_shapes() {
        let good = token(r#"{"alg":"RS256"}"#, "{}", b"s");
        let (h, rest) = good.split_once('.').unwrap();
        let (p, s) = rest.split_once('.').unwrap();
        for bad in [
            String::new(),
            ".".into(),
            "..".into(),
            format!("{h}.{p}"),
            format!("{h}.{p}.{s}.x"),
            format!("{h}.{p}."),
            format!(".{p}.{s}"),
            format!("{h}..{s}"),
            format!("{h}=.{p}.{s}"),
            format!("{h}.{p}.{s}="),
            format!("{h}.{p}.a+b/"),
            format!("{h}.{p}.A"),
        ] {
            assert!(
                matches!(Jws::parse(&bad), Err(JwtError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_bad_headers() {
        for header in [
            "not json",
            "[]",
            r#"{"kid":"k"}"#,
            r#"{"alg":1}"#,
            r#"{"alg":"RS256","alg":"none"}"#,
            r#"{"alg":"RS256","kid":5}"#,
        ] {
            let t = token(header, "{}", b"s");
            assert!(
                matches!(Jws::parse(&t), Err(JwtError::BadHeader(_))),
                "{header}"
            );
        }
        let t = token(r#"{"alg":"RS256","crit":["b64"],"b64":false}"#, "{}", b"s");
        assert!(matches!(
            Jws::parse(&t),
            Err(JwtError::CriticalExtension(_))
        ));
    }

    #[test]
    fn refuses_none_and_hmac_before_anything_else() {
        let t = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"{}"));
        assert!(matches!(
            Jws::parse(&t),
            Err(JwtError::ForbiddenAlgorithm(_))
        ));
        let t = token(r#"{"alg":"HS256","typ":"JWT"}"#, "{}", b"mac");
        assert!(matches!(
            Jws::parse(&t),
            Err(JwtError::ForbiddenAlgorithm(_))
        ));
    }

    #[test]
    fn refuses_oversized_tokens_without_decoding() {
        let t = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            Jws::parse(&t).unwrap_err(),
            JwtError::TooLarge {
                len: MAX_TOKEN_LEN + 1,
                max: MAX_TOKEN_LEN
            }
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep standing in for the fuzz target.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let alphabet = b"ab.=-_{}\"eyJ0";
        for _ in 0..20_000 {
            let len = (state % 64) as usize;
            let mut s = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize] as char);
            }
            let _ = Jws::parse(&s);
        }
    }
}
