//! The authorization request (OAuth 2.1 section 4.1.1, OIDC Core 3.1.2.1): a fresh `state`, a
//! fresh `nonce` and a PKCE S256 challenge every time, the configured scopes with `openid`
//! always among them, and `prompt` when asked for; pushed to the provider first (RFC 9126)
//! when the provider is set up for it ([`push`]).

use std::borrow::Cow;

use bff_domain::ports::{AuthorizationRequest, ProviderError};
use bff_domain::{Prompt, Secret};
use oauth2::{CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};

use serde::Deserialize;

use super::{OAuthClient, OidcProvider, token, unavailable};

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

/// A pushed authorization response (RFC 9126 section 2.2).
#[derive(Deserialize)]
struct PushedRequest {
    request_uri: String,
}

/// Sends `request`'s parameters to the provider's pushed authorization request `endpoint`,
/// authenticated as at the token endpoint (RFC 9126 section 2.1), and answers the request with
/// a URL that carries only `client_id` and the `request_uri` the provider gave back (section
/// 4). `state`, `nonce` and the PKCE verifier stay what they were: the provider received them.
pub(super) async fn push(
    provider: &OidcProvider,
    endpoint: &str,
    request: AuthorizationRequest,
) -> Result<AuthorizationRequest, ProviderError> {
    let url = url::Url::parse(&request.url)
        .map_err(|e| ProviderError::Protocol(format!("authorization URL: {e}")))?;
    // The endpoint's own query (RFC 6749 section 3.1 allows one) stays in the browser's URL;
    // the request's parameters are the rest.
    let mut authorize = url::Url::parse(&provider.metadata.authorization_endpoint)
        .map_err(|e| ProviderError::Protocol(format!("authorization endpoint: {e}")))?;
    let own: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let parameters: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|pair| !own.contains(pair))
        .collect();
    let response = token::client_authenticated_post(provider, endpoint, parameters)?
        .send()
        .await
        .map_err(|e| unavailable(e.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        let code = token::error_code_of(response).await;
        return Err(match code {
            Some(code) => {
                ProviderError::Protocol(format!("pushed authorization request refused: {code}"))
            }
            None if status.is_server_error() => unavailable(format!(
                "pushed authorization request endpoint answered HTTP {status}"
            )),
            None => ProviderError::Protocol(format!(
                "pushed authorization request endpoint answered HTTP {status}"
            )),
        });
    }
    let pushed: PushedRequest = response.json().await.map_err(|_| {
        ProviderError::Protocol("pushed authorization response without request_uri".into())
    })?;
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &provider.config.client_id)
        .append_pair("request_uri", &pushed.request_uri);
    Ok(AuthorizationRequest {
        url: authorize.to_string(),
        ..request
    })
}
