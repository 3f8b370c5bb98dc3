//! Logging out and the provider's return: the post-logout state cookie, `GET /logout/callback`,
//! and session cookies cleared when the domain ends a session.

use poem::http::StatusCode;
use serde_json::json;

use crate::support::{Browser, cookie_value, has_attribute, query_param};

/// Logs in and out through `POST /logout`; returns the `state` in the provider's end-session
/// URL.
async fn log_in_and_out(browser: &Browser) -> String {
    browser.log_in().await;
    let logout = browser.api_post("/bff/logout", None).await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
    let logout_url = logout.json()["logoutUrl"].as_str().unwrap().to_owned();
    let state = query_param(&logout_url, "state").expect("state in the end-session URL");

    let session = logout
        .set_cookie(&browser.settings.session_cookie)
        .expect("session cookie not cleared");
    assert!(has_attribute(&session, "Max-Age=0"), "{session}");

    let line = logout
        .set_cookie(&browser.settings.logout_cookie)
        .expect("no post-logout state cookie");
    assert_eq!(cookie_value(&line), state, "{line}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(
            has_attribute(&line, attribute),
            "{attribute} missing: {line}"
        );
    }
    assert_eq!(
        has_attribute(&line, "Secure"),
        browser.settings.secure_cookies,
        "{line}"
    );
    assert!(!line.to_ascii_lowercase().contains("domain"), "{line}");
    state
}

fn assert_logout_cookie_cleared(answer: &crate::support::Answer, browser: &Browser) {
    let line = answer
        .set_cookie(&browser.settings.logout_cookie)
        .unwrap_or_else(|| panic!("post-logout cookie not cleared: {:?}", answer.headers));
    assert_eq!(cookie_value(&line), "", "{line}");
    assert!(has_attribute(&line, "Max-Age=0"), "{line}");
}

#[tokio::test]
async fn the_providers_return_with_the_kept_state_lands_on_the_app() {
    for secure in [true, false] {
        let browser = Browser::new(secure);
        let state = log_in_and_out(&browser).await;
        assert_eq!(
            browser.cookie(&browser.settings.logout_cookie).as_deref(),
            Some(state.as_str())
        );

        let back = browser
            .navigate(&format!("/bff/logout/callback?state={state}"))
            .await;
        assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
        assert_eq!(back.location().as_deref(), Some("/"));
        assert_logout_cookie_cleared(&back, &browser);

        // The state was good for one return.
        let again = browser
            .navigate(&format!("/bff/logout/callback?state={state}"))
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
        assert_eq!(again.problem_code(), "logout_state_mismatch");
    }
}

#[tokio::test]
async fn a_return_this_browser_did_not_start_is_refused_and_clears_the_cookie() {
    let browser = Browser::new(true);
    let state = log_in_and_out(&browser).await;
    let cookie = browser.settings.logout_cookie.clone();
    let other = "A".repeat(state.len());
    let cases: Vec<(Option<&str>, String)> = vec![
        // Another state than the kept one, or a variation of it.
        (Some(&state), format!("?state={other}")),
        (Some(&state), format!("?state={state}x")),
        (
            Some(&state),
            format!("?state={}", &state[..state.len() - 1]),
        ),
        (
            Some(&state),
            format!("?state={}", state.to_ascii_uppercase()),
        ),
        // No state, an empty one, or two.
        (Some(&state), String::new()),
        (Some(&state), "?state=".into()),
        (Some(&state), format!("?state={other}&state={state}")),
        // A state but no cookie, or a cookie that is not a state.
        (None, format!("?state={state}")),
        (Some(""), "?state=".into()),
        (Some("%3Cscript%3E"), "?state=%3Cscript%3E".into()),
        (Some("not-a-state"), "?state=not-a-state".into()),
    ];
    for (kept, query) in cases {
        match kept {
            Some(value) => browser.set_cookie(&cookie, value),
            None => browser.remove_cookie(&cookie),
        }
        let back = browser
            .navigate(&format!("/bff/logout/callback{query}"))
            .await;
        assert_eq!(
            back.status,
            StatusCode::BAD_REQUEST,
            "{kept:?} {query}: {}",
            back.body
        );
        assert_eq!(back.problem_code(), "logout_state_mismatch", "{query}");
        assert_eq!(
            back.headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store")
        );
        assert_logout_cookie_cleared(&back, &browser);
        assert!(!back.body.contains(&state), "the kept state was echoed");
    }
}

/// `GET /user` answers the ID token's claims with the BFF's two members added. A provider's
/// claims of the same names never stand in for them, and each name appears once in the body.
#[tokio::test]
async fn user_answers_the_bffs_own_members_over_claims_of_the_same_name() {
    let browser = Browser::new(true);
    {
        let mut script = browser.provider.script.lock().unwrap();
        for (name, value) in [
            ("bff:logout_url", json!("https://evil.example/logout")),
            ("bff:session_expires_at", json!(1)),
            ("email", json!("alice@example.com")),
        ] {
            script.extra_claims.insert(name.to_owned(), value);
        }
    }
    browser.log_in().await;
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.body);
    assert_eq!(
        user.headers.get("content-type").unwrap(),
        "application/json; charset=utf-8"
    );
    for name in ["bff:logout_url", "bff:session_expires_at", "email", "sub"] {
        let member = format!("\"{name}\":");
        assert_eq!(
            user.body.matches(&member).count(),
            1,
            "{name}: {}",
            user.body
        );
    }
    let claims = user.json();
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["sub"], "alice");
    let link = claims["bff:logout_url"].as_str().unwrap();
    assert!(link.starts_with("/bff/logout?"), "{link}");
    assert!(claims["bff:session_expires_at"].as_i64().unwrap() > 1);
}

#[tokio::test]
async fn the_logout_link_keeps_the_state_too() {
    let browser = Browser::new(true);
    browser.log_in().await;
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.body);
    let link = user.json()["bff:logout_url"].as_str().unwrap().to_owned();

    let logout = browser.navigate(&link).await;
    assert_eq!(logout.status, StatusCode::FOUND, "{}", logout.body);
    let end_session = logout.location().unwrap();
    assert!(
        end_session.starts_with(crate::support::ISSUER),
        "{end_session}"
    );
    let state = query_param(&end_session, "state").unwrap();
    let line = logout
        .set_cookie(&browser.settings.logout_cookie)
        .expect("no post-logout state cookie");
    assert_eq!(cookie_value(&line), state);
    assert!(has_attribute(&line, "SameSite=Lax"), "{line}");

    let back = browser
        .navigate(&format!("/bff/logout/callback?state={state}"))
        .await;
    assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
    assert_eq!(back.location().as_deref(), Some("/"));
}

#[tokio::test]
async fn a_logout_without_a_session_sets_no_state() {
    let browser = Browser::new(true);
    let logout = browser.api_post("/bff/logout", None).await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
    assert_eq!(logout.json(), serde_json::json!({}));
    assert!(logout.set_cookie(&browser.settings.logout_cookie).is_none());
    let link = browser.navigate("/bff/logout?sid=anything").await;
    assert_eq!(link.status, StatusCode::FOUND);
    assert_eq!(link.location().as_deref(), Some("/"));
    assert!(link.set_cookie(&browser.settings.logout_cookie).is_none());
}

/// A session the domain ends on an error answer (here: the provider refuses to refresh) loses
/// its cookie on that very answer.
#[tokio::test]
async fn an_error_that_ends_the_session_clears_its_cookie() {
    let browser = Browser::new(true);
    browser.log_in().await;
    browser.provider.script.lock().unwrap().refresh_error =
        Some(|| bff_domain::ports::ProviderError::Rejected("invalid_grant".into()));
    let refresh = browser.api_post("/bff/refresh", None).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED, "{}", refresh.body);
    assert_eq!(refresh.problem_code(), "refresh_refused");
    let line = refresh
        .set_cookie(&browser.settings.session_cookie)
        .expect("session cookie not cleared with the 401");
    assert!(has_attribute(&line, "Max-Age=0"), "{line}");
    assert!(browser.cookie(&browser.settings.session_cookie).is_none());
}

/// `POST /logout` answers script with JSON whatever its `Accept` says (`fetch` sends `*/*` by
/// default): a `302` would send the `fetch` after the provider's end-session URL, cross-origin,
/// where it fails with the session already ended.
#[tokio::test]
async fn a_scripted_logout_gets_json_whatever_it_accepts() {
    for accept in [None, Some("*/*"), Some("text/html")] {
        let browser = Browser::new(true);
        browser.log_in().await;
        let mut headers = vec![("x-csrf", "1"), ("origin", crate::support::APP_ORIGIN)];
        headers.extend(accept.map(|accept| ("accept", accept)));
        let logout = browser
            .send(poem::http::Method::POST, "/bff/logout", &headers, None)
            .await;
        assert_eq!(logout.status, StatusCode::OK, "{accept:?}: {}", logout.body);
        assert_eq!(logout.location(), None, "{accept:?}");
        let logout_url = logout.json()["logoutUrl"].as_str().unwrap().to_owned();
        assert!(
            query_param(&logout_url, "id_token_hint").is_some(),
            "{accept:?}: {logout_url}"
        );
        assert!(
            browser.cookie(&browser.settings.session_cookie).is_none(),
            "{accept:?}: the session cookie stayed"
        );
    }
}

/// What a browser sends when the user submits `<form method="post" action="/bff/logout">`.
fn form_headers(origin: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "same-origin"),
        ("accept", "text/html"),
    ];
    headers.extend(origin.map(|origin| ("origin", origin)));
    headers
}

/// A plain HTML form of the app logs out like the link: a navigation with the app's `Origin`
/// needs no `x-csrf`, and is answered with the redirect to the provider.
#[tokio::test]
async fn an_app_form_logs_out_with_a_redirect_to_the_provider() {
    let browser = Browser::new(true);
    browser.log_in().await;
    let logout = browser
        .send_bytes(
            poem::http::Method::POST,
            "/bff/logout",
            &form_headers(Some(crate::support::APP_ORIGIN)),
            Some(("application/x-www-form-urlencoded", Vec::new())),
        )
        .await;
    assert_eq!(logout.status, StatusCode::FOUND, "{}", logout.body);
    let location = logout.location().unwrap();
    assert!(
        query_param(&location, "id_token_hint").is_some(),
        "{location}"
    );
    assert!(query_param(&location, "state").is_some(), "{location}");
    assert!(browser.cookie(&browser.settings.session_cookie).is_none());
    assert!(browser.cookie(&browser.settings.logout_cookie).is_some());
    assert_eq!(
        browser.api_get("/bff/user").await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Forms and scripts that are not the app's are refused before anything changes: another
/// site's form (its own `Origin`, or `null`), a form without `Origin`, and requests without
/// `x-csrf` that are no navigation (a `fetch`, or a browser that does not say).
#[tokio::test]
async fn forged_form_logouts_are_refused_and_change_nothing() {
    let browser = Browser::new(true);
    browser.log_in().await;
    let mut cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "another site's form",
            form_headers(Some("https://evil.example")),
        ),
        ("a sandboxed form", form_headers(Some("null"))),
        ("a form without Origin", form_headers(None)),
    ];
    let app = crate::support::APP_ORIGIN;
    cases.push((
        "a fetch without x-csrf",
        vec![("sec-fetch-mode", "cors"), ("origin", app)],
    ));
    cases.push(("no Sec-Fetch-Mode, no x-csrf", vec![("origin", app)]));
    for (name, headers) in cases {
        let answer = browser
            .send_bytes(
                poem::http::Method::POST,
                "/bff/logout",
                &headers,
                Some(("application/x-www-form-urlencoded", Vec::new())),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{name}: {}",
            answer.body
        );
        assert_eq!(answer.problem_code(), "csrf_failed", "{name}");
        assert_eq!(
            browser.api_get("/bff/user").await.status,
            StatusCode::OK,
            "{name}: the session ended"
        );
    }
}

/// A logout whose browser goes away while the store is deleting the session (the tab closed;
/// the server then drops the request's handler) still ends the session and revokes its
/// refresh token: once the session is gone, nothing else could revoke it.
#[tokio::test]
async fn a_logout_whose_browser_goes_away_still_ends_the_session_and_revokes_its_token() {
    let (browser, held, _) = crate::support::browser_with_held_deletes();
    browser.log_in().await;
    let session = browser.cookie(&browser.settings.session_cookie).unwrap();
    let caller = {
        let browser = browser.clone();
        tokio::spawn(async move {
            browser.api_post("/bff/logout", None).await;
        })
    };
    held.abort_while_deleting(caller).await;

    crate::support::eventually("the refresh token is revoked", || {
        !browser.provider.revoked.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(browser.provider.revoked.lock().unwrap().len(), 1);
    browser.set_cookie(&browser.settings.session_cookie, &session);
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, StatusCode::UNAUTHORIZED, "{}", user.body);
}
