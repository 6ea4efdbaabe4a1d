//! Routes that demand identity: no token gets 401 with an RFC 6750 challenge, a bad token 401
//! with `invalid_token`, a verified caller without the right 403, and only an allowed caller
//! reaches the backend; every refusal reaches the deny observer; open routes stay open; a route
//! that demands identity on a gateway without an authenticator refuses everything; rate limits
//! keyed by principal give each verified caller its own bucket.
//!
//! The authenticator here stands for the identity crate's verifier (tested against a real
//! OIDC provider in that crate): what is under test is what the gateway does with each answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_gateway::{
    AuthDecision, AuthFuture, Authenticator, DeniedRequest, DenyObserver, Gateway, GatewayOptions,
    RateLimitKey, RateLimitOptions, RouteAuth, RouteOptions,
};
use rampart_test_support::origin::ReflectingOrigin;

/// Accepts `alice-token` (allowed) and `bob-token` (verified, not allowed), nothing else; and
/// remembers the policies it was asked about.
#[derive(Debug, Default)]
struct TokenTable {
    asked: Mutex<Vec<(String, Option<String>)>>,
}

impl Authenticator for TokenTable {
    fn authenticate<'a>(
        &'a self,
        policy: &'a RouteAuth,
        token: Option<&'a str>,
        _client: IpAddr,
    ) -> AuthFuture<'a> {
        Box::pin(async move {
            self.asked
                .lock()
                .unwrap()
                .push((policy.route.clone(), token.map(str::to_owned)));
            match token {
                None => AuthDecision::Unauthenticated {
                    reason: "no token".into(),
                    token_presented: false,
                },
                Some("alice-token") => AuthDecision::Allow {
                    principal: "alice".into(),
                },
                Some("carol-token") => AuthDecision::Allow {
                    principal: "carol".into(),
                },
                Some("bob-token") => AuthDecision::Forbidden {
                    principal: "bob".into(),
                    reason: "no role on the route".into(),
                },
                Some(_) => AuthDecision::Unauthenticated {
                    reason: "bad signature".into(),
                    token_presented: true,
                },
            }
        })
    }
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<DeniedRequest>>);

impl DenyObserver for Recorder {
    fn denied(&self, denial: DeniedRequest) {
        self.0.lock().unwrap().push(denial);
    }
}

fn routes(origin: &ReflectingOrigin) -> Vec<RouteOptions> {
    vec![
        RouteOptions {
            path_prefix: "/api".into(),
            auth: Some(RouteAuth {
                route: "api".into(),
                audiences: vec!["https://api.test".into()],
                required_scopes: vec![],
                authorize: true,
            }),
            ..RouteOptions::catch_all(vec![origin.url()])
        },
        RouteOptions::catch_all(vec![origin.url()]),
    ]
}

async fn start(
    origin: &ReflectingOrigin,
    authenticator: Option<Arc<TokenTable>>,
    recorder: Arc<Recorder>,
) -> SocketAddr {
    start_with_limit(origin, authenticator, recorder, None).await
}

async fn start_with_limit(
    origin: &ReflectingOrigin,
    authenticator: Option<Arc<TokenTable>>,
    recorder: Arc<Recorder>,
    rate_limit: Option<RateLimitOptions>,
) -> SocketAddr {
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    options.rate_limit = rate_limit;
    options.routes = routes(origin);
    options.deny_observer = Some(recorder);
    options.authenticator = authenticator.map(|table| table as Arc<dyn Authenticator>);
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

async fn get(gateway: SocketAddr, path: &str, token: Option<&str>) -> (StatusCode, Option<String>) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::get(format!("http://{gateway}{path}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    let status = response.status();
    let _ = response.into_body().collect().await.unwrap();
    (status, challenge)
}

#[tokio::test]
async fn each_authentication_answer_becomes_the_right_response() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let table = Arc::new(TokenTable::default());
    let recorder = Arc::new(Recorder::default());
    let gateway = start(&origin, Some(Arc::clone(&table)), Arc::clone(&recorder)).await;

    let (status, challenge) = get(gateway, "/api/orders", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"rampart\""));

    let (status, challenge) = get(gateway, "/api/orders", Some("forged")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"rampart\", error=\"invalid_token\"")
    );

    let (status, challenge) = get(gateway, "/api/orders", Some("bob-token")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(challenge, None);
    assert_eq!(
        origin.requests(),
        0,
        "no refused request reached the backend"
    );

    let (status, _) = get(gateway, "/api/orders", Some("alice-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(origin.requests(), 1);

    // The open route asks nobody.
    let asked_before = table.asked.lock().unwrap().len();
    let (status, _) = get(gateway, "/public", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(table.asked.lock().unwrap().len(), asked_before);
    assert!(
        table
            .asked
            .lock()
            .unwrap()
            .iter()
            .all(|(route, _)| route == "api")
    );

    let denials = recorder.0.lock().unwrap();
    let seen: Vec<(u16, &str, &str)> = denials
        .iter()
        .map(|d| (d.status, d.by, d.reason.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (401, "identity", "no token"),
            (401, "identity", "bad signature"),
            (403, "identity", "bob: no role on the route"),
        ]
    );
}

#[tokio::test]
async fn a_route_demanding_identity_without_an_authenticator_refuses_everything() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let gateway = start(&origin, None, Arc::clone(&recorder)).await;
    let (status, _) = get(gateway, "/api/orders", Some("alice-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(origin.requests(), 0);
    let (status, _) = get(gateway, "/other", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn rate_limits_keyed_by_principal_give_each_caller_its_own_bucket() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let table = Arc::new(TokenTable::default());
    let recorder = Arc::new(Recorder::default());
    // Three requests per bucket; no refill during the test.
    let mut limit = RateLimitOptions::per_client_ip(0.001, 3);
    limit.key = RateLimitKey::Principal;
    let gateway = start_with_limit(
        &origin,
        Some(Arc::clone(&table)),
        Arc::clone(&recorder),
        Some(limit),
    )
    .await;

    // One caller spends its bucket...
    for _ in 0..3 {
        assert_eq!(
            get(gateway, "/api/orders", Some("alice-token")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        get(gateway, "/api/orders", Some("alice-token")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...another caller from the same address still has its own.
    for _ in 0..3 {
        assert_eq!(
            get(gateway, "/api/orders", Some("carol-token")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        get(gateway, "/api/orders", Some("carol-token")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(origin.requests(), 6);

    // Refused credentials and open routes share the address's bucket: a flood of forged tokens
    // is limited like any anonymous flood, and the principals' spending did not touch it.
    for _ in 0..2 {
        assert_eq!(
            get(gateway, "/api/orders", Some("forged")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(get(gateway, "/public", None).await.0, StatusCode::OK);
    assert_eq!(
        get(gateway, "/api/orders", Some("forged")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get(gateway, "/public", None).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(origin.requests(), 7);
}
