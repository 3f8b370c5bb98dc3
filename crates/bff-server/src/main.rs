//! The `bff-server` command line: serve, or check a configuration file.

use std::path::PathBuf;
use std::process::ExitCode;

use bff_server::Config;
use clap::{Parser, Subcommand};

/// jemalloc instead of the system allocator: tokio moves a request's task between worker
/// threads, so memory allocated on one thread is often freed on another, and glibc's allocator
/// then takes the other thread's arena lock. Under load that was about one futex system call per
/// proxied request (BENCHMARKS.md); jemalloc's thread caches free without that lock. (mimalloc
/// was as fast but held 20 MB more at idle and went past the 1 GiB streaming test's 64 MiB.)
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// OAuth 2.1 / OpenID Connect Backend-for-Frontend.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). `BFF_*` environment variables override it.
    #[arg(long, short, global = true, default_value = "bff.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Validate the configuration and exit: 0 when valid, 2 with one line per problem otherwise.
    CheckConfig,
    /// Apply the PostgreSQL migrations of `[store.postgres]` and exit.
    Migrate,
    /// Print an annotated configuration file with every key (required ones set to examples)
    /// and exit: `bff-server example-config > bff.toml`.
    ExampleConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::ExampleConfig)) {
        print!("{}", bff_server::config::annotated_example());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(&cli.config, std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("bff-server: {e}");
            if matches!(e, bff_server::ConfigError::Read { .. }) {
                eprintln!(
                    "  Give a configuration with --config FILE (see `bff-server --help`); the \
                     README's \"Running it\" section has a minimal bff.toml, and \
                     `bff-server example-config` prints one with every key."
                );
            }
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!("configuration OK: {}", cli.config.display());
            print!("{}", bff_server::conformance::check(&config));
            ExitCode::SUCCESS
        }
        Command::Serve => run(config),
        Command::Migrate => migrate(&config),
        Command::ExampleConfig => unreachable!("answered before the configuration is read"),
    }
}

fn migrate(config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bff-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bff_server::wiring::migrate(config)) {
        Ok(()) => {
            println!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bff-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> ExitCode {
    // Kept to the end of `run`, after the runtime: dropping it exports the last spans and
    // writes the last log lines.
    let _telemetry = match bff_server::telemetry::init(&config) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("bff-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bff-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Before anything else: a SIGTERM that arrived before its handler existed would end the
        // process at once, without draining (seen when one came right after start).
        let stop_signal = stop_signal();
        let listener = match tokio::net::TcpListener::bind(&config.server.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bff-server: cannot listen on {}: {e}", config.server.listen);
                return ExitCode::FAILURE;
            }
        };
        let shutdown = async {
            stop_signal.await;
            tracing::info!("shutting down");
        };
        match bff_server::serve(config, listener, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bff-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Ctrl-C, or SIGTERM (what container runtimes send): the handlers are registered when this is
/// called, the returned future waits for either. Call it inside the runtime.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                    only.recv().await;
                }
                (Err(_), Err(_)) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
