//! Configuration tests: defaults, environment overrides, and every problem reported at once
//! with its key and variable.

use std::time::Duration;

use bff_oidc::{Algorithm, ClientAuthMethod};

use super::*;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_KEY: &str = "HxwdHhscGRoXGBUWExQREg8QDQ4LDAkKBwgFBgMEAQI=";

fn valid() -> String {
    format!(
        r#"
default_provider = "main"
[server]
public_url = "https://app.example"
[[vault_keys]]
id = "k1"
key = "{KEY}"
[providers.main]
issuer = "https://idp.example"
client_id = "bff"
client_secret = "s3cret"
"#
    )
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn problems(text: &str, env: Vec<(String, String)>) -> String {
    match Config::from_toml_str(text, env) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

/// The problem lines, without the `  - ` bullets.
fn lines(text: &str, env: Vec<(String, String)>) -> Vec<String> {
    match Config::from_toml_str(text, env) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid(lines)) => lines,
        Err(other) => vec![other.to_string()],
    }
}

fn main_id() -> ProviderId {
    ProviderId::parse("main").unwrap()
}

#[test]
fn cors_is_on_only_when_an_app_origin_is_not_the_bffs_own() {
    let with_origins = |origins: &str| {
        let text = valid().replace(
            "[[vault_keys]]",
            &format!("[http]\napp_origins = {origins}\n[[vault_keys]]"),
        );
        Config::from_toml_str(&text, no_env())
            .unwrap()
            .http_settings()
            .cors
    };
    // Spelled differently, still the BFF's own origin.
    assert!(!with_origins(
        r#"["https://app.example", "HTTPS://App.Example:443/"]"#
    ));
    assert!(with_origins(
        r#"["https://app.example", "https://spa.app.example"]"#
    ));
    assert!(with_origins(r#"["https://app.example:8443"]"#));
}

#[test]
fn a_minimal_config_is_valid_with_secure_defaults() {
    let config = Config::from_toml_str(&valid(), no_env()).unwrap();
    let http = config.http_settings();
    assert_eq!(http.session_cookie, "__Host-Http-bff");
    assert!(http.secure_cookies);
    assert_eq!(http.app_origins, vec!["https://app.example".to_owned()]);
    assert!(!http.cors, "the BFF's own origin needs no CORS");
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.public_base(), "https://app.example");
    let main = &config.providers[&main_id()];
    assert_eq!(main.client_auth, ClientAuthMethod::ClientSecretBasic);
    assert_eq!(main.scopes, ["openid", "profile", "email"]);
    assert_eq!(
        main.id_token_algorithms, None,
        "absent: follow the provider's discovery"
    );
    assert_eq!(main.http_timeout, Duration::from_secs(10));
    assert_eq!(config.default_provider, main_id());
    assert_eq!(config.vault_keys.ids().collect::<Vec<_>>(), ["k1"]);
}

#[test]
fn values_arrive_in_their_final_types() {
    let text = valid().replace(
        "[providers.main]",
        "[providers.other]\nissuer = \"https://other.example\"\nclient_id = \"o\"\nclient_secret = \"o\"\n[providers.main]",
    ) + "client_auth = \"client_secret_post\"\nid_token_algorithms = [\"ES256\", \"EdDSA\"]\nclock_skew_secs = 5\n";
    let config =
        Config::from_toml_str(&text, env(&[("BFF_SERVER__LISTEN", "[::1]:9000")])).unwrap();
    let main = &config.providers[&main_id()];
    assert_eq!(main.client_auth, ClientAuthMethod::ClientSecretPost);
    assert_eq!(
        main.id_token_algorithms,
        Some(vec![Algorithm::ES256, Algorithm::EdDSA])
    );
    assert_eq!(main.clock_skew, Duration::from_secs(5));
    assert_eq!(main.issuer.as_str(), "https://idp.example");
    assert_eq!(config.providers.len(), 2);
    assert_eq!(config.server.listen.to_string(), "[::1]:9000");
}

#[test]
fn env_overrides_nested_values_and_types() {
    let env = env(&[
        ("BFF_PROVIDERS__MAIN__CLIENT_SECRET", "from-env"),
        ("BFF_SESSION__IDLE_TIMEOUT_SECS", "90"),
        ("BFF_SESSION__FETCH_USERINFO", "true"),
        ("BFF_PROVIDERS__MAIN__SCOPES", "[\"openid\", \"email\"]"),
        ("OTHER_VAR", "ignored"),
        ("BFF_TEST_POSTGRES_URL", "postgres://test"),
    ]);
    let config = Config::from_toml_str(&valid(), env).unwrap();
    let main = &config.providers[&main_id()];
    assert_eq!(main.client_secret.as_ref().unwrap().expose(), "from-env");
    assert_eq!(main.scopes, ["openid", "email"]);
    assert_eq!(config.session.idle_timeout_secs, 90);
    assert!(config.session.fetch_userinfo);
}

#[test]
fn env_values_for_string_fields_stay_strings_whatever_they_look_like() {
    let env = env(&[
        ("BFF_PROVIDERS__MAIN__CLIENT_SECRET", "123456"),
        ("BFF_PROVIDERS__MAIN__CLIENT_ID", "true"),
    ]);
    let config = Config::from_toml_str(&valid(), env).unwrap();
    let main = &config.providers[&main_id()];
    assert_eq!(main.client_secret.as_ref().unwrap().expose(), "123456");
    assert_eq!(main.client_id, "true");
    // [store.redis] without a url is incomplete, but the prefix itself was read as a string.
    let message = problems(
        &valid(),
        self::env(&[("BFF_STORE__REDIS__KEY_PREFIX", "1.5")]),
    );
    assert!(
        message.contains("store.redis.url (BFF_STORE__REDIS__URL): is required"),
        "{message}"
    );
    assert!(!message.contains("key_prefix"), "{message}");
}

#[test]
fn lists_and_tables_can_come_from_the_environment() {
    let text = valid().replace(
        &format!("[[vault_keys]]\nid = \"k1\"\nkey = \"{KEY}\"\n"),
        "",
    );
    let keys =
        format!("[{{ id = \"k2\", key = \"{OTHER_KEY}\" }}, {{ id = \"k1\", key = \"{KEY}\" }}]");
    let config = Config::from_toml_str(&text, env(&[("BFF_VAULT_KEYS", &keys)])).unwrap();
    assert_eq!(config.vault_keys.ids().collect::<Vec<_>>(), ["k2", "k1"]);
    let message = problems(
        &text,
        env(&[("BFF_VAULT_KEYS", "[{ id = \"k\", key = \"c2hvcnQ=\" }]")]),
    );
    assert!(
        message.contains("vault_keys[0].key (BFF_VAULT_KEYS): is 5 bytes"),
        "{message}"
    );
}

#[test]
fn bad_environment_values_name_their_variable() {
    let message = problems(
        &valid(),
        env(&[
            ("BFF_SESSION__IDLE_TIMEOUT_SECS", "soon"),
            ("BFF_PROVIDERS__MAIN__CLIENT_AUTH", "x"),
        ]),
    );
    assert!(
        message.contains(
            "session.idle_timeout_secs (BFF_SESSION__IDLE_TIMEOUT_SECS): invalid type: string \"soon\", expected u64"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "providers.main.client_auth (BFF_PROVIDERS__MAIN__CLIENT_AUTH): must be client_secret_basic, client_secret_post or private_key_jwt, got \"x\""
        ),
        "{message}"
    );
}

#[test]
fn a_credential_that_does_not_fit_client_auth_is_named_with_its_variable() {
    let key_file =
        bff_test_services::client_key::ClientKey::generate().write_private_pem("bff-config-key");
    // `private_key_jwt` with the secret still set and no key file.
    let got = lines(
        &valid(),
        env(&[("BFF_PROVIDERS__MAIN__CLIENT_AUTH", "private_key_jwt")]),
    );
    assert_eq!(
        got,
        [
            "providers.main.private_key_file (BFF_PROVIDERS__MAIN__PRIVATE_KEY_FILE): is required with client_auth = \"private_key_jwt\"",
            "providers.main.client_secret (BFF_PROVIDERS__MAIN__CLIENT_SECRET): is not used with client_auth = \"private_key_jwt\": leave it out",
        ]
    );
    assert!(!got.concat().contains("s3cret"));
    // A key file with a secret method.
    let path = key_file.display().to_string();
    let got = lines(
        &valid(),
        env(&[("BFF_PROVIDERS__MAIN__PRIVATE_KEY_FILE", path.as_str())]),
    );
    assert_eq!(
        got,
        [
            "providers.main.private_key_file (BFF_PROVIDERS__MAIN__PRIVATE_KEY_FILE): is used only with client_auth = \"private_key_jwt\", not with \"client_secret_basic\""
        ]
    );
    // No secret and no other way.
    let got = lines(
        &valid().replace("client_secret = \"s3cret\"\n", ""),
        no_env(),
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("providers.main.client_secret (BFF_PROVIDERS__MAIN__CLIENT_SECRET): is required with client_auth = \"client_secret_basic\""),
        "{got:?}"
    );
    // The whole `private_key_jwt` setting from the environment is valid.
    let text = valid().replace("client_secret = \"s3cret\"\n", "");
    let config = Config::from_toml_str(
        &text,
        env(&[
            ("BFF_PROVIDERS__MAIN__CLIENT_AUTH", "private_key_jwt"),
            ("BFF_PROVIDERS__MAIN__PRIVATE_KEY_FILE", path.as_str()),
            ("BFF_PROVIDERS__MAIN__PRIVATE_KEY_ID", "k1"),
        ]),
    )
    .unwrap();
    let main = &config.providers[&main_id()];
    assert_eq!(main.client_auth, ClientAuthMethod::PrivateKeyJwt);
    assert_eq!(main.private_key_id.as_deref(), Some("k1"));
    // Another key's certificate and an algorithm the key cannot sign with are named.
    let stranger_certificate = bff_test_services::client_key::ClientKey::generate()
        .write_certificate_pem("bff-config-stranger-cert");
    let stranger = stranger_certificate.display().to_string();
    let got = lines(
        &text,
        env(&[
            ("BFF_PROVIDERS__MAIN__CLIENT_AUTH", "private_key_jwt"),
            ("BFF_PROVIDERS__MAIN__PRIVATE_KEY_FILE", path.as_str()),
            (
                "BFF_PROVIDERS__MAIN__CLIENT_CERTIFICATE_FILE",
                stranger.as_str(),
            ),
        ]),
    );
    assert_eq!(
        got,
        [
            "providers.main.client_certificate_file (BFF_PROVIDERS__MAIN__CLIENT_CERTIFICATE_FILE): is not the certificate of this EcP256 private key (its public key is another): see private_key_file"
        ]
    );
    let got = lines(
        &text,
        env(&[
            ("BFF_PROVIDERS__MAIN__CLIENT_AUTH", "private_key_jwt"),
            ("BFF_PROVIDERS__MAIN__PRIVATE_KEY_FILE", path.as_str()),
            ("BFF_PROVIDERS__MAIN__CLIENT_ASSERTION_ALGORITHM", "PS256"),
        ]),
    );
    assert_eq!(
        got,
        [
            "providers.main.client_assertion_algorithm (BFF_PROVIDERS__MAIN__CLIENT_ASSERTION_ALGORITHM): PS256 is not an algorithm of the EcP256 key, which signs with ES256"
        ]
    );
    std::fs::remove_file(&stranger_certificate).unwrap();
    std::fs::remove_file(&key_file).unwrap();
}

#[test]
fn unknown_keys_and_variables_are_errors() {
    let text = format!("{}\n[session]\nidle_timeout = 5\n", valid());
    assert!(problems(&text, no_env()).contains(
        "session.idle_timeout (BFF_SESSION__IDLE_TIMEOUT): unknown key (expected one of: idle_timeout_secs,"
    ));
    let env = env(&[("BFF_SESION__IDLE_TIMEOUT_SECS", "5")]);
    assert!(problems(&valid(), env.clone()).contains("sesion"));
    let message = problems(&valid(), env);
    assert!(
        message.contains(
            "sesion.idle_timeout_secs (BFF_SESION__IDLE_TIMEOUT_SECS): unknown variable: there is no key sesion"
        ),
        "{message}"
    );
    let message = problems(&valid(), self::env(&[("BFF_PROVIDERS__MAIN__SECRET", "x")]));
    assert!(
        message.contains("(BFF_PROVIDERS__MAIN__SECRET): unknown variable"),
        "{message}"
    );
    let message = problems(&(valid() + "listen_adress = 1\n"), no_env());
    assert!(
        message.contains(
            "providers.main.listen_adress (BFF_PROVIDERS__MAIN__LISTEN_ADRESS): unknown key"
        ),
        "{message}"
    );
    let message = problems(&format!("listen_adress = 1\n{}", valid()), no_env());
    assert!(
        message
            .contains("listen_adress (BFF_LISTEN_ADRESS): unknown key (expected one of: server,"),
        "{message}"
    );
}

#[test]
fn toml_syntax_errors_carry_line_and_column() {
    let text = "default_provider = \"main\"\n[server]\npublic_url = https://app.example\n";
    let error = Config::from_toml_str(text, no_env()).unwrap_err();
    match &error {
        ConfigError::Syntax { line, column, .. } => {
            assert_eq!((*line, *column), (3, 14), "{error}");
        }
        other => panic!("not a syntax error: {other}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("TOML syntax error at line 3, column 14: "),
        "{error}"
    );
    assert_eq!(error.to_string().lines().count(), 1, "{error}");
}

#[test]
fn each_problem_gets_its_own_line() {
    let text = valid()
        .replace(KEY, "c2hvcnQ=")
        .replace("https://app.example", "http://app.example")
        .replace("default_provider = \"main\"", "default_provider = \"nope\"");
    let message = problems(&text, no_env());
    assert!(
        message.contains("vault_keys[0].key (BFF_VAULT_KEYS): is 5 bytes"),
        "{message}"
    );
    assert!(
        message.contains("server.public_url (BFF_SERVER__PUBLIC_URL): is http://"),
        "{message}"
    );
    assert!(
        message.contains(
            "default_provider (BFF_DEFAULT_PROVIDER): \"nope\" is not one of the configured providers (main)"
        ),
        "{message}"
    );
    assert!(message.lines().count() >= 4, "{message}");
}

#[test]
fn every_wrong_field_of_every_section_is_reported_at_once() {
    let text = format!(
        r#"
default_provider = "main"
[server]
public_url = "https://app.example/app"
listen = "everywhere"
[session]
idle_timeout_secs = 0
login_timeout_secs = -5
[store]
kind = "postgres"
[store.postgres]
url = "mysql://u:hunter2@db/bff"
max_connections = 0
[[vault_keys]]
id = "bad id"
key = "{KEY}"
[[vault_keys]]
id = "k2"
key = "!!"
[providers.main]
issuer = "idp.example"
client_id = ""
client_secret = "s3cret"
client_auth = "x"
id_token_algorithms = ["HS256", "none", "RS256"]
http_timeout_secs = 0
[providers.Other]
client_id = "o"
client_secret = "o"
"#
    );
    let lines = lines(&text, no_env());
    let expected = [
        "server.listen (BFF_SERVER__LISTEN): must be an address like 127.0.0.1:8080 or [::]:8080, got \"everywhere\"",
        "server.public_url (BFF_SERVER__PUBLIC_URL): \"https://app.example/app\" must be an origin like https://app.example, without a path",
        "session.idle_timeout_secs (BFF_SESSION__IDLE_TIMEOUT_SECS): must be greater than zero",
        "session.login_timeout_secs (BFF_SESSION__LOGIN_TIMEOUT_SECS): invalid value: integer `-5`, expected u64",
        "store.postgres.max_connections (BFF_STORE__POSTGRES__MAX_CONNECTIONS): must be greater than zero",
        "store.postgres.url (BFF_STORE__POSTGRES__URL): must be postgres://… or postgresql://… (got mysql://u:[redacted]@db/bff)",
        "vault_keys[0].id (BFF_VAULT_KEYS): key id \"bad id\" must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.'",
        "vault_keys[1].key (BFF_VAULT_KEYS): is not valid base64",
        "providers.Other (BFF_PROVIDERS__OTHER): provider names are 1 to 64 characters of a-z, 0-9, '-' and '_'",
        "providers.Other.issuer (BFF_PROVIDERS__OTHER__ISSUER): is required",
        "providers.main.client_auth (BFF_PROVIDERS__MAIN__CLIENT_AUTH): must be client_secret_basic, client_secret_post or private_key_jwt, got \"x\"",
        "providers.main.client_id (BFF_PROVIDERS__MAIN__CLIENT_ID): must not be empty",
        "providers.main.http_timeout_secs (BFF_PROVIDERS__MAIN__HTTP_TIMEOUT_SECS): must be greater than zero",
        "providers.main.id_token_algorithms (BFF_PROVIDERS__MAIN__ID_TOKEN_ALGORITHMS): \"HS256\", \"none\" not allowed (use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA; never none or HS*)",
        "providers.main.issuer (BFF_PROVIDERS__MAIN__ISSUER): \"idp.example\" is not an absolute URL (relative URL without a base)",
    ];
    for line in expected {
        assert!(
            lines.contains(&line.to_owned()),
            "missing: {line}\n{lines:#?}"
        );
    }
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("hunter2") || l.contains("s3cret"))
    );
}

#[test]
fn missing_sections_are_named() {
    let lines = lines("", no_env());
    assert_eq!(
        lines,
        [
            "server.public_url (BFF_SERVER__PUBLIC_URL): is required",
            "vault_keys (BFF_VAULT_KEYS): at least one [[vault_keys]] entry (id, key) is required",
            "providers (BFF_PROVIDERS): at least one [providers.<name>] section is required",
            "default_provider (BFF_DEFAULT_PROVIDER): is required: the provider used when a login names none",
        ]
    );
    let message = problems(
        &format!(
            "{}[[vault_keys]]\nid = \"k1\"\nkey = \"{OTHER_KEY}\"\n",
            valid()
        ),
        no_env(),
    );
    assert!(
        message.contains("vault_keys (BFF_VAULT_KEYS): key id \"k1\" is used twice"),
        "{message}"
    );
}

#[test]
fn a_secret_written_as_a_number_is_refused_without_being_shown() {
    let text = valid().replace("client_secret = \"s3cret\"", "client_secret = 918273645");
    let message = problems(&text, no_env());
    assert!(
        message.contains(
            "providers.main.client_secret (BFF_PROVIDERS__MAIN__CLIENT_SECRET): must be a string"
        ),
        "{message}"
    );
    assert!(!message.contains("918273645"), "{message}");
}

#[test]
fn dev_mode_allows_http_and_drops_the_host_prefix() {
    let text = valid().replace("https://app.example", "http://127.0.0.1:8080")
        + "\n[dev]\nallow_plain_http = true\n";
    let config = Config::from_toml_str(&text, no_env()).unwrap();
    let http = config.http_settings();
    assert!(!http.secure_cookies);
    assert_eq!(http.session_cookie, "bff");
}

#[test]
fn plain_http_provider_urls_need_dev_mode() {
    let text = valid().replace("https://idp.example", "http://idp.example")
        + "post_logout_redirect_uri = \"http://app.example/bye\"\n";
    let lines = lines(&text, no_env());
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with("providers.main.issuer (BFF_PROVIDERS__MAIN__ISSUER): is http://")
    );
    assert!(lines[1].starts_with(
        "providers.main.post_logout_redirect_uri (BFF_PROVIDERS__MAIN__POST_LOGOUT_REDIRECT_URI): is http://"
    ));
}

#[test]
fn host_prefixed_names_are_refused_in_dev_mode() {
    let text = valid().replace("https://app.example", "http://127.0.0.1:8080")
        + "\n[dev]\nallow_plain_http = true\n[http]\nsession_cookie = \"__Host-mine\"\n";
    let message = problems(&text, no_env());
    assert!(message.contains("__Host-mine"), "{message}");
    assert!(
        message.contains("http.session_cookie (BFF_HTTP__SESSION_COOKIE): "),
        "{message}"
    );
}

#[test]
fn hmac_and_none_algorithms_are_refused() {
    let text = valid() + "id_token_algorithms = [\"HS256\", \"none\", \"RS256\"]\n";
    let message = problems(&text, no_env());
    assert!(message.contains("\"HS256\""), "{message}");
    assert!(message.contains("\"none\" not allowed"), "{message}");
    assert!(!message.contains("\"RS256\""), "{message}");
}

#[test]
fn store_kinds_need_their_sections() {
    let text = valid() + "[store]\nkind = \"postgres+redis\"\n";
    let message = problems(&text, no_env());
    assert!(
        message.contains("needs a [store.postgres] section"),
        "{message}"
    );
    assert!(
        message.contains("needs a [store.redis] section"),
        "{message}"
    );
    let text = valid()
        + "[store]\nkind = \"postgres+redis\"\n[store.postgres]\nurl = \"postgres://u:pw@db/bff\"\n[store.redis]\nurl = \"redis://cache:6379\"\n";
    let config = Config::from_toml_str(&text, no_env()).unwrap();
    assert_eq!(config.store.kind, StoreKind::PostgresRedis);
    assert!(!format!("{config:?}").contains(":pw@"));
    assert!(problems(&(valid() + "[store]\nkind = \"mongo\"\n"), no_env()).contains("mongo"));
}

#[test]
fn debug_redacts_secrets() {
    let config = Config::from_toml_str(&valid(), no_env()).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cret"));
    assert!(!shown.contains(KEY));
}

#[test]
fn routes_are_read_into_the_proxy_allowlist() {
    let text = valid()
        + r#"
[[routes]]
path = "/api/orders"
upstream = "https://orders.internal/v1"
token = "user"
methods = ["GET", "POST"]
required_scopes = ["orders.read"]

[[routes]]
path = "/api/public"
upstream = "https://public.internal"
token = "none"
"#;
    let config = Config::from_toml_str(&text, no_env()).unwrap();
    let prefixes: Vec<&str> = config.routes.routes().iter().map(|r| r.prefix()).collect();
    assert_eq!(prefixes.len(), 2, "{prefixes:?}");
    assert!(prefixes.contains(&"/api/orders") && prefixes.contains(&"/api/public"));
    // No routes configured: an empty allowlist, nothing proxied.
    let config = Config::from_toml_str(&valid(), no_env()).unwrap();
    assert!(config.routes.routes().is_empty());
}

#[test]
fn every_bad_route_is_one_line_naming_it() {
    let text = valid()
        + r#"
[[routes]]
path = "/api/a"
upstream = "https://a.internal"
token = "user"
provider = "nope"

[[routes]]
path = "/bff/sneaky"
upstream = "https://b.internal"
token = "none"

[[routes]]
path = "/api/c"
upstream = "https://c.internal"
token = "user"
colour = "blue"
"#;
    let message = problems(&text, no_env());
    assert!(message.contains("routes"), "{message}");
    assert!(message.contains("colour"), "{message}");
    // The two routes that parse are both checked, each named.
    let text = valid()
        + r#"
[[routes]]
path = "/api/a"
upstream = "https://a.internal"
token = "user"
provider = "nope"

[[routes]]
path = "/bff/sneaky"
upstream = "https://b.internal"
token = "none"
"#;
    let message = problems(&text, no_env());
    assert!(
        message.contains("/api/a") && message.contains("nope"),
        "{message}"
    );
    assert!(message.contains("/bff/sneaky"), "{message}");
    assert!(message.lines().count() >= 3, "{message}");
}

#[test]
fn trusted_proxies_are_read_into_networks_and_their_header_family() {
    use bff_http::{ForwardingHeaders, IpNetwork, TrustedProxies};

    let config = Config::from_toml_str(&valid(), no_env()).unwrap();
    assert_eq!(
        config.trusted_proxies(),
        TrustedProxies::default(),
        "nobody is trusted unless configured"
    );

    let text = valid().replace(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\", \"fd00::/8\"]\ntrusted_proxy_headers = \"forwarded\"\n",
    );
    let config = Config::from_toml_str(&text, no_env()).unwrap();
    let networks = ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]
        .map(|n| IpNetwork::parse(n).unwrap())
        .to_vec();
    assert_eq!(
        config.trusted_proxies(),
        TrustedProxies::new(networks, ForwardingHeaders::Forwarded)
    );

    let config = Config::from_toml_str(
        &valid(),
        env(&[("BFF_SERVER__TRUSTED_PROXIES", "[\"192.168.0.0/16\"]")]),
    )
    .unwrap();
    assert_eq!(
        config.trusted_proxies(),
        TrustedProxies::new(
            vec![IpNetwork::parse("192.168.0.0/16").unwrap()],
            ForwardingHeaders::XForwarded
        )
    );
}

#[test]
fn bad_trusted_proxies_are_one_line_each_with_key_and_variable() {
    let text = valid().replace(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.1/8\"]\ntrusted_proxy_headers = \"xff\"\n",
    );
    let found = lines(&text, no_env());
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("server.trusted_proxies[1] (BFF_SERVER__TRUSTED_PROXIES): \"10.0.0.1/8\" has bits set after the prefix"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("server.trusted_proxy_headers (BFF_SERVER__TRUSTED_PROXY_HEADERS): unknown variant `xff`, expected `x-forwarded` or `forwarded`"),
        "{found:#?}"
    );
    for (bad, why) in [
        ("0.0.0.0/0", "a /0 network would trust every address"),
        ("::/0", "a /0 network would trust every address"),
        ("proxy.internal", "is not an IP address or network"),
    ] {
        let found = lines(
            &valid(),
            env(&[("BFF_SERVER__TRUSTED_PROXIES", &format!("[\"{bad}\"]"))]),
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("server.trusted_proxies[0] (BFF_SERVER__TRUSTED_PROXIES): ")
                && found[0].contains(why),
            "{bad}: {found:#?}"
        );
    }
}

#[test]
fn shutdown_timings_default_and_are_checked() {
    let config = Config::from_toml_str(&valid(), no_env()).unwrap();
    assert_eq!(config.server.shutdown_timeout_secs, 30);
    assert_eq!(config.server.shutdown_delay_secs, 0);
    let config = Config::from_toml_str(
        &valid(),
        env(&[
            ("BFF_SERVER__SHUTDOWN_TIMEOUT_SECS", "5"),
            ("BFF_SERVER__SHUTDOWN_DELAY_SECS", "2"),
        ]),
    )
    .unwrap();
    assert_eq!(config.server.shutdown_timeout_secs, 5);
    assert_eq!(config.server.shutdown_delay_secs, 2);
    let refused = problems(&valid(), env(&[("BFF_SERVER__SHUTDOWN_TIMEOUT_SECS", "0")]));
    assert!(refused.contains("shutdown_timeout_secs"), "{refused}");
    assert!(refused.contains("greater than zero"), "{refused}");
}

mod conformance {
    use super::*;
    use crate::conformance::{Requirement, Status, check};

    fn violated(config: &Config, requirement: Requirement) -> (String, bool) {
        match check(config).status(requirement) {
            Status::Violated { key, allowed, .. } => ((*key).to_owned(), *allowed),
            Status::Met(how) => panic!("{requirement:?} met: {how}"),
        }
    }

    #[test]
    fn a_compliant_config_meets_every_requirement() {
        let text = valid()
            + "[[routes]]\npath = \"/api/orders\"\nupstream = \"https://orders.internal\"\ntoken = \"user\"\nmethods = [\"GET\"]\n";
        let config = Config::from_toml_str(&text, no_env()).unwrap();
        let report = check(&config);
        assert_eq!(report.violations().count(), 0, "{report}");
        let printed = report.to_string();
        assert_eq!(
            printed.lines().count(),
            1 + Requirement::ALL.len(),
            "{printed}"
        );
        assert!(
            printed.contains("draft-ietf-oauth-browser-based-apps-27"),
            "{printed}"
        );
        assert!(
            printed.contains(
                "ok        session cookie Secure, HttpOnly, SameSite=Strict, Path=/, no Domain: \
                 the session cookie is set as `__Host-Http-bff=<id>; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=60`"
            ),
            "{printed}"
        );
        assert!(printed.contains("/api/orders (GET)"), "{printed}");
        assert!(printed.contains("main (client_secret_basic)"), "{printed}");
        assert!(
            !printed.contains("do-not-print"),
            "no secret in the report: {printed}"
        );
    }

    #[test]
    fn a_session_cookie_without_the_host_http_prefix_refuses_to_start() {
        let text = valid() + "[http]\nsession_cookie = \"sid\"\n";
        assert_eq!(
            lines(&text, no_env()),
            [
                "http.session_cookie (BFF_HTTP__SESSION_COOKIE): \"sid\" lacks the __Host-Http- prefix, \
                 so a sibling subdomain or a script could set or shadow it: violates \"session cookie \
                 named __Host-Http-*\" (draft-ietf-oauth-browser-based-apps-27, section 6.1); set \
                 dev.allow_nonconformant = true to start anyway, for development only"
            ]
        );
        // `__Host-` alone is not enough either.
        let text = valid() + "[http]\nsession_cookie = \"__Host-bff\"\n";
        assert_eq!(lines(&text, no_env()).len(), 1);
    }

    #[test]
    fn the_dev_switch_starts_a_nonconformant_config_and_the_report_says_so() {
        let text =
            valid() + "[http]\nsession_cookie = \"sid\"\n[dev]\nallow_nonconformant = true\n";
        let config = Config::from_toml_str(&text, no_env()).unwrap();
        assert_eq!(
            violated(&config, Requirement::CookiePrefix),
            ("http.session_cookie".to_owned(), true)
        );
        let report = check(&config);
        assert_eq!(report.violations().count(), 1, "{report}");
        assert_eq!(report.refusals().count(), 0, "{report}");
        assert!(
            report.to_string().contains(
                "VIOLATED  session cookie named __Host-Http-*: http.session_cookie: \"sid\" lacks"
            ),
            "{report}"
        );
        assert!(
            report
                .to_string()
                .contains("(allowed by dev.allow_nonconformant = true: DEVELOPMENT ONLY)"),
            "{report}"
        );
    }

    #[test]
    fn plain_http_development_mode_violates_the_cookie_requirements_it_drops() {
        let text = valid().replace("https://app.example", "http://127.0.0.1:8080")
            + "\n[dev]\nallow_plain_http = true\n";
        let config = Config::from_toml_str(&text, no_env()).unwrap();
        assert_eq!(
            violated(&config, Requirement::CookieAttributes),
            ("server.public_url".to_owned(), true)
        );
        assert_eq!(
            violated(&config, Requirement::CookiePrefix),
            ("server.public_url".to_owned(), true)
        );
        let printed = check(&config).to_string();
        assert!(
            printed.contains("the session cookie lacks Secure (plain-HTTP development mode)"),
            "{printed}"
        );
        // Outside development mode plain HTTP is refused once, by its own check.
        let text = valid().replace("https://app.example", "http://127.0.0.1:8080");
        let lines = lines(&text, no_env());
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].starts_with("server.public_url (BFF_SERVER__PUBLIC_URL): is http://"));
    }

    #[test]
    fn requirements_kept_by_the_code_say_so() {
        let config = Config::from_toml_str(&valid(), no_env()).unwrap();
        let report = check(&config);
        for requirement in [
            Requirement::CodeFlowWithPkce,
            Requirement::CsrfHeader,
            Requirement::SessionBoundedByRefreshToken,
        ] {
            match report.status(requirement) {
                Status::Met(how) => assert!(how.starts_with("built in: "), "{how}"),
                other => panic!("{requirement:?}: {other:?}"),
            }
        }
        match report.status(Requirement::ExplicitAllowlist) {
            Status::Met(how) => assert!(how.contains("forwards nothing"), "{how}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn log_format_and_trace_export_are_off_or_automatic_unless_configured() {
    let config = Config::from_toml_str(&valid(), no_env()).unwrap();
    assert_eq!(config.log.format, None);
    assert_eq!(LogFormat::resolve(None, true), LogFormat::Pretty);
    assert_eq!(LogFormat::resolve(None, false), LogFormat::Json);
    assert_eq!(
        LogFormat::resolve(Some(LogFormat::Plain), true),
        LogFormat::Plain
    );
    assert_eq!(config.tracing.traces_url(), None, "no export by default");
    assert_eq!(config.tracing.service_name, "bff-server");

    let text = valid()
        + "[log]\nformat = \"plain\"\n[tracing]\notlp_endpoint = \"http://127.0.0.1:4318/\"\nservice_name = \"bff-eu\"\n";
    let config = Config::from_toml_str(&text, no_env()).unwrap();
    assert_eq!(config.log.format, Some(LogFormat::Plain));
    assert_eq!(
        config.tracing.traces_url().as_deref(),
        Some("http://127.0.0.1:4318/v1/traces")
    );
    assert_eq!(config.tracing.service_name, "bff-eu");

    let config = Config::from_toml_str(
        &valid(),
        env(&[
            ("BFF_LOG__FORMAT", "json"),
            (
                "BFF_TRACING__OTLP_ENDPOINT",
                "https://collector.example:4318",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(config.log.format, Some(LogFormat::Json));
    assert_eq!(
        config.tracing.traces_url().as_deref(),
        Some("https://collector.example:4318/v1/traces")
    );
}

#[test]
fn bad_log_and_tracing_settings_name_their_key_and_variable() {
    let text = valid()
        + "[log]\nformat = \"xml\"\n[tracing]\notlp_endpoint = \"grpc://127.0.0.1:4317\"\nsample = 1\n";
    let Err(ConfigError::Invalid(found)) = Config::from_toml_str(&text, no_env()) else {
        panic!("accepted");
    };
    assert_eq!(
        found,
        [
            "log.format (BFF_LOG__FORMAT): unknown variant `xml`, expected one of `json`, `pretty`, `plain`",
            "tracing.otlp_endpoint (BFF_TRACING__OTLP_ENDPOINT): \"grpc://127.0.0.1:4317\" must be an http:// or https:// URL",
            "tracing.sample (BFF_TRACING__SAMPLE): unknown key (expected one of: otlp_endpoint, service_name)",
        ]
    );
}

#[test]
fn session_renewal_and_client_binding_are_off_by_default_and_read_when_set() {
    let config = Config::from_toml_str(&valid(), no_env()).unwrap();
    assert_eq!(config.session.renewal(), None);
    assert_eq!(
        config.session.client_binding(),
        bff_domain::ClientBindingPolicy::default()
    );
    let text = format!(
        "{}\n[session]\nrekey_after_secs = 3600\nclient_binding = \"strict\"\nclient_binding_ipv4_prefix = 24\nclient_binding_ipv6_prefix = 64\n",
        valid()
    );
    let config = Config::from_toml_str(&text, no_env()).unwrap();
    assert_eq!(
        config.session.renewal(),
        Some(bff_domain::SessionRenewal {
            after: std::time::Duration::from_secs(3600),
            grace: std::time::Duration::from_secs(60),
        })
    );
    assert_eq!(
        config.session.client_binding(),
        bff_domain::ClientBindingPolicy::new(bff_domain::BindingMode::Strict, Some(24), Some(64))
            .unwrap()
    );
    let from_env =
        Config::from_toml_str(&valid(), env(&[("BFF_SESSION__CLIENT_BINDING", "warn")])).unwrap();
    assert_eq!(
        from_env.session.client_binding().mode(),
        bff_domain::BindingMode::Warn
    );
}

#[test]
fn bad_session_renewal_and_client_binding_values_are_errors() {
    for (extra, expected) in [
        ("client_binding = \"loose\"", "session.client_binding"),
        ("client_binding_ipv4_prefix = 33", "must be 0 to 32"),
        ("client_binding_ipv6_prefix = 129", "must be 0 to 128"),
        (
            "client_binding_ipv4_prefix = -1",
            "session.client_binding_ipv4_prefix",
        ),
        ("rekey_grace_secs = 0", "must be greater than zero"),
    ] {
        let text = format!("{}\n[session]\n{extra}\n", valid());
        let message = problems(&text, no_env());
        assert!(message.contains(expected), "{extra}: {message}");
    }
}

#[test]
fn request_limits_default_and_are_checked() {
    let config = Config::from_toml_str(&valid(), no_env()).unwrap();
    assert_eq!(
        config.http_settings().request_limits,
        bff_http::RequestLimits {
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
        }
    );
    let text = format!(
        "{}\n[[routes]]\npath = \"/api\"\nupstream = \"https://api.internal\"\ntoken = \"none\"\nmax_body_bytes = 1024\n",
        valid().replace(
            "[server]\n",
            "[server]\nmax_header_bytes = 4096\nmax_headers = 20\nbody_read_timeout_secs = 7\n"
        )
    );
    let config =
        Config::from_toml_str(&text, env(&[("BFF_SERVER__HEADER_READ_TIMEOUT_SECS", "5")]))
            .unwrap();
    assert_eq!(
        config.server.request_limits(),
        bff_http::RequestLimits {
            max_header_bytes: 4096,
            max_headers: 20,
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(7),
        }
    );
    assert_eq!(config.routes.routes()[0].max_body_bytes(), Some(1024));
    let refused = problems(
        &valid(),
        env(&[
            ("BFF_SERVER__MAX_HEADER_BYTES", "0"),
            ("BFF_SERVER__MAX_HEADERS", "many"),
            ("BFF_SERVER__HEADER_READ_TIMEOUT_SECS", "0"),
            ("BFF_SERVER__BODY_READ_TIMEOUT_SECS", "0"),
        ]),
    );
    for line in [
        "server.max_header_bytes (BFF_SERVER__MAX_HEADER_BYTES): must be greater than zero",
        "server.max_headers (BFF_SERVER__MAX_HEADERS): invalid type: string \"many\", expected usize",
        "server.header_read_timeout_secs (BFF_SERVER__HEADER_READ_TIMEOUT_SECS): must be greater than zero",
        "server.body_read_timeout_secs (BFF_SERVER__BODY_READ_TIMEOUT_SECS): must be greater than zero",
    ] {
        assert!(refused.contains(line), "{line}\n{refused}");
    }
}

// ---------------------------------------------------------------------------------------------
// Properties over hostile values (budget: 256 cases each, or `PROPTEST_CASES`)
// ---------------------------------------------------------------------------------------------

/// A route's and a provider's `ca_file` are read at load: the certificates become their trust,
/// and a file that is missing or holds no certificate is a problem naming the key and the file.
#[test]
fn ca_files_are_read_at_load_and_a_bad_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("bff-config-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, bff_test_services::tls::ca_certificate_pem()).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let route = |file: &std::path::Path| {
        format!(
            "{}\n[[routes]]\npath = \"/api\"\nupstream = \"https://api.internal\"\ntoken = \"none\"\nca_file = {:?}\n",
            valid(),
            file.display().to_string()
        )
    };
    let config = Config::from_toml_str(&route(&ca), no_env()).unwrap();
    assert!(
        format!("{:?}", config.upstream_trust).contains("\"/api\": \"1 CA certificates\""),
        "{:?}",
        config.upstream_trust
    );
    // The same file for the provider.
    let provider = |file: &std::path::Path| {
        valid().replace(
            "[providers.main]\n",
            &format!(
                "[providers.main]\nca_file = {:?}\n",
                file.display().to_string()
            ),
        )
    };
    let config = Config::from_toml_str(&provider(&ca), no_env()).unwrap();
    let section = format!("{:?}", config.providers[&main_id()]);
    assert!(section.contains("(1 CA certificates)"), "{section}");
    for file in [dir.join("missing.pem"), empty.clone()] {
        let problems = lines(&provider(&file), no_env());
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].starts_with("providers.main.ca_file")
                && problems[0].contains(&file.display().to_string()),
            "{problems:#?}"
        );
    }
    for (file, reason) in [
        (dir.join("missing.pem"), "cannot be read"),
        (empty, "holds no PEM certificate"),
    ] {
        let problems = lines(&route(&file), no_env());
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].starts_with("routes (BFF_ROUTES): route \"/api\": ca_file ")
                && problems[0].contains(&file.display().to_string())
                && problems[0].contains(reason),
            "{problems:#?}"
        );
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Keys whose value is not text, with their variables: a value read from the environment
    /// as TOML, or refused naming the variable.
    const TYPED_KEYS: &[&str] = &[
        "BFF_SERVER__LISTEN",
        "BFF_SERVER__PUBLIC_URL",
        "BFF_SERVER__MAX_HEADER_BYTES",
        "BFF_SERVER__MAX_HEADERS",
        "BFF_SERVER__HEADER_READ_TIMEOUT_SECS",
        "BFF_SERVER__TRUSTED_PROXIES",
        "BFF_SESSION__IDLE_TIMEOUT_SECS",
        "BFF_SESSION__FETCH_USERINFO",
        "BFF_HTTP__APP_ORIGINS",
        "BFF_PROVIDERS__MAIN__SCOPES",
        "BFF_PROVIDERS__MAIN__CLIENT_AUTH",
        "BFF_VAULT_KEYS",
        "BFF_STORE__KIND",
    ];

    /// Values an operator's typo or an attacker with a foot in the environment might set.
    fn env_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "",
                "0",
                "-1",
                "18446744073709551616",
                "1e9",
                "true",
                "yes",
                "[]",
                "[1, \"a\"]",
                "{}",
                "{ a = 1 }",
                "\"",
                "'",
                "[[",
                "0.0.0.0:0",
                "[::]:99999",
                "10.0.0.0/0",
                "https://app.example",
                "http://app.example/path",
                "client_secret_basic",
                "memory",
                "\u{0}",
                "a\nb = 1",
                "\"\"\"",
                "nan",
                "inf",
            ])
            .prop_map(str::to_owned),
            any::<String>(),
            any::<u64>().prop_map(|n| n.to_string()),
        ]
    }

    proptest! {
        /// Never a panic; a refusal names the variable the value came from.
        #[test]
        fn a_hostile_environment_value_is_read_or_refused_by_name(
            var in prop::sample::select(TYPED_KEYS),
            value in env_value(),
        ) {
            match Config::from_toml_str(&valid(), env(&[(var, &value)])) {
                Ok(_) => {}
                Err(ConfigError::Invalid(problems)) => prop_assert!(
                    problems.iter().any(|p| p.contains(var)),
                    "{var}={value:?}: {problems:?}"
                ),
                Err(other) => prop_assert!(false, "{var}={value:?}: {other}"),
            }
        }

        /// Text fields take any text from the environment as it is, however it looks.
        #[test]
        fn a_client_secret_from_the_environment_is_taken_verbatim(value in ".+") {
            let config = Config::from_toml_str(
                &valid(),
                env(&[("BFF_PROVIDERS__MAIN__CLIENT_SECRET", &value)]),
            );
            prop_assert!(config.is_ok(), "{value:?}: {:?}", config.err());
            let config = config.unwrap();
            prop_assert_eq!(config.providers[&main_id()].client_secret.as_ref().unwrap().expose(), value.as_str());
        }

        /// Arbitrary text as the configuration file: a syntax error or a list of problems,
        /// never a panic.
        #[test]
        fn arbitrary_config_text_never_panics(text in prop_oneof![
            any::<String>(),
            prop::collection::vec(
                prop::sample::select(vec![
                    "[server]\n", "[[routes]]\n", "[providers.main]\n", "listen = ", "\"x\"",
                    "1", "[", "]", "{", "}", "=", "\n", "max_header_bytes = 0\n", "path = \"/api\"\n",
                    "upstream = \"http://a\"\n", "token = \"user\"\n", "max_body_bytes = -1\n",
                ]),
                0..20,
            )
            .prop_map(|pieces| format!("{}{}", valid(), pieces.concat())),
        ]) {
            let _ = Config::from_toml_str(&text, no_env());
        }
    }
}
