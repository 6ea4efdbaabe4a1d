//! Header rules of a proxy: hop-by-hop headers (RFC 9110 section 7.6.1) and forwarding headers.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

/// Headers that describe one connection, never forwarded by a proxy.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including every header the `Connection` header names.
/// `Transfer-Encoding` goes too: hyper frames bodies itself on each side.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// What the gateway tells the upstream about the client.
pub(crate) struct ForwardedFor<'a> {
    /// The client's address as the gateway saw it.
    pub client: std::net::IpAddr,
    /// `https` or `http`: how the client reached the gateway.
    pub proto: &'static str,
    /// The host the client asked for, if any.
    pub host: Option<&'a str>,
    /// The request id the gateway assigned.
    pub request_id: &'a str,
}

/// Replaces any client-supplied forwarding headers with the gateway's own view.
///
/// No proxy in front of the gateway is trusted (yet), so `X-Forwarded-For` and `Forwarded`
/// from the client are dropped rather than appended to: a client cannot pose as another address.
pub(crate) fn set_forwarding(headers: &mut HeaderMap, forwarded: &ForwardedFor<'_>) {
    let client = forwarded.client.to_string();
    let forwarded_client = match forwarded.client {
        std::net::IpAddr::V4(_) => client.clone(),
        std::net::IpAddr::V6(_) => format!("\"[{client}]\""),
    };
    let mut forwarded_value = format!("for={forwarded_client};proto={}", forwarded.proto);
    headers.remove(HeaderName::from_static("x-forwarded-host"));
    if let Some(host) = forwarded
        .host
        .and_then(|host| HeaderValue::from_str(host).ok())
    {
        if let Ok(text) = host.to_str() {
            forwarded_value.push_str(&format!(";host=\"{text}\""));
        }
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    insert_text(headers, "x-forwarded-for", &client);
    insert_text(headers, "x-forwarded-proto", forwarded.proto);
    insert_text(headers, "forwarded", &forwarded_value);
    insert_text(headers, "x-request-id", forwarded.request_id);
}

fn insert_text(headers: &mut HeaderMap, name: &'static str, value: &str) {
    let name = HeaderName::from_static(name);
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_named_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("x-secret, keep-alive"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn client_forwarding_headers_are_replaced_not_appended() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        headers.insert("forwarded", HeaderValue::from_static("for=6.6.6.6"));
        headers.insert("x-forwarded-host", HeaderValue::from_static("evil"));
        let forwarded = ForwardedFor {
            client: "::1".parse().unwrap(),
            proto: "https",
            host: Some("localhost:8443"),
            request_id: "r1",
        };
        set_forwarding(&mut headers, &forwarded);
        assert_eq!(headers["x-forwarded-for"], "::1");
        assert_eq!(
            headers["forwarded"],
            "for=\"[::1]\";proto=https;host=\"localhost:8443\""
        );
        assert_eq!(headers["x-forwarded-host"], "localhost:8443");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-request-id"], "r1");
    }
}
