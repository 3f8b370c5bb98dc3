//! Back-channel logout token validation (OpenID Connect Back-Channel Logout 1.0, section 2.6),
//! as a pure function of the token, the keys, the expectations and the current time.
//!
//! The signature, algorithm and key rules are the ID token's (`id_token::verify_signature`:
//! the configured asymmetric algorithms only, never `none`, never HMAC, the key's own `alg` and
//! family respected), and so are `iss`, `aud` and `azp`. Then the logout token's own rules: the
//! `typ` header is `logout+jwt` (the explicit type the specification recommends), or `JWT` or
//! absent, which providers still send and which is tolerated; `iat` is required and not in the
//! future; `exp` is honoured when present; `jti` is required; `events` holds the back-channel
//! logout event with an object value; `sub` or `sid` is present; `nonce` is absent, so an ID
//! token can never pass as a logout token. Whether the `jti` was seen before is the domain's
//! check, through its shared replay cache.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bff_domain::Timestamp;
use bff_domain::ports::LogoutToken;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Map, Value};

use crate::id_token::{self, IdTokenProblem};

/// The member of `events` that makes a token a back-channel logout token.
pub(crate) const BACKCHANNEL_LOGOUT_EVENT: &str =
    "http://schemas.openid.net/event/backchannel-logout";

/// What the token must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct Expectations<'a> {
    /// `iss`.
    pub(crate) issuer: &'a str,
    /// Must be in `aud`; must be `azp` when present.
    pub(crate) client_id: &'a str,
    /// Allowed signing algorithms (the provider's ID token allowlist).
    pub(crate) algorithms: &'a [Algorithm],
    /// Tolerated clock difference.
    pub(crate) skew: Duration,
    /// Now.
    pub(crate) now: Timestamp,
}

/// The JOSE header as sent, before `jsonwebtoken` parses it (which cannot tell a malformed
/// token from an algorithm it does not know, such as `none`).
fn raw_header(token: &str) -> Result<Map<String, Value>, IdTokenProblem> {
    let malformed = IdTokenProblem::Invalid("malformed");
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // Encrypted logout tokens (five parts) are not supported: no decryption key is
        // configured, so they are refused like any other malformed token.
        return Err(malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed.clone())?;
    serde_json::from_slice(&bytes).map_err(|_| malformed)
}

/// `typ` values accepted, compared without regard to case (RFC 7515 section 4.1.9): the
/// explicit type, its full media type, and the generic `JWT` that providers still send.
fn typ_allowed(typ: Option<&Value>) -> bool {
    match typ {
        None => true,
        Some(Value::String(typ)) => ["logout+jwt", "application/logout+jwt", "JWT"]
            .iter()
            .any(|allowed| typ.eq_ignore_ascii_case(allowed)),
        Some(_) => false,
    }
}

/// A non-empty string claim.
fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Validates `token` and returns what the domain needs of it.
///
/// # Errors
/// [`IdTokenProblem::UnknownKid`] when no key matches (the caller may refetch the JWKS and try
/// again), [`IdTokenProblem::Invalid`] naming the failed check otherwise: `malformed`, `typ`,
/// `alg`, `kid`, `signature`, `iss`, `aud`, `azp`, `iat`, `exp`, `events`, `sub_or_sid`,
/// `nonce` or `jti`, checked in that order.
pub(crate) fn validate(
    token: &str,
    keys: &JwkSet,
    expect: &Expectations<'_>,
) -> Result<LogoutToken, IdTokenProblem> {
    let header = raw_header(token)?;
    if !header.get("alg").is_some_and(Value::is_string) {
        return Err(IdTokenProblem::Invalid("malformed"));
    }
    if !typ_allowed(header.get("typ")) {
        return Err(IdTokenProblem::Invalid("typ"));
    }
    let (_, claims) = id_token::verify_signature(token, keys, expect.algorithms)?;
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(IdTokenProblem::Invalid("iss"));
    }
    id_token::check_audience(&claims, expect.client_id)?;
    let (now, skew) = (expect.now, expect.skew);
    let issued_at = id_token::number(&claims, "iat")
        .map(Timestamp::from_unix_seconds)
        .ok_or(IdTokenProblem::Invalid("iat"))?;
    if issued_at > now.plus(skew) {
        return Err(IdTokenProblem::Invalid("iat"));
    }
    let expires_at = match claims.get("exp") {
        None => None,
        Some(_) => {
            let exp = id_token::number(&claims, "exp")
                .map(Timestamp::from_unix_seconds)
                .ok_or(IdTokenProblem::Invalid("exp"))?;
            if now.minus(skew) >= exp {
                return Err(IdTokenProblem::Invalid("exp"));
            }
            Some(exp)
        }
    };
    let is_logout_event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(Value::is_object);
    if !is_logout_event {
        return Err(IdTokenProblem::Invalid("events"));
    }
    let subject = text(&claims, "sub");
    let provider_session_id = text(&claims, "sid");
    if subject.is_none() && provider_session_id.is_none() {
        return Err(IdTokenProblem::Invalid("sub_or_sid"));
    }
    if claims.contains_key("nonce") {
        return Err(IdTokenProblem::Invalid("nonce"));
    }
    // Last, as the specification orders it: anything else wrong with a token is the more
    // telling reason.
    let token_id = text(&claims, "jti").ok_or(IdTokenProblem::Invalid("jti"))?;
    Ok(LogoutToken {
        issuer: expect.issuer.to_owned(),
        subject,
        provider_session_id,
        token_id,
        issued_at,
        expires_at,
    })
}

#[cfg(test)]
mod tests;
