//! The `[[routes]]` configuration section of the API proxy, and its checked conversion into the
//! domain's [`RouteTable`].
//!
//! The section is plain data ([`ProxyRouteConfig`], unknown keys refused); [`route_table`] turns
//! it into validated routes and reports every problem, one line each, naming the route. Besides
//! the domain's route rules it refuses providers that are not configured (for every token
//! policy: a `client` route's provider is the one its client-credentials token comes from) and
//! prefixes that overlap paths the BFF serves itself.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bff_domain::allowlist::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, InvalidMethod, InvalidTokenPolicy, Method,
    Route, RouteError, RouteSpec, RouteTable, TokenPolicy,
};
use bff_domain::{ProviderId, Secret};
use serde::Deserialize;

/// Paths the BFF serves itself besides its prefix; no route may overlap them.
const OPERATIONS_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// One `[[routes]]` entry, as written in the configuration.
///
/// ```toml
/// [[routes]]
/// path = "/api/orders"                    # local prefix
/// upstream = "https://orders.internal/v1" # base URL the remainder is appended to
/// token = "user"                          # user | client | user_or_client | none
/// methods = ["GET", "POST"]               # default GET HEAD POST PUT PATCH DELETE
/// required_scopes = ["orders.read"]
/// provider = "main"                       # default: the session's provider
/// connect_timeout_ms = 2000               # default 5000
/// timeout_ms = 10000                      # default 30000, the whole exchange
/// forward_set_cookie = false
/// websocket = false                       # proxy WebSocket upgrades (needs GET)
/// csrf_on_reads = true                    # false (token = "none" only): GET/HEAD need no x-csrf
/// headers = { "x-api-key" = "…" }         # added to every upstream request
/// max_body_bytes = 10485760               # default: no limit; larger bodies are 413
/// ca_file = "/etc/bff/internal-ca.pem"    # default: the built-in web PKI roots
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyRouteConfig {
    /// The local path prefix, such as `/api/orders`.
    pub path: String,
    /// The upstream base URL.
    pub upstream: String,
    /// `user`, `client`, `user_or_client` or `none`.
    pub token: String,
    /// Allowed methods; `None` for the default set.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Scopes the access token must have been granted; a client-credentials token is asked for
    /// exactly these.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// The provider whose token the route needs; `None` for the session's own (the default
    /// provider for a client-credentials token).
    #[serde(default)]
    pub provider: Option<String>,
    /// Connect timeout in milliseconds.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Total timeout of the upstream exchange in milliseconds, body included.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Whether upstream `Set-Cookie` headers reach the browser.
    #[serde(default)]
    pub forward_set_cookie: bool,
    /// Whether WebSocket upgrades are proxied.
    #[serde(default)]
    pub websocket: bool,
    /// Whether `GET` and `HEAD` need the `x-csrf` header like other methods (default `true`).
    /// `false` is for `token = "none"` routes only: plain links, `<img>`s and `<script>`s can
    /// then load the route, while other methods still need `x-csrf` and an app `Origin`.
    #[serde(default = "default_csrf_on_reads")]
    pub csrf_on_reads: bool,
    /// Headers added to every upstream request. Values may be API keys: never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The largest request body forwarded upstream, in bytes; `None` (the default) for no
    /// limit. Bodies stream, so a limit is about what the upstream accepts, not memory.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// A PEM file of the CA certificates an `https` upstream's certificate is verified against,
    /// instead of the built-in web PKI roots (see `super::trust`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_csrf_on_reads() -> bool {
    true
}

impl fmt::Debug for ProxyRouteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyRouteConfig")
            .field("path", &self.path)
            .field("upstream", &self.upstream)
            .field("token", &self.token)
            .field("methods", &self.methods)
            .field("required_scopes", &self.required_scopes)
            .field("provider", &self.provider)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("forward_set_cookie", &self.forward_set_cookie)
            .field("websocket", &self.websocket)
            .field("csrf_on_reads", &self.csrf_on_reads)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// A problem with the `[[routes]]` section; each names its route and fits one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyConfigError {
    /// The domain's route rules refused it.
    #[error(transparent)]
    Route(RouteError),
    /// `token` is not a policy name.
    #[error("route {path:?}: {source}")]
    Token {
        /// The route's path.
        path: String,
        /// Why.
        source: InvalidTokenPolicy,
    },
    /// A method is not an HTTP method token.
    #[error("route {path:?}: method {method:?}: {source}")]
    Method {
        /// The route's path.
        path: String,
        /// The method as configured.
        method: String,
        /// Why.
        source: InvalidMethod,
    },
    /// `provider` names no configured provider.
    #[error("route {path:?}: provider {provider:?} is not configured")]
    UnknownProvider {
        /// The route's path.
        path: String,
        /// The provider as configured.
        provider: String,
    },
    /// `ca_file` cannot be used.
    #[error("route {path:?}: ca_file {file:?} {reason}")]
    CaFile {
        /// The route's path.
        path: String,
        /// The file as configured.
        file: String,
        /// Why (cannot be read, no certificate, not a certificate).
        reason: String,
    },
    /// The prefix overlaps the BFF's own endpoints.
    #[error("route {path:?}: the path overlaps {reserved:?}, which the BFF serves itself")]
    Reserved {
        /// The route's path.
        path: String,
        /// The BFF path it overlaps.
        reserved: String,
    },
}

/// Whether one path is the other or below it, on a segment boundary.
fn overlaps(a: &str, b: &str) -> bool {
    let under = |inner: &str, outer: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    under(a, b) || under(b, a)
}

impl ProxyRouteConfig {
    /// The domain spec for this entry, or every problem that does not depend on other routes.
    fn spec(
        &self,
        known_providers: &[&str],
        bff_prefix: &str,
    ) -> Result<RouteSpec, Vec<ProxyConfigError>> {
        let path = || self.path.clone();
        let mut problems = Vec::new();
        let mut spec = RouteSpec::new(self.path.clone(), self.upstream.clone());
        match TokenPolicy::parse(&self.token) {
            Ok(policy) => spec.token = policy,
            Err(source) => problems.push(ProxyConfigError::Token {
                path: path(),
                source,
            }),
        }
        if let Some(methods) = &self.methods {
            spec.methods.clear();
            for method in methods {
                match Method::parse(method) {
                    Ok(m) => spec.methods.push(m),
                    Err(source) => problems.push(ProxyConfigError::Method {
                        path: path(),
                        method: method.clone(),
                        source,
                    }),
                }
            }
        }
        spec.required_scopes = self.required_scopes.clone();
        if let Some(provider) = &self.provider {
            match ProviderId::parse(provider) {
                Ok(id) if known_providers.contains(&id.as_str()) => spec.provider = Some(id),
                _ => problems.push(ProxyConfigError::UnknownProvider {
                    path: path(),
                    provider: provider.clone(),
                }),
            }
        }
        spec.connect_timeout = self
            .connect_timeout_ms
            .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_millis);
        spec.total_timeout = self
            .timeout_ms
            .map_or(DEFAULT_TOTAL_TIMEOUT, Duration::from_millis);
        spec.forward_set_cookie = self.forward_set_cookie;
        spec.websocket = self.websocket;
        spec.csrf_on_reads = self.csrf_on_reads;
        spec.max_body_bytes = self.max_body_bytes;
        spec.extra_headers = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), Secret::new(value.clone())))
            .collect();
        for reserved in std::iter::once(bff_prefix).chain(OPERATIONS_PATHS) {
            if overlaps(&self.path, reserved) {
                problems.push(ProxyConfigError::Reserved {
                    path: path(),
                    reserved: reserved.to_owned(),
                });
            }
        }
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }
}

/// Validates the `[[routes]]` section into the proxy's allowlist.
///
/// `known_providers` are the configured provider names; `bff_prefix` is the BFF's own path
/// prefix (`http.prefix`, such as `/bff`), which no route may overlap.
///
/// # Errors
/// Every problem found, each naming its route.
pub fn route_table(
    routes: &[ProxyRouteConfig],
    known_providers: &[&str],
    bff_prefix: &str,
) -> Result<RouteTable, Vec<ProxyConfigError>> {
    let mut problems = Vec::new();
    let mut valid = Vec::with_capacity(routes.len());
    for config in routes {
        match config.spec(known_providers, bff_prefix) {
            Ok(spec) => match Route::new(spec) {
                Ok(route) => valid.push(route),
                Err(e) => problems.push(ProxyConfigError::Route(e)),
            },
            Err(mut found) => problems.append(&mut found),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    RouteTable::new(valid).map_err(|e| vec![ProxyConfigError::Route(e)])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The section as a host would deserialize it (JSON here: the shape is what matters).
    fn parse(routes: &str) -> Vec<ProxyRouteConfig> {
        #[derive(Deserialize)]
        struct File {
            routes: Vec<ProxyRouteConfig>,
        }
        let file: File = serde_json::from_str(routes).unwrap();
        file.routes
    }

    fn route(path: &str) -> ProxyRouteConfig {
        ProxyRouteConfig {
            path: path.into(),
            upstream: "https://api.internal/v1".into(),
            token: "user".into(),
            methods: None,
            required_scopes: Vec::new(),
            provider: None,
            connect_timeout_ms: None,
            timeout_ms: None,
            forward_set_cookie: false,
            websocket: false,
            csrf_on_reads: true,
            headers: BTreeMap::new(),
            max_body_bytes: None,
            ca_file: None,
        }
    }

    fn errors(routes: &[ProxyRouteConfig]) -> Vec<String> {
        route_table(routes, &["main"], "/bff")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_full_entry_becomes_a_route() {
        let routes = parse(
            r#"{"routes": [{
                "path": "/api/orders", "upstream": "https://orders.internal/v1", "token": "user",
                "methods": ["GET", "POST"], "required_scopes": ["orders.read"],
                "provider": "main", "connect_timeout_ms": 250, "timeout_ms": 1500,
                "forward_set_cookie": true, "websocket": true, "headers": {"x-api-key": "k-123"}
            }, {
                "path": "/public", "upstream": "http://127.0.0.1:9000", "token": "none"
            }]}"#,
        );
        let table = route_table(&routes, &["main"], "/bff").unwrap();
        let orders = table.resolve(&Method::POST, "/api/orders/7").unwrap();
        assert_eq!(orders.url().as_str(), "https://orders.internal/v1/7");
        let r = orders.route();
        assert_eq!(r.token(), TokenPolicy::User);
        assert!(r.allows(&Method::GET) && !r.allows(&Method::DELETE));
        assert_eq!(r.provider().unwrap().as_str(), "main");
        assert_eq!(r.connect_timeout(), Duration::from_millis(250));
        assert_eq!(r.total_timeout(), Duration::from_millis(1500));
        assert!(r.forward_set_cookie());
        assert!(r.websocket());
        assert_eq!(r.extra_headers()[0].name(), "x-api-key");
        assert_eq!(r.extra_headers()[0].value().expose(), "k-123");
        let public = table.resolve(&Method::DELETE, "/public/x").unwrap();
        assert_eq!(public.route().token(), TokenPolicy::None);
        assert_eq!(public.route().total_timeout(), DEFAULT_TOTAL_TIMEOUT);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let entry = r#"{"path": "/api", "upstream": "https://a.internal", "token": "user", "tokn": "none"}"#;
        let parsed: Result<ProxyRouteConfig, _> = serde_json::from_str(entry);
        assert!(parsed.unwrap_err().to_string().contains("tokn"));
    }

    #[test]
    fn client_credentials_routes_are_accepted_and_their_provider_checked() {
        let routes = parse(
            r#"{"routes": [
                {"path": "/api/reports", "upstream": "https://r.internal", "token": "client",
                 "required_scopes": ["reports.read"]},
                {"path": "/api/mixed", "upstream": "https://m.internal", "token": "user_or_client",
                 "provider": "main"}
            ]}"#,
        );
        let table = route_table(&routes, &["main"], "/bff").unwrap();
        let reports = table.resolve(&Method::GET, "/api/reports/1").unwrap();
        assert_eq!(reports.route().token(), TokenPolicy::Client);
        assert!(reports.route().provider().is_none());
        let mixed = table.resolve(&Method::GET, "/api/mixed").unwrap();
        assert_eq!(mixed.route().token(), TokenPolicy::UserOrClient);
        assert_eq!(mixed.route().provider().unwrap().as_str(), "main");

        let mut client = route("/api/reports");
        client.token = "client".into();
        client.provider = Some("nobody".into());
        assert_eq!(
            errors(&[client]),
            vec![r#"route "/api/reports": provider "nobody" is not configured"#]
        );
    }

    #[test]
    fn every_problem_is_reported_naming_its_route() {
        let mut typo = route("/api/typo");
        typo.token = "users".into();
        let mut socket = route("/api/live");
        socket.websocket = true;
        socket.methods = Some(vec!["POST".into()]);
        let mut methods = route("/api/m");
        methods.methods = Some(vec!["GET".into(), "GE T".into()]);
        let mut provider = route("/api/p");
        provider.provider = Some("nobody".into());
        let reserved = route("/bff/api");
        let health = route("/healthz");
        let mut bad_upstream = route("/api/u");
        bad_upstream.upstream = "https://user:pw@api.internal".into();
        let mut open_reads = route("/api/open");
        open_reads.csrf_on_reads = false;
        let all = errors(&[
            typo,
            socket,
            methods,
            provider,
            reserved,
            health,
            bad_upstream,
            open_reads,
        ]);
        let expected = [
            r#"route "/api/typo": token must be one of"#,
            r#"route "/api/live": websocket needs the GET method"#,
            r#"route "/api/m": method "GE T""#,
            r#"route "/api/p": provider "nobody" is not configured"#,
            r#"route "/bff/api": the path overlaps "/bff""#,
            r#"route "/healthz": the path overlaps "/healthz""#,
            r#"route "/api/u": the upstream URL must not contain a user name"#,
            r#"route "/api/open": csrf_on_reads = false needs token = "none""#,
        ];
        assert_eq!(all.len(), expected.len(), "{all:#?}");
        for (line, start) in all.iter().zip(expected) {
            assert!(
                line.starts_with(start),
                "{line:?} should start with {start:?}"
            );
        }
    }

    #[test]
    fn a_prefix_that_only_shares_characters_with_a_reserved_path_is_fine() {
        let table = route_table(&[route("/bffx"), route("/healthzy")], &["main"], "/bff");
        assert!(table.is_ok());
        assert!(!errors(&[route("/bff")]).is_empty());
    }

    #[test]
    fn duplicate_prefixes_are_refused() {
        let all = errors(&[route("/api"), route("/api")]);
        assert_eq!(all, vec![r#"route "/api": two routes have this prefix"#]);
    }

    #[test]
    fn header_values_never_show_in_debug_or_errors() {
        let mut r = route("/api");
        r.headers.insert("x-api-key".into(), "s3cret value ".into());
        assert!(!format!("{r:?}").contains("s3cret"));
        let all = errors(&[r]);
        assert_eq!(all.len(), 1);
        assert!(!all[0].contains("s3cret"), "{}", all[0]);
    }
}
