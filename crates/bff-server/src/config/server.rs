//! `[server]` (addresses), `[http]` (the HTTP surface) and `[dev]` (development switches).

use std::net::SocketAddr;
use std::path::PathBuf;

use bff_http::{ForwardingHeaders, IpNetwork};
use bff_oidc::HttpUrl;
use serde::{Deserialize, Deserializer};

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `listen`: socket address to listen on; default `127.0.0.1:8080`.
    #[serde(default = "default_listen", deserialize_with = "socket_address")]
    pub listen: SocketAddr,
    /// `public_url`: the origin browsers use to reach the BFF, e.g. `https://app.example`.
    /// The callback is `{public_url}{prefix}/callback`.
    pub public_url: PublicUrl,
    /// `app_redirect_url`: `redirect_uri` for API-driven logins (an app page that calls
    /// `/login/end`); default `{public_url}/`.
    #[serde(default)]
    pub app_redirect_url: Option<HttpUrl>,
    /// `static_dir`: a folder of static files to serve at `/` (the app, or the sample page).
    #[serde(default)]
    pub static_dir: Option<PathBuf>,
    /// `trusted_proxies`: the reverse proxies in front of the BFF, as networks or addresses
    /// (`["10.0.0.0/8", "127.0.0.1"]`). When the direct peer is one of them, the API proxy takes
    /// the client's address, scheme and host from the forwarding headers they write (the
    /// right-most hop that is not a trusted proxy); from any other peer those headers are
    /// ignored. Default: none, so the client is always the direct peer. `/0` is refused.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNetwork>,
    /// `trusted_proxy_headers`: the headers the trusted proxies write, `x-forwarded`
    /// (`X-Forwarded-For`/`-Proto`/`-Host`, the default) or `forwarded` (RFC 7239). Only that
    /// family is read: a proxy that does not touch the other leaves it as the client sent it.
    #[serde(default)]
    pub trusted_proxy_headers: ForwardingHeaders,
    /// `shutdown_timeout_secs`: on SIGTERM or Ctrl-C, how long in-flight requests (proxied
    /// streams included) may run before they are cut; default 30, not zero.
    #[serde(
        default = "default_shutdown_timeout",
        deserialize_with = "super::reader::greater_than_zero"
    )]
    pub shutdown_timeout_secs: u64,
    /// `shutdown_delay_secs`: on SIGTERM or Ctrl-C, how long the server keeps accepting
    /// requests with `/readyz` answering `503 draining` before it stops accepting, so a load
    /// balancer that polls `/readyz` moves traffic away first; default 0 (stop at once).
    #[serde(default)]
    pub shutdown_delay_secs: u64,
    /// `max_header_bytes`: the largest request head (request line and headers) a client may
    /// send; a larger one is `431 headers_too_large`. Default 32768.
    #[serde(
        default = "default_max_header_bytes",
        deserialize_with = "super::reader::greater_than_zero"
    )]
    pub max_header_bytes: usize,
    /// `max_headers`: the most header fields a request may carry; more is
    /// `431 headers_too_large`. Default 100.
    #[serde(
        default = "default_max_headers",
        deserialize_with = "super::reader::greater_than_zero"
    )]
    pub max_headers: usize,
    /// `header_read_timeout_secs`: how long a client has to send a complete request head, and
    /// how long a kept-alive connection may wait for its next request, before it is
    /// disconnected (slow clients hold no connection for long). Default 30, not zero.
    #[serde(
        default = "default_header_read_timeout",
        deserialize_with = "super::reader::greater_than_zero"
    )]
    pub header_read_timeout_secs: u64,
    /// `body_read_timeout_secs`: how long a client has to send the body of a `/bff` request once
    /// its head has arrived; past it, `408 request_timeout` and the connection is closed. API
    /// proxy bodies are bounded by their route's `timeout_ms`. Default 30, not zero.
    #[serde(
        default = "default_body_read_timeout",
        deserialize_with = "super::reader::greater_than_zero"
    )]
    pub body_read_timeout_secs: u64,
}

fn default_shutdown_timeout() -> u64 {
    30
}

fn default_max_header_bytes() -> usize {
    bff_http::DEFAULT_MAX_HEADER_BYTES
}

fn default_max_headers() -> usize {
    bff_http::DEFAULT_MAX_HEADERS
}

fn default_header_read_timeout() -> u64 {
    bff_http::DEFAULT_HEADER_READ_TIMEOUT.as_secs()
}

fn default_body_read_timeout() -> u64 {
    bff_http::DEFAULT_BODY_READ_TIMEOUT.as_secs()
}

impl ServerConfig {
    /// The request head limits of `[server]`.
    pub fn request_limits(&self) -> bff_http::RequestLimits {
        bff_http::RequestLimits {
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
            body_read_timeout: std::time::Duration::from_secs(self.body_read_timeout_secs),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn socket_address<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "must be an address like 127.0.0.1:8080 or [::]:8080, got {text:?}"
        ))
    })
}

/// The public origin of the BFF: `http(s)://host[:port]` without path, query, fragment or
/// credentials, kept without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Checks that `text` is an http(s) origin.
    ///
    /// # Errors
    /// A one-line reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(text).map_err(|e| format!("{text:?} is not an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "https" | "http") || !url.has_host() {
            return Err(format!("{text:?} must be an http:// or https:// URL"));
        }
        let bare = matches!(url.path(), "" | "/")
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !bare {
            return Err(format!(
                "{text:?} must be an origin like https://app.example, without a path"
            ));
        }
        Ok(Self(url.origin().ascii_serialization()))
    }

    /// `scheme://host[:port]`, no trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `http://` (allowed only with `dev.allow_plain_http`).
    pub fn is_plain_http(&self) -> bool {
        self.0.starts_with("http://")
    }
}

impl TryFrom<String> for PublicUrl {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `prefix`: path prefix of the BFF endpoints; default `/bff`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// `session_cookie`: session cookie name; default `__Host-Http-bff` (`bff` in plain-HTTP
    /// dev mode).
    #[serde(default)]
    pub session_cookie: Option<String>,
    /// `binding_cookie`: login-binding cookie name; default `__Host-Http-bff-login`
    /// (`bff-login` in dev mode).
    #[serde(default)]
    pub binding_cookie: Option<String>,
    /// `app_origins`: origins whose pages may call the BFF; default the origin of
    /// `server.public_url`.
    #[serde(default)]
    pub app_origins: Vec<String>,
    /// `api_explorer_path`: where the API explorer (Swagger UI for the `/bff` OpenAPI document)
    /// is served; default `{prefix}/explorer` in plain-HTTP development mode, off otherwise.
    #[serde(default, deserialize_with = "explorer_path")]
    pub api_explorer_path: Option<String>,
}

fn explorer_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let path = String::deserialize(deserializer)?;
    let valid = path.len() > 1
        && path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'))
        && !path.split('/').any(|s| s == "." || s == "..");
    if valid {
        Ok(Some(path))
    } else {
        Err(serde::de::Error::custom(format!(
            "{path:?} must be a path like /bff/explorer: letters, digits, '-', '_', '.', '~' \
             between single slashes, no trailing slash"
        )))
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
            session_cookie: None,
            binding_cookie: None,
            app_origins: Vec::new(),
            api_explorer_path: None,
        }
    }
}

fn default_prefix() -> String {
    "/bff".into()
}

/// `[dev]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevConfig {
    /// `allow_plain_http`: allow `http://` public URL, app origins and issuers. Drops `Secure`
    /// and the `__Host-` cookie prefix. For local development only; the server warns at start.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// `allow_nonconformant`: start even when the conformance self-check finds a MUST of
    /// draft-ietf-oauth-browser-based-apps section 6.1 violated by a setting other than plain
    /// HTTP (today: a session cookie name without `__Host-Http-`). For development only; the
    /// server says so at start.
    #[serde(default)]
    pub allow_nonconformant: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_bare_origins() {
        for (text, origin) in [
            ("https://app.example", "https://app.example"),
            ("https://app.example/", "https://app.example"),
            ("https://APP.example:443", "https://app.example"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ] {
            assert_eq!(PublicUrl::parse(text).unwrap().as_str(), origin, "{text}");
        }
        assert!(
            PublicUrl::parse("http://127.0.0.1:8080")
                .unwrap()
                .is_plain_http()
        );
        for bad in [
            "app.example",
            "ftp://app.example",
            "https://app.example/app",
            "https://app.example/?x=1",
            "https://app.example/#x",
            "https://user:pw@app.example",
            "javascript:alert(1)",
            "",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
