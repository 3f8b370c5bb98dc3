//! [`OidcProvider`]: one configured OpenID Provider, implementing the domain's
//! `IdentityProvider` port. This module discovers the provider and validates its ID tokens; each
//! protocol step lives in its own module:
//!
//! - [`authorization`]: the authorization request (state, nonce, PKCE S256).
//! - [`token`]: the token endpoint (code exchange, refresh, client credentials, RFC 7009
//!   revocation) and its errors.
//! - [`userinfo`]: the userinfo endpoint.
//! - [`end_session`]: the RP-initiated logout URL.
//! - back-channel logout tokens are validated by `crate::logout_token` against this provider's
//!   keys and algorithms (`validate_logout_token`), like ID tokens.
//! - [`signing_algorithms`]: which ID token algorithms are accepted.
//!
//! The OAuth steps go through the `oauth2` crate; the OIDC parts (nonce, ID token validation,
//! userinfo, end-session URL) are ours. Every call to the provider runs within `http_timeout`;
//! running out, like any transport failure, is `ProviderError::Unavailable`. OAuth `error` codes
//! become `Rejected(code)` (only well-formed codes are passed on); ID token failures become
//! `IdTokenInvalid(check)`. No token, code, verifier or secret is ever logged or put into an
//! error.

mod authorization;
mod end_session;
mod signing_algorithms;
mod token;
mod userinfo;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bff_domain::ports::{
    AuthorizationRequest, BoxError, ClientToken, Events, IdentityProvider, LogoutToken,
    ProviderError, ProviderLogin,
};
use bff_domain::{Claims, Prompt, ProviderId, Secret, Timestamp, TokenSet};
use jsonwebtoken::Algorithm;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{
    AuthType, AuthUrl, Client, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, RevocationUrl, StandardRevocableToken, TokenUrl,
};

use crate::client_assertion::{AssertionAudience, ClientAssertion, ClientCertificate};
use crate::config::{ClientAuthMethod, OidcProviderConfig, PushedAuthorization};
use crate::discovery::{self, DiscoveryError, ProviderMetadata};
use crate::id_token::{self, Expectations, Grant, IdTokenProblem};
use crate::jwks::JwksCache;
use crate::logout_token;

/// The `oauth2` client for the discovered endpoints: authorization and token set, revocation
/// when the provider has one.
type OAuthClient = Client<
    BasicErrorResponse,
    token::OidcTokenResponse,
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
    /// Where authorization requests are pushed (RFC 9126), when they are.
    par_endpoint: Option<String>,
    /// The signer of `private_key_jwt` assertions, with that client authentication.
    assertion: Option<ClientAssertion>,
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
            .field("algorithms", &self.algorithms)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

fn config_error(what: &str, e: impl fmt::Display) -> DiscoveryError {
    DiscoveryError::Config(format!("{what}: {e}"))
}

/// Wraps a cause as [`ProviderError::Unavailable`].
fn unavailable(e: impl Into<BoxError>) -> ProviderError {
    ProviderError::Unavailable(e.into())
}

/// The `oauth2` client for `metadata`'s endpoints with `config`'s client authentication.
fn oauth_client(
    config: &OidcProviderConfig,
    metadata: &ProviderMetadata,
) -> Result<OAuthClient, DiscoveryError> {
    let revocation = metadata
        .revocation_endpoint
        .as_ref()
        .map(|u| RevocationUrl::new(u.clone()))
        .transpose()
        .map_err(|e| config_error("revocation_endpoint", e))?;
    let mut client = Client::new(ClientId::new(config.client_id.clone()));
    if config.client_auth.uses_secret() {
        client =
            client.set_client_secret(ClientSecret::new(config.client_secret.expose().to_owned()));
    }
    Ok(client
        .set_auth_type(match config.client_auth {
            ClientAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
            // `client_id` in the body and, for `private_key_jwt`, no secret: each request adds
            // its assertion (`token::client_assertion`).
            ClientAuthMethod::ClientSecretPost | ClientAuthMethod::PrivateKeyJwt => {
                AuthType::RequestBody
            }
        })
        .set_auth_uri(
            AuthUrl::new(metadata.authorization_endpoint.clone())
                .map_err(|e| config_error("authorization_endpoint", e))?,
        )
        .set_token_uri(
            TokenUrl::new(metadata.token_endpoint.clone())
                .map_err(|e| config_error("token_endpoint", e))?,
        )
        .set_revocation_url_option(revocation))
}

/// The pushed authorization request endpoint logins go through, if any (see
/// [`PushedAuthorization`]): the provider's, when it advertises one and the configuration does
/// not turn pushed requests off, or when the provider requires them. An error when the
/// configuration says `always` or the provider requires them, and it advertises none.
fn par_endpoint(
    config: &OidcProviderConfig,
    metadata: &ProviderMetadata,
) -> Result<Option<String>, DiscoveryError> {
    let offered = metadata.pushed_authorization_request_endpoint.as_ref();
    let wanted = match config.pushed_authorization_requests {
        PushedAuthorization::IfOffered => offered.is_some(),
        PushedAuthorization::Always => true,
        PushedAuthorization::Off => false,
    };
    if !wanted && !metadata.require_pushed_authorization_requests {
        return Ok(None);
    }
    match offered {
        Some(endpoint) => Ok(Some(endpoint.clone())),
        None => Err(config_error(
            "pushed_authorization_requests",
            "the provider advertises no pushed_authorization_request_endpoint",
        )),
    }
}

/// Refuses a configured client authentication that the provider's
/// `token_endpoint_auth_methods_supported` leaves out: every code exchange would fail there with
/// `invalid_client`, so the start says so instead of the first login. A provider that lists
/// nothing is not judged (OIDC Discovery makes that `client_secret_basic` only, but providers
/// that accept more do not always say so).
fn check_client_auth(
    config: &OidcProviderConfig,
    metadata: &ProviderMetadata,
) -> Result<(), DiscoveryError> {
    let wanted = config.client_auth.as_str();
    let Some(supported) = &metadata.token_endpoint_auth_methods_supported else {
        return Ok(());
    };
    if supported.iter().any(|method| method == wanted) {
        return Ok(());
    }
    Err(config_error(
        "client_auth",
        format!(
            "the provider does not accept {wanted} at its token endpoint (it advertises: {})",
            supported.join(", ")
        ),
    ))
}

/// The `private_key_jwt` signer for `config`'s key at the provider `metadata` describes: the
/// key's algorithm that the provider accepts, the audience as configured. `None` with the
/// secret methods.
fn client_assertion(
    config: &OidcProviderConfig,
    metadata: &ProviderMetadata,
) -> Result<Option<ClientAssertion>, DiscoveryError> {
    let (ClientAuthMethod::PrivateKeyJwt, Some(key)) = (config.client_auth, &config.private_key)
    else {
        return Ok(None);
    };
    let audience = match config.client_assertion_audience {
        AssertionAudience::Issuer => metadata.issuer.clone(),
        AssertionAudience::TokenEndpoint => metadata.token_endpoint.clone(),
    };
    ClientAssertion::bind(
        key.clone(),
        &config.client_id,
        metadata
            .token_endpoint_auth_signing_alg_values_supported
            .as_deref(),
        audience,
    )
    .map(Some)
    .map_err(|e| config_error("private_key", e))
}

/// A client certificate that has expired, or will within [`CERTIFICATE_WARNING_DAYS`], is
/// worth a warning at start: the provider will refuse (or soon refuse) every assertion it
/// identifies, and a certificate is renewed at the provider, which the BFF cannot do.
fn warn_of_expiry(provider: &ProviderId, certificate: &ClientCertificate) {
    let left = certificate
        .not_after()
        .duration_since(std::time::SystemTime::now())
        .map_or(0, |left| left.as_secs() / 86_400);
    if left < CERTIFICATE_WARNING_DAYS {
        tracing::warn!(
            provider = %provider,
            days_left = left,
            thumbprint = certificate.sha256_thumbprint(),
            "the client certificate for private_key_jwt expires soon or has expired: register \
             a new one at the provider and set client_certificate_file to it"
        );
    }
}

/// How many days before a client certificate's expiry the start warns of it.
const CERTIFICATE_WARNING_DAYS: u64 = 30;

impl OidcProvider {
    /// Checks `config`, fetches the discovery document of its issuer (which must name exactly
    /// that issuer) and loads the JWKS once. `http` should come from [`crate::http_client`]
    /// (no redirects).
    ///
    /// # Errors
    /// [`DiscoveryError`] when the configuration is unusable (e.g. an HMAC algorithm in the
    /// allowlist), the metadata or the JWKS cannot be loaded, the issuer differs, or the
    /// provider signs ID tokens only with algorithms that are not allowed.
    pub async fn discover(
        config: OidcProviderConfig,
        http: reqwest::Client,
    ) -> Result<Self, DiscoveryError> {
        config.validate()?;
        let metadata = discovery::fetch(&http, &config.issuer, config.http_timeout).await?;
        let algorithms = signing_algorithms::id_token_algorithms(&config, &metadata)?;
        check_client_auth(&config, &metadata)?;
        let oauth = oauth_client(&config, &metadata)?;
        let assertion = client_assertion(&config, &metadata)?;
        let par_endpoint = par_endpoint(&config, &metadata)?;
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
        tracing::info!(
            provider = %config.id,
            issuer = %config.issuer,
            pushed_authorization_requests = par_endpoint.is_some(),
            client_auth = config.client_auth.as_str(),
            client_assertion_alg = assertion.as_ref().map_or("", ClientAssertion::algorithm_name),
            "provider discovered"
        );
        if let Some(certificate) = config.private_key.as_ref().and_then(|k| k.certificate()) {
            warn_of_expiry(&config.id, certificate);
        }
        Ok(Self {
            config,
            par_endpoint,
            assertion,
            algorithms,
            metadata,
            oauth,
            http,
            jwks,
        })
    }

    /// The provider telling `events` what it does that operators count (JWKS refetches).
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn Events>) -> Self {
        self.jwks.tell(self.config.id.clone(), events);
        self
    }

    /// The discovered metadata.
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    /// The configuration this provider was built from.
    pub fn config(&self) -> &OidcProviderConfig {
        &self.config
    }

    /// The ID token signing algorithms this provider accepts: the configured ones, or those
    /// derived from its metadata.
    pub fn id_token_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
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

    /// Validates an ID token from `grant` against the current keys, refetching them once
    /// (rate-limited) when its `kid` is unknown.
    async fn validate_id_token(
        &self,
        token: &str,
        grant: Grant<'_>,
        access_token: &str,
        now: Timestamp,
    ) -> Result<Claims, ProviderError> {
        let expect = Expectations {
            issuer: &self.config.issuer,
            client_id: &self.config.client_id,
            grant,
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

    /// What a back-channel logout token for this client must satisfy at `now`: the ID token's
    /// issuer, client, algorithms and clock skew.
    fn logout_expectations(&self, now: Timestamp) -> logout_token::Expectations<'_> {
        logout_token::Expectations {
            issuer: &self.config.issuer,
            client_id: &self.config.client_id,
            algorithms: &self.algorithms,
            skew: self.config.clock_skew,
            now,
        }
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
        authorization::request(&self.oauth, &self.config.scopes, redirect_uri, prompt)
    }

    async fn push_authorization_request(
        &self,
        request: AuthorizationRequest,
    ) -> Result<AuthorizationRequest, ProviderError> {
        match &self.par_endpoint {
            None => Ok(request),
            Some(endpoint) => {
                self.within(authorization::push(self, endpoint, request))
                    .await
            }
        }
    }

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &Secret,
        redirect_uri: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderLogin, ProviderError> {
        let tokens = token::exchange_code(self, code, pkce_verifier, redirect_uri, now).await?;
        let id_token = tokens
            .id_token
            .as_ref()
            .ok_or_else(|| ProviderError::IdTokenInvalid("missing".into()))?;
        let claims = self
            .validate_id_token(
                id_token.expose(),
                Grant::AuthorizationCode { nonce },
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
        if original.subject().is_none() {
            // Nothing a refreshed ID token could be checked against: do not spend the grant.
            return Err(ProviderError::IdTokenInvalid("sub".into()));
        }
        let tokens = token::refresh(self, refresh_token, now).await?;
        if let Some(id_token) = &tokens.id_token {
            self.validate_id_token(
                id_token.expose(),
                Grant::RefreshToken {
                    original: original.as_map(),
                },
                tokens.access_token.expose(),
                now,
            )
            .await?;
        }
        Ok(tokens)
    }

    async fn revoke_refresh_token(&self, refresh_token: &Secret) -> Result<(), ProviderError> {
        token::revoke_refresh_token(self, refresh_token).await
    }

    async fn client_credentials(
        &self,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<ClientToken, ProviderError> {
        token::client_credentials(self, scopes, now).await
    }

    async fn userinfo(
        &self,
        access_token: &Secret,
        expected_subject: &str,
    ) -> Result<Option<Claims>, ProviderError> {
        if !self.config.userinfo {
            return Ok(None);
        }
        let Some(endpoint) = self.metadata.userinfo_endpoint.as_deref() else {
            return Ok(None);
        };
        userinfo::fetch(self, endpoint, access_token, expected_subject)
            .await
            .map(Some)
    }

    fn end_session_url(&self, id_token_hint: Option<&Secret>, state: &str) -> Option<String> {
        end_session::url(
            self.metadata.end_session_endpoint.as_deref()?,
            &self.config,
            id_token_hint,
            state,
        )
    }

    async fn validate_logout_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<LogoutToken, ProviderError> {
        let expect = self.logout_expectations(now);
        let keys = self.jwks.keys().await;
        let result = match logout_token::validate(token, &keys, &expect) {
            Err(IdTokenProblem::UnknownKid) => {
                // As for ID tokens: keys may have rotated; refetch at most once per interval.
                self.jwks.refresh_if_allowed().await;
                let current = self.jwks.keys().await;
                logout_token::validate(token, &current, &expect)
            }
            other => other,
        };
        result.map_err(|problem| {
            tracing::info!(provider = %self.config.id, check = %problem, "logout token refused");
            ProviderError::LogoutTokenInvalid(problem.to_string())
        })
    }
}
