//! `[metrics]`: the Prometheus `/metrics` endpoint (`crate::metrics`), off unless `listen` is
//! set. It has its own listener, never the browser's: metrics describe every user's traffic and
//! are for the operators' network only.

use std::net::SocketAddr;

use serde::Deserialize;

use super::admin::optional_socket_address;
use super::problem::KeyPath;
use super::reader::Reader;

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `listen`: the socket address serving `GET /metrics` (e.g. `127.0.0.1:9464`); absent:
    /// no metrics listener.
    #[serde(default, deserialize_with = "optional_socket_address")]
    pub listen: Option<SocketAddr>,
}

impl MetricsConfig {
    /// Refuses a metrics listener on the browser's or the admin API's address.
    pub(crate) fn check(
        &self,
        path: &KeyPath,
        others: &[(&str, Option<SocketAddr>)],
        reader: &mut Reader<'_>,
    ) {
        let Some(metrics) = self.listen else {
            return;
        };
        for (name, other) in others {
            if let Some(other) = other
                && metrics.port() != 0
                && metrics == *other
            {
                reader.problem(
                    &path.key("listen"),
                    format!("must differ from {name} ({other}): metrics have their own listener"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    // The same base configuration (listening on 127.0.0.1:8080) as the `[admin]` tests.
    use crate::config::admin::tests::{lines, with_admin as with_metrics};

    #[test]
    fn metrics_are_off_by_default_and_on_from_the_file_or_the_environment() {
        let config = Config::from_toml_str(&with_metrics(""), Vec::new()).unwrap();
        assert!(config.metrics.listen.is_none());
        let text = with_metrics("[metrics]\nlisten = \"127.0.0.1:9464\"");
        let config = Config::from_toml_str(&text, Vec::new()).unwrap();
        assert_eq!(config.metrics.listen.unwrap().to_string(), "127.0.0.1:9464");
        let env = [("BFF_METRICS__LISTEN".to_owned(), "[::1]:9465".to_owned())];
        let config = Config::from_toml_str(&with_metrics(""), env).unwrap();
        assert_eq!(config.metrics.listen.unwrap().to_string(), "[::1]:9465");
    }

    #[test]
    fn the_metrics_listener_is_its_own() {
        assert_eq!(
            lines(&with_metrics("[metrics]\nlisten = \"127.0.0.1:8080\""), &[]),
            [
                "metrics.listen (BFF_METRICS__LISTEN): must differ from server.listen (127.0.0.1:8080): metrics have their own listener"
            ]
        );
        assert_eq!(
            lines(
                &with_metrics(
                    "[metrics]\nlisten = \"127.0.0.1:9090\"\n[admin]\nlisten = \"127.0.0.1:9090\"\ntoken_sha256 = \"7a2f6d8dd7a3d0c6bb7d0a3c2e3f6a1e5f1d2b0c9a8e7d6c5b4a392817161514\""
                ),
                &[]
            ),
            [
                "metrics.listen (BFF_METRICS__LISTEN): must differ from admin.listen (127.0.0.1:9090): metrics have their own listener"
            ]
        );
        assert_eq!(
            lines(&with_metrics("[metrics]\nport = 9464"), &[]),
            ["metrics.port (BFF_METRICS__PORT): unknown key (expected one of: listen)"]
        );
    }
}
