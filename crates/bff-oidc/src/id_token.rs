//! ID token validation (OpenID Connect Core 1.0, section 3.1.3.7), as a pure function.
//!
//! The signature is checked by `jsonwebtoken` with the provider's JWK; the algorithm must be in
//! the configured allowlist (never `none`, never HMAC: a public key must not become an HMAC
//! secret), and must agree with the key's own `alg` and family. The claims are then checked
//! here against the injected current time: `iss`, `aud`, `azp`, `exp`, `iat`, `nbf`, `nonce`,
//! `sub`, and `at_hash` when present. An ID token from a refresh must also describe the same
//! authentication as the session's original one (OIDC Core 12.2): same `iss` and `sub`, the
//! original `nonce` if it carries one, the original `auth_time` if it carries one.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bff_domain::Timestamp;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// How the token was obtained, which decides what it is compared with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grant<'a> {
    /// From the code exchange: `nonce` must be the authorization request's.
    AuthorizationCode {
        /// The `nonce` sent in the authorization request.
        nonce: &'a str,
    },
    /// From a refresh: must describe the same authentication as `original`.
    RefreshToken {
        /// The claims of the session's ID token from the code exchange.
        original: &'a Map<String, Value>,
    },
}

/// What the token must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct Expectations<'a> {
    /// `iss`.
    pub(crate) issuer: &'a str,
    /// Must be in `aud`; must be `azp` when present.
    pub(crate) client_id: &'a str,
    /// How the token was obtained.
    pub(crate) grant: Grant<'a>,
    /// The access token issued with it, for `at_hash`.
    pub(crate) access_token: Option<&'a str>,
    /// Allowed signing algorithms.
    pub(crate) algorithms: &'a [Algorithm],
    /// Tolerated clock difference.
    pub(crate) skew: Duration,
    /// Now.
    pub(crate) now: Timestamp,
}

/// Why a token was refused. The reason names the check, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IdTokenProblem {
    /// No key with the token's `kid` (a refetch of the JWKS may help).
    #[error("kid")]
    UnknownKid,
    /// A check failed; the string names it: `alg`, `kid`, `signature`, `malformed`, `iss`,
    /// `aud`, `azp`, `exp`, `iat`, `nbf`, `nonce`, `sub`, `at_hash` or `auth_time`.
    #[error("{0}")]
    Invalid(&'static str),
}

/// HMAC and anything not asymmetric is never acceptable for ID tokens from a confidential
/// client's point of view here: the key comes from a public JWKS.
pub(crate) fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Whether `jwk` is a key of the family `alg` needs (RSA, the right EC curve, OKP).
fn key_family_matches(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve as C};
    match (&jwk.algorithm, alg) {
        (
            P::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (P::EllipticCurve(p), Algorithm::ES256) => p.curve == C::P256,
        (P::EllipticCurve(p), Algorithm::ES384) => p.curve == C::P384,
        (P::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == C::Ed25519,
        _ => false,
    }
}

/// Whether the key's own `alg` (when it has one) is `alg`: a key published for ES256 must not
/// verify a token whose header claims something else.
fn key_alg_allows(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::KeyAlgorithm as K;
    let Some(key_alg) = jwk.common.key_algorithm else {
        return true;
    };
    matches!(
        (key_alg, alg),
        (K::RS256, Algorithm::RS256)
            | (K::RS384, Algorithm::RS384)
            | (K::RS512, Algorithm::RS512)
            | (K::PS256, Algorithm::PS256)
            | (K::PS384, Algorithm::PS384)
            | (K::PS512, Algorithm::PS512)
            | (K::ES256, Algorithm::ES256)
            | (K::ES384, Algorithm::ES384)
            | (K::EdDSA, Algorithm::EdDSA)
    )
}

/// Keys published for encryption (`use` = `enc`) never verify signatures.
fn is_signing_key(jwk: &Jwk) -> bool {
    !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
}

fn select_key<'k>(
    keys: &'k JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'k Jwk, IdTokenProblem> {
    match kid {
        Some(kid) => keys
            .keys
            .iter()
            .filter(|k| is_signing_key(k))
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .ok_or(IdTokenProblem::UnknownKid),
        None => {
            // Without a `kid` the key must be unambiguous: exactly one signing key of the
            // header's algorithm.
            let mut candidates = keys.keys.iter().filter(|k| {
                is_signing_key(k) && key_family_matches(k, alg) && key_alg_allows(k, alg)
            });
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Ok(only),
                (None, _) => Err(IdTokenProblem::UnknownKid),
                (Some(_), Some(_)) => Err(IdTokenProblem::Invalid("kid")),
            }
        }
    }
}

pub(crate) fn number(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    claims
        .get(name)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

/// The left half of the hash of the access token, base64url (OIDC Core 3.1.3.6).
pub(crate) fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 | Algorithm::HS384 => {
            Sha384::digest(access_token.as_bytes()).to_vec()
        }
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::HS512 | Algorithm::EdDSA => {
            Sha512::digest(access_token.as_bytes()).to_vec()
        }
        _ => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// OIDC Core 12.2: a refreshed ID token describes the original authentication. `iss` and
/// `sub` must equal the original's. `nonce` and `auth_time` need not be repeated (the spec says
/// a refreshed token *should not* carry a nonce, and requires `auth_time` only to be the
/// original time *if* present), but when present must equal the original's: a value the
/// original did not have cannot be the original's, so it is refused too.
fn same_authentication(
    refreshed: &Map<String, Value>,
    original: &Map<String, Value>,
) -> Result<(), IdTokenProblem> {
    let same_string = |name: &str| {
        let original = original.get(name).and_then(Value::as_str);
        original.is_some() && refreshed.get(name).and_then(Value::as_str) == original
    };
    if !same_string("iss") {
        return Err(IdTokenProblem::Invalid("iss"));
    }
    if !same_string("sub") {
        return Err(IdTokenProblem::Invalid("sub"));
    }
    if refreshed.contains_key("nonce") && !same_string("nonce") {
        return Err(IdTokenProblem::Invalid("nonce"));
    }
    if refreshed.contains_key("auth_time") {
        let original = number(original, "auth_time");
        if original.is_none() || number(refreshed, "auth_time") != original {
            return Err(IdTokenProblem::Invalid("auth_time"));
        }
    }
    Ok(())
}

/// Checks the header's algorithm against `algorithms` (asymmetric only), picks the key by `kid`
/// (or the only key of the family), and verifies the signature; returns the header and the
/// claims, nothing of which is checked yet. Shared by ID tokens and logout tokens.
///
/// # Errors
/// [`IdTokenProblem::UnknownKid`] when no key matches, [`IdTokenProblem::Invalid`] with `alg`,
/// `kid`, `signature` or `malformed` otherwise.
pub(crate) fn verify_signature(
    token: &str,
    keys: &JwkSet,
    algorithms: &[Algorithm],
) -> Result<(jsonwebtoken::Header, Map<String, Value>), IdTokenProblem> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenProblem::Invalid("alg"))?;
    let alg = header.alg;
    if !is_asymmetric(alg) || !algorithms.contains(&alg) {
        return Err(IdTokenProblem::Invalid("alg"));
    }
    let jwk = select_key(keys, header.kid.as_deref(), alg)?;
    if !key_alg_allows(jwk, alg) || !key_family_matches(jwk, alg) {
        return Err(IdTokenProblem::Invalid("alg"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| IdTokenProblem::Invalid("kid"))?;
    let mut validation = Validation::new(alg);
    // Time and audience are checked by the callers against the injected clock and the OIDC
    // rules.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(
        |e| match e.kind() {
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                IdTokenProblem::Invalid("alg")
            }
            // The signature is checked before the claims are parsed, so these mean a correctly
            // signed token whose payload is not a JSON object.
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => IdTokenProblem::Invalid("malformed"),
            _ => IdTokenProblem::Invalid("signature"),
        },
    )?;
    Ok((header, data.claims))
}

/// `aud` must contain `client_id`; `azp`, when present, must be `client_id`, and is required
/// when there are several audiences (OIDC Core 3.1.3.7 steps 3 to 5).
///
/// # Errors
/// [`IdTokenProblem::Invalid`] with `aud` or `azp`.
pub(crate) fn check_audience(
    claims: &Map<String, Value>,
    client_id: &str,
) -> Result<(), IdTokenProblem> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(IdTokenProblem::Invalid("aud"));
    }
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != client_id => Err(IdTokenProblem::Invalid("azp")),
        None if audiences.len() > 1 => Err(IdTokenProblem::Invalid("azp")),
        _ => Ok(()),
    }
}

/// Validates `token` and returns its claims.
///
/// # Errors
/// [`IdTokenProblem::UnknownKid`] when no key matches (the caller may refetch the JWKS and try
/// again), [`IdTokenProblem::Invalid`] naming the failed check otherwise.
pub(crate) fn validate(
    token: &str,
    keys: &JwkSet,
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, IdTokenProblem> {
    let (header, claims) = verify_signature(token, keys, expect.algorithms)?;
    let alg = header.alg;
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(IdTokenProblem::Invalid("iss"));
    }
    check_audience(&claims, expect.client_id)?;
    let now = expect.now;
    let skew = expect.skew;
    let exp = number(&claims, "exp").ok_or(IdTokenProblem::Invalid("exp"))?;
    if now.minus(skew) >= Timestamp::from_unix_seconds(exp) {
        return Err(IdTokenProblem::Invalid("exp"));
    }
    let iat = number(&claims, "iat").ok_or(IdTokenProblem::Invalid("iat"))?;
    if Timestamp::from_unix_seconds(iat) > now.plus(skew) {
        return Err(IdTokenProblem::Invalid("iat"));
    }
    if let Some(nbf) = number(&claims, "nbf")
        && Timestamp::from_unix_seconds(nbf) > now.plus(skew)
    {
        return Err(IdTokenProblem::Invalid("nbf"));
    }
    if let Grant::AuthorizationCode { nonce } = expect.grant
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err(IdTokenProblem::Invalid("nonce"));
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(IdTokenProblem::Invalid("sub"));
    }
    if let Grant::RefreshToken { original } = expect.grant {
        same_authentication(&claims, original)?;
    }
    if let (Some(claimed), Some(access_token)) = (
        claims.get("at_hash").and_then(Value::as_str),
        expect.access_token,
    ) && claimed != at_hash(alg, access_token)
    {
        return Err(IdTokenProblem::Invalid("at_hash"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests;
