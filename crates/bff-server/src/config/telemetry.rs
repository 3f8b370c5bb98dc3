//! `[log]` (how log lines are written) and `[tracing]` (OpenTelemetry trace export).

use bff_oidc::HttpUrl;
use serde::Deserialize;

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `format`: `json` (one JSON object per line), `pretty` (human-readable, coloured) or
    /// `plain` (human-readable, no colour codes). Default: `pretty` when standard output is a
    /// terminal, `json` otherwise (a pipe, a file, a container runtime). The level comes from
    /// `RUST_LOG` (default `info`).
    #[serde(default)]
    pub format: Option<LogFormat>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, with the fields of the spans it happened in (the request's
    /// `id` among them).
    Json,
    /// One human-readable line per event, with ANSI colours.
    Pretty,
    /// [`LogFormat::Pretty`] without colours.
    Plain,
}

impl LogFormat {
    /// The configured format, else the default for where the lines go.
    pub fn resolve(configured: Option<Self>, to_terminal: bool) -> Self {
        configured.unwrap_or(if to_terminal {
            Self::Pretty
        } else {
            Self::Json
        })
    }
}

/// `[tracing]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// `otlp_endpoint`: the OpenTelemetry collector's OTLP/HTTP base URL (e.g.
    /// `http://127.0.0.1:4318`); spans are sent as protobuf to `{otlp_endpoint}/v1/traces`.
    /// Absent (the default): no traces are exported.
    #[serde(default)]
    pub otlp_endpoint: Option<HttpUrl>,
    /// `service_name`: the `service.name` of the exported spans; default `bff-server`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: default_service_name(),
        }
    }
}

impl TracingConfig {
    /// Where spans are sent, when export is on: the base URL plus `/v1/traces` (the OTLP/HTTP
    /// path for traces).
    pub fn traces_url(&self) -> Option<String> {
        self.otlp_endpoint
            .as_ref()
            .map(|base| format!("{}/v1/traces", base.as_str().trim_end_matches('/')))
    }
}

fn default_service_name() -> String {
    "bff-server".to_owned()
}
