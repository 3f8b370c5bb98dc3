//! The provider's logout calls at the HTTP boundary: the back-channel form post (no CSRF, body
//! cap, problem codes naming the failed check, `no-store`) and the front-channel page (its
//! `frame-ancestors`), ending the session a browser holds.

use bff_domain::testkit::FakeProvider;
use poem::http::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{Answer, Browser, ISSUER, browser_with_held_deletes, eventually};

const NOW: i64 = 1_700_000_000;

fn logout_token(changes: Value) -> String {
    let mut claims = json!({
        "iss": ISSUER, "aud": "main", "jti": "jti-1", "iat": NOW - 5, "exp": NOW + 120,
        "sid": "op-session-1",
    });
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    FakeProvider::logout_token(&claims)
}

/// The provider's call: a form post with no cookie, no `x-csrf`, no `Origin`.
async fn post_logout_token(browser: &Browser, body: &str) -> Answer {
    browser
        .send_bytes(
            Method::POST,
            "/bff/backchannel-logout",
            &[],
            Some((
                "application/x-www-form-urlencoded",
                body.as_bytes().to_vec(),
            )),
        )
        .await
}

fn form(token: &str) -> String {
    format!("logout_token={token}")
}

/// A browser logged in with provider session `op-session-1`.
async fn logged_in() -> Browser {
    let browser = Browser::new(true);
    browser.provider.script.lock().unwrap().sid = Some("op-session-1".into());
    browser.log_in().await;
    assert_eq!(browser.api_get("/bff/user").await.status, StatusCode::OK);
    browser
}

fn cache_control(answer: &Answer) -> &str {
    answer
        .headers
        .get(header::CACHE_CONTROL)
        .unwrap()
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn a_valid_logout_token_ends_the_session_without_csrf() {
    let browser = logged_in().await;
    let session = browser.cookie(&browser.settings.session_cookie).unwrap();
    // The provider's request carries no cookie at all.
    browser.remove_cookie(&browser.settings.session_cookie);
    let answer = post_logout_token(&browser, &form(&logout_token(json!({})))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(cache_control(&answer), "no-store");
    assert!(answer.body.is_empty());
    browser.set_cookie(&browser.settings.session_cookie, &session);
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, StatusCode::UNAUTHORIZED, "{}", user.body);
    assert_eq!(user.problem_code(), "no_session");
}

#[tokio::test]
async fn refused_tokens_are_400_naming_the_check_and_end_nothing() {
    let browser = logged_in().await;
    let accepted = logout_token(json!({"sid": "another-provider-session"}));
    assert_eq!(
        post_logout_token(&browser, &form(&accepted)).await.status,
        StatusCode::OK
    );
    let cases = [
        ("replayed jti", form(&accepted), "replayed"),
        (
            "wrong aud",
            form(&logout_token(json!({"jti": "j2", "aud": "x"}))),
            "aud",
        ),
        (
            "unknown iss",
            form(&logout_token(
                json!({"jti": "j3", "iss": "https://evil.example"}),
            )),
            "iss",
        ),
        ("malformed", form("not-a-jwt"), "malformed"),
        ("empty", "logout_token=".to_owned(), "malformed"),
        (
            "forged signature",
            form(&logout_token(json!({"jti": "j4"})).replace("fake-signature", "x")),
            "signature",
        ),
    ];
    for (name, body, reason) in cases {
        let answer = post_logout_token(&browser, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            answer.body
        );
        assert_eq!(answer.problem_code(), "logout_token_invalid", "{name}");
        assert_eq!(answer.json()["reason"], reason, "{name}");
        assert_eq!(cache_control(&answer), "no-store", "{name}");
        assert!(
            !answer.body.contains("fake-signature") && !answer.body.contains("eyJ"),
            "{name}: the token came back: {}",
            answer.body
        );
    }
    assert_eq!(
        browser.api_get("/bff/user").await.status,
        StatusCode::OK,
        "a refused token ended the session"
    );
}

#[tokio::test]
async fn the_body_is_capped_and_must_be_a_form() {
    let browser = logged_in().await;
    // Larger than any logout token, declared and streamed alike.
    let huge = form(&"a".repeat(20 * 1024));
    let answer = post_logout_token(&browser, &huge).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );
    assert_eq!(answer.problem_code(), "payload_too_large");
    // A declared length above the cap is refused before anything is read.
    let declared = browser
        .send_bytes(
            Method::POST,
            "/bff/backchannel-logout",
            &[("content-length", "1000000")],
            Some((
                "application/x-www-form-urlencoded",
                b"logout_token=x".to_vec(),
            )),
        )
        .await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    let json_body = browser
        .send(
            Method::POST,
            "/bff/backchannel-logout",
            &[],
            Some(json!({"logout_token": logout_token(json!({}))})),
        )
        .await;
    assert_eq!(json_body.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json_body.problem_code(), "unsupported_media_type");
    let missing = post_logout_token(&browser, "token=x").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(missing.problem_code(), "invalid_request");
    // None of that ended the session, and the good token still works afterwards.
    assert_eq!(browser.api_get("/bff/user").await.status, StatusCode::OK);
    let ok = post_logout_token(&browser, &form(&logout_token(json!({})))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        browser.api_get("/bff/user").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn front_channel_logout_answers_a_page_only_the_provider_may_frame() {
    let browser = logged_in().await;
    let answer = browser
        .navigate(&format!(
            "/bff/frontchannel-logout?iss={ISSUER}&sid=op-session-1"
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let csp = answer.headers.get("content-security-policy").unwrap();
    assert_eq!(
        csp.to_str().unwrap(),
        "default-src 'none'; frame-ancestors https://idp.example"
    );
    assert_eq!(cache_control(&answer), "no-store");
    assert!(
        answer
            .headers
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        browser.api_get("/bff/user").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn front_channel_logout_of_an_unknown_issuer_or_without_sid_is_refused() {
    let browser = logged_in().await;
    for (query, reason) in [
        ("iss=https://evil.example&sid=op-session-1", "iss"),
        ("sid=op-session-1", "iss"),
        (&format!("iss={ISSUER}") as &str, "sid"),
    ] {
        let answer = browser
            .navigate(&format!("/bff/frontchannel-logout?{query}"))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(answer.problem_code(), "frontchannel_logout_invalid");
        assert_eq!(answer.json()["reason"], reason, "{query}");
        assert!(answer.headers.get("content-security-policy").is_none());
    }
    // Another provider session at the right issuer: answered the same, ends nothing.
    let other = browser
        .navigate(&format!(
            "/bff/frontchannel-logout?iss={ISSUER}&sid=someone-else"
        ))
        .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(browser.api_get("/bff/user").await.status, StatusCode::OK);
}

/// A provider logout whose caller goes away while the store is still deleting (the provider's
/// HTTP client gave up; the server then drops the request's handler) still ends the session,
/// for the back-channel and the front-channel call alike. Without that, a back-channel logout
/// would leave the session alive with its `jti` recorded, and the provider's retry would be
/// refused as a replay.
#[tokio::test]
async fn a_provider_logout_whose_caller_goes_away_still_ends_the_session() {
    for channel in ["back", "front"] {
        let (browser, held, stores) = browser_with_held_deletes();
        browser.provider.script.lock().unwrap().sid = Some("op-session-1".into());
        browser.log_in().await;
        assert_eq!(browser.api_get("/bff/user").await.status, StatusCode::OK);
        let session = browser.cookie(&browser.settings.session_cookie).unwrap();
        browser.remove_cookie(&browser.settings.session_cookie);

        let caller = {
            let browser = browser.clone();
            tokio::spawn(async move {
                match channel {
                    "back" => {
                        post_logout_token(&browser, &form(&logout_token(json!({})))).await;
                    }
                    _ => {
                        browser
                            .navigate(&format!(
                                "/bff/frontchannel-logout?iss={ISSUER}&sid=op-session-1"
                            ))
                            .await;
                    }
                }
            })
        };
        held.abort_while_deleting(caller).await;

        eventually(&format!("{channel}: the session ends"), || {
            stores.sessions.lock().unwrap().is_empty()
        })
        .await;
        browser.set_cookie(&browser.settings.session_cookie, &session);
        let user = browser.api_get("/bff/user").await;
        assert_eq!(user.status, StatusCode::UNAUTHORIZED, "{channel}");
    }
}
