//! Fakes for tests of the domain and its adapters: fixed clock, seeded randomness, a cipher that
//! checks associated data, a scripted identity provider, simple stores (`FakeStores`, held to the
//! store contract like every adapter), and the store contract suite every store adapter runs
//! (`store_contract`, one test per rule through `store_contract_tests!`).
//!
//! Compiled only for tests and with the `testkit` feature; never part of a release build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod fake_stores;
pub mod store_contract;

pub use fake_stores::{DeleteGate, FakeStores};

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ports::{
    AuthorizationRequest, Cipher, CipherError, ClientToken, Clock, IdentityProvider, LogoutToken,
    ProviderError, ProviderLogin, Random,
};
use crate::{Claims, Prompt, ProviderId, Sealed, Secret, Timestamp, TokenSet};

/// A clock that stands still until told to move. It counts milliseconds, so short sleeps add
/// up; the domain sees whole seconds.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn at(seconds: i64) -> Self {
        Self(AtomicI64::new(seconds * 1000))
    }

    pub fn advance(&self, by: Duration) {
        self.0
            .fetch_add(i64::try_from(by.as_millis()).unwrap(), Ordering::SeqCst);
    }

    pub fn set(&self, seconds: i64) {
        self.0.store(seconds * 1000, Ordering::SeqCst);
    }
}

#[async_trait]
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.0.load(Ordering::SeqCst).div_euclid(1000))
    }

    /// Moves the clock forward by `duration` and yields once, so other futures polled alongside
    /// (a concurrent request in a test) get to run.
    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
        yield_once().await;
    }
}

/// Lets other futures polled alongside run once, like `tokio::task::yield_now` without a
/// runtime.
pub async fn yield_once() {
    YieldOnce { yielded: false }.await;
}

/// Pending exactly once, waking itself.
struct YieldOnce {
    yielded: bool,
}

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.yielded {
            return std::task::Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Deterministic, NOT secure randomness (SplitMix64).
#[derive(Debug)]
pub struct SeededRandom(AtomicU64);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }
}

impl Random for SeededRandom {
    fn fill(&self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A cipher that does not hide anything but does check associated data, so vault rules can be
/// tested without real crypto.
#[derive(Debug, Default)]
pub struct FakeCipher;

impl Cipher for FakeCipher {
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, CipherError> {
        let mut ciphertext = Sha256::digest(aad).to_vec();
        ciphertext.extend_from_slice(plaintext);
        Ok(Sealed {
            key_id: "fake".into(),
            ciphertext,
        })
    }

    fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, CipherError> {
        if sealed.key_id != "fake" {
            return Err(CipherError::UnknownKey);
        }
        let (tag, plain) = sealed.ciphertext.split_at(32.min(sealed.ciphertext.len()));
        if tag != &Sha256::digest(aad)[..] {
            return Err(CipherError::Rejected);
        }
        Ok(plain.to_vec())
    }
}

/// What the scripted provider answers to the next call.
#[derive(Debug, Default)]
pub struct Script {
    pub exchange_error: Option<fn() -> ProviderError>,
    pub refresh_error: Option<fn() -> ProviderError>,
    /// Revoking a refresh token fails with this (the token is recorded in `revoked` either way).
    pub revoke_error: Option<fn() -> ProviderError>,
    /// Times `refresh` yields before answering, as a slow provider would (lets a test run a
    /// second request while the first one holds the refresh lease).
    pub refresh_yields: u32,
    /// Times `exchange_code` yields before answering (a slow token endpoint: lets a test end
    /// the session while a connect's code is being exchanged).
    pub exchange_yields: u32,
    pub subject: Option<String>,
    pub sid: Option<String>,
    /// The provider's metadata says every authorization response carries `iss` (RFC 9207).
    pub requires_iss: bool,
    pub client_credentials_error: Option<fn() -> ProviderError>,
    /// Times `client_credentials` yields before answering, as a slow provider would.
    pub client_credentials_yields: u32,
    /// The client token's `expires_in`; `None` for 300 s.
    pub client_token_lifetime: Option<Duration>,
    /// The answer has no `expires_in` at all.
    pub client_token_without_expiry: bool,
    /// The answer's `scope`; `None` for the requested scopes, `Some(None)` for no `scope`.
    pub client_token_scope: Option<Option<String>>,
    /// `refresh_expires_in` of code exchanges and refreshes, seconds.
    pub refresh_expires_in: Option<u64>,
    /// Put before every token this provider issues, so tests with two providers can tell whose
    /// token they got (`other-access-2`); empty by default (`access-2`).
    pub token_prefix: String,
    /// Claims the ID token carries besides `iss`, `sub`, `nonce` and `name` (replacing those of
    /// the same name): a provider's own claims, or hostile ones.
    pub extra_claims: serde_json::Map<String, Value>,
}

/// An identity provider that issues predictable tokens and records what it was asked.
#[derive(Debug)]
pub struct FakeProvider {
    id: ProviderId,
    issuer: String,
    counter: AtomicU64,
    pub script: Mutex<Script>,
    pub revoked: Mutex<Vec<String>>,
    pub refreshes: AtomicU64,
    pub exchanges: Mutex<Vec<(String, String)>>,
    /// The scopes of every client-credentials grant asked for, failed ones included.
    pub client_grants: Mutex<Vec<Vec<String>>>,
    /// The access token of every userinfo call.
    pub userinfo_tokens: Mutex<Vec<String>>,
}

impl FakeProvider {
    pub fn new(id: &str, issuer: &str) -> Self {
        Self {
            id: ProviderId::parse(id).unwrap(),
            issuer: issuer.into(),
            counter: AtomicU64::new(0),
            script: Mutex::new(Script::default()),
            revoked: Mutex::new(Vec::new()),
            refreshes: AtomicU64::new(0),
            exchanges: Mutex::new(Vec::new()),
            client_grants: Mutex::new(Vec::new()),
            userinfo_tokens: Mutex::new(Vec::new()),
        }
    }

    /// How many client-credentials grants were asked for.
    pub fn client_grant_count(&self) -> usize {
        self.client_grants.lock().unwrap().len()
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A logout token this fake accepts when its claims pass its checks: the claims in the
    /// payload of a compact JWS whose signature is the word `fake-signature`.
    pub fn logout_token(claims: &Value) -> String {
        format!(
            "e30.{}.fake-signature",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
        )
    }

    pub fn tokens(n: u64, now: Timestamp) -> TokenSet {
        Self::tokens_with_prefix("", n, now)
    }

    pub fn tokens_with_prefix(prefix: &str, n: u64, now: Timestamp) -> TokenSet {
        TokenSet {
            access_token: Secret::new(format!("{prefix}access-{n}")),
            refresh_token: Some(Secret::new(format!("{prefix}refresh-{n}"))),
            id_token: Some(Secret::new(format!("{prefix}idtoken-{n}"))),
            access_token_expires_at: Some(now.plus(Duration::from_secs(300))),
            refresh_token_expires_at: None,
            scope: Some("openid profile".into()),
        }
    }
}

#[async_trait]
impl IdentityProvider for FakeProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn issuer(&self) -> &str {
        &self.issuer
    }

    fn requires_issuer_in_authorization_response(&self) -> bool {
        self.script.lock().unwrap().requires_iss
    }

    fn authorization_request(
        &self,
        redirect_uri: &str,
        prompt: Option<Prompt>,
    ) -> Result<AuthorizationRequest, ProviderError> {
        let n = self.next();
        let prompt = prompt
            .map(|p| format!("&prompt={}", p.as_str()))
            .unwrap_or_default();
        Ok(AuthorizationRequest {
            url: format!(
                "{}/authorize?state=state-{n}&redirect_uri={redirect_uri}{prompt}",
                self.issuer
            ),
            state: format!("state-{n}"),
            nonce: format!("nonce-{n}"),
            pkce_verifier: Secret::new(format!("verifier-{n}")),
        })
    }

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &Secret,
        _redirect_uri: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderLogin, ProviderError> {
        self.exchanges
            .lock()
            .unwrap()
            .push((code.to_owned(), pkce_verifier.expose().to_owned()));
        let yields = self.script.lock().unwrap().exchange_yields;
        for _ in 0..yields {
            yield_once().await;
        }
        let script = self.script.lock().unwrap();
        if let Some(error) = script.exchange_error {
            return Err(error());
        }
        let mut claims = json!({
            "iss": self.issuer,
            "sub": script.subject.clone().unwrap_or_else(|| "alice".into()),
            "nonce": nonce,
            "name": "Alice",
        });
        if let Some(sid) = &script.sid {
            claims["sid"] = Value::String(sid.clone());
        }
        let Value::Object(mut map) = claims else {
            unreachable!()
        };
        map.extend(script.extra_claims.clone());
        let mut tokens = Self::tokens_with_prefix(&script.token_prefix, self.next(), now);
        tokens.refresh_token_expires_at = script
            .refresh_expires_in
            .map(|secs| now.plus(Duration::from_secs(secs)));
        Ok(ProviderLogin {
            tokens,
            claims: Claims::new(map),
        })
    }

    async fn refresh(
        &self,
        _refresh_token: &Secret,
        _original: &Claims,
        now: Timestamp,
    ) -> Result<TokenSet, ProviderError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let (error, yields, refresh_expires_in, prefix) = {
            let script = self.script.lock().unwrap();
            (
                script.refresh_error,
                script.refresh_yields,
                script.refresh_expires_in,
                script.token_prefix.clone(),
            )
        };
        for _ in 0..yields {
            yield_once().await;
        }
        if let Some(error) = error {
            return Err(error());
        }
        let mut tokens = Self::tokens_with_prefix(&prefix, self.next(), now);
        tokens.id_token = None;
        tokens.refresh_token_expires_at =
            refresh_expires_in.map(|secs| now.plus(Duration::from_secs(secs)));
        Ok(tokens)
    }

    async fn revoke_refresh_token(&self, refresh_token: &Secret) -> Result<(), ProviderError> {
        self.revoked
            .lock()
            .unwrap()
            .push(refresh_token.expose().to_owned());
        match self.script.lock().unwrap().revoke_error {
            Some(error) => Err(error()),
            None => Ok(()),
        }
    }

    async fn userinfo(
        &self,
        access_token: &Secret,
        expected_subject: &str,
    ) -> Result<Option<Claims>, ProviderError> {
        self.userinfo_tokens
            .lock()
            .unwrap()
            .push(access_token.expose().to_owned());
        let Value::Object(map) = json!({"sub": expected_subject, "email": "alice@example.test"})
        else {
            unreachable!()
        };
        Ok(Some(Claims::new(map)))
    }

    /// Token `client-<provider id>-<n>` for the `n`th grant asked for, expiring as scripted.
    async fn client_credentials(
        &self,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<ClientToken, ProviderError> {
        let n = {
            let mut grants = self.client_grants.lock().unwrap();
            grants.push(scopes.to_vec());
            grants.len()
        };
        let (error, yields, lifetime, without_expiry, scope) = {
            let script = self.script.lock().unwrap();
            (
                script.client_credentials_error,
                script.client_credentials_yields,
                script.client_token_lifetime,
                script.client_token_without_expiry,
                script.client_token_scope.clone(),
            )
        };
        for _ in 0..yields {
            yield_once().await;
        }
        if let Some(error) = error {
            return Err(error());
        }
        Ok(ClientToken {
            access_token: Secret::new(format!("client-{}-{n}", self.id.as_str())),
            expires_at: (!without_expiry)
                .then(|| now.plus(lifetime.unwrap_or(Duration::from_secs(300)))),
            scope: scope.unwrap_or_else(|| Some(scopes.join(" "))),
        })
    }

    fn end_session_url(&self, id_token_hint: Option<&Secret>, state: &str) -> Option<String> {
        Some(format!(
            "{}/logout?id_token_hint={}&state={state}",
            self.issuer,
            id_token_hint.map(Secret::expose).unwrap_or_default()
        ))
    }

    /// Accepts tokens made by [`FakeProvider::logout_token`] with this issuer, this provider's
    /// id as `aud`, a `jti`, an `iat` not more than 60 s ahead, an `exp` not past, and `sub` or
    /// `sid`. The real checks live in `bff-oidc`; these are enough for the domain's rules.
    async fn validate_logout_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<LogoutToken, ProviderError> {
        let invalid = |check: &str| ProviderError::LogoutTokenInvalid(check.to_owned());
        let parts: Vec<&str> = token.split('.').collect();
        let [_, payload, signature] = parts[..] else {
            return Err(invalid("malformed"));
        };
        if signature != "fake-signature" {
            return Err(invalid("signature"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| invalid("malformed"))?;
        let claims: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("malformed"))?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let time = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_i64)
                .map(Timestamp::from_unix_seconds)
        };
        if text("iss").as_deref() != Some(self.issuer.as_str()) {
            return Err(invalid("iss"));
        }
        if text("aud").as_deref() != Some(self.id.as_str()) {
            return Err(invalid("aud"));
        }
        let issued_at = time("iat").ok_or_else(|| invalid("iat"))?;
        if issued_at > now.plus(Duration::from_secs(60)) {
            return Err(invalid("iat"));
        }
        let expires_at = time("exp");
        if expires_at.is_some_and(|exp| now >= exp) {
            return Err(invalid("exp"));
        }
        let token_id = text("jti").ok_or_else(|| invalid("jti"))?;
        let (subject, provider_session_id) = (text("sub"), text("sid"));
        if subject.is_none() && provider_session_id.is_none() {
            return Err(invalid("sub_or_sid"));
        }
        Ok(LogoutToken {
            issuer: self.issuer.clone(),
            subject,
            provider_session_id,
            token_id,
            issued_at,
            expires_at,
        })
    }
}
