//! What the server tells its operators: log lines on standard output and, when configured,
//! traces sent to an OpenTelemetry collector.
//!
//! Logs ([`LogFormat`]): JSON lines by default when standard output is not a terminal (a pipe,
//! a file, a container runtime), human-readable and coloured on a terminal, or as `[log] format`
//! says; colour codes are never written in the `json` and `plain` formats. Every line written
//! while a request is served carries the request's span and so its `id` (in JSON, under
//! `spans`; the JSON lines are [`crate::json_log`]'s). The level comes from `RUST_LOG` (default
//! `info`). Lines go through the batched writer of [`crate::logging`].
//!
//! Traces (`[tracing] otlp_endpoint`, off by default): the `tracing` spans of the `bff_*` crates
//! (`request`, `upstream`, `store`, `provider`; see `bff_http` and [`crate::traced`]) become
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
use tracing_subscriber::filter::{EnvFilter, FilterFn};
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (subscriber, mut telemetry) = subscriber(format, filter, tracing, writer)?;
    telemetry.logs = Some(guard);
    subscriber
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(telemetry)
}

/// The subscriber [`init`] installs, writing `format` lines at `filter`'s levels to `writer`, and
/// exporting traces as `tracing` says; for tests that install it on their own thread
/// (`tracing::subscriber::set_default`) and read what it wrote and sent.
///
/// # Errors
/// [`TelemetryError::Exporter`] when the exporter cannot be built.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    tracing: &TracingConfig,
    writer: W,
) -> Result<(impl tracing::Subscriber + Send + Sync + 'static, Telemetry), TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
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
        let subscriber: Box<dyn tracing::Subscriber + Send + Sync> =
            Box::new(Registry::default().with(log_layer).with(filter));
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
        log_layer.with_filter(filter).boxed(),
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
