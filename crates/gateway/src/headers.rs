//! Header rules of a proxy: hop-by-hop headers (RFC 9110 section 7.6.1), forwarding headers,
//! and which client address to believe when the gateway sits behind trusted proxies.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

/// Headers that describe one connection, never forwarded by a proxy.
/// (At most 8: `strip_hop_by_hop` notes them in the low bits of a `u16`.)
/// A `static`, not a `const`: a `const` array would be built and dropped at every use.
static HOP_BY_HOP: [HeaderName; 8] = [
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
    // Most messages carry none of these, and most of the rest only `Connection: keep-alive`
    // or `close`: one pass over the names (cheap comparisons of standard names) notes which
    // are present, and only those are removed.
    const TRANSFER_ENCODING_BIT: u16 = 1 << 8;
    let mut present = 0u16;
    for name in headers.keys().filter(|name| is_hop_by_hop(name)) {
        if name == header::TRANSFER_ENCODING {
            present |= TRANSFER_ENCODING_BIT;
        } else if let Some(index) = HOP_BY_HOP.iter().position(|hop| hop == name) {
            present |= 1 << index;
        }
    }
    if present == 0 {
        return;
    }
    // Headers the `Connection` header names (`close` names none; `keep-alive` is removed
    // anyway).
    let names_others = |value: &HeaderValue| {
        value.to_str().is_ok_and(|value| {
            value.split(',').map(str::trim).any(|token| {
                !token.eq_ignore_ascii_case("close") && !token.eq_ignore_ascii_case("keep-alive")
            })
        })
    };
    if present & 1 != 0 && headers.get_all(header::CONNECTION).iter().any(names_others) {
        let values: Vec<HeaderValue> = headers
            .get_all(header::CONNECTION)
            .iter()
            .cloned()
            .collect();
        for value in &values {
            remove_connection_named(headers, value.as_bytes());
        }
    }
    for (index, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << index) != 0 {
            headers.remove(name);
        }
    }
    if present & TRANSFER_ENCODING_BIT != 0 {
        headers.remove(header::TRANSFER_ENCODING);
    }
}

/// Whether a field is hop-by-hop by its name alone (`Transfer-Encoding` included: the
/// gateway frames bodies itself on each side).
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    // One list for maps and raw response fields: by length first, then one comparison.
    crate::raw_fields::FieldKind::of(name.as_str().as_bytes()).is_hop_by_hop()
}

/// A header field's name as httparse gave it (token characters only): the names most
/// requests and responses carry by one case-insensitive comparison chosen by length, the
/// rest by `HeaderName`'s parser.
pub(crate) fn field_name(name: &[u8]) -> Option<HeaderName> {
    let is = |known: &HeaderName| token_is(name, known.as_str().as_bytes());
    let common = match name.len() {
        4 if is(&header::HOST) => header::HOST,
        4 if is(&header::DATE) => header::DATE,
        4 if is(&header::ETAG) => header::ETAG,
        4 if is(&header::VARY) => header::VARY,
        6 if is(&header::ACCEPT) => header::ACCEPT,
        6 if is(&header::SERVER) => header::SERVER,
        6 if is(&header::COOKIE) => header::COOKIE,
        6 if is(&header::ORIGIN) => header::ORIGIN,
        7 if is(&header::REFERER) => header::REFERER,
        10 if is(&header::USER_AGENT) => header::USER_AGENT,
        10 if is(&header::CONNECTION) => header::CONNECTION,
        10 if is(&header::SET_COOKIE) => header::SET_COOKIE,
        12 if is(&header::CONTENT_TYPE) => header::CONTENT_TYPE,
        13 if is(&header::AUTHORIZATION) => header::AUTHORIZATION,
        13 if is(&header::CACHE_CONTROL) => header::CACHE_CONTROL,
        13 if is(&header::LAST_MODIFIED) => header::LAST_MODIFIED,
        13 if is(&header::ACCEPT_RANGES) => header::ACCEPT_RANGES,
        13 if is(&header::IF_NONE_MATCH) => header::IF_NONE_MATCH,
        14 if is(&header::CONTENT_LENGTH) => header::CONTENT_LENGTH,
        15 if is(&header::ACCEPT_ENCODING) => header::ACCEPT_ENCODING,
        15 if is(&header::ACCEPT_LANGUAGE) => header::ACCEPT_LANGUAGE,
        16 if is(&header::CONTENT_ENCODING) => header::CONTENT_ENCODING,
        17 if is(&header::TRANSFER_ENCODING) => header::TRANSFER_ENCODING,
        17 if is(&header::IF_MODIFIED_SINCE) => header::IF_MODIFIED_SINCE,
        _ => return HeaderName::from_bytes(name).ok(),
    };
    Some(common)
}

/// Whether `token` (token characters only) is `known` (lowercase letters, digits and `-`)
/// in any case, eight bytes at a time. Setting bit 0x20 of every byte lowercases letters and
/// leaves digits and `-` as they are; the only other bytes it maps onto a lowercase letter,
/// a digit or `-` are control characters, which no token holds. So `token | 0x20...` equals
/// `known` exactly when the two are equal ignoring ASCII case.
pub(crate) fn token_is(token: &[u8], known: &[u8]) -> bool {
    const LOWER: u64 = 0x2020_2020_2020_2020;
    let word = |bytes: &[u8], at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|word| <[u8; 8]>::try_from(word).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let length = token.len();
    if length != known.len() {
        return false;
    }
    if length < 8 {
        return token.iter().zip(known).all(|(&t, &k)| t | 0x20 == k);
    }
    // Whole words from the start, then the last eight bytes (overlapping the last word).
    let mut at = 0;
    while at + 8 <= length {
        if word(token, at) | LOWER != word(known, at) {
            return false;
        }
        at += 8;
    }
    at == length || word(token, length - 8) | LOWER == word(known, length - 8)
}

/// Removes the fields one `Connection` value names (every token but `close` and
/// `keep-alive`).
pub(crate) fn remove_connection_named(headers: &mut HeaderMap, connection: &[u8]) {
    let Ok(connection) = std::str::from_utf8(connection) else {
        return;
    };
    for token in connection.split(',').map(str::trim) {
        if token.eq_ignore_ascii_case("close") || token.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
            headers.remove(name);
        }
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP network (expected ADDRESS or ADDRESS/PREFIX, e.g. 10.0.0.0/8)")]
pub struct BadNetwork(String);

impl FromStr for IpNetwork {
    type Err = BadNetwork;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadNetwork(text.to_owned());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

impl IpNetwork {
    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNetwork]) -> bool {
    proxies.iter().any(|network| network.contains(ip))
}

/// The client address to believe: the peer itself, unless the peer is a trusted proxy, in
/// which case the rightmost `X-Forwarded-For` entry that is not a trusted proxy.
pub(crate) fn client_address(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNetwork]) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted(ip, proxies) => client = ip,
            Ok(ip) => return ip,
            // A hop we cannot read: believe nothing to its left.
            Err(_) => return client,
        }
    }
    client
}

/// What the gateway tells the upstream about the client.
#[derive(Clone, Copy)]
pub(crate) struct ForwardedFor<'a> {
    /// The peer that connected to the gateway.
    pub peer: IpAddr,
    /// Whether that peer is a trusted proxy (its forwarding headers are kept and extended).
    pub peer_trusted: bool,
    /// `https` or `http`: how the client reached the gateway.
    pub proto: &'static str,
    /// The host the client asked for, if any.
    pub host: Option<&'a str>,
    /// The request id the gateway assigned.
    pub request_id: &'a str,
}

/// The forwarding header fields for one request: written straight into the upstream
/// request's head after its own fields on the direct path (no header map insertions, no
/// buffer of their own), or put into the request's header map for a hyper client connection.
pub(crate) struct ForwardingFields<'a> {
    forwarded: ForwardedFor<'a>,
    /// From a trusted proxy: the `X-Forwarded-For` and `Forwarded` values it sent, each
    /// followed by `, `, to be extended with its address.
    chain: Option<Box<(Vec<u8>, Vec<u8>)>>,
}

impl ForwardingFields<'_> {
    /// About how many bytes [`Self::write_to`] writes (room to reserve).
    pub(crate) fn encoded_len(&self) -> usize {
        let chain = self
            .chain
            .as_ref()
            .map_or(0, |chain| chain.0.len() + chain.1.len());
        160 + 2 * self.forwarded.host.map_or(0, str::len) + self.forwarded.request_id.len() + chain
    }

    /// Appends the fields as `name: value\r\n` lines. Every value is made of checked header
    /// values, addresses, the request id and fixed words, so none can hold a byte a field
    /// value may not.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let forwarded = &self.forwarded;
        // Only a host with no byte a field value may not hold (checked when these were made).
        let host = forwarded.host;
        out.extend_from_slice(b"x-forwarded-for: ");
        if let Some(chain) = &self.chain {
            out.extend_from_slice(&chain.0);
        }
        let peer_at = out.len();
        push_address(out, forwarded.peer);
        let peer = peer_at..out.len();
        out.extend_from_slice(b"\r\nx-forwarded-proto: ");
        out.extend_from_slice(if forwarded.proto == "https" {
            b"https"
        } else {
            b"http"
        });
        if let Some(host) = host {
            out.extend_from_slice(b"\r\nx-forwarded-host: ");
            out.extend_from_slice(host.as_bytes());
        }
        out.extend_from_slice(b"\r\nforwarded: ");
        if let Some(chain) = &self.chain {
            out.extend_from_slice(&chain.1);
        }
        match forwarded.peer {
            IpAddr::V4(_) => {
                out.extend_from_slice(b"for=");
                out.extend_from_within(peer);
            }
            IpAddr::V6(_) => {
                out.extend_from_slice(b"for=\"[");
                out.extend_from_within(peer);
                out.extend_from_slice(b"]\"");
            }
        }
        out.extend_from_slice(b";proto=");
        out.extend_from_slice(forwarded.proto.as_bytes());
        if let Some(host) = host {
            out.extend_from_slice(b";host=\"");
            out.extend_from_slice(host.as_bytes());
            out.extend_from_slice(b"\"");
        }
        out.extend_from_slice(b"\r\nx-request-id: ");
        out.extend_from_slice(forwarded.request_id.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// Sets the fields in `headers` (replacing any of the same names).
    pub(crate) fn apply_to(&self, headers: &mut HeaderMap) {
        let mut lines = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut lines);
        for line in lines.split(|&byte| byte == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&byte| byte == b':') else {
                continue;
            };
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default().trim_ascii();
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                headers.insert(name, value);
            }
        }
    }
}

/// The header names the gateway sets on every upstream request.
const FORWARDING_NAMES: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "forwarded",
    "x-request-id",
];

/// The forwarding headers for a request, with the client's own copies of them removed from
/// `headers`. From an untrusted peer, client-supplied `X-Forwarded-For` and `Forwarded` are
/// replaced (a client cannot pose as another address); from a trusted proxy they are kept and
/// the peer is appended.
pub(crate) fn forwarding_fields<'a>(
    headers: &mut HeaderMap,
    forwarded: &ForwardedFor<'a>,
) -> ForwardingFields<'a> {
    // Looked up only when the peer is trusted: a lookup by name costs a parse and a hash.
    let chain = forwarded.peer_trusted.then(|| {
        let values = |name: &str| {
            let mut out = Vec::new();
            for value in headers
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
            {
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b", ");
            }
            out
        };
        Box::new((values("x-forwarded-for"), values("forwarded")))
    });
    // Most requests carry none of them: one pass over the names, removals only when needed.
    if headers
        .keys()
        .any(|name| FORWARDING_NAMES.contains(&name.as_str()))
    {
        for name in FORWARDING_NAMES {
            headers.remove(name);
        }
    }
    let host = forwarded.host.filter(|host| {
        host.bytes()
            .all(|byte| byte == b'\t' || (0x20..0x7f).contains(&byte))
    });
    ForwardingFields {
        forwarded: ForwardedFor { host, ..*forwarded },
        chain,
    }
}

/// Appends `address` as `Display` writes it (IPv4 without the formatting machinery).
fn push_address(out: &mut Vec<u8>, address: IpAddr) {
    use std::io::Write as _;
    match address {
        IpAddr::V4(address) => {
            for (index, octet) in address.octets().into_iter().enumerate() {
                if index > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(address) => {
            let _ = write!(out, "{address}");
        }
    }
}

/// Sets the forwarding headers in `headers` (see [`forwarding_fields`]).
#[cfg(test)]
fn set_forwarding(headers: &mut HeaderMap, forwarded: &ForwardedFor<'_>) {
    forwarding_fields(headers, forwarded).apply_to(headers);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_ignores_ascii_case_only() {
        let names = [
            "host",
            "date",
            "etag",
            "vary",
            "server",
            "connection",
            "set-cookie",
            "user-agent",
            "content-type",
            "cache-control",
            "last-modified",
            "accept-ranges",
            "content-length",
            "accept-encoding",
            "content-encoding",
            "transfer-encoding",
            "if-modified-since",
            "x-a",
            "x-forwarded-proto",
        ];
        // Every token character, and the bytes that differ from a name's bytes in bit 0x20
        // only (control characters and the like, which a token cannot hold, excepted).
        let tokens: Vec<u8> = (0u8..=127)
            .filter(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(byte))
            .collect();
        for known in names {
            let known = known.as_bytes();
            assert!(token_is(known, known));
            assert!(token_is(&known.to_ascii_uppercase(), known));
            for at in 0..known.len() {
                for &byte in &tokens {
                    let mut token = known.to_vec();
                    token[at] = byte;
                    assert_eq!(
                        token_is(&token, known),
                        token.eq_ignore_ascii_case(known),
                        "{:?} vs {:?}",
                        String::from_utf8_lossy(&token),
                        String::from_utf8_lossy(known)
                    );
                }
            }
            assert!(!token_is(&known[1..], known));
        }
    }

    #[test]
    fn field_names_are_the_ones_the_parser_gives() {
        for name in [
            "Host",
            "DATE",
            "ETag",
            "Vary",
            "accept",
            "Server",
            "Cookie",
            "Origin",
            "Referer",
            "User-Agent",
            "Connection",
            "Set-Cookie",
            "Content-Type",
            "Authorization",
            "Cache-Control",
            "Last-Modified",
            "Accept-Ranges",
            "If-None-Match",
            "Content-Length",
            "Accept-Encoding",
            "Accept-Language",
            "Content-Encoding",
            "Transfer-Encoding",
            "If-Modified-Since",
            "X-Custom",
            "hosT",
            "Hosx",
            "dATe",
            "datx",
            "Servers",
        ] {
            assert_eq!(
                field_name(name.as_bytes()),
                HeaderName::from_bytes(name.as_bytes()).ok(),
                "{name}"
            );
        }
        assert_eq!(field_name(b"bad name"), None);
        assert_eq!(field_name(b""), None);
    }

    #[test]
    fn hop_by_hop_names_are_told_by_length_then_name() {
        for name in HOP_BY_HOP.iter().chain([&header::TRANSFER_ENCODING]) {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in [
            "x-kept",
            "host",
            "cookie",
            "content-length",
            "x-forwarded-for",
            "te-x",
            "trailers",
            "upgrade-x",
            "keepalive-",
            "proxy-connectio",
            "proxy-connectionx",
            "content-type",
            "x-request-id",
            "authorization",
        ] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
    }

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

        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Close"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key(header::CONTENT_LENGTH));
    }

    #[test]
    fn client_forwarding_headers_are_replaced_not_appended() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        headers.insert("forwarded", HeaderValue::from_static("for=6.6.6.6"));
        headers.insert("x-forwarded-host", HeaderValue::from_static("evil"));
        let forwarded = ForwardedFor {
            peer: "::1".parse().unwrap(),
            peer_trusted: false,
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

    #[test]
    fn ipv4_peers_are_written_as_display_writes_them() {
        for octets in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [9, 10, 99, 100],
            [255, 254, 200, 109],
        ] {
            let address = std::net::Ipv4Addr::from(octets);
            let mut text = Vec::new();
            push_address(&mut text, IpAddr::V4(address));
            assert_eq!(text, address.to_string().as_bytes());
        }
        let mut headers = HeaderMap::new();
        let forwarded = ForwardedFor {
            peer: "192.0.2.10".parse().unwrap(),
            peer_trusted: false,
            proto: "http",
            host: Some("app.example"),
            request_id: "r1",
        };
        set_forwarding(&mut headers, &forwarded);
        assert_eq!(headers["x-forwarded-for"], "192.0.2.10");
        assert_eq!(
            headers["forwarded"],
            "for=192.0.2.10;proto=http;host=\"app.example\""
        );
        assert_eq!(headers["x-forwarded-proto"], "http");
    }

    #[test]
    fn a_trusted_proxy_extends_the_chain() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        let forwarded = ForwardedFor {
            peer: "10.1.2.3".parse().unwrap(),
            peer_trusted: true,
            proto: "https",
            host: None,
            request_id: "r1",
        };
        set_forwarding(&mut headers, &forwarded);
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 10.1.2.3");
    }

    #[test]
    fn networks_parse_and_match() {
        let network: IpNetwork = "10.0.0.0/8".parse().unwrap();
        assert!(network.contains("10.200.1.1".parse().unwrap()));
        assert!(network.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!network.contains("11.0.0.1".parse().unwrap()));
        let host: IpNetwork = "::1".parse().unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("::2".parse().unwrap()));
        let everything: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/", ""] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let proxies: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.2"),
        );
        let peer = "10.0.0.1".parse().unwrap();
        assert_eq!(
            client_address(peer, &headers, &proxies),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let outsider = "198.51.100.1".parse().unwrap();
        assert_eq!(client_address(outsider, &headers, &proxies), outsider);
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("junk, 10.0.0.2"),
        );
        assert_eq!(
            client_address(peer, &headers, &proxies),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }
}
