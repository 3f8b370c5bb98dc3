//! The configuration reference: every key with its type, default, environment variable, an
//! example and what it does. `docs/configuration.md` and the annotated `docs/bff.example.toml`
//! are generated from it (`cargo xtask codegen`), and tests keep it honest against the reader
//! itself: each table lists exactly the keys the reader accepts there (read back from its
//! unknown-key message), each example is accepted, and each default, written out, reads into the
//! same configuration as leaving the key out.

use std::fmt::Write as _;

/// A table of the configuration.
pub(crate) struct Section {
    /// Its path: `server`, `providers.<name>`, `routes[]` (an array of tables), or `` for the
    /// top level.
    pub(crate) path: &'static str,
    /// What it is for.
    pub(crate) doc: &'static str,
    /// Its keys.
    pub(crate) keys: &'static [Key],
}

/// One key.
pub(crate) struct Key {
    /// Its name in the table.
    pub(crate) name: &'static str,
    /// Its type, for people.
    pub(crate) kind: &'static str,
    /// Its default.
    pub(crate) default: Default,
    /// A value, as TOML, that the reader accepts.
    pub(crate) example: &'static str,
    /// What it does.
    pub(crate) doc: &'static str,
}

/// What happens when a key is left out.
pub(crate) enum Default {
    /// The configuration is refused.
    Required,
    /// The configuration is refused when the words say (it depends on another key); the
    /// annotated example sets it, as for [`Default::Required`].
    RequiredWhen(&'static str),
    /// This TOML value applies.
    Value(&'static str),
    /// Described in words (it depends on other keys, or means "off").
    Described(&'static str),
}

use Default::{Described, Required, RequiredWhen, Value};

/// Every table, in the order the reference shows them.
pub(crate) const SECTIONS: &[Section] = &[
    Section {
        path: "",
        doc: "Top-level keys.",
        keys: &[Key {
            name: "default_provider",
            kind: "string (a provider name)",
            default: Required,
            example: r#""main""#,
            doc: "The provider used when a login names none; one of the `[providers.<name>]`.",
        }],
    },
    Section {
        path: "server",
        doc: "Addresses, trusted proxies and shutdown.",
        keys: &[
            Key {
                name: "listen",
                kind: "socket address",
                default: Value(r#""127.0.0.1:8080""#),
                example: r#""0.0.0.0:8080""#,
                doc: "Address the browser-facing server listens on.",
            },
            Key {
                name: "public_url",
                kind: "origin (URL without path)",
                default: Required,
                example: r#""https://app.example""#,
                doc: "The origin browsers use to reach the BFF. The login callback is \
                      `{public_url}{http.prefix}/callback`. `http://` only with \
                      `dev.allow_plain_http`.",
            },
            Key {
                name: "app_redirect_url",
                kind: "URL",
                default: Described("`{public_url}/`"),
                example: r#""https://app.example/logged-in""#,
                doc: "`redirect_uri` of API-driven logins: an app page that calls \
                      `POST {prefix}/login/end`.",
            },
            Key {
                name: "static_dir",
                kind: "path",
                default: Described("none: no static files"),
                example: r#""examples/spa""#,
                doc: "A folder of static files served at `/` (the app, or the sample app).",
            },
            Key {
                name: "trusted_proxies",
                kind: "list of networks or addresses",
                default: Value("[]"),
                example: r#"["10.0.0.0/8", "127.0.0.1"]"#,
                doc: "Reverse proxies in front of the BFF. Only when the direct peer is one of \
                      them are its forwarding headers believed (the right-most hop that is not a \
                      trusted proxy is the client). `/0` is refused.",
            },
            Key {
                name: "trusted_proxy_headers",
                kind: "`x-forwarded` or `forwarded`",
                default: Value(r#""x-forwarded""#),
                example: r#""forwarded""#,
                doc: "The header family the trusted proxies write: `X-Forwarded-For`/`-Proto`/\
                      `-Host`, or RFC 7239 `Forwarded`. Only that family is read.",
            },
            Key {
                name: "shutdown_timeout_secs",
                kind: "seconds, not zero",
                default: Value("30"),
                example: "60",
                doc: "On SIGTERM or Ctrl-C, how long in-flight requests (proxied streams included) \
                      may run before they are cut.",
            },
            Key {
                name: "shutdown_delay_secs",
                kind: "seconds",
                default: Value("0"),
                example: "5",
                doc: "On SIGTERM or Ctrl-C, how long the server keeps accepting with `/readyz` \
                      answering `503 draining` before it stops accepting.",
            },
            Key {
                name: "max_header_bytes",
                kind: "bytes, not zero",
                default: Value("32768"),
                example: "16384",
                doc: "Largest request head (request line and headers) answered; larger is \
                      `431 headers_too_large`. Applies to every listener.",
            },
            Key {
                name: "max_headers",
                kind: "integer, not zero",
                default: Value("100"),
                example: "50",
                doc: "Most header fields in a request; more is `431 headers_too_large`. Past this and 100, whichever is larger, the HTTP library refuses the head itself (a bare `431`).",
            },
            Key {
                name: "header_read_timeout_secs",
                kind: "seconds, not zero",
                default: Value("30"),
                example: "75",
                doc: "How long a client may take to send a request head, which also bounds how \
                      long a kept-alive connection stays idle: set it above your load \
                      balancer's idle timeout.",
            },
            Key {
                name: "body_read_timeout_secs",
                kind: "seconds, not zero",
                default: Value("30"),
                example: "10",
                doc: "How long a client may take to send the body of a `/bff` request (at most \
                      64 KiB) once its head has arrived; past it, `408 request_timeout` and the \
                      connection is closed. API proxy bodies are bounded by their route's \
                      `timeout_ms`.",
            },
        ],
    },
    Section {
        path: "http",
        doc: "The HTTP surface: paths, cookie names, app origins.",
        keys: &[
            Key {
                name: "prefix",
                kind: "path",
                default: Value(r#""/bff""#),
                example: r#""/auth""#,
                doc: "Path prefix of the BFF's own endpoints.",
            },
            Key {
                name: "session_cookie",
                kind: "cookie name",
                default: Described("`__Host-Http-bff` (`bff` in plain-HTTP development mode)"),
                example: r#""__Host-Http-myapp""#,
                doc: "Name of the session cookie. Without the `__Host-Http-` prefix the \
                      conformance self-check refuses it unless `dev.allow_nonconformant`.",
            },
            Key {
                name: "binding_cookie",
                kind: "cookie name",
                default: Described(
                    "`__Host-Http-bff-login` (`bff-login` in plain-HTTP development mode)",
                ),
                example: r#""__Host-Http-myapp-login""#,
                doc: "Name of the cookie that binds a login to the browser that started it.",
            },
            Key {
                name: "app_origins",
                kind: "list of origins",
                default: Described("the origin of `server.public_url`"),
                example: r#"["https://app.example"]"#,
                doc: "Origins whose pages may call the BFF. An origin other than the BFF's own \
                      turns CORS on for it (same site only: the cookie is `SameSite=Strict`).",
            },
            Key {
                name: "api_explorer_path",
                kind: "path",
                default: Described(
                    "`{prefix}/explorer` in plain-HTTP development mode, off otherwise",
                ),
                example: r#""/bff/explorer""#,
                doc: "Where the API explorer (Swagger UI for the `/bff` OpenAPI document) is \
                      served.",
            },
        ],
    },
    Section {
        path: "session",
        doc: "Session lifetimes and the userinfo switch.",
        keys: &[
            Key {
                name: "idle_timeout_secs",
                kind: "seconds, not zero",
                default: Value("1800"),
                example: "900",
                doc: "A session unused this long ends.",
            },
            Key {
                name: "absolute_timeout_secs",
                kind: "seconds, not zero",
                default: Value("43200"),
                example: "28800",
                doc: "No session lives longer, however busy (and never longer than the refresh \
                      token the provider said expires).",
            },
            Key {
                name: "login_timeout_secs",
                kind: "seconds, not zero",
                default: Value("600"),
                example: "300",
                doc: "A started login must complete within this.",
            },
            Key {
                name: "refresh_margin_secs",
                kind: "seconds",
                default: Value("60"),
                example: "30",
                doc: "Access tokens are refreshed this long before they expire.",
            },
            Key {
                name: "fetch_userinfo",
                kind: "boolean",
                default: Value("false"),
                example: "true",
                doc: "Merge the provider's userinfo endpoint into `{prefix}/userinfo`.",
            },
            Key {
                name: "rekey_after_secs",
                kind: "seconds",
                default: Value("0"),
                example: "3600",
                doc: "Give a session a new id (and cookie) on its first request once its id is \
                      this old; 0 never does. Costs one store read per request when on.",
            },
            Key {
                name: "rekey_grace_secs",
                kind: "seconds, not zero",
                default: Value("60"),
                example: "30",
                doc: "How long the old id keeps working after a renewal, for requests already on \
                      their way with the old cookie (keep it well above 5: an open WebSocket \
                      checks its session every 5 s).",
            },
            Key {
                name: "client_binding",
                kind: "`off`, `warn` or `strict`",
                default: Value(r#""off""#),
                example: r#""strict""#,
                doc: "Bind a session to a hash of the login's `User-Agent` (and address prefix): \
                      a request from another client is logged (`warn`) or ends the session \
                      (`strict`, `401 session_binding_mismatch`).",
            },
            Key {
                name: "client_binding_ipv4_prefix",
                kind: "0 to 32",
                default: Described("none: the address is not part of the binding"),
                example: "24",
                doc: "Also bind to the client's IPv4 network of this prefix length.",
            },
            Key {
                name: "client_binding_ipv6_prefix",
                kind: "0 to 128",
                default: Described("none: the address is not part of the binding"),
                example: "64",
                doc: "Also bind to the client's IPv6 network of this prefix length.",
            },
        ],
    },
    Section {
        path: "dev",
        doc: "Development switches. Never in production: the server warns at start.",
        keys: &[
            Key {
                name: "allow_plain_http",
                kind: "boolean",
                default: Value("false"),
                example: "true",
                doc: "Allow `http://` public URL, app origins and issuers. Drops `Secure` and \
                      the `__Host-` cookie prefix.",
            },
            Key {
                name: "allow_nonconformant",
                kind: "boolean",
                default: Value("false"),
                example: "true",
                doc: "Start even when the conformance self-check finds a MUST of \
                      draft-ietf-oauth-browser-based-apps section 6.1 violated by a setting \
                      other than plain HTTP; logged as `NOT CONFORMANT`.",
            },
        ],
    },
    Section {
        path: "vault_keys[]",
        doc: "Keys that seal tokens at rest (AES-256-GCM). The first seals; the others only \
              open, for rotation. At least one; ids unique. Better set through \
              `BFF_VAULT_KEYS`.",
        keys: &[
            Key {
                name: "id",
                kind: "1 to 64 of `A-Z a-z 0-9 - _ .`",
                default: Required,
                example: r#""2026-11""#,
                doc: "Stored beside every sealed value, so the right key opens it.",
            },
            Key {
                name: "key",
                kind: "32 bytes, base64",
                default: Required,
                example: r#""MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=""#,
                doc: "The key (`openssl rand -base64 32`). Never shown in messages or logs.",
            },
        ],
    },
    Section {
        path: "store",
        doc: "Where sessions live.",
        keys: &[
            Key {
                name: "kind",
                kind: "`memory`, `postgres`, `redis` or `postgres+redis`",
                default: Value(r#""memory""#),
                example: r#""postgres+redis""#,
                doc: "The session store. `postgres` and `postgres+redis` need `[store.postgres]`; \
                      `redis` and `postgres+redis` need `[store.redis]`.",
            },
            Key {
                name: "sweep_interval_secs",
                kind: "seconds, not zero",
                default: Value("60"),
                example: "300",
                doc: "Seconds between sweeps of expired sessions.",
            },
            Key {
                name: "postgres",
                kind: "table",
                default: Described("none"),
                example: r#"{ url = "postgres://bff@db:5432/bff" }"#,
                doc: "See `[store.postgres]`.",
            },
            Key {
                name: "redis",
                kind: "table",
                default: Described("none"),
                example: r#"{ url = "redis://cache:6379" }"#,
                doc: "See `[store.redis]`.",
            },
        ],
    },
    Section {
        path: "store.postgres",
        doc: "PostgreSQL, for `store.kind` `postgres` and `postgres+redis`.",
        keys: &[
            Key {
                name: "url",
                kind: "`postgres://` URL",
                default: Required,
                example: r#""postgres://bff:secret@db:5432/bff""#,
                doc: "Where to connect. Its password is never shown; better set through \
                      `BFF_STORE__POSTGRES__URL`.",
            },
            Key {
                name: "schema",
                kind: "letters, digits and `_`",
                default: Described("the server's default (`public`)"),
                example: r#""bff""#,
                doc: "Schema to use (`search_path`).",
            },
            Key {
                name: "max_connections",
                kind: "integer, not zero",
                default: Value("10"),
                example: "20",
                doc: "Pool size.",
            },
            Key {
                name: "acquire_timeout_ms",
                kind: "milliseconds, not zero",
                default: Value("2000"),
                example: "1000",
                doc: "How long a request waits for a pooled connection.",
            },
            Key {
                name: "statement_timeout_ms",
                kind: "milliseconds, not zero",
                default: Value("5000"),
                example: "2000",
                doc: "`statement_timeout` of every connection.",
            },
            Key {
                name: "migrate_on_start",
                kind: "boolean",
                default: Value("false"),
                example: "true",
                doc: "Apply migrations at start-up (otherwise run `bff-server migrate`).",
            },
        ],
    },
    Section {
        path: "store.redis",
        doc: "Redis, for `store.kind` `redis` and `postgres+redis`.",
        keys: &[
            Key {
                name: "url",
                kind: "`redis://` or `rediss://` URL",
                default: Required,
                example: r#""redis://cache:6379/0""#,
                doc: "Where to connect (`rediss://` for TLS). Its password is never shown.",
            },
            Key {
                name: "pool_size",
                kind: "integer, not zero",
                default: Value("16"),
                example: "32",
                doc: "Pool size.",
            },
            Key {
                name: "timeout_ms",
                kind: "milliseconds, not zero",
                default: Value("1000"),
                example: "500",
                doc: "Bound on every command, waiting for a connection included.",
            },
            Key {
                name: "key_prefix",
                kind: "string",
                default: Value(r#""bff:""#),
                example: r#""app1:bff:""#,
                doc: "Prefix of every key, so several deployments can share a server.",
            },
        ],
    },
    Section {
        path: "providers.<name>",
        doc: "An OpenID Provider, by a name of your choice (`main`, `google`, ...). \
              Variables spell the name in capitals: `BFF_PROVIDERS__MAIN__CLIENT_SECRET`.",
        keys: &[
            Key {
                name: "issuer",
                kind: "URL",
                default: Required,
                example: r#""https://idp.example/realms/main""#,
                doc: "The issuer; discovery is at `{issuer}/.well-known/openid-configuration`, \
                      which must name the same issuer.",
            },
            Key {
                name: "client_id",
                kind: "string, not empty",
                default: Required,
                example: r#""bff""#,
                doc: "The BFF's client id at the provider.",
            },
            Key {
                name: "client_secret",
                kind: "string, not empty",
                default: RequiredWhen("with `client_secret_basic` and `client_secret_post`"),
                example: r#""change-me""#,
                doc: "The client secret (the BFF is a confidential client), with \
                      `client_secret_basic` and `client_secret_post`; left out with \
                      `private_key_jwt`, which uses `private_key_file` instead. Never shown; \
                      better set through the environment.",
            },
            Key {
                name: "client_auth",
                kind: "`client_secret_basic`, `client_secret_post` or `private_key_jwt`",
                default: Value(r#""client_secret_basic""#),
                example: r#""client_secret_post""#,
                doc: "How the client authenticates at the token, revocation and pushed \
                      authorization request endpoints: with the client secret, or \
                      (`private_key_jwt`, RFC 7523) with a short-lived JWT signed by \
                      `private_key_file`, so the provider holds no secret that logs the client \
                      in. A method the provider's `token_endpoint_auth_methods_supported` leaves \
                      out stops the start with what it accepts.",
            },
            Key {
                name: "private_key_file",
                kind: "path",
                default: Described("none; required with `private_key_jwt`"),
                example: r#""/run/secrets/bff-client-key.pem""#,
                doc: "PEM file of the client's private key for `private_key_jwt`: RSA (signs \
                      RS256, or PS256 when the provider takes only that), EC P-256 (ES256), EC \
                      P-384 (ES384) or Ed25519 (EdDSA), as PKCS#8 or the RSA and EC forms of \
                      OpenSSL; prefer EC or Ed25519 (the RSA signer is not constant-time, \
                      RUSTSEC-2023-0071). Register its public half (a JWKS) with the provider. \
                      Read at start: a file that cannot be read or holds no such key stops the \
                      server, as does an algorithm the provider's \
                      `token_endpoint_auth_signing_alg_values_supported` leaves out.",
            },
            Key {
                name: "private_key_id",
                kind: "string, not empty",
                default: Described("none: assertions carry no `kid`"),
                example: r#""bff-2026-12""#,
                doc: "The `kid` the public key is registered under at the provider, sent in each \
                      assertion's header (providers with several keys for a client need it).",
            },
            Key {
                name: "client_assertion_audience",
                kind: "`issuer` or `token_endpoint`",
                default: Value(r#""issuer""#),
                example: r#""token_endpoint""#,
                doc: "What a `private_key_jwt` assertion's `aud` names: the provider's issuer \
                      identifier (what FAPI 2.0 and the update of RFC 7523 ask for), or its \
                      token endpoint URL, for providers that accept only that. Only with \
                      `client_auth = \"private_key_jwt\"`; the secret methods send no \
                      assertion and refuse it.",
            },
            Key {
                name: "client_assertion_algorithm",
                kind: "`RS256`, `PS256`, `ES256`, `ES384` or `EdDSA`",
                default: Described(
                    "the key's first algorithm the provider accepts (`RS256` before `PS256`)",
                ),
                example: r#""PS256""#,
                doc: "Pins the algorithm `private_key_jwt` assertions are signed with, for \
                      providers that take only one and do not list it in \
                      `token_endpoint_auth_signing_alg_values_supported` (Entra ID: `PS256`). \
                      It must be one of the key's: `RS256` or `PS256` for RSA, `ES256` for EC \
                      P-256, `ES384` for P-384, `EdDSA` for Ed25519. Only with \
                      `private_key_jwt`.",
            },
            Key {
                name: "client_certificate_file",
                kind: "path",
                default: Described("none: assertions carry no certificate thumbprint"),
                example: r#""/run/secrets/bff-client-cert.pem""#,
                doc: "PEM file of the X.509 certificate of `private_key_file`'s key (the first \
                      certificate in the file), for providers that find the key by the \
                      certificate's thumbprint rather than by `kid` (Entra ID). Each assertion's \
                      header then carries `x5t#S256` and `x5t`. Read at start: a certificate of \
                      another key stops the server; one that expires within 30 days is warned \
                      of. Only with `private_key_jwt`.",
            },
            Key {
                name: "scopes",
                kind: "list of scopes",
                default: Value(r#"["openid", "profile", "email"]"#),
                example: r#"["openid", "profile", "email", "offline_access"]"#,
                doc: "Scopes asked for at login; `openid` is always added.",
            },
            Key {
                name: "post_logout_redirect_uri",
                kind: "URL",
                default: Described("`{public_url}{prefix}/logout/callback`"),
                example: r#""https://app.example/bye""#,
                doc: "Where the provider sends the browser after logout.",
            },
            Key {
                name: "id_token_algorithms",
                kind: "list of JOSE algorithm names",
                default: Described(
                    "those the provider advertises among RS256, PS256, ES256, ES384 and EdDSA",
                ),
                example: r#"["ES256"]"#,
                doc: "Allowed ID token (and logout token) signing algorithms. `none` and HMAC \
                      are refused.",
            },
            Key {
                name: "clock_skew_secs",
                kind: "seconds",
                default: Value("60"),
                example: "30",
                doc: "Tolerated clock difference for `exp`, `iat` and `nbf`.",
            },
            Key {
                name: "http_timeout_secs",
                kind: "seconds, not zero",
                default: Value("10"),
                example: "5",
                doc: "Time limit of each call to the provider.",
            },
            Key {
                name: "pushed_authorization_requests",
                kind: "`if_offered`, `always` or `off`",
                default: Value(r#""if_offered""#),
                example: r#""always""#,
                doc: "When each login's parameters go to the provider's pushed authorization \
                      request endpoint (RFC 9126) first, so the browser carries only a \
                      reference to them: `if_offered` when the provider advertises the \
                      endpoint, `always` (the provider must advertise it), `off` never. A \
                      provider that requires pushed requests gets them whatever this says. \
                      `true` and `false`, its earlier values, mean `always` and `off`.",
            },
            Key {
                name: "ca_file",
                kind: "path",
                default: Described("the built-in web PKI roots"),
                example: r#""/etc/bff/idp-ca.pem""#,
                doc: "PEM file of the CA certificates the provider's HTTPS certificate is \
                      verified against, instead of the built-in roots (a provider under a \
                      private CA). Read at start: a file that cannot be read or holds no \
                      certificate stops the server.",
            },
        ],
    },
    Section {
        path: "routes[]",
        doc: "The API proxy's allowlist: one `[[routes]]` per upstream API. The longest matching \
              prefix wins; two routes with one prefix are refused.",
        keys: &[
            Key {
                name: "path",
                kind: "path prefix",
                default: Required,
                example: r#""/api/orders""#,
                doc: "The local prefix; it may not overlap the BFF's own paths.",
            },
            Key {
                name: "upstream",
                kind: "URL",
                default: Required,
                example: r#""https://orders.internal/v1""#,
                doc: "The upstream base URL; the rest of the path is appended under it, never \
                      outside it.",
            },
            Key {
                name: "token",
                kind: "`user`, `client`, `user_or_client` or `none`",
                default: Required,
                example: r#""user""#,
                doc: "The credential sent: the session's access token, a client-credentials \
                      token, the first that applies, or none.",
            },
            Key {
                name: "methods",
                kind: "list of HTTP methods",
                default: Value(r#"["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]"#),
                example: r#"["GET", "POST"]"#,
                doc: "Methods the route allows; others are refused.",
            },
            Key {
                name: "required_scopes",
                kind: "list of scopes",
                default: Value("[]"),
                example: r#"["orders.read"]"#,
                doc: "Scopes the access token must have been granted; a client-credentials token \
                      is asked for exactly these.",
            },
            Key {
                name: "provider",
                kind: "provider name",
                default: Described(
                    "the session's provider (`default_provider` for a client-credentials token)",
                ),
                example: r#""main""#,
                doc: "The provider whose token the route needs.",
            },
            Key {
                name: "connect_timeout_ms",
                kind: "milliseconds",
                default: Value("5000"),
                example: "2000",
                doc: "Connect timeout to the upstream.",
            },
            Key {
                name: "timeout_ms",
                kind: "milliseconds",
                default: Value("30000"),
                example: "10000",
                doc: "Total timeout of the upstream exchange, body included.",
            },
            Key {
                name: "forward_set_cookie",
                kind: "boolean",
                default: Value("false"),
                example: "true",
                doc: "Whether upstream `Set-Cookie` headers reach the browser.",
            },
            Key {
                name: "websocket",
                kind: "boolean",
                default: Value("false"),
                example: "true",
                doc: "Proxy WebSocket upgrades (needs `GET`; the upgrade needs an app `Origin`).",
            },
            Key {
                name: "csrf_on_reads",
                kind: "boolean",
                default: Value("true"),
                example: "true",
                doc: "Whether `GET` and `HEAD` need `x-csrf: 1` like other methods. `false` only \
                      with `token = \"none\"`: plain links, `<img>`s and `<script>`s can load the \
                      route; other methods are checked as always.",
            },
            Key {
                name: "headers",
                kind: "table of header name to value",
                default: Value("{}"),
                example: r#"{ "x-api-key" = "k" }"#,
                doc: "Headers added to every upstream request. Values may be API keys: never \
                      shown.",
            },
            Key {
                name: "max_body_bytes",
                kind: "bytes",
                default: Described("no limit: bodies stream"),
                example: "10485760",
                doc: "Largest request body forwarded: a larger `Content-Length` is refused with \
                      `413 payload_too_large` before anything else, a chunked body is cut once \
                      it passes the limit.",
            },
            Key {
                name: "ca_file",
                kind: "path",
                default: Described("the built-in web PKI roots"),
                example: r#""/etc/bff/internal-ca.pem""#,
                doc: "PEM file of the CA certificates an `https` upstream's certificate is \
                      verified against, instead of the built-in roots (an internal API under a \
                      private CA). Read at start: a file that cannot be read or holds no \
                      certificate stops the server.",
            },
        ],
    },
    Section {
        path: "log",
        doc: "Log lines on standard output. The level comes from `RUST_LOG` (default `info`).",
        keys: &[Key {
            name: "format",
            kind: "`json`, `pretty` or `plain`",
            default: Described("`pretty` on a terminal, `json` otherwise"),
            example: r#""json""#,
            doc: "One JSON object per line (with the request's `id`), human-readable with \
                  colours, or human-readable without.",
        }],
    },
    Section {
        path: "tracing",
        doc: "OpenTelemetry trace export over OTLP/HTTP; off unless `otlp_endpoint` is set.",
        keys: &[
            Key {
                name: "otlp_endpoint",
                kind: "URL",
                default: Described("none: no traces are exported"),
                example: r#""http://127.0.0.1:4318""#,
                doc: "The collector's OTLP/HTTP base URL; spans go to `{otlp_endpoint}/v1/traces` \
                      as protobuf.",
            },
            Key {
                name: "service_name",
                kind: "string",
                default: Value(r#""bff-server""#),
                example: r#""bff-eu-1""#,
                doc: "The `service.name` of the exported spans.",
            },
        ],
    },
    Section {
        path: "metrics",
        doc: "Prometheus metrics (OpenMetrics text when asked for, else the classic text \
              format) on their own listener; off unless `listen` is set. No label carries a \
              user, session, token or raw path.",
        keys: &[Key {
            name: "listen",
            kind: "socket address",
            default: Described("none: no metrics listener"),
            example: r#""127.0.0.1:9464""#,
            doc: "The address serving `GET /metrics`, never the browser's or the admin API's.",
        }],
    },
    Section {
        path: "admin",
        doc: "The operators' admin API, on its own listener; off unless `listen` is set.",
        keys: &[
            Key {
                name: "listen",
                kind: "socket address",
                default: Described("none: no admin API"),
                example: r#""127.0.0.1:9091""#,
                doc: "The admin API's own address, never the browser listener's.",
            },
            Key {
                name: "token_sha256",
                kind: "64 hex digits",
                default: Described("none; required with `listen`"),
                example: r#""9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08""#,
                doc: "SHA-256 of the admin bearer token (`printf %s \"$TOKEN\" | sha256sum`): \
                      the configuration never holds the token itself.",
            },
        ],
    },
];

/// The environment variable of `key` in the table at `path`.
pub(crate) fn variable(path: &str, key: &str) -> String {
    if let Some(list) = path.strip_suffix("[]") {
        // An array of tables is set whole, as TOML.
        return format!("BFF_{}", list.to_ascii_uppercase().replace('.', "__"));
    }
    let mut name = String::from("BFF_");
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let segment = if segment == "<name>" {
            "<NAME>"
        } else {
            segment
        };
        name.push_str(&segment.to_ascii_uppercase());
        name.push_str("__");
    }
    name.push_str(&key.to_ascii_uppercase());
    name
}

fn heading(path: &str) -> String {
    match path {
        "" => "Top level".into(),
        p if p.ends_with("[]") => format!("`[[{}]]`", p.trim_end_matches("[]")),
        p => format!("`[{p}]`"),
    }
}

fn default_text(default: &Default) -> String {
    match default {
        Required => "required".into(),
        RequiredWhen(when) => format!("required {when}"),
        Value(v) => format!("`{v}`"),
        Described(d) => (*d).into(),
    }
}

/// `docs/configuration.md`.
pub(crate) fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated by `cargo xtask codegen` from crates/bff-server/src/config/reference.rs; \
         do not edit. -->\n\n\
         `bff-server` reads a TOML file (`--config`, default `bff.toml`) and then `BFF_` \
         environment variables, which override it: the key path in capitals with `__` between \
         segments. A variable is text where the key is text and is read as TOML where the key \
         wants a number, a boolean, a list or a table. Unknown keys and unknown `BFF_` variables \
         are errors, and every problem is reported at once, one line each naming its key and \
         variable. `bff-server check-config` checks a file without serving. An annotated \
         example is [`bff.example.toml`](bff.example.toml).\n",
    );
    for section in SECTIONS {
        let _ = write!(out, "\n## {}\n\n{}\n\n", heading(section.path), section.doc);
        out.push_str("| Key | Type | Default | Variable | Example | Description |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- |\n");
        for key in section.keys {
            let variable = if section.path.ends_with("[]") {
                format!("`{}` (the whole list)", variable(section.path, key.name))
            } else {
                format!("`{}`", variable(section.path, key.name))
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | `{}` | {} |",
                key.name,
                key.kind,
                default_text(&key.default),
                variable,
                key.example.replace('|', "\\|"),
                key.doc.replace('|', "\\|"),
            );
        }
    }
    out
}

/// `docs/bff.example.toml`: every key, required ones set to their example, the others
/// commented out with their default.
pub(crate) fn example_toml() -> String {
    let mut out = String::from(
        "# bff-server configuration: every key, with what it does. Required keys are set to an\n\
         # example; the others are commented out. Generated by `cargo xtask codegen` from\n\
         # crates/bff-server/src/config/reference.rs; docs/configuration.md has the same in a table.\n",
    );
    for section in SECTIONS {
        out.push('\n');
        let path = section.path.replace("<name>", "main");
        let header = match path.as_str() {
            "" => None,
            p if p.ends_with("[]") => Some(format!("[[{}]]", p.trim_end_matches("[]"))),
            p => Some(format!("[{p}]")),
        };
        // Tables left commented out: optional ones, and the vault keys, which belong in
        // `BFF_VAULT_KEYS` rather than in a file (a copied example key would be a known key).
        let optional_table = matches!(
            section.path,
            "store.postgres" | "store.redis" | "admin" | "routes[]" | "vault_keys[]"
        );
        for line in wrap(section.doc, 96) {
            let _ = writeln!(out, "# {line}");
        }
        if let Some(header) = &header {
            let prefix = if optional_table { "# " } else { "" };
            let _ = writeln!(out, "{prefix}{header}");
        }
        for key in section.keys {
            if matches!(section.path, "store") && matches!(key.name, "postgres" | "redis") {
                continue; // Shown as their own tables below.
            }
            for line in wrap(key.doc, 94) {
                let _ = writeln!(out, "# {line}");
            }
            let _ = writeln!(
                out,
                "# type: {}; default: {}; env: {}",
                key.kind.replace('`', ""),
                default_text(&key.default).replace('`', ""),
                variable(section.path, key.name)
            );
            // Required keys set to their example; the others commented out, at their default
            // when it is a value.
            match (&key.default, optional_table) {
                (Required | RequiredWhen(_), false) => {
                    let _ = writeln!(out, "{} = {}", key.name, key.example);
                }
                (Value(default), _) => {
                    let _ = writeln!(out, "# {} = {default}", key.name);
                }
                _ => {
                    let _ = writeln!(out, "# {} = {}", key.name, key.example);
                }
            }
        }
    }
    out
}

/// `text` in lines of at most about `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::Config;

    /// A configuration with every table, holding only what is required (and `[admin]`'s pair).
    fn full_table() -> toml::Table {
        let mut root = toml::Table::new();
        for section in SECTIONS {
            let table = table_at(&mut root, section.path);
            for key in section.keys {
                let needed =
                    matches!(key.default, Required | RequiredWhen(_)) || section.path == "admin";
                if needed {
                    table.insert(key.name.into(), value(key.example));
                }
            }
        }
        root
    }

    fn value(toml: &str) -> toml::Value {
        let table: toml::Table = format!("v = {toml}").parse().unwrap();
        table["v"].clone()
    }

    /// The table at `path` in `root`, created if missing (`a[]` is the first table of array
    /// `a`; `<name>` is `main`).
    fn table_at<'t>(root: &'t mut toml::Table, path: &str) -> &'t mut toml::Table {
        let mut table = root;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            let segment = if segment == "<name>" { "main" } else { segment };
            if let Some(list) = segment.strip_suffix("[]") {
                let array = table.entry(list).or_insert_with(|| {
                    toml::Value::Array(vec![toml::Value::Table(toml::Table::new())])
                });
                table = array.as_array_mut().unwrap()[0].as_table_mut().unwrap();
            } else {
                table = table
                    .entry(segment)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .unwrap();
            }
        }
        table
    }

    fn parse(table: &toml::Table) -> Result<Config, String> {
        Config::from_toml_str(&table.to_string(), Vec::new()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_base_of_these_tests_is_valid() {
        parse(&full_table()).unwrap();
    }

    #[test]
    fn each_table_lists_exactly_the_keys_the_reader_accepts() {
        for section in SECTIONS {
            let mut root = full_table();
            table_at(&mut root, section.path).insert("zz_not_a_key".into(), value("1"));
            let message = parse(&root).expect_err(section.path);
            let expected = message
                .lines()
                .find(|l| l.contains("zz_not_a_key") && l.contains("expected one of: "))
                .and_then(|l| l.split("expected one of: ").nth(1))
                .unwrap_or_else(|| panic!("{}: no list of keys in {message}", section.path));
            let accepted: BTreeSet<&str> = expected
                .trim_end_matches(')')
                .split(", ")
                .map(|k| k.trim_matches('`'))
                .collect();
            let mut documented: BTreeSet<&str> = section.keys.iter().map(|k| k.name).collect();
            if section.path.is_empty() {
                // The top level also holds the tables.
                documented.extend(
                    SECTIONS
                        .iter()
                        .filter_map(|s| s.path.split(['.', '[']).next())
                        .filter(|s| !s.is_empty()),
                );
            }
            assert_eq!(accepted, documented, "[{}]", section.path);
        }
    }

    #[test]
    fn every_example_is_accepted() {
        // `ca_file` is read at load, and its example names a file on the operator's machine:
        // here it is a certificate written for the test.
        let ca_file =
            std::env::temp_dir().join(format!("bff-reference-ca-{}.pem", std::process::id()));
        std::fs::write(&ca_file, bff_test_services::tls::ca_certificate_pem()).unwrap();
        // So are `private_key_file` and `client_certificate_file`, which go with
        // `private_key_jwt` and no secret; the example algorithm (`PS256`) wants an RSA key.
        let client_key = bff_test_services::client_key::ClientKey::generate();
        let key_file = client_key.write_private_pem("bff-reference-client-key");
        let certificate_file = client_key.write_certificate_pem("bff-reference-client-cert");
        let rsa_key_file =
            std::env::temp_dir().join(format!("bff-reference-rsa-key-{}.pem", std::process::id()));
        std::fs::write(&rsa_key_file, bff_test_op::rsa_private_pem()).unwrap();
        let path = |file: &std::path::Path| toml::Value::String(file.display().to_string());
        for section in SECTIONS {
            for key in section.keys {
                let mut root = full_table();
                let example = match key.name {
                    "ca_file" => path(&ca_file),
                    "private_key_file" => path(&key_file),
                    "client_certificate_file" => path(&certificate_file),
                    _ => value(key.example),
                };
                let table = table_at(&mut root, section.path);
                if PRIVATE_KEY_JWT_KEYS.contains(&key.name) {
                    let signing_key = match key.name {
                        "client_assertion_algorithm" => &rsa_key_file,
                        _ => &key_file,
                    };
                    use_private_key_jwt(table, signing_key);
                }
                table.insert(key.name.into(), example);
                if let Err(e) = parse(&root) {
                    panic!("{}.{} = {}: {e}", section.path, key.name, key.example);
                }
            }
        }
        for file in [&ca_file, &key_file, &certificate_file, &rsa_key_file] {
            std::fs::remove_file(file).unwrap();
        }
    }

    /// The keys that only `client_auth = "private_key_jwt"` takes.
    const PRIVATE_KEY_JWT_KEYS: [&str; 5] = [
        "private_key_file",
        "private_key_id",
        "client_assertion_audience",
        "client_assertion_algorithm",
        "client_certificate_file",
    ];

    /// Turns the provider section `table` to `private_key_jwt` with the key in `key_file`.
    fn use_private_key_jwt(table: &mut toml::Table, key_file: &std::path::Path) {
        table.remove("client_secret");
        table.insert("client_auth".into(), value(r#""private_key_jwt""#));
        table.insert(
            "private_key_file".into(),
            toml::Value::String(key_file.display().to_string()),
        );
    }

    #[test]
    fn every_default_written_out_reads_like_the_key_left_out() {
        // The keys only `private_key_jwt` takes are compared on a `private_key_jwt` section.
        let key_file = bff_test_services::client_key::ClientKey::generate()
            .write_private_pem("bff-reference-default-key");
        let base = |key: &str, section: &str| {
            let mut root = full_table();
            if PRIVATE_KEY_JWT_KEYS.contains(&key) {
                use_private_key_jwt(table_at(&mut root, section), &key_file);
            }
            root
        };
        for section in SECTIONS {
            for key in section.keys {
                let Value(default) = key.default else {
                    continue;
                };
                let left_out = format!("{:?}", parse(&base(key.name, section.path)).unwrap());
                let mut root = base(key.name, section.path);
                table_at(&mut root, section.path).insert(key.name.into(), value(default));
                let written = format!("{:?}", parse(&root).unwrap());
                assert_eq!(
                    written, left_out,
                    "{}.{}: the documented default {default} is not the default",
                    section.path, key.name
                );
            }
        }
        std::fs::remove_file(&key_file).unwrap();
        // And the comparison can tell: a value other than the default shows.
        let left_out = format!("{:?}", parse(&full_table()).unwrap());
        let mut root = full_table();
        table_at(&mut root, "session").insert("idle_timeout_secs".into(), value("901"));
        assert_ne!(format!("{:?}", parse(&root).unwrap()), left_out);
    }

    #[test]
    fn variables_are_spelled_the_way_the_reader_reads_them() {
        assert_eq!(variable("server", "listen"), "BFF_SERVER__LISTEN");
        assert_eq!(variable("", "default_provider"), "BFF_DEFAULT_PROVIDER");
        assert_eq!(
            variable("store.postgres", "url"),
            "BFF_STORE__POSTGRES__URL"
        );
        assert_eq!(
            variable("providers.<name>", "client_secret"),
            "BFF_PROVIDERS__<NAME>__CLIENT_SECRET"
        );
        assert_eq!(variable("routes[]", "path"), "BFF_ROUTES");
        // A documented variable really sets its key.
        let mut root = full_table();
        table_at(&mut root, "session").remove("idle_timeout_secs");
        let config = Config::from_toml_str(
            &root.to_string(),
            vec![(variable("session", "idle_timeout_secs"), "77".to_owned())],
        )
        .unwrap();
        assert_eq!(config.session.idle_timeout_secs, 77);
    }

    #[test]
    fn the_annotated_example_is_a_valid_configuration() {
        let vault_keys = format!(
            r#"[{{ id = "k1", key = "{}" }}]"#,
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
        );
        let example = example_toml();
        if let Err(e) = Config::from_toml_str(&example, vec![("BFF_VAULT_KEYS".into(), vault_keys)])
        {
            panic!("{e}\n{example}");
        }
        // Every key appears in it (`store.postgres` and `store.redis` as their tables).
        for section in SECTIONS {
            for key in section.keys {
                if section.path == "store" && matches!(key.name, "postgres" | "redis") {
                    assert!(example.contains(&format!("# [store.{}]", key.name)));
                    continue;
                }
                assert!(
                    example.contains(&format!("{} = ", key.name)),
                    "{}.{}",
                    section.path,
                    key.name
                );
            }
        }
    }

    /// `docs/configuration.md` and `docs/bff.example.toml` are what this module generates;
    /// `BFF_UPDATE_CONFIG_DOCS=1` (what `cargo xtask codegen` sets) rewrites them.
    #[test]
    fn committed_configuration_docs_are_current() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        for (file, text) in [
            ("configuration.md", markdown()),
            ("bff.example.toml", example_toml()),
        ] {
            let path = docs.join(file);
            if std::env::var_os("BFF_UPDATE_CONFIG_DOCS").is_some() {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "docs/{file} is stale: run `cargo xtask codegen`"
            );
        }
    }
}
