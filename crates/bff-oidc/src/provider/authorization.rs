//! The authorization request (OAuth 2.1 section 4.1.1, OIDC Core 3.1.2.1): a fresh `state`, a
//! fresh `nonce` and a PKCE S256 challenge every time, the configured scopes with `openid`
//! always among them, and `prompt` when asked for.

use std::borrow::Cow;

use bff_domain::ports::{AuthorizationRequest, ProviderError};
use bff_domain::{Prompt, Secret};
use oauth2::{CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};

use super::OAuthClient;

/// Bytes of entropy in `state` and `nonce` (256 bits each, base64url).
const RANDOM_BYTES: u32 = 32;

/// A new authorization request for `redirect_uri`.
pub(super) fn request(
    oauth: &OAuthClient,
    scopes: &[String],
    redirect_uri: &str,
    prompt: Option<Prompt>,
) -> Result<AuthorizationRequest, ProviderError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| ProviderError::Protocol(format!("bad redirect_uri: {e}")))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = CsrfToken::new_random_len(RANDOM_BYTES).secret().clone();
    let mut request = oauth
        .authorize_url(|| CsrfToken::new_random_len(RANDOM_BYTES))
        .set_redirect_uri(Cow::Owned(redirect))
        .set_pkce_challenge(challenge)
        .add_extra_param("nonce", nonce.clone());
    if !scopes.iter().any(|s| s == "openid") {
        request = request.add_scope(Scope::new("openid".into()));
    }
    for scope in scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    if let Some(prompt) = prompt {
        request = request.add_extra_param("prompt", prompt.as_str());
    }
    let (url, state) = request.url();
    Ok(AuthorizationRequest {
        url: url.to_string(),
        state: state.secret().clone(),
        nonce,
        pkce_verifier: Secret::new(verifier.secret().clone()),
    })
}
