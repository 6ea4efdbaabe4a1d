//! The management commands' client of the running plane's admin API: the plane's address from
//! `run/admin.url` in the data directory, the admin token from `credentials/admin-token` (or
//! an access token), JSON in and out; refusals (4xx) become usage errors (exit code 2).

use std::path::Path;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::UsageError;

/// The running plane's admin URL, if `run/admin.url` names one that answers `/healthz`.
pub async fn running_plane(data_dir: &Path) -> Option<String> {
    let base = std::fs::read_to_string(data_dir.join("run").join("admin.url")).ok()?;
    let base = base.trim().to_owned();
    let request = http::Request::get(format!("{base}/healthz"))
        .body(Full::new(Bytes::new()))
        .ok()?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let answered = tokio::time::timeout(std::time::Duration::from_secs(5), client.request(request))
        .await
        .ok()?
        .ok()?;
    answered.status().is_success().then_some(base)
}

/// Calls `method path` on the running plane with `body` as JSON; the answer's JSON.
pub async fn call(
    data_dir: &Path,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let runtime = data_dir.join("run").join("admin.url");
    let base = std::fs::read_to_string(&runtime).map_err(|_| {
        UsageError(format!(
            "no running plane found in {} (start `rampart up` first)",
            data_dir.display()
        ))
    })?;
    let credential = match token {
        Some(token) => token.to_owned(),
        None => {
            let path = data_dir.join("credentials").join("admin-token");
            let bytes = crate::datadir::read_secret_file(&path)?;
            String::from_utf8(bytes)
                .context("the admin token is not text")?
                .trim()
                .to_owned()
        }
    };
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", base.trim()))
        .header(http::header::AUTHORIZATION, format!("Bearer {credential}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await.with_context(|| {
        format!(
            "the plane in {} does not answer (is `rampart up` running?)",
            data_dir.display()
        )
    })?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    let message = value["error"].as_str().map_or_else(
        || String::from_utf8_lossy(&bytes).trim().to_owned(),
        str::to_owned,
    );
    if status.is_client_error() {
        Err(UsageError(format!("refused: {message} ({status})")).into())
    } else {
        Err(anyhow::anyhow!("the plane failed: {message} ({status})"))
    }
}
