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
