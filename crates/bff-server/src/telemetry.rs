//! What the server tells its operators: log lines on standard output and, when configured,
//! traces sent to an OpenTelemetry collector.
//!
//! Logs ([`LogFormat`]): JSON lines by default when standard output is not a terminal (a pipe,
//! a file, a container runtime), human-readable and coloured on a terminal, or as `[log] format`
//! says; colour codes are never written in the `json` and `plain` formats. Every line written
//! while a request is served carries the request's span and so its `id` (in JSON, under
//! `spans`; the JSON lines are `crate::json_log`'s). The level comes from `RUST_LOG` (default
//! `info`; [`LogFilter`]). Lines go through the batched writer of `crate::logging`.
//!
//! Traces (`[tracing] otlp_endpoint`, off by default): the `tracing` spans of the `bff_*` crates
//! (`request`, `upstream`, `store`, `provider`; see `bff_http` and `crate::traced`) become
//! OpenTelemetry spans, batched and sent over OTLP/HTTP as protobuf by the SDK's export thread.
//! The trace layer has a filter of its own, so `RUST_LOG` quietening the logs does not cut
//! spans out of traces, and the spans of the HTTP libraries (the exporter's own calls among
//! them) never enter one. `request` is an `info` span (every log line of a request carries its
//! id); `upstream`, `store` and `provider` are `debug` spans, so without trace export and at
//! the default `info` level they are never built (log lines name them from `debug` on).

use std::io::{self, IsTerminal as _};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, FilterFn, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

use crate::config::{Config, LogConfig, LogFormat, TracingConfig};
use crate::json_log::{JsonFields, JsonLines};
use crate::logging::{self, LogGuard};

/// Setting up logs or traces failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (a URL the HTTP client refuses, say).
    #[error("tracing.otlp_endpoint: cannot export traces there: {0}")]
    Exporter(String),
    /// Another subscriber was installed first.
    #[error("a log subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps logs and traces going; dropping it sends the spans not yet exported and writes the
/// last log lines. Keep it until the end of `main`, after the runtime has stopped.
#[must_use = "dropping it stops trace export and the log writer"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    logs: Option<LogGuard>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("exporting_traces", &self.traces.is_some())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Sends every finished span now, waiting for the collector (blocking: call it outside
    /// async code, or from `spawn_blocking`).
    pub fn flush(&self) {
        if let Some(traces) = &self.traces
            && let Err(e) = traces.force_flush()
        {
            tracing::warn!(error = %e, "exporting traces failed");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(traces) = self.traces.take()
            && let Err(e) = traces.shutdown()
        {
            tracing::warn!(error = %e, "exporting the last traces failed");
        }
        drop(self.logs.take());
    }
}

/// Installs the process's logs and traces as `config` says, writing to standard output with
/// the level from `RUST_LOG`.
///
/// # Errors
/// [`TelemetryError`] when the exporter cannot be built or a subscriber is already installed.
pub fn init(config: &Config) -> Result<Telemetry, TelemetryError> {
    init_with(&config.log, &config.tracing)
}

/// [`init`] from the two sections (the benchmark's server has no whole configuration).
///
/// # Errors
/// See [`init`].
pub fn init_with(log: &LogConfig, tracing: &TracingConfig) -> Result<Telemetry, TelemetryError> {
    let format = LogFormat::resolve(log.format, io::stdout().is_terminal());
    let (writer, guard) = logging::batched(Box::new(io::stdout()));
    let filter = LogFilter::from_env();
    let (subscriber, mut telemetry) = subscriber(format, filter, tracing, writer)?;
    telemetry.logs = Some(guard);
    subscriber
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(telemetry)
}

/// Which log lines are written: `RUST_LOG`'s directives (default `info`).
///
/// Directives of targets and levels only (`info`, `warn,bff_http=debug`), nearly every
/// configuration, are a static [`Targets`] filter, which decides once per call site. Directives
/// that name spans or fields (`bff_http[request]=debug`) need [`EnvFilter`], which looks up every
/// span when it is made, entered, left and closed, behind locks shared by all threads: about 1%
/// of `GET /bff/user`'s CPU for the one `request` span (BENCHMARKS.md).
#[derive(Debug)]
pub enum LogFilter {
    /// Targets and levels.
    Targets(Box<Targets>),
    /// Span or field directives.
    Env(Box<EnvFilter>),
}

impl LogFilter {
    /// `directives` as a static filter when it has only targets and levels, else as an
    /// [`EnvFilter`].
    ///
    /// # Errors
    /// `EnvFilter`'s reason when `directives` is neither.
    pub fn parse(directives: &str) -> Result<Self, String> {
        // Spans and fields are written in brackets (`target[span{field=value}]=level`), which
        // `Targets` would read as part of a target's name.
        let names_spans_or_fields = directives.contains(['[', ']', '{', '}']);
        if !names_spans_or_fields && let Ok(targets) = directives.parse::<Targets>() {
            return Ok(Self::Targets(Box::new(targets)));
        }
        EnvFilter::try_new(directives)
            .map(|filter| Self::Env(Box::new(filter)))
            .map_err(|e| e.to_string())
    }

    /// `info` for every target, the default.
    pub fn info() -> Self {
        Self::Targets(Box::new(
            Targets::new().with_default(tracing::level_filters::LevelFilter::INFO),
        ))
    }

    /// `RUST_LOG`'s directives, or [`Self::info`] without them. Directives that are not a
    /// filter are said on standard error, and the default is used: logging cannot log it yet.
    pub fn from_env() -> Self {
        let directives = match std::env::var(EnvFilter::DEFAULT_ENV) {
            Ok(directives) if !directives.trim().is_empty() => directives,
            _ => return Self::info(),
        };
        Self::parse(&directives).unwrap_or_else(|reason| {
            eprintln!(
                "bff-server: {} = {directives:?} is not a log filter ({reason}); logging at info",
                EnvFilter::DEFAULT_ENV
            );
            Self::info()
        })
    }
}

impl From<EnvFilter> for LogFilter {
    fn from(filter: EnvFilter) -> Self {
        Self::Env(Box::new(filter))
    }
}

/// The subscriber [`init`] installs, writing `format` lines at `filter`'s levels to `writer`, and
/// exporting traces as `tracing` says; for tests that install it on their own thread
/// (`tracing::subscriber::set_default`) and read what it wrote and sent.
///
/// # Errors
/// [`TelemetryError::Exporter`] when the exporter cannot be built.
pub fn subscriber<W>(
    format: LogFormat,
    filter: impl Into<LogFilter>,
    tracing: &TracingConfig,
    writer: W,
) -> Result<(impl tracing::Subscriber + Send + Sync + 'static, Telemetry), TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = filter.into();
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    let log_layer: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => lines.fmt_fields(JsonFields).event_format(JsonLines).boxed(),
        LogFormat::Pretty => lines.with_ansi(true).boxed(),
        LogFormat::Plain => lines.with_ansi(false).boxed(),
    };
    let Some(url) = tracing.traces_url() else {
        // Logs only: `RUST_LOG`'s filter in front of everything, so a disabled span or event is
        // never built. (A per-layer filter, as with traces below, is consulted again on every
        // event, span and span entry: a few per cent of a request's CPU.)
        let registry = Registry::default().with(log_layer);
        let subscriber: Box<dyn tracing::Subscriber + Send + Sync> = match filter {
            LogFilter::Targets(targets) => Box::new(registry.with(*targets)),
            LogFilter::Env(env) => Box::new(registry.with(*env)),
        };
        return Ok((
            subscriber,
            Telemetry {
                traces: None,
                logs: None,
            },
        ));
    };
    let provider = tracer_provider(&url, &tracing.service_name)?;
    let tracer = provider.tracer("bff-server");
    let ours = FilterFn::new(|metadata| metadata.target().starts_with("bff_"));
    let layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![
        match filter {
            LogFilter::Targets(targets) => log_layer.with_filter(*targets).boxed(),
            LogFilter::Env(env) => log_layer.with_filter(*env).boxed(),
        },
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(ours)
            .boxed(),
    ];
    let traces = Some(provider);
    let subscriber: Box<dyn tracing::Subscriber + Send + Sync> =
        Box::new(Registry::default().with(layers));
    Ok((subscriber, Telemetry { traces, logs: None }))
}

/// The SDK's tracer provider, batching spans to `url` (OTLP/HTTP, protobuf).
fn tracer_provider(url: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use tracing::Level;

    use super::*;

    /// Whether an event at `level` in `target` is written under `filter` (no trace export).
    fn writes(filter: LogFilter, target: &str, level: Level) -> bool {
        let (subscriber, _telemetry) =
            subscriber(LogFormat::Json, filter, &TracingConfig::default(), io::sink).unwrap();
        tracing::subscriber::with_default(subscriber, || match (target, level) {
            ("bff_http", Level::DEBUG) => tracing::enabled!(target: "bff_http", Level::DEBUG),
            ("bff_http", Level::INFO) => tracing::enabled!(target: "bff_http", Level::INFO),
            ("bff_http::proxy", Level::DEBUG) => {
                tracing::enabled!(target: "bff_http::proxy", Level::DEBUG)
            }
            ("bff_server", Level::INFO) => tracing::enabled!(target: "bff_server", Level::INFO),
            ("bff_server", Level::WARN) => tracing::enabled!(target: "bff_server", Level::WARN),
            ("hyper", Level::INFO) => tracing::enabled!(target: "hyper", Level::INFO),
            ("hyper", Level::ERROR) => tracing::enabled!(target: "hyper", Level::ERROR),
            _ => panic!("no call site for {target} {level}"),
        })
    }

    const CASES: [(&str, Level); 7] = [
        ("bff_http", Level::DEBUG),
        ("bff_http", Level::INFO),
        ("bff_http::proxy", Level::DEBUG),
        ("bff_server", Level::INFO),
        ("bff_server", Level::WARN),
        ("hyper", Level::INFO),
        ("hyper", Level::ERROR),
    ];

    /// Targets-and-levels directives take the static filter, and it writes exactly the lines
    /// `EnvFilter` would have written.
    #[test]
    fn the_static_filter_writes_what_env_filter_would() {
        for directives in [
            "info",
            "warn",
            "warn,bff_http=debug",
            "bff_http=debug",
            "info,hyper=off",
            "error,bff_server=WARN",
            "trace",
            "off",
        ] {
            assert!(
                matches!(LogFilter::parse(directives), Ok(LogFilter::Targets(_))),
                "{directives}"
            );
            for (target, level) in CASES {
                assert_eq!(
                    writes(LogFilter::parse(directives).unwrap(), target, level),
                    writes(EnvFilter::new(directives).into(), target, level),
                    "{directives}: {target} {level}"
                );
            }
        }
    }

    /// Directives that name a span keep `EnvFilter`; ones that are not directives at all are
    /// refused with a reason; the default writes `info` and above.
    #[test]
    fn span_directives_keep_env_filter_garbage_is_refused_and_the_default_is_info() {
        for directives in [
            "info,bff_http[request]=debug",
            "bff_http[{id}]=debug",
            "[request]=trace",
        ] {
            assert!(
                matches!(LogFilter::parse(directives), Ok(LogFilter::Env(_))),
                "{directives}"
            );
        }
        for garbage in ["bff_http=loud=2", "bff_http=loud"] {
            let reason = LogFilter::parse(garbage).err();
            assert!(reason.is_some_and(|r| !r.is_empty()), "{garbage}");
        }
        for (target, level) in CASES {
            assert_eq!(
                writes(LogFilter::info(), target, level),
                writes(EnvFilter::new("info").into(), target, level),
                "{target} {level}"
            );
        }
    }
}
