//! HTTP(S) fetching of discovery documents and JWKS: hyper-util's pooled client over rustls
//! (aws-lc-rs), trusting the system roots plus an optional extra CA file; each request bounded
//! in time and response size.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

use super::error::{ConfigError, FetchError};

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
    max_bytes: usize,
}

fn root_store(extra_ca: Option<&Path>) -> Result<rustls::RootCertStore, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: the extra CA file may be all that is needed.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let ca_error = |reason: String| ConfigError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|error| ca_error(error.to_string()))?;
        let mut added = 0usize;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|error| ca_error(error.to_string()))?;
            roots
                .add(cert)
                .map_err(|error| ca_error(error.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error("no certificate in file".to_owned()));
        }
    }
    Ok(roots)
}

impl Fetcher {
    pub(crate) fn new(
        extra_ca: Option<&Path>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Self, ConfigError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| ConfigError::Tls(error.to_string()))?
            .with_root_certificates(root_store(extra_ca)?)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        // Plain http is allowed only to loopback; URLs were checked before reaching here.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // No connection pool: fetches are minutes apart, and a pooled connection to an IdP
        // that restarted fails the one fetch that was to pick up its new keys.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Ok(Self {
            client,
            timeout,
            max_bytes,
        })
    }

    /// GETs `url` and decodes its JSON body.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: &Uri) -> Result<T, FetchError> {
        let shown = url.to_string();
        let body = tokio::time::timeout(self.timeout, self.get(url, &shown))
            .await
            .map_err(|_| FetchError::Timeout {
                url: shown.clone(),
                secs: self.timeout.as_secs(),
            })??;
        serde_json::from_slice(&body).map_err(|error| FetchError::Invalid {
            url: shown,
            reason: error.to_string(),
        })
    }

    async fn get(&self, url: &Uri, shown: &str) -> Result<Bytes, FetchError> {
        let request_error = |reason: String| FetchError::Request {
            url: shown.to_owned(),
            reason,
        };
        let request = http::Request::get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "rampart-identity")
            .body(Empty::new())
            .map_err(|error| request_error(error.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| request_error(error_chain(&error)))?;
        if response.status() != http::StatusCode::OK {
            return Err(FetchError::Status {
                url: shown.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: shown.to_owned(),
            max: self.max_bytes,
        };
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_bytes as u64) {
            return Err(too_large());
        }
        let collected = Limited::new(response.into_body(), self.max_bytes)
            .collect()
            .await
            .map_err(|error| {
                if error.downcast_ref::<LengthLimitError>().is_some() {
                    too_large()
                } else {
                    request_error(error.to_string())
                }
            })?;
        Ok(collected.to_bytes())
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
