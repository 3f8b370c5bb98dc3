//! The axum host against the real local OpenID Provider: log in through the provider's form,
//! read `/user`, log out, and be refused afterwards; with the CSRF, cookie and login-binding
//! rules checked on the way.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod support;

use support::{Browser, idp_available, prerequisite, provider_and_host};

#[tokio::test]
async fn login_user_and_logout_through_the_local_provider() {
    if !prerequisite("the local OpenID Provider (Node.js)", idp_available()) {
        return;
    }
    let (idp, host) = provider_and_host().await;
    let browser = Browser::new();
    let url = |path: &str| format!("{}{path}", host.base);

    // Before login: the CSRF header comes first, then the missing session.
    let page = browser.get(&url("/user")).await;
    assert_eq!(page.status, 403);
    assert_eq!(page.problem_code(), "csrf_failed");
    let page = Browser::read(
        browser
            .http
            .get(url("/user"))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 401);
    assert_eq!(page.problem_code(), "no_session");

    // Login: 302 to the provider, with the binding cookie for the way back.
    let start = browser.get(&url("/login?returnUrl=/orders?tab=1")).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let authorization_url = start.location().unwrap();
    assert!(
        authorization_url.starts_with(&idp.issuer),
        "{authorization_url}"
    );
    // The provider offers pushed authorization requests, so the PKCE challenge, state and
    // nonce went to it directly: the browser holds only a reference to them.
    for part in [
        "client_id=bff-basic",
        "request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A",
    ] {
        assert!(authorization_url.contains(part), "{authorization_url}");
    }
    for part in ["code_challenge", "state=", "nonce=", "redirect_uri="] {
        assert!(!authorization_url.contains(part), "{authorization_url}");
    }
    let binding = start.set_cookie("login").expect("login-binding cookie");
    assert!(binding.contains("; HttpOnly"), "{binding}");
    assert!(binding.contains("; SameSite=Lax"), "{binding}");

    let callback = browser
        .sign_in_at_provider(&authorization_url, &idp.issuer)
        .await;
    assert!(
        callback.starts_with(&url("/callback?")),
        "the provider sent the browser to {callback}"
    );

    // The callback sets the session cookie and moves on to the return URL.
    let done = browser.get(&callback).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("url=/orders?tab=1\""),
        "hop page: {}",
        done.body
    );
    assert_eq!(
        done.header("referrer-policy").as_deref(),
        Some("no-referrer")
    );
    let session = done.set_cookie("session").expect("session cookie");
    assert!(session.contains("; HttpOnly"), "{session}");
    assert!(session.contains("; SameSite=Strict"), "{session}");
    assert!(session.contains("; Path=/"), "{session}");
    let cleared = done.set_cookie("login").expect("binding cleared");
    assert!(cleared.starts_with("login=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let session_value = session
        .strip_prefix("session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_owned();

    // The same callback again: its state was used up.
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.problem_code(), "state_mismatch");

    // The user, through the session cookie.
    let user = Browser::read(
        browser
            .http
            .get(url("/user"))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(user.status, 200, "{}", user.body);
    let claims = user.json();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert!(!user.body.contains("eyJ"), "a token reached the browser");
    assert_eq!(user.header("cache-control").as_deref(), Some("no-store"));

    // Logout is refused without the header, without an Origin, or from another origin; the
    // session survives those.
    let post = |origin: Option<&str>, csrf: bool| {
        let mut request = browser.http.post(url("/logout"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if csrf {
            request = request.header("x-csrf", "1");
        }
        request.send()
    };
    for (origin, csrf) in [
        (Some(host.base.as_str()), false),
        (None, true),
        (Some("http://evil.example"), true),
        (Some("null"), true),
    ] {
        let refused = Browser::read(post(origin, csrf).await.unwrap()).await;
        assert_eq!(refused.status, 403, "{origin:?} {csrf}");
        assert_eq!(refused.problem_code(), "csrf_failed");
    }
    assert_eq!(user_status(&host.base, &session_value).await, 200);

    // Logout: the session ends, the cookie goes, and the provider accepts the logout URL.
    let out = Browser::read(post(Some(&host.base), true).await.unwrap()).await;
    assert_eq!(out.status, 200, "{}", out.body);
    let cleared = out.set_cookie("session").expect("session cookie cleared");
    assert!(cleared.starts_with("session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let logout_url = out.json()["logoutUrl"].as_str().unwrap().to_owned();
    assert!(logout_url.starts_with(&idp.issuer), "{logout_url}");
    assert!(logout_url.contains("client_id=bff-basic"), "{logout_url}");
    let confirm = browser.get(&logout_url).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Sign out"), "{}", confirm.body);

    // Afterwards: 401 in this browser, and the old cookie value replayed from elsewhere is dead
    // too (the session is gone from the store, not only from the browser).
    let after = Browser::read(
        browser
            .http
            .get(url("/user"))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(after.status, 401);
    assert_eq!(after.problem_code(), "no_session");
    assert_eq!(user_status(&host.base, &session_value).await, 401);

    // Logging out again is not an error.
    let again = Browser::read(post(Some(&host.base), true).await.unwrap()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["logoutUrl"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_callback_carried_to_another_browser_creates_no_session() {
    if !prerequisite("the local OpenID Provider (Node.js)", idp_available()) {
        return;
    }
    let (idp, host) = provider_and_host().await;
    let victim = Browser::new();
    let start = victim.get(&format!("{}/login", host.base)).await;
    assert_eq!(start.status, 302);
    let callback = victim
        .sign_in_at_provider(&start.location().unwrap(), &idp.issuer)
        .await;

    // Login CSRF: the attacker's browser has no binding cookie for this login.
    let attacker = Browser::new();
    let page = attacker.get(&callback).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.problem_code(), "login_binding_missing");
    assert!(
        page.set_cookie("session").is_none(),
        "{:?}",
        page.set_cookies()
    );

    // The state was used up by that attempt, so the victim cannot be logged in with it either.
    let page = victim.get(&callback).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.problem_code(), "state_mismatch");
    assert!(page.set_cookie("session").is_none());

    // Hostile inputs to the other routes are problems, never a session or a redirect elsewhere.
    for (path, code) in [
        ("/login?returnUrl=//evil.example", "unsafe_return_url"),
        (
            "/login?returnUrl=https://evil.example/",
            "unsafe_return_url",
        ),
        ("/login?returnUrl=/%09/evil.example", "unsafe_return_url"),
        ("/callback", "state_mismatch"),
        ("/callback?state=&code=x", "state_mismatch"),
        ("/callback?state=forged&code=x", "state_mismatch"),
        ("/nowhere", "not_found"),
    ] {
        let page = victim.get(&format!("{}{path}", host.base)).await;
        assert!(page.location().is_none(), "{path}");
        assert_eq!(page.problem_code(), code, "{path}");
    }
    let page = Browser::read(
        victim
            .http
            .get(format!("{}/logout", host.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 405);
    assert_eq!(page.problem_code(), "method_not_allowed");
}

/// `GET /user` with `x-csrf: 1` and exactly the session cookie `value`, from a fresh client.
async fn user_status(base: &str, value: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/user"))
        .header("x-csrf", "1")
        .header("cookie", format!("session={value}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
