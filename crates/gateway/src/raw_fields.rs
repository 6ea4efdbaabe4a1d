//! An upstream response's header fields kept as the upstream sent them. The lean HTTP/1.1
//! loop writes them out as they are; a `HeaderMap` is built only when something needs one
//! (filters that inspect responses, hyper's HTTP/2 and HTTP/1.1 connections). Building the
//! map (a name and a value object per field, two allocations, hashing), dropping it and
//! encoding it again cost a tenth of the instructions of a plain proxied request.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::headers::token_is;

/// Fields a response may carry and still be kept raw; a response with more gets a map.
pub(crate) const MAX_RAW_FIELDS: usize = 32;

/// What a response field is to the gateway, told by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum FieldKind {
    /// Any field the gateway passes on as it is.
    #[default]
    Other,
    /// `Date`: the gateway adds one when the upstream did not.
    Date,
    /// `Content-Length`: passed on only where no body follows (HEAD, 304); otherwise the
    /// gateway frames the body itself.
    ContentLength,
    /// `Transfer-Encoding` (hop-by-hop, and framing).
    TransferEncoding,
    /// `Connection` (hop-by-hop, and it may name more hop-by-hop fields).
    Connection,
    /// Another hop-by-hop field (`TE`, `Trailer`, `Upgrade`, `Keep-Alive`,
    /// `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`).
    HopByHop,
}

impl FieldKind {
    /// The kind of a field named `name` (token characters, as httparse checked them): one
    /// comparison chosen by the name's length.
    pub(crate) fn of(name: &[u8]) -> Self {
        let is = |known: &[u8]| token_is(name, known);
        match name.len() {
            2 if is(b"te") => Self::HopByHop,
            4 if is(b"date") => Self::Date,
            7 if is(b"trailer") || is(b"upgrade") => Self::HopByHop,
            10 if is(b"connection") => Self::Connection,
            10 if is(b"keep-alive") => Self::HopByHop,
            14 if is(b"content-length") => Self::ContentLength,
            16 if is(b"proxy-connection") => Self::HopByHop,
            17 if is(b"transfer-encoding") => Self::TransferEncoding,
            18 if is(b"proxy-authenticate") => Self::HopByHop,
            19 if is(b"proxy-authorization") => Self::HopByHop,
            _ => Self::Other,
        }
    }

    /// Whether fields of this kind stay on their connection (never forwarded).
    pub(crate) fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Self::TransferEncoding | Self::Connection | Self::HopByHop
        )
    }
}

/// Where one kept field lies in the head.
#[derive(Debug, Clone, Copy)]
struct Span {
    name_at: u16,
    name_len: u16,
    value_at: u16,
    value_len: u16,
    kind: FieldKind,
}

impl Span {
    fn name(&self) -> std::ops::Range<usize> {
        let at = usize::from(self.name_at);
        at..at + usize::from(self.name_len)
    }

    fn value(&self) -> std::ops::Range<usize> {
        let at = usize::from(self.value_at);
        at..at + usize::from(self.value_len)
    }
}

/// A response head's end-to-end fields, as bytes of the head they came in, and the fields the
/// gateway set over them. Kept by the upstream connection and refilled for each response, so
/// that its vectors are allocated once per connection, not per response.
#[derive(Debug, Default)]
pub(crate) struct RawFields {
    head: Bytes,
    spans: Vec<Span>,
    added: Vec<(HeaderName, HeaderValue)>,
}

impl RawFields {
    /// Starts over for a new head (the whole response head).
    pub(crate) fn reset(&mut self, head: Bytes) {
        self.head = head;
        self.spans.clear();
        self.added.clear();
    }

    /// Keeps the field whose name is `name_len` bytes at `name_at` of the head and whose
    /// value is `value_len` bytes at `value_at`; false (nothing kept) when there are
    /// [`MAX_RAW_FIELDS`] already or an offset does not fit.
    pub(crate) fn push(
        &mut self,
        (name_at, name_len): (usize, usize),
        (value_at, value_len): (usize, usize),
        kind: FieldKind,
    ) -> bool {
        let short = |at: usize, len: usize| {
            let end = at.checked_add(len)?;
            if end > self.head.len() {
                return None;
            }
            Some((u16::try_from(at).ok()?, u16::try_from(len).ok()?))
        };
        let (Some((name_at, name_len)), Some((value_at, value_len))) =
            (short(name_at, name_len), short(value_at, value_len))
        else {
            return false;
        };
        if self.spans.len() == MAX_RAW_FIELDS {
            return false;
        }
        self.spans.push(Span {
            name_at,
            name_len,
            value_at,
            value_len,
            kind,
        });
        true
    }

    /// The kept fields in the order they came, then the ones the gateway set: name, value
    /// and kind.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], FieldKind)> {
        let kept = self
            .spans
            .iter()
            .map(|span| (&self.head[span.name()], &self.head[span.value()], span.kind));
        let added = self.added.iter().map(|(name, value)| {
            let name = name.as_str().as_bytes();
            (name, value.as_bytes(), FieldKind::of(name))
        });
        kept.chain(added)
    }

    /// Sets `name` to `value` over any field of that name the upstream sent.
    pub(crate) fn set(&mut self, name: &HeaderName, value: HeaderValue) {
        let wanted = name.as_str().as_bytes();
        let head = &self.head;
        self.spans
            .retain(|span| !token_is(&head[span.name()], wanted));
        self.added.retain(|(added, _)| added != name);
        self.added.push((name.clone(), value));
    }

    /// Appends the fields to `map`, sharing the head's bytes.
    pub(crate) fn append_to(&self, map: &mut HeaderMap) {
        map.reserve(self.spans.len() + self.added.len());
        for span in &self.spans {
            let name = crate::headers::field_name(&self.head[span.name()]);
            let value = HeaderValue::from_maybe_shared(self.head.slice(span.value()));
            // httparse let through only valid names and values: neither can fail.
            if let (Some(name), Ok(value)) = (name, value) {
                map.append(name, value);
            }
        }
        for (name, value) in &self.added {
            map.insert(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_hop_by_hop_list() {
        for (name, hop_by_hop) in [
            ("te", true),
            ("trailer", true),
            ("upgrade", true),
            ("connection", true),
            ("keep-alive", true),
            ("proxy-connection", true),
            ("transfer-encoding", true),
            ("proxy-authenticate", true),
            ("proxy-authorization", true),
            ("Connection", true),
            ("KEEP-ALIVE", true),
            ("tE", true),
            ("date", false),
            ("content-length", false),
            ("content-type", false),
            ("x-a", false),
            ("tf", false),
            ("trailers", false),
            ("proxy-connections", false),
        ] {
            assert_eq!(
                FieldKind::of(name.as_bytes()).is_hop_by_hop(),
                hop_by_hop,
                "{name}"
            );
        }
        assert_eq!(FieldKind::of(b"Date"), FieldKind::Date);
        assert_eq!(FieldKind::of(b"content-LENGTH"), FieldKind::ContentLength);
        assert_eq!(
            FieldKind::of(b"Transfer-Encoding"),
            FieldKind::TransferEncoding
        );
        assert_eq!(FieldKind::of(b"connection"), FieldKind::Connection);
        assert_eq!(FieldKind::of(b"content-type"), FieldKind::Other);
    }

    /// Offset and length of a name, then of its value.
    type Place = ((usize, usize), (usize, usize));

    fn fields(head: &'static [u8], spans: &[Place]) -> RawFields {
        let mut fields = RawFields::default();
        fields.reset(Bytes::from_static(head));
        for &(name, value) in spans {
            let kind = FieldKind::of(&head[name.0..name.0 + name.1]);
            assert!(fields.push(name, value, kind));
        }
        fields
    }

    #[test]
    fn fields_are_kept_in_order_set_over_by_name_and_appended_to_a_map() {
        let head = b"Server: a\r\nX-Request-Id: up\r\nDate: d\r\nx-request-id: 2\r\n";
        let mut raw = fields(
            head,
            &[
                ((0, 6), (8, 1)),
                ((11, 12), (25, 2)),
                ((29, 4), (35, 1)),
                ((38, 12), (52, 1)),
            ],
        );
        let listed: Vec<(&[u8], &[u8], FieldKind)> = raw.iter().collect();
        assert_eq!(
            listed,
            vec![
                (&b"Server"[..], &b"a"[..], FieldKind::Other),
                (b"X-Request-Id", b"up", FieldKind::Other),
                (b"Date", b"d", FieldKind::Date),
                (b"x-request-id", b"2", FieldKind::Other),
            ]
        );
        raw.set(
            &HeaderName::from_static("x-request-id"),
            HeaderValue::from_static("first"),
        );
        raw.set(
            &HeaderName::from_static("x-request-id"),
            HeaderValue::from_static("mine"),
        );
        let listed: Vec<(&[u8], &[u8], FieldKind)> = raw.iter().collect();
        assert_eq!(
            listed,
            vec![
                (&b"Server"[..], &b"a"[..], FieldKind::Other),
                (b"Date", b"d", FieldKind::Date),
                (b"x-request-id", b"mine", FieldKind::Other),
            ]
        );
        let mut map = HeaderMap::new();
        map.insert("x-request-id", HeaderValue::from_static("old"));
        raw.append_to(&mut map);
        assert_eq!(map.len(), 3);
        assert_eq!(map["server"], "a");
        assert_eq!(map["date"], "d");
        assert_eq!(
            map.get_all("x-request-id").iter().collect::<Vec<_>>(),
            ["mine"]
        );
        // Refilled for the next response.
        raw.reset(Bytes::from_static(b"a: b\r\n"));
        assert_eq!(raw.iter().count(), 0);
    }

    #[test]
    fn at_most_the_limit_is_kept_and_offsets_must_lie_in_the_head() {
        let mut raw = RawFields::default();
        raw.reset(Bytes::from_static(b"a: b\r\n"));
        for _ in 0..MAX_RAW_FIELDS {
            assert!(raw.push((0, 1), (3, 1), FieldKind::Other));
        }
        assert!(!raw.push((0, 1), (3, 1), FieldKind::Other));
        raw.reset(Bytes::from_static(b"a: b\r\n"));
        assert!(!raw.push((0, 1), (3, 10), FieldKind::Other));
        assert!(!raw.push((usize::MAX, 2), (3, 1), FieldKind::Other));
        assert_eq!(raw.iter().count(), 0);
    }
}
