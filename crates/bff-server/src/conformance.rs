//! The start-up conformance self-check: for each requirement that
//! draft-ietf-oauth-browser-based-apps-27 section 6.1 sets for a Backend-for-Frontend, what the
//! running configuration does about it.
//!
//! Some requirements are kept by the code whatever the configuration says (PKCE S256, the CSRF
//! header, the session bounded by the refresh token): the report says so and how. Others
//! depend on settings: the session cookie's attributes (plain-HTTP development mode drops
//! `Secure`) and its name (`http.session_cookie` may name it without the `__Host-Http-`
//! prefix). Cookie attributes are read from the `Set-Cookie` value `bff-http` really writes,
//! not from a list kept here.
//!
//! A violated MUST refuses the configuration (so `bff-server` does not start and
//! `check-config` fails) unless the development switch that allows it is on; the server then
//! starts and says so loudly. The report is printed by `check-config` and logged at start.

use std::fmt;

use poem::web::cookie::{Cookie, SameSite};

use crate::config::Config;

/// The draft the requirements come from.
pub const SPECIFICATION: &str = "draft-ietf-oauth-browser-based-apps-27, section 6.1";

/// One requirement of the specification for a BFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// The BFF is a confidential client.
    ConfidentialClient,
    /// Authorization code flow with PKCE, `S256`.
    CodeFlowWithPkce,
    /// The session cookie is `Secure`, `HttpOnly`, `SameSite=Strict`, `Path=/`, no `Domain`.
    CookieAttributes,
    /// The session cookie's name has the `__Host-Http-` prefix.
    CookiePrefix,
    /// Every request the BFF acts on for the session carries the CSRF header.
    CsrfHeader,
    /// The proxy forwards only to an explicit allowlist of destinations, with method limits.
    ExplicitAllowlist,
    /// The session ends no later than the refresh token.
    SessionBoundedByRefreshToken,
}

impl Requirement {
    /// Every requirement, in report order.
    pub const ALL: [Self; 7] = [
        Self::ConfidentialClient,
        Self::CodeFlowWithPkce,
        Self::CookieAttributes,
        Self::CookiePrefix,
        Self::CsrfHeader,
        Self::ExplicitAllowlist,
        Self::SessionBoundedByRefreshToken,
    ];

    /// A short name for the report.
    pub fn title(self) -> &'static str {
        match self {
            Self::ConfidentialClient => "confidential client",
            Self::CodeFlowWithPkce => "authorization code flow with PKCE S256",
            Self::CookieAttributes => {
                "session cookie Secure, HttpOnly, SameSite=Strict, Path=/, no Domain"
            }
            Self::CookiePrefix => "session cookie named __Host-Http-*",
            Self::CsrfHeader => "CSRF header on every request",
            Self::ExplicitAllowlist => "explicit allowlist of API destinations with method limits",
            Self::SessionBoundedByRefreshToken => "session bounded by the refresh token",
        }
    }
}

/// What the configuration does about one requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Kept; how.
    Met(String),
    /// Not kept.
    Violated {
        /// The configuration key that causes it.
        key: &'static str,
        /// What is wrong, in one line.
        why: String,
        /// The development switch that allows it (`dev.…`), and whether it is on.
        allowed_by: &'static str,
        /// Whether that switch is on, so the server starts anyway.
        allowed: bool,
    },
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The requirement.
    pub requirement: Requirement,
    /// Its status under the configuration.
    pub status: Status,
}

/// The self-check's result for a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One finding per requirement, in [`Requirement::ALL`] order.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The status of `requirement`.
    pub fn status(&self, requirement: Requirement) -> &Status {
        &self
            .findings
            .iter()
            .find(|f| f.requirement == requirement)
            .unwrap_or_else(|| unreachable!("every requirement is checked"))
            .status
    }

    /// The violated requirements.
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| matches!(f.status, Status::Violated { .. }))
    }

    /// The violations no development switch allows: each refuses the configuration.
    pub fn refusals(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| matches!(f.status, Status::Violated { allowed: false, .. }))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conformance self-check ({SPECIFICATION}):")?;
        for finding in &self.findings {
            let title = finding.requirement.title();
            match &finding.status {
                Status::Met(how) => writeln!(f, "  ok        {title}: {how}")?,
                Status::Violated {
                    key,
                    why,
                    allowed_by,
                    allowed,
                } => {
                    let verdict = if *allowed {
                        format!("allowed by {allowed_by} = true: DEVELOPMENT ONLY")
                    } else {
                        format!("refused; only {allowed_by} = true allows it, for development")
                    };
                    writeln!(f, "  VIOLATED  {title}: {key}: {why} ({verdict})")?;
                }
            }
        }
        Ok(())
    }
}

/// Checks `config` against every requirement.
pub fn check(config: &Config) -> Report {
    let findings = Requirement::ALL
        .iter()
        .map(|&requirement| Finding {
            requirement,
            status: status_of(requirement, config),
        })
        .collect();
    Report { findings }
}

fn status_of(requirement: Requirement, config: &Config) -> Status {
    match requirement {
        Requirement::ConfidentialClient => confidential_client(config),
        Requirement::CodeFlowWithPkce => Status::Met(
            "built in: every login is an authorization code request with \
             code_challenge_method=S256; no setting turns it off"
                .into(),
        ),
        Requirement::CookieAttributes => cookie_attributes(config),
        Requirement::CookiePrefix => cookie_prefix(config),
        Requirement::CsrfHeader => Status::Met(
            "built in: /bff calls that act on a session and every proxied call need \
             `x-csrf: 1` (WebSocket upgrades need an app Origin); no setting turns it off"
                .into(),
        ),
        Requirement::ExplicitAllowlist => explicit_allowlist(config),
        Requirement::SessionBoundedByRefreshToken => Status::Met(format!(
            "built in: a session ends when its refresh token is refused or expires \
             (refresh_expires_in), and after session.absolute_timeout_secs = {} at the latest",
            config.session.absolute_timeout_secs
        )),
    }
}

fn confidential_client(config: &Config) -> Status {
    // The configuration cannot describe a public client: every provider needs a non-empty
    // `client_secret` or, with `private_key_jwt`, a private key. Listed per provider so the
    // report shows how each authenticates.
    let how: Vec<String> = config
        .providers
        .iter()
        .map(|(name, provider)| format!("{name} ({})", provider.client_auth.as_str()))
        .collect();
    Status::Met(format!(
        "every provider authenticates at its token endpoint with a client secret or a private \
         key: {}",
        how.join(", ")
    ))
}

fn cookie_attributes(config: &Config) -> Status {
    let settings = config.http_settings();
    let header = bff_http::session_set_cookie_example(&settings);
    let missing = match Cookie::parse(&header) {
        Ok(cookie) => missing_attributes(&cookie),
        Err(_) => vec!["a parseable Set-Cookie"],
    };
    if missing.is_empty() {
        return Status::Met(format!(
            "the session cookie is set as `{}`",
            header.replacen("example", "<id>", 1)
        ));
    }
    Status::Violated {
        key: "server.public_url",
        why: format!(
            "the session cookie lacks {} (plain-HTTP development mode)",
            missing.join(", ")
        ),
        allowed_by: "dev.allow_plain_http",
        allowed: config.dev.allow_plain_http,
    }
}

/// The required attributes `cookie` lacks.
fn missing_attributes(cookie: &Cookie) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !cookie.secure() {
        missing.push("Secure");
    }
    if !cookie.http_only() {
        missing.push("HttpOnly");
    }
    if cookie.same_site() != Some(SameSite::Strict) {
        missing.push("SameSite=Strict");
    }
    if cookie.path() != Some("/") {
        missing.push("Path=/");
    }
    if cookie.domain().is_some() {
        missing.push("no Domain");
    }
    missing
}

fn cookie_prefix(config: &Config) -> Status {
    let settings = config.http_settings();
    let name = &settings.session_cookie;
    if name.starts_with("__Host-Http-") {
        return Status::Met(format!("the session cookie is {name}"));
    }
    if config.plain_http() {
        // Plain HTTP rules the prefix out: browsers refuse `__Host-` names without `Secure`.
        return Status::Violated {
            key: "server.public_url",
            why: format!(
                "the session cookie is {name:?}: browsers take __Host- names only over HTTPS"
            ),
            allowed_by: "dev.allow_plain_http",
            allowed: config.dev.allow_plain_http,
        };
    }
    Status::Violated {
        key: "http.session_cookie",
        why: format!(
            "{name:?} lacks the __Host-Http- prefix, so a sibling subdomain or a script could \
             set or shadow it"
        ),
        allowed_by: "dev.allow_nonconformant",
        allowed: config.dev.allow_nonconformant,
    }
}

fn explicit_allowlist(config: &Config) -> Status {
    let routes = config.routes.routes();
    if routes.is_empty() {
        return Status::Met("no [[routes]]: the proxy forwards nothing".into());
    }
    let listed: Vec<String> = routes
        .iter()
        .map(|route| {
            let methods: Vec<&str> = route.methods().iter().map(|m| m.as_str()).collect();
            format!("{} ({})", route.prefix(), methods.join(" "))
        })
        .collect();
    Status::Met(format!(
        "only the configured [[routes]] are forwarded, each under its upstream and with its \
         methods: {}",
        listed.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_read_from_the_header_not_assumed() {
        let good = "n=v; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=60";
        assert!(missing_attributes(&Cookie::parse(good).unwrap()).is_empty());
        let bad = "n=v; SameSite=Lax; Path=/app; Domain=example.com";
        assert_eq!(
            missing_attributes(&Cookie::parse(bad).unwrap()),
            [
                "Secure",
                "HttpOnly",
                "SameSite=Strict",
                "Path=/",
                "no Domain"
            ]
        );
    }
}
