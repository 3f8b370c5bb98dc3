//! Where the browser may be sent after login: local paths only.
//!
//! An open redirect on the login endpoint would let an attacker use the BFF's origin to phish, so
//! the rule is strict: the value must be an absolute path on this origin. Schemes, `//host`,
//! backslashes (which browsers treat as slashes), control characters and whitespace (which
//! browsers strip, turning `/\t/evil` into `//evil`) are refused.

use url::Url;

/// A local path (with optional query and fragment) to return to after login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnUrl(String);

/// Why a return URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("returnUrl must be a local path starting with a single '/'")]
pub struct UnsafeReturnUrl;

const MAX_LEN: usize = 2048;
const PROBE_ORIGIN: &str = "https://bff.invalid";

impl ReturnUrl {
    /// The app's root, `/`.
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    /// Parses a candidate return URL.
    ///
    /// # Errors
    /// [`UnsafeReturnUrl`] for anything but a local path.
    pub fn parse(value: &str) -> Result<Self, UnsafeReturnUrl> {
        let bytes = value.as_bytes();
        let shape_ok = value.len() <= MAX_LEN
            && bytes.first() == Some(&b'/')
            && !matches!(bytes.get(1), Some(b'/') | Some(b'\\'))
            && !bytes
                .iter()
                .any(|&b| b == b'\\' || b.is_ascii_control() || b == b' ' || b >= 0x80);
        if !shape_ok {
            return Err(UnsafeReturnUrl);
        }
        // Belt and braces: resolved against a probe origin, it must stay on that origin.
        let base = Url::parse(PROBE_ORIGIN).map_err(|_| UnsafeReturnUrl)?;
        let resolved = base.join(value).map_err(|_| UnsafeReturnUrl)?;
        if resolved.origin() != base.origin() {
            return Err(UnsafeReturnUrl);
        }
        Ok(Self(value.to_owned()))
    }

    /// Parses an optional value, defaulting to `/`.
    ///
    /// # Errors
    /// [`UnsafeReturnUrl`] when a value is given and unsafe.
    pub fn parse_or_root(value: Option<&str>) -> Result<Self, UnsafeReturnUrl> {
        match value {
            None | Some("") => Ok(Self::root()),
            Some(v) => Self::parse(v),
        }
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_accepted() {
        for ok in [
            "/",
            "/app",
            "/app/page?x=1&y=2#frag",
            "/a/../b",
            "/%2F%2Fevil.example",
        ] {
            assert_eq!(ReturnUrl::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn anything_that_can_leave_the_origin_is_refused() {
        let long = format!("/{}", "a".repeat(MAX_LEN));
        for bad in [
            "",
            "https://evil.example",
            "http://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " /evil",
            "javascript:alert(1)",
            "evil.example",
            "/ok\\..\\..\\evil",
            "/caf\u{e9}",
            long.as_str(),
        ] {
            assert_eq!(
                ReturnUrl::parse(bad),
                Err(UnsafeReturnUrl),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn missing_defaults_to_root() {
        assert_eq!(ReturnUrl::parse_or_root(None).unwrap().as_str(), "/");
        assert_eq!(ReturnUrl::parse_or_root(Some("")).unwrap().as_str(), "/");
        assert!(ReturnUrl::parse_or_root(Some("//x")).is_err());
    }
}
