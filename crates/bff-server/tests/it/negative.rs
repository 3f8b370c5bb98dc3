//! Hostile and broken logins: each gets its problem+json with the right status and creates no
//! session.

use bff_test_op::{
    ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET as OP_CLIENT_SECRET, IssParameter, IssueTime,
    REFRESH_TOKEN, Script, TestOp,
};
use serde_json::json;

use crate::support::*;

async fn assert_logged_out(browser: &Browser) {
    let session = browser.api_get("/bff/session").await;
    assert_eq!(
        session.json(),
        json!({"isLoggedIn": false}),
        "a session was created"
    );
}

/// Starts a redirect-style login and walks the provider up to the callback URL.
async fn callback_url(browser: &Browser, server: &Server, idp: &Idp) -> String {
    let start = browser.get(&format!("{}/bff/login", server.base)).await;
    assert_eq!(start.status, 302, "{}", start.body);
    browser
        .sign_in_at_provider(&start.location().unwrap(), &idp.issuer)
        .await
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            if k == name {
                (k.into_owned(), value.to_owned())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

#[tokio::test]
async fn callback_state_mismatch_replay_and_missing_binding() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (idp, server, browser) = provider_and_server().await;

    // A forged state.
    let callback = callback_url(&browser, &server, &idp).await;
    let forged = browser
        .get(&with_param(&callback, "state", "forged-state"))
        .await;
    assert_eq!(forged.status, 400);
    assert_eq!(forged.problem_code(), "state_mismatch");
    assert!(
        forged
            .set_cookies()
            .iter()
            .all(|c| !c.starts_with("bff=") || c.starts_with("bff=;"))
    );
    assert_logged_out(&browser).await;

    // The callback arriving in another browser (no login-binding cookie): refused, and the
    // state is spent, so the real browser cannot use it afterwards either.
    let other_browser = Browser::new(&server.base);
    let stolen = other_browser.get(&callback).await;
    assert_eq!(stolen.status, 400);
    assert_eq!(stolen.problem_code(), "login_binding_missing");
    assert_logged_out(&other_browser).await;

    // A complete login, then the same callback again: a state works once.
    let callback = callback_url(&browser, &server, &idp).await;
    assert_eq!(browser.get(&callback).await.status, 200);
    let fresh_browser = Browser::new(&server.base);
    let replayed = fresh_browser.get(&callback).await;
    assert_eq!(replayed.status, 400);
    assert_eq!(replayed.problem_code(), "state_mismatch");
    assert_logged_out(&fresh_browser).await;
    browser.assert_no_secrets_seen(&[]);
}

#[tokio::test]
async fn open_redirects_are_refused() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (_idp, server, browser) = provider_and_server().await;
    for bad in [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "/%09/evil.example",
        "javascript:alert(1)",
    ] {
        let url = format!(
            "{}/bff/login?returnUrl={}",
            server.base,
            bad.replace('\\', "%5C")
        );
        let page = browser.get(&url).await;
        assert_eq!(page.status, 400, "{bad}: {}", page.body);
        assert_eq!(page.problem_code(), "unsafe_return_url", "{bad}");
        assert!(
            page.set_cookies().is_empty(),
            "{bad}: cookie set on refusal"
        );

        let api = browser
            .api_post(
                "/bff/login/start",
                Some(json!({"returnUrl": bad.replace("%09", "\t")})),
            )
            .await;
        assert_eq!(api.status, 400, "{bad}: {}", api.body);
        assert_eq!(api.problem_code(), "unsafe_return_url");
    }
    assert_logged_out(&browser).await;
}

#[tokio::test]
async fn csrf_header_and_origin_are_required() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (idp, server, browser) = provider_and_server().await;
    let callback = redirect_login(&browser, &server, &idp, "/").await;
    assert_eq!(callback.status, 200);

    // No x-csrf header.
    let resp = browser.get(&format!("{}/bff/user", server.base)).await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.problem_code(), "csrf_failed");

    // Cross-site Origin on an unsafe method: refused and nothing changed.
    for origin in [
        "https://evil.example",
        "null",
        &format!("{}.evil.example", server.base),
    ] {
        let resp = browser
            .http
            .post(format!("{}/bff/logout", server.base))
            .header("x-csrf", "1")
            .header("origin", origin)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{origin}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "csrf_failed");
    }
    // No Origin at all on an unsafe method.
    let resp = browser
        .http
        .post(format!("{}/bff/refresh", server.base))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // Wrong header value.
    let resp = browser
        .http
        .post(format!("{}/bff/logout", server.base))
        .header("x-csrf", "0")
        .header("origin", &server.base)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // Still logged in: none of these changed anything.
    assert_eq!(browser.api_get("/bff/user").await.status, 200);
}

/// How the scripted provider misbehaves (a certified provider cannot be made to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A correct ID token.
    Honest,
    /// The payload is changed after signing.
    TamperedIdToken,
    /// The ID token names another issuer.
    WrongIssInIdToken,
    /// The authorization response's `iss` parameter names another issuer (mix-up).
    WrongIssParameter,
    /// The metadata promises `iss` in authorization responses (RFC 9207), the response has none.
    PromisedIssParameterMissing,
    /// The ID token carries another nonce (replayed token).
    WrongNonce,
}

impl Mode {
    /// The provider's script: tokens issued at the real time (the server reads the system
    /// clock) for `mallory`, then the misbehaviour.
    fn script(self) -> Script {
        let mut script = Script {
            issue_time: IssueTime::System,
            subject: "mallory".into(),
            ..Script::default()
        };
        match self {
            Mode::Honest => {}
            Mode::TamperedIdToken => {
                script.claims_changed_after_signing = Some(json!({"sub": "admin"}));
            }
            Mode::WrongIssInIdToken => {
                script.claim_overrides = json!({"iss": "https://evil.example"});
            }
            Mode::WrongIssParameter => {
                script.iss_parameter = IssParameter::Value("https://evil.example".into());
            }
            Mode::PromisedIssParameterMissing => {
                script.metadata_overrides =
                    json!({"authorization_response_iss_parameter_supported": true});
                script.iss_parameter = IssParameter::Omitted;
            }
            Mode::WrongNonce => script.claim_overrides = json!({"nonce": "replayed"}),
        }
        script
    }
}

/// What the scripted provider hands out or is configured with: none of it may reach the
/// browser or a log.
const OP_SECRETS: &[&str] = &[ACCESS_TOKEN, REFRESH_TOKEN, OP_CLIENT_SECRET];

/// A server whose only provider is the scripted one in `mode`.
async fn server_with_fake_provider(mode: Mode) -> (TestOp, Server, Browser) {
    server_with_scripted_provider(mode.script()).await
}

/// The configuration of a plain-HTTP server at `base` whose only provider is the scripted one
/// at `issuer`, plus `extra` TOML.
pub(crate) fn scripted_provider_toml(base: &str, issuer: &str, extra: &str) -> String {
    format!(
        r#"
default_provider = "fake"
[server]
public_url = "{base}"
[dev]
allow_plain_http = true
[[vault_keys]]
id = "test"
key = "{VAULT_KEY}"
[providers.fake]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{OP_CLIENT_SECRET}"
id_token_algorithms = ["ES256"]
{extra}
"#
    )
}

/// A server whose only provider follows `script`.
async fn server_with_scripted_provider(script: Script) -> (TestOp, Server, Browser) {
    let op = TestOp::start(script).await;
    let reserved = reserve().await;
    let text = scripted_provider_toml(&reserved.base, &op.issuer, "");
    let config = bff_server::Config::from_toml_str(&text, Vec::new()).unwrap();
    let server = reserved.serve(config).await;
    let browser = Browser::new(&server.base);
    (op, server, browser)
}

/// Logs in through the scripted provider (which has no login page) and returns the callback.
pub(crate) async fn login_at_fake_provider(browser: &Browser, server: &Server) -> Page {
    let start = browser.get(&format!("{}/bff/login", server.base)).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let authorize = browser.get(&start.location().unwrap()).await;
    browser.get(&authorize.location().unwrap()).await
}

#[tokio::test]
async fn hostile_id_tokens_and_mix_up_are_refused() {
    capture_logs();
    for (mode, code) in [
        (Mode::TamperedIdToken, "id_token_invalid"),
        (Mode::WrongIssInIdToken, "id_token_invalid"),
        (Mode::WrongNonce, "id_token_invalid"),
        (Mode::WrongIssParameter, "issuer_mismatch"),
        (Mode::PromisedIssParameterMissing, "issuer_missing"),
    ] {
        let (op, server, browser) = server_with_fake_provider(mode).await;
        let page = login_at_fake_provider(&browser, &server).await;
        assert_eq!(page.status, 400, "{mode:?}: {}", page.body);
        assert_eq!(page.problem_code(), code, "{mode:?}");
        assert_logged_out(&browser).await;
        browser.assert_no_secrets_seen(OP_SECRETS);
        if mode == Mode::PromisedIssParameterMissing {
            assert!(
                op.script().token_calls.is_empty(),
                "the code was sent to the token endpoint"
            );
        }
    }
    assert_no_secret(&logs_text(), OP_SECRETS);
}

#[tokio::test]
async fn the_honest_fake_provider_logs_in() {
    // Guards the hostile-token test: the same fake provider, behaving, does produce a session.
    let (_op, server, browser) = server_with_fake_provider(Mode::Honest).await;
    let page = login_at_fake_provider(&browser, &server).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.json()["sub"], "mallory");
}

#[tokio::test]
async fn a_provider_that_does_not_promise_iss_may_omit_it() {
    // Guards the `issuer_missing` case: without the RFC 9207 promise, no `iss` is fine.
    let mut script = Mode::Honest.script();
    script.iss_parameter = IssParameter::Omitted;
    let (_op, server, browser) = server_with_scripted_provider(script).await;
    let page = login_at_fake_provider(&browser, &server).await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn a_refreshed_id_token_of_another_authentication_is_refused() {
    capture_logs();
    let (op, server, browser) = server_with_fake_provider(Mode::Honest).await;
    assert_eq!(login_at_fake_provider(&browser, &server).await.status, 200);
    // The session's original claims reach the provider adapter: an honest refresh passes.
    let refreshed = browser.api_post("/bff/refresh", None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    // A refreshed ID token from another authentication (a new auth_time, another nonce).
    for changes in [json!({"auth_time": 1}), json!({"nonce": "replayed"})] {
        op.script().claim_overrides = changes.clone();
        let refused = browser.api_post("/bff/refresh", None).await;
        assert_eq!(refused.status, 502, "{changes}: {}", refused.body);
        assert_eq!(refused.problem_code(), "provider_error", "{changes}");
    }
    // The session itself is untouched: the grant was not refused.
    assert_eq!(browser.api_get("/bff/user").await.status, 200);
    browser.assert_no_secrets_seen(OP_SECRETS);
    assert_no_secret(&logs_text(), OP_SECRETS);
}

#[tokio::test]
async fn malformed_requests_get_problem_json() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (_idp, server, browser) = provider_and_server().await;
    let unknown = browser.api_get("/bff/nope").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.problem_code(), "not_found");

    let bad_json = browser
        .http
        .post(format!("{}/bff/login/end", server.base))
        .header("x-csrf", "1")
        .header("origin", &server.base)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    assert_eq!(
        bad_json.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );

    let foreign_page = browser
        .api_post(
            "/bff/login/end",
            Some(json!({"pageUrl": "https://evil.example/?code=x&state=y"})),
        )
        .await;
    assert_eq!(foreign_page.status, 400);
    assert_eq!(foreign_page.problem_code(), "invalid_page_url");

    let bad_prompt = browser
        .get(&format!("{}/bff/login?prompt=none%20login", server.base))
        .await;
    assert_eq!(bad_prompt.status, 400);
    assert_eq!(bad_prompt.problem_code(), "invalid_prompt");

    let bad_provider = browser
        .get(&format!("{}/bff/login?provider=Nope", server.base))
        .await;
    assert_eq!(bad_provider.status, 400);
    assert_eq!(bad_provider.problem_code(), "unknown_provider");

    // A junk session cookie is simply no session: never looked up, never an error.
    let junk = reqwest::Client::new()
        .get(format!("{}/bff/user", server.base))
        .header("x-csrf", "1")
        .header("cookie", "bff=../../etc/passwd")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), 401);
}

/// A refused request's problem names its request, and the server's log lines for it carry the
/// same id, so an operator can go from what a user reports to what happened.
#[tokio::test]
async fn a_refused_requests_id_is_in_its_problem_and_on_its_log_lines() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    capture_logs();
    let (_idp, server, _browser) = provider_and_server().await;
    let resp = reqwest::Client::new()
        .get(format!("{}/bff/user", server.base))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(problem["instance"], format!("urn:bff:request:{id}"));
    // The request's own log line ("request", with its status) is inside the request's span.
    let logs = logs_text();
    let line = logs
        .lines()
        .find(|line| line.contains(&id))
        .unwrap_or_else(|| panic!("no log line carries {id}"));
    assert!(line.contains("status=401"), "{line}");
}
