//! The admin API's credential: one bearer token, configured only as its SHA-256, checked in
//! constant time by the [`AdminAuth`] extractor every admin endpoint takes.
//!
//! A request without `Authorization: Bearer <token>`, or with another token, gets
//! `401 admin_unauthorized` with `WWW-Authenticate: Bearer` before the handler runs. The token is
//! never logged; operators are named in logs by the [`AdminCredential::fingerprint`] (the first 8
//! hex digits of the configured hash), which is already in the configuration and opens nothing.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::{IntoResponse, Request, RequestBody};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::problem::Problem;

/// The name of the security scheme in the admin OpenAPI document.
pub(crate) const SCHEME: &str = "adminBearer";

/// Longest `Authorization` value hashed at all; anything longer is refused as is.
const MAX_TOKEN_LEN: usize = 4096;

/// The configured admin credential: the SHA-256 of the bearer token (the token itself is never
/// configured). `Debug` shows only the fingerprint.
#[derive(Clone)]
pub struct AdminCredential {
    sha256: [u8; 32],
    fingerprint: String,
}

/// The configured hash is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be the SHA-256 of the admin token as 64 hex digits")]
pub struct InvalidAdminCredential;

impl AdminCredential {
    /// The credential whose token hashes (SHA-256) to `hex` (64 hex digits, either case).
    ///
    /// # Errors
    /// [`InvalidAdminCredential`] for anything else.
    pub fn from_sha256_hex(hex: &str) -> Result<Self, InvalidAdminCredential> {
        let hex = hex.trim();
        if hex.len() != 64 {
            return Err(InvalidAdminCredential);
        }
        let mut sha256 = [0u8; 32];
        for (i, byte) in sha256.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or(InvalidAdminCredential)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| InvalidAdminCredential)?;
        }
        Ok(Self {
            sha256,
            fingerprint: hex[..8].to_ascii_lowercase(),
        })
    }

    /// Names the credential in logs: the first 8 hex digits of its hash.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether `token` is the admin token: its SHA-256 compared in constant time.
    fn accepts(&self, token: &str) -> bool {
        let digest = Sha256::digest(token.as_bytes());
        let digest: [u8; 32] = digest.into();
        bool::from(digest.ct_eq(&self.sha256))
    }
}

impl std::fmt::Debug for AdminCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredential")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Proof that the request carried the admin token; every admin endpoint takes one. It names
/// the operator for the log.
#[derive(Debug)]
pub(crate) struct AdminAuth {
    fingerprint: String,
}

impl AdminAuth {
    /// Who acted, for the log.
    pub(crate) fn who(&self) -> &str {
        &self.fingerprint
    }
}

/// `401 admin_unauthorized` with `WWW-Authenticate: Bearer` (RFC 6750 section 3).
fn unauthorized() -> poem::Error {
    let resp = Problem::new(
        StatusCode::UNAUTHORIZED,
        "admin_unauthorized",
        "The admin API needs Authorization: Bearer with the admin token.",
    )
    .into_response();
    let mut resp = resp;
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        poem::http::HeaderValue::from_static("Bearer realm=\"bff-admin\""),
    );
    poem::Error::from_response(resp)
}

impl<'a> ApiExtractor<'a> for AdminAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "`Authorization: Bearer <admin token>`; the server is configured with the \
                     token's SHA-256 (`admin.token_sha256`). Without it, or with another token: \
                     `401 admin_unauthorized`.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let Some(credential) = req.data::<Arc<AdminCredential>>() else {
            return Err(poem::Error::from_response(
                Problem::misconfigured("the admin endpoints are served without their credential")
                    .into_response(),
            ));
        };
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= MAX_TOKEN_LEN)
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        match token {
            Some(token) if credential.accepts(token) => Ok(Self {
                fingerprint: credential.fingerprint.clone(),
            }),
            presented => {
                tracing::warn!(
                    path = req.uri().path(),
                    bearer_sent = presented.is_some(),
                    "admin request refused: missing or wrong credential"
                );
                Err(unauthorized())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "correct horse battery staple";

    fn hash(token: &str) -> String {
        Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_credential_accepts_only_its_token() {
        let credential = AdminCredential::from_sha256_hex(&hash(TOKEN)).unwrap();
        assert!(credential.accepts(TOKEN));
        for wrong in [
            "",
            "correct horse battery stapl",
            "correct horse battery staple ",
        ] {
            assert!(!credential.accepts(wrong), "{wrong:?}");
        }
        // The hash itself is not the token.
        assert!(!credential.accepts(&hash(TOKEN)));
        assert_eq!(credential.fingerprint(), &hash(TOKEN)[..8]);
        let upper = AdminCredential::from_sha256_hex(&hash(TOKEN).to_uppercase()).unwrap();
        assert!(upper.accepts(TOKEN));
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for bad in [
            "",
            "abc",
            &"g".repeat(64),
            &"0".repeat(63),
            &"0".repeat(65),
            "é123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        ] {
            assert!(AdminCredential::from_sha256_hex(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_shows_only_the_fingerprint() {
        let credential = AdminCredential::from_sha256_hex(&hash(TOKEN)).unwrap();
        let shown = format!("{credential:?}");
        assert!(shown.contains(&hash(TOKEN)[..8]));
        assert!(!shown.contains(&hash(TOKEN)[8..16]));
    }
}
