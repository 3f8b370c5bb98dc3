//! The browser a session belongs to, as far as the BFF can tell: the optional client binding
//! (off by default) and the short user-agent summary operators see in the admin listing.
//!
//! A binding is a SHA-256 over the `User-Agent` and, when configured, the client address cut to
//! a prefix (`/24` for IPv4, `/64` for IPv6, say, so a phone moving between addresses of one
//! network keeps its session). It is taken at login, stored with the session, and compared on
//! every request: a stolen cookie replayed from another browser or network no longer works
//! (`strict`) or at least shows in the log (`warn`). It is a hurdle, not proof: both inputs are
//! sent by the client and a thief can copy a `User-Agent`.
//!
//! The summary (`"Firefox 133 on Linux"`) is built from a fixed vocabulary plus a major version
//! of at most four digits, so nothing the client wrote reaches an operator verbatim.

use std::fmt;
use std::net::IpAddr;

use crate::ids::hex_sha256;
use crate::secret::constant_time_eq;

/// What the HTTP layer knows about the client of a request.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientContext {
    /// The `User-Agent` header, when sent and readable.
    pub user_agent: Option<String>,
    /// The client's address: the peer, or the right-most untrusted hop written by trusted
    /// proxies.
    pub address: Option<IpAddr>,
}

impl fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not secrets, but personal data: the summary is enough for a debug line.
        f.debug_struct("ClientContext")
            .field(
                "user_agent",
                &self.user_agent.as_deref().map(user_agent_summary),
            )
            .finish_non_exhaustive()
    }
}

/// What a binding mismatch does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BindingMode {
    /// No binding is taken or checked.
    #[default]
    Off,
    /// A mismatch is reported to the host (which logs it); the request goes on.
    Warn,
    /// A mismatch ends the session.
    Strict,
}

/// How sessions are bound to their client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ClientBindingPolicy {
    mode: BindingMode,
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
}

/// An address prefix length out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} prefix length must be 0..={1}")]
pub struct InvalidPrefix(&'static str, u8);

/// The stored binding of a session: hex SHA-256, never the inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientBinding(String);

impl ClientBinding {
    /// Rebuilds a binding read back from a store.
    ///
    /// # Errors
    /// `MalformedCredential` unless the value is 64 lowercase hex digits.
    pub fn from_stored(value: &str) -> Result<Self, crate::ids::MalformedCredential> {
        crate::ids::SessionKey::from_stored(value)
            .map(|_| Self(value.to_owned()))
            .map_err(|_| crate::ids::MalformedCredential::new("client binding"))
    }

    /// The hex digest, as stores keep it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The outcome of comparing a request's client with the session's binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingCheck {
    /// The policy is off, or the session carries no binding (made before binding was on).
    NotChecked,
    /// Same client.
    Matches,
    /// Another `User-Agent` or address prefix.
    Mismatch,
}

impl ClientBindingPolicy {
    /// A policy; `ipv4_prefix` (0..=32) and `ipv6_prefix` (0..=128) add the address prefix to
    /// the binding (`None`: the address is not part of it).
    ///
    /// # Errors
    /// [`InvalidPrefix`] for a length out of range.
    pub fn new(
        mode: BindingMode,
        ipv4_prefix: Option<u8>,
        ipv6_prefix: Option<u8>,
    ) -> Result<Self, InvalidPrefix> {
        if ipv4_prefix.is_some_and(|p| p > 32) {
            return Err(InvalidPrefix("IPv4", 32));
        }
        if ipv6_prefix.is_some_and(|p| p > 128) {
            return Err(InvalidPrefix("IPv6", 128));
        }
        Ok(Self {
            mode,
            ipv4_prefix,
            ipv6_prefix,
        })
    }

    /// What a mismatch does.
    pub fn mode(&self) -> BindingMode {
        self.mode
    }

    /// The binding to store for a session made by `client`; `None` when binding is off.
    pub fn binding_for(&self, client: &ClientContext) -> Option<ClientBinding> {
        (self.mode != BindingMode::Off).then(|| ClientBinding(self.fingerprint(client)))
    }

    /// Compares `client` with the session's `stored` binding, in constant time.
    pub fn check(&self, stored: Option<&ClientBinding>, client: &ClientContext) -> BindingCheck {
        match (self.mode, stored) {
            (BindingMode::Off, _) | (_, None) => BindingCheck::NotChecked,
            (_, Some(stored)) => {
                if constant_time_eq(
                    self.fingerprint(client).as_bytes(),
                    stored.as_str().as_bytes(),
                ) {
                    BindingCheck::Matches
                } else {
                    BindingCheck::Mismatch
                }
            }
        }
    }

    /// SHA-256 over a label, the `User-Agent` and the address prefix, each length-prefixed so
    /// no choice of header splits differently.
    fn fingerprint(&self, client: &ClientContext) -> String {
        let user_agent = client.user_agent.as_deref().unwrap_or("");
        let network = self.network_of(client.address);
        hex_sha256(
            format!(
                "bff-client-binding/v1:{}:{user_agent}:{}:{network}",
                user_agent.len(),
                network.len()
            )
            .as_bytes(),
        )
    }

    /// `"203.0.113.0/24"`-style text of the address prefix; `""` when the address is not part
    /// of the binding, `"?"` when it is but the address is unknown.
    fn network_of(&self, address: Option<IpAddr>) -> String {
        if self.ipv4_prefix.is_none() && self.ipv6_prefix.is_none() {
            return String::new();
        }
        match address.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(v4)) => match self.ipv4_prefix {
                Some(bits) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                    let masked = std::net::Ipv4Addr::from(u32::from(v4) & mask);
                    format!("{masked}/{bits}")
                }
                None => "v4".to_owned(),
            },
            Some(IpAddr::V6(v6)) => match self.ipv6_prefix {
                Some(bits) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                    let masked = std::net::Ipv6Addr::from(u128::from(v6) & mask);
                    format!("{masked}/{bits}")
                }
                None => "v6".to_owned(),
            },
            None => "?".to_owned(),
        }
    }
}

/// Longest version number the summary shows.
const MAX_VERSION_DIGITS: usize = 4;

/// A short, safe description of a `User-Agent` for operators: `"Chrome 131 on Linux"`,
/// `"Firefox 133 on Windows"`, `"Safari 17 on iOS"`, `"curl 8 on unknown OS"`, `"Other"`.
/// Only fixed words and a major version of at most four digits come out, whatever came in.
pub fn user_agent_summary(user_agent: &str) -> String {
    // Order matters: Edge and Opera also say Chrome; Chrome also says Safari.
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("EdgiOS/", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
        ("curl/", "curl"),
    ];
    const SYSTEMS: &[(&str, &str)] = &[
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Macintosh", "macOS"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS.iter().find_map(|(marker, name)| {
        let at = user_agent.find(marker)?;
        if *name == "Safari" && !user_agent.contains("Safari/") {
            return None;
        }
        let digits: String = user_agent[at + marker.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(if digits.is_empty() || digits.len() > MAX_VERSION_DIGITS {
            (*name).to_owned()
        } else {
            format!("{name} {digits}")
        })
    });
    let system = SYSTEMS
        .iter()
        .find(|(marker, _)| user_agent.contains(marker))
        .map(|(_, name)| *name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => format!("{browser} on unknown OS"),
        (None, Some(system)) => format!("Other on {system}"),
        (None, None) => "Other".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(ua: &str, address: &str) -> ClientContext {
        ClientContext {
            user_agent: Some(ua.to_owned()),
            address: address.parse().ok(),
        }
    }

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

    #[test]
    fn summaries_table() {
        let cases = [
            (FIREFOX, "Firefox 133 on Linux"),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Chrome 131 on Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
                "Edge 131 on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari 17 on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome 131 on Android",
            ),
            ("curl/8.5.0", "curl 8 on unknown OS"),
            ("", "Other"),
            // Hostile input: nothing of it comes out but fixed words and short digits.
            ("<script>alert(1)</script>", "Other"),
            ("Chrome/99999999999 Linux\r\nX-Evil: 1", "Chrome on Linux"),
            ("Firefox/1<img src=x>", "Firefox 1 on unknown OS"),
            ("Firefox/\u{202e}133", "Firefox on unknown OS"),
        ];
        for (ua, expected) in cases {
            assert_eq!(user_agent_summary(ua), expected, "{ua:?}");
        }
        let long = format!("Chrome/131 {}", "A".repeat(100_000));
        assert_eq!(user_agent_summary(&long), "Chrome 131 on unknown OS");
    }

    #[test]
    fn binding_is_off_by_default_and_then_takes_and_checks_nothing() {
        let policy = ClientBindingPolicy::default();
        assert_eq!(policy.binding_for(&client(FIREFOX, "192.0.2.1")), None);
        let stored = ClientBindingPolicy::new(BindingMode::Strict, None, None)
            .unwrap()
            .binding_for(&client(FIREFOX, "192.0.2.1"));
        assert_eq!(
            policy.check(stored.as_ref(), &client("other", "192.0.2.1")),
            BindingCheck::NotChecked
        );
    }

    /// (IPv4 prefix, IPv6 prefix, login client, request client, expected).
    type BindingCase = (
        Option<u8>,
        Option<u8>,
        (&'static str, &'static str),
        (&'static str, &'static str),
        BindingCheck,
    );

    #[test]
    fn binding_table() {
        // (ipv4 prefix, ipv6 prefix, login client, request client, expected)
        let cases: &[BindingCase] = &[
            (
                None,
                None,
                (FIREFOX, "192.0.2.1"),
                (FIREFOX, "198.51.100.9"),
                BindingCheck::Matches,
            ),
            (
                None,
                None,
                (FIREFOX, "192.0.2.1"),
                ("curl/8", "192.0.2.1"),
                BindingCheck::Mismatch,
            ),
            (None, None, (FIREFOX, ""), ("", ""), BindingCheck::Mismatch),
            (
                Some(24),
                None,
                (FIREFOX, "192.0.2.1"),
                (FIREFOX, "192.0.2.200"),
                BindingCheck::Matches,
            ),
            (
                Some(24),
                None,
                (FIREFOX, "192.0.2.1"),
                (FIREFOX, "192.0.3.1"),
                BindingCheck::Mismatch,
            ),
            (
                Some(24),
                None,
                (FIREFOX, "192.0.2.1"),
                (FIREFOX, "::ffff:192.0.2.7"),
                BindingCheck::Matches,
            ),
            (
                Some(32),
                None,
                (FIREFOX, "192.0.2.1"),
                (FIREFOX, "192.0.2.2"),
                BindingCheck::Mismatch,
            ),
            (
                Some(0),
                None,
                (FIREFOX, "192.0.2.1"),
                (FIREFOX, "203.0.113.1"),
                BindingCheck::Matches,
            ),
            (
                None,
                Some(64),
                (FIREFOX, "2001:db8:1:2::1"),
                (FIREFOX, "2001:db8:1:2:ffff::9"),
                BindingCheck::Matches,
            ),
            (
                None,
                Some(64),
                (FIREFOX, "2001:db8:1:2::1"),
                (FIREFOX, "2001:db8:1:3::1"),
                BindingCheck::Mismatch,
            ),
            // An address family moved (v6 to v4) is another network.
            (
                Some(24),
                Some(64),
                (FIREFOX, "2001:db8::1"),
                (FIREFOX, "192.0.2.1"),
                BindingCheck::Mismatch,
            ),
            // An unknown address never matches a known one.
            (
                Some(24),
                None,
                (FIREFOX, "192.0.2.1"),
                (FIREFOX, ""),
                BindingCheck::Mismatch,
            ),
            // A User-Agent cannot be crafted to move the address part (length prefixes).
            (
                Some(24),
                None,
                ("a:1", "192.0.2.1"),
                ("a", "192.0.2.1"),
                BindingCheck::Mismatch,
            ),
        ];
        for &(v4, v6, login, request, expected) in cases {
            let policy = ClientBindingPolicy::new(BindingMode::Strict, v4, v6).unwrap();
            let stored = policy.binding_for(&client(login.0, login.1));
            let got = policy.check(stored.as_ref(), &client(request.0, request.1));
            assert_eq!(got, expected, "{v4:?} {v6:?} {login:?} {request:?}");
        }
    }

    #[test]
    fn the_binding_is_a_hash_without_its_inputs_and_bad_prefixes_are_refused() {
        let policy = ClientBindingPolicy::new(BindingMode::Warn, Some(24), None).unwrap();
        let binding = policy.binding_for(&client(FIREFOX, "192.0.2.1")).unwrap();
        assert_eq!(binding.as_str().len(), 64);
        assert!(!binding.as_str().contains("192"));
        assert_eq!(
            ClientBinding::from_stored(binding.as_str()).unwrap(),
            binding
        );
        assert!(ClientBinding::from_stored("nope").is_err());
        assert!(ClientBindingPolicy::new(BindingMode::Strict, Some(33), None).is_err());
        assert!(ClientBindingPolicy::new(BindingMode::Strict, None, Some(129)).is_err());
        assert!(!format!("{:?}", client(FIREFOX, "192.0.2.1")).contains("192"));
    }
}
