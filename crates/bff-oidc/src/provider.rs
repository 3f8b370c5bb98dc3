//! [`OidcProvider`]: one configured OpenID Provider, implementing the domain's
//! `IdentityProvider` port.
//!
//! The OAuth steps go through the `oauth2` crate: the authorization URL with state and PKCE
//! (S256), the code exchange and refresh with the configured client authentication, and RFC 7009
//! revocation. The OIDC parts (nonce, ID token validation, userinfo, end-session URL) are here.
//!
//! Every call to the provider runs within `http_timeout`; running out, like any transport
//! failure, is `ProviderError::Unavailable`. OAuth `error` codes become `Rejected(code)` (only
//! well-formed codes are passed on); ID token failures become `IdTokenInvalid(check)`. No
//! token, code, verifier or secret is ever logged or put into an error.
//!
//! One exception to "the `oauth2` crate sends it": that crate refuses to revoke over plain
//! `http`, so for development providers with an `http` issuer the RFC 7009 request is sent by
//! hand (same parameters and client authentication). Discovery refuses `http` endpoints under an
//! `https` issuer, so production revocation always goes through `oauth2`.

use std::borrow::Cow;
use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bff_domain::ports::{
    AuthorizationRequest, BoxError, IdentityProvider, ProviderError, ProviderLogin,
};
use bff_domain::{Claims, Prompt, ProviderId, Secret, Timestamp, TokenSet};
use jsonwebtoken::Algorithm;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, ExtraTokenFields, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, RevocationUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{ClientAuthMethod, OidcProviderConfig};
use crate::discovery::{self, DiscoveryError, ProviderMetadata};
use crate::id_token::{self, Expectations, IdTokenProblem};
use crate::jwks::JwksCache;

/// The `id_token` member of a token response.
#[derive(Clone, Serialize, Deserialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl fmt::Debug for IdTokenField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenField")
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl ExtraTokenFields for IdTokenField {}

type OidcTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

type OAuthClient = Client<
    BasicErrorResponse,
    OidcTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointSet,
>;

/// A discovered provider: its metadata, an OAuth client for its endpoints, and its keys.
pub struct OidcProvider {
    config: OidcProviderConfig,
    /// The ID token algorithms accepted: configured, or derived from the metadata.
    algorithms: Vec<Algorithm>,
    metadata: ProviderMetadata,
    oauth: OAuthClient,
    http: reqwest::Client,
    jwks: JwksCache,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("config", &self.config)
            .field("metadata", &self.metadata)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

fn config_error(what: &str, e: impl fmt::Display) -> DiscoveryError {
    DiscoveryError::Config(format!("{what}: {e}"))
}

/// The ID token algorithms to accept: the configured list, else the provider's advertised ones
/// that are in the safe default set, else `RS256` when it advertises none.
fn id_token_algorithms(
    config: &OidcProviderConfig,
    metadata: &ProviderMetadata,
) -> Result<Vec<Algorithm>, DiscoveryError> {
    if let Some(configured) = &config.allowed_algorithms {
        return Ok(configured.clone());
    }
    if metadata.id_token_signing_alg_values_supported.is_empty() {
        return Ok(vec![Algorithm::RS256]);
    }
    let safe = OidcProviderConfig::default_algorithms();
    let advertised: Vec<Algorithm> = safe
        .into_iter()
        .filter(|alg| {
            metadata
                .id_token_signing_alg_values_supported
                .iter()
                .any(|name| name.parse::<Algorithm>().ok() == Some(*alg))
        })
        .collect();
    if advertised.is_empty() {
        return Err(DiscoveryError::Config(format!(
            "the provider signs ID tokens only with {:?}, none of which is allowed; set id_token_algorithms",
            metadata.id_token_signing_alg_values_supported
        )));
    }
    Ok(advertised)
}

/// Random URL-safe value with `bytes` of entropy (state and nonce).
fn random_value(bytes: u32) -> String {
    CsrfToken::new_random_len(bytes).secret().clone()
}

/// Wraps a cause as [`ProviderError::Unavailable`].
fn unavailable(e: impl Into<BoxError>) -> ProviderError {
    ProviderError::Unavailable(e.into())
}

impl OidcProvider {
    /// Checks `config`, fetches the discovery document of its issuer (which must name exactly
    /// that issuer) and loads the JWKS once. `http` should come from [`crate::http_client`]
    /// (no redirects).
    ///
    /// # Errors
    /// [`DiscoveryError`] when the configuration is unusable (e.g. an HMAC algorithm in the
    /// allowlist), the metadata or the JWKS cannot be loaded, or the issuer differs.
    pub async fn discover(
        config: OidcProviderConfig,
        http: reqwest::Client,
    ) -> Result<Self, DiscoveryError> {
        config.validate()?;
        let metadata = discovery::fetch(&http, &config.issuer, config.http_timeout).await?;
        let jwks = JwksCache::load(
            http.clone(),
            metadata.jwks_uri.clone(),
            config.http_timeout,
            config.jwks_refetch_interval,
        )
        .await
        .map_err(|reason| DiscoveryError::Jwks {
            url: metadata.jwks_uri.clone(),
            reason,
        })?;
        let revocation = metadata
            .revocation_endpoint
            .as_ref()
            .map(|u| RevocationUrl::new(u.clone()))
            .transpose()
            .map_err(|e| config_error("revocation_endpoint", e))?;
        let oauth = Client::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(config.client_secret.expose().to_owned()))
            .set_auth_type(match config.client_auth {
                ClientAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
                ClientAuthMethod::ClientSecretPost => AuthType::RequestBody,
            })
            .set_auth_uri(
                AuthUrl::new(metadata.authorization_endpoint.clone())
                    .map_err(|e| config_error("authorization_endpoint", e))?,
            )
            .set_token_uri(
                TokenUrl::new(metadata.token_endpoint.clone())
                    .map_err(|e| config_error("token_endpoint", e))?,
            )
            .set_revocation_url_option(revocation);
        let algorithms = id_token_algorithms(&config, &metadata)?;
        tracing::debug!(provider = %config.id, issuer = %config.issuer, "provider discovered");
        Ok(Self {
            config,
            algorithms,
            metadata,
            oauth,
            http,
            jwks,
        })
    }

    /// The discovered metadata.
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    /// The configuration this provider was built from.
    pub fn config(&self) -> &OidcProviderConfig {
        &self.config
    }

    /// Readiness: the metadata document still answers, names the same issuer and is valid.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    pub async fn check(&self) -> Result<(), ProviderError> {
        discovery::fetch(&self.http, &self.config.issuer, self.config.http_timeout)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Runs `call` within the configured HTTP timeout; running out is `Unavailable`.
    async fn within<T>(
        &self,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        tokio::time::timeout(self.config.http_timeout, call)
            .await
            .map_err(unavailable)?
    }

    async fn validate_id_token(
        &self,
        token: &str,
        nonce: Option<&str>,
        subject: Option<&str>,
        access_token: &str,
        now: Timestamp,
    ) -> Result<Claims, ProviderError> {
        let expect = Expectations {
            issuer: &self.config.issuer,
            client_id: &self.config.client_id,
            nonce,
            subject,
            access_token: Some(access_token),
            algorithms: &self.algorithms,
            skew: self.config.clock_skew,
            now,
        };
        let keys = self.jwks.keys().await;
        let result = match id_token::validate(token, &keys, &expect) {
            Err(IdTokenProblem::UnknownKid) => {
                // Keys may have rotated. Whether or not this call may refetch (rate limit),
                // another caller may just have: validate against the current set once more.
                self.jwks.refresh_if_allowed().await;
                let current = self.jwks.keys().await;
                id_token::validate(token, &current, &expect)
            }
            other => other,
        };
        result.map(Claims::new).map_err(|problem| {
            tracing::info!(provider = %self.config.id, check = %problem, "ID token refused");
            ProviderError::IdTokenInvalid(problem.to_string())
        })
    }

    /// The tokens of a token response; refuses token types other than `Bearer`, which is how
    /// the BFF forwards access tokens.
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
            scope: response
                .scopes()
                .map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" ")),
        })
    }

    /// RFC 7009 revocation sent by hand, for plain-`http` (development) providers only: the
    /// `oauth2` crate, rightly, refuses to send a token to a non-`https` revocation endpoint, and
    /// discovery accepts `http` endpoints only under an `http` issuer, whose token endpoint
    /// already sees the same refresh token in cleartext.
    async fn revoke_over_http(&self, endpoint: &str, token: &Secret) -> Result<(), ProviderError> {
        let mut form = vec![
            ("token", token.expose()),
            ("token_type_hint", "refresh_token"),
        ];
        let mut request = self
            .http
            .post(endpoint)
            .header(reqwest::header::ACCEPT, "application/json");
        match self.config.client_auth {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 section 2.3.1: both parts form-urlencoded before Basic encoding.
                let encode = |v: &str| {
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(
                    encode(&self.config.client_id),
                    Some(encode(self.config.client_secret.expose())),
                );
            }
            ClientAuthMethod::ClientSecretPost => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", self.config.client_secret.expose()));
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| unavailable(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let code = response
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(safe_code));
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

#[async_trait]
impl IdentityProvider for OidcProvider {
    fn id(&self) -> &ProviderId {
        &self.config.id
    }

    fn requires_issuer_in_authorization_response(&self) -> bool {
        self.metadata.authorization_response_iss_parameter_supported
    }

    fn issuer(&self) -> &str {
        &self.config.issuer
    }

    fn authorization_request(
        &self,
        redirect_uri: &str,
        prompt: Option<Prompt>,
    ) -> Result<AuthorizationRequest, ProviderError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| ProviderError::Protocol(format!("bad redirect_uri: {e}")))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        // 256 bits each, base64url.
        let nonce = random_value(32);
        let mut request = self
            .oauth
            .authorize_url(|| CsrfToken::new_random_len(32))
            .set_redirect_uri(Cow::Owned(redirect))
            .set_pkce_challenge(challenge)
            .add_extra_param("nonce", nonce.clone());
        if !self.config.scopes.iter().any(|s| s == "openid") {
            request = request.add_scope(Scope::new("openid".into()));
        }
        for scope in &self.config.scopes {
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

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &Secret,
        redirect_uri: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderLogin, ProviderError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| ProviderError::Protocol(format!("bad redirect_uri: {e}")))?;
        let response = self
            .within(async {
                self.oauth
                    .exchange_code(AuthorizationCode::new(code.to_owned()))
                    .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.expose().to_owned()))
                    .set_redirect_uri(Cow::Owned(redirect))
                    .request_async(&self.http)
                    .await
                    .map_err(token_error)
            })
            .await?;
        let tokens = Self::token_set(&response, now)?;
        let id_token = tokens
            .id_token
            .clone()
            .ok_or_else(|| ProviderError::IdTokenInvalid("missing".into()))?;
        let claims = self
            .validate_id_token(
                id_token.expose(),
                Some(nonce),
                None,
                tokens.access_token.expose(),
                now,
            )
            .await?;
        Ok(ProviderLogin { tokens, claims })
    }

    async fn refresh(
        &self,
        refresh_token: &Secret,
        original: &Claims,
        now: Timestamp,
    ) -> Result<TokenSet, ProviderError> {
        let subject = original
            .subject()
            .ok_or_else(|| ProviderError::IdTokenInvalid("session has no sub".into()))?;
        let token = RefreshToken::new(refresh_token.expose().to_owned());
        let response = self
            .within(async {
                self.oauth
                    .exchange_refresh_token(&token)
                    .request_async(&self.http)
                    .await
                    .map_err(token_error)
            })
            .await?;
        let tokens = Self::token_set(&response, now)?;
        if let Some(id_token) = &tokens.id_token {
            // OIDC Core 12.2: same iss, sub and aud; no nonce (the original is not kept).
            self.validate_id_token(
                id_token.expose(),
                None,
                Some(subject),
                tokens.access_token.expose(),
                now,
            )
            .await?;
        }
        Ok(tokens)
    }

    async fn revoke_refresh_token(&self, refresh_token: &Secret) -> Result<(), ProviderError> {
        let Some(endpoint) = self.metadata.revocation_endpoint.as_deref() else {
            return Ok(());
        };
        if !endpoint.starts_with("https://") {
            return self
                .within(self.revoke_over_http(endpoint, refresh_token))
                .await;
        }
        let token = StandardRevocableToken::RefreshToken(RefreshToken::new(
            refresh_token.expose().to_owned(),
        ));
        let request = self
            .oauth
            .revoke_token(token)
            .map_err(|e| ProviderError::Protocol(format!("revocation: {e}")))?;
        self.within(async { request.request_async(&self.http).await.map_err(token_error) })
            .await
    }

    async fn userinfo(
        &self,
        access_token: &Secret,
        expected_subject: &str,
    ) -> Result<Option<Claims>, ProviderError> {
        let Some(endpoint) = self
            .metadata
            .userinfo_endpoint
            .as_ref()
            .filter(|_| self.config.userinfo)
        else {
            return Ok(None);
        };
        let (status, content_type, body) = self
            .within(async {
                let response = self
                    .http
                    .get(endpoint)
                    .bearer_auth(access_token.expose())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|e| unavailable(e.without_url()))?;
                let status = response.status();
                let content_type = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| unavailable(e.without_url()))?;
                Ok((status, content_type, body))
            })
            .await?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ProviderError::Rejected("invalid_token".into()));
        }
        if status.is_server_error() {
            return Err(unavailable(format!("userinfo answered HTTP {status}")));
        }
        if !status.is_success() {
            return Err(ProviderError::Protocol(format!(
                "userinfo answered HTTP {status}"
            )));
        }
        if content_type.starts_with("application/jwt") {
            return Err(ProviderError::Protocol(
                "signed userinfo not supported".into(),
            ));
        }
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) else {
            return Err(ProviderError::Protocol(
                "userinfo is not a JSON object".into(),
            ));
        };
        let claims = Claims::new(map);
        if claims.subject() != Some(expected_subject) {
            return Err(ProviderError::Protocol(
                "userinfo sub differs from the ID token's".into(),
            ));
        }
        Ok(Some(claims))
    }

    fn end_session_url(&self, id_token_hint: Option<&Secret>, state: &str) -> Option<String> {
        let mut url = url::Url::parse(self.metadata.end_session_endpoint.as_ref()?).ok()?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                query.append_pair("id_token_hint", hint.expose());
            }
            if let Some(uri) = &self.config.post_logout_redirect_uri {
                query.append_pair("post_logout_redirect_uri", uri);
            }
            query.append_pair("client_id", &self.config.client_id);
            query.append_pair("state", state);
        }
        Some(url.to_string())
    }
}

/// The PKCE S256 challenge of a verifier, as the authorization request carries it (RFC 7636
/// section 4.2): base64url of its SHA-256, unpadded.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
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
