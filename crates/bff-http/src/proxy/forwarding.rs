//! Who the client is, for the upstream's `X-Forwarded-For`, `-Proto` and `-Host`.
//!
//! What a request says about its own path (`X-Forwarded-*`, `Forwarded`) is never taken as
//! truth: any client can send those headers. Only when the direct peer is one of the configured
//! [`TrustedProxies`] does the proxy read the chain those proxies wrote, in the one header
//! family they are configured to write ([`ForwardingHeaders`]: `X-Forwarded-*` by default, or
//! RFC 7239 `Forwarded`), walking it from the right. Each address a trusted proxy wrote is
//! believed; the first one that is not itself a trusted proxy is the client (the right-most
//! untrusted hop), and everything to its left, which the client could have written, is ignored.
//! The scheme and host are read from the same hop as that address.
//!
//! A hop that is not an IP address (`unknown`, an obfuscated name, garbage) ends the walk at the
//! last trusted hop, so the client is never a value nobody vouched for. A `Forwarded` header that
//! breaks RFC 7239's syntax, or a header that is not visible ASCII, counts for nothing: the
//! client is then the peer. The walk looks at no more than [`MAX_HOPS`] hops from the right.
//!
//! Without a trusted peer, the client is the peer, and the scheme and host are the server's own
//! (the caller fills them in).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use poem::http::header::{self, HeaderMap, HeaderName};
use serde::Deserialize;

/// The most hops of a forwarding chain looked at, counted from the right. More proxies than
/// this in front of one BFF is not a deployment, it is someone padding the header.
pub(crate) const MAX_HOPS: usize = 32;

/// The longest host name passed on (DNS names are at most 253 characters, plus a port).
const MAX_HOST_LEN: usize = 261;

/// An IP network as configured: `10.0.0.0/8`, `2001:db8::/32`, or one address (`127.0.0.1`,
/// `::1`). Host bits must be zero, and `/0` (every address) is refused: trusting everyone would
/// let any client choose its own address again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpNetwork {
    base: IpAddr,
    prefix_len: u8,
}

impl IpNetwork {
    /// Parses `address/prefix-length` or a single address.
    ///
    /// # Errors
    /// A one-line reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let base: IpAddr = address.parse().map_err(|_| {
            format!("{text:?} is not an IP address or network like 10.0.0.0/8 or 2001:db8::/32")
        })?;
        let bits = if base.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => bits,
            Some(digits) => digits
                .parse::<u8>()
                .ok()
                .filter(|p| (1..=bits).contains(p) && digits.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    format!(
                        "{text:?}: the prefix length must be 1 to {bits} (a /0 network would trust every address)"
                    )
                })?,
        };
        let network = Self { base, prefix_len };
        if network.masked(base) != Some(bits_of(base)) {
            return Err(format!(
                "{text:?} has bits set after the prefix; write the network's first address"
            ));
        }
        Ok(network)
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, how a
    /// dual-stack listener sees IPv4 peers) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.masked(ip.to_canonical()) == self.masked(self.base)
    }

    /// `ip` with the bits after the prefix cleared, as a number; `None` for the other family.
    fn masked(&self, ip: IpAddr) -> Option<u128> {
        let (bits, total) = match (self.base, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) => (bits_of(ip), 32),
            (IpAddr::V6(_), IpAddr::V6(_)) => (bits_of(ip), 128),
            _ => return None,
        };
        let host_bits = u32::from(total - self.prefix_len);
        Some(bits & u128::MAX.checked_shl(host_bits).unwrap_or(0))
    }
}

fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl TryFrom<String> for IpNetwork {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl std::fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix_len)
    }
}

/// The header family the trusted proxies write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardingHeaders {
    /// `X-Forwarded-For` (each proxy appends its peer), with `X-Forwarded-Proto` and
    /// `X-Forwarded-Host` (one value, or one per hop); what nginx, HAProxy and most load
    /// balancers write.
    #[default]
    XForwarded,
    /// RFC 7239 `Forwarded` (`for=`, `proto=`, `host=` per hop).
    Forwarded,
}

/// The reverse proxies in front of the BFF whose forwarding headers are believed. The default
/// trusts none: the client is always the direct peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNetwork>,
    headers: ForwardingHeaders,
}

/// What the proxy tells the upstream about the client. `None` fields mean "what this server
/// knows itself": its own scheme, the `Host` it received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ForwardedClient {
    /// The client's address: the peer, or the right-most untrusted hop.
    pub(crate) address: Option<IpAddr>,
    /// `http` or `https`, as a trusted proxy received the request.
    pub(crate) proto: Option<String>,
    /// The `Host` a trusted proxy received.
    pub(crate) host: Option<String>,
}

/// One hop of a forwarding chain: what a proxy wrote about the request it received.
#[derive(Debug, Default)]
struct Hop<'a> {
    address: Option<IpAddr>,
    proto: Option<&'a str>,
    host: Option<&'a str>,
}

impl TrustedProxies {
    /// Proxies in `networks`, writing `headers`.
    pub fn new(networks: Vec<IpNetwork>, headers: ForwardingHeaders) -> Self {
        Self { networks, headers }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }

    /// Whether the direct peer is one of these proxies (an IPv4-mapped address counts as its
    /// IPv4 address). No peer address (a Unix socket) is trusted by no one.
    pub(crate) fn trusts_peer(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusts(ip.to_canonical()))
    }

    /// The client of a request that came from `peer` with `headers` (see the module docs).
    pub(crate) fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> ForwardedClient {
        let peer = peer.map(|ip| ip.to_canonical());
        let just_the_peer = ForwardedClient {
            address: peer,
            ..ForwardedClient::default()
        };
        if !peer.is_some_and(|ip| self.trusts(ip)) {
            return just_the_peer;
        }
        let hops = match self.headers {
            ForwardingHeaders::XForwarded => x_forwarded_hops(headers),
            ForwardingHeaders::Forwarded => forwarded_hops(headers),
        };
        let Some(hops) = hops else {
            return just_the_peer;
        };
        let mut client = None;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            let Some(address) = hop.address else {
                break;
            };
            client = Some(hop);
            if !self.trusts(address) {
                break;
            }
        }
        match client {
            Some(hop) => ForwardedClient {
                address: hop.address,
                proto: hop.proto.and_then(scheme),
                host: hop.host.filter(|h| is_plain_host(h)).map(str::to_owned),
            },
            None => just_the_peer,
        }
    }
}

/// Every value of `name` as text, in order; `None` when one is not visible ASCII.
fn values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Vec<&'a str>> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().ok())
        .collect()
}

/// The list items of every value of `name` (comma-separated, empty items skipped).
fn list_items<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Vec<&'a str>> {
    Some(
        values(headers, name)?
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect(),
    )
}

/// The hops of `X-Forwarded-For`, each with the `X-Forwarded-Proto`/`-Host` value that goes
/// with it: the one at the same position when there is one per hop, the only one when there is
/// a single value, none otherwise (a list that does not line up says nothing reliable).
fn x_forwarded_hops<'a>(headers: &'a HeaderMap) -> Option<Vec<Hop<'a>>> {
    let addresses = list_items(headers, &HeaderName::from_static("x-forwarded-for"))?;
    let protos = list_items(headers, &HeaderName::from_static("x-forwarded-proto"))?;
    let hosts = list_items(headers, &HeaderName::from_static("x-forwarded-host"))?;
    let hop_count = addresses.len();
    let lined_up = |list: &[&'a str], i: usize| -> Option<&'a str> {
        match list.len() {
            1 => list.first().copied(),
            n if n == hop_count => list.get(i).copied(),
            _ => None,
        }
    };
    let hops = addresses
        .iter()
        .enumerate()
        .map(|(i, node)| Hop {
            address: node_address(node),
            proto: lined_up(&protos, i),
            host: lined_up(&hosts, i),
        })
        .collect();
    Some(hops)
}

/// The hops of RFC 7239 `Forwarded`; `None` when its syntax is broken.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Hop<'_>>> {
    let mut hops = Vec::new();
    for value in values(headers, &header::FORWARDED)? {
        for element in forwarded_elements(value)? {
            let mut hop = Hop::default();
            for (name, value) in element {
                if name.eq_ignore_ascii_case("for") {
                    hop.address = node_address(value);
                } else if name.eq_ignore_ascii_case("proto") {
                    hop.proto = Some(value);
                } else if name.eq_ignore_ascii_case("host") {
                    hop.host = Some(value);
                }
            }
            hops.push(hop);
        }
    }
    Some(hops)
}

/// One `Forwarded` value split into elements of `(name, value)` pairs, quotes removed (RFC 7239
/// section 4: `element *( "," element )`, `element = [pair] *( ";" [pair] )`, `pair = token "="
/// ( token / quoted-string )`). `None` on any syntax error, a repeated parameter in one element,
/// or a quoted value with an escape (never needed for an address, scheme or host).
fn forwarded_elements(value: &str) -> Option<Vec<Vec<(&str, &str)>>> {
    let mut elements = Vec::new();
    let mut element: Vec<(&str, &str)> = Vec::new();
    let mut rest = value.trim_start_matches([' ', '\t']);
    loop {
        if let Some(after) = rest.strip_prefix(',') {
            // Empty list elements are allowed and ignored (RFC 9110 section 5.6.1).
            if !element.is_empty() {
                elements.push(std::mem::take(&mut element));
            }
            rest = after.trim_start_matches([' ', '\t']);
            continue;
        }
        if let Some(after) = rest.strip_prefix(';') {
            rest = after.trim_start_matches([' ', '\t']);
            continue;
        }
        if rest.is_empty() {
            break;
        }
        let name_len = rest.bytes().take_while(|&b| is_tchar(b)).count();
        let (name, after_name) = rest.split_at(name_len);
        let after_eq = after_name.strip_prefix('=')?;
        if name.is_empty() || element.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return None;
        }
        let (value, after_value) = if let Some(quoted) = after_eq.strip_prefix('"') {
            let end = quoted.find('"')?;
            let inner = quoted.get(..end)?;
            if inner.contains('\\') {
                return None;
            }
            (inner, quoted.get(end + 1..)?)
        } else {
            let len = after_eq.bytes().take_while(|&b| is_tchar(b)).count();
            if len == 0 {
                return None;
            }
            after_eq.split_at(len)
        };
        element.push((name, value));
        rest = after_value.trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with([',', ';'])) {
            return None;
        }
    }
    if !element.is_empty() {
        elements.push(element);
    }
    Some(elements)
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The IP address of a hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`. `unknown`, obfuscated names (`_hidden`), zones and anything else are
/// `None`.
fn node_address(node: &str) -> Option<IpAddr> {
    let port_ok =
        |port: &str| port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = v6.parse().ok()?;
        if !after.is_empty() && !port_ok(after.strip_prefix(':')?) {
            return None;
        }
        return Some(IpAddr::V6(ip).to_canonical());
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (v4, port) = node.split_once(':')?;
    let ip: Ipv4Addr = v4.parse().ok()?;
    port_ok(port).then_some(IpAddr::V4(ip))
}

/// `http` or `https` in lower case, else `None`.
fn scheme(value: &str) -> Option<String> {
    ["http", "https"]
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(value))
        .map(str::to_owned)
}

/// Only plain host characters (`name`, `name:port`, `[v6]:port`), bounded in length: an
/// `X-Forwarded-Host` repeats a `Host` header and must not smuggle anything else.
pub(crate) fn is_plain_host(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_HOST_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use poem::http::HeaderValue;

    use super::*;

    /// What the case shows, the peer, the request's headers, the client expected.
    type Case<Peer> = (
        &'static str,
        Peer,
        Vec<(&'static str, &'static str)>,
        ForwardedClient,
    );

    fn net(text: &str) -> IpNetwork {
        IpNetwork::parse(text).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    /// Loopback and 10/8 are proxies.
    fn trusted(headers: ForwardingHeaders) -> TrustedProxies {
        TrustedProxies::new(
            vec![net("127.0.0.1"), net("10.0.0.0/8"), net("fd00::/8")],
            headers,
        )
    }

    fn client(address: &str, proto: Option<&str>, host: Option<&str>) -> ForwardedClient {
        ForwardedClient {
            address: Some(ip(address)),
            proto: proto.map(str::to_owned),
            host: host.map(str::to_owned),
        }
    }

    #[test]
    fn networks_parse_strictly() {
        for (text, shown) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("127.0.0.1", "127.0.0.1/32"),
            ("::1", "::1/128"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("192.168.1.128/25", "192.168.1.128/25"),
        ] {
            assert_eq!(net(text).to_string(), shown, "{text}");
        }
        for bad in [
            "",
            "10.0.0.0/0",
            "::/0",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/08x",
            "10.0.0.0/8/8",
            "010.0.0.0/8",
            "10.0.0",
            "[::1]",
            "fe80::1%eth0",
            "localhost",
            "10.0.0.0 /8",
        ] {
            assert!(IpNetwork::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn networks_contain_their_addresses_and_mapped_ipv4() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("10.255.0.1")));
        assert!(ten.contains(ip("::ffff:10.1.2.3")));
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(
            !ten.contains(ip("::a00:1")),
            "IPv4-compatible is not mapped"
        );
        let one = net("127.0.0.1");
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        let v6 = net("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(!net("::1").contains(ip("127.0.0.1")));
    }

    /// Hostile and honest `X-Forwarded-*` chains, from a trusted and an untrusted peer.
    #[test]
    fn x_forwarded_chains_are_believed_only_from_trusted_proxies() {
        let proxies = trusted(ForwardingHeaders::XForwarded);
        let cases: Vec<Case<Option<&str>>> = vec![
            // An untrusted peer: everything it says is ignored.
            (
                "spoofed from an untrusted peer",
                Some("203.0.113.9"),
                vec![
                    ("x-forwarded-for", "1.2.3.4"),
                    ("x-forwarded-proto", "http"),
                    ("x-forwarded-host", "evil.example"),
                ],
                client("203.0.113.9", None, None),
            ),
            (
                "no peer address at all",
                None,
                vec![("x-forwarded-for", "1.2.3.4")],
                ForwardedClient::default(),
            ),
            // A trusted peer: its chain, from the right.
            (
                "one proxy",
                Some("127.0.0.1"),
                vec![
                    ("x-forwarded-for", "198.51.100.7"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "app.example"),
                ],
                client("198.51.100.7", Some("https"), Some("app.example")),
            ),
            (
                "the client prepends a spoofed hop; the proxy appends the truth",
                Some("127.0.0.1"),
                vec![("x-forwarded-for", "6.6.6.6, 198.51.100.7")],
                client("198.51.100.7", None, None),
            ),
            (
                "the client claims to be a trusted proxy itself: still the right-most untrusted",
                Some("127.0.0.1"),
                vec![("x-forwarded-for", "10.0.0.5, 198.51.100.7, 10.1.1.1")],
                client("198.51.100.7", None, None),
            ),
            (
                "many hops, several header lines",
                Some("10.0.0.1"),
                vec![
                    ("x-forwarded-for", "6.6.6.6, 7.7.7.7"),
                    ("x-forwarded-for", "198.51.100.7,10.2.0.1"),
                    ("x-forwarded-for", "10.3.0.1"),
                ],
                client("198.51.100.7", None, None),
            ),
            (
                "every hop trusted: the left-most",
                Some("127.0.0.1"),
                vec![("x-forwarded-for", "10.9.9.9, 10.0.0.2")],
                client("10.9.9.9", None, None),
            ),
            (
                "garbage left of a trusted hop ends the walk there",
                Some("127.0.0.1"),
                vec![("x-forwarded-for", "1.2.3.4, <script>, 10.0.0.2")],
                client("10.0.0.2", None, None),
            ),
            (
                "garbage as the only hop: the peer",
                Some("127.0.0.1"),
                vec![("x-forwarded-for", "not-an-ip")],
                client("127.0.0.1", None, None),
            ),
            (
                "unknown and obfuscated hops are not addresses",
                Some("127.0.0.1"),
                vec![("x-forwarded-for", "1.2.3.4, unknown")],
                client("127.0.0.1", None, None),
            ),
            (
                "a trusted proxy that sent no chain is the client",
                Some("127.0.0.1"),
                vec![("x-forwarded-proto", "http")],
                client("127.0.0.1", None, None),
            ),
            (
                "ports and IPv6, bracketed or not",
                Some("fd00::1"),
                vec![("x-forwarded-for", "[2001:db8::7]:4711")],
                client("2001:db8::7", None, None),
            ),
            (
                "bare IPv6",
                Some("::ffff:10.0.0.1"),
                vec![("x-forwarded-for", "2001:db8::7, 10.0.0.3:80")],
                client("2001:db8::7", None, None),
            ),
            (
                "IPv4 with a port",
                Some("127.0.0.1"),
                vec![("x-forwarded-for", "198.51.100.7:51234")],
                client("198.51.100.7", None, None),
            ),
            (
                "IPv4-mapped client is shown as IPv4",
                Some("127.0.0.1"),
                vec![("x-forwarded-for", "::ffff:198.51.100.7")],
                client("198.51.100.7", None, None),
            ),
            (
                "a zone, an octal-looking address and a bad port are garbage",
                Some("127.0.0.1"),
                vec![(
                    "x-forwarded-for",
                    "fe80::1%eth0, 010.0.0.1, 1.2.3.4:99999, 10.0.0.9",
                )],
                client("10.0.0.9", None, None),
            ),
            (
                "proto and host line up with the hops",
                Some("127.0.0.1"),
                vec![
                    ("x-forwarded-for", "198.51.100.7, 10.0.0.2"),
                    ("x-forwarded-proto", "HTTPS, http"),
                    ("x-forwarded-host", "app.example, internal.lb"),
                ],
                client("198.51.100.7", Some("https"), Some("app.example")),
            ),
            (
                "lists that do not line up say nothing",
                Some("127.0.0.1"),
                vec![
                    ("x-forwarded-for", "198.51.100.7, 10.0.0.2"),
                    ("x-forwarded-proto", "https, http, http"),
                    ("x-forwarded-host", "a.example, b.example, c.example"),
                ],
                client("198.51.100.7", None, None),
            ),
            (
                "a scheme other than http(s) and a host with odd characters are dropped",
                Some("127.0.0.1"),
                vec![
                    ("x-forwarded-for", "198.51.100.7"),
                    ("x-forwarded-proto", "javascript"),
                    ("x-forwarded-host", "evil.example/path?x=<y>"),
                ],
                client("198.51.100.7", None, None),
            ),
            (
                "empty list items are skipped",
                Some("127.0.0.1"),
                vec![("x-forwarded-for", ", 198.51.100.7 ,,")],
                client("198.51.100.7", None, None),
            ),
            (
                "Forwarded is not read when proxies write X-Forwarded-*",
                Some("127.0.0.1"),
                vec![("forwarded", "for=6.6.6.6")],
                client("127.0.0.1", None, None),
            ),
        ];
        for (what, peer, headers, expected) in cases {
            let got = proxies.client(peer.map(ip), &map(&headers));
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn far_too_many_hops_are_not_walked() {
        let proxies = trusted(ForwardingHeaders::XForwarded);
        // 100 trusted hops after the client: the walk stops after MAX_HOPS of them.
        let mut chain = vec!["198.51.100.7".to_owned()];
        chain.extend((0..100).map(|i| format!("10.0.0.{}", i % 250 + 1)));
        let headers = map(&[("x-forwarded-for", &chain.join(","))]);
        let got = proxies.client(Some(ip("127.0.0.1")), &headers);
        let expected = chain.get(chain.len() - MAX_HOPS).unwrap();
        assert_eq!(got.address, Some(ip(expected)));
        assert_ne!(got.address, Some(ip("198.51.100.7")));
    }

    #[test]
    fn binary_header_values_count_for_nothing() {
        let proxies = trusted(ForwardingHeaders::XForwarded);
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"198.51.100.7 \xff").unwrap(),
        );
        let got = proxies.client(Some(ip("127.0.0.1")), &headers);
        assert_eq!(got, client("127.0.0.1", None, None));
    }

    /// RFC 7239 `Forwarded`, honest and hostile.
    #[test]
    fn forwarded_chains_are_believed_only_from_trusted_proxies() {
        let proxies = trusted(ForwardingHeaders::Forwarded);
        let cases: Vec<Case<&str>> = vec![
            (
                "spoofed from an untrusted peer",
                "203.0.113.9",
                vec![("forwarded", "for=1.2.3.4;proto=http;host=evil.example")],
                client("203.0.113.9", None, None),
            ),
            (
                "one proxy, every parameter",
                "127.0.0.1",
                vec![(
                    "forwarded",
                    "for=198.51.100.7;proto=https;host=app.example;by=10.0.0.1",
                )],
                client("198.51.100.7", Some("https"), Some("app.example")),
            ),
            (
                "quoted IPv6 with a port, case-insensitive names",
                "127.0.0.1",
                vec![("forwarded", r#"For="[2001:db8:cafe::17]:4711";PROTO=http"#)],
                client("2001:db8:cafe::17", Some("http"), None),
            ),
            (
                "the right-most untrusted element, and its own proto and host",
                "10.0.0.1",
                vec![
                    ("forwarded", "for=6.6.6.6;host=evil.example"),
                    (
                        "forwarded",
                        r#"for=198.51.100.7;proto=https;host=app.example, for="10.0.0.2:80";proto=http;host=lb.internal"#,
                    ),
                ],
                client("198.51.100.7", Some("https"), Some("app.example")),
            ),
            (
                "unknown ends the walk at the trusted hop",
                "127.0.0.1",
                vec![("forwarded", "for=1.2.3.4, for=unknown, for=10.0.0.2")],
                client("10.0.0.2", None, None),
            ),
            (
                "an obfuscated identifier is not an address",
                "127.0.0.1",
                vec![("forwarded", "for=_hidden")],
                client("127.0.0.1", None, None),
            ),
            (
                "an element without for= is not an address",
                "127.0.0.1",
                vec![("forwarded", "proto=https;host=app.example")],
                client("127.0.0.1", None, None),
            ),
            (
                "unquoted IPv6 breaks the syntax: the whole header counts for nothing",
                "127.0.0.1",
                vec![("forwarded", "for=198.51.100.7, for=[2001:db8::1]")],
                client("127.0.0.1", None, None),
            ),
            (
                "an unterminated quote",
                "127.0.0.1",
                vec![("forwarded", r#"for="198.51.100.7"#)],
                client("127.0.0.1", None, None),
            ),
            (
                "a repeated parameter in one element",
                "127.0.0.1",
                vec![("forwarded", "for=6.6.6.6;for=198.51.100.7")],
                client("127.0.0.1", None, None),
            ),
            (
                "a quoted value with an escape",
                "127.0.0.1",
                vec![("forwarded", r#"for="198.51.100.7\";host=x""#)],
                client("127.0.0.1", None, None),
            ),
            (
                "junk after a value",
                "127.0.0.1",
                vec![("forwarded", r#"for="198.51.100.7"x"#)],
                client("127.0.0.1", None, None),
            ),
            (
                "a pair without a value",
                "127.0.0.1",
                vec![("forwarded", "for=;proto=https")],
                client("127.0.0.1", None, None),
            ),
            (
                "empty elements and pairs are allowed",
                "127.0.0.1",
                vec![("forwarded", " , for=198.51.100.7;;proto=https ,")],
                client("198.51.100.7", Some("https"), None),
            ),
            (
                "X-Forwarded-* is not read when proxies write Forwarded",
                "127.0.0.1",
                vec![("x-forwarded-for", "6.6.6.6")],
                client("127.0.0.1", None, None),
            ),
        ];
        for (what, peer, headers, expected) in cases {
            let got = proxies.client(Some(ip(peer)), &map(&headers));
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn nobody_is_trusted_by_default() {
        let headers = map(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=1.2.3.4")]);
        let got = TrustedProxies::default().client(Some(ip("127.0.0.1")), &headers);
        assert_eq!(got, client("127.0.0.1", None, None));
    }
}
