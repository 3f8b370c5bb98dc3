//! The admin API of the real server on its own listener, on every store: without the
//! credential `401`; with it, alice's two sessions are listed (no token, session id or session
//! key in the listing), revoking one by handle ends exactly that cookie, revoking all ends the
//! other, and bob's session is untouched throughout.

use sha2::{Digest, Sha256};

use crate::stores::{Store, on_store};
use crate::support::*;

const ADMIN_TOKEN: &str = "integration-admin-token-7f3c";

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The handle the admin API shows for the session whose cookie is `cookie`: the documented
/// derivation (`bff_domain::SessionHandle`), computed independently here.
fn handle_of(cookie: &str) -> String {
    let key = hex_sha256(cookie);
    hex_sha256(&format!("bff-admin-handle/v1:{key}"))[..32].to_owned()
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
/// A `User-Agent` trying to smuggle markup into the operators' listing.
const HOSTILE_UA: &str = "Chrome/131.0 <img src=x onerror=alert(1)> (Windows NT 10.0)";

/// Logs a fresh browser sending `user_agent` in as `login` and returns its session cookie value.
async fn session_of(
    server: &Server,
    idp: &Idp,
    login: &str,
    password: &str,
    user_agent: &str,
) -> String {
    let mut browser = Browser::new(&server.base);
    browser.http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .unwrap();
    let start = browser
        .get(&format!("{}/bff/login?returnUrl=/", server.base))
        .await;
    assert_eq!(start.status, 302, "{}", start.body);
    let callback = browser
        .sign_in_with(&start.location().unwrap(), &idp.issuer, login, password)
        .await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.session_cookie().expect("session cookie")
}

struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    async fn json(&self, method: reqwest::Method, path: &str) -> serde_json::Value {
        let (status, _, body) = self.send(method, path, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

async fn admin_lists_and_revokes_sessions(stores: &str) {
    let (server, admin) = run_admin_scenario(stores).await;
    // One shutdown stops both listeners.
    drop(server);
    let mut admin_stopped = false;
    for _ in 0..50 {
        if admin
            .http
            .get(format!("{}/admin/openapi.json", admin.base))
            .send()
            .await
            .is_err()
        {
            admin_stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        admin_stopped,
        "the admin listener outlived the server's shutdown"
    );
}

async fn run_admin_scenario(stores: &str) -> (Server, Admin) {
    capture_logs();
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = Admin {
        base: format!("http://{}", admin_listener.local_addr().unwrap()),
        http: reqwest::Client::new(),
    };
    let base = reserved.base.clone();
    let config = config_with(
        &base,
        &idp.issuer,
        &format!(
            "{stores}\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_sha256 = \"{}\"\n",
            hex_sha256(ADMIN_TOKEN)
        ),
    );
    let server = reserved
        .serve_with_admin(config, Some(admin_listener))
        .await;

    let first = session_of(&server, &idp, "alice", "wonderland", FIREFOX).await;
    let second = session_of(&server, &idp, "alice", "wonderland", HOSTILE_UA).await;
    let bob = session_of(&server, &idp, "bob", "looking-glass", FIREFOX).await;

    // Without the credential, or with a wrong one: 401 with a Bearer challenge, nothing done.
    for token in [None, Some("wrong"), Some(hex_sha256(ADMIN_TOKEN).as_str())] {
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let (status, headers, body) = admin
                .send(method.clone(), "/admin/sessions?sub=alice", token)
                .await;
            assert_eq!(status, 401, "{method} {token:?}: {body}");
            assert!(body.contains("admin_unauthorized"), "{body}");
            assert!(
                headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
    }
    assert_eq!(
        get_with_session(&server.base, "/bff/user", &first).await,
        200
    );
    let (status, _, document) = admin
        .send(reqwest::Method::GET, "/admin/openapi.json", None)
        .await;
    assert_eq!(status, 200);
    assert!(document.contains("\"bearer\""), "{document}");
    // The browser listener does not serve the admin API.
    let on_browser_side = reqwest::Client::new()
        .get(format!("{}/admin/sessions?sub=alice", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(on_browser_side.status(), 404);

    // List alice: two sessions, only the documented fields, no secret of either.
    let (status, _, listing) = admin
        .send(
            reqwest::Method::GET,
            "/admin/sessions?sub=alice",
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 200, "{listing}");
    let parsed: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let sessions = parsed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listing}");
    for session in sessions {
        let mut fields: Vec<&str> = session
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "absoluteExpiresAt",
                "createdAt",
                "handle",
                "idleExpiresAt",
                "issuer",
                "lastSeenAt",
                "provider",
                "subject",
                "userAgent"
            ]
        );
        assert_eq!(session["subject"], "alice");
        assert_eq!(session["issuer"], idp.issuer.as_str());
    }
    for cookie in [&first, &second] {
        assert!(!listing.contains(cookie.as_str()), "a session id is listed");
        assert!(
            !listing.contains(&hex_sha256(cookie)),
            "a session key is listed"
        );
    }
    assert_no_secret(&listing, &[ADMIN_TOKEN]);
    // The user-agent summaries: fixed words and a major version, never the header.
    let mut agents: Vec<&str> = sessions
        .iter()
        .map(|s| s["userAgent"].as_str().unwrap())
        .collect();
    agents.sort_unstable();
    assert_eq!(
        agents,
        ["Chrome 131 on Windows", "Firefox 133 on Linux"],
        "{listing}"
    );
    for raw in ["<img", "onerror", "Mozilla", "Gecko"] {
        assert!(
            !listing.contains(raw),
            "{raw} reached the listing: {listing}"
        );
    }
    let handles: Vec<&str> = sessions
        .iter()
        .map(|s| s["handle"].as_str().unwrap())
        .collect();
    assert!(handles.contains(&handle_of(&first).as_str()), "{listing}");
    assert!(handles.contains(&handle_of(&second).as_str()), "{listing}");

    // Revoke the first by its handle: that cookie is refused, the other still works.
    let revoked = admin
        .json(
            reqwest::Method::DELETE,
            &format!("/admin/sessions/{}?sub=alice", handle_of(&first)),
        )
        .await;
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(
        get_with_session(&server.base, "/bff/user", &first).await,
        401
    );
    assert_eq!(
        get_with_session(&server.base, "/bff/user", &second).await,
        200
    );
    assert_eq!(get_with_session(&server.base, "/bff/user", &bob).await, 200);
    let listed = admin
        .json(reqwest::Method::GET, "/admin/sessions?sub=alice")
        .await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);

    // Revoke all of alice's: the second goes too; bob stays.
    let revoked = admin
        .json(reqwest::Method::DELETE, "/admin/sessions?sub=alice")
        .await;
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(
        get_with_session(&server.base, "/bff/user", &second).await,
        401
    );
    assert_eq!(get_with_session(&server.base, "/bff/user", &bob).await, 200);
    let bobs = admin
        .json(
            reqwest::Method::GET,
            &format!("/admin/sessions?sub=bob&iss={}", idp.issuer),
        )
        .await;
    assert_eq!(bobs["sessions"].as_array().unwrap().len(), 1);

    // A hostile `sub` (a line break and a forged entry) finds nothing and forges no log line.
    let forged = admin
        .json(
            reqwest::Method::GET,
            "/admin/sessions?sub=mallory%0Aforged-admin-line%20action%3Drevoke_all_sessions",
        )
        .await;
    assert_eq!(forged["sessions"].as_array().unwrap().len(), 0);

    // Every action is logged with who (the credential's fingerprint) and what; never a token,
    // the admin token or a session id.
    let logs = logs_text();
    let fingerprint = &hex_sha256(ADMIN_TOKEN)[..8];
    for action in ["list_sessions", "revoke_session", "revoke_all_sessions"] {
        assert!(
            logs.lines().any(|l| l.contains("admin action")
                && l.contains(action)
                && l.contains(fingerprint)),
            "no log line for {action}"
        );
    }
    assert!(!logs.contains(ADMIN_TOKEN), "the admin token was logged");
    assert!(
        !logs.lines().any(|l| l.starts_with("forged-admin-line")),
        "a sub forged a log line"
    );
    assert!(
        logs.contains("mallory\\nforged-admin-line"),
        "the hostile sub is not escaped"
    );
    for cookie in [&first, &second, &bob] {
        // The test's own cookie jar (`cookie_store`, in this process) logs what it stores; that
        // is the browser side, not the server.
        let leaked: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(cookie.as_str()) && !l.contains("cookie_store::"))
            .collect();
        assert!(leaked.is_empty(), "a session id was logged: {leaked:#?}");
    }
    (server, admin)
}

#[tokio::test]
async fn admin_api_on_memory() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    on_store(Store::Memory, |stores| async move {
        admin_lists_and_revokes_sessions(&stores).await
    })
    .await;
}

#[tokio::test]
async fn admin_api_on_postgres() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    on_store(Store::Postgres, |stores| async move {
        admin_lists_and_revokes_sessions(&stores).await
    })
    .await;
}

#[tokio::test]
async fn admin_api_on_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    on_store(Store::Redis, |stores| async move {
        admin_lists_and_revokes_sessions(&stores).await
    })
    .await;
}

#[tokio::test]
async fn admin_api_on_postgres_and_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    on_store(Store::PostgresAndRedis, |stores| async move {
        admin_lists_and_revokes_sessions(&stores).await
    })
    .await;
}
