//! Configuration: a TOML file plus `BFF_`-prefixed environment overrides, validated at start.
//!
//! Environment variables name a path with `__` between segments, lowercased:
//! `BFF_PROVIDERS__MAIN__CLIENT_SECRET=...` sets `providers.main.client_secret`. Values are read
//! as TOML when they parse (numbers, booleans, arrays) and as strings otherwise. Unknown keys,
//! in the file or from a variable, are errors: a typo in a security setting must be loud.
//! `BFF_TEST_*` variables belong to the test harness (database URLs) and are not configuration.
//!
//! [`Config::validate`] returns every problem, one line each, so an operator fixes them in one
//! go rather than one per restart.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use bff_domain::ProviderId;
use bff_http::HttpSettings;
use serde::Deserialize;
use url::Url;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listening and public addresses.
    pub server: ServerConfig,
    /// HTTP surface.
    #[serde(default)]
    pub http: HttpConfig,
    /// Session lifetimes.
    #[serde(default)]
    pub session: SessionConfig,
    /// Development switches.
    #[serde(default)]
    pub dev: DevConfig,
    /// Vault encryption keys, the first active.
    pub vault_keys: Vec<VaultKey>,
    /// Where sessions live.
    #[serde(default)]
    pub store: StoreConfig,
    /// Name of the provider used when a login names none.
    pub default_provider: String,
    /// The identity providers by name.
    pub providers: BTreeMap<String, ProviderConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Socket address to listen on, e.g. `0.0.0.0:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The origin browsers use to reach the BFF, e.g. `https://app.example`. The callback is
    /// `{public_url}{prefix}/callback`.
    pub public_url: String,
    /// `redirect_uri` for API-driven logins (an app page that calls `/login/end`);
    /// default `{public_url}/`.
    pub app_redirect_url: Option<String>,
    /// A folder of static files to serve at `/` (the app, or the sample page).
    pub static_dir: Option<PathBuf>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Path prefix of the BFF endpoints.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Session cookie name; default `__Host-Http-bff` (`bff` in plain-HTTP dev mode).
    pub session_cookie: Option<String>,
    /// Login-binding cookie name; default `__Host-Http-bff-login` (`bff-login` in dev mode).
    pub binding_cookie: Option<String>,
    /// Origins whose pages may call the BFF; default the origin of `server.public_url`.
    #[serde(default)]
    pub app_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
            session_cookie: None,
            binding_cookie: None,
            app_origins: Vec::new(),
        }
    }
}

fn default_prefix() -> String {
    "/bff".into()
}

/// `[session]`, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused this long ends.
    pub idle_timeout_secs: u64,
    /// No session lives longer.
    pub absolute_timeout_secs: u64,
    /// A started login must complete within this.
    pub login_timeout_secs: u64,
    /// Refresh access tokens this long before they expire.
    pub refresh_margin_secs: u64,
    /// Merge the provider's userinfo endpoint into `/bff/userinfo`.
    pub fetch_userinfo: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 60 * 60,
            login_timeout_secs: 10 * 60,
            refresh_margin_secs: 60,
            fetch_userinfo: false,
        }
    }
}

/// `[dev]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevConfig {
    /// Allow `http://` public URL, app origins and issuers. Drops `Secure` and the `__Host-`
    /// cookie prefix. For local development only; the server warns at start.
    #[serde(default)]
    pub allow_plain_http: bool,
}

/// One `[[vault_keys]]` entry.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultKey {
    /// Key id, stored beside each sealed blob.
    pub id: String,
    /// 32 bytes, base64 (`openssl rand -base64 32`).
    pub key: String,
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKey")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Which store: `memory`, `postgres`, `redis` or `postgres+redis`.
    #[serde(default = "default_store_kind")]
    pub kind: StoreKind,
    /// Seconds between sweeps of expired sessions.
    #[serde(default = "default_sweep_interval")]
    pub sweep_interval_secs: u64,
    /// `[store.postgres]`, for `postgres` and `postgres+redis`.
    pub postgres: Option<bff_store_postgres::PostgresConfig>,
    /// `[store.redis]`, for `redis` and `postgres+redis`.
    pub redis: Option<bff_store_redis::RedisConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            sweep_interval_secs: default_sweep_interval(),
            postgres: None,
            redis: None,
        }
    }
}

impl StoreConfig {
    fn validate(&self, problems: &mut Vec<String>) {
        let needs_postgres = matches!(self.kind, StoreKind::Postgres | StoreKind::PostgresRedis);
        let needs_redis = matches!(self.kind, StoreKind::Redis | StoreKind::PostgresRedis);
        match (&self.postgres, needs_postgres) {
            (None, true) => problems.push(format!(
                "store.kind = \"{}\" needs a [store.postgres] section with a url",
                self.kind.name()
            )),
            (Some(pg), _) => problems.extend(pg.validate()),
            (None, false) => {}
        }
        match (&self.redis, needs_redis) {
            (None, true) => problems.push(format!(
                "store.kind = \"{}\" needs a [store.redis] section with a url",
                self.kind.name()
            )),
            (Some(redis), _) => problems.extend(redis.validate()),
            (None, false) => {}
        }
    }
}

fn default_store_kind() -> StoreKind {
    StoreKind::Memory
}

fn default_sweep_interval() -> u64 {
    60
}

/// Store choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum StoreKind {
    /// In process memory: one node, nothing survives a restart.
    #[serde(rename = "memory")]
    Memory,
    /// PostgreSQL for everything.
    #[serde(rename = "postgres")]
    Postgres,
    /// Redis for everything (sessions live as long as Redis keeps them).
    #[serde(rename = "redis")]
    Redis,
    /// Postgres is the system of record; Redis caches hot sessions and holds pending logins,
    /// the replay cache and locks.
    #[serde(rename = "postgres+redis")]
    PostgresRedis,
}

impl StoreKind {
    /// The configuration value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::PostgresRedis => "postgres+redis",
        }
    }
}

/// One `[providers.<name>]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Issuer identifier; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default = "default_client_auth")]
    pub client_auth: String,
    /// Scopes; `openid` is always added.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Where the provider sends the browser after logout; default `{public_url}{prefix}/logout/callback`.
    pub post_logout_redirect_uri: Option<String>,
    /// Allowed ID token signing algorithms; default RS256, PS256, ES256, ES384, EdDSA.
    pub id_token_algorithms: Option<Vec<String>>,
    /// Tolerated clock difference for `exp`/`iat`, in seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u64,
    /// Timeout of each call to the provider, in seconds.
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("client_auth", &self.client_auth)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

fn default_client_auth() -> String {
    "client_secret_basic".into()
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

fn default_skew() -> u64 {
    60
}

fn default_http_timeout() -> u64 {
    10
}

/// Loading the configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML (after environment overrides) does not fit the schema.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// An environment variable could not be applied.
    #[error("environment variable {0}: {1}")]
    Env(String, String),
    /// Validation found problems (one per line).
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

const ENV_PREFIX: &str = "BFF_";
/// Reserved for the test harness (`BFF_TEST_POSTGRES_URL`, ...), never read as configuration.
const TEST_ENV_PREFIX: &str = "BFF_TEST_";

impl Config {
    /// Reads `path`, applies `BFF_*` variables from `env`, parses and validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming every problem found.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, env)
    }

    /// Parses TOML text, applies `BFF_*` variables from `env`, and validates.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_toml_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.message().to_owned()))?;
        for (name, value) in env {
            if name.starts_with(TEST_ENV_PREFIX) {
                continue;
            }
            if let Some(path) = name.strip_prefix(ENV_PREFIX) {
                apply_env(&mut table, &name, path, &value)?;
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.message().to_owned()))?;
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Whether plain HTTP is in use (dev mode with an `http://` public URL).
    pub fn plain_http(&self) -> bool {
        self.server.public_url.starts_with("http://")
    }

    /// The HTTP settings derived from this configuration.
    pub fn http_settings(&self) -> HttpSettings {
        let secure = !self.plain_http();
        let (session, binding, logout) = if secure {
            (
                "__Host-Http-bff",
                "__Host-Http-bff-login",
                "__Host-Http-bff-logout",
            )
        } else {
            ("bff", "bff-login", "bff-logout")
        };
        let app_origins = if self.http.app_origins.is_empty() {
            Url::parse(&self.server.public_url)
                .map(|u| vec![u.origin().ascii_serialization()])
                .unwrap_or_default()
        } else {
            self.http.app_origins.clone()
        };
        HttpSettings {
            prefix: self.http.prefix.clone(),
            session_cookie: self
                .http
                .session_cookie
                .clone()
                .unwrap_or_else(|| session.into()),
            binding_cookie: self
                .http
                .binding_cookie
                .clone()
                .unwrap_or_else(|| binding.into()),
            logout_cookie: logout.into(),
            secure_cookies: secure,
            app_origins,
        }
    }

    /// The public URL without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.server.public_url.trim_end_matches('/')
    }

    /// Every problem with this configuration, one line each; empty when valid.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let plain_ok = self.dev.allow_plain_http;
        check_url(
            &mut problems,
            "server.public_url",
            &self.server.public_url,
            plain_ok,
        );
        if let Ok(url) = Url::parse(&self.server.public_url)
            && !matches!(url.path(), "" | "/")
        {
            problems.push(format!(
                "server.public_url must be an origin without a path (got {:?})",
                self.server.public_url
            ));
        }
        if let Some(url) = &self.server.app_redirect_url {
            check_url(&mut problems, "server.app_redirect_url", url, plain_ok);
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "server.listen must be an address like 127.0.0.1:8080 (got {:?})",
                self.server.listen
            ));
        }
        if let Err(e) = bff_crypto::VaultCipher::from_base64_keys(
            self.vault_keys
                .iter()
                .map(|k| (k.id.as_str(), k.key.as_str())),
        ) {
            problems.push(format!("vault_keys: {e}"));
        }
        if self.session.idle_timeout_secs == 0 || self.session.absolute_timeout_secs == 0 {
            problems.push("session timeouts must be greater than zero".into());
        }
        if self.session.login_timeout_secs == 0 {
            problems.push("session.login_timeout_secs must be greater than zero".into());
        }
        if self.providers.is_empty() {
            problems.push("at least one [providers.<name>] section is required".into());
        }
        if !self.providers.contains_key(&self.default_provider) {
            problems.push(format!(
                "default_provider {:?} is not one of the configured providers ({})",
                self.default_provider,
                self.providers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (name, provider) in &self.providers {
            if let Err(e) = ProviderId::parse(name) {
                problems.push(format!("providers.{name}: {e}"));
            }
            check_url(
                &mut problems,
                &format!("providers.{name}.issuer"),
                &provider.issuer,
                plain_ok,
            );
            if provider.client_id.is_empty() {
                problems.push(format!("providers.{name}.client_id is empty"));
            }
            if provider.client_secret.is_empty() {
                problems.push(format!("providers.{name}.client_secret is empty"));
            }
            if !matches!(
                provider.client_auth.as_str(),
                "client_secret_basic" | "client_secret_post"
            ) {
                problems.push(format!(
                    "providers.{name}.client_auth must be client_secret_basic or client_secret_post (got {:?})",
                    provider.client_auth
                ));
            }
            if let Some(algs) = &provider.id_token_algorithms {
                for alg in algs {
                    if crate::wiring::parse_algorithm(alg).is_none() {
                        problems.push(format!(
                            "providers.{name}.id_token_algorithms: {alg:?} is not allowed (use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA; never none or HS*)"
                        ));
                    }
                }
            }
            if let Some(url) = &provider.post_logout_redirect_uri {
                check_url(
                    &mut problems,
                    &format!("providers.{name}.post_logout_redirect_uri"),
                    url,
                    plain_ok,
                );
            }
        }
        self.store.validate(&mut problems);
        problems.extend(
            self.http_settings()
                .validate()
                .iter()
                .map(|e| format!("http: {e}")),
        );
        problems
    }
}

fn check_url(problems: &mut Vec<String>, field: &str, value: &str, plain_ok: bool) {
    match Url::parse(value) {
        Ok(url) if url.scheme() == "https" => {}
        Ok(url) if url.scheme() == "http" => {
            if !plain_ok {
                problems.push(format!(
                    "{field} is http:// ({value}); use https, or set dev.allow_plain_http = true for local development"
                ));
            }
        }
        Ok(_) => problems.push(format!("{field} must be an http(s) URL (got {value:?})")),
        Err(e) => problems.push(format!("{field} is not a URL ({e}): {value:?}")),
    }
}

fn apply_env(
    table: &mut toml::Table,
    name: &str,
    path: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let segments: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err(ConfigError::Env(name.into(), "empty path segment".into()));
    }
    let parsed = parse_env_value(value);
    let (last, parents) = segments
        .split_last()
        .ok_or_else(|| ConfigError::Env(name.into(), "empty name".into()))?;
    let mut current = table;
    for segment in parents {
        let entry = current
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::Env(name.into(), format!("{segment} is not a table")))?;
    }
    current.insert(last.clone(), parsed);
    Ok(())
}

/// A variable's value as TOML when it parses as a scalar or array, else as a string.
fn parse_env_value(value: &str) -> toml::Value {
    let probe = format!("v = {value}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_)
                | toml::Value::Boolean(_)
                | toml::Value::Array(_)
                | toml::Value::Float(_)),
            ) => v,
            _ => toml::Value::String(value.to_owned()),
        },
        Err(_) => toml::Value::String(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

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

    fn problems(text: &str, env: Vec<(String, String)>) -> String {
        match Config::from_toml_str(text, env) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_minimal_config_is_valid_with_secure_defaults() {
        let config = Config::from_toml_str(&valid(), no_env()).unwrap();
        let http = config.http_settings();
        assert_eq!(http.session_cookie, "__Host-Http-bff");
        assert!(http.secure_cookies);
        assert_eq!(http.app_origins, vec!["https://app.example".to_owned()]);
    }

    #[test]
    fn env_overrides_nested_values_and_types() {
        let env = vec![
            (
                "BFF_PROVIDERS__MAIN__CLIENT_SECRET".to_owned(),
                "from-env".to_owned(),
            ),
            ("BFF_SESSION__IDLE_TIMEOUT_SECS".to_owned(), "90".to_owned()),
            ("OTHER_VAR".to_owned(), "ignored".to_owned()),
            (
                "BFF_TEST_POSTGRES_URL".to_owned(),
                "postgres://test".to_owned(),
            ),
        ];
        let config = Config::from_toml_str(&valid(), env).unwrap();
        assert_eq!(config.providers["main"].client_secret, "from-env");
        assert_eq!(config.session.idle_timeout_secs, 90);
    }

    #[test]
    fn unknown_keys_and_variables_are_errors() {
        let text = format!("{}\n[session]\nidle_timeout = 5\n", valid());
        assert!(problems(&text, no_env()).contains("idle_timeout"));
        let env = vec![("BFF_SESION__IDLE_TIMEOUT_SECS".to_owned(), "5".to_owned())];
        assert!(problems(&valid(), env).contains("sesion"));
    }

    #[test]
    fn each_problem_gets_its_own_line() {
        let text = valid()
            .replace(KEY, "c2hvcnQ=")
            .replace("https://app.example", "http://app.example")
            .replace("default_provider = \"main\"", "default_provider = \"nope\"");
        let message = problems(&text, no_env());
        assert!(
            message.contains("vault_keys: key \"k1\" is 5 bytes"),
            "{message}"
        );
        assert!(
            message.contains("server.public_url is http://"),
            "{message}"
        );
        assert!(message.contains("default_provider \"nope\""), "{message}");
        assert!(message.lines().count() >= 4, "{message}");
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
    fn host_prefixed_names_are_refused_in_dev_mode() {
        let text = valid().replace("https://app.example", "http://127.0.0.1:8080")
            + "\n[dev]\nallow_plain_http = true\n[http]\nsession_cookie = \"__Host-mine\"\n";
        assert!(problems(&text, no_env()).contains("__Host-mine"));
    }

    #[test]
    fn hmac_and_none_algorithms_are_refused() {
        let text = valid() + "id_token_algorithms = [\"HS256\", \"none\", \"RS256\"]\n";
        let message = problems(&text, no_env());
        assert!(message.contains("\"HS256\" is not allowed"), "{message}");
        assert!(message.contains("\"none\" is not allowed"), "{message}");
        assert!(!message.contains("\"RS256\" is not allowed"), "{message}");
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
}
