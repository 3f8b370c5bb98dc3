//! Which browser requests the API proxy may forward, to which upstream, with which credential.
//!
//! The browser calls `/api/...` on the BFF and the BFF calls an upstream API with a token the
//! browser never sees. The browser-based-apps BCP (section 6.1) requires an explicit allowlist of
//! destinations and strict validation of dynamic routes: otherwise a crafted path walks out of the
//! allowed prefix and the BFF attaches the user's token to a request the route never meant to
//! allow. So a [`RouteTable`] of validated [`Route`]s decides, and it decides on the *normalized*
//! path only: percent-encoded unreserved characters are decoded (`%61` is `a`, `%2e` is `.`), the
//! hex of every other escape is upper-cased, and the route whose prefix is the longest match on a
//! segment boundary wins (`/api/orders` matches `/api/orders` and `/api/orders/1`, never
//! `/api/ordersX`). The forwarded URL is the upstream base plus the normalized remainder after the
//! prefix, plus the query exactly as received; the query never takes part in matching.
//!
//! A malformed or hostile target is refused as [`ProxyRefusal::PathNotAllowed`] (code
//! `route_not_allowed`, reason the defect's own code) with a [`TargetDefect`]. Each defect
//! exists because some parser between here and the upstream would read the target differently
//! from this rule:
//! - `target_too_long`: bounds the work done on hostile input.
//! - `not_origin_form`: an absolute URL (`http://host/...`), `*` or `host:port` names a host,
//!   and only the route picks the host.
//! - `non_ascii`: raw non-ASCII bytes are decoded differently by different servers.
//! - `control_character`: NUL, CR, LF and other controls (raw, or `%00`-`%1F`, `%7F` in the path)
//!   truncate strings and split request lines.
//! - `invalid_character`: bytes outside the URI grammar (space, `"`, `<`, `>`, `{`, ...) in the
//!   path, or ones the URL library would re-encode in the query (space, `"`, `<`, `>`, `'`).
//! - `fragment`: browsers never send a `#`; a target carrying one is crafted, so it is refused
//!   rather than dropped, and it never takes part in matching.
//! - `invalid_percent_encoding`: a `%` without two hex digits is repaired differently by each
//!   decoder.
//! - `double_encoding`: `%25` followed by hex (`%252e`) turns into `%2e`, then `.`, at a second
//!   decoder.
//! - `invalid_utf8`: escapes that are not UTF-8, such as the overlong `%C0%AE`, which lenient
//!   decoders read as `.`.
//! - `encoded_separator`: `%2F` and `%5C` become `/` and `\` upstream, adding segments this rule
//!   never saw.
//! - `backslash`: many servers and the URL standard read `\` as `/`.
//! - `path_parameter`: `;` (raw or `%3B`) starts path parameters that servlet-style servers strip
//!   (`/api/orders/..;/admin`).
//! - `at_sign`: `@` reads as userinfo to naive URL builders (`/api@evil.example`).
//! - `empty_segment`: `//` reads as a host (`//evil.example/...`) and is collapsed by some
//!   servers, so paths would compare differently.
//! - `dot_segment`: every segment made only of dots (`.`, `..`, `...`, also as `%2e`) is refused,
//!   not only the ones that climb out of the prefix: simpler, and no legitimate API needs them.
//!   Dots inside a segment (`a..b`, `..a`) are fine.
//! - `escapes_upstream` and `not_preserved`: belt and braces; the URL built for the upstream must
//!   stay under its base path and say exactly what was decided.
//!
//! A well-formed target is then refused as `no_route` when no prefix matches and as
//! `method_not_allowed` when the route does not allow the method; after resolving, the credential
//! checks [`check_scopes`] (`insufficient_scope`) and [`check_provider`]
//! (`provider_not_connected`) are separate pure functions, because they need the session.
//!
//! Routes themselves are validated when built ([`Route::new`]), with errors meant for one line of
//! a configuration report.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use url::{Position, Url};

use crate::ids::ProviderId;
use crate::secret::Secret;

/// The longest request target (path and query) considered at all.
pub const MAX_TARGET_LEN: usize = 8192;
/// The longest route prefix or upstream path accepted in configuration.
pub const MAX_ROUTE_PATH_LEN: usize = 512;
/// A connect timeout for routes that do not set one.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A total timeout for routes that do not set one.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest method name accepted.
const MAX_METHOD_LEN: usize = 32;

// ---------------------------------------------------------------------------------------------
// Method and token policy
// ---------------------------------------------------------------------------------------------

/// An HTTP request method. Methods are case-sensitive: `get` is not `GET`.
///
/// Any RFC 9110 token parses, so a request with an unusual method still reaches the route lookup
/// and is refused as `method_not_allowed` (with the route's allowed methods) rather than as junk.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Method(Cow<'static, str>);

/// The value is not an HTTP method token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an HTTP method is 1 to 32 token characters, such as GET")]
pub struct InvalidMethod;

impl Method {
    /// `GET`.
    pub const GET: Method = Method(Cow::Borrowed("GET"));
    /// `HEAD`.
    pub const HEAD: Method = Method(Cow::Borrowed("HEAD"));
    /// `POST`.
    pub const POST: Method = Method(Cow::Borrowed("POST"));
    /// `PUT`.
    pub const PUT: Method = Method(Cow::Borrowed("PUT"));
    /// `PATCH`.
    pub const PATCH: Method = Method(Cow::Borrowed("PATCH"));
    /// `DELETE`.
    pub const DELETE: Method = Method(Cow::Borrowed("DELETE"));
    /// `OPTIONS`.
    pub const OPTIONS: Method = Method(Cow::Borrowed("OPTIONS"));

    /// Parses a method name as it appears on the request line.
    ///
    /// # Errors
    /// [`InvalidMethod`] unless the value is 1 to 32 RFC 9110 token characters.
    pub fn parse(value: &str) -> Result<Self, InvalidMethod> {
        if !value.is_empty() && value.len() <= MAX_METHOD_LEN && value.bytes().all(is_tchar) {
            Ok(Self(Cow::Owned(value.to_owned())))
        } else {
            Err(InvalidMethod)
        }
    }

    /// The method name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Methods a route may never allow: `CONNECT` opens a tunnel, `TRACE` echoes the request
/// (cookies and the injected token included) back to the browser.
const NEVER_PROXIED: [&str; 2] = ["CONNECT", "TRACE"];

/// Which credential the BFF attaches to a forwarded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPolicy {
    /// The signed-in user's access token; requests without a session are refused.
    User,
    /// The BFF's own client-credentials token, whoever is signed in.
    Client,
    /// The user's access token when there is a session, else the client's.
    UserOrClient,
    /// No credential: a public upstream.
    None,
}

/// The value is not a token policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token must be one of user, client, user_or_client, none")]
pub struct InvalidTokenPolicy;

impl TokenPolicy {
    /// Parses the configuration name (`user`, `client`, `user_or_client`, `none`).
    ///
    /// # Errors
    /// [`InvalidTokenPolicy`] for any other value.
    pub fn parse(value: &str) -> Result<Self, InvalidTokenPolicy> {
        match value {
            "user" => Ok(Self::User),
            "client" => Ok(Self::Client),
            "user_or_client" => Ok(Self::UserOrClient),
            "none" => Ok(Self::None),
            _ => Err(InvalidTokenPolicy),
        }
    }

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
            Self::UserOrClient => "user_or_client",
            Self::None => "none",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/// What configuration says about one route, before validation. [`Route::new`] checks it.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    /// The local path prefix, such as `/api/orders`: no trailing `/`, no escapes, no dot or
    /// empty segments.
    pub prefix: String,
    /// The upstream base URL, such as `https://orders.internal/v1`: absolute `http`/`https`,
    /// no userinfo, query or fragment, and a path under the same rules as `prefix` (or none).
    pub upstream: String,
    /// The credential to attach.
    pub token: TokenPolicy,
    /// The methods the route allows; at least one.
    pub methods: Vec<Method>,
    /// Scopes the access token must have been granted.
    pub required_scopes: Vec<String>,
    /// The provider whose token to use; `None` means the session's own provider.
    pub provider: Option<ProviderId>,
    /// How long to wait for the upstream connection.
    pub connect_timeout: Duration,
    /// How long the whole upstream exchange may take.
    pub total_timeout: Duration,
    /// Whether upstream `Set-Cookie` headers reach the browser.
    pub forward_set_cookie: bool,
    /// Whether WebSocket upgrades are proxied.
    pub websocket: bool,
    /// Whether `GET` and `HEAD` need the CSRF header like every other method (the default).
    /// `false`, for a `none` route only, lets a plain link, `<img>` or `<script>` load the
    /// route; other methods are checked as always.
    pub csrf_on_reads: bool,
    /// Headers added to every upstream request. Values may be API keys, so they are secrets.
    pub extra_headers: Vec<(String, Secret)>,
    /// The largest request body the route forwards, in bytes; `None` for no limit. A larger
    /// body is refused (`413`) before, or as soon as, it passes the limit.
    pub max_body_bytes: Option<u64>,
}

impl RouteSpec {
    /// A spec with the usual values: the user's token; `GET`, `HEAD`, `POST`, `PUT`, `PATCH` and
    /// `DELETE`; no required scopes; the session's provider; [`DEFAULT_CONNECT_TIMEOUT`] and
    /// [`DEFAULT_TOTAL_TIMEOUT`]; no `Set-Cookie`, no WebSocket, no extra headers.
    pub fn new(prefix: impl Into<String>, upstream: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            upstream: upstream.into(),
            token: TokenPolicy::User,
            methods: vec![
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ],
            required_scopes: Vec::new(),
            provider: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            forward_set_cookie: false,
            websocket: false,
            csrf_on_reads: true,
            extra_headers: Vec::new(),
            max_body_bytes: None,
        }
    }
}

/// A header the BFF adds to upstream requests. Its value is a [`Secret`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraHeader {
    name: String,
    value: Secret,
}

impl ExtraHeader {
    /// The header name, as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header value.
    pub fn value(&self) -> &Secret {
        &self.value
    }
}

/// A validated route of the API proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    prefix: String,
    upstream: Url,
    /// The upstream path without a trailing `/`: empty for an upstream at its root.
    upstream_base_path: String,
    token: TokenPolicy,
    methods: BTreeSet<Method>,
    required_scopes: BTreeSet<String>,
    provider: Option<ProviderId>,
    connect_timeout: Duration,
    total_timeout: Duration,
    forward_set_cookie: bool,
    websocket: bool,
    csrf_on_reads: bool,
    extra_headers: Vec<ExtraHeader>,
    max_body_bytes: Option<u64>,
}

/// Which rule a route prefix or upstream path breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutePathProblem {
    /// Longer than [`MAX_ROUTE_PATH_LEN`].
    TooLong,
    /// Ends with `/`, so `/a/` and `/a` would be two spellings of one route.
    TrailingSlash,
    /// Has `//`.
    EmptySegment,
    /// Has a segment made only of dots.
    DotSegment,
    /// Has a `%` escape; write the character itself.
    Encoded,
    /// Has a character other than letters, digits, `-`, `.`, `_`, `~` and `/`.
    Character,
}

impl fmt::Display for RoutePathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLong => "is longer than 512 characters",
            Self::TrailingSlash => "must not end with '/'",
            Self::EmptySegment => "must not contain '//'",
            Self::DotSegment => "must not contain '.' or '..' segments",
            Self::Encoded => "must not contain %-escapes",
            Self::Character => {
                "may contain only letters, digits, '-', '.', '_', '~' and '/' separators"
            }
        })
    }
}

/// Why a route or a route table is invalid. Each message fits one line of a configuration
/// report and never shows a header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The prefix does not start with `/`.
    #[error("route {prefix:?}: the prefix must start with '/'")]
    PrefixNotAbsolute {
        /// The prefix as configured.
        prefix: String,
    },
    /// The prefix is `/`, which would send every path to one upstream.
    #[error("route \"/\": the prefix must name at least one segment, such as /api")]
    PrefixIsRoot,
    /// The prefix breaks a path rule.
    #[error("route {prefix:?}: the prefix {problem}")]
    Prefix {
        /// The prefix as configured.
        prefix: String,
        /// The rule it breaks.
        problem: RoutePathProblem,
    },
    /// The upstream has a character that URL parsers drop or rewrite (space, controls, `\`,
    /// non-ASCII).
    #[error(
        "route {prefix:?}: the upstream URL may contain only visible ASCII characters, no '\\'"
    )]
    UpstreamCharacter {
        /// The route's prefix.
        prefix: String,
    },
    /// The upstream does not parse as an absolute URL.
    #[error("route {prefix:?}: the upstream is not an absolute URL ({reason})")]
    UpstreamUnparsable {
        /// The route's prefix.
        prefix: String,
        /// What the URL parser said.
        reason: String,
    },
    /// The upstream scheme is neither `http` nor `https`.
    #[error("route {prefix:?}: the upstream URL must use http or https")]
    UpstreamScheme {
        /// The route's prefix.
        prefix: String,
    },
    /// The upstream has a user name or password.
    #[error("route {prefix:?}: the upstream URL must not contain a user name or password")]
    UpstreamUserinfo {
        /// The route's prefix.
        prefix: String,
    },
    /// The upstream has a query, even an empty one.
    #[error("route {prefix:?}: the upstream URL must not have a query ('?')")]
    UpstreamQuery {
        /// The route's prefix.
        prefix: String,
    },
    /// The upstream has a fragment, even an empty one.
    #[error("route {prefix:?}: the upstream URL must not have a fragment ('#')")]
    UpstreamFragment {
        /// The route's prefix.
        prefix: String,
    },
    /// The upstream path breaks a path rule.
    #[error("route {prefix:?}: the upstream path {problem}")]
    UpstreamPath {
        /// The route's prefix.
        prefix: String,
        /// The rule it breaks.
        problem: RoutePathProblem,
    },
    /// No method is allowed.
    #[error("route {prefix:?}: allow at least one method")]
    NoMethods {
        /// The route's prefix.
        prefix: String,
    },
    /// A method is not written in upper case, so it would never match a browser's request.
    #[error("route {prefix:?}: method {method:?} must be upper case, such as GET")]
    MethodNotUpperCase {
        /// The route's prefix.
        prefix: String,
        /// The method as configured.
        method: String,
    },
    /// `CONNECT` or `TRACE`.
    #[error("route {prefix:?}: method {method} is never proxied")]
    MethodNeverProxied {
        /// The route's prefix.
        prefix: String,
        /// The method.
        method: String,
    },
    /// The connect timeout is zero.
    #[error("route {prefix:?}: the connect timeout must be greater than zero")]
    ConnectTimeoutZero {
        /// The route's prefix.
        prefix: String,
    },
    /// The total timeout is zero.
    #[error("route {prefix:?}: the total timeout must be greater than zero")]
    TotalTimeoutZero {
        /// The route's prefix.
        prefix: String,
    },
    /// The connect timeout exceeds the total timeout.
    #[error("route {prefix:?}: the connect timeout must not exceed the total timeout")]
    ConnectTimeoutExceedsTotal {
        /// The route's prefix.
        prefix: String,
    },
    /// A required scope is not an RFC 6749 scope token.
    #[error("route {prefix:?}: required scope {scope:?} is not a valid scope token")]
    InvalidScope {
        /// The route's prefix.
        prefix: String,
        /// The scope as configured.
        scope: String,
    },
    /// A route without a credential lists required scopes or a provider.
    #[error("route {prefix:?}: required scopes and provider need a token other than none")]
    CredentialRulesWithoutToken {
        /// The route's prefix.
        prefix: String,
    },
    /// WebSocket upgrades are enabled but `GET`, the upgrade's method, is not allowed.
    #[error("route {prefix:?}: websocket needs the GET method")]
    WebsocketWithoutGet {
        /// The route's prefix.
        prefix: String,
    },
    /// Reads without the CSRF header on a route that sends a credential: a cross-site page
    /// could then make the BFF call the API with the user's or its own token.
    #[error("route {prefix:?}: csrf_on_reads = false needs token = \"none\"")]
    ReadsWithoutCsrfNeedNoToken {
        /// The route's prefix.
        prefix: String,
    },
    /// An extra header name is not an RFC 9110 token.
    #[error("route {prefix:?}: extra header name {name:?} is not a valid header name")]
    ExtraHeaderName {
        /// The route's prefix.
        prefix: String,
        /// The name as configured.
        name: String,
    },
    /// An extra header is hop-by-hop, a credential or framing header, or `Host`.
    #[error("route {prefix:?}: extra header {name:?} is managed by the proxy and cannot be set")]
    ExtraHeaderForbidden {
        /// The route's prefix.
        prefix: String,
        /// The name as configured.
        name: String,
    },
    /// An extra header value is empty, has surrounding spaces, or has characters other than
    /// visible ASCII and space.
    #[error(
        "route {prefix:?}: extra header {name:?} needs a value of visible ASCII characters and inner spaces"
    )]
    ExtraHeaderValue {
        /// The route's prefix.
        prefix: String,
        /// The header name; the value is never shown.
        name: String,
    },
    /// An extra header name appears twice (names compare case-insensitively).
    #[error("route {prefix:?}: extra header {name:?} is set twice")]
    ExtraHeaderDuplicate {
        /// The route's prefix.
        prefix: String,
        /// The name as configured.
        name: String,
    },
    /// Two routes share a prefix.
    #[error("route {prefix:?}: two routes have this prefix")]
    DuplicatePrefix {
        /// The shared prefix.
        prefix: String,
    },
}

/// Header names an extra header may not set: hop-by-hop headers (RFC 9110 section 7.6.1 and the
/// legacy ones), the credential the proxy injects, the browser's cookies, message framing, and
/// the upstream's host.
const FORBIDDEN_EXTRA_HEADERS: [&str; 14] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "trailers",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "authorization",
    "cookie",
    "host",
    "content-length",
];

impl Route {
    /// Validates a spec.
    ///
    /// # Errors
    /// A [`RouteError`] naming the first rule the spec breaks.
    pub fn new(spec: RouteSpec) -> Result<Self, RouteError> {
        let prefix = spec.prefix;
        validate_prefix(&prefix)?;
        let (upstream, upstream_base_path) = validate_upstream(&prefix, &spec.upstream)?;
        let methods = validate_methods(&prefix, spec.methods)?;
        validate_timeouts(&prefix, spec.connect_timeout, spec.total_timeout)?;
        let required_scopes = validate_scopes(&prefix, spec.required_scopes)?;
        if spec.token == TokenPolicy::None
            && (!required_scopes.is_empty() || spec.provider.is_some())
        {
            return Err(RouteError::CredentialRulesWithoutToken { prefix });
        }
        if spec.websocket && !methods.contains(&Method::GET) {
            return Err(RouteError::WebsocketWithoutGet { prefix });
        }
        if !spec.csrf_on_reads && spec.token != TokenPolicy::None {
            return Err(RouteError::ReadsWithoutCsrfNeedNoToken { prefix });
        }
        let extra_headers = validate_extra_headers(&prefix, spec.extra_headers)?;
        Ok(Self {
            prefix,
            upstream,
            upstream_base_path,
            token: spec.token,
            methods,
            required_scopes,
            provider: spec.provider,
            connect_timeout: spec.connect_timeout,
            total_timeout: spec.total_timeout,
            forward_set_cookie: spec.forward_set_cookie,
            websocket: spec.websocket,
            csrf_on_reads: spec.csrf_on_reads,
            extra_headers,
            max_body_bytes: spec.max_body_bytes,
        })
    }

    /// The local path prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The upstream base URL.
    pub fn upstream(&self) -> &Url {
        &self.upstream
    }

    /// The credential to attach.
    pub fn token(&self) -> TokenPolicy {
        self.token
    }

    /// The allowed methods.
    pub fn methods(&self) -> &BTreeSet<Method> {
        &self.methods
    }

    /// Whether the route allows `method`.
    pub fn allows(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }

    /// Scopes the access token must have been granted.
    pub fn required_scopes(&self) -> &BTreeSet<String> {
        &self.required_scopes
    }

    /// The provider whose token to use; `None` means the session's own provider.
    pub fn provider(&self) -> Option<&ProviderId> {
        self.provider.as_ref()
    }

    /// How long to wait for the upstream connection.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long the whole upstream exchange may take.
    pub fn total_timeout(&self) -> Duration {
        self.total_timeout
    }

    /// Whether upstream `Set-Cookie` headers reach the browser.
    pub fn forward_set_cookie(&self) -> bool {
        self.forward_set_cookie
    }

    /// Whether WebSocket upgrades are proxied.
    pub fn websocket(&self) -> bool {
        self.websocket
    }

    /// Whether `GET` and `HEAD` need the CSRF header (always, but on a `none` route that
    /// lets plain links and `<img>`s load it).
    pub fn csrf_on_reads(&self) -> bool {
        self.csrf_on_reads
    }

    /// Headers added to every upstream request.
    pub fn extra_headers(&self) -> &[ExtraHeader] {
        &self.extra_headers
    }

    /// The largest request body forwarded, in bytes; `None` for no limit.
    pub fn max_body_bytes(&self) -> Option<u64> {
        self.max_body_bytes
    }

    /// The remainder of `path` after this route's prefix, when the prefix matches on a segment
    /// boundary: `""` for the prefix itself, `"/..."` below it.
    fn remainder<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }
}

fn validate_prefix(prefix: &str) -> Result<(), RouteError> {
    if !prefix.starts_with('/') {
        return Err(RouteError::PrefixNotAbsolute {
            prefix: prefix.to_owned(),
        });
    }
    if prefix == "/" {
        return Err(RouteError::PrefixIsRoot);
    }
    check_route_path(prefix).map_err(|problem| RouteError::Prefix {
        prefix: prefix.to_owned(),
        problem,
    })
}

/// The rules shared by prefixes and upstream paths; `path` starts with `/` and is not `/`.
fn check_route_path(path: &str) -> Result<(), RoutePathProblem> {
    if path.len() > MAX_ROUTE_PATH_LEN {
        return Err(RoutePathProblem::TooLong);
    }
    if path.contains('%') {
        return Err(RoutePathProblem::Encoded);
    }
    if !path.bytes().all(|b| b == b'/' || is_unreserved(b)) {
        return Err(RoutePathProblem::Character);
    }
    if path.ends_with('/') {
        return Err(RoutePathProblem::TrailingSlash);
    }
    for segment in path.split('/').skip(1) {
        if segment.is_empty() {
            return Err(RoutePathProblem::EmptySegment);
        }
        if is_dot_segment(segment) {
            return Err(RoutePathProblem::DotSegment);
        }
    }
    Ok(())
}

/// Parses the upstream and returns it with its base path (no trailing `/`, empty at the root).
fn validate_upstream(prefix: &str, raw: &str) -> Result<(Url, String), RouteError> {
    let owned_prefix = || prefix.to_owned();
    // The URL parser silently drops tabs and newlines, trims spaces and reads `\` as `/`; refuse
    // them so that what is configured is what is called.
    if !raw.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return Err(RouteError::UpstreamCharacter {
            prefix: owned_prefix(),
        });
    }
    let url = Url::parse(raw).map_err(|e| RouteError::UpstreamUnparsable {
        prefix: owned_prefix(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RouteError::UpstreamScheme {
            prefix: owned_prefix(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RouteError::UpstreamUserinfo {
            prefix: owned_prefix(),
        });
    }
    if url.query().is_some() {
        return Err(RouteError::UpstreamQuery {
            prefix: owned_prefix(),
        });
    }
    if url.fragment().is_some() {
        return Err(RouteError::UpstreamFragment {
            prefix: owned_prefix(),
        });
    }
    // The parser already removed dot segments, so the rules are checked on the path as written:
    // everything after the authority (no query or fragment is left at this point).
    let upstream_path_problem = |problem| RouteError::UpstreamPath {
        prefix: owned_prefix(),
        problem,
    };
    // `https:host` and `https:///host` parse too; insist on the plain `scheme://host` form.
    let after_scheme = match raw.split_once("://") {
        Some((_, rest)) if !rest.is_empty() && !rest.starts_with('/') => rest,
        _ => {
            return Err(RouteError::UpstreamUnparsable {
                prefix: owned_prefix(),
                reason: "write it as scheme://host[:port][/path]".to_owned(),
            });
        }
    };
    let written_path = after_scheme.find('/').map_or("", |at| &after_scheme[at..]);
    let base_path = match written_path {
        "" | "/" => String::new(),
        path => {
            check_route_path(path).map_err(upstream_path_problem)?;
            path.to_owned()
        }
    };
    let expected_path = if base_path.is_empty() {
        "/"
    } else {
        &base_path
    };
    if url.path() != expected_path {
        // The parser read the path differently from the text; refuse rather than guess.
        return Err(upstream_path_problem(RoutePathProblem::Character));
    }
    Ok((url, base_path))
}

fn validate_methods(prefix: &str, methods: Vec<Method>) -> Result<BTreeSet<Method>, RouteError> {
    if methods.is_empty() {
        return Err(RouteError::NoMethods {
            prefix: prefix.to_owned(),
        });
    }
    for method in &methods {
        let name = method.as_str();
        if !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
        {
            return Err(RouteError::MethodNotUpperCase {
                prefix: prefix.to_owned(),
                method: name.to_owned(),
            });
        }
        if NEVER_PROXIED.contains(&name) {
            return Err(RouteError::MethodNeverProxied {
                prefix: prefix.to_owned(),
                method: name.to_owned(),
            });
        }
    }
    Ok(methods.into_iter().collect())
}

fn validate_timeouts(prefix: &str, connect: Duration, total: Duration) -> Result<(), RouteError> {
    let prefix = prefix.to_owned();
    if connect.is_zero() {
        Err(RouteError::ConnectTimeoutZero { prefix })
    } else if total.is_zero() {
        Err(RouteError::TotalTimeoutZero { prefix })
    } else if connect > total {
        Err(RouteError::ConnectTimeoutExceedsTotal { prefix })
    } else {
        Ok(())
    }
}

fn validate_scopes(prefix: &str, scopes: Vec<String>) -> Result<BTreeSet<String>, RouteError> {
    // RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
    let is_scope_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    };
    if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
        return Err(RouteError::InvalidScope {
            prefix: prefix.to_owned(),
            scope: bad.clone(),
        });
    }
    Ok(scopes.into_iter().collect())
}

fn validate_extra_headers(
    prefix: &str,
    headers: Vec<(String, Secret)>,
) -> Result<Vec<ExtraHeader>, RouteError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(RouteError::ExtraHeaderName {
                prefix: prefix.to_owned(),
                name,
            });
        }
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_EXTRA_HEADERS.contains(&lower.as_str()) {
            return Err(RouteError::ExtraHeaderForbidden {
                prefix: prefix.to_owned(),
                name,
            });
        }
        let text = value.expose();
        let value_ok = !text.is_empty()
            && !text.starts_with(' ')
            && !text.ends_with(' ')
            && text.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if !value_ok {
            return Err(RouteError::ExtraHeaderValue {
                prefix: prefix.to_owned(),
                name,
            });
        }
        if !seen.insert(lower) {
            return Err(RouteError::ExtraHeaderDuplicate {
                prefix: prefix.to_owned(),
                name,
            });
        }
        out.push(ExtraHeader { name, value });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The table and its decision
// ---------------------------------------------------------------------------------------------

/// The proxy's allowlist: routes by prefix, the longest matching prefix winning.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    /// Longest prefix first, so the first match is the longest.
    routes: Vec<Route>,
}

/// Where an allowed request goes and what credential it needs.
#[derive(Clone, Debug)]
pub struct ProxyTarget<'t> {
    route: &'t Route,
    url: Url,
}

impl ProxyTarget<'_> {
    /// The matched route (timeouts, headers, flags).
    pub fn route(&self) -> &Route {
        self.route
    }

    /// The upstream URL to call.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The credential to attach.
    pub fn token(&self) -> TokenPolicy {
        self.route.token
    }

    /// Scopes the access token must have been granted; see [`check_scopes`].
    pub fn required_scopes(&self) -> &BTreeSet<String> {
        &self.route.required_scopes
    }

    /// The provider whose token to use; `None` means the session's own provider.
    pub fn provider(&self) -> Option<&ProviderId> {
        self.route.provider.as_ref()
    }
}

/// What is wrong with a request target. Each has a stable [`code`](TargetDefect::code); the
/// module documentation says why each is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetDefect {
    /// Longer than [`MAX_TARGET_LEN`].
    #[error("the request target is too long")]
    TooLong,
    /// Does not start with `/` (an absolute URL, `*`, `host:port`, empty).
    #[error("the request target must be a path starting with '/'")]
    NotOriginForm,
    /// A raw byte outside ASCII.
    #[error("the request target has non-ASCII bytes")]
    NonAscii,
    /// A raw control byte anywhere, or `%00`-`%1F`, `%7F` in the path.
    #[error("the request target has control characters")]
    ControlCharacter,
    /// A raw character outside the URI grammar, or one the query cannot carry unchanged.
    #[error("the request target has a character that must be percent-encoded")]
    InvalidCharacter,
    /// A `#`.
    #[error("the request target has a fragment")]
    Fragment,
    /// A `%` not followed by two hex digits in the path.
    #[error("the path has an invalid percent-encoding")]
    InvalidPercentEncoding,
    /// `%25` followed by two hex digits in the (normalized) path.
    #[error("the path is percent-encoded twice")]
    DoubleEncoding,
    /// Escapes that decode to bytes that are not UTF-8.
    #[error("the path's escapes do not decode to UTF-8")]
    InvalidUtf8,
    /// `%2F` or `%5C` in the path.
    #[error("the path has an encoded '/' or '\\'")]
    EncodedSeparator,
    /// A raw `\` in the path.
    #[error("the path has a backslash")]
    Backslash,
    /// `;` or `%3B` in the path.
    #[error("the path has a ';' parameter")]
    PathParameter,
    /// `@` in the path.
    #[error("the path has an '@'")]
    AtSign,
    /// `//` in the path.
    #[error("the path has an empty segment")]
    EmptySegment,
    /// A segment made only of dots.
    #[error("the path has a dot segment")]
    DotSegment,
    /// The URL built for the upstream is not under its base.
    #[error("the path leaves the upstream's base path")]
    EscapesUpstream,
    /// The URL library would rewrite the path or query.
    #[error("the request target cannot be forwarded unchanged")]
    NotPreserved,
}

impl TargetDefect {
    /// The stable code, for logs and problem details.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooLong => "target_too_long",
            Self::NotOriginForm => "not_origin_form",
            Self::NonAscii => "non_ascii",
            Self::ControlCharacter => "control_character",
            Self::InvalidCharacter => "invalid_character",
            Self::Fragment => "fragment",
            Self::InvalidPercentEncoding => "invalid_percent_encoding",
            Self::DoubleEncoding => "double_encoding",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::EncodedSeparator => "encoded_separator",
            Self::Backslash => "backslash",
            Self::PathParameter => "path_parameter",
            Self::AtSign => "at_sign",
            Self::EmptySegment => "empty_segment",
            Self::DotSegment => "dot_segment",
            Self::EscapesUpstream => "escapes_upstream",
            Self::NotPreserved => "not_preserved",
        }
    }
}

/// Why the proxy will not forward a request. [`code`](ProxyRefusal::code) is stable; the HTTP
/// layer maps each variant to a status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyRefusal {
    /// The target is malformed or hostile; the defect says which rule it breaks.
    #[error("{0}")]
    PathNotAllowed(TargetDefect),
    /// No route's prefix matches the path.
    #[error("no API route for this path")]
    NoRoute,
    /// The route does not allow the method.
    #[error("the API route does not allow this method")]
    MethodNotAllowed {
        /// The route's methods, for an `Allow` header.
        allowed: Vec<Method>,
    },
    /// The access token lacks a scope the route requires.
    #[error("the access token lacks a scope this API route requires")]
    InsufficientScope {
        /// The required scopes that were not granted.
        missing: Vec<String>,
    },
    /// The route needs a token from a provider the session neither signed in with nor
    /// connected.
    #[error("this API route needs a provider the session has not connected")]
    ProviderNotConnected {
        /// The provider the route needs.
        required: ProviderId,
    },
}

impl ProxyRefusal {
    /// The stable code: `route_not_allowed` for every refusal of the allowlist itself (the
    /// contract's one code for "this request may not go upstream"; [`reason`](Self::reason)
    /// says which rule), `insufficient_scope` or `provider_not_connected`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PathNotAllowed(_) | Self::NoRoute | Self::MethodNotAllowed { .. } => {
                "route_not_allowed"
            }
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::ProviderNotConnected { .. } => "provider_not_connected",
        }
    }

    /// Which allowlist rule refused a `route_not_allowed`: the target's defect
    /// ([`TargetDefect::code`]), `no_route` or `method_not_allowed`. `None` for the other codes,
    /// which need no further reason.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::PathNotAllowed(defect) => Some(defect.code()),
            Self::NoRoute => Some("no_route"),
            Self::MethodNotAllowed { .. } => Some("method_not_allowed"),
            Self::InsufficientScope { .. } | Self::ProviderNotConnected { .. } => None,
        }
    }
}

impl From<TargetDefect> for ProxyRefusal {
    fn from(defect: TargetDefect) -> Self {
        Self::PathNotAllowed(defect)
    }
}

impl RouteTable {
    /// Builds the table.
    ///
    /// # Errors
    /// [`RouteError::DuplicatePrefix`] when two routes share a prefix.
    pub fn new(mut routes: Vec<Route>) -> Result<Self, RouteError> {
        // Longest first; equal lengths by prefix so duplicates end up next to each other.
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then_with(|| a.prefix.cmp(&b.prefix))
        });
        if let Some(pair) = routes.windows(2).find(|w| w[0].prefix == w[1].prefix) {
            return Err(RouteError::DuplicatePrefix {
                prefix: pair[0].prefix.clone(),
            });
        }
        Ok(Self { routes })
    }

    /// The routes, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Decides whether `method` on `raw_target` (path and optional query, as received) may be
    /// forwarded, and where to.
    ///
    /// # Errors
    /// [`ProxyRefusal::PathNotAllowed`] for a malformed or hostile target,
    /// [`ProxyRefusal::NoRoute`] when no prefix matches, [`ProxyRefusal::MethodNotAllowed`] when
    /// the matched route does not allow the method.
    pub fn resolve(
        &self,
        method: &Method,
        raw_target: &str,
    ) -> Result<ProxyTarget<'_>, ProxyRefusal> {
        let target = RequestTarget::parse(raw_target)?;
        let (route, remainder) = self
            .routes
            .iter()
            .find_map(|route| route.remainder(&target.path).map(|rest| (route, rest)))
            .ok_or(ProxyRefusal::NoRoute)?;
        if !route.allows(method) {
            return Err(ProxyRefusal::MethodNotAllowed {
                allowed: route.methods.iter().cloned().collect(),
            });
        }
        let url = forward_url(
            &route.upstream,
            &route.upstream_base_path,
            remainder,
            target.query,
        )?;
        Ok(ProxyTarget { route, url })
    }
}

/// Checks the access token's granted `scope` string (space separated) against the route.
///
/// `None` means the provider did not say; it counts as no scopes, so a route that requires any
/// is refused. A caller that knows the granted scopes equal the requested ones (RFC 6749
/// section 5.1) passes those instead.
///
/// # Errors
/// [`ProxyRefusal::InsufficientScope`] listing the required scopes not granted.
pub fn check_scopes(route: &Route, granted_scope: Option<&str>) -> Result<(), ProxyRefusal> {
    // Every proxied `user` request asks this: the granted scopes are searched in place (a
    // token carries a handful), with no set built, and a route requiring none asks nothing.
    if route.required_scopes.is_empty() {
        return Ok(());
    }
    let granted = granted_scope.unwrap_or("");
    let missing: Vec<String> = route
        .required_scopes
        .iter()
        .filter(|scope| !granted.split(' ').any(|granted| granted == scope.as_str()))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ProxyRefusal::InsufficientScope { missing })
    }
}

/// Decides whose user token a route gets: the provider the route names, else the session's own
/// (`primary`, the provider of its first login). The session must hold that provider's tokens:
/// its primary login's, or those of a provider connected to it later (`is_connected`). Never
/// another provider's token instead.
///
/// # Errors
/// [`ProxyRefusal::ProviderNotConnected`] when the route names a provider that is neither the
/// session's own nor connected to it.
pub fn check_provider(
    route: &Route,
    primary: &ProviderId,
    is_connected: impl Fn(&ProviderId) -> bool,
) -> Result<ProviderId, ProxyRefusal> {
    match &route.provider {
        None => Ok(primary.clone()),
        Some(required) if required == primary || is_connected(required) => Ok(required.clone()),
        Some(required) => Err(ProxyRefusal::ProviderNotConnected {
            required: required.clone(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and normalizing the request target
// ---------------------------------------------------------------------------------------------

/// A request target that passed every rule: the normalized path and the raw query.
#[derive(Debug)]
struct RequestTarget<'r> {
    path: String,
    query: Option<&'r str>,
}

impl<'r> RequestTarget<'r> {
    fn parse(raw: &'r str) -> Result<Self, TargetDefect> {
        if raw.len() > MAX_TARGET_LEN {
            return Err(TargetDefect::TooLong);
        }
        for b in raw.bytes() {
            if !b.is_ascii() {
                return Err(TargetDefect::NonAscii);
            }
            if b.is_ascii_control() {
                return Err(TargetDefect::ControlCharacter);
            }
        }
        if !raw.starts_with('/') {
            return Err(TargetDefect::NotOriginForm);
        }
        if raw.contains('#') {
            return Err(TargetDefect::Fragment);
        }
        let (raw_path, query) = match raw.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (raw, None),
        };
        check_raw_path_characters(raw_path)?;
        let path = normalize_path(raw_path)?;
        check_segments(&path)?;
        if let Some(query) = query {
            check_query(query)?;
        }
        Ok(Self { path, query })
    }
}

/// RFC 3986 `unreserved`: letters, digits, `-`, `.`, `_`, `~`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn is_dot_segment(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b == b'.')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte encoded by the escape starting at `at` (which holds `%`), if well formed.
fn escaped_byte(bytes: &[u8], at: usize) -> Option<u8> {
    let high = hex_value(*bytes.get(at + 1)?)?;
    let low = hex_value(*bytes.get(at + 2)?)?;
    Some(high << 4 | low)
}

/// Raw path bytes (already ASCII and control-free): RFC 3986 `pchar` and `/`, minus `;` and
/// `@`, with well-formed escapes.
fn check_raw_path_characters(raw_path: &str) -> Result<(), TargetDefect> {
    let bytes = raw_path.as_bytes();
    for (at, &b) in bytes.iter().enumerate() {
        match b {
            b'%' => {
                escaped_byte(bytes, at).ok_or(TargetDefect::InvalidPercentEncoding)?;
            }
            b'\\' => return Err(TargetDefect::Backslash),
            b';' => return Err(TargetDefect::PathParameter),
            b'@' => return Err(TargetDefect::AtSign),
            b'/' | b':' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' => {}
            _ if is_unreserved(b) => {}
            _ => return Err(TargetDefect::InvalidCharacter),
        }
    }
    Ok(())
}

/// RFC 3986 section 6.2.2 normalization: decodes escaped unreserved characters and upper-cases
/// the hex of the other escapes, refusing escapes of separators, `;`, controls, and bytes that
/// do not decode to UTF-8, then refuses double encoding in the result.
fn normalize_path(raw_path: &str) -> Result<String, TargetDefect> {
    const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = raw_path.as_bytes();
    let mut normalized = String::with_capacity(raw_path.len());
    let mut decoded = Vec::with_capacity(raw_path.len());
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        if b != b'%' {
            normalized.push(char::from(b));
            decoded.push(b);
            at += 1;
            continue;
        }
        let value = escaped_byte(bytes, at).ok_or(TargetDefect::InvalidPercentEncoding)?;
        match value {
            b'/' | b'\\' => return Err(TargetDefect::EncodedSeparator),
            b';' => return Err(TargetDefect::PathParameter),
            v if v.is_ascii_control() => return Err(TargetDefect::ControlCharacter),
            v if is_unreserved(v) => normalized.push(char::from(v)),
            v => {
                normalized.push('%');
                normalized.push(char::from(HEX_UPPER[usize::from(v >> 4)]));
                normalized.push(char::from(HEX_UPPER[usize::from(v & 0xF)]));
            }
        }
        decoded.push(value);
        at += 3;
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(TargetDefect::InvalidUtf8);
    }
    // Checked on the normalized form so that `%25%32%65` (which normalizes to `%252e`) counts.
    let normalized_bytes = normalized.as_bytes();
    let double = normalized_bytes
        .windows(5)
        .any(|w| w.starts_with(b"%25") && w[3].is_ascii_hexdigit() && w[4].is_ascii_hexdigit());
    if double {
        return Err(TargetDefect::DoubleEncoding);
    }
    Ok(normalized)
}

/// No empty segment except a trailing one (`/api/orders/` is allowed), no dot-only segment.
fn check_segments(path: &str) -> Result<(), TargetDefect> {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        if segment.is_empty() && index != last {
            return Err(TargetDefect::EmptySegment);
        }
        if is_dot_segment(segment) {
            return Err(TargetDefect::DotSegment);
        }
    }
    Ok(())
}

/// The query is passed on byte for byte, so it may hold only what the URL library keeps as is:
/// visible ASCII except `"`, `<`, `>` and `'` (browsers send those encoded).
fn check_query(query: &str) -> Result<(), TargetDefect> {
    if query
        .bytes()
        .any(|b| matches!(b, b' ' | b'"' | b'<' | b'>' | b'\''))
    {
        return Err(TargetDefect::InvalidCharacter);
    }
    Ok(())
}

/// The upstream URL: base path plus remainder, with the query as received. Checks that the URL
/// library kept both and that the result is still under the base, on the same origin.
fn forward_url(
    upstream: &Url,
    base_path: &str,
    remainder: &str,
    query: Option<&str>,
) -> Result<Url, TargetDefect> {
    let mut path = String::with_capacity(base_path.len() + remainder.len() + 1);
    path.push_str(base_path);
    path.push_str(remainder);
    if path.is_empty() {
        path.push('/');
    }
    let mut url = upstream.clone();
    url.set_path(&path);
    url.set_query(query);
    let under_base = base_path.is_empty()
        || url
            .path()
            .strip_prefix(base_path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    // Everything before the path (scheme, user info, host, port) unchanged: the same origin,
    // compared as text rather than through two allocated `Origin`s.
    let same_origin = url[..Position::BeforePath] == upstream[..Position::BeforePath];
    if !under_base || !same_origin {
        return Err(TargetDefect::EscapesUpstream);
    }
    if url.path() != path || url.query() != query {
        return Err(TargetDefect::NotPreserved);
    }
    Ok(url)
}

#[cfg(test)]
mod tests;
