//! One provider's client configuration: what the server hands to [`crate::OidcProvider`], and
//! the `[providers.<name>]` section of the configuration file it is built from.
//!
//! [`ProviderSection`] deserializes into final types ([`Issuer`], [`ClientAuthMethod`], the
//! algorithm list, durations), so a bad value is reported once, when the file is read, with
//! the key it came from; [`ProviderSection::to_config`] then cannot fail.
//! [`OidcProviderConfig::validate`] applies the same rules to a configuration built in code,
//! before any network call.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use bff_domain::{ProviderId, Secret};
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Deserializer};

use crate::client_assertion::{AssertionAudience, ClientAssertionKey, ClientCertificate};
use crate::discovery::DiscoveryError;
use crate::id_token;

fn config_error(what: &str, e: impl fmt::Display) -> DiscoveryError {
    DiscoveryError::Config(format!("{what}: {e}"))
}

/// A provider setting that cannot be used. Messages name the value, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// Not an absolute URL.
    #[error("{0:?} is not an absolute URL ({1})")]
    NotAUrl(String, String),
    /// A URL with a scheme other than `http` or `https`.
    #[error("{0:?} must be an http:// or https:// URL")]
    NotHttp(String),
    /// An issuer with a query or fragment (OIDC Discovery forbids both).
    #[error("{0:?} must have no query or fragment")]
    QueryOrFragment(String),
    /// An unknown token endpoint authentication method.
    #[error("must be client_secret_basic, client_secret_post or private_key_jwt, got {0:?}")]
    ClientAuth(String),
    /// An unknown `pushed_authorization_requests` value.
    #[error("must be \"if_offered\", \"always\" or \"off\" (or true or false), got {0:?}")]
    PushedAuthorization(String),
    /// Algorithms that may not sign ID tokens.
    #[error(
        "{} not allowed (use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA; never none or HS*)",
        .0.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
    )]
    Algorithms(Vec<String>),
    /// An empty algorithm list.
    #[error("must name at least one algorithm (or be left out to follow the provider)")]
    NoAlgorithm,
    /// An empty value.
    #[error("must not be empty")]
    Empty,
    /// A scope that is empty or contains whitespace.
    #[error("scope {0:?} is empty or contains whitespace")]
    Scope(String),
    /// A zero duration where a positive one is needed.
    #[error("must be greater than zero")]
    Zero,
}

/// An absolute `http://` or `https://` URL, kept exactly as written (providers compare
/// redirect URIs and issuers as strings).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HttpUrl(String);

impl HttpUrl {
    /// Checks that `text` is an absolute http(s) URL.
    ///
    /// # Errors
    /// [`SettingError::NotAUrl`] or [`SettingError::NotHttp`].
    pub fn parse(text: &str) -> Result<Self, SettingError> {
        let url = url::Url::parse(text)
            .map_err(|e| SettingError::NotAUrl(text.to_owned(), e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http") || !url.has_host() {
            return Err(SettingError::NotHttp(text.to_owned()));
        }
        Ok(Self(text.to_owned()))
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `http://` (allowed only in development).
    pub fn is_plain_http(&self) -> bool {
        self.0
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = SettingError;

    fn try_from(text: String) -> Result<Self, SettingError> {
        Self::parse(&text)
    }
}

/// An issuer identifier: an http(s) URL without query or fragment, kept exactly as written
/// (the discovery document must name the same string).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Issuer(HttpUrl);

impl Issuer {
    /// Checks the issuer rules.
    ///
    /// # Errors
    /// [`SettingError::NotAUrl`], [`SettingError::NotHttp`] or
    /// [`SettingError::QueryOrFragment`].
    pub fn parse(text: &str) -> Result<Self, SettingError> {
        let url = HttpUrl::parse(text)?;
        if text.contains(['?', '#']) {
            return Err(SettingError::QueryOrFragment(text.to_owned()));
        }
        Ok(Self(url))
    }

    /// The issuer as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The issuer as a URL.
    pub fn url(&self) -> &HttpUrl {
        &self.0
    }
}

impl TryFrom<String> for Issuer {
    type Error = SettingError;

    fn try_from(text: String) -> Result<Self, SettingError> {
        Self::parse(&text)
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ClientAuthMethod {
    /// HTTP Basic (`client_secret_basic`), the default.
    #[default]
    ClientSecretBasic,
    /// Form parameters (`client_secret_post`).
    ClientSecretPost,
    /// A JWT signed with the client's private key (`private_key_jwt`, see
    /// [`ClientAssertionKey`]); no client secret.
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// The name OAuth metadata and the configuration file use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Whether the client authenticates with a client secret.
    pub fn uses_secret(self) -> bool {
        !matches!(self, Self::PrivateKeyJwt)
    }
}

impl FromStr for ClientAuthMethod {
    type Err = SettingError;

    fn from_str(name: &str) -> Result<Self, SettingError> {
        match name {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            other => Err(SettingError::ClientAuth(other.to_owned())),
        }
    }
}

impl TryFrom<String> for ClientAuthMethod {
    type Error = SettingError;

    fn try_from(name: String) -> Result<Self, SettingError> {
        name.parse()
    }
}

/// When a login pushes its parameters to the provider first (RFC 9126, pushed authorization
/// requests), so the browser carries only a reference to them (`client_id` and `request_uri`):
/// no redirect URI, scope, nonce or PKCE challenge it could read or change.
///
/// Whatever this says, a provider whose metadata sets `require_pushed_authorization_requests`
/// gets pushed requests: a login without them would only fail there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PushedAuthorization {
    /// `if_offered` (the default): push when the provider advertises a
    /// `pushed_authorization_request_endpoint`, send the parameters in the URL when it does not.
    /// ASP.NET Core's default (`UseIfAvailable`) since .NET 9.
    #[default]
    IfOffered,
    /// `always` (or `true`): push every login; a provider that advertises no endpoint is a
    /// configuration error at discovery.
    Always,
    /// `off` (or `false`): only when the provider requires it.
    Off,
}

impl FromStr for PushedAuthorization {
    type Err = SettingError;

    /// The three names, and `true` and `false`, this key's values before it had three (and
    /// what an environment variable holds when it sets a boolean).
    fn from_str(name: &str) -> Result<Self, SettingError> {
        match name {
            "if_offered" => Ok(Self::IfOffered),
            "always" | "true" => Ok(Self::Always),
            "off" | "false" => Ok(Self::Off),
            other => Err(SettingError::PushedAuthorization(other.to_owned())),
        }
    }
}

impl From<bool> for PushedAuthorization {
    fn from(push: bool) -> Self {
        if push { Self::Always } else { Self::Off }
    }
}

impl<'de> Deserialize<'de> for PushedAuthorization {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;

        impl serde::de::Visitor<'_> for Names {
            type Value = PushedAuthorization;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"if_offered\", \"always\", \"off\", true or false")
            }

            fn visit_bool<E: serde::de::Error>(self, push: bool) -> Result<Self::Value, E> {
                Ok(push.into())
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
                name.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(Names)
    }
}

/// An ID token signing algorithm that may be configured, by its JOSE name. HMAC (a shared
/// secret checked against a public JWKS) and `none` are not among them.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    use Algorithm::*;
    Some(match name {
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "EdDSA" => EdDSA,
        _ => return None,
    })
}

/// A configured algorithm list by name: every name must pass [`parse_algorithm`], and the list
/// must not be empty.
///
/// # Errors
/// [`SettingError::Algorithms`] naming every refused name, or [`SettingError::NoAlgorithm`].
pub(crate) fn parse_algorithms<S: AsRef<str>>(names: &[S]) -> Result<Vec<Algorithm>, SettingError> {
    let refused: Vec<String> = names
        .iter()
        .filter(|n| parse_algorithm(n.as_ref()).is_none())
        .map(|n| n.as_ref().to_owned())
        .collect();
    if !refused.is_empty() {
        return Err(SettingError::Algorithms(refused));
    }
    if names.is_empty() {
        return Err(SettingError::NoAlgorithm);
    }
    Ok(names
        .iter()
        .filter_map(|n| parse_algorithm(n.as_ref()))
        .collect())
}

fn check_scopes(scopes: &[String]) -> Result<(), SettingError> {
    match scopes
        .iter()
        .find(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        Some(scope) => Err(SettingError::Scope(scope.clone())),
        None => Ok(()),
    }
}

/// One `[providers.<name>]` section of the configuration file, every value already checked.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// `issuer`; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: Issuer,
    /// `client_id`, not empty.
    #[serde(deserialize_with = "non_empty")]
    pub client_id: String,
    /// `client_secret`, not empty (better set through the environment): required with the
    /// secret methods of `client_auth`, refused with `private_key_jwt` (see
    /// [`ProviderSection::credential_problems`]).
    #[serde(default, deserialize_with = "client_secret")]
    pub client_secret: Option<Secret>,
    /// `client_auth`: `client_secret_basic` (default), `client_secret_post` or
    /// `private_key_jwt`.
    #[serde(default)]
    pub client_auth: ClientAuthMethod,
    /// `private_key_file`: the PEM file of the client's private key, for `private_key_jwt`
    /// (required then, refused otherwise). Read and checked when the configuration is.
    #[serde(default, deserialize_with = "private_key_file")]
    pub private_key_file: Option<ClientAssertionKey>,
    /// `private_key_id`: the `kid` the key's public half is registered under at the provider,
    /// sent in each assertion's header; left out, no `kid` is sent.
    #[serde(default, deserialize_with = "optional_non_empty")]
    pub private_key_id: Option<String>,
    /// `client_assertion_audience`: what a `private_key_jwt` assertion's `aud` names: `issuer`
    /// (the default) or `token_endpoint` (see [`AssertionAudience`]). Refused with the secret
    /// methods, which send no assertion: set there, it would be silently ignored.
    #[serde(default)]
    pub client_assertion_audience: Option<AssertionAudience>,
    /// `client_assertion_algorithm`: the algorithm assertions are signed with, one of the key's
    /// (`RS256` or `PS256` for RSA); left out, the key's first that the provider accepts.
    #[serde(default, deserialize_with = "assertion_algorithm")]
    pub client_assertion_algorithm: Option<Algorithm>,
    /// `client_certificate_file`: the PEM file of the key's X.509 certificate, for providers
    /// that find the key by the certificate's thumbprint (Entra ID): its `x5t#S256` and `x5t`
    /// then go in each assertion's header. Read when the configuration is; it must certify
    /// `private_key_file`'s key.
    #[serde(default, deserialize_with = "client_certificate_file")]
    pub client_certificate_file: Option<ClientCertificate>,
    /// `scopes`; default `openid`, `profile`, `email`. `openid` is always added.
    #[serde(default = "default_scopes", deserialize_with = "scopes")]
    pub scopes: Vec<String>,
    /// `post_logout_redirect_uri`: where the provider sends the browser after logout; the
    /// server's default is its `{public_url}{prefix}/logout/callback`, which checks the logout
    /// `state` and continues to `/`.
    #[serde(default)]
    pub post_logout_redirect_uri: Option<HttpUrl>,
    /// `id_token_algorithms`: allowed ID token signing algorithms. Left out: the ones the
    /// provider advertises among [`OidcProviderConfig::default_algorithms`] (see
    /// [`OidcProviderConfig::allowed_algorithms`]).
    #[serde(default, deserialize_with = "algorithms")]
    pub id_token_algorithms: Option<Vec<Algorithm>>,
    /// `clock_skew_secs`: tolerated clock difference for `exp`/`iat`/`nbf`; default 60.
    #[serde(
        rename = "clock_skew_secs",
        default = "default_clock_skew",
        deserialize_with = "seconds"
    )]
    pub clock_skew: Duration,
    /// `http_timeout_secs`: time limit of each call to the provider; default 10, not zero.
    #[serde(
        rename = "http_timeout_secs",
        default = "default_http_timeout",
        deserialize_with = "positive_seconds"
    )]
    pub http_timeout: Duration,
    /// `pushed_authorization_requests`: when each login's parameters go to the provider's
    /// pushed authorization request endpoint (RFC 9126) first; default `if_offered` (see
    /// [`PushedAuthorization`]).
    #[serde(default)]
    pub pushed_authorization_requests: PushedAuthorization,
    /// `ca_file`: a PEM file of the CA certificates the provider's HTTPS certificate is
    /// verified against, instead of the built-in web PKI roots (a provider under a private CA).
    /// Read when the configuration is.
    #[serde(default, deserialize_with = "ca_file")]
    pub ca_file: Option<CaCertificates>,
}

/// The certificates of a `ca_file`, read and parsed when the configuration is loaded, so a
/// missing or broken file stops the start instead of failing every login.
#[derive(Clone)]
pub struct CaCertificates {
    path: PathBuf,
    certificates: Vec<reqwest::Certificate>,
}

impl CaCertificates {
    /// Reads the PEM file at `path`: every certificate in it.
    ///
    /// # Errors
    /// The file cannot be read, is not PEM, or holds no certificate; the message names it.
    pub fn read(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|e| format!("{shown:?} cannot be read: {e}"))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{shown:?} is not valid PEM: {e}"))?;
        if certificates.is_empty() {
            return Err(format!(
                "{shown:?} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            certificates,
        })
    }

    /// The certificates.
    pub fn certificates(&self) -> &[reqwest::Certificate] {
        &self.certificates
    }
}

impl fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} ({} CA certificates)",
            self.path,
            self.certificates.len()
        )
    }
}

fn private_key_file<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ClientAssertionKey>, D::Error> {
    let path = PathBuf::deserialize(deserializer)?;
    ClientAssertionKey::read(&path)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn client_certificate_file<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ClientCertificate>, D::Error> {
    let path = PathBuf::deserialize(deserializer)?;
    ClientCertificate::read(&path)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn assertion_algorithm<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Algorithm>, D::Error> {
    let name = String::deserialize(deserializer)?;
    match parse_algorithm(&name) {
        Some(algorithm) => Ok(Some(algorithm)),
        None => Err(serde::de::Error::custom(format!(
            "{name:?} is not one of RS256, PS256, ES256, ES384, EdDSA"
        ))),
    }
}

fn ca_file<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<CaCertificates>, D::Error> {
    let path = PathBuf::deserialize(deserializer)?;
    CaCertificates::read(&path)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl ProviderSection {
    /// The keys whose values do not go together with `client_auth`, each with what is wrong:
    /// a secret method without `client_secret`, `private_key_jwt` without `private_key_file`,
    /// and a key of the other kind of authentication (set but unused, it would mislead).
    pub fn credential_problems(&self) -> Vec<(&'static str, String)> {
        let method = self.client_auth.as_str();
        let mut problems = Vec::new();
        if self.client_auth.uses_secret() {
            if self.client_secret.is_none() {
                problems.push((
                    "client_secret",
                    format!(
                        "is required with client_auth = {method:?} (or use client_auth = \
                         \"private_key_jwt\" with a private_key_file)"
                    ),
                ));
            }
            for (key, set) in [
                ("private_key_file", self.private_key_file.is_some()),
                ("private_key_id", self.private_key_id.is_some()),
                (
                    "client_assertion_audience",
                    self.client_assertion_audience.is_some(),
                ),
                (
                    "client_assertion_algorithm",
                    self.client_assertion_algorithm.is_some(),
                ),
                (
                    "client_certificate_file",
                    self.client_certificate_file.is_some(),
                ),
            ] {
                if set {
                    problems.push((
                        key,
                        format!(
                            "is used only with client_auth = \"private_key_jwt\", not with \
                             {method:?}"
                        ),
                    ));
                }
            }
        } else {
            if self.private_key_file.is_none() {
                problems.push((
                    "private_key_file",
                    format!("is required with client_auth = {method:?}"),
                ));
            }
            if self.client_secret.is_some() {
                problems.push((
                    "client_secret",
                    format!("is not used with client_auth = {method:?}: leave it out"),
                ));
            }
            if let Err(problem) = self.assertion_key() {
                problems.push(problem);
            }
        }
        problems
    }

    /// The `private_key_jwt` key as configured: `private_key_file` with its `kid`, pinned
    /// algorithm and certificate. `Ok(None)` without a key file.
    ///
    /// # Errors
    /// The key and the message when the algorithm or the certificate does not fit the key.
    fn assertion_key(&self) -> Result<Option<ClientAssertionKey>, (&'static str, String)> {
        let Some(mut key) = self.private_key_file.clone() else {
            return Ok(None);
        };
        if let Some(id) = &self.private_key_id {
            key = key.with_key_id(id.clone());
        }
        if let Some(algorithm) = self.client_assertion_algorithm {
            key = key
                .with_algorithm(algorithm)
                .map_err(|e| ("client_assertion_algorithm", e))?;
        }
        if let Some(certificate) = self.client_certificate_file.clone() {
            key = key.with_certificate(certificate).map_err(|e| {
                (
                    "client_certificate_file",
                    format!("{e}: see private_key_file"),
                )
            })?;
        }
        Ok(Some(key))
    }

    /// The client configuration for provider `id`. `default_post_logout_redirect_uri` applies
    /// when the section names none; `userinfo` says whether to call the userinfo endpoint.
    pub fn to_config(
        &self,
        id: ProviderId,
        default_post_logout_redirect_uri: &str,
        userinfo: bool,
    ) -> OidcProviderConfig {
        // A section with `credential_problems` fails `OidcProviderConfig::validate` instead
        // (a key that does not fit its algorithm or certificate is left out, so it is missing).
        let private_key = self.assertion_key().ok().flatten();
        OidcProviderConfig {
            client_auth: self.client_auth,
            private_key,
            client_assertion_audience: self.client_assertion_audience.unwrap_or_default(),
            scopes: self.scopes.clone(),
            post_logout_redirect_uri: Some(
                self.post_logout_redirect_uri
                    .as_ref()
                    .map_or(default_post_logout_redirect_uri, HttpUrl::as_str)
                    .to_owned(),
            ),
            allowed_algorithms: self.id_token_algorithms.clone(),
            clock_skew: self.clock_skew,
            http_timeout: self.http_timeout,
            pushed_authorization_requests: self.pushed_authorization_requests,
            userinfo,
            ..OidcProviderConfig::new(
                id,
                self.issuer.as_str(),
                self.client_id.clone(),
                self.client_secret
                    .clone()
                    .unwrap_or_else(|| Secret::new("")),
            )
        }
    }
}

impl fmt::Debug for ProviderSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSection")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_auth", &self.client_auth)
            .field("private_key_file", &self.private_key_file)
            .field("private_key_id", &self.private_key_id)
            // What applies: left out is the default, as written out.
            .field(
                "client_assertion_audience",
                &self.client_assertion_audience.unwrap_or_default(),
            )
            .field(
                "client_assertion_algorithm",
                &self.client_assertion_algorithm,
            )
            .field("client_certificate_file", &self.client_certificate_file)
            .field("scopes", &self.scopes)
            .field("post_logout_redirect_uri", &self.post_logout_redirect_uri)
            .field("id_token_algorithms", &self.id_token_algorithms)
            .field("clock_skew", &self.clock_skew)
            .field("http_timeout", &self.http_timeout)
            .field(
                "pushed_authorization_requests",
                &self.pushed_authorization_requests,
            )
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

fn default_clock_skew() -> Duration {
    OidcProviderConfig::DEFAULT_CLOCK_SKEW
}

fn default_http_timeout() -> Duration {
    OidcProviderConfig::DEFAULT_HTTP_TIMEOUT
}

fn non_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    if value.is_empty() {
        return Err(serde::de::Error::custom(SettingError::Empty));
    }
    Ok(value)
}

fn optional_non_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    non_empty(deserializer).map(Some)
}

/// A client secret: a non-empty string. A value of another type is refused without being
/// echoed, since it may be the secret itself.
fn client_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    struct SecretVisitor;
    impl serde::de::Visitor<'_> for SecretVisitor {
        type Value = Secret;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Secret, E> {
            if value.is_empty() {
                return Err(E::custom(SettingError::Empty));
            }
            Ok(Secret::new(value))
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
            Err(E::custom(
                "must be a string (quote it); the value is not shown",
            ))
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
            Err(E::custom(
                "must be a string (quote it); the value is not shown",
            ))
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
            Err(E::custom(
                "must be a string (quote it); the value is not shown",
            ))
        }

        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
            Err(E::custom(
                "must be a string (quote it); the value is not shown",
            ))
        }
    }
    // `any`: a deserializer then hands a number to the visitor rather than describing it itself.
    deserializer.deserialize_any(SecretVisitor).map(Some)
}

fn scopes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let scopes = Vec::<String>::deserialize(deserializer)?;
    check_scopes(&scopes).map_err(serde::de::Error::custom)?;
    Ok(scopes)
}

fn algorithms<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Algorithm>>, D::Error> {
    let names = Vec::<String>::deserialize(deserializer)?;
    parse_algorithms(&names)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

fn positive_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    match u64::deserialize(deserializer)? {
        0 => Err(serde::de::Error::custom(SettingError::Zero)),
        secs => Ok(Duration::from_secs(secs)),
    }
}

/// One provider's configuration, built by the server from its configuration file.
///
/// [`OidcProviderConfig::new`] fills in the defaults; [`OidcProviderConfig::validate`] (also
/// run by [`OidcProvider::discover`](crate::OidcProvider::discover)) refuses unusable values
/// before any network call.
#[derive(Clone)]
pub struct OidcProviderConfig {
    /// Name.
    pub id: ProviderId,
    /// Issuer identifier: must equal the `issuer` of the discovery document exactly.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret (redacted in `Debug`), for the secret methods of `client_auth`; empty
    /// with `private_key_jwt`.
    pub client_secret: Secret,
    /// Token endpoint authentication.
    pub client_auth: ClientAuthMethod,
    /// The private key of `private_key_jwt`; `None` with the secret methods.
    pub private_key: Option<ClientAssertionKey>,
    /// What a `private_key_jwt` assertion's `aud` names.
    pub client_assertion_audience: AssertionAudience,
    /// Scopes (`openid` is added when missing).
    pub scopes: Vec<String>,
    /// `post_logout_redirect_uri` for RP-initiated logout.
    pub post_logout_redirect_uri: Option<String>,
    /// Allowed ID token algorithms. HMAC algorithms are refused by
    /// [`OidcProviderConfig::validate`] (`none` has no [`Algorithm`] value at all). `None`: the
    /// provider's advertised `id_token_signing_alg_values_supported` that are among
    /// [`OidcProviderConfig::default_algorithms`], or `RS256` when it advertises none (OIDC
    /// Discovery makes RS256 the one every provider supports).
    pub allowed_algorithms: Option<Vec<Algorithm>>,
    /// Tolerated clock difference for `exp`, `iat` and `nbf`.
    pub clock_skew: Duration,
    /// Time limit of each call to the provider.
    pub http_timeout: Duration,
    /// Minimum time between JWKS refetches for unknown `kid`s.
    pub jwks_refetch_interval: Duration,
    /// Call the userinfo endpoint (when the provider has one).
    pub userinfo: bool,
    /// When authorization requests are pushed (RFC 9126): by default when the provider offers
    /// it. A provider that requires pushed requests gets them whatever this says.
    pub pushed_authorization_requests: PushedAuthorization,
}

impl OidcProviderConfig {
    /// Default [`OidcProviderConfig::clock_skew`].
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
    /// Default [`OidcProviderConfig::http_timeout`].
    pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`OidcProviderConfig::jwks_refetch_interval`].
    pub const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

    /// A configuration with the defaults: `client_secret_basic`, scope `openid`, no
    /// post-logout redirect, [`OidcProviderConfig::default_algorithms`], 60 s skew, 10 s
    /// timeout, 30 s JWKS refetch interval, no userinfo call, pushed authorization requests when
    /// the provider offers them.
    pub fn new(
        id: ProviderId,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
    ) -> Self {
        Self {
            id,
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret,
            client_auth: ClientAuthMethod::ClientSecretBasic,
            private_key: None,
            client_assertion_audience: AssertionAudience::Issuer,
            scopes: vec!["openid".to_owned()],
            post_logout_redirect_uri: None,
            allowed_algorithms: None,
            clock_skew: Self::DEFAULT_CLOCK_SKEW,
            http_timeout: Self::DEFAULT_HTTP_TIMEOUT,
            jwks_refetch_interval: Self::DEFAULT_JWKS_REFETCH_INTERVAL,
            userinfo: false,
            pushed_authorization_requests: PushedAuthorization::IfOffered,
        }
    }

    /// The same configuration authenticating with `private_key_jwt` and `key` instead of a
    /// client secret (which is emptied).
    #[must_use]
    pub fn with_private_key_jwt(mut self, key: ClientAssertionKey) -> Self {
        self.client_auth = ClientAuthMethod::PrivateKeyJwt;
        self.client_secret = Secret::new("");
        self.private_key = Some(key);
        self
    }

    /// The default algorithm allowlist: RS256, PS256, ES256, ES384, EdDSA.
    pub fn default_algorithms() -> Vec<Algorithm> {
        vec![
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ]
    }

    /// Checks the configuration without touching the network.
    ///
    /// # Errors
    /// [`DiscoveryError::Config`] when the algorithm allowlist is empty or names an HMAC
    /// algorithm, the issuer is not an absolute `http(s)` URL without query and fragment, the
    /// client id is empty, the credential does not fit `client_auth` (a non-empty secret for
    /// the secret methods and no private key; a private key and no secret for
    /// `private_key_jwt`), a scope contains whitespace, the post-logout redirect URI is not an
    /// http(s) URL, or the HTTP timeout is zero: the rules [`ProviderSection`] applies when
    /// the configuration file is read.
    pub fn validate(&self) -> Result<(), DiscoveryError> {
        let configured = self.allowed_algorithms.as_deref().unwrap_or_default();
        if let Some(alg) = configured.iter().find(|a| !id_token::is_asymmetric(**a)) {
            return Err(DiscoveryError::Config(format!(
                "{alg:?} is not allowed for ID tokens (HMAC with a public JWKS is unsafe)"
            )));
        }
        if self.allowed_algorithms.as_ref().is_some_and(Vec::is_empty) {
            return Err(config_error(
                "id_token_algorithms",
                SettingError::NoAlgorithm,
            ));
        }
        Issuer::parse(&self.issuer).map_err(|e| config_error("issuer", e))?;
        if self.client_id.is_empty() {
            return Err(config_error("client_id", SettingError::Empty));
        }
        let method = self.client_auth.as_str();
        if self.client_auth.uses_secret() {
            if self.client_secret.expose().is_empty() {
                return Err(config_error("client_secret", SettingError::Empty));
            }
            if self.private_key.is_some() {
                return Err(config_error(
                    "private_key",
                    format!("is used only with private_key_jwt, not with {method}"),
                ));
            }
        } else {
            if self.private_key.is_none() {
                return Err(config_error(
                    "private_key",
                    format!("is required with {method}"),
                ));
            }
            if !self.client_secret.expose().is_empty() {
                return Err(config_error(
                    "client_secret",
                    format!("is not used with {method}: leave it empty"),
                ));
            }
        }
        check_scopes(&self.scopes).map_err(|e| config_error("scopes", e))?;
        if let Some(uri) = &self.post_logout_redirect_uri {
            HttpUrl::parse(uri).map_err(|e| config_error("post_logout_redirect_uri", e))?;
        }
        if self.http_timeout.is_zero() {
            return Err(config_error("http_timeout", SettingError::Zero));
        }
        Ok(())
    }
}

impl fmt::Debug for OidcProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProviderConfig")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_auth", &self.client_auth)
            .field("private_key", &self.private_key)
            .field("client_assertion_audience", &self.client_assertion_audience)
            .field("scopes", &self.scopes)
            .field("post_logout_redirect_uri", &self.post_logout_redirect_uri)
            .field("allowed_algorithms", &self.allowed_algorithms)
            .field("clock_skew", &self.clock_skew)
            .field("http_timeout", &self.http_timeout)
            .field("jwks_refetch_interval", &self.jwks_refetch_interval)
            .field("userinfo", &self.userinfo)
            .field(
                "pushed_authorization_requests",
                &self.pushed_authorization_requests,
            )
            .finish()
    }
}

#[cfg(test)]
mod tests;
