//! The shared scriptable provider (`bff-test-op`) as these tests use it: a client
//! configuration for it, a discovered [`OidcProvider`], and the standard code exchange at the
//! fixed test time.

use std::time::Duration;

use bff_domain::ports::{IdentityProvider as _, ProviderError, ProviderLogin};
use bff_domain::{ProviderId, Secret, Timestamp};
use bff_oidc::{OidcProvider, OidcProviderConfig};
pub(crate) use bff_test_op::{
    ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, CODE, NONCE, NOW, REDIRECT_URI, Script, Signer, TestOp,
    VERIFIER, at_hash, b64, fixture, pkce_s256, sign_raw,
};

/// A client of a [`TestOp`].
pub(crate) trait ClientOf {
    /// The configuration of the tests' client: scopes `openid profile`, a post-logout
    /// redirect, userinfo on, no algorithm allowlist (derived from discovery).
    fn config(&self) -> OidcProviderConfig;

    /// The provider discovered with `config`.
    async fn provider_with(&self, config: OidcProviderConfig) -> OidcProvider;

    /// The provider discovered with [`ClientOf::config`].
    async fn provider(&self) -> OidcProvider;
}

impl ClientOf for TestOp {
    fn config(&self) -> OidcProviderConfig {
        let mut config = OidcProviderConfig::new(
            ProviderId::parse("test").unwrap(),
            self.issuer.clone(),
            CLIENT_ID,
            Secret::new(CLIENT_SECRET),
        );
        config.scopes = vec!["openid".into(), "profile".into()];
        config.post_logout_redirect_uri = Some("https://app.example/".into());
        config.http_timeout = Duration::from_secs(5);
        config.userinfo = true;
        config
    }

    async fn provider_with(&self, config: OidcProviderConfig) -> OidcProvider {
        OidcProvider::discover(
            config,
            bff_oidc::http_client(Duration::from_secs(5), None).unwrap(),
        )
        .await
        .unwrap()
    }

    async fn provider(&self) -> OidcProvider {
        self.provider_with(self.config()).await
    }
}

/// Starts a provider with `script`.
pub(crate) async fn start_op(script: Script) -> TestOp {
    TestOp::start(script).await
}

/// A provider with the default script.
pub(crate) async fn default_op() -> TestOp {
    TestOp::start_default().await
}

pub(crate) fn now() -> Timestamp {
    Timestamp::from_unix_seconds(NOW)
}

/// The standard code exchange of these tests, at `now`.
pub(crate) async fn exchange_at(
    p: &OidcProvider,
    now: Timestamp,
) -> Result<ProviderLogin, ProviderError> {
    p.exchange_code(CODE, &Secret::new(VERIFIER), REDIRECT_URI, NONCE, now)
        .await
}

pub(crate) async fn exchange(p: &OidcProvider) -> Result<ProviderLogin, ProviderError> {
    exchange_at(p, now()).await
}

/// Asserts that an error names none of the secrets the tests use.
pub(crate) fn assert_no_secret(err: &ProviderError) {
    let shown = format!("{err} {err:?} {:?}", std::error::Error::source(err));
    for secret in [CLIENT_SECRET, ACCESS_TOKEN, CODE, VERIFIER, "rt-1", "eyJ"] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
}
