//! A deliberately misbehaving OpenID Provider for hostile-input tests: it signs ID tokens with a
//! test key (ES256) and can tamper with them or lie about the issuer. The real-provider flows use
//! `oidc-provider`; this exists because a certified provider cannot be made to misbehave.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::web::{Data, Form, Json, Query, Redirect};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler, post};
use serde::Deserialize;
use serde_json::{Value, json};

/// Test-only P-256 key (PKCS#8 DER), generated for these tests and used nowhere else.
const TEST_KEY_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSZdFvXd3HkWijmSqhbOg/hHUWYd1/OK8ZeRIlM3HMAehRANCAASSuRwmG7N2iLVOrWpSjMVPeloaoiYZexyCmlKfxJBsg2OAHWwCsPrQOURd/RgsrlCiiEUBbZkMuLH/RJc6NgtU";
const TEST_KEY_X: &str = "krkcJhuzdoi1Tq1qUozFT3paGqImGXscgppSn8SQbIM";
const TEST_KEY_Y: &str = "Y4AdbAKw-tA5RF39GCyuUKKIRQFtmQy4sf9Elzo2C1Q";

/// How the provider misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A correct ID token.
    Honest,
    /// The payload is changed after signing.
    TamperedIdToken,
    /// The ID token names another issuer.
    WrongIssInIdToken,
    /// The authorization response's `iss` parameter names another issuer (mix-up).
    WrongIssParameter,
    /// The ID token carries another nonce (replayed token).
    WrongNonce,
}

#[derive(Default)]
struct State {
    mode: Option<Mode>,
    nonce: Option<String>,
    issuer: String,
}

type Shared = Arc<Mutex<State>>;

pub struct FakeOp {
    pub issuer: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeOp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl FakeOp {
    pub async fn start(mode: Mode) -> FakeOp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state: Shared = Arc::new(Mutex::new(State {
            mode: Some(mode),
            nonce: None,
            issuer: issuer.clone(),
        }));
        let app = Route::new()
            .at("/.well-known/openid-configuration", get(discovery))
            .at("/jwks", get(jwks))
            .at("/authorize", get(authorize))
            .at("/token", post(token))
            .data(state);
        let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        let _ = rx.await;
                    },
                    None,
                )
                .await;
        });
        FakeOp {
            issuer,
            shutdown: Some(tx),
        }
    }
}

#[handler]
fn discovery(Data(state): Data<&Shared>) -> Json<Value> {
    let issuer = state.lock().unwrap().issuer.clone();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

#[handler]
fn jwks() -> Json<Value> {
    Json(json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": TEST_KEY_X, "y": TEST_KEY_Y,
    }]}))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    redirect_uri: String,
    state: String,
    nonce: String,
}

#[handler]
fn authorize(Data(state): Data<&Shared>, Query(q): Query<AuthorizeQuery>) -> Redirect {
    let mut s = state.lock().unwrap();
    s.nonce = Some(q.nonce);
    let iss = if s.mode == Some(Mode::WrongIssParameter) {
        "https://evil.example".to_owned()
    } else {
        s.issuer.clone()
    };
    let mut url = reqwest::Url::parse(&q.redirect_uri).unwrap();
    url.query_pairs_mut()
        .append_pair("code", "fake-code")
        .append_pair("state", &q.state)
        .append_pair("iss", &iss);
    Redirect::see_other(url.to_string())
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
}

#[handler]
fn token(Data(state): Data<&Shared>, Form(form): Form<TokenForm>) -> Response {
    if form.grant_type != "authorization_code" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let s = state.lock().unwrap();
    let mode = s.mode.unwrap_or(Mode::Honest);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": if mode == Mode::WrongIssInIdToken { "https://evil.example".to_owned() } else { s.issuer.clone() },
        "sub": "mallory",
        "aud": "fake-client",
        "iat": now,
        "exp": now + 300,
        "nonce": if mode == Mode::WrongNonce { "replayed".to_owned() } else { s.nonce.clone().unwrap_or_default() },
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let key = EncodingKey::from_ec_der(&STANDARD.decode(TEST_KEY_PKCS8).unwrap());
    let mut id_token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    if mode == Mode::TamperedIdToken {
        // Re-encode the payload with another subject, keeping the original signature.
        let parts: Vec<&str> = id_token.split('.').collect();
        let mut tampered = claims.clone();
        tampered["sub"] = json!("admin");
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&tampered).unwrap());
        id_token = format!("{}.{}.{}", parts[0], payload, parts[2]);
    }
    Json(json!({
        "access_token": "fake-access-token",
        "refresh_token": "fake-refresh-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}
