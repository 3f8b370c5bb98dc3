//! `[admin]`: the operators' admin API (`bff_http::admin_app`), off unless `listen` is set.
//!
//! The bearer token is configured only as its SHA-256 (`token_sha256`, 64 hex digits; e.g.
//! `printf %s "$TOKEN" | sha256sum`), so the configuration never holds the credential itself.
//! A value that is not such a hash is refused without being shown: it might be the token.

use std::net::SocketAddr;

use bff_http::AdminCredential;
use serde::{Deserialize, Deserializer};

use super::problem::KeyPath;
use super::reader::Reader;

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `listen`: the admin API's own socket address (e.g. `127.0.0.1:9090`); absent: no admin
    /// API. Never the browser listener.
    #[serde(default, deserialize_with = "optional_socket_address")]
    pub listen: Option<SocketAddr>,
    /// `token_sha256`: SHA-256 of the admin bearer token, hex. Required with `listen`.
    #[serde(default, deserialize_with = "credential_hash")]
    pub token_sha256: Option<AdminCredential>,
}

impl AdminConfig {
    /// The listener address and credential when the admin API is on.
    pub fn enabled(&self) -> Option<(SocketAddr, &AdminCredential)> {
        Some((self.listen?, self.token_sha256.as_ref()?))
    }

    /// Reports a half-configured section, and an admin listener on the browser listener's
    /// address.
    pub(crate) fn check(
        &self,
        path: &KeyPath,
        server_listen: Option<SocketAddr>,
        reader: &mut Reader<'_>,
    ) {
        match (&self.listen, &self.token_sha256) {
            (Some(_), None) => reader.problem(
                &path.key("token_sha256"),
                "is required when admin.listen is set: the SHA-256 of the admin token, 64 hex digits",
            ),
            (None, Some(_)) => reader.problem(
                &path.key("listen"),
                "is required when admin.token_sha256 is set (the admin API is off without it)",
            ),
            _ => {}
        }
        if let (Some(admin), Some(server)) = (self.listen, server_listen)
            && admin.port() != 0
            && admin == server
        {
            reader.problem(
                &path.key("listen"),
                format!(
                    "must differ from server.listen ({server}): the admin API has its own listener"
                ),
            );
        }
    }
}

pub(super) fn optional_socket_address<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "must be an address like 127.0.0.1:9090 or [::1]:9090, got {text:?}"
        ))
    })
}

fn credential_hash<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<AdminCredential>, D::Error> {
    let text = String::deserialize(deserializer)
        .map_err(|_| serde::de::Error::custom("must be a string"))?;
    // The value is not echoed: a mistake here is often the plain token.
    AdminCredential::from_sha256_hex(&text)
        .map(Some)
        .map_err(|_| {
            serde::de::Error::custom(
                "must be the SHA-256 of the admin token as 64 hex digits (printf %s \"$TOKEN\" | sha256sum), never the token itself",
            )
        })
}

#[cfg(test)]
pub(super) mod tests {
    use crate::config::{Config, ConfigError};

    /// Any 64 hex digits stand for the hash of some token.
    const HASH: &str = "7a2f6d8dd7a3d0c6bb7d0a3c2e3f6a1e5f1d2b0c9a8e7d6c5b4a392817161514";

    /// A valid configuration listening on 127.0.0.1:8080, plus `admin` (any TOML; the
    /// `[metrics]` tests use it too).
    pub(in crate::config) fn with_admin(admin: &str) -> String {
        format!(
            r#"
default_provider = "main"
[server]
public_url = "https://app.example"
listen = "127.0.0.1:8080"
[[vault_keys]]
id = "k1"
key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
[providers.main]
issuer = "https://idp.example"
client_id = "bff"
client_secret = "s3cret"
{admin}
"#
        )
    }

    /// The problem lines of `text` with `env`, none when it is valid.
    pub(in crate::config) fn lines(text: &str, env: &[(&str, &str)]) -> Vec<String> {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        match Config::from_toml_str(text, env) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(lines)) => lines,
            Err(other) => vec![other.to_string()],
        }
    }

    #[test]
    fn the_admin_api_is_off_by_default() {
        let config = Config::from_toml_str(&with_admin(""), Vec::new()).unwrap();
        assert!(config.admin.enabled().is_none());
    }

    #[test]
    fn listen_and_hash_turn_it_on_from_the_file_or_the_environment() {
        let text = with_admin(&format!(
            "[admin]\nlisten = \"127.0.0.1:9090\"\ntoken_sha256 = \"{HASH}\""
        ));
        let config = Config::from_toml_str(&text, Vec::new()).unwrap();
        let (address, credential) = config.admin.enabled().unwrap();
        assert_eq!(address.to_string(), "127.0.0.1:9090");
        assert_eq!(credential.fingerprint(), &HASH[..8]);
        // Debug never shows the whole hash.
        assert!(!format!("{config:?}").contains(HASH));

        let env = [
            ("BFF_ADMIN__LISTEN", "[::1]:9091"),
            ("BFF_ADMIN__TOKEN_SHA256", HASH),
        ];
        let config = Config::from_toml_str(
            &with_admin(""),
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .unwrap();
        assert_eq!(config.admin.enabled().unwrap().0.to_string(), "[::1]:9091");
    }

    #[test]
    fn half_configured_or_wrong_values_are_each_one_line() {
        assert_eq!(
            lines(&with_admin("[admin]\nlisten = \"127.0.0.1:9090\""), &[]),
            [
                "admin.token_sha256 (BFF_ADMIN__TOKEN_SHA256): is required when admin.listen is set: the SHA-256 of the admin token, 64 hex digits"
            ]
        );
        assert_eq!(
            lines(
                &with_admin(&format!("[admin]\ntoken_sha256 = \"{HASH}\"")),
                &[]
            ),
            [
                "admin.listen (BFF_ADMIN__LISTEN): is required when admin.token_sha256 is set (the admin API is off without it)"
            ]
        );
        assert_eq!(
            lines(
                &with_admin(&format!(
                    "[admin]\nlisten = \"127.0.0.1:8080\"\ntoken_sha256 = \"{HASH}\""
                )),
                &[]
            ),
            [
                "admin.listen (BFF_ADMIN__LISTEN): must differ from server.listen (127.0.0.1:8080): the admin API has its own listener"
            ]
        );
        assert_eq!(
            lines(
                &with_admin("[admin]\nlisten = \"anywhere\"\ntoken = \"x\""),
                &[]
            ),
            [
                "admin.listen (BFF_ADMIN__LISTEN): must be an address like 127.0.0.1:9090 or [::1]:9090, got \"anywhere\"",
                "admin.token (BFF_ADMIN__TOKEN): unknown key (expected one of: listen, token_sha256)",
            ]
        );
    }

    #[test]
    fn a_plain_token_in_place_of_its_hash_is_refused_without_being_shown() {
        let plain = "my-very-secret-admin-token";
        let got = lines(
            &with_admin(&format!(
                "[admin]\nlisten = \"127.0.0.1:9090\"\ntoken_sha256 = \"{plain}\""
            )),
            &[],
        );
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].starts_with("admin.token_sha256 (BFF_ADMIN__TOKEN_SHA256): must be the SHA-256"),
            "{got:#?}"
        );
        assert!(!got[0].contains(plain));
        let got = lines(
            &with_admin("[admin]\nlisten = \"127.0.0.1:9090\""),
            &[("BFF_ADMIN__TOKEN_SHA256", plain)],
        );
        assert!(got.iter().all(|l| !l.contains(plain)), "{got:#?}");
        assert!(
            got.iter().any(|l| l.contains("BFF_ADMIN__TOKEN_SHA256")),
            "{got:#?}"
        );
    }
}
