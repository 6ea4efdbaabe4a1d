//! Request filters: the phase hooks through which the WAF, identity checks and anything else
//! that inspects traffic see each request, in the manner of Pingora's `ProxyHttp`.
//!
//! A [`Filter`] is shared by all requests; for each request it starts a [`FilterSession`]
//! holding that request's state. The gateway calls the session's hooks in order (request
//! headers, request body, response headers, response body, logging); every hook has a default
//! that lets the request through, so a filter implements only what it needs. Any hook may deny:
//! the client then gets the denial's status with the request id and nothing about why, while
//! the reason and rule ids go to logs, metrics and the gateway's [`DenyObserver`].

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode, Uri, Version};

/// The request as filters see it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target as the client sent it.
    pub uri: &'a Uri,
    /// The client's HTTP version.
    pub version: Version,
    /// The client's headers (hop-by-hop headers included).
    pub headers: &'a HeaderMap,
    /// The client address (after trusted-proxy resolution).
    pub client: IpAddr,
    /// The peer that connected to the gateway.
    pub peer: std::net::SocketAddr,
    /// The gateway's request id.
    pub request_id: &'a str,
    /// Whether the client connection is TLS.
    pub tls: bool,
}

/// What a hook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Let the request go on.
    Continue,
    /// Stop it here.
    Deny(Denial),
}

/// A refused request: what the client gets, and what the operators learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The status the client gets (403 unless the filter says otherwise).
    pub status: StatusCode,
    /// Why, for logs and the audit trail; never sent to the client.
    pub reason: String,
    /// Rule ids that matched, if the filter has rules.
    pub rule_ids: Vec<String>,
}

impl Denial {
    /// A 403 with a reason.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            reason: reason.into(),
            rule_ids: Vec::new(),
        }
    }
}

/// A filter shared by all requests.
pub trait Filter: Send + Sync + std::fmt::Debug + 'static {
    /// A short name for logs and metrics (`waf`, `identity`).
    fn name(&self) -> &'static str;

    /// Starts the per-request session.
    fn start(&self, head: &RequestHead<'_>) -> Box<dyn FilterSession>;
}

/// One request's pass through a filter. Every hook defaults to letting it through.
pub trait FilterSession: Send {
    /// After the request head arrived (ModSecurity phase 1).
    fn request_headers(&mut self, head: &RequestHead<'_>) -> Verdict {
        let _ = head;
        Verdict::Continue
    }

    /// How many request-body bytes this filter wants to inspect; 0 for none. The gateway
    /// buffers up to the largest limit any filter asks for and refuses larger bodies with 413.
    fn request_body_limit(&self) -> usize {
        0
    }

    /// The whole request body, once (ModSecurity phase 2).
    fn request_body(&mut self, head: &RequestHead<'_>, body: &[u8]) -> Verdict {
        let _ = (head, body);
        Verdict::Continue
    }

    /// The upstream's response head (phase 3).
    fn response_headers(&mut self, status: StatusCode, headers: &HeaderMap) -> Verdict {
        let _ = (status, headers);
        Verdict::Continue
    }

    /// How many response-body bytes this filter wants to inspect; 0 for none. Larger
    /// responses are inspected up to the limit and the rest passes through.
    fn response_body_limit(&self) -> usize {
        0
    }

    /// The response body, or its first `response_body_limit` bytes (phase 4).
    fn response_body(&mut self, body: &[u8], complete: bool) -> Verdict {
        let _ = (body, complete);
        Verdict::Continue
    }

    /// After the response was decided (phase 5).
    fn logging(&mut self, status: StatusCode) {
        let _ = status;
    }
}

/// A denied request, as reported to the [`DenyObserver`].
#[derive(Debug, Clone)]
pub struct DeniedRequest {
    /// The gateway's request id.
    pub request_id: String,
    /// The client address.
    pub client: IpAddr,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Who denied it: a filter's name, or `rate_limit`, `origin_lock`, `shield`.
    pub by: &'static str,
    /// The status sent.
    pub status: u16,
    /// Why.
    pub reason: String,
    /// Matched rule ids, if any.
    pub rule_ids: Vec<String>,
}

/// Told about every request the gateway denies (the binary sends them to the audit trail).
pub trait DenyObserver: Send + Sync + std::fmt::Debug + 'static {
    /// Called once per denied request, on the request's task: keep it quick.
    fn denied(&self, denial: DeniedRequest);
}

/// The filters of a gateway, in order.
pub(crate) type Filters = Arc<[Arc<dyn Filter>]>;
