//! A scripted OpenID Provider on loopback (poem on 127.0.0.1:0): discovery, JWKS, token,
//! userinfo and revocation endpoints. It signs ID tokens with the test-only keys in
//! `tests/fixtures/test-keys.json` and records what clients sent it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bff_domain::ports::{ProviderError, ProviderLogin};
use bff_domain::{ProviderId, Secret, Timestamp};
use bff_oidc::{OidcProvider, OidcProviderConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::http::{HeaderMap, StatusCode};
use poem::listener::TcpAcceptor;
use poem::web::{Data, Form, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler, post};
use serde_json::{Value, json};

/// The fixed "now" of every test; the mock issues tokens relative to it.
pub(crate) const NOW: i64 = 1_800_000_000;
pub(crate) const CLIENT_ID: &str = "client";
pub(crate) const CLIENT_SECRET: &str = "very-secret-value";
pub(crate) const ACCESS_TOKEN: &str = "opaque-access-token";
pub(crate) const NONCE: &str = "nonce-1";
pub(crate) const CODE: &str = "the-authorization-code";
pub(crate) const VERIFIER: &str = "the-pkce-verifier-0123456789-0123456789-abcdef";
pub(crate) const REDIRECT_URI: &str = "https://app.example/bff/callback";

const TEST_KEYS: &str = include_str!("../fixtures/test-keys.json");

pub(crate) fn fixture(name: &str) -> String {
    let keys: Value = serde_json::from_str(TEST_KEYS).unwrap();
    keys[name].as_str().unwrap().to_owned()
}

fn der(name: &str) -> Vec<u8> {
    STANDARD.decode(fixture(name)).unwrap()
}

/// A signing key of the mock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Signer {
    /// P-256 key 1, kid `k1`, ES256.
    #[default]
    Ec1,
    /// P-256 key 2, kid `k2`, ES256 (published only after "rotation").
    Ec2,
    /// RSA key, kid `rsa`, RS256.
    Rsa,
}

impl Signer {
    pub(crate) fn alg(self) -> Algorithm {
        match self {
            Signer::Ec1 | Signer::Ec2 => Algorithm::ES256,
            Signer::Rsa => Algorithm::RS256,
        }
    }

    pub(crate) fn kid(self) -> &'static str {
        match self {
            Signer::Ec1 => "k1",
            Signer::Ec2 => "k2",
            Signer::Rsa => "rsa",
        }
    }

    pub(crate) fn key(self) -> EncodingKey {
        match self {
            Signer::Ec1 => EncodingKey::from_ec_der(&der("ec1_private_pkcs8_der_b64")),
            Signer::Ec2 => EncodingKey::from_ec_der(&der("ec2_private_pkcs8_der_b64")),
            Signer::Rsa => EncodingKey::from_rsa_der(&der("rsa_private_pkcs1_der_b64")),
        }
    }

    /// Signs `claims` with this key under `kid`.
    pub(crate) fn sign(self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg());
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.key()).unwrap()
    }
}

/// Signs `claims` with an arbitrary header algorithm and key (for hostile tokens).
pub(crate) fn sign_raw(
    alg: Algorithm,
    kid: Option<&str>,
    key: &EncodingKey,
    claims: &Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub(crate) fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// What the token endpoint saw.
#[derive(Clone, Debug)]
pub(crate) struct TokenCall {
    /// `basic`, `post`, or something else when both or neither were used.
    pub(crate) auth: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) form: Vec<(String, String)>,
}

impl TokenCall {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the mock behaves; tests change it between calls.
#[derive(Default)]
pub(crate) struct Script {
    /// The issuer the discovery document claims (for the mismatch test).
    pub(crate) claimed_issuer: Option<String>,
    /// Merged into the discovery document; `null` removes a member.
    pub(crate) metadata_overrides: Value,
    /// Publish key 2 (`k2`) in the JWKS.
    pub(crate) publish_ec2: bool,
    /// Which key signs ID tokens, and under which kid (default: the key's own).
    pub(crate) signer: Signer,
    pub(crate) kid_override: Option<String>,
    /// Merged into the ID token claims; `null` removes a claim.
    pub(crate) claim_overrides: Value,
    /// Return exactly this ID token.
    pub(crate) raw_id_token: Option<String>,
    /// Leave the ID token out of the token response.
    pub(crate) omit_id_token: bool,
    /// Members merged into the token response.
    pub(crate) token_response_overrides: Value,
    /// Answer the token endpoint with this OAuth error (HTTP 400).
    pub(crate) token_error: Option<String>,
    /// Wait this long before answering the token endpoint.
    pub(crate) token_delay: Option<Duration>,
    pub(crate) userinfo_sub: String,
    /// Answer userinfo with a signed JWT (`application/jwt`).
    pub(crate) userinfo_jwt: bool,
    // Recordings.
    pub(crate) token_calls: Vec<TokenCall>,
    pub(crate) revocations: Vec<TokenCall>,
    pub(crate) userinfo_bearers: Vec<String>,
}

/// A running mock provider.
#[derive(Clone)]
pub(crate) struct Op {
    pub(crate) script: Arc<Mutex<Script>>,
    pub(crate) jwks_hits: Arc<AtomicUsize>,
    pub(crate) issuer: String,
}

impl Op {
    pub(crate) fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    pub(crate) fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    /// The claims of a good ID token for this provider.
    pub(crate) fn good_claims(&self, alg: Algorithm) -> Value {
        json!({
            "iss": self.issuer, "aud": CLIENT_ID, "sub": "alice", "nonce": NONCE,
            "iat": NOW - 5, "exp": NOW + 300, "sid": "op-session-1",
            "at_hash": bff_oidc::id_token::at_hash(alg, ACCESS_TOKEN),
        })
    }

    pub(crate) fn config(&self) -> OidcProviderConfig {
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

    pub(crate) async fn provider_with(&self, config: OidcProviderConfig) -> OidcProvider {
        OidcProvider::discover(
            config,
            bff_oidc::http_client(Duration::from_secs(5)).unwrap(),
        )
        .await
        .unwrap()
    }

    pub(crate) async fn provider(&self) -> OidcProvider {
        self.provider_with(self.config()).await
    }
}

pub(crate) fn now() -> Timestamp {
    Timestamp::from_unix_seconds(NOW)
}

/// The standard code exchange of these tests, at `now`.
pub(crate) async fn exchange_at(
    p: &OidcProvider,
    now: Timestamp,
) -> Result<ProviderLogin, ProviderError> {
    use bff_domain::ports::IdentityProvider as _;
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

fn merge(target: &mut Value, overrides: &Value) {
    if let (Some(target), Some(overrides)) = (target.as_object_mut(), overrides.as_object()) {
        for (k, v) in overrides {
            if v.is_null() {
                target.remove(k);
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

#[handler]
fn discovery(Data(op): Data<&Op>) -> Json<Value> {
    let s = op.script();
    let issuer = &op.issuer;
    let mut doc = json!({
        "issuer": s.claimed_issuer.clone().unwrap_or_else(|| issuer.clone()),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "end_session_endpoint": format!("{issuer}/logout?x=1"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    });
    merge(&mut doc, &s.metadata_overrides);
    Json(doc)
}

#[handler]
fn jwks(Data(op): Data<&Op>) -> Json<Value> {
    op.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let (x1, y1) = (fixture("ec1_x"), fixture("ec1_y"));
    let mut keys = vec![
        json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": x1, "y": y1}),
        json!({"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": fixture("rsa_n"), "e": fixture("rsa_e")}),
        // Keys a client must skip: one for encryption, one of a type it does not know.
        json!({"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": x1, "y": y1}),
        json!({"kty": "PQC", "kid": "future", "pub": "AAAA"}),
    ];
    if op.script().publish_ec2 {
        keys.push(json!({"kty": "EC", "crv": "P-256", "kid": "k2", "alg": "ES256", "x": fixture("ec2_x"), "y": fixture("ec2_y")}));
    }
    Json(json!({ "keys": keys }))
}

/// Client authentication as the endpoint saw it.
fn client_auth(headers: &HeaderMap, form: &[(String, String)]) -> (String, String, String) {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(|b| String::from_utf8(STANDARD.decode(b).unwrap()).unwrap());
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let post_secret = param("client_secret");
    match (basic, post_secret) {
        (Some(basic), None) => {
            let (id, secret) = basic.split_once(':').unwrap();
            let decode = |v: &str| {
                url::form_urlencoded::parse(format!("v={v}").as_bytes())
                    .next()
                    .unwrap()
                    .1
                    .into_owned()
            };
            ("basic".into(), decode(id), decode(secret))
        }
        (None, Some(secret)) => (
            "post".into(),
            param("client_id").unwrap_or_default(),
            secret,
        ),
        (basic, post) => (
            format!("basic={} post={}", basic.is_some(), post.is_some()),
            String::new(),
            String::new(),
        ),
    }
}

#[handler]
async fn token(
    Data(op): Data<&Op>,
    headers: &HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let delay = op.script().token_delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut s = op.script();
    let (auth, client_id, client_secret) = client_auth(headers, &form);
    s.token_calls.push(TokenCall {
        auth,
        client_id,
        client_secret,
        form: form.clone(),
    });
    let refresh = form.iter().find(|(k, _)| k == "refresh_token");
    if let Some(error) = s.token_error.clone() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response();
    }
    if refresh.is_some_and(|(_, v)| v == "dead") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let id_token = s.raw_id_token.clone().unwrap_or_else(|| {
        let mut claims = op.good_claims(s.signer.alg());
        if refresh.is_some() {
            claims.as_object_mut().unwrap().remove("nonce");
        }
        merge(&mut claims, &s.claim_overrides);
        let kid = s
            .kid_override
            .clone()
            .unwrap_or_else(|| s.signer.kid().into());
        s.signer.sign(Some(&kid), &claims)
    });
    let mut body = json!({
        "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 120,
        "refresh_token": "rt-2", "scope": "openid profile", "id_token": id_token,
    });
    if s.omit_id_token {
        body.as_object_mut().unwrap().remove("id_token");
    }
    merge(&mut body, &s.token_response_overrides);
    Json(body).into_response()
}

#[handler]
fn revoke(
    Data(op): Data<&Op>,
    headers: &HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let (auth, client_id, client_secret) = client_auth(headers, &form);
    let call = TokenCall {
        auth,
        client_id,
        client_secret,
        form,
    };
    let unsupported = call.param("token") == Some("unsupported");
    op.script().revocations.push(call);
    if unsupported {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_token_type"})),
        )
            .into_response();
    }
    StatusCode::OK.into_response()
}

#[handler]
fn userinfo(Data(op): Data<&Op>, headers: &HeaderMap) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let mut s = op.script();
    s.userinfo_bearers.push(bearer.clone());
    if bearer == "expired" {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let claims = json!({"sub": s.userinfo_sub, "email": "a@example.test"});
    if s.userinfo_jwt {
        let jwt = Signer::Ec1.sign(Some("k1"), &claims);
        return Response::builder()
            .content_type("application/jwt")
            .body(jwt);
    }
    Json(claims).into_response()
}

/// Starts a mock provider with `script` (its `issuer` is filled in).
pub(crate) async fn start_op(script: Script) -> Op {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let op = Op {
        script: Arc::new(Mutex::new(Script {
            userinfo_sub: if script.userinfo_sub.is_empty() {
                "alice".into()
            } else {
                script.userinfo_sub.clone()
            },
            ..script
        })),
        jwks_hits: Arc::new(AtomicUsize::new(0)),
        issuer,
    };
    let app = Route::new()
        .at("/.well-known/openid-configuration", get(discovery))
        .at("/jwks", get(jwks))
        .at("/token", post(token))
        .at("/revoke", post(revoke))
        .at("/userinfo", get(userinfo))
        .data(op.clone());
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    op
}

/// A mock with the default script.
pub(crate) async fn default_op() -> Op {
    start_op(Script::default()).await
}
