//! The gateway as a client sees it: forwarding, headers, TLS with HTTP/2, failures, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_gateway::{Gateway, GatewayOptions};
use rampart_test_support::origin::ReflectingOrigin;
use tokio::sync::oneshot;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(options: GatewayOptions, grace: Duration) -> Running {
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.serve(
        async move {
            let _ = stopped.await;
        },
        grace,
    ));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

fn options(upstream: &str) -> GatewayOptions {
    GatewayOptions::new("127.0.0.1:0".parse().unwrap(), upstream)
}

type PlainClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn plain_client() -> PlainClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(
    client: &PlainClient,
    request: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, json)
}

#[tokio::test]
async fn forwards_requests_with_the_gateways_view_of_the_client() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(options(&origin.url()), Duration::from_secs(1)).await;
    let request = Request::post(format!("http://{}/echo?x=1", gateway.addr))
        .header("host", "app.example")
        .header("x-forwarded-for", "6.6.6.6")
        .header("connection", "x-hop")
        .header("x-hop", "secret")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let (status, headers, reflected) = send(&plain_client(), request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reflected["method"], "POST");
    assert_eq!(reflected["uri"], "/echo?x=1");
    assert_eq!(reflected["body"], "hello");
    let seen = &reflected["headers"];
    assert_eq!(seen["x-forwarded-for"][0], "127.0.0.1", "{seen}");
    assert_eq!(seen["x-forwarded-proto"][0], "http");
    assert_eq!(seen["host"][0], "app.example");
    assert!(
        seen.get("x-hop").is_none(),
        "hop-by-hop header leaked: {seen}"
    );
    let request_id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(seen["x-request-id"][0], request_id);
}

/// The upstream's response fields reach the client whichever way the gateway serves the
/// request (the lean HTTP/1.1 loop writes them as they came; hyper gets them in a map), and
/// the gateway's request id replaces one the upstream sent.
#[tokio::test]
async fn upstream_response_fields_pass_and_the_request_id_is_the_gateways() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(options(&origin.url()), Duration::from_secs(1)).await;
    let path = "/with-headers?x-request-id=upstream&x-custom=1&x-custom=2&cache-control=no-store";
    // Bodiless (the lean loop), then with a body (hyper serves it).
    let requests = [
        Request::get(format!("http://{}{path}", gateway.addr))
            .body(Full::default())
            .unwrap(),
        Request::post(format!("http://{}{path}", gateway.addr))
            .body(Full::new(Bytes::from_static(b"data")))
            .unwrap(),
    ];
    for request in requests {
        let method = request.method().clone();
        let response = plain_client().request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        let headers = response.headers();
        let request_ids: Vec<_> = headers.get_all("x-request-id").iter().collect();
        assert_eq!(request_ids.len(), 1, "{method}: {headers:?}");
        assert_ne!(request_ids[0], "upstream", "{method}");
        let custom: Vec<_> = headers.get_all("x-custom").iter().collect();
        assert_eq!(custom, ["1", "2"], "{method}");
        assert_eq!(headers["cache-control"], "no-store", "{method}");
        assert_eq!(headers["content-length"], "2", "{method}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "ok", "{method}");
    }
}

#[tokio::test]
async fn unreachable_upstream_is_a_502_with_a_request_id() {
    // Bind and drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = start(
        options(&format!("http://127.0.0.1:{port}")),
        Duration::from_secs(1),
    )
    .await;
    let request = Request::get(format!("http://{}/", gateway.addr))
        .body(Full::default())
        .unwrap();
    let (status, headers, body) = send(&plain_client(), request).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"], "upstream_unreachable");
    assert_eq!(
        body["request_id"],
        headers["x-request-id"].to_str().unwrap()
    );
}

#[tokio::test]
async fn slow_upstream_is_a_504() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let mut options = options(&origin.url());
    options.request_timeout = Duration::from_millis(200);
    let gateway = start(options, Duration::from_secs(1)).await;
    let request = Request::get(format!("http://{}/slow?ms=5000", gateway.addr))
        .body(Full::default())
        .unwrap();
    let (status, _, body) = send(&plain_client(), request).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["error"], "upstream_timeout");
}

#[tokio::test]
async fn the_timeout_holds_for_every_request_on_a_reused_upstream_connection() {
    // Upstream connections are kept alive and each keeps one timer across its requests:
    // a fast request, a slow one (504), a pause longer than the timeout (the timer of the
    // idle connection fires), then fast ones again, on one client connection.
    let origin = ReflectingOrigin::start().await.unwrap();
    let mut options = options(&origin.url());
    options.request_timeout = Duration::from_millis(300);
    let gateway = start(options, Duration::from_secs(1)).await;
    let client = plain_client();
    let get = |path: &str| {
        Request::get(format!("http://{}{path}", gateway.addr))
            .body(Full::default())
            .unwrap()
    };
    let (status, _, _) = send(&client, get("/fast")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(&client, get("/slow?ms=5000")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["error"], "upstream_timeout");
    let (status, _, _) = send(&client, get("/fast")).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(700)).await;
    for _ in 0..3 {
        let (status, _, _) = send(&client, get("/slow?ms=50")).await;
        assert_eq!(status, StatusCode::OK, "a request well within the timeout");
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let mut gateway = start(options(&origin.url()), Duration::from_secs(10)).await;
    let addr = gateway.addr;
    let in_flight = tokio::spawn(async move {
        let request = Request::get(format!("http://{addr}/slow?ms=700"))
            .body(Full::default())
            .unwrap();
        send(&plain_client(), request).await
    });
    // Let the request reach the origin, then ask the gateway to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gateway.stop.take().unwrap().send(()).unwrap();
    let (status, _, reflected) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reflected["uri"], "/slow?ms=700");
    gateway.task.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "gateway still accepts connections after shutdown"
    );
}

#[tokio::test]
async fn tls_listener_serves_http2_by_alpn() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = certified.cert.der().clone();
    let key_der =
        rustls::pki_types::PrivateKeyDer::try_from(certified.key_pair.serialize_der()).unwrap();
    let mut server_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .unwrap();
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    let origin = ReflectingOrigin::start().await.unwrap();
    let mut options = options(&origin.url());
    options.tls = Some(rampart_gateway::GatewayTls::from_config(Arc::new(
        server_config,
    )));
    let gateway = start(options, Duration::from_secs(1)).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config)
        .https_only()
        .enable_http2()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector);
    let request = Request::get(format!("https://localhost:{}/echo", gateway.addr.port()))
        .body(Full::default())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let reflected: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reflected["headers"]["x-forwarded-proto"][0], "https");
    assert_eq!(
        reflected["headers"]["host"][0],
        format!("localhost:{}", gateway.addr.port())
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_chain_is_kept_and_the_real_client_is_limited() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let mut options = options(&origin.url());
    options.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    options.rate_limit = Some(rampart_gateway::RateLimitOptions::per_client_ip(0.0001, 1));
    let gateway = start(options, Duration::from_secs(1)).await;
    let client = plain_client();
    let from = |address: &'static str| {
        Request::get(format!("http://{}/", gateway.addr))
            .header("x-forwarded-for", address)
            .body(Full::default())
            .unwrap()
    };
    let (status, _, reflected) = send(&client, from("203.0.113.9")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reflected["headers"]["x-forwarded-for"][0],
        "203.0.113.9, 127.0.0.1"
    );
    // The bucket belongs to the client behind the proxy, not to the proxy.
    let (status, _, _) = send(&client, from("203.0.113.9")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _) = send(&client, from("198.51.100.4")).await;
    assert_eq!(status, StatusCode::OK);
}

/// An upstream that counts the connections made to it and answers `GET /big` with 64 MiB (more than socket buffers hold) and
/// everything else with a short keep-alive response.
async fn counting_upstream() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: Request<hyper::body::Incoming>| async move {
                        let size = if request.uri().path() == "/big" {
                            64 << 20
                        } else {
                            5
                        };
                        let _ = request.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from(vec![b'x'; size]),
                        )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn upstream_connections_are_reused_and_survive_an_abandoned_response() {
    use std::sync::atomic::Ordering;
    let (upstream, connections) = counting_upstream().await;
    let mut options = options(&format!("http://{upstream}"));
    options.workers = 1;
    let gateway = start(options, Duration::from_secs(1)).await;
    let client = plain_client();
    for method in ["GET", "POST", "GET", "DELETE", "GET"] {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}/small", gateway.addr))
            .body(Full::new(Bytes::from_static(b"body")))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            &response.into_body().collect().await.unwrap().to_bytes()[..],
            b"xxxxx"
        );
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "requests in a row share one upstream connection"
    );

    // A response the client abandons half-read: that upstream connection cannot serve
    // another request (hyper closes it); the pool replaces it and later requests share one.
    let mut abandoned = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut abandoned, b"GET /big HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 1024];
    let read = tokio::io::AsyncReadExt::read(&mut abandoned, &mut head)
        .await
        .unwrap();
    assert!(head[..read].starts_with(b"HTTP/1.1 200"));
    drop(abandoned);
    for _ in 0..3 {
        let request = Request::get(format!("http://{}/small", gateway.addr))
            .body(Full::default())
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            &response.into_body().collect().await.unwrap().to_bytes()[..],
            b"xxxxx"
        );
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "later requests did not share one new connection"
    );
}

#[tokio::test]
async fn a_slow_upload_does_not_hold_up_the_next_request_on_its_upstream_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An upstream that answers each request head at once, before reading any body, and keeps
    // the connection open (reading whatever else arrives).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buffer = [0u8; 4096];
                while !seen.windows(4).any(|window| window == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => seen.extend_from_slice(&buffer[..read]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nearly")
                    .await;
                while let Ok(read) = stream.read(&mut buffer).await {
                    if read == 0 {
                        return;
                    }
                }
            });
        }
    });
    let mut options = options(&format!("http://{upstream}"));
    options.workers = 1;
    // The upload below is slow but within its rate budget for the whole test.
    options.min_request_body_rate = rampart_gateway::MinRate {
        bytes: 1,
        per: Duration::from_secs(3600),
    };
    options.header_read_timeout = Duration::from_secs(3600);
    let gateway = start(options, Duration::from_secs(1)).await;

    // A client starts a long upload and gets its answer while still sending.
    let mut uploader = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    uploader
        .write_all(b"POST /upload HTTP/1.1\r\nhost: app\r\ncontent-length: 1000000\r\n\r\nsome")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let read = uploader.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));

    // The next request must not wait for that upload to finish (it never does here).
    let request = Request::get(format!("http://{}/next", gateway.addr))
        .body(Full::default())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), plain_client().request(request))
        .await
        .expect("the request waited for another client's upload")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(uploader);
}
