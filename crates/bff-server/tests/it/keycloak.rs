//! The browser walk of `browser_app` against Keycloak: the realm of the compose demo
//! (`docker/keycloak/realm.json`) imported into the Keycloak image `docker/compose.yaml` runs,
//! with PostgreSQL and Redis, all three started with `testcontainers`.
//!
//! Run by `cargo xtask e2e --idp keycloak` only: the walk is `#[ignore]`d, because it needs a
//! Docker engine and no CI machine of this project has one, and it fails (never skips) when it
//! is run without an engine. What can be checked without one is checked in every run: that
//! the realm the walk imports is the demo's with only the BFF's address changed, and that the
//! configuration the walk gives `bff-server` is the realm's client (id, secret, redirect and
//! logout URLs) and the compose demo's.
//!
//! Addresses: the browser and `bff-server` both reach Keycloak at `http://localhost:<port>` (a
//! host port mapped to the container; `KC_HOSTNAME` makes that the issuer whoever asks), and the
//! app at `http://127.0.0.1:<port>`, another site as in production. Keycloak reaches the BFF for
//! back-channel logout through Docker's host gateway, as `host.docker.internal`, so the BFF
//! listens on every interface in this test.
//!
//! Counting refreshes: Keycloak has no `/test/grants`. The walk's realm records `REFRESH_TOKEN`
//! events (the one thing it adds to the demo realm), and the walk counts those for the BFF's
//! client through the admin REST API; the demo API behind the proxy sees the new token too.
//! Ending the session at the provider: the admin REST API's `POST /users/<id>/logout`, which
//! makes Keycloak send back-channel logout tokens to the BFF before it answers.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use testcontainers_modules::testcontainers::core::{Host, IntoContainerPort};
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{
    ContainerAsync, CopyTargetOptions, GenericImage, ImageExt,
};

use crate::browser::browser_available;
use crate::browser_app::{
    ACCESS_TOKEN_TTL_SECS, LoginForm, REFRESH_MARGIN_SECS, USER, WalkProvider, WalkStores,
    demo_api, demo_route, walk_the_sample_app,
};
use crate::support::*;

/// How a container names the machine it runs on (Docker's `host-gateway` mapping).
const HOST_FROM_CONTAINER: &str = "host.docker.internal";
/// Where Keycloak imports realms from at `start-dev --import-realm` (compose mounts the realm
/// into this folder too).
const IMPORT_DIR: &str = "/opt/keycloak/data/import";
/// The command compose runs Keycloak with.
const KEYCLOAK_COMMAND: [&str; 2] = ["start-dev", "--import-realm"];
/// The provider's name in the BFF's configuration, as in compose (`BFF_PROVIDERS__KEYCLOAK__*`).
const PROVIDER: &str = "keycloak";

fn docker_file(path: &str) -> PathBuf {
    repo_root().join("docker").join(path)
}

/// `docker/keycloak/realm.json`.
fn demo_realm() -> Value {
    let text = std::fs::read_to_string(docker_file("keycloak/realm.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The BFF's client in a realm: its only client.
fn bff_client(realm: &Value) -> &Value {
    let clients = realm["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 1, "the demo realm has one client, the BFF");
    &clients[0]
}

fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"))
}

/// The image and tag of compose's `keycloak` service (`image: <name>:<tag>`), so the walk runs
/// the Keycloak the demo runs.
fn keycloak_image() -> (String, String) {
    let compose = std::fs::read_to_string(docker_file("compose.yaml")).unwrap();
    let image = compose
        .lines()
        .filter_map(|line| line.trim().strip_prefix("image: "))
        .find(|image| image.contains("/keycloak/keycloak:"))
        .expect("compose.yaml runs no keycloak image");
    let (name, tag) = image.trim().rsplit_once(':').unwrap();
    (name.to_owned(), tag.to_owned())
}

/// The value compose gives the `bff-server` service for the variable `name`.
fn compose_bff_env(name: &str) -> String {
    let compose = std::fs::read_to_string(docker_file("compose.yaml")).unwrap();
    compose
        .lines()
        .filter_map(|line| line.trim().strip_prefix(&format!("{name}: ")))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .next()
        .unwrap_or_else(|| panic!("compose.yaml does not set {name}"))
}

/// The demo realm as the walk imports it: the BFF at `bff_base` wherever the demo has its
/// address (the client's `rootUrl`), its back-channel logout URL at `backchannel_base` (the BFF
/// as the container reaches it), and `REFRESH_TOKEN` events recorded, for the count.
fn realm_for_walk(realm: &Value, bff_base: &str, backchannel_base: &str) -> Value {
    let demo_base = text(&bff_client(realm)["rootUrl"], "rootUrl").to_owned();
    let demo_backchannel = format!("{demo_base}/bff/backchannel-logout");
    let moved = realm
        .to_string()
        .replace(
            &demo_backchannel,
            &format!("{backchannel_base}/bff/backchannel-logout"),
        )
        .replace(&demo_base, bff_base);
    let mut walk: Value = serde_json::from_str(&moved).unwrap();
    walk["eventsEnabled"] = json!(true);
    walk["enabledEventTypes"] = json!(["REFRESH_TOKEN"]);
    walk
}

/// `bff-server`'s configuration for the walk: the realm's client at `issuer` under the
/// provider name compose uses, the app at `bff_base`, plus `extra` (routes, store).
fn walk_config_toml(realm: &Value, issuer: &str, bff_base: &str, extra: &str) -> String {
    let client = bff_client(realm);
    format!(
        r#"
default_provider = "{PROVIDER}"
[server]
listen = "127.0.0.1:0"
public_url = "{bff_base}"
static_dir = "{static_dir}"
[dev]
allow_plain_http = true
[session]
fetch_userinfo = true
refresh_margin_secs = {REFRESH_MARGIN_SECS}
[[vault_keys]]
id = "test"
key = "{VAULT_KEY}"
[providers.{PROVIDER}]
issuer = "{issuer}"
client_id = "{client_id}"
client_secret = "{secret}"
{extra}
"#,
        static_dir = repo_root().join("examples/spa").display(),
        client_id = text(&client["clientId"], "clientId"),
        secret = text(&client["secret"], "secret"),
    )
}

/// A free port on the host, for Keycloak's published port (it must be known before the
/// container starts: it is part of the issuer).
fn free_host_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Keycloak in a container with the walk's realm, and an admin REST client for it.
struct Keycloak {
    _container: ContainerAsync<GenericImage>,
    /// `http://localhost:<port>`.
    base: String,
    realm: String,
    issuer: String,
    client_id: String,
    client_secret: String,
    admin_password: String,
    http: reqwest::Client,
}

const KEYCLOAK_FORM: LoginForm = LoginForm {
    username: "#username",
    password: "#password",
    submit: "#kc-login",
    // The demo client has consentRequired false.
    consent: None,
};

impl Keycloak {
    async fn start(realm: &Value) -> Keycloak {
        let (image, tag) = keycloak_image();
        let port = free_host_port();
        let base = format!("http://localhost:{port}");
        let admin_password = bff_test_services::unique("admin");
        let import =
            CopyTargetOptions::new(format!("{IMPORT_DIR}/bff-demo-realm.json")).with_mode(0o644);
        let container = GenericImage::new(image, tag)
            .with_cmd(KEYCLOAK_COMMAND)
            .with_env_var("KC_HOSTNAME", &base)
            .with_env_var("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
            .with_env_var("KC_BOOTSTRAP_ADMIN_PASSWORD", &admin_password)
            .with_mapped_port(port, 8080.tcp())
            .with_host(HOST_FROM_CONTAINER, Host::HostGateway)
            .with_copy_to(import, realm.to_string().into_bytes())
            .start()
            .await
            .expect("start the Keycloak container");
        let realm_name = text(&realm["realm"], "realm").to_owned();
        let client = bff_client(realm);
        let keycloak = Keycloak {
            _container: container,
            issuer: format!("{base}/realms/{realm_name}"),
            base,
            realm: realm_name,
            client_id: text(&client["clientId"], "clientId").to_owned(),
            client_secret: text(&client["secret"], "secret").to_owned(),
            admin_password,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        };
        keycloak.wait_until_ready().await;
        keycloak
    }

    /// Keycloak imports the realm before it listens: the realm's discovery answering means
    /// both are done. Keycloak takes its time on a small machine.
    async fn wait_until_ready(&self) {
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        for _ in 0..300 {
            if let Ok(resp) = self.http.get(&discovery).send().await
                && resp.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("Keycloak did not serve {discovery} within 300 s");
    }

    /// An access token of the bootstrap admin (master realm, `admin-cli`).
    async fn admin_token(&self) -> String {
        let answer: Value = self
            .http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "admin"),
                ("password", &self.admin_password),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        text(&answer["access_token"], "the admin token").to_owned()
    }

    /// `method` on `{base}/admin/realms/<realm>{path}` as the admin; the answer's status and JSON
    /// body (`null` when empty).
    async fn admin(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .request(
                method,
                format!("{}/admin/realms/{}{path}", self.base, self.realm),
            )
            .bearer_auth(self.admin_token().await)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

impl WalkProvider for Keycloak {
    fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Not checked yet against Keycloak: whether its SSO cookies reach it inside an iframe over
    /// plain HTTP has not been seen on a machine with a container engine. The walk still checks
    /// that a silent login without a provider session answers `false`.
    fn signs_in_silently_in_a_frame(&self) -> bool {
        false
    }

    fn client_secret(&self) -> &str {
        &self.client_secret
    }

    fn login_form(&self) -> &LoginForm {
        &KEYCLOAK_FORM
    }

    fn screenshot_prefix(&self) -> &str {
        "keycloak-"
    }

    fn origin_with_own_jwts(&self) -> Option<&str> {
        Some(&self.base)
    }

    /// The realm's `REFRESH_TOKEN` events for the BFF's client (the walk's realm records them).
    async fn refresh_grants(&self) -> u64 {
        let (status, events) = self
            .admin(
                reqwest::Method::GET,
                &format!(
                    "/events?type=REFRESH_TOKEN&client={}&max=1000",
                    self.client_id
                ),
            )
            .await;
        assert_eq!(status, 200, "Keycloak's events: {events}");
        events.as_array().map_or(0, |e| e.len() as u64)
    }

    /// Given the ID token hint the BFF sends, Keycloak goes straight back to the app; should
    /// it ask to confirm, the walk confirms.
    async fn through_logout(&self, c: &Client) {
        if let Ok(confirm) = c
            .wait()
            .at_most(Duration::from_secs(3))
            .for_element(Locator::Id("kc-logout"))
            .await
        {
            confirm.click().await.unwrap();
        }
    }

    /// The admin logs the user out of every session (admin REST API), as an administrator
    /// would; Keycloak posts the back-channel logout tokens before it answers.
    async fn end_session_at_provider(&self, _c: &Client) {
        let (status, users) = self
            .admin(
                reqwest::Method::GET,
                &format!("/users?username={}&exact=true", USER.0),
            )
            .await;
        assert_eq!(status, 200, "Keycloak's users: {users}");
        let id = text(&users[0]["id"], "the user's id").to_owned();
        let (status, body) = self
            .admin(reqwest::Method::POST, &format!("/users/{id}/logout"))
            .await;
        assert_eq!(status, 204, "Keycloak's logout of {}: {body}", USER.0);
    }
}

#[tokio::test]
#[ignore = "needs a Docker engine: cargo xtask e2e --idp keycloak"]
async fn chromium_walks_the_sample_app_at_keycloak() {
    // Asked for explicitly (it is ignored otherwise): a missing engine fails, never skips.
    assert!(
        bff_test_services::docker_available(),
        "the Keycloak walk needs a Docker engine (DOCKER_HOST or /var/run/docker.sock); \
         `cargo xtask e2e --idp local` runs the walk without one"
    );
    if let Err(why) = browser_available() {
        panic!("the Keycloak walk needs headless Chromium: {why}");
    }
    // With an engine and no BFF_TEST_*_URL, these are containers (xtask clears the variables).
    let Some(stores) = WalkStores::find().await else {
        panic!("the Keycloak walk needs PostgreSQL and Redis");
    };
    let api = demo_api().await;
    let reserved = reserve_on_every_interface().await;
    let port = reserved.base.rsplit(':').next().unwrap().to_owned();
    let realm = realm_for_walk(
        &demo_realm(),
        &reserved.base,
        &format!("http://{HOST_FROM_CONTAINER}:{port}"),
    );
    let keycloak = Keycloak::start(&realm).await;
    let extra = format!("{}{}", demo_route(&api), stores.toml());
    let toml = walk_config_toml(&realm, &keycloak.issuer, &reserved.base, &extra);
    let config = bff_server::Config::from_toml_str(&toml, Vec::new()).unwrap();
    let server = reserved.serve(config).await;
    walk_the_sample_app(&keycloak, &server.base, &api, &stores).await;
    drop(server);
    stores.drop_schema().await;
}

// What can be checked without a Docker engine, in every run.

#[test]
fn the_walk_imports_the_demo_realm_with_only_the_bffs_address_changed() {
    let realm = demo_realm();
    let demo_base = text(&bff_client(&realm)["rootUrl"], "rootUrl").to_owned();
    assert_eq!(
        demo_base,
        compose_bff_env("BFF_SERVER__PUBLIC_URL"),
        "the realm's client and compose's bff-server disagree on the app's address"
    );
    let bff_base = "http://127.0.0.1:41234";
    let backchannel_base = format!("http://{HOST_FROM_CONTAINER}:41234");
    let walk = realm_for_walk(&realm, bff_base, &backchannel_base);
    let client = bff_client(&walk);
    assert_eq!(
        client["redirectUris"],
        json!([format!("{bff_base}/bff/callback"), format!("{bff_base}/")])
    );
    let attributes = &client["attributes"];
    assert_eq!(
        attributes["post.logout.redirect.uris"],
        format!("{bff_base}/bff/logout/callback##{bff_base}/")
    );
    assert_eq!(
        attributes["backchannel.logout.url"],
        format!("{backchannel_base}/bff/backchannel-logout")
    );
    assert_eq!(attributes["backchannel.logout.session.required"], "true");
    assert_eq!(client["frontchannelLogout"], false);
    assert!(
        !walk.to_string().contains(&demo_base),
        "the demo's address is left somewhere in the walk's realm"
    );
    // Nothing else moved: the same rewrite to the demo's own address gives back the demo realm,
    // plus the events the walk counts.
    let mut same = realm_for_walk(&realm, &demo_base, &demo_base);
    assert_eq!(same["enabledEventTypes"], json!(["REFRESH_TOKEN"]));
    let object = same.as_object_mut().unwrap();
    object.remove("eventsEnabled");
    object.remove("enabledEventTypes");
    assert_eq!(same, realm);
    // The walk waits for the realm's access tokens to go stale.
    assert_eq!(realm["accessTokenLifespan"], ACCESS_TOKEN_TTL_SECS);
}

#[test]
fn the_walk_configures_bff_server_with_the_realms_client_as_compose_does() {
    let bff_base = "http://127.0.0.1:41234";
    let realm = realm_for_walk(&demo_realm(), bff_base, "http://host.docker.internal:41234");
    let client = bff_client(&realm);
    let issuer = format!(
        "http://localhost:41235/realms/{}",
        text(&realm["realm"], "realm")
    );
    let toml = walk_config_toml(&realm, &issuer, bff_base, "");
    let config = bff_server::Config::from_toml_str(&toml, Vec::new()).unwrap();

    assert_eq!(config.default_provider.as_str(), PROVIDER);
    assert_eq!(compose_bff_env("BFF_DEFAULT_PROVIDER"), PROVIDER);
    let (id, provider) = config.providers.iter().next().unwrap();
    assert_eq!(id.as_str(), PROVIDER);
    assert_eq!(provider.issuer.as_str(), issuer);
    // The realm's client, the one compose configures bff-server with, with the secret compose
    // hands it as a file.
    assert_eq!(provider.client_id, text(&client["clientId"], "clientId"));
    assert_eq!(
        provider.client_id,
        compose_bff_env("BFF_PROVIDERS__KEYCLOAK__CLIENT_ID")
    );
    assert_eq!(
        provider.client_secret.as_ref().unwrap().expose(),
        text(&client["secret"], "secret")
    );
    let secret_file = std::fs::read_to_string(docker_file("secrets/bff_client_secret")).unwrap();
    assert_eq!(
        provider.client_secret.as_ref().unwrap().expose(),
        secret_file.trim()
    );
    // The URLs the BFF sends the browser to Keycloak with are the ones the realm allows.
    let allowed = client["redirectUris"].as_array().unwrap();
    assert!(allowed.contains(&json!(format!("{bff_base}/bff/callback"))));
    let post_logout = text(
        &client["attributes"]["post.logout.redirect.uris"],
        "post-logout URIs",
    );
    assert!(
        post_logout
            .split("##")
            .any(|uri| uri == format!("{bff_base}/bff/logout/callback")),
        "{post_logout}"
    );
    assert_eq!(config.session.refresh_margin_secs, REFRESH_MARGIN_SECS);
}

#[test]
fn the_walk_runs_the_keycloak_compose_runs_the_way_compose_runs_it() {
    let (image, tag) = keycloak_image();
    assert_eq!(image, "quay.io/keycloak/keycloak");
    assert!(
        !tag.is_empty() && tag != "latest",
        "compose's Keycloak is not pinned: {tag}"
    );
    let compose = std::fs::read_to_string(docker_file("compose.yaml")).unwrap();
    assert!(
        compose.contains(&format!(
            "command: [\"{}\", \"{}\"]",
            KEYCLOAK_COMMAND[0], KEYCLOAK_COMMAND[1]
        )),
        "compose runs Keycloak with another command than the walk"
    );
    assert!(
        compose.contains(&format!("./keycloak/realm.json:{IMPORT_DIR}/")),
        "compose imports the realm from another folder than the walk"
    );
}
