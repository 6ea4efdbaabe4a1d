//! Identity checks on routes: a route may require a verified bearer token, and a permission
//! on the route, before anything reaches its backends.
//!
//! The gateway knows nothing of tokens: it takes the `Authorization: Bearer` credential and
//! the route's [`RouteAuth`] policy to an [`Authenticator`] (the binary plugs in the identity
//! verifier and RBAC) and acts on the [`AuthDecision`]: 401 with an RFC 6750 challenge when the
//! caller is not authenticated, 403 when it is but may not use the route. Both are denials the
//! audit trail sees; neither response says more than the challenge.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// What a route demands of its callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAuth {
    /// The route's name; its RBAC scope is `/gateway/routes/{route}`.
    pub route: String,
    /// Audiences a token may carry (any of them); empty means the authenticator's default.
    pub audiences: Vec<String>,
    /// Scopes the token must grant, all of them.
    pub required_scopes: Vec<String>,
    /// Whether the caller also needs an RBAC permission on the route's scope.
    pub authorize: bool,
}

impl RouteAuth {
    /// The RBAC scope of the route.
    #[must_use]
    pub fn scope(&self) -> String {
        format!("/gateway/routes/{}", self.route)
    }
}

/// The authenticator's answer.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// The caller is who the token says and may use the route.
    Allow {
        /// The principal's id, for logs and the audit trail.
        principal: String,
    },
    /// No credential, or one that does not verify: 401.
    Unauthenticated {
        /// Why, for logs and the audit trail; never sent to the client.
        reason: String,
        /// Whether a token was presented (the challenge then says `invalid_token`).
        token_presented: bool,
    },
    /// A verified caller without the right to use the route: 403.
    Forbidden {
        /// The principal's id.
        principal: String,
        /// Why, for logs and the audit trail; never sent to the client.
        reason: String,
    },
}

impl fmt::Debug for AuthDecision {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow { principal } => write!(formatter, "Allow({principal})"),
            Self::Unauthenticated { reason, .. } => {
                write!(formatter, "Unauthenticated({reason})")
            }
            Self::Forbidden { principal, reason } => {
                write!(formatter, "Forbidden({principal}: {reason})")
            }
        }
    }
}

/// A boxed future of an authentication decision.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = AuthDecision> + Send + 'a>>;

/// Verifies callers of routes that demand it. Shared by all requests.
pub trait Authenticator: Send + Sync + fmt::Debug + 'static {
    /// Decides about a request to a route with `policy`, carrying `token` (the bearer
    /// credential, if any) from `client`.
    fn authenticate<'a>(
        &'a self,
        policy: &'a RouteAuth,
        token: Option<&'a str>,
        client: IpAddr,
    ) -> AuthFuture<'a>;
}

/// The bearer token of a request (`Authorization: Bearer <token>`, scheme case-insensitive),
/// if it has exactly one well-formed one.
#[must_use]
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && !token.contains(' ')).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(AUTHORIZATION, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn bearer_tokens_are_taken_only_when_unambiguous() {
        assert_eq!(bearer_token(&headers(&["Bearer abc.def"])), Some("abc.def"));
        assert_eq!(bearer_token(&headers(&["bearer abc"])), Some("abc"));
        assert_eq!(bearer_token(&headers(&["BEARER  abc "])), Some("abc"));
        assert_eq!(bearer_token(&headers(&[])), None);
        assert_eq!(bearer_token(&headers(&["Basic dXNlcjpwdw=="])), None);
        assert_eq!(bearer_token(&headers(&["Bearer"])), None);
        assert_eq!(bearer_token(&headers(&["Bearer a b"])), None);
        assert_eq!(bearer_token(&headers(&["Bearer a", "Bearer b"])), None);
    }

    #[test]
    fn the_route_scope_is_under_gateway_routes() {
        let policy = RouteAuth {
            route: "orders".into(),
            audiences: vec![],
            required_scopes: vec![],
            authorize: true,
        };
        assert_eq!(policy.scope(), "/gateway/routes/orders");
    }
}
