//! HTTP settings: path prefix, cookie names and security attributes, allowed app origins,
//! request head limits.

use url::Url;

use crate::proxy::TrustedProxies;

/// Settings of the HTTP surface, validated by [`HttpSettings::validate`].
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Path prefix of the BFF endpoints, e.g. `/bff`.
    pub prefix: String,
    /// Session cookie name, `__Host-Http-bff` by default.
    pub session_cookie: String,
    /// Login-binding cookie name, `__Host-Http-bff-login` by default.
    pub binding_cookie: String,
    /// Post-logout state cookie name, `__Host-Http-bff-logout` by default.
    pub logout_cookie: String,
    /// `false` only in plain-HTTP development mode: drops `Secure` (and the `__Host-` prefix).
    pub secure_cookies: bool,
    /// Origins (`scheme://host[:port]`) whose pages may call the BFF.
    pub app_origins: Vec<String>,
    /// Some app origin is not the BFF's own (the SPA on `app.example.com`, the BFF on
    /// `bff.example.com`): answer CORS, with credentials and never `*`, for the app origins
    /// only. Off when every app origin is the BFF's own, which needs no CORS.
    pub cors: bool,
    /// The reverse proxies in front of the BFF: their forwarding headers (who the client is, for
    /// the client binding of sessions) and `traceparent` are believed; nobody's by default.
    pub trusted_proxies: TrustedProxies,
    /// Request head size and count limits, checked before any endpoint runs.
    pub request_limits: crate::RequestLimits,
}

/// A settings problem, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The prefix is not `/name`.
    #[error("must start with '/' and not end with '/', got {0:?}")]
    BadPrefix(String),
    /// A cookie name is empty or has characters cookies do not allow.
    #[error("cookie name {0:?} is not a valid cookie name")]
    BadCookieName(String),
    /// A `__Host-`/`__Secure-` name without `Secure`: browsers would drop the cookie.
    #[error(
        "cookie name {0:?} needs the Secure attribute, which plain-HTTP dev mode drops; rename it or serve over HTTPS"
    )]
    PrefixNeedsSecure(String),
    /// An app origin is not an origin.
    #[error("app origin {0:?} must be scheme://host[:port] with no path")]
    BadOrigin(String),
    /// An `http://` origin outside dev mode.
    #[error(
        "app origin {0:?} is plain http; set dev.allow_plain_http = true for local development only"
    )]
    PlainHttpOrigin(String),
}

impl HttpSettings {
    /// Checks the rules browsers and this BFF depend on; every problem is returned.
    pub fn validate(&self) -> Vec<SettingsError> {
        let mut problems = Vec::new();
        if !self.prefix.starts_with('/') || self.prefix.ends_with('/') || self.prefix.len() < 2 {
            problems.push(SettingsError::BadPrefix(self.prefix.clone()));
        }
        for name in [
            &self.session_cookie,
            &self.binding_cookie,
            &self.logout_cookie,
        ] {
            let valid = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'!')
                });
            if !valid {
                problems.push(SettingsError::BadCookieName(name.clone()));
            } else if !self.secure_cookies
                && (name.starts_with("__Host-") || name.starts_with("__Secure-"))
            {
                problems.push(SettingsError::PrefixNeedsSecure(name.clone()));
            }
        }
        for origin in &self.app_origins {
            match normalize_origin(origin) {
                Some(normalized) if normalized.starts_with("http://") && self.secure_cookies => {
                    problems.push(SettingsError::PlainHttpOrigin(origin.clone()));
                }
                Some(_) => {}
                None => problems.push(SettingsError::BadOrigin(origin.clone())),
            }
        }
        problems
    }

    /// Whether `origin` (as a browser sends it) is one of the app origins.
    pub fn is_app_origin(&self, origin: &str) -> bool {
        normalize_origin(origin).is_some_and(|o| {
            self.app_origins
                .iter()
                .any(|a| normalize_origin(a).as_deref() == Some(o.as_str()))
        })
    }
}

/// Whether two origins are the same once written the way browsers send `Origin`; `false` when
/// either is not a bare origin.
pub fn same_origin(a: &str, b: &str) -> bool {
    match (normalize_origin(a), normalize_origin(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `scheme://host[:port]` in canonical form, or `None` when the value is not a bare origin.
pub(crate) fn normalize_origin(value: &str) -> Option<String> {
    let url = Url::parse(value).ok()?;
    let bare = matches!(url.path(), "" | "/") && url.query().is_none() && url.fragment().is_none();
    let web = matches!(url.scheme(), "http" | "https");
    if !bare
        || !web
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secure: bool) -> HttpSettings {
        HttpSettings {
            prefix: "/bff".into(),
            session_cookie: "__Host-Http-bff".into(),
            binding_cookie: "__Host-Http-bff-login".into(),
            logout_cookie: "__Host-Http-bff-logout".into(),
            secure_cookies: secure,
            app_origins: vec!["https://app.example".into()],
            cors: false,
            trusted_proxies: Default::default(),
            request_limits: crate::RequestLimits::default(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(settings(true).validate(), vec![]);
    }

    #[test]
    fn host_prefix_without_secure_is_refused() {
        let problems = settings(false).validate();
        assert!(problems.contains(&SettingsError::PrefixNeedsSecure("__Host-Http-bff".into())));
    }

    #[test]
    fn plain_http_origins_need_dev_mode() {
        let mut s = settings(true);
        s.app_origins = vec!["http://app.example".into()];
        assert_eq!(
            s.validate(),
            vec![SettingsError::PlainHttpOrigin("http://app.example".into())]
        );
    }

    #[test]
    fn origins_are_compared_canonically_and_strictly() {
        let s = settings(true);
        assert!(s.is_app_origin("https://app.example"));
        assert!(s.is_app_origin("https://APP.example:443"));
        for other in [
            "https://app.example.evil",
            "https://evil.example",
            "http://app.example",
            "https://app.example:8443",
            "null",
            "",
        ] {
            assert!(!s.is_app_origin(other), "{other}");
        }
    }

    #[test]
    fn bad_values_are_reported_each() {
        let s = HttpSettings {
            prefix: "bff/".into(),
            session_cookie: "a b".into(),
            binding_cookie: "ok".into(),
            logout_cookie: "ok-logout".into(),
            secure_cookies: true,
            app_origins: vec!["https://app.example/path".into()],
            cors: false,
            trusted_proxies: Default::default(),
            request_limits: crate::RequestLimits::default(),
        };
        assert_eq!(s.validate().len(), 3);
    }
}
