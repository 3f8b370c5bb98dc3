//! Configuration: a TOML file plus `BFF_`-prefixed environment overrides, parsed once into
//! final types.
//!
//! Environment variables name a path with `__` between segments, lowercased:
//! `BFF_PROVIDERS__MAIN__CLIENT_SECRET=...` sets `providers.main.client_secret` ([`env`]).
//! Unknown keys, in the file or from a variable, are errors: a typo in a security setting must
//! be loud. `BFF_TEST_*` variables belong to the test harness and are not configuration.
//!
//! Each section deserializes into the types its user needs (`[providers.<name>]` into
//! `bff_oidc::ProviderSection`, `[[vault_keys]]` into `bff_crypto::VaultKeys`,
//! `[store.postgres]` into `bff_store_postgres::PostgresConfig`, `[log]` and `[tracing]` into
//! what `crate::telemetry` needs, …), so wiring only builds
//! adapters. [`Config::from_toml_str`] reports every problem at once, one line each, naming the
//! key and its variable (`server.public_url (BFF_SERVER__PUBLIC_URL): …`), so an operator fixes
//! them in one go rather than one per restart.

mod admin;
mod env;
mod metrics;
mod problem;
mod providers;
mod reader;
mod reference;
mod server;
mod session;
mod store;
mod telemetry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bff_crypto::{VaultKey, VaultKeys};
use bff_domain::ProviderId;
use bff_domain::allowlist::RouteTable;
use bff_http::UpstreamTrust;
use bff_http::{HttpSettings, ProxyRouteConfig, SettingsError, TrustedProxies};
use bff_oidc::ProviderSection;

pub use self::admin::AdminConfig;
pub use self::metrics::MetricsConfig;
use self::problem::{KeyPath, Segment};
use self::reader::Reader;
pub use self::server::{DevConfig, HttpConfig, PublicUrl, ServerConfig};
pub use self::session::SessionConfig;
pub use self::store::{StoreConfig, StoreKind};
pub use self::telemetry::{LogConfig, LogFormat, TracingConfig};

/// The configuration reference as Markdown (`docs/configuration.md`): every key with its type,
/// default, variable and an example.
pub fn reference_markdown() -> String {
    reference::markdown()
}

/// An annotated configuration file with every key (`docs/bff.example.toml`,
/// `bff-server example-config`): required keys set to examples, the rest commented out.
pub fn annotated_example() -> String {
    reference::example_toml()
}

/// The whole configuration, every value checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`: listening and public addresses.
    pub server: ServerConfig,
    /// `[http]`: the HTTP surface.
    pub http: HttpConfig,
    /// `[session]`: session lifetimes.
    pub session: SessionConfig,
    /// `[dev]`: development switches.
    pub dev: DevConfig,
    /// `[[vault_keys]]` (`id`, `key`: 32 bytes, base64): the first seals, the others only open.
    pub vault_keys: VaultKeys,
    /// `[store]`: where sessions live.
    pub store: StoreConfig,
    /// `default_provider`: the provider used when a login names none.
    pub default_provider: ProviderId,
    /// `[providers.<name>]`: the identity providers by name.
    pub providers: BTreeMap<ProviderId, ProviderSection>,
    /// `[admin]`: the operators' admin API (off unless `listen` is set).
    pub admin: AdminConfig,
    /// `[log]`: how log lines are written.
    pub log: LogConfig,
    /// `[tracing]`: OpenTelemetry trace export (off unless `otlp_endpoint` is set).
    pub tracing: TracingConfig,
    /// `[metrics]`: the Prometheus `/metrics` listener (off unless `listen` is set).
    pub metrics: MetricsConfig,
    /// `[[routes]]`: the API proxy's allowlist (`bff_http::ProxyRouteConfig` each), checked
    /// against the providers and the BFF's own paths.
    pub routes: RouteTable,
    /// The CA certificates of the routes with a `ca_file`, read at load.
    pub upstream_trust: UpstreamTrust,
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
    /// The file is not valid TOML.
    #[error("TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// Problems with values, keys or variables, one per line.
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

/// The top-level keys.
const TOP_LEVEL_KEYS: &[&str] = &[
    "server",
    "http",
    "session",
    "dev",
    "vault_keys",
    "store",
    "default_provider",
    "providers",
    "routes",
    "admin",
    "log",
    "tracing",
    "metrics",
];

impl Config {
    /// Reads `path`, applies `BFF_*` variables from `env`, and parses.
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

    /// Parses TOML text with `BFF_*` variables from `env` applied.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] for broken TOML, else [`ConfigError::Invalid`] with every
    /// problem.
    pub fn from_toml_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e| syntax_error(text, &e))?;
        let mut problems = Vec::new();
        let origins = env::apply(&mut table, env, &mut problems);
        let mut reader = Reader::new(&origins, problems);
        let config = Self::read(table, &mut reader);
        let problems = reader.into_problems();
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid(
                problems.iter().map(ToString::to_string).collect(),
            )),
        }
    }

    /// Reads every section, then checks what involves several of them.
    fn read(mut table: toml::Table, reader: &mut Reader<'_>) -> Option<Self> {
        fn section<T: serde::de::DeserializeOwned>(
            reader: &mut Reader<'_>,
            table: &mut toml::Table,
            key: &str,
        ) -> Option<T> {
            let value = table
                .remove(key)
                .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
            reader.read(&KeyPath::top(key), value)
        }
        let server: Option<ServerConfig> = section(reader, &mut table, "server");
        let http: Option<HttpConfig> = section(reader, &mut table, "http");
        let session: Option<SessionConfig> = section(reader, &mut table, "session");
        let dev: Option<DevConfig> = section(reader, &mut table, "dev");
        let store: Option<StoreConfig> = section(reader, &mut table, "store");
        let admin: Option<AdminConfig> = section(reader, &mut table, "admin");
        let log: Option<LogConfig> = section(reader, &mut table, "log");
        let tracing: Option<TracingConfig> = section(reader, &mut table, "tracing");
        let metrics: Option<MetricsConfig> = section(reader, &mut table, "metrics");
        let vault_keys = read_vault_keys(reader, table.remove("vault_keys"));
        let providers = providers::read(reader, table.remove("providers"));
        let default_provider =
            providers::read_default(reader, table.remove("default_provider"), &providers.names);
        let (routes, upstream_trust) = read_routes(
            reader,
            table.remove("routes"),
            &providers.names,
            http.as_ref().map(|h| h.prefix.as_str()),
        )
        .unzip();
        for key in table.keys() {
            reader.unknown_key(&KeyPath::top(key), TOP_LEVEL_KEYS);
        }

        if let Some(store) = &store {
            store.check_sections(&KeyPath::top("store"), reader);
        }
        if let Some(admin) = &admin {
            admin.check(
                &KeyPath::top("admin"),
                server.as_ref().map(|s| s.listen),
                reader,
            );
        }
        if let Some(metrics) = &metrics {
            metrics.check(
                &KeyPath::top("metrics"),
                &[
                    ("server.listen", server.as_ref().map(|s| s.listen)),
                    ("admin.listen", admin.as_ref().and_then(|a| a.listen)),
                ],
                reader,
            );
        }
        if let Some(dev) = &dev
            && !dev.allow_plain_http
        {
            if let Some(server) = &server {
                check_server_plain_http(reader, server);
            }
            if let Some(sections) = &providers.sections {
                providers::check_plain_http(reader, sections);
            }
        }
        let config = Self {
            server: server?,
            http: http?,
            session: session?,
            dev: dev?,
            vault_keys: vault_keys?,
            store: store?,
            default_provider: default_provider?,
            providers: providers.sections?,
            routes: routes?,
            upstream_trust: upstream_trust?,
            admin: admin?,
            log: log?,
            tracing: tracing?,
            metrics: metrics?,
        };
        config.check_http_settings(reader);
        config.check_conformance(reader);
        Some(config)
    }

    /// Whether plain HTTP is in use (dev mode with an `http://` public URL).
    pub fn plain_http(&self) -> bool {
        self.server.public_url.is_plain_http()
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
        let own_origin = self.server.public_url.as_str();
        let app_origins = if self.http.app_origins.is_empty() {
            vec![own_origin.to_owned()]
        } else {
            self.http.app_origins.clone()
        };
        // Public URLs and app origins are both bare origins, but spelled by people: compare
        // them the way browsers send `Origin` (lower-case scheme and host, no default port).
        let cors = app_origins
            .iter()
            .any(|origin| !bff_http::same_origin(origin, own_origin));
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
            cors,
            trusted_proxies: self.trusted_proxies(),
            request_limits: self.server.request_limits(),
        }
    }

    /// Where the API explorer is served, if anywhere: `http.api_explorer_path`, else
    /// `{prefix}/explorer` in plain-HTTP development mode.
    pub fn api_explorer_path(&self) -> Option<String> {
        match &self.http.api_explorer_path {
            Some(path) => Some(path.clone()),
            None if self.plain_http() => Some(format!("{}/explorer", self.http.prefix)),
            None => None,
        }
    }

    /// The proxies whose forwarding headers the API proxy believes (`server.trusted_proxies`).
    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::new(
            self.server.trusted_proxies.clone(),
            self.server.trusted_proxy_headers,
        )
    }

    /// The public URL without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.server.public_url.as_str()
    }

    /// Refuses what the conformance self-check finds violated and no development switch
    /// allows, under the key that causes it.
    fn check_conformance(&self, reader: &mut Reader<'_>) {
        let report = crate::conformance::check(self);
        // Plain HTTP outside development mode is already refused, under its own keys, by the
        // plain-HTTP check: the cookie findings it causes would only repeat it.
        let plain_http_switch = "dev.allow_plain_http";
        for finding in report.refusals() {
            if let crate::conformance::Status::Violated {
                key,
                why,
                allowed_by,
                ..
            } = &finding.status
                && *allowed_by != plain_http_switch
            {
                reader.problem(
                    &KeyPath::dotted(key),
                    format!(
                        "{why}: violates \"{}\" ({}); set {allowed_by} = true to start anyway, for development only",
                        finding.requirement.title(),
                        crate::conformance::SPECIFICATION
                    ),
                );
            }
        }
    }

    /// Reports HTTP settings browsers would not honour, each under its `[http]` key.
    fn check_http_settings(&self, reader: &mut Reader<'_>) {
        // (Routes are checked when read, against the providers and the prefix.)
        let settings = self.http_settings();
        let http = KeyPath::top("http");
        for problem in settings.validate() {
            let key = match &problem {
                SettingsError::BadPrefix(_) => "prefix",
                SettingsError::BadCookieName(name) | SettingsError::PrefixNeedsSecure(name)
                    if *name == settings.session_cookie =>
                {
                    "session_cookie"
                }
                SettingsError::BadCookieName(_) | SettingsError::PrefixNeedsSecure(_) => {
                    "binding_cookie"
                }
                SettingsError::BadOrigin(_) | SettingsError::PlainHttpOrigin(_) => "app_origins",
            };
            reader.problem(&http.key(key), problem.to_string());
        }
    }
}

/// Reads `[[vault_keys]]` entry by entry (so each bad entry is reported), then the list rules.
fn read_vault_keys(reader: &mut Reader<'_>, value: Option<toml::Value>) -> Option<VaultKeys> {
    let path = KeyPath::top("vault_keys");
    let Some(value) = value else {
        reader.problem(
            &path,
            "at least one [[vault_keys]] entry (id, key) is required",
        );
        return None;
    };
    let entries: Vec<toml::Value> = reader.read(&path, value)?;
    let mut keys = Some(Vec::new());
    for (i, entry) in entries.into_iter().enumerate() {
        let key: Option<VaultKey> = reader.read(&path.with(Segment::Index(i)), entry);
        match (key, keys.as_mut()) {
            (Some(key), Some(all)) => all.push(key),
            _ => keys = None,
        }
    }
    VaultKeys::new(keys?)
        .map_err(|e| reader.problem(&path, e.to_string()))
        .ok()
}

fn check_server_plain_http(reader: &mut Reader<'_>, server: &ServerConfig) {
    let path = KeyPath::top("server");
    if server.public_url.is_plain_http() {
        plain_http_problem(reader, &path.key("public_url"), server.public_url.as_str());
    }
    if let Some(url) = &server.app_redirect_url
        && url.is_plain_http()
    {
        plain_http_problem(reader, &path.key("app_redirect_url"), url.as_str());
    }
}

/// An `http://` URL outside development mode.
fn plain_http_problem(reader: &mut Reader<'_>, path: &KeyPath, url: &str) {
    reader.problem(
        path,
        format!(
            "is http:// ({url}); use https, or set dev.allow_plain_http = true for local development"
        ),
    );
}

/// A TOML syntax error with its position in `text`.
fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let offset = error.span().map_or(0, |span| span.start.min(text.len()));
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    ConfigError::Syntax {
        line,
        column,
        message,
    }
}

/// Reads `[[routes]]` and checks them as a table: every problem of every route, each naming its
/// route, under the key `routes`. Their `ca_file`s are read here too, so a missing one stops
/// the start.
fn read_routes(
    reader: &mut Reader<'_>,
    value: Option<toml::Value>,
    provider_names: &[String],
    bff_prefix: Option<&str>,
) -> Option<(RouteTable, UpstreamTrust)> {
    let path = KeyPath::top("routes");
    let configs: Vec<ProxyRouteConfig> =
        reader.read(&path, value.unwrap_or(toml::Value::Array(Vec::new())))?;
    let names: Vec<&str> = provider_names.iter().map(String::as_str).collect();
    let table = bff_http::route_table(&configs, &names, bff_prefix.unwrap_or("/bff"));
    let trust = bff_http::upstream_trust(&configs);
    match (table, trust) {
        (Ok(table), Ok(trust)) => Some((table, trust)),
        (table, trust) => {
            let problems = table.err().into_iter().chain(trust.err()).flatten();
            for problem in problems {
                reader.problem(&path, problem.to_string());
            }
            None
        }
    }
}

#[cfg(test)]
mod tests;
