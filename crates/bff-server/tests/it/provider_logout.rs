//! Logout started by the provider, end to end: the real provider (`oidc-provider`) ends the
//! user's session and posts its logout token to the BFF, whose session is gone by the time the
//! provider answers; on two nodes sharing Redis (and Postgres+Redis) the token reaching one node
//! ends the session used on the other. Crafted logout tokens (the scriptable provider's key, a
//! test key nobody published) are refused with nothing deleted, a replay on either node too. A
//! provider the session only connected ends that connection, on every node.

use std::time::{SystemTime, UNIX_EPOCH};

use bff_test_op::{CLIENT_ID, IssueTime, OP_SESSION_ID, Script, Signer, TestOp, b64, sign_raw};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::stores::{redis_store_toml, store_toml};
use crate::support::*;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The hidden inputs of the first form on a page (`name`, `value`).
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')?;
        Some(tag[start..start + end].to_owned())
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            (attribute(tag, "type").as_deref() == Some("hidden"))
                .then(|| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
                .flatten()
        })
        .collect()
}

/// The user signs out at the provider (its end-session page, confirmed), as they would from
/// another app: the provider ends its session and, before it answers, posts a logout token to
/// every client that signed in through that session.
async fn sign_out_at_provider(browser: &Browser, idp: &Idp) {
    let page = browser
        .get(&format!("{}/session/end?client_id=bff-basic", idp.issuer))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let action = absolute(&idp.issuer, &form_action(&page.body).expect("logout form"));
    let inputs = hidden_inputs(&page.body);
    assert!(
        inputs
            .iter()
            .any(|(name, value)| name == "logout" && value == "yes"),
        "{}",
        page.body
    );
    let form: Vec<(&str, &str)> = inputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let done = browser.post_form(&action, &form).await;
    assert_eq!(done.status, 303, "{}", done.body);
}

/// A provider whose clients' back-channel logout URI is `node`'s endpoint, accepting logins
/// from every node in `nodes`.
fn provider_for(nodes: &[&Reserved], backchannel_to: &Reserved) -> Idp {
    let logout_uri = format!("{}/bff/backchannel-logout", backchannel_to.base);
    Idp::start_with_env(
        "127.0.0.1",
        &nodes.iter().map(|n| n.callback()).collect::<Vec<_>>(),
        &nodes.iter().map(|n| n.app_page()).collect::<Vec<_>>(),
        &[("IDP_BACKCHANNEL_LOGOUT_URI", &logout_uri)],
    )
}

/// Logs `browser` in as `login` through `server`.
async fn login_as(browser: &Browser, server: &Server, idp: &Idp, login: &str, password: &str) {
    let start = browser.get(&format!("{}/bff/login", server.base)).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let callback = browser
        .sign_in_with(&start.location().unwrap(), &idp.issuer, login, password)
        .await;
    assert!(callback.starts_with(&server.base), "{callback}");
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(user.json()["sub"], login);
}

#[tokio::test]
async fn the_providers_logout_ends_the_session_before_it_answers() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    capture_logs();
    let reserved = reserve().await;
    let idp = provider_for(&[&reserved], &reserved);
    let base = reserved.base.clone();
    let server = reserved.serve(config(&base, &idp.issuer)).await;

    // Alice twice (two browsers, two provider sessions), bob once, and alice at the other
    // client of the same provider.
    let alice = Browser::new(&server.base);
    login_as(&alice, &server, &idp, "alice", "wonderland").await;
    let alice_elsewhere = Browser::new(&server.base);
    login_as(&alice_elsewhere, &server, &idp, "alice", "wonderland").await;
    let bob = Browser::new(&server.base);
    login_as(&bob, &server, &idp, "bob", "looking-glass").await;
    let alice_at_post = Browser::new(&server.base);
    let start = alice_at_post
        .get(&format!("{}/bff/login?provider=post", server.base))
        .await;
    let callback = alice_at_post
        .sign_in_at_provider(&start.location().unwrap(), &idp.issuer)
        .await;
    assert_eq!(alice_at_post.get(&callback).await.status, 200);
    assert_eq!(alice_at_post.api_get("/bff/user").await.status, 200);

    sign_out_at_provider(&alice, &idp).await;
    let user = alice.api_get("/bff/user").await;
    assert_eq!(user.status, 401, "still logged in: {}", user.body);
    assert_eq!(user.problem_code(), "no_session");

    // Only the sessions of that provider session ended.
    for (who, browser) in [
        ("alice in another provider session", &alice_elsewhere),
        ("bob", &bob),
        ("alice at the other client", &alice_at_post),
    ] {
        let user = browser.api_get("/bff/user").await;
        assert_eq!(user.status, 200, "{who} was logged out: {}", user.body);
    }
    assert!(
        logs_text().contains("back-channel logout accepted"),
        "the provider's call did not arrive"
    );
    assert_no_secret(&logs_text(), &[]);
}

async fn two_nodes_end_the_session_through_the_back_channel(stores: &str) {
    let a = reserve().await;
    let b = reserve().await;
    // The provider knows node A's back-channel URI only; the user works on node B.
    let idp = provider_for(&[&a, &b], &a);
    let (a_base, b_base) = (a.base.clone(), b.base.clone());
    let _node_a = a.serve(config_with(&a_base, &idp.issuer, stores)).await;
    let node_b = b.serve(config_with(&b_base, &idp.issuer, stores)).await;
    let on_b = Browser::new(&node_b.base);
    login_as(&on_b, &node_b, &idp, "alice", "wonderland").await;

    sign_out_at_provider(&on_b, &idp).await;
    let user = on_b.api_get("/bff/user").await;
    assert_eq!(
        user.status, 401,
        "node B still serves the session the provider ended through node A: {}",
        user.body
    );
}

/// Alice logs in at `a` on node B and connects `b`; then she signs out at `b`, whose logout
/// token goes to node A. On node B the connection is gone (its routes are refused), and the
/// session, whose identity is `a`'s login, goes on. `stores` is the nodes' shared store TOML.
async fn a_connected_providers_logout_ends_the_connection_on_every_node(stores: &str) {
    let node_a = reserve().await;
    let node_b = reserve().await;
    let redirects = [node_a.callback(), node_b.callback()];
    let logout_returns = [node_a.logout_return(), node_b.logout_return()];
    let idp_a = Idp::start_on_host("127.0.0.1", &redirects, &logout_returns);
    let backchannel = format!("{}/bff/backchannel-logout", node_a.base);
    let idp_b = Idp::start_with_env(
        "127.0.0.2",
        &redirects,
        &logout_returns,
        &[("IDP_BACKCHANNEL_LOGOUT_URI", &backchannel)],
    );
    let extra = format!(
        "[providers.b]\nissuer = \"{}\"\nclient_id = \"bff-basic\"\nclient_secret = \"{CLIENT_SECRET}\"\n\n[[routes]]\npath = \"/api/b\"\nupstream = \"http://127.0.0.1:9/b\"\ntoken = \"user\"\nprovider = \"b\"\n{stores}",
        idp_b.issuer
    );
    let (a_base, b_base) = (node_a.base.clone(), node_b.base.clone());
    let _node_a = node_a
        .serve(config_with(&a_base, &idp_a.issuer, &extra))
        .await;
    let server = node_b
        .serve(config_with(&b_base, &idp_a.issuer, &extra))
        .await;
    let browser = Browser::new(&server.base);
    let callback = redirect_login(&browser, &server, &idp_a, "/").await;
    assert_eq!(callback.status, 200, "{}", callback.body);
    let start = browser
        .get(&format!(
            "{}/bff/login?provider=b&connect=true",
            server.base
        ))
        .await;
    assert_eq!(start.status, 302, "{}", start.body);
    let back = browser
        .sign_in_at_provider(&start.location().unwrap(), &idp_b.issuer)
        .await;
    assert_eq!(browser.get(&back).await.status, 200);
    let connected = |view: &Value| view["connectedProviders"].clone();
    assert_eq!(
        connected(&browser.api_get("/bff/session").await.json()),
        json!(["b"])
    );

    sign_out_at_provider(&browser, &idp_b).await;
    let view = browser.api_get("/bff/session").await;
    assert_eq!(view.status, 200, "the session ended: {}", view.body);
    assert_eq!(
        connected(&view.json()),
        json!([]),
        "node B still holds b's tokens after b's logout reached node A"
    );
    let refused = browser.api_get("/api/b/orders").await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.problem_code(), "provider_not_connected");
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(user.json()["iss"], idp_a.issuer.as_str());
}

#[tokio::test]
async fn a_connected_providers_logout_ends_the_connection_on_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(redis) = bff_test_services::redis().await else {
        return;
    };
    let stores = redis_store_toml(&redis);
    a_connected_providers_logout_ends_the_connection_on_every_node(&stores).await;
}

#[tokio::test]
async fn a_connected_providers_logout_ends_the_connection_on_postgres_and_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let Some(redis) = bff_test_services::redis().await else {
        return;
    };
    let stores = store_toml(&pg, Some(&redis.url), &redis.prefix);
    a_connected_providers_logout_ends_the_connection_on_every_node(&stores).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn a_logout_token_reaching_one_node_ends_the_session_on_another_on_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(redis) = bff_test_services::redis().await else {
        return;
    };
    let stores = redis_store_toml(&redis);
    two_nodes_end_the_session_through_the_back_channel(&stores).await;
}

#[tokio::test]
async fn a_logout_token_reaching_one_node_ends_the_session_on_another_on_postgres_and_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let Some(redis) = bff_test_services::redis().await else {
        return;
    };
    let stores = store_toml(&pg, Some(&redis.url), &redis.prefix);
    two_nodes_end_the_session_through_the_back_channel(&stores).await;
    pg.drop_schema().await;
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// Two nodes on one Redis with the scriptable provider, a browser logged in on node A.
struct Crafted {
    op: TestOp,
    node_a: Server,
    node_b: Server,
    browser: Browser,
}

async fn crafted_setup() -> Option<Crafted> {
    let redis = bff_test_services::redis().await?;
    let op = TestOp::start(Script {
        issue_time: IssueTime::System,
        ..Script::default()
    })
    .await;
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let reserved = reserve().await;
        let text = format!(
            r#"
default_provider = "fake"
[server]
public_url = "{base}"
[dev]
allow_plain_http = true
[[vault_keys]]
id = "test"
key = "{VAULT_KEY}"
[store]
kind = "redis"
[store.redis]
url = "{redis}"
key_prefix = "{prefix}"
[providers.fake]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "secret"
id_token_algorithms = ["ES256", "RS256"]
"#,
            base = reserved.base,
            issuer = op.issuer,
            redis = redis.url,
            prefix = redis.prefix,
        );
        let config = bff_server::Config::from_toml_str(&text, Vec::new()).unwrap();
        nodes.push(reserved.serve(config).await);
    }
    let node_b = nodes.pop().unwrap();
    let node_a = nodes.pop().unwrap();
    let browser = Browser::new(&node_a.base);
    let start = browser.get(&format!("{}/bff/login", node_a.base)).await;
    let authorize = browser.get(&start.location().unwrap()).await;
    let callback = browser.get(&authorize.location().unwrap()).await;
    assert_eq!(callback.status, 200, "{}", callback.body);
    assert_eq!(browser.api_get("/bff/user").await.status, 200);
    Some(Crafted {
        op,
        node_a,
        node_b,
        browser,
    })
}

impl Crafted {
    fn claims(&self, changes: Value) -> Value {
        let now = now();
        let mut claims = json!({
            "iss": self.op.issuer, "aud": CLIENT_ID, "iat": now - 2, "exp": now + 120,
            "jti": format!("jti-{}", bff_test_services::unique("logout")),
            "sub": "alice", "sid": OP_SESSION_ID, "events": {EVENT: {}},
        });
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }

    /// Signed with the provider's own key.
    fn sign(&self, changes: Value) -> String {
        Signer::Ec1.sign(Some("k1"), &self.claims(changes))
    }

    async fn post(&self, node: &Server, token: &str) -> Page {
        self.browser
            .post_form(
                &format!("{}/bff/backchannel-logout", node.base),
                &[("logout_token", token)],
            )
            .await
    }

    async fn assert_refused(&self, node: &Server, name: &str, token: &str, reason: &str) {
        let page = self.post(node, token).await;
        assert_eq!(page.status, 400, "{name}: {}", page.body);
        assert_eq!(page.problem_code(), "logout_token_invalid", "{name}");
        assert_eq!(page.json()["reason"], reason, "{name}");
        assert_eq!(
            page.headers.get("cache-control").unwrap(),
            "no-store",
            "{name}"
        );
        let user = self.browser.api_get("/bff/user").await;
        assert_eq!(user.status, 200, "{name} ended the session: {}", user.body);
    }
}

#[tokio::test]
async fn crafted_logout_tokens_are_refused_and_a_replay_fails_on_every_node() {
    let Some(t) = crafted_setup().await else {
        return;
    };
    let now = now();
    let id_token = Signer::Ec1.sign(Some("k1"), &t.op.good_claims(Algorithm::ES256));
    let unknown_key = EncodingKey::from_ec_der(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            bff_test_op::fixture("ec2_private_pkcs8_der_b64"),
        )
        .unwrap(),
    );
    let hmac_key = EncodingKey::from_secret(bff_test_op::fixture("rsa_public_pem").as_bytes());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "logout+jwt"})),
        b64(&t.claims(json!({})))
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("missing jti", t.sign(json!({"jti": null})), "jti"),
        ("missing events", t.sign(json!({"events": null})), "events"),
        (
            "wrong event value",
            t.sign(json!({"events": {EVENT: "logout"}})),
            "events",
        ),
        ("with nonce", t.sign(json!({"nonce": "n"})), "nonce"),
        ("wrong aud", t.sign(json!({"aud": "someone-else"})), "aud"),
        (
            "wrong iss (the issuer with a trailing slash)",
            t.sign(json!({"iss": format!("{}/", t.op.issuer)})),
            "iss",
        ),
        (
            "unknown iss",
            t.sign(json!({"iss": "https://evil.example"})),
            "iss",
        ),
        ("alg none", unsigned, "alg"),
        (
            "HMAC keyed with the public key",
            sign_raw(
                Algorithm::HS256,
                Some("rsa"),
                &hmac_key,
                &t.claims(json!({})),
            ),
            "alg",
        ),
        (
            "signed by an unknown key",
            sign_raw(
                Algorithm::ES256,
                Some("k1"),
                &unknown_key,
                &t.claims(json!({})),
            ),
            "signature",
        ),
        (
            "signed by an unknown key under its own kid",
            sign_raw(
                Algorithm::ES256,
                Some("k2"),
                &unknown_key,
                &t.claims(json!({})),
            ),
            "kid",
        ),
        (
            "expired",
            t.sign(json!({"iat": now - 600, "exp": now - 300})),
            "exp",
        ),
        (
            "iat far in the future",
            t.sign(json!({"iat": now + 3600})),
            "iat",
        ),
        (
            "neither sid nor sub",
            t.sign(json!({"sid": null, "sub": null})),
            "sub_or_sid",
        ),
        (
            "malformed",
            "eyJhbGciOiJFUzI1NiJ9.not-base64!.x".into(),
            "malformed",
        ),
        ("an ID token", id_token, "events"),
    ];
    for (name, token, reason) in &cases {
        t.assert_refused(&t.node_a, name, token, reason).await;
    }

    // A good token on node B ends the session held on node A; replayed to either node, it is
    // refused.
    let good = t.sign(json!({}));
    let page = t.post(&t.node_b, &good).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(t.browser.api_get("/bff/user").await.status, 401);
    for node in [&t.node_b, &t.node_a] {
        let page = t.post(node, &good).await;
        assert_eq!(page.status, 400, "{}", page.body);
        assert_eq!(page.json()["reason"], "replayed");
    }
    t.browser.assert_no_secrets_seen(&[]);
}

#[tokio::test]
async fn front_channel_logout_ends_the_session_of_that_provider_session() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    // oidc-provider 9 has no front-channel logout, so the test plays the provider's iframe:
    // its issuer and the `sid` of the user's provider session (the BFF keeps it, and shows the
    // app nothing of it, so the test reads it from the store). oidc-provider puts `sid` into ID
    // tokens only for clients that want it for logout, so the client is registered for
    // back-channel logout.
    let reserved = reserve().await;
    let idp = provider_for(&[&reserved], &reserved);
    let base = reserved.base.clone();
    let server = reserved
        .serve(config_with(&base, &idp.issuer, &postgres_store(&pg)))
        .await;
    let browser = Browser::new(&server.base);
    let cookie = redirect_login(&browser, &server, &idp, "/")
        .await
        .session_cookie()
        .unwrap();
    let other = Browser::new(&server.base);
    assert_eq!(redirect_login(&other, &server, &idp, "/").await.status, 200);
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let (sid,): (String,) = sqlx::query_as(&format!(
        "SELECT provider_session_id FROM {}.bff_sessions WHERE session_key = $1",
        pg.schema
    ))
    .bind(session_key(&cookie))
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let frame = reqwest::Client::new()
        .get(format!("{}/bff/frontchannel-logout", server.base))
        .query(&[("iss", idp.issuer.as_str()), ("sid", sid.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(frame.status(), 200);
    assert_eq!(
        frame.headers()["content-security-policy"],
        format!("default-src 'none'; frame-ancestors {}", idp.issuer).as_str()
    );
    assert_eq!(frame.headers()["cache-control"], "no-store");
    assert_eq!(browser.api_get("/bff/user").await.status, 401);
    assert_eq!(
        other.api_get("/bff/user").await.status,
        200,
        "another provider session ended too"
    );
    pg.drop_schema().await;
}

/// `[store]` on Postgres alone.
fn postgres_store(pg: &bff_test_services::PostgresService) -> String {
    format!(
        "[store]\nkind = \"postgres\"\n[store.postgres]\nurl = \"{}\"\nschema = \"{}\"\nmigrate_on_start = true\n",
        pg.url, pg.schema
    )
}

/// The store key of the session with cookie value `cookie`: SHA-256, hex.
fn session_key(cookie: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(cookie.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The refresh token sealed in the session with cookie value `cookie`, read from Postgres and
/// opened with the test vault key (the test plays a reader who has both).
async fn stored_refresh_token(pg: &bff_test_services::PostgresService, cookie: &str) -> String {
    use bff_domain::ports::Cipher as _;
    let key = session_key(cookie);
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let (key_id, sealed): (String, Vec<u8>) = sqlx::query_as(&format!(
        "SELECT key_id, sealed_tokens FROM {}.bff_sessions WHERE session_key = $1",
        pg.schema
    ))
    .bind(&key)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let cipher = bff_crypto::VaultCipher::from_base64_keys([("test", VAULT_KEY)]).unwrap();
    let plain = cipher
        .open(
            &bff_domain::Sealed {
                key_id,
                ciphertext: sealed,
            },
            format!("bff-session-tokens/v1:{key}").as_bytes(),
        )
        .unwrap();
    let tokens: Value = serde_json::from_slice(&plain).unwrap();
    tokens["rt"].as_str().expect("a refresh token").to_owned()
}

/// `grant_type=refresh_token` at the provider as the BFF's client: the HTTP status.
async fn refresh_at_provider(idp: &Idp, refresh_token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/token", idp.issuer))
        .basic_auth("bff-basic", Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn after_rp_initiated_logout_the_provider_refuses_the_refresh_token() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let store = postgres_store(&pg);
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let base = reserved.base.clone();
    let server = reserved
        .serve(config_with(&base, &idp.issuer, &store))
        .await;

    // Control: a session that stays logged in; its refresh token works at the provider.
    let control = Browser::new(&server.base);
    let cookie = redirect_login(&control, &server, &idp, "/")
        .await
        .session_cookie()
        .unwrap();
    let control_token = stored_refresh_token(&pg, &cookie).await;
    assert_eq!(refresh_at_provider(&idp, &control_token).await, 200);

    let browser = Browser::new(&server.base);
    let cookie = redirect_login(&browser, &server, &idp, "/")
        .await
        .session_cookie()
        .unwrap();
    let refresh_token = stored_refresh_token(&pg, &cookie).await;
    let logout = browser.api_post("/bff/logout", None).await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    assert_eq!(
        refresh_at_provider(&idp, &refresh_token).await,
        400,
        "the provider still honours the refresh token of a logged-out session"
    );
    pg.drop_schema().await;
}
