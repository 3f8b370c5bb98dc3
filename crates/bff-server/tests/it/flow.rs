//! Whole logins against the real provider, as a browser does them: redirect style and
//! API-driven style, then user, refresh and logout.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn redirect_style_login_user_refresh_logout() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    capture_logs();
    let (idp, server, browser) = provider_and_server().await;

    // Not logged in yet.
    assert_eq!(browser.api_get("/bff/user").await.status, 401);

    let callback = redirect_login(&browser, &server, &idp, "/app?tab=1").await;
    assert_eq!(callback.status, 200, "{}", callback.body);
    // A same-origin hop to the return URL, so the next page carries the Strict cookie.
    assert!(
        callback.body.contains("url=/app?tab=1"),
        "{}",
        callback.body
    );
    let cookies = callback.set_cookies();
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("bff="))
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert!(!session_cookie.contains("Domain"), "{session_cookie}");
    let session_value = session_cookie
        .trim_start_matches("bff=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(session_value.len(), 43, "256-bit opaque id expected");
    assert!(
        cookies.iter().any(|c| c.starts_with("bff-login=;")),
        "login binding not cleared: {cookies:?}"
    );

    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    let claims = user.json();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert!(claims["bff:session_expires_at"].as_i64().unwrap() > 0);
    let logout_url = claims["bff:logout_url"].as_str().unwrap().to_owned();
    assert!(logout_url.starts_with("/bff/logout?sid="), "{logout_url}");
    assert!(
        !logout_url.contains(&session_value),
        "logout link must not carry the session id"
    );

    let refreshed = browser.api_post("/bff/refresh", None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert!(refreshed.json()["expiresAt"].as_i64().unwrap() > 0);
    // Still logged in after the refresh (tokens replaced under the same session).
    assert_eq!(browser.api_get("/bff/user").await.status, 200);

    // Logout by link: ends the session and sends the browser to the provider.
    let wrong = browser
        .get(&format!("{}/bff/logout?sid=forged", server.base))
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert_eq!(wrong.problem_code(), "logout_link_mismatch");
    assert_eq!(
        browser.api_get("/bff/user").await.status,
        200,
        "forged logout must not log out"
    );

    let logout = browser.get(&format!("{}{logout_url}", server.base)).await;
    assert_eq!(logout.status, 302, "{}", logout.body);
    let end_session = logout.location().unwrap();
    assert!(end_session.starts_with(&idp.issuer), "{end_session}");
    assert!(
        query_param(&end_session, "id_token_hint").is_some(),
        "{end_session}"
    );
    assert_eq!(
        query_param(&end_session, "post_logout_redirect_uri").as_deref(),
        Some(format!("{}/bff/logout/callback", server.base).as_str())
    );
    // The browser keeps the `state` it sends to the provider, for the provider's return.
    let state = query_param(&end_session, "state").expect("state in the end-session URL");
    let kept = logout
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("bff-logout="))
        .unwrap_or_else(|| panic!("no post-logout cookie in {:?}", logout.set_cookies()));
    assert!(kept.starts_with(&format!("bff-logout={state};")), "{kept}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(kept.contains(attribute), "{kept}");
    }
    let after = browser.api_get("/bff/user").await;
    assert_eq!(after.status, 401);
    assert_eq!(after.problem_code(), "no_session");

    // The old cookie value is dead even if replayed.
    assert_eq!(
        get_with_session(&server.base, "/bff/user", &session_value).await,
        401
    );

    // The user confirms at the provider, which sends the browser back to the BFF's logout
    // return with the same state; the BFF checks it against the cookie and lands on the app.
    let returned = confirm_logout_at_provider(&browser, &end_session, &idp.issuer).await;
    assert!(
        returned.starts_with(&format!("{}/bff/logout/callback?", server.base)),
        "{returned}"
    );
    assert_eq!(
        query_param(&returned, "state").as_deref(),
        Some(state.as_str())
    );
    let back = browser.get(&returned).await;
    assert_eq!(back.status, 302, "{}", back.body);
    assert_eq!(back.location().as_deref(), Some("/"));
    assert!(
        back.set_cookies()
            .iter()
            .any(|c| c.starts_with("bff-logout=;") && c.contains("Max-Age=0")),
        "post-logout cookie not cleared: {:?}",
        back.set_cookies()
    );
    // The state was good for one return.
    let again = browser.get(&returned).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.problem_code(), "logout_state_mismatch");

    // Nothing the browser received carried a token, except the id_token_hint the provider's
    // end-session endpoint needs, which is sent by design.
    {
        let mut seen = browser.seen_from_bff.lock().unwrap();
        seen.retain(|s| !s.contains("/bff/logout?sid=") || !s.contains(" 302 "));
    }
    browser.assert_no_secrets_seen(&[]);
    assert_no_secret(&logs_text(), &[]);
    drop(server);
    drop(idp);
}

#[tokio::test]
async fn api_driven_login_session_userinfo_refresh_logout() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    capture_logs();
    let (idp, server, browser) = provider_and_server().await;

    let session = browser.api_get("/bff/session").await;
    assert_eq!(session.json(), json!({"isLoggedIn": false}));

    let started = browser
        .api_post("/bff/login/start", Some(json!({"returnUrl": "/inbox"})))
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let authorization_url = started.json()["authorizationRequestUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    // The provider offers pushed requests, so the parameters went there: the app holds only
    // a reference to them. That the redirect URI pushed is the app page shows below.
    assert_pushed(&authorization_url);

    // The provider returns to the app page; the app hands its URL to the BFF.
    let page_url = browser
        .sign_in_at_provider(&authorization_url, &idp.issuer)
        .await;
    assert!(
        page_url.starts_with(&format!("{}/?", server.base)),
        "{page_url}"
    );
    let ended = browser
        .api_post("/bff/login/end", Some(json!({"pageUrl": page_url})))
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(
        ended.json(),
        json!({"isLoggedIn": true, "handled": true, "returnUrl": "/inbox"})
    );

    // A plain page load afterwards: logged in, nothing to handle.
    let plain = browser
        .api_post(
            "/bff/login/end",
            Some(json!({"pageUrl": format!("{}/inbox", server.base)})),
        )
        .await;
    assert_eq!(plain.json(), json!({"isLoggedIn": true, "handled": false}));

    let session = browser.api_get("/bff/session").await.json();
    assert_eq!(session["isLoggedIn"], true);
    assert_eq!(session["provider"], "local");

    let userinfo = browser.api_get("/bff/userinfo").await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.body);
    assert_eq!(userinfo.json()["email"], "alice@example.test");

    let refreshed = browser.api_post("/bff/refresh", None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);

    let logout = browser.api_post("/bff/logout", None).await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    let logout_url = logout.json()["logoutUrl"].as_str().unwrap().to_owned();
    assert!(logout_url.starts_with(&idp.issuer), "{logout_url}");
    assert_eq!(
        browser.api_get("/bff/session").await.json()["isLoggedIn"],
        false
    );
    assert_eq!(browser.api_get("/bff/userinfo").await.status, 401);

    {
        let mut seen = browser.seen_from_bff.lock().unwrap();
        seen.retain(|s| !s.contains("logoutUrl"));
    }
    browser.assert_no_secrets_seen(&[]);
    assert_no_secret(&logs_text(), &[]);
}

#[tokio::test]
async fn a_second_provider_with_client_secret_post() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (idp, server, browser) = provider_and_server().await;
    let start = browser
        .get(&format!("{}/bff/login?provider=post", server.base))
        .await;
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.location().unwrap();
    assert_eq!(
        query_param(&location, "client_id").as_deref(),
        Some("bff-post")
    );
    let callback = browser.sign_in_at_provider(&location, &idp.issuer).await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let session = browser.api_get("/bff/session").await.json();
    assert_eq!(session["provider"], "post");
    assert_eq!(browser.api_post("/bff/refresh", None).await.status, 200);
}

#[tokio::test]
async fn the_openapi_document_describes_the_endpoints() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (_idp, server, browser) = provider_and_server().await;
    let doc = browser
        .get(&format!("{}/bff/openapi.json", server.base))
        .await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    for path in [
        "/login",
        "/callback",
        "/user",
        "/logout",
        "/logout/callback",
        "/login/start",
        "/login/end",
        "/session",
        "/userinfo",
        "/refresh",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    let ready = browser.get(&format!("{}/readyz", server.base)).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["checks"]["store:memory"]["status"], "ok");
}

/// Several tabs refreshing at once: the provider rotates refresh tokens and revokes the grant
/// when one is used twice, so only single-flight refresh keeps every answer a 200 and the
/// session usable afterwards.
#[tokio::test]
async fn concurrent_refreshes_share_one_refresh_and_keep_the_grant() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (idp, server, browser) = provider_and_server().await;
    let page = redirect_login(&browser, &server, &idp, "/").await;
    assert!(page.session_cookie().is_some(), "no session cookie");

    let refresh = || browser.api_post("/bff/refresh", None);
    let (a, b, c, d) = tokio::join!(refresh(), refresh(), refresh(), refresh());
    for answer in [&a, &b, &c, &d] {
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    // The refresh token the session holds now is the live one: another refresh works.
    let again = browser.api_post("/bff/refresh", None).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
}

/// Confirms an RP-initiated logout at the provider (its confirmation page's form, hidden inputs
/// included) and returns where the provider redirects the browser, without requesting it.
async fn confirm_logout_at_provider(browser: &Browser, end_session: &str, issuer: &str) -> String {
    let page = browser.get(end_session).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let action = form_action(&page.body)
        .unwrap_or_else(|| panic!("no form on the provider's logout page: {}", page.body));
    let fields = hidden_inputs(&page.body);
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let confirmed = browser.post_form(&absolute(issuer, &action), &form).await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    absolute(issuer, &confirmed.location().unwrap())
}

/// `(name, value)` of every `<input type="hidden">` of a page.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')?;
        Some(tag[start..start + end].to_owned())
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
        .collect()
}

/// Silent login against the real provider: without a session at the provider, `prompt=none`
/// comes back `login_required` and the result page says `isLoggedIn: false`; once the user has
/// signed in there, a silent login signs in again without any page (a new session id) and the
/// page says `true`.
#[tokio::test]
async fn silent_login_answers_the_parent_frame_with_and_without_a_provider_session() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (idp, server, browser) = provider_and_server().await;
    let silent = |browser: &Browser| {
        let base = server.base.clone();
        let issuer = idp.issuer.clone();
        let browser = browser.clone();
        async move {
            let start = browser.get(&format!("{base}/bff/silent-login")).await;
            assert_eq!(start.status, 302, "{}", start.body);
            let authorize = start.location().unwrap();
            assert_pushed(&authorize);
            // `prompt=none`, pushed with the rest: the provider answers with a redirect at
            // once, never a page.
            let back = browser.sign_in_at_provider(&authorize, &issuer).await;
            assert!(back.starts_with(&format!("{base}/bff/callback?")), "{back}");
            let hop = browser.get(&back).await;
            assert_eq!(hop.status, 200, "{}", hop.body);
            assert!(
                hop.body.contains("url=/bff/silent-login/callback"),
                "{}",
                hop.body
            );
            let page = browser
                .get(&format!("{base}/bff/silent-login/callback"))
                .await;
            assert_eq!(page.status, 200, "{}", page.body);
            (back, hop.session_cookie(), page.body)
        }
    };

    let (back, session, page) = silent(&browser).await;
    assert_eq!(session, None, "a refused silent login set a session cookie");
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required"),
        "{back}"
    );
    assert!(page.contains("isLoggedIn:false"), "{page}");
    assert_eq!(browser.api_get("/bff/user").await.status, 401);

    let first = redirect_login(&browser, &server, &idp, "/")
        .await
        .session_cookie()
        .expect("no session after login");
    let (back, second, page) = silent(&browser).await;
    assert!(query_param(&back, "code").is_some(), "{back}");
    assert!(page.contains("isLoggedIn:true"), "{page}");
    let second = second.expect("no session after the silent login");
    assert_ne!(first, second, "a silent login starts a new session id");
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(user.json()["sub"], "alice");
    browser.assert_no_secrets_seen(&[]);
}

/// Pushed authorization requests (RFC 9126) against the real provider, which offers them:
/// by default (`local`, `client_secret_basic`) and when configured `always` (`post`,
/// `client_secret_post`), the browser is sent to the provider with only `client_id` and the
/// `request_uri` the provider gave back (no state, nonce, PKCE challenge or redirect URI in its
/// hands), and the login completes as any other. Turned `off`, the parameters are in the URL.
#[tokio::test]
async fn pushed_authorization_requests_keep_the_login_parameters_out_of_the_browser() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (first, second) = (reserve().await, reserve().await);
    let idp = Idp::start_on_host(
        "127.0.0.1",
        &[first.callback(), second.callback()],
        &[first.logout_return(), second.logout_return()],
    );
    let config = config_with_env(
        &first.base,
        &idp.issuer,
        "",
        &[(
            "BFF_PROVIDERS__POST__PUSHED_AUTHORIZATION_REQUESTS",
            "always",
        )],
    );
    let pushing = first.serve(config).await;
    let config = config_with_env(
        &second.base,
        &idp.issuer,
        "",
        &[("BFF_PROVIDERS__LOCAL__PUSHED_AUTHORIZATION_REQUESTS", "off")],
    );
    let not_pushing = second.serve(config).await;
    for (server, provider, client_id, pushed) in [
        (&pushing, "local", "bff-basic", true),
        (&pushing, "post", "bff-post", true),
        (&not_pushing, "local", "bff-basic", false),
    ] {
        let case = format!("{provider}, pushed {pushed}");
        let browser = Browser::new(&server.base);
        let start = browser
            .get(&format!(
                "{}/bff/login?provider={provider}&returnUrl=/pushed",
                server.base
            ))
            .await;
        assert_eq!(start.status, 302, "{case}: {}", start.body);
        let authorize = start.location().unwrap();
        assert_eq!(
            query_param(&authorize, "client_id").as_deref(),
            Some(client_id),
            "{case}"
        );
        if pushed {
            assert_pushed(&authorize);
        } else {
            for name in ["state", "nonce", "code_challenge", "redirect_uri"] {
                assert!(query_param(&authorize, name).is_some(), "{case}: {name}");
            }
            assert_eq!(query_param(&authorize, "request_uri"), None, "{case}");
        }
        let callback = browser.sign_in_at_provider(&authorize, &idp.issuer).await;
        assert!(
            callback.starts_with(&format!("{}/bff/callback?", server.base)),
            "{case}: {callback}"
        );
        let landed = browser.get(&callback).await;
        assert_eq!(landed.status, 200, "{case}: {}", landed.body);
        assert!(landed.body.contains("url=/pushed"), "{}", landed.body);
        let user = browser.api_get("/bff/user").await;
        assert_eq!(user.status, 200, "{case}: {}", user.body);
        assert_eq!(user.json()["sub"], "alice");
        browser.assert_no_secrets_seen(&[]);
    }
}

/// `private_key_jwt` against the real provider, which verifies each assertion against the
/// client's registered public key and refuses a `jti` it has seen: the pushed authorization
/// request, the code exchange, a refresh and logout all authenticate with the key alone (the
/// client has no secret at the provider). A BFF holding a key the provider does not know cannot
/// even start a login.
#[tokio::test]
async fn a_client_authenticated_by_its_private_key_logs_in_refreshes_and_logs_out() {
    use bff_test_services::client_key::ClientKey;

    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    capture_logs();
    let key = ClientKey::generate();
    let jwks = format!(r#"{{"keys":[{}]}}"#, key.public_jwk("bff-k1"));
    let (registered, unknown) = (reserve().await, reserve().await);
    let idp = Idp::start_with_env(
        "127.0.0.1",
        &[registered.callback(), unknown.callback()],
        &[registered.logout_return(), unknown.logout_return()],
        &[("IDP_CLIENT_JWKS", &jwks)],
    );
    let jwt_provider = |key_file: &std::path::Path, extra: &str| {
        format!(
            r#"
[providers.jwt]
issuer = "{}"
client_id = "bff-jwt"
client_auth = "private_key_jwt"
private_key_file = "{}"
private_key_id = "bff-k1"
{extra}
"#,
            idp.issuer,
            key_file.display()
        )
    };
    let key_file = key.write_private_pem("bff-flow-client-key");
    // With the key's certificate too, as for Entra ID: the thumbprints in each header change
    // nothing for a provider that finds the key by `kid`.
    let certificate_file = key.write_certificate_pem("bff-flow-client-cert");
    let with_certificate = format!(
        "client_certificate_file = \"{}\"\nclient_assertion_algorithm = \"ES256\"",
        certificate_file.display()
    );
    let config = config_with(
        &registered.base,
        &idp.issuer,
        &jwt_provider(&key_file, &with_certificate),
    );
    let server = registered.serve(config).await;
    let browser = Browser::new(&server.base);

    let start = browser
        .get(&format!("{}/bff/login?provider=jwt", server.base))
        .await;
    assert_eq!(start.status, 302, "{}", start.body);
    let authorize = start.location().unwrap();
    assert_eq!(
        query_param(&authorize, "client_id").as_deref(),
        Some("bff-jwt")
    );
    // Pushed, so the provider has checked one assertion already.
    assert_pushed(&authorize);
    let callback = browser.sign_in_at_provider(&authorize, &idp.issuer).await;
    let landed = browser.get(&callback).await;
    assert_eq!(landed.status, 200, "{}", landed.body);
    let session = browser.api_get("/bff/session").await;
    assert_eq!(session.json()["provider"], "jwt", "{}", session.body);
    assert_eq!(browser.api_get("/bff/user").await.json()["sub"], "alice");
    // Two refreshes: each needs an assertion with a `jti` the provider has not seen.
    for _ in 0..2 {
        let refreshed = browser.api_post("/bff/refresh", None).await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    }
    let logout = browser.api_post("/bff/logout", None).await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    assert_eq!(browser.api_get("/bff/user").await.status, 401);
    {
        // The answers carry no token (the logout URL's `id_token_hint` aside, as above).
        let mut seen = browser.seen_from_bff.lock().unwrap();
        seen.retain(|s| !s.contains("logoutUrl"));
    }
    browser.assert_no_secrets_seen(&[]);

    // Another key, same client id: the provider refuses the pushed request's assertion. Its
    // certificate has expired, which the start warns of (and only that start: the first
    // server's certificate is good for centuries).
    let warning = "the client certificate for private_key_jwt expires soon or has expired";
    assert!(!logs_text().contains(warning), "{}", logs_text());
    let stranger_key = ClientKey::generate();
    let stranger = stranger_key.write_private_pem("bff-flow-stranger-key");
    let expired =
        stranger_key.write_certificate_pem_expiring("bff-flow-stranger-cert", Some((2020, 1, 1)));
    let config = config_with(
        &unknown.base,
        &idp.issuer,
        &jwt_provider(
            &stranger,
            &format!("client_certificate_file = \"{}\"", expired.display()),
        ),
    );
    let server = unknown.serve(config).await;
    let browser = Browser::new(&server.base);
    let refused = browser
        .get(&format!("{}/bff/login?provider=jwt", server.base))
        .await;
    assert_ne!(refused.status, 302, "{}", refused.body);
    assert!(
        refused.status >= 500,
        "{}: {}",
        refused.status,
        refused.body
    );
    let logs = logs_text();
    let warned = logs
        .lines()
        .find(|line| line.contains(warning))
        .unwrap_or_else(|| panic!("no expiry warning in {logs}"));
    assert!(
        warned.contains("WARN") && warned.contains("days_left=0") && warned.contains("jwt"),
        "{warned}"
    );
    std::fs::remove_file(&key_file).unwrap();
    std::fs::remove_file(&certificate_file).unwrap();
    std::fs::remove_file(&stranger).unwrap();
    std::fs::remove_file(&expired).unwrap();
}

/// `GET /bff/userinfo` once the access token has expired at the provider: the BFF refreshes it
/// first, as the API proxy does, rather than hand the provider's userinfo endpoint a dead token
/// (which answered `401 invalid_token`, so the app got `502` until something else refreshed).
#[tokio::test]
async fn userinfo_after_the_access_token_expired_refreshes_first() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let reserved = reserve().await;
    let idp = Idp::start_with_env(
        "127.0.0.1",
        &[reserved.callback(), reserved.app_page()],
        &[reserved.logout_return(), reserved.app_page()],
        &[
            ("IDP_ACCESS_TOKEN_TTL", "2"),
            ("IDP_REFRESHED_ACCESS_TOKEN_TTL", "300"),
            // An expired access token is refused at once, not 15 s later.
            ("IDP_CLOCK_TOLERANCE", "0"),
        ],
    );
    let mut config = config(&reserved.base, &idp.issuer);
    // Shorter than the first token's life, so it is not due for a refresh until it has expired.
    config.session.refresh_margin_secs = 1;
    let server = reserved.serve(config).await;
    let browser = Browser::new(&server.base);
    let landed = redirect_login(&browser, &server, &idp, "/").await;
    assert_eq!(landed.status, 200, "{}", landed.body);
    // Past the token's `exp` (whole seconds) at the provider.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let userinfo = browser.api_get("/bff/userinfo").await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.body);
    assert_eq!(userinfo.json()["email"], "alice@example.test");
    browser.assert_no_secrets_seen(&[]);
}
