//! The admin API in process over the domain's fakes: the bearer credential (none, wrong,
//! right), listing without any session id, session key or token, revoking one and all, and
//! hostile parameters.

use std::sync::Arc;
use std::time::Duration;

use bff_domain::testkit::{FakeCipher, FakeProvider, FakeStores, FixedClock, SeededRandom};
use bff_domain::{
    Bff, BffPolicy, BffPorts, CompleteLogin, LoginStyle, ProviderId, Providers, ReturnUrl,
    SessionId, SessionLifetime, StartLogin,
};
use bff_http::AdminCredential;
use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request};
use sha2::{Digest, Sha256};

use crate::support::{APP_ORIGIN, Answer, HeldDeletes, ISSUER, eventually};

const TOKEN: &str = "admin-token-for-tests-0123456789";

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct World {
    bff: Arc<Bff>,
    stores: Arc<FakeStores>,
    provider: Arc<FakeProvider>,
}

fn world() -> World {
    let stores = Arc::new(FakeStores::default());
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    let bff = Arc::new(Bff::new(
        BffPorts {
            sessions: stores.clone(),
            pending_logins: stores.clone(),
            locks: stores.clone(),
            replay: stores.clone(),
            cipher: Arc::new(FakeCipher),
            clock: Arc::new(FixedClock::at(1_700_000_000)),
            random: Arc::new(SeededRandom::new(7)),
        },
        Providers::new(vec![provider.clone()], ProviderId::parse("main").unwrap()).unwrap(),
        BffPolicy {
            lifetime: SessionLifetime::default(),
            pending_login_ttl: Duration::from_secs(600),
            callback_url: format!("{APP_ORIGIN}/bff/callback"),
            app_redirect_url: format!("{APP_ORIGIN}/"),
            refresh_margin: Duration::from_secs(60),
            fetch_userinfo: false,
            renewal: None,
            client_binding: Default::default(),
        },
    ));
    World {
        bff,
        stores,
        provider,
    }
}

impl World {
    async fn login_as(&self, subject: &str) -> SessionId {
        self.provider.script.lock().unwrap().subject = Some(subject.to_owned());
        let started = self
            .bff
            .start_login(StartLogin {
                provider: None,
                return_url: ReturnUrl::parse_or_root(None).unwrap(),
                prompt: None,
                style: LoginStyle::Redirect,
            })
            .await
            .unwrap();
        let state = started
            .authorization_url
            .split("state=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        self.bff
            .complete_login(CompleteLogin {
                state,
                code: Some("the-code".into()),
                issuer: Some(ISSUER.into()),
                binding: Some(started.binding),
                ..CompleteLogin::default()
            })
            .await
            .unwrap()
            .session_id
            .expect("a login, not a connect, makes a session")
    }

    fn live(&self, id: &SessionId) -> bool {
        self.stores.sessions.lock().unwrap().contains_key(&id.key())
    }

    async fn call(&self, method: Method, path: &str, bearer: Option<&str>) -> Answer {
        let app = bff_http::admin_app(
            self.bff.clone(),
            AdminCredential::from_sha256_hex(&hex_sha256(TOKEN)).unwrap(),
        );
        let mut req = Request::builder().method(method).uri_str(path);
        if let Some(bearer) = bearer {
            req = req.header(header::AUTHORIZATION, bearer);
        }
        let resp = app
            .call(req.finish())
            .await
            .map(IntoResponse::into_response)
            .unwrap_or_else(poem::Error::into_response);
        Answer {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.into_body().into_string().await.unwrap(),
        }
    }

    async fn admin(&self, method: Method, path: &str) -> Answer {
        self.call(method, path, Some(&format!("Bearer {TOKEN}")))
            .await
    }
}

#[tokio::test]
async fn without_the_admin_token_every_endpoint_answers_401() {
    let w = world();
    let alice = w.login_as("alice").await;
    let handle = "0123456789abcdef0123456789abcdef";
    let wrong = [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
        // The configured hash is not the token.
        Some(format!("Bearer {}", hex_sha256(TOKEN))),
        Some(format!("Bearer {}", "a".repeat(10_000))),
    ];
    for bearer in &wrong {
        for (method, path) in [
            (Method::GET, "/admin/sessions?sub=alice".to_owned()),
            (Method::DELETE, "/admin/sessions?sub=alice".to_owned()),
            (
                Method::DELETE,
                format!("/admin/sessions/{handle}?sub=alice"),
            ),
        ] {
            let answer = w.call(method.clone(), &path, bearer.as_deref()).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {bearer:?}"
            );
            assert_eq!(answer.problem_code(), "admin_unauthorized");
            let challenge = answer.headers.get(header::WWW_AUTHENTICATE).unwrap();
            assert!(challenge.to_str().unwrap().starts_with("Bearer"));
            assert!(!answer.body.contains(TOKEN) && !answer.body.contains(&hex_sha256(TOKEN)));
        }
    }
    assert!(w.live(&alice), "a refused request revoked a session");
}

#[tokio::test]
async fn the_listing_has_no_session_id_session_key_or_token() {
    let w = world();
    let ids = [w.login_as("alice").await, w.login_as("alice").await];
    let _bob = w.login_as("bob").await;
    let answer = w.admin(Method::GET, "/admin/sessions?sub=alice").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.headers.get(header::CACHE_CONTROL).unwrap(),
        "no-store"
    );
    let sessions = answer.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    for s in &sessions {
        assert_eq!(s["subject"], "alice");
        assert_eq!(s["issuer"], ISSUER);
        assert_eq!(s["provider"], "main");
        for field in [
            "createdAt",
            "lastSeenAt",
            "idleExpiresAt",
            "absoluteExpiresAt",
        ] {
            assert!(s[field].as_i64().unwrap() >= 1_700_000_000, "{field}");
        }
        assert_eq!(s["handle"].as_str().unwrap().len(), 32);
    }
    // Scan the whole document for the known secrets of these sessions.
    for id in &ids {
        let key = id.key();
        let stored = w.stores.sessions.lock().unwrap()[&key].clone();
        assert!(!answer.body.contains(id.expose()), "session id listed");
        assert!(!answer.body.contains(key.as_str()), "session key listed");
        assert!(
            !answer.body.contains(&key.as_str()[..12]),
            "part of a session key listed"
        );
        let sealed = format!("{:?}", stored.tokens);
        assert!(!answer.body.contains(&sealed));
    }
    for token in ["access-", "refresh-", "idtoken-"] {
        assert!(
            !answer.body.contains(token),
            "{token} listed: {}",
            answer.body
        );
    }
    // With the issuer named: the same two; another issuer: none.
    let named = w
        .admin(
            Method::GET,
            &format!("/admin/sessions?sub=alice&iss={ISSUER}"),
        )
        .await;
    assert_eq!(named.json()["sessions"].as_array().unwrap().len(), 2);
    let other = w
        .admin(
            Method::GET,
            "/admin/sessions?sub=alice&iss=https://elsewhere.example",
        )
        .await;
    assert_eq!(other.json()["sessions"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn revoking_one_then_all_leaves_other_users_alone() {
    let w = world();
    let first = w.login_as("alice").await;
    let second = w.login_as("alice").await;
    let bob = w.login_as("bob").await;
    let listed = w
        .admin(Method::GET, "/admin/sessions?sub=alice")
        .await
        .json();
    let handle = listed["sessions"][0]["handle"].as_str().unwrap().to_owned();

    let one = w
        .admin(
            Method::DELETE,
            &format!("/admin/sessions/{handle}?sub=alice"),
        )
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.json()["revoked"], 1);
    assert_eq!(
        usize::from(w.live(&first)) + usize::from(w.live(&second)),
        1
    );
    assert!(w.live(&bob));
    // The same handle again, or under bob: no such session.
    for path in [
        format!("/admin/sessions/{handle}?sub=alice"),
        format!("/admin/sessions/{handle}?sub=bob"),
    ] {
        let again = w.admin(Method::DELETE, &path).await;
        assert_eq!(again.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(again.problem_code(), "no_such_session");
    }

    let all = w.admin(Method::DELETE, "/admin/sessions?sub=alice").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.json()["revoked"], 1);
    assert!(!w.live(&first) && !w.live(&second));
    assert!(w.live(&bob), "bob's session was revoked with alice's");
    // Both refresh tokens went to the provider's revocation endpoint.
    assert_eq!(w.provider.revoked.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn hostile_parameters_are_refused_with_stable_codes() {
    let w = world();
    let alice = w.login_as("alice").await;
    let long = "a".repeat(256);
    let key = alice.key();
    for (method, path, status, code) in [
        (
            Method::GET,
            "/admin/sessions".to_owned(),
            400,
            "invalid_request",
        ),
        (
            Method::GET,
            "/admin/sessions?sub=".to_owned(),
            400,
            "invalid_subject",
        ),
        (
            Method::GET,
            format!("/admin/sessions?sub={long}"),
            400,
            "invalid_subject",
        ),
        (
            Method::DELETE,
            "/admin/sessions?sub=alice&iss=".to_owned(),
            400,
            "invalid_issuer",
        ),
        (
            Method::DELETE,
            "/admin/sessions".to_owned(),
            400,
            "invalid_request",
        ),
        // A session key, the cookie value, junk: never handles.
        (
            Method::DELETE,
            format!("/admin/sessions/{}?sub=alice", key.as_str()),
            400,
            "invalid_handle",
        ),
        (
            Method::DELETE,
            format!("/admin/sessions/{}?sub=alice", alice.expose()),
            400,
            "invalid_handle",
        ),
        (
            Method::DELETE,
            "/admin/sessions/..%2f..%2fetc?sub=alice".to_owned(),
            400,
            "invalid_handle",
        ),
        (
            Method::DELETE,
            "/admin/sessions/0123456789abcdef0123456789abcdef?sub=alice".to_owned(),
            404,
            "no_such_session",
        ),
        (
            Method::POST,
            "/admin/sessions?sub=alice".to_owned(),
            405,
            "method_not_allowed",
        ),
        (Method::GET, "/bff/user".to_owned(), 404, "not_found"),
    ] {
        let answer = w.admin(method.clone(), &path).await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{method} {path}: {}",
            answer.body
        );
        assert_eq!(answer.problem_code(), code, "{method} {path}");
        assert!(!answer.body.contains(alice.expose()) && !answer.body.contains(key.as_str()));
    }
    assert!(w.live(&alice));
}

#[tokio::test]
async fn the_browser_app_does_not_serve_the_admin_api() {
    let w = world();
    let app = bff_http::app(
        w.bff.clone(),
        Arc::new(crate::support::settings(true)),
        Vec::new(),
        None,
        None,
    );
    let resp = app
        .call(
            Request::builder()
                .uri_str("/admin/sessions?sub=alice")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .finish(),
        )
        .await
        .map(IntoResponse::into_response)
        .unwrap_or_else(poem::Error::into_response);
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_admin_document_is_served_and_every_operation_needs_the_bearer() {
    let w = world();
    let answer = w.call(Method::GET, "/admin/openapi.json", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.json();
    assert_eq!(
        doc["components"]["securitySchemes"]["adminBearer"]["scheme"],
        "bearer"
    );
    let mut operations = 0;
    for (_, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(
                op["security"].to_string().contains("adminBearer"),
                "{method} has no security"
            );
        }
    }
    assert_eq!(operations, 3);
}

/// A revocation whose operator goes away while the store is deleting (the admin tool timed
/// out; the server then drops the request's handler) still deletes the sessions and revokes
/// their refresh tokens, which nothing could revoke once the sessions are gone.
#[tokio::test]
async fn a_revocation_whose_caller_goes_away_still_revokes_the_refresh_tokens() {
    let w = Arc::new(world());
    let held = HeldDeletes::on(&w.stores);
    let ids = [w.login_as("alice").await, w.login_as("alice").await];
    let caller = {
        let w = w.clone();
        tokio::spawn(async move {
            w.admin(Method::DELETE, "/admin/sessions?sub=alice").await;
        })
    };
    held.abort_while_deleting(caller).await;

    eventually("both refresh tokens are revoked", || {
        w.provider.revoked.lock().unwrap().len() == 2
    })
    .await;
    assert!(ids.iter().all(|id| !w.live(id)), "a session lives on");
}
