//! The token endpoint and RFC 7009 revocation: the code exchange (with the PKCE verifier),
//! refresh, the client-credentials grant (the BFF's own token for API routes), and revoking a
//! refresh token, with the configured client authentication (`client_secret_basic`,
//! `client_secret_post`, or `private_key_jwt`: a fresh signed assertion in every request's form,
//! see `crate::client_assertion`).
//!
//! Answers become a [`TokenSet`] or a [`ClientToken`] (only `Bearer` tokens: that is how the BFF
//! forwards them); the caller validates any ID token in it. OAuth `error` codes become `Rejected(code)` when
//! they are well formed; bodies are never passed on, so no token reaches an error or a log.
//!
//! One exception to "the `oauth2` crate sends it": that crate refuses to revoke over plain
//! `http`, so for development providers with an `http` issuer the RFC 7009 request is sent by
//! hand (same parameters and client authentication). Discovery refuses `http` endpoints under an
//! `https` issuer, so production revocation always goes through `oauth2`.

use std::borrow::Cow;
use std::fmt;

use bff_domain::ports::{ClientToken, ProviderError};
use bff_domain::{Secret, Timestamp, TokenSet};
use oauth2::basic::BasicTokenType;
use oauth2::{
    AuthorizationCode, ExtraTokenFields, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{OidcProvider, unavailable};
use crate::config::ClientAuthMethod;

/// The members of a token response beyond OAuth's: OIDC's `id_token`, and `refresh_expires_in`
/// (seconds until the refresh token expires; Keycloak and others send it, `0` meaning "does not
/// expire"), kept as raw JSON so an odd value is ignored rather than failing the response.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_expires_in: Option<Value>,
}

impl fmt::Debug for IdTokenField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenField")
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

impl ExtraTokenFields for IdTokenField {}

/// A token response with the OIDC `id_token`.
pub(super) type OidcTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// Exchanges an authorization code (with its PKCE verifier and redirect URI) for tokens.
pub(super) async fn exchange_code(
    provider: &OidcProvider,
    code: &str,
    pkce_verifier: &Secret,
    redirect_uri: &str,
    now: Timestamp,
) -> Result<TokenSet, ProviderError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| ProviderError::Protocol(format!("bad redirect_uri: {e}")))?;
    let assertion = client_assertion(provider)?;
    let response = provider
        .within(async {
            let mut request = provider
                .oauth
                .exchange_code(AuthorizationCode::new(code.to_owned()))
                .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.expose().to_owned()))
                .set_redirect_uri(Cow::Owned(redirect));
            for (name, value) in assertion {
                request = request.add_extra_param(name, value);
            }
            request
                .request_async(&OAuthHttp(provider.http.clone()))
                .await
                .map_err(token_error)
        })
        .await?;
    let mut tokens = token_set(&response, now)?;
    if tokens.scope.is_none() {
        // RFC 6749 section 5.1: a response without `scope` was granted the scope requested.
        tokens.scope = Some(requested_scope(&provider.config.scopes));
    }
    Ok(tokens)
}

/// The scope the authorization request asks for: the configured scopes, with `openid` first
/// when the configuration left it out (as the authorization request adds it).
fn requested_scope(configured: &[String]) -> String {
    let mut scopes: Vec<&str> = Vec::with_capacity(configured.len() + 1);
    if !configured.iter().any(|s| s == "openid") {
        scopes.push("openid");
    }
    scopes.extend(configured.iter().map(String::as_str));
    scopes.join(" ")
}

/// Uses a refresh token. A response without `scope` leaves the session's scope as it was
/// (`TokenSet::refreshed_with`): RFC 6749 section 6 says the scope is then unchanged.
pub(super) async fn refresh(
    provider: &OidcProvider,
    refresh_token: &Secret,
    now: Timestamp,
) -> Result<TokenSet, ProviderError> {
    let token = RefreshToken::new(refresh_token.expose().to_owned());
    let assertion = client_assertion(provider)?;
    let response = provider
        .within(async {
            let mut request = provider.oauth.exchange_refresh_token(&token);
            for (name, value) in assertion {
                request = request.add_extra_param(name, value);
            }
            request
                .request_async(&OAuthHttp(provider.http.clone()))
                .await
                .map_err(token_error)
        })
        .await?;
    token_set(&response, now)
}

/// Asks for a token for the BFF itself (client-credentials grant, RFC 6749 section 4.4) with
/// `scopes` (no `scope` parameter when there are none). A refresh token or ID token in the
/// answer is ignored: the grant is for the client alone.
pub(super) async fn client_credentials(
    provider: &OidcProvider,
    scopes: &[String],
    now: Timestamp,
) -> Result<ClientToken, ProviderError> {
    let assertion = client_assertion(provider)?;
    let response = provider
        .within(async {
            let mut request = provider
                .oauth
                .exchange_client_credentials()
                .add_scopes(scopes.iter().cloned().map(Scope::new));
            for (name, value) in assertion {
                request = request.add_extra_param(name, value);
            }
            request
                .request_async(&OAuthHttp(provider.http.clone()))
                .await
                .map_err(token_error)
        })
        .await?;
    let tokens = token_set(&response, now)?;
    Ok(ClientToken {
        access_token: tokens.access_token,
        expires_at: tokens.access_token_expires_at,
        scope: tokens.scope,
    })
}

/// Revokes a refresh token (RFC 7009); `Ok` when the provider has no revocation endpoint.
pub(super) async fn revoke_refresh_token(
    provider: &OidcProvider,
    refresh_token: &Secret,
) -> Result<(), ProviderError> {
    let Some(endpoint) = provider.metadata.revocation_endpoint.as_deref() else {
        return Ok(());
    };
    if !endpoint.starts_with("https://") {
        return provider
            .within(revoke_over_http(provider, endpoint, refresh_token))
            .await;
    }
    let token =
        StandardRevocableToken::RefreshToken(RefreshToken::new(refresh_token.expose().to_owned()));
    let mut request = provider
        .oauth
        .revoke_token(token)
        .map_err(|e| ProviderError::Protocol(format!("revocation: {e}")))?;
    for (name, value) in client_assertion(provider)? {
        request = request.add_extra_param(name, value);
    }
    provider
        .within(async {
            request
                .request_async(&OAuthHttp(provider.http.clone()))
                .await
                .map_err(token_error)
        })
        .await
}

/// RFC 7009 revocation sent by hand, for plain-`http` (development) providers only: the
/// `oauth2` crate, rightly, refuses to send a token to a non-`https` revocation endpoint, and
/// discovery accepts `http` endpoints only under an `http` issuer, whose token endpoint
/// already sees the same refresh token in cleartext.
async fn revoke_over_http(
    provider: &OidcProvider,
    endpoint: &str,
    token: &Secret,
) -> Result<(), ProviderError> {
    let form = vec![
        ("token".to_owned(), token.expose().to_owned()),
        ("token_type_hint".to_owned(), "refresh_token".to_owned()),
    ];
    let response = client_authenticated_post(provider, endpoint, form)?
        .send()
        .await
        .map_err(|e| unavailable(e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let code = error_code_of(response).await;
    match code {
        Some(code) => Err(ProviderError::Rejected(code)),
        None if status.is_server_error() => Err(unavailable(format!(
            "revocation endpoint answered HTTP {status}"
        ))),
        None => Err(ProviderError::Protocol(format!(
            "revocation endpoint answered HTTP {status}"
        ))),
    }
}

/// The form parameters of a fresh `private_key_jwt` assertion for one request; none when the
/// client authenticates with a secret.
fn client_assertion(provider: &OidcProvider) -> Result<Vec<(&'static str, String)>, ProviderError> {
    match &provider.assertion {
        Some(assertion) => assertion.sign().map(Vec::from),
        None => Ok(Vec::new()),
    }
}

/// A form `POST` of `form` to `endpoint`, authenticated as the client is at the token endpoint
/// (`client_secret_basic`, `client_secret_post` or `private_key_jwt`), asking for JSON:
/// revocation over plain HTTP and pushed authorization requests send it by hand.
///
/// # Errors
/// When a `private_key_jwt` assertion cannot be signed.
pub(super) fn client_authenticated_post(
    provider: &OidcProvider,
    endpoint: &str,
    mut form: Vec<(String, String)>,
) -> Result<reqwest::RequestBuilder, ProviderError> {
    let config = &provider.config;
    let mut request = provider
        .http
        .post(endpoint)
        .header(reqwest::header::ACCEPT, "application/json");
    match config.client_auth {
        ClientAuthMethod::ClientSecretBasic => {
            // RFC 6749 section 2.3.1: both parts form-urlencoded before Basic encoding.
            let encode =
                |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            request = request.basic_auth(
                encode(&config.client_id),
                Some(encode(config.client_secret.expose())),
            );
        }
        ClientAuthMethod::ClientSecretPost => {
            // Once: a pushed authorization request carries it already, and a provider may
            // refuse a repeated parameter.
            if !form.iter().any(|(name, _)| name == "client_id") {
                form.push(("client_id".to_owned(), config.client_id.clone()));
            }
            form.push((
                "client_secret".to_owned(),
                config.client_secret.expose().to_owned(),
            ));
        }
        ClientAuthMethod::PrivateKeyJwt => {
            if !form.iter().any(|(name, _)| name == "client_id") {
                form.push(("client_id".to_owned(), config.client_id.clone()));
            }
            for (name, value) in client_assertion(provider)? {
                form.push((name.to_owned(), value));
            }
        }
    }
    Ok(request.form(&form))
}

/// The OAuth `error` code of an error response, when it has a well-formed one.
pub(super) async fn error_code_of(response: reqwest::Response) -> Option<String> {
    let body = response.bytes().await.ok()?;
    oauth_error_code(&body).as_deref().map(safe_code)
}

/// The tokens of a token response; refuses token types other than `Bearer`, which is how the
/// BFF forwards access tokens.
fn token_set(response: &OidcTokenResponse, now: Timestamp) -> Result<TokenSet, ProviderError> {
    let token_type = response.token_type().as_ref();
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(ProviderError::Protocol(format!(
            "token_type {:?} is not Bearer",
            safe_code(token_type)
        )));
    }
    Ok(TokenSet {
        access_token: Secret::new(response.access_token().secret().clone()),
        refresh_token: response
            .refresh_token()
            .map(|t| Secret::new(t.secret().clone())),
        id_token: response.extra_fields().id_token.clone().map(Secret::new),
        access_token_expires_at: response.expires_in().map(|d| now.plus(d)),
        refresh_token_expires_at: response
            .extra_fields()
            .refresh_expires_in
            .as_ref()
            .and_then(Value::as_u64)
            .filter(|secs| *secs > 0)
            .map(|secs| now.plus(std::time::Duration::from_secs(secs))),
        scope: response
            .scopes()
            .map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" ")),
    })
}

/// An OAuth `error` code as it may be shown: RFC 6749 allows only printable ASCII without `"`
/// and `\`; anything else (or anything long) is replaced, so a hostile provider cannot smuggle
/// text into logs and problem documents.
fn safe_code(code: &str) -> String {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    if ok {
        code.to_owned()
    } else {
        "invalid_error_code".to_owned()
    }
}

/// The provider's HTTP client as oauth2's, answering through [`oauth_http`] (a clone: the
/// client is a handle on a shared pool).
struct OAuthHttp(reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = OAuthHttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, OAuthHttpError>>
                + Send
                + Sync
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(oauth_http(&self.0, request))
    }
}

/// `http` as oauth2's client, with the rule the hand-written calls (revocation, pushed
/// authorization requests) follow: an answer in the 5xx range without an OAuth `error` code (a
/// proxy's error page, an overloaded provider) is the provider being unavailable, not a
/// response that broke the protocol. With a code, oauth2 reads it as the refusal it is.
async fn oauth_http(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, OAuthHttpError> {
    use oauth2::AsyncHttpClient as _;

    let response = http
        .call(request)
        .await
        .map_err(OAuthHttpError::Transport)?;
    let status = response.status();
    if status.is_server_error() && oauth_error_code(response.body()).is_none() {
        return Err(OAuthHttpError::ServerFailure(status));
    }
    Ok(response)
}

/// The `error` member of an OAuth error body, as sent (see [`safe_code`] before showing it),
/// if the body is one.
fn oauth_error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_owned)
}

/// Why [`oauth_http`] got no usable answer.
#[derive(Debug, thiserror::Error)]
enum OAuthHttpError {
    /// The request did not get an answer.
    #[error(transparent)]
    Transport(oauth2::HttpClientError<reqwest::Error>),
    /// An answer in the 5xx range without an OAuth error code.
    #[error("the token endpoint answered HTTP {0}")]
    ServerFailure(reqwest::StatusCode),
}

/// Maps an oauth2 request error. The provider's `error` code is kept (it is not secret); bodies
/// are dropped, and a malformed response is described by where it broke, never by its values.
fn token_error<RE, T>(e: RequestTokenError<RE, T>) -> ProviderError
where
    RE: std::error::Error + Send + Sync + 'static,
    T: oauth2::ErrorResponse + Send + Sync + 'static,
{
    match e {
        RequestTokenError::ServerResponse(response) => {
            let code = serde_json::to_value(&response)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(safe_code))
                .unwrap_or_else(|| "invalid_error_code".into());
            ProviderError::Rejected(code)
        }
        RequestTokenError::Request(inner) => unavailable(inner),
        RequestTokenError::Parse(inner, _body) => {
            // serde messages quote the offending value for type errors; only "missing field"
            // is safe to show as is.
            let message = inner.inner().to_string();
            let what = match message.split(" at line ").next() {
                Some(missing) if missing.starts_with("missing field") => missing.to_owned(),
                _ => format!("{:?} error", inner.inner().classify()),
            };
            ProviderError::Protocol(format!(
                "malformed provider response at `{}`: {what}",
                inner.path()
            ))
        }
        RequestTokenError::Other(message) => ProviderError::Protocol(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_error_codes_are_passed_on() {
        assert_eq!(safe_code("invalid_grant"), "invalid_grant");
        for bad in [
            "",
            "with\"quote",
            "back\\slash",
            "new\nline",
            "é",
            &"x".repeat(65),
        ] {
            assert_eq!(safe_code(bad), "invalid_error_code", "{bad:?}");
        }
    }
}
