//! The provider's endpoints (poem on `127.0.0.1:0`), each doing what the [`Script`] says.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::Algorithm;
use poem::http::{HeaderMap, StatusCode};
use poem::listener::TcpAcceptor;
use poem::web::{Data, Form, Json, Query, Redirect};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler, post};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::keys::{Signer, at_hash, b64};
use crate::script::{IssParameter, IssueTime, Script, TokenCall, merge};
use crate::{
    ACCESS_TOKEN, CLIENT_ACCESS_TOKEN, DEAD_REFRESH_TOKEN, NONCE, OP_SESSION_ID, REFRESH_TOKEN,
};

/// What the endpoints share.
#[derive(Debug)]
struct Shared {
    issuer: String,
    script: Mutex<Script>,
    jwks_hits: AtomicUsize,
    /// The nonce of each code the authorization endpoint issued.
    issued_codes: Mutex<HashMap<String, String>>,
}

impl Shared {
    fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    /// The claims of a good ID token under `script`, for `nonce` (none: no `nonce` claim).
    fn claims(&self, script: &Script, alg: Algorithm, nonce: Option<&str>) -> Value {
        let now = match script.issue_time {
            IssueTime::Fixed(at) => at,
            IssueTime::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                .try_into()
                .unwrap(),
        };
        let mut claims = json!({
            "iss": self.issuer, "aud": script.client_id, "sub": script.subject,
            "iat": now - 5, "exp": now + 300, "sid": OP_SESSION_ID,
            "at_hash": at_hash(alg, ACCESS_TOKEN),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        claims
    }
}

/// Sends the shutdown signal when the last [`TestOp`] handle goes.
#[derive(Debug)]
struct StopOnDrop(Option<oneshot::Sender<()>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

/// A running provider; clones share it, and it stops when the last one is dropped.
#[derive(Clone, Debug)]
pub struct TestOp {
    /// `http://127.0.0.1:<port>`, the issuer identifier.
    pub issuer: String,
    shared: Arc<Shared>,
    _stop: Arc<StopOnDrop>,
}

impl TestOp {
    /// Starts a provider following `script`.
    pub async fn start(script: Script) -> TestOp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            script: Mutex::new(script),
            jwks_hits: AtomicUsize::new(0),
            issued_codes: Mutex::new(HashMap::new()),
        });
        let app = Route::new()
            .at("/.well-known/openid-configuration", get(discovery))
            .at("/jwks", get(jwks))
            .at("/authorize", get(authorize))
            .at("/token", post(token))
            .at("/revoke", post(revoke))
            .at("/userinfo", get(userinfo))
            .data(shared.clone());
        let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        let _ = stopped.await;
                    },
                    None,
                )
                .await;
        });
        TestOp {
            issuer,
            shared,
            _stop: Arc::new(StopOnDrop(Some(stop))),
        }
    }

    /// Starts an honest provider ([`Script::default`]).
    pub async fn start_default() -> TestOp {
        Self::start(Script::default()).await
    }

    /// The script, to change behaviour or read recordings. Do not hold it across a request.
    pub fn script(&self) -> MutexGuard<'_, Script> {
        self.shared.script()
    }

    /// How often the JWKS was fetched.
    pub fn jwks_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }

    /// The claims of a good ID token for a code from outside the authorization endpoint
    /// (nonce [`NONCE`]) signed with `alg`, as the token endpoint would issue it now.
    pub fn good_claims(&self, alg: Algorithm) -> Value {
        let script = self.script();
        self.shared.claims(&script, alg, Some(NONCE))
    }
}

#[handler]
fn discovery(Data(op): Data<&Arc<Shared>>) -> Json<Value> {
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
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    });
    merge(&mut doc, &s.metadata_overrides);
    Json(doc)
}

#[handler]
fn jwks(Data(op): Data<&Arc<Shared>>) -> Json<Value> {
    op.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let fixture = crate::keys::fixture;
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

/// Issues a code for the request's nonce and sends the browser back with `code`, `state` and
/// (as scripted) `iss`, without any login page.
#[handler]
fn authorize(Data(op): Data<&Arc<Shared>>, Query(query): Query<Vec<(String, String)>>) -> Response {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (Some(redirect_uri), Some(state)) = (param("redirect_uri"), param("state")) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    };
    let mut s = op.script();
    s.authorization_requests.push(query.clone());
    let code = format!("code-{}", s.authorization_requests.len());
    op.issued_codes
        .lock()
        .unwrap()
        .insert(code.clone(), param("nonce").unwrap_or_default());
    let mut url = url::Url::parse(&redirect_uri).unwrap();
    {
        let mut pairs = url.query_pairs_mut();
        pairs
            .append_pair("code", &code)
            .append_pair("state", &state);
        match &s.iss_parameter {
            IssParameter::Issuer => {
                pairs.append_pair("iss", &op.issuer);
            }
            IssParameter::Value(other) => {
                pairs.append_pair("iss", other);
            }
            IssParameter::Omitted => {}
        }
    }
    Redirect::see_other(url.to_string()).into_response()
}

/// Client authentication as the endpoint saw it: (method, client id, client secret). A
/// `private_key_jwt` assertion is recorded as `private_key_jwt` with no secret; the assertion
/// itself stays in the form for the test to verify.
fn client_auth(headers: &HeaderMap, form: &[(String, String)]) -> (String, String, String) {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(|b| String::from_utf8(STANDARD.decode(b).unwrap()).unwrap());
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let post_secret = param("client_secret");
    if basic.is_none() && post_secret.is_none() && param("client_assertion").is_some() {
        return (
            "private_key_jwt".into(),
            param("client_id").unwrap_or_default(),
            String::new(),
        );
    }
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

fn oauth_error(code: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": code}))).into_response()
}

#[handler]
async fn token(
    Data(op): Data<&Arc<Shared>>,
    headers: &HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let delay = op.script().token_delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut s = op.script();
    let (auth, client_id, client_secret) = client_auth(headers, &form);
    let call = TokenCall {
        auth,
        client_id,
        client_secret,
        form,
    };
    let grant_type = call.param("grant_type").unwrap_or_default().to_owned();
    let refresh_token = call.param("refresh_token").map(str::to_owned);
    let code = call.param("code").map(str::to_owned);
    let scope = call.param("scope").map(str::to_owned);
    s.token_calls.push(call);
    if let Some(error) = s.token_error.clone() {
        return oauth_error(&error);
    }
    if let Some((status, body)) = s.token_answer.clone() {
        return Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .body(body);
    }
    if grant_type == "client_credentials" {
        // The client's own token: no refresh token, no ID token, the scope asked for.
        let mut body = json!({
            "access_token": CLIENT_ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 120,
        });
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        merge(&mut body, &s.token_response_overrides);
        return Json(body).into_response();
    }
    // A refreshed ID token carries no nonce; a code's has the nonce it was issued for.
    let nonce = match grant_type.as_str() {
        "authorization_code" => {
            let issued = code.and_then(|c| op.issued_codes.lock().unwrap().get(&c).cloned());
            Some(issued.unwrap_or_else(|| NONCE.to_owned()))
        }
        "refresh_token" if refresh_token.as_deref() == Some(DEAD_REFRESH_TOKEN) => {
            return oauth_error("invalid_grant");
        }
        "refresh_token" => None,
        _ => return oauth_error("unsupported_grant_type"),
    };
    let id_token = s.raw_id_token.clone().unwrap_or_else(|| {
        let mut claims = op.claims(&s, s.signer.alg(), nonce.as_deref());
        merge(&mut claims, &s.claim_overrides);
        let kid = s
            .kid_override
            .clone()
            .unwrap_or_else(|| s.signer.kid().into());
        let signed = s.signer.sign(Some(&kid), &claims);
        match &s.claims_changed_after_signing {
            Some(changes) => {
                let parts: Vec<&str> = signed.split('.').collect();
                merge(&mut claims, changes);
                format!("{}.{}.{}", parts[0], b64(&claims), parts[2])
            }
            None => signed,
        }
    });
    let mut body = json!({
        "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 120,
        "refresh_token": REFRESH_TOKEN, "scope": "openid profile", "id_token": id_token,
    });
    if s.omit_id_token {
        body.as_object_mut().unwrap().remove("id_token");
    }
    merge(&mut body, &s.token_response_overrides);
    Json(body).into_response()
}

#[handler]
fn revoke(
    Data(op): Data<&Arc<Shared>>,
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
        return oauth_error("unsupported_token_type");
    }
    StatusCode::OK.into_response()
}

#[handler]
fn userinfo(Data(op): Data<&Arc<Shared>>, headers: &HeaderMap) -> Response {
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
