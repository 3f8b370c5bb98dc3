//! Silent login: `GET /silent-login` starts a `prompt=none` login whose every ending, signed in
//! or not, is `GET /silent-login/callback`, the page that tells its parent frame the result.

use base64::Engine as _;
use poem::http::StatusCode;
use sha2::Digest as _;

use crate::support::{APP_ORIGIN, Answer, Browser, ISSUER, query_param};

/// Starts a silent login; returns the `state` sent to the provider.
async fn start(browser: &Browser) -> String {
    let start = browser.navigate("/bff/silent-login").await;
    assert_eq!(start.status, StatusCode::FOUND, "{}", start.body);
    let location = start.location().unwrap();
    assert_eq!(
        query_param(&location, "prompt").as_deref(),
        Some("none"),
        "{location}"
    );
    query_param(&location, "state").unwrap()
}

/// The result page: what it posts, after checking that its policy lets exactly its own script
/// run and lets the app frame it.
fn posted(page: &Answer) -> bool {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    let script = page
        .body
        .split_once("<script>")
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map(|(script, _)| script)
        .unwrap_or_else(|| panic!("no script in {}", page.body));
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
    assert!(
        policy.contains(&format!("script-src 'sha256-{hash}'")),
        "{policy} does not allow {script}"
    );
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert!(
        policy.contains(&format!("frame-ancestors 'self' {APP_ORIGIN}")),
        "{policy}"
    );
    assert!(
        script.contains(&format!("[\"{APP_ORIGIN}\"]")),
        "posted to other origins than the app's: {script}"
    );
    assert!(script.contains("source:\"bff-silent-login\""), "{script}");
    match (
        script.contains("isLoggedIn:true"),
        script.contains("isLoggedIn:false"),
    ) {
        (true, false) => true,
        (false, true) => false,
        _ => panic!("no single result in {script}"),
    }
}

#[tokio::test]
async fn a_silent_login_signs_in_and_its_page_says_so() {
    let browser = Browser::new(true);
    let state = start(&browser).await;
    let callback = browser
        .navigate(&format!(
            "/bff/callback?state={state}&code=the-code&iss={ISSUER}"
        ))
        .await;
    assert_eq!(callback.status, StatusCode::OK, "{}", callback.body);
    assert!(
        callback.body.contains("url=/bff/silent-login/callback"),
        "{}",
        callback.body
    );
    assert!(browser.cookie(&browser.settings.session_cookie).is_some());
    let page = browser.navigate("/bff/silent-login/callback").await;
    assert!(posted(&page));
    assert_eq!(browser.api_get("/bff/user").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_silent_login_the_provider_cannot_complete_lands_on_its_page_logged_out() {
    for error in ["login_required", "interaction_required", "access_denied"] {
        let browser = Browser::new(true);
        let state = start(&browser).await;
        let callback = browser
            .navigate(&format!(
                "/bff/callback?state={state}&error={error}&iss={ISSUER}"
            ))
            .await;
        assert_eq!(
            callback.status,
            StatusCode::OK,
            "{error}: {}",
            callback.body
        );
        assert!(
            callback.body.contains("url=/bff/silent-login/callback"),
            "{error}: {}",
            callback.body
        );
        assert!(browser.cookie(&browser.settings.session_cookie).is_none());
        let page = browser.navigate("/bff/silent-login/callback").await;
        assert!(!posted(&page), "{error}");
    }
}

/// The page reports the browser's session, whichever login made it; a silent login the
/// provider refuses leaves a live session as it was.
#[tokio::test]
async fn the_page_reports_a_live_session_and_a_refused_silent_login_keeps_it() {
    let browser = Browser::new(true);
    assert!(!posted(
        &browser.navigate("/bff/silent-login/callback").await
    ));
    browser.log_in().await;
    assert!(posted(
        &browser.navigate("/bff/silent-login/callback").await
    ));
    let state = start(&browser).await;
    browser
        .navigate(&format!(
            "/bff/callback?state={state}&error=login_required&iss={ISSUER}"
        ))
        .await;
    assert!(posted(
        &browser.navigate("/bff/silent-login/callback").await
    ));
    assert_eq!(browser.api_get("/bff/user").await.status, StatusCode::OK);
}

/// Only a silent login's own state turns a provider error into its page: an ordinary login
/// with `prompt=none` still gets the problem, and a forged or replayed state is refused as
/// before.
#[tokio::test]
async fn provider_errors_outside_a_silent_login_are_still_problems() {
    let browser = Browser::new(true);
    let start = browser
        .navigate("/bff/login?prompt=none&returnUrl=/a")
        .await;
    let state = query_param(&start.location().unwrap(), "state").unwrap();
    let denied = browser
        .navigate(&format!(
            "/bff/callback?state={state}&error=login_required&iss={ISSUER}"
        ))
        .await;
    assert_eq!(denied.status, StatusCode::BAD_REQUEST);
    assert_eq!(denied.problem_code(), "provider_denied");

    let browser = Browser::new(true);
    let state = self::start(&browser).await;
    let forged = browser
        .navigate(&format!(
            "/bff/callback?state=forged-{state}&error=login_required&iss={ISSUER}"
        ))
        .await;
    assert_eq!(forged.problem_code(), "state_mismatch");
    // The silent login's state without its binding cookie, as another browser would send it.
    browser.remove_cookie(&browser.settings.binding_cookie);
    let stolen = browser
        .navigate(&format!(
            "/bff/callback?state={state}&error=login_required&iss={ISSUER}"
        ))
        .await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST, "{}", stolen.body);
    assert_eq!(stolen.problem_code(), "login_binding_missing");
}
