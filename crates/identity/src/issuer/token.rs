//! The token endpoint (RFC 6749 §4.4 `client_credentials`): form parsing, client
//! authentication (`client_secret_basic`, `client_secret_post`, `private_key_jwt` per RFC
//! 7523 with replay protection), scope and RFC 8707 resource rules, and the JSON answer.
//!
//! Audience rules: the token's `aud` is the requested resource, from `resource=` or from a
//! scope `<resource>/.default` (Azure style). Both may be given if they agree. With neither,
//! a client allowed exactly one resource gets that one. Other scopes must be among the
//! client's allowed scopes; a `.default` request is granted all of them.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rampart_audit::{Decision, Record};
use rampart_storage::{Backend, CasOutcome};
use serde::Serialize;
use zeroize::Zeroizing;

use super::error::{IssuerError, OAuthError, OAuthErrorCode};
use super::jose::CompactJws;
use super::registry::{self, Client, ClientAuth};
use super::{Claims, Issuer};

/// `client_assertion_type` of RFC 7523 assertions.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest lifetime (exp - now) accepted for a client assertion.
pub const MAX_ASSERTION_LIFETIME: u64 = 600;
/// Clock skew tolerated on assertion times.
pub const ASSERTION_LEEWAY: u64 = 60;
const REPLAY_PREFIX: &str = "identity/issuer/jti/";

/// An issued access token. `Debug` shows nothing; serializes as the token text.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Zeroizing<String>);

impl AccessToken {
    pub(crate) fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The compact JWT.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl Serialize for AccessToken {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The token endpoint's success answer (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: AccessToken,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until expiry.
    pub expires_in: u64,
    /// Granted scopes, space separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A token request as it arrived: the form parameters and the `Authorization` header.
#[derive(Clone)]
pub struct TokenRequest {
    params: Vec<(String, String)>,
    authorization: Option<String>,
    source: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("TokenRequest")
            .field("params", &names)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("source", &self.source)
            .finish()
    }
}

impl Drop for TokenRequest {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (_, value) in &mut self.params {
            value.zeroize();
        }
        self.authorization.zeroize();
    }
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space, `%XX` escapes).
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Parses a urlencoded form or query string into pairs (empty pieces skipped).
///
/// # Errors
/// `invalid_request` for bad escapes or non-UTF-8 text.
pub fn parse_form(text: &str) -> Result<Vec<(String, String)>, OAuthError> {
    text.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            match (form_decode(name), form_decode(value)) {
                (Some(name), Some(value)) => Ok((name, value)),
                _ => Err(OAuthError::request(
                    "the form is not valid urlencoded UTF-8",
                )),
            }
        })
        .collect()
}

impl TokenRequest {
    /// A request from its urlencoded body, `Authorization` header and peer address (for the
    /// audit record).
    ///
    /// # Errors
    /// `invalid_request` when the body is not a valid form or repeats a parameter (RFC 6749
    /// §3.2), `resource` excepted (RFC 8707 allows several; this issuer then refuses them
    /// with `invalid_target` unless they are equal).
    pub fn parse(
        body: &[u8],
        authorization: Option<&str>,
        source: Option<String>,
    ) -> Result<Self, OAuthError> {
        let text =
            std::str::from_utf8(body).map_err(|_| OAuthError::request("the form is not UTF-8"))?;
        let params = parse_form(text)?;
        for (index, (name, _)) in params.iter().enumerate() {
            let repeated = params
                .iter()
                .skip(index + 1)
                .any(|(other, _)| other == name);
            if repeated && name != "resource" {
                return Err(OAuthError::request(format!(
                    "parameter {name:?} appears more than once"
                )));
            }
        }
        Ok(Self {
            params,
            authorization: authorization.map(str::to_owned),
            source,
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    fn resources(&self) -> impl Iterator<Item = &str> {
        self.params
            .iter()
            .filter(|(key, value)| key == "resource" && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }
}

/// How the client authenticated (for audit records).
#[derive(Debug, Clone, Copy)]
enum Method {
    Basic,
    Post,
    PrivateKeyJwt,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// What the client offered as credentials.
enum Credentials {
    Secret {
        method: Method,
        id: String,
        secret: Zeroizing<String>,
    },
    Assertion {
        id_hint: Option<String>,
        assertion: String,
    },
}

fn credentials(request: &TokenRequest) -> Result<Credentials, OAuthError> {
    let basic = request.authorization.as_deref().and_then(|value| {
        value
            .strip_prefix("Basic ")
            .or(value.strip_prefix("basic "))
    });
    let post_secret = request.param("client_secret");
    let assertion = request.param("client_assertion");
    let offered = usize::from(basic.is_some())
        + usize::from(post_secret.is_some())
        + usize::from(assertion.is_some());
    if offered > 1 {
        return Err(OAuthError::request(
            "use exactly one client authentication method",
        ));
    }
    if let Some(encoded) = basic {
        let decoded = Zeroizing::new(
            STANDARD
                .decode(encoded.trim())
                .map_err(|_| basic_failure("the Basic credentials are not base64"))?,
        );
        let text = std::str::from_utf8(&decoded)
            .map_err(|_| basic_failure("the Basic credentials are not UTF-8"))?;
        let (id, secret) = text
            .split_once(':')
            .ok_or_else(|| basic_failure("the Basic credentials have no ':'"))?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded first.
        let id = form_decode(id).ok_or_else(|| basic_failure("bad client id encoding"))?;
        let secret = Zeroizing::new(
            form_decode(secret).ok_or_else(|| basic_failure("bad secret encoding"))?,
        );
        if let Some(form_id) = request.param("client_id")
            && form_id != id
        {
            return Err(OAuthError::request(
                "client_id in the form differs from the Basic credentials",
            ));
        }
        return Ok(Credentials::Secret {
            method: Method::Basic,
            id,
            secret,
        });
    }
    if let Some(secret) = post_secret {
        let id = request
            .param("client_id")
            .ok_or_else(|| OAuthError::request("client_secret needs client_id"))?;
        return Ok(Credentials::Secret {
            method: Method::Post,
            id: id.to_owned(),
            secret: Zeroizing::new(secret.to_owned()),
        });
    }
    if let Some(assertion) = assertion {
        if request.param("client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
            return Err(OAuthError::request(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            )));
        }
        return Ok(Credentials::Assertion {
            id_hint: request.param("client_id").map(str::to_owned),
            assertion: assertion.to_owned(),
        });
    }
    Err(OAuthError::client("client authentication is required"))
}

fn basic_failure(description: &str) -> OAuthError {
    let mut error = OAuthError::client(description);
    error.basic_challenge = true;
    error
}

/// A refusal with the client id it concerned (when known), for the audit record.
struct Refusal {
    client: Option<String>,
    method: Option<Method>,
    error: OAuthError,
}

impl From<OAuthError> for Refusal {
    fn from(error: OAuthError) -> Self {
        Self {
            client: None,
            method: None,
            error,
        }
    }
}

impl Issuer {
    /// Answers a token request: authenticates the client, applies the scope and resource
    /// rules, signs the access token. Every issuance and refusal is an audit record.
    ///
    /// # Errors
    /// The OAuth error to answer with (RFC 6749 §5.2).
    pub async fn token(&self, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
        match self.token_inner(request).await {
            Ok((response, client, method, audience, jti)) => {
                let mut record = Record::new("identity", "token.issue", Decision::Allow)
                    .actor(client.id.as_str(), method.as_str())
                    .resource(audience)
                    .detail("jti", jti)
                    .detail("oid", client.oid.as_str());
                if let Some(scope) = &response.scope {
                    record = record.detail("scope", scope.as_str());
                }
                if let Some(source) = &request.source {
                    record = record.source(source);
                }
                self.auditor().record_routine(record);
                Ok(response)
            }
            Err(refusal) => {
                let mut record =
                    Record::new("identity", "token.issue", Decision::Deny).reason(format!(
                        "{}: {}",
                        refusal.error.code.as_str(),
                        refusal.error.description
                    ));
                if let Some(client) = &refusal.client {
                    record = record.actor(
                        client.as_str(),
                        refusal.method.map_or("none", Method::as_str),
                    );
                }
                if let Some(source) = &request.source {
                    record = record.source(source);
                }
                self.auditor().record_routine(record);
                Err(refusal.error)
            }
        }
    }

    async fn token_inner(
        &self,
        request: &TokenRequest,
    ) -> Result<(TokenResponse, Client, Method, String, String), Refusal> {
        match request.param("grant_type") {
            None => return Err(OAuthError::request("grant_type is required").into()),
            Some("client_credentials") => {}
            Some(other) => {
                return Err(OAuthError::new(
                    OAuthErrorCode::UnsupportedGrantType,
                    format!("grant type {other:?} is not supported; use client_credentials"),
                )
                .into());
            }
        }
        let (client, method) = match credentials(request)? {
            Credentials::Secret { method, id, secret } => {
                let client = self
                    .authenticate_secret(&id, secret, method)
                    .await
                    .map_err(|error| Refusal {
                        client: Some(id.clone()),
                        method: Some(method),
                        error,
                    })?;
                (client, method)
            }
            Credentials::Assertion { id_hint, assertion } => {
                let method = Method::PrivateKeyJwt;
                let client = self
                    .authenticate_assertion(id_hint.as_deref(), &assertion)
                    .await
                    .map_err(|(client, error)| Refusal {
                        client,
                        method: Some(method),
                        error,
                    })?;
                (client, method)
            }
        };
        let refuse = |error: OAuthError| Refusal {
            client: Some(client.id.clone()),
            method: Some(method),
            error,
        };
        let (audience, scope) = grant(&client, request).map_err(refuse)?;
        let claims = Claims {
            subject: &client.id,
            audience: &audience,
            client_id: &client.id,
            oid: &client.oid,
            scope: scope.clone(),
        };
        let (token, exp, jti) = self
            .mint_token(&claims)
            .await
            .map_err(|error| refuse(OAuthError::server(&error)))?;
        let response = TokenResponse {
            access_token: token,
            token_type: "Bearer",
            expires_in: exp.saturating_sub(self.now()),
            scope,
        };
        Ok((response, client, method, audience, jti))
    }

    async fn authenticate_secret(
        &self,
        id: &str,
        secret: Zeroizing<String>,
        method: Method,
    ) -> Result<Client, OAuthError> {
        let client = self
            .client(id)
            .await
            .map_err(|error| OAuthError::server(&error))?;
        let hash = match &client {
            Some(Client {
                auth: ClientAuth::Secret { argon2id },
                ..
            }) => argon2id.clone(),
            // Unknown client or one without a secret: spend the same time on a hash no
            // secret matches, so response times do not tell which client ids exist.
            _ => registry::dummy_hash().to_owned(),
        };
        let permit =
            self.hashing().acquire().await.map_err(|_| {
                OAuthError::new(OAuthErrorCode::ServerError, "the issuer is stopping")
            })?;
        let matches = tokio::task::spawn_blocking(move || registry::verify_secret(&secret, &hash))
            .await
            .unwrap_or(false);
        drop(permit);
        match client {
            Some(client) if matches => Ok(client),
            _ => {
                let mut error = OAuthError::client("client authentication failed");
                error.basic_challenge = matches!(method, Method::Basic);
                Err(error)
            }
        }
    }

    async fn authenticate_assertion(
        &self,
        id_hint: Option<&str>,
        assertion: &str,
    ) -> Result<Client, (Option<String>, OAuthError)> {
        let fail = |client: Option<&str>, why: &str| {
            (
                client.map(str::to_owned),
                OAuthError::client(format!("client assertion refused: {why}")),
            )
        };
        let jws = CompactJws::parse(assertion).ok_or_else(|| fail(id_hint, "not a JWS"))?;
        let claim = |name: &str| jws.claims.get(name).and_then(|v| v.as_str());
        let iss = claim("iss").ok_or_else(|| fail(id_hint, "no iss"))?;
        if claim("sub") != Some(iss) {
            return Err(fail(Some(iss), "iss and sub must both be the client id"));
        }
        if id_hint.is_some_and(|hint| hint != iss) {
            return Err(fail(
                Some(iss),
                "client_id differs from the assertion's iss",
            ));
        }
        let client = self
            .client(iss)
            .await
            .map_err(|error| (Some(iss.to_owned()), OAuthError::server(&error)))?;
        let Some(client) = client else {
            return Err(fail(Some(iss), "unknown client"));
        };
        let ClientAuth::PrivateKeyJwt { jwk } = &client.auth else {
            return Err(fail(Some(iss), "the client has no registered public key"));
        };
        let alg = jws
            .header
            .get("alg")
            .and_then(|v| v.as_str())
            .unwrap_or("none");
        if !matches!(alg, "ES256" | "RS256" | "EdDSA") {
            return Err(fail(Some(iss), "unsupported alg"));
        }
        if !jwk.verifies(alg, jws.signing_input.as_bytes(), &jws.signature) {
            return Err(fail(Some(iss), "bad signature"));
        }
        // Claims are trusted only now that the signature verified.
        let endpoint = self.token_endpoint();
        let issuer = &self.config().issuer_url;
        let audience_ok = |value: &serde_json::Value| {
            value
                .as_str()
                .is_some_and(|aud| aud == endpoint || aud == issuer)
        };
        let aud_ok = match jws.claims.get("aud") {
            Some(serde_json::Value::Array(items)) => items.iter().any(audience_ok),
            Some(value) => audience_ok(value),
            None => false,
        };
        if !aud_ok {
            return Err(fail(
                Some(iss),
                "aud must be the token endpoint or the issuer",
            ));
        }
        let now = self.now();
        let number = |name: &str| jws.claims.get(name).and_then(serde_json::Value::as_u64);
        let exp = number("exp").ok_or_else(|| fail(Some(iss), "exp is required"))?;
        if exp.saturating_add(ASSERTION_LEEWAY) <= now {
            return Err(fail(Some(iss), "expired"));
        }
        if exp > now.saturating_add(MAX_ASSERTION_LIFETIME) {
            return Err(fail(Some(iss), "exp is too far ahead (at most 600 s)"));
        }
        if number("nbf").is_some_and(|nbf| nbf > now.saturating_add(ASSERTION_LEEWAY))
            || number("iat").is_some_and(|iat| iat > now.saturating_add(ASSERTION_LEEWAY))
        {
            return Err(fail(Some(iss), "not valid yet"));
        }
        let jti = claim("jti").ok_or_else(|| fail(Some(iss), "jti is required"))?;
        let first_use = remember_jti(
            self.store(),
            iss,
            jti,
            exp.saturating_add(ASSERTION_LEEWAY),
            now,
        )
        .await
        .map_err(|error| (Some(iss.to_owned()), OAuthError::server(&error)))?;
        if !first_use {
            return Err(fail(Some(iss), "replayed (jti already used)"));
        }
        Ok(client)
    }
}

/// Records a (client, jti) pair until `until`; `false` if it was already there, unexpired.
async fn remember_jti(
    store: &dyn Backend,
    client: &str,
    jti: &str,
    until: u64,
    now: u64,
) -> Result<bool, IssuerError> {
    let id: String = digest(&SHA256, format!("{client}\0{jti}").as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = format!("{REPLAY_PREFIX}{id}");
    let value = until.to_string();
    let mut expected: Option<Vec<u8>> = None;
    for _ in 0..4 {
        match store
            .compare_and_swap(key.as_bytes(), expected.as_deref(), Some(value.as_bytes()))
            .await?
        {
            CasOutcome::Swapped => return Ok(true),
            CasOutcome::Conflict { current: None } => expected = None,
            CasOutcome::Conflict {
                current: Some(current),
            } => {
                let stored_until = std::str::from_utf8(&current)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(u64::MAX);
                if stored_until > now {
                    return Ok(false);
                }
                expected = Some(current);
            }
        }
    }
    Ok(false)
}

/// Deletes replay-cache entries whose assertions have expired.
pub(crate) async fn sweep_replay_cache(store: &dyn Backend, now: u64) -> Result<(), IssuerError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store
            .list(REPLAY_PREFIX.as_bytes(), after.as_deref(), 512)
            .await?;
        for entry in &page.entries {
            let until = std::str::from_utf8(&entry.value)
                .ok()
                .and_then(|t| t.parse::<u64>().ok());
            if until.is_some_and(|until| until <= now) {
                let _ = store
                    .compare_and_swap(&entry.key, Some(&entry.value), None)
                    .await?;
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// The audience and the granted scope of a request, per the module's rules.
fn grant(client: &Client, request: &TokenRequest) -> Result<(String, Option<String>), OAuthError> {
    let target = |why: String| OAuthError::new(OAuthErrorCode::InvalidTarget, why);
    let mut wanted: Vec<&str> = Vec::new();
    for resource in request.resources() {
        if !registry::valid_resource(resource) {
            return Err(target(format!(
                "resource {resource:?} is not an absolute URI without a fragment"
            )));
        }
        wanted.push(registry::normalize_resource(resource));
    }
    let mut plain_scopes = Vec::new();
    let mut default_requested = false;
    for scope in request.param("scope").unwrap_or("").split(' ') {
        if scope.is_empty() {
            continue;
        }
        if !registry::valid_scope(scope) {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "malformed scope",
            ));
        }
        match registry::default_scope_resource(scope) {
            Some(resource) => {
                if !registry::valid_resource(resource) {
                    return Err(OAuthError::new(
                        OAuthErrorCode::InvalidScope,
                        format!("scope {scope:?} does not name a resource"),
                    ));
                }
                default_requested = true;
                wanted.push(registry::normalize_resource(resource));
            }
            None => plain_scopes.push(scope),
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    let audience = match wanted.as_slice() {
        [one] => (*one).to_owned(),
        [] => match client.resources.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(target(
                    "name the resource: resource=<uri> or scope=<uri>/.default".into(),
                ));
            }
        },
        _ => {
            return Err(target(
                "one resource per token: the request names several".into(),
            ));
        }
    };
    if !client.resources.contains(&audience) {
        return Err(target(format!(
            "client {:?} may not get tokens for {audience:?}",
            client.id
        )));
    }
    for scope in &plain_scopes {
        if !client.scopes.iter().any(|allowed| allowed == scope) {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                format!("client {:?} may not have scope {scope:?}", client.id),
            ));
        }
    }
    let granted: Vec<&str> = if default_requested && plain_scopes.is_empty() {
        client.scopes.iter().map(String::as_str).collect()
    } else {
        plain_scopes
    };
    let scope = (!granted.is_empty()).then(|| granted.join(" "));
    Ok((audience, scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_refuse_repeats_and_bad_escapes() {
        let request = TokenRequest::parse(
            b"grant_type=client_credentials&scope=a+b%2Fc&resource=x&resource=y",
            None,
            None,
        )
        .unwrap();
        assert_eq!(request.param("scope"), Some("a b/c"));
        assert_eq!(request.resources().count(), 2);
        assert!(TokenRequest::parse(b"scope=a&scope=b", None, None).is_err());
        assert!(TokenRequest::parse(b"scope=%zz", None, None).is_err());
        assert!(TokenRequest::parse(b"scope=%e9", None, None).is_err());
        assert!(TokenRequest::parse(&[0xff], None, None).is_err());
        let debug = format!(
            "{:?}",
            TokenRequest::parse(b"client_secret=hunter2", Some("Basic eA=="), None).unwrap()
        );
        assert!(
            !debug.contains("hunter2") && !debug.contains("eA=="),
            "{debug}"
        );
    }
}
