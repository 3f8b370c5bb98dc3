//! W3C Trace Context at the edge: which incoming `traceparent` is believed, and what the API
//! proxy sends its upstreams.
//!
//! A `traceparent` (W3C Trace Context, level 1) is accepted only when the direct peer is one of
//! the configured [`TrustedProxies`], the same rule as for `X-Forwarded-*`: any client can send
//! the header, and a believed one would let it choose the request id that the logs and the
//! problem `instance` show, or attach its requests to someone else's trace. From anyone else the
//! header is ignored and the request starts a trace of its own.
//!
//! Accepted, its trace id is the request id (32 lowercase hex digits) and, when traces are
//! exported, the parent of the request's span. Towards a proxied upstream the client's
//! `traceparent` and `tracestate` are withheld (`proxy::headers`) and [`outgoing_traceparent`]
//! is sent instead: the current span's context when traces are exported, else the accepted
//! incoming one as it came, else none. `tracestate` is never passed on (vendor data this server
//! does not read; the specification lets a participant drop it).

use std::net::IpAddr;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use poem::http::HeaderValue;
use poem::http::header::{HeaderMap, HeaderName};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::proxy::TrustedProxies;

/// The request header of W3C Trace Context (a `HeaderName` constant: a `&str` name is parsed
/// again on every use).
pub(crate) const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A parsed `traceparent`: which trace, which span is the parent, whether it is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value (W3C Trace Context section 3.2): `version-traceid-parentid-
    /// flags`, lowercase hex, neither id all zeros, version `ff` invalid. A version above `00`
    /// may carry more fields after a `-`, which are ignored, as the specification asks.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let bytes = value.as_bytes();
        let version = hex_byte(bytes.get(0..2)?)?;
        if version == 0xff || bytes.get(2) != Some(&b'-') {
            return None;
        }
        match (version, bytes.len()) {
            (0, 55) => {}
            (0, _) => return None,
            (_, 55) => {}
            (_, n) if n > 55 && bytes.get(55) == Some(&b'-') => {}
            _ => return None,
        }
        if bytes.get(35) != Some(&b'-') || bytes.get(52) != Some(&b'-') {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(bytes.get(3 + 2 * i..5 + 2 * i)?)?;
        }
        let mut parent_id = [0u8; 8];
        for (i, byte) in parent_id.iter_mut().enumerate() {
            *byte = hex_byte(bytes.get(36 + 2 * i..38 + 2 * i)?)?;
        }
        let flags = hex_byte(bytes.get(53..55)?)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace id as 32 lowercase hex digits: the request id of an accepted trace.
    pub(crate) fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The value as this server sends it: version `00`, the sampled flag only.
    pub(crate) fn header_value(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags & 1
        )
    }

    /// The remote parent for the request's span.
    fn span_context(&self) -> SpanContext {
        let flags = if self.flags & 1 == 1 {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.parent_id),
            flags,
            true,
            TraceState::default(),
        )
    }
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    match pair {
        [high, low] => Some(digit(*high)? << 4 | digit(*low)?),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The trace context a request came with, when it is believed, and whether its span is
/// exported; kept in the request's extensions for the API proxy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IncomingTrace {
    pub(crate) parent: Option<TraceParent>,
    /// `false` when the request's span was found not to be exported (no OpenTelemetry layer):
    /// then neither is the upstream call's, and [`outgoing_traceparent`] need not look it up.
    pub(crate) exported: bool,
}

impl Default for IncomingTrace {
    /// Nothing believed, and the current span to be asked whether it is exported.
    fn default() -> Self {
        Self {
            parent: None,
            exported: true,
        }
    }
}

/// The `traceparent` of a request from `peer`, when `trusted` vouches for the peer and the
/// request carries exactly one valid value.
pub(crate) fn accepted_traceparent(
    trusted: &TrustedProxies,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<TraceParent> {
    if !trusted.trusts_peer(peer) {
        return None;
    }
    let mut values = headers.get_all(&TRACEPARENT).iter();
    let value = values.next()?;
    if values.next().is_some() {
        // Two parents: the specification says to start afresh.
        return None;
    }
    TraceParent::parse(value.to_str().ok()?)
}

/// Makes `span` (the request's) a child of the accepted `parent`, when traces are exported.
pub(crate) fn adopt_parent(span: &tracing::Span, parent: &TraceParent) {
    let context = opentelemetry::Context::new().with_remote_span_context(parent.span_context());
    // Without an OpenTelemetry layer there is nothing to adopt it, which is fine.
    let _ = span.set_parent(context);
}

/// The trace id of `span` when traces are exported (32 hex digits), else `None`.
pub(crate) fn exported_trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The `traceparent` for an upstream call made in the current span (see the module docs).
pub(crate) fn outgoing_traceparent(incoming: IncomingTrace) -> Option<HeaderValue> {
    // Without export (nearly every request) the span's context is not looked up at all: a
    // subscriber downcast and a context built for nothing.
    let current = incoming
        .exported
        .then(|| {
            let context = tracing::Span::current().context();
            context.span().span_context().clone()
        })
        .filter(SpanContext::is_valid);
    let value = match current {
        Some(current) => format!(
            "00-{}-{}-{:02x}",
            current.trace_id(),
            current.span_id(),
            current.trace_flags().to_u8() & 1
        ),
        None => incoming.parent?.header_value(),
    };
    HeaderValue::from_str(&value).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read_and_written_back() {
        let parsed = TraceParent::parse(VALID).unwrap();
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.header_value(), VALID);
        // A later version with more fields: the known part counts, written back as version 00.
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-ever";
        assert_eq!(TraceParent::parse(future).unwrap().header_value(), VALID);
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for hostile in [
            "",
            "00",
            // Upper case, all-zero ids, version ff, wrong lengths, wrong separators.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é1",
        ] {
            assert_eq!(TraceParent::parse(hostile), None, "{hostile:?}");
        }
    }

    #[test]
    fn only_a_trusted_peer_sets_the_trace_and_only_with_one_value() {
        let trusted = TrustedProxies::new(
            vec![crate::proxy::IpNetwork::parse("10.0.0.0/8").unwrap()],
            crate::proxy::ForwardingHeaders::default(),
        );
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(VALID));
        let proxy = Some("10.1.2.3".parse().unwrap());
        let stranger = Some("192.0.2.1".parse().unwrap());
        assert!(accepted_traceparent(&trusted, proxy, &headers).is_some());
        assert!(accepted_traceparent(&trusted, stranger, &headers).is_none());
        assert!(accepted_traceparent(&trusted, None, &headers).is_none());
        assert!(accepted_traceparent(&TrustedProxies::default(), proxy, &headers).is_none());
        headers.append(TRACEPARENT, HeaderValue::from_static(VALID));
        assert!(accepted_traceparent(&trusted, proxy, &headers).is_none());
    }

    #[test]
    fn without_exported_traces_the_accepted_parent_goes_on_unchanged() {
        let parent = TraceParent::parse(VALID).unwrap();
        // Whether the request's span was seen not to be exported (the shortcut) or is asked
        // now (no subscriber here, so it is not), the answer is the same.
        for exported in [false, true] {
            let incoming = IncomingTrace {
                parent: Some(parent),
                exported,
            };
            assert_eq!(outgoing_traceparent(incoming).unwrap(), VALID);
            let incoming = IncomingTrace {
                parent: None,
                exported,
            };
            assert_eq!(outgoing_traceparent(incoming), None);
        }
    }
}
