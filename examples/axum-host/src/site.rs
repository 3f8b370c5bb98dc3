//! Where browsers reach the host: its public origin decides the callback URL, the `Origin` that
//! unsafe requests must carry, and whether cookies are `Secure` with the `__Host-` prefix.

use std::net::IpAddr;

use url::{Host, Url};

/// The host's public origin (`https://app.example`, or `http://127.0.0.1:3000` for development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicSite {
    origin: String,
    secure: bool,
}

/// The public URL is not a usable origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "public URL {0:?} must be an https origin without credentials, path, query or fragment \
     (plain http only on a loopback address)"
)]
pub struct InvalidPublicUrl(String);

impl PublicSite {
    /// Parses the public URL: `https://host[:port]`, or `http://` with a loopback host.
    ///
    /// # Errors
    /// [`InvalidPublicUrl`] for another scheme, credentials, a path other than `/`, a query, a
    /// fragment, or plain `http` on a host that is not loopback (cookies there would travel in
    /// the clear).
    pub fn parse(public_url: &str) -> Result<Self, InvalidPublicUrl> {
        let refuse = || InvalidPublicUrl(public_url.to_owned());
        let url = Url::parse(public_url).map_err(|_| refuse())?;
        let bare = url.username().is_empty()
            && url.password().is_none()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none();
        if !bare {
            return Err(refuse());
        }
        let secure = match url.scheme() {
            "https" => true,
            "http" if is_loopback(url.host()) => false,
            _ => return Err(refuse()),
        };
        Ok(Self {
            origin: url.origin().ascii_serialization(),
            secure,
        })
    }

    /// `scheme://host[:port]`, as browsers send it in `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the site is served over https (cookies get `Secure` and `__Host-`).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The absolute URL of `path` (which starts with `/`) on this site.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_origins_and_loopback_http_are_accepted() {
        let site = PublicSite::parse("https://app.example").unwrap();
        assert_eq!(site.origin(), "https://app.example");
        assert!(site.is_secure());
        assert_eq!(site.url("/callback"), "https://app.example/callback");

        let site = PublicSite::parse("https://App.Example:8443/").unwrap();
        assert_eq!(site.origin(), "https://app.example:8443");

        for dev in [
            "http://127.0.0.1:3000",
            "http://127.1.2.3:3000/",
            "http://localhost:3000",
            "http://[::1]:3000",
        ] {
            let site = PublicSite::parse(dev).unwrap();
            assert!(!site.is_secure(), "{dev}");
        }
        assert_eq!(
            PublicSite::parse("http://127.0.0.1:3000/")
                .unwrap()
                .origin(),
            "http://127.0.0.1:3000"
        );
    }

    #[test]
    fn hostile_or_unusable_public_urls_are_refused() {
        for bad in [
            "",
            "app.example",
            "/relative",
            "http://app.example",
            "http://10.0.0.1:3000",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "ftp://app.example",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://user:pw@app.example",
            "https://user@app.example",
            "https://app.example/bff",
            "https://app.example/?x=1",
            "https://app.example/#frag",
            "file:///etc/passwd",
        ] {
            assert_eq!(
                PublicSite::parse(bad),
                Err(InvalidPublicUrl(bad.to_owned())),
                "{bad:?}"
            );
        }
    }
}
