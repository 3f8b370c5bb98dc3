//! Project tooling, the one front door: `cargo xtask <command>`.
//!
//! - `ci`: formatting, clippy with warnings denied, the API documentation with warnings denied,
//!   and every test (what `.ci/run` calls).
//! - `demo`: starts the local OpenID Provider and `bff-server` (memory store) with the sample
//!   page, and prints the URL and the test user.
//! - `e2e [--idp keycloak|local]`: the end-to-end tests (real provider, real browser, the
//!   browser walk of the sample app on PostgreSQL + Redis). `keycloak` starts Keycloak (the
//!   compose demo's image and realm), PostgreSQL and Redis with `testcontainers` and needs a
//!   Docker engine; `local` uses the pinned `oidc-provider` (`e2e/idp`) and the machine's
//!   PostgreSQL and Redis. Without `--idp`: `keycloak` when a Docker engine answers, else `local`.
//! - `codegen`: rewrites the committed OpenAPI documents (`crates/bff-http/openapi.json`, and
//!   `admin-openapi.json` beside it: the test filter matches both tests) and the
//!   listing of `bff-domain`'s public API (`crates/bff-domain/public-api.txt`), and the
//!   configuration reference (`docs/configuration.md`, `docs/bff.example.toml`).
//! - `bench stores`: session store latency at 100k and 1M sessions (results in BENCHMARKS.md).
//! - `bench backchannel`: back-channel logout by `sub` of one user among 1M stored sessions on
//!   every store (results in BENCHMARKS.md).
//! - `bench proxy`: the API proxy and `GET /bff/user` under load against a bare proxy and the
//!   upstream, with CPU per request (needs `wrk`; results in BENCHMARKS.md).
//!
//! Only the standard library: xtask must build fast and never be the thing that breaks.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("demo") => demo(),
        Some("e2e") => e2e(&args[1..]),
        Some("codegen") => codegen(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|demo|e2e [--idp keycloak|local]|codegen|bench stores|bench proxy|bench backchannel> (see xtask/src/main.rs)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

/// The repository root. Read from the `CARGO_MANIFEST_DIR` that `cargo run` sets at run time:
/// the compile-time value can name another checkout when several share one `CARGO_TARGET_DIR`
/// (cargo does not rebuild a binary just because its sources moved).
fn root() -> PathBuf {
    env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(what: &str, cmd: &mut Command) -> Result {
    eprintln!("xtask: {what}");
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Installs the pinned local OpenID Provider (`e2e/idp`) with `npm ci` when node_modules is
/// missing or older than the lockfile.
fn install_idp() -> Result {
    let idp = root().join("e2e/idp");
    let installed = idp.join("node_modules/.package-lock.json");
    let lock = idp.join("package-lock.json");
    let fresh = match (fs::metadata(&installed), fs::metadata(&lock)) {
        (Ok(i), Ok(l)) => matches!((i.modified(), l.modified()), (Ok(a), Ok(b)) if a >= b),
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    run(
        "npm ci (e2e/idp)",
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&idp),
    )
}

fn ci() -> Result {
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--check"]),
    )?;
    run(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // Other hosts embed `bff-domain` and the adapters: their API documentation must build, its
    // links resolving (a link to a private item is an error).
    run(
        "cargo doc",
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    let have_node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have_node {
        install_idp()?;
    } else if env::var_os("CI").is_some() {
        return Err("Node.js is required under CI (the local OpenID Provider runs on it)".into());
    } else {
        eprintln!(
            "xtask: node not found; tests that need the local OpenID Provider will say they skipped"
        );
    }
    // Every test: the workspace without bff-server's integration tests, then those as the
    // end-to-end run against the local provider (`e2e --idp local`, what CI promises to run).
    // Each step runs even when an earlier one failed, so one run reports every failure.
    let results = [
        run(
            "cargo test (all but bff-server's integration tests)",
            cargo().args([
                "test",
                "--workspace",
                "--all-targets",
                "--no-fail-fast",
                "--exclude",
                "bff-server",
            ]),
        ),
        run(
            "cargo test -p bff-server --lib --bins",
            cargo().args([
                "test",
                "-p",
                "bff-server",
                "--lib",
                "--bins",
                "--no-fail-fast",
            ]),
        ),
        e2e(&["--idp".to_owned(), "local".to_owned()]),
    ];
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    run(
        "cargo test --doc",
        cargo().args(["test", "--workspace", "--doc"]),
    )
}

/// Benchmarks (release build), see BENCHMARKS.md. `bench stores`: session store latency.
/// `bench proxy`: the API proxy and `GET /bff/user` under `wrk`, with CPU per request
/// (`--instructions`: instructions per request under callgrind instead).
/// `bench backchannel`: back-channel logout by `sub` at 1M stored sessions, every store.
fn bench(args: &[String]) -> Result {
    let what = match args.first().map(String::as_str) {
        Some("stores") => "store benchmark",
        Some("proxy") => "proxy benchmark",
        Some("backchannel") => "back-channel logout benchmark",
        _ => {
            return Err("usage: cargo xtask bench stores [--sizes 100000,1000000] [--samples 5000]\n       \
                 cargo xtask bench proxy [--secs 10] [--connections 16] [--warmup-secs 2] [--rounds N]\n       \
                 cargo xtask bench proxy --instructions [--requests 2000] [--only TEXT] [--keep-dumps DIR]\n       \
                 cargo xtask bench backchannel [--total 1000000] [--users 10000,10]"
                .into());
        }
    };
    run(
        what,
        cargo()
            .args(["run", "--release", "-p", "bff-bench", "--"])
            .args(args),
    )
}

/// Rewrites the committed OpenAPI document from the code.
fn codegen() -> Result {
    run(
        "regenerate crates/bff-domain/public-api.txt",
        cargo()
            .args([
                "test",
                "-p",
                "xtask",
                "--test",
                "tidy",
                "domain_public_api_listing_is_current",
            ])
            .env("UPDATE_PUBLIC_API", "1"),
    )?;
    run(
        "regenerate docs/configuration.md and docs/bff.example.toml",
        cargo()
            .args([
                "test",
                "-p",
                "bff-server",
                "--lib",
                "committed_configuration_docs_are_current",
            ])
            .env("BFF_UPDATE_CONFIG_DOCS", "1"),
    )?;
    run(
        "regenerate crates/bff-http/openapi.json",
        cargo()
            .args([
                "test",
                "-p",
                "bff-http",
                "--test",
                "it",
                "committed_openapi_document_is_current",
            ])
            .env("BFF_UPDATE_OPENAPI", "1"),
    )
}

/// The OpenID Provider `cargo xtask e2e` walks the sample app against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum E2eIdp {
    /// Keycloak, PostgreSQL and Redis in containers (needs a Docker engine).
    Keycloak,
    /// The pinned `oidc-provider` of `e2e/idp` and the machine's PostgreSQL and Redis.
    Local,
}

/// `e2e`'s arguments: `--idp keycloak|local` or `--idp=...`, or nothing (`None`: choose).
fn parse_e2e_args(args: &[String]) -> Result<Option<E2eIdp>> {
    const USAGE: &str = "usage: cargo xtask e2e [--idp keycloak|local]";
    let value = match args {
        [] => return Ok(None),
        [flag, value] if flag == "--idp" => value.as_str(),
        [flag] if flag.starts_with("--idp=") => &flag["--idp=".len()..],
        _ => return Err(USAGE.into()),
    };
    match value {
        "keycloak" => Ok(Some(E2eIdp::Keycloak)),
        "local" => Ok(Some(E2eIdp::Local)),
        other => Err(format!("unknown provider {other:?}; {USAGE}")),
    }
}

/// The provider to walk against, from what was asked and whether a Docker engine answers
/// (`engine`: `Err(why not)`), and the one line to print about the choice when xtask made it.
fn choose_e2e_idp(
    asked: Option<E2eIdp>,
    engine: std::result::Result<(), String>,
) -> Result<(E2eIdp, Option<String>)> {
    match (asked, engine) {
        (Some(E2eIdp::Keycloak), Err(why)) => Err(format!(
            "--idp keycloak needs a Docker engine and none answers ({why}); `cargo xtask e2e --idp local` runs without one"
        )),
        (Some(idp), _) => Ok((idp, None)),
        (None, Ok(())) => Ok((
            E2eIdp::Keycloak,
            Some("a Docker engine answers: walking against Keycloak (--idp local for the local provider)".into()),
        )),
        (None, Err(why)) => Ok((
            E2eIdp::Local,
            Some(format!(
                "no Docker engine ({why}): walking against the local provider (--idp keycloak needs an engine)"
            )),
        )),
    }
}

/// Whether a Docker engine answers `GET /_ping` at `DOCKER_HOST` (`unix://` or `tcp://`) or,
/// when that is not set, at `/var/run/docker.sock`; `Err` says why not, in a few words.
fn docker_engine() -> std::result::Result<(), String> {
    match env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) {
        Some(host) => docker_engine_at(&host),
        None => docker_engine_at("unix:///var/run/docker.sock"),
    }
}

fn docker_engine_at(host: &str) -> std::result::Result<(), String> {
    use std::time::Duration;
    const TIMEOUT: Duration = Duration::from_secs(3);
    if let Some(path) = host.strip_prefix("unix://") {
        #[cfg(unix)]
        {
            let stream = std::os::unix::net::UnixStream::connect(path)
                .map_err(|e| format!("{path}: {e}"))?;
            stream.set_read_timeout(Some(TIMEOUT)).ok();
            stream.set_write_timeout(Some(TIMEOUT)).ok();
            docker_ping(stream).map_err(|e| format!("{path}: {e}"))
        }
        #[cfg(not(unix))]
        {
            Err(format!("{path}: Unix sockets are not supported here"))
        }
    } else if let Some(address) = host.strip_prefix("tcp://") {
        let address = address.trim_end_matches('/');
        let addresses = std::net::ToSocketAddrs::to_socket_addrs(address)
            .map_err(|e| format!("DOCKER_HOST {address}: {e}"))?;
        let mut last = format!("DOCKER_HOST {address}: no address");
        for candidate in addresses {
            match std::net::TcpStream::connect_timeout(&candidate, TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(TIMEOUT)).ok();
                    stream.set_write_timeout(Some(TIMEOUT)).ok();
                    return docker_ping(stream).map_err(|e| format!("DOCKER_HOST {address}: {e}"));
                }
                Err(e) => last = format!("DOCKER_HOST {address}: {e}"),
            }
        }
        Err(last)
    } else {
        Err(format!(
            "DOCKER_HOST {host:?} is neither unix:// nor tcp:// (TLS engines are not probed)"
        ))
    }
}

/// Sends the engine API's `GET /_ping` and expects `200` with the body `OK`.
fn docker_ping(mut stream: impl std::io::Read + std::io::Write) -> std::result::Result<(), String> {
    use std::io::Read as _;
    stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(4096)
        .read_to_end(&mut answer)
        .map_err(|e| e.to_string())?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) == Some("200") && answer.trim_end().ends_with("OK") {
        Ok(())
    } else {
        Err(format!("not a Docker engine (it answered {status:?})"))
    }
}

/// The Keycloak walk in `bff-server`'s integration tests (`tests/it/keycloak.rs`). A filter that
/// matched nothing would pass with zero tests run, so a unit test below checks the name.
const KEYCLOAK_WALK: &str = "keycloak::chromium_walks_the_sample_app_at_keycloak";

fn e2e(args: &[String]) -> Result {
    let asked = parse_e2e_args(args)?;
    let engine = if asked == Some(E2eIdp::Local) {
        Err("not probed".into())
    } else {
        docker_engine()
    };
    let (idp, note) = choose_e2e_idp(asked, engine)?;
    if let Some(note) = note {
        eprintln!("xtask: {note}");
    }
    match idp {
        E2eIdp::Local => {
            install_idp()?;
            // The machine's own servers, even where a Docker engine would start containers.
            let mut cmd = cargo();
            for (variable, default) in [
                (
                    "BFF_TEST_POSTGRES_URL",
                    "postgres://postgres@127.0.0.1:5432/test",
                ),
                ("BFF_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
            ] {
                if env::var_os(variable).is_none_or(|v| v.is_empty()) {
                    cmd.env(variable, default);
                }
            }
            run(
                "end-to-end tests against the local provider",
                cmd.args([
                    "test",
                    "-p",
                    "bff-server",
                    "--test",
                    "it",
                    "--",
                    "--nocapture",
                ]),
            )
        }
        // The Keycloak walk is `#[ignore]`d (no engine in CI), so it runs only when asked for
        // with `--ignored`; its PostgreSQL and Redis are containers too (the variables that would
        // name other servers are cleared).
        E2eIdp::Keycloak => run(
            "end-to-end tests against Keycloak",
            cargo()
                .env_remove("BFF_TEST_POSTGRES_URL")
                .env_remove("BFF_TEST_REDIS_URL")
                .args([
                    "test",
                    "-p",
                    "bff-server",
                    "--test",
                    "it",
                    KEYCLOAK_WALK,
                    "--",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ]),
        ),
    }
}

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn demo() -> Result {
    install_idp()?;
    run(
        "build bff-server",
        cargo().args(["build", "-p", "bff-server"]),
    )?;
    let bff_port = env::var("DEMO_PORT").unwrap_or_else(|_| "8080".into());
    let idp_port = env::var("DEMO_IDP_PORT").unwrap_or_else(|_| "9090".into());
    let api_port = env::var("DEMO_API_PORT").unwrap_or_else(|_| "9091".into());
    // Fail before starting anything (and before printing any URL) when a port is taken.
    for (variable, what, port) in [
        ("DEMO_PORT", "bff-server", &bff_port),
        ("DEMO_IDP_PORT", "the provider", &idp_port),
        ("DEMO_API_PORT", "the demo API", &api_port),
    ] {
        std::net::TcpListener::bind(format!("127.0.0.1:{port}")).map_err(|e| {
            format!("port {port} for {what} is not free ({e}); set {variable} to another port")
        })?;
    }
    let api = std::net::TcpListener::bind(format!("127.0.0.1:{api_port}"))
        .map_err(|e| format!("demo API port {api_port}: {e}"))?;
    std::thread::spawn(move || serve_demo_api(api));
    let public = format!("http://127.0.0.1:{bff_port}");
    let mut children = Children(Vec::new());

    let mut idp = Command::new("node")
        .arg("server.mjs")
        .current_dir(root().join("e2e/idp"))
        .env("IDP_PORT", &idp_port)
        .env(
            "IDP_REDIRECT_URIS",
            format!("{public}/bff/callback,{public}/"),
        )
        .env(
            "IDP_POST_LOGOUT_REDIRECT_URIS",
            format!("{public}/bff/logout/callback,{public}/"),
        )
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start the provider: {e}"))?;
    let stdout = idp.stdout.take().ok_or("provider stdout")?;
    children.0.push(idp);
    let mut issuer = None;
    for line in BufReader::new(stdout).lines().take(50) {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(rest) = line.strip_prefix("IDP_READY ") {
            issuer = Some(rest.trim().to_owned());
            break;
        }
    }
    let issuer = issuer.ok_or("the provider did not start (no IDP_READY line)")?;

    let dir = root().join("target/demo");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = dir.join("bff.toml");
    fs::write(
        &config,
        format!(
            r#"# Generated by `cargo xtask demo`: local provider, memory store, plain HTTP (dev only).
default_provider = "local"

[server]
listen = "127.0.0.1:{bff_port}"
public_url = "{public}"
static_dir = "{static_dir}"

[dev]
allow_plain_http = true

[[vault_keys]]
id = "demo"
key = "{key}"

[providers.local]
issuer = "{issuer}"
client_id = "bff-basic"
client_secret = "bff-basic-secret"

# The sample app's "Call the API" button: /api/demo/... goes to the demo API with alice's token.
[[routes]]
path = "/api/demo"
upstream = "http://127.0.0.1:{api_port}"
token = "user"
"#,
            static_dir = root().join("examples/spa").display(),
            key = demo_key()?,
        ),
    )
    .map_err(|e| e.to_string())?;

    let bin = env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"))
        .join("debug/bff-server");
    let server = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .spawn()
        .map_err(|e| format!("start bff-server: {e}"))?;
    children.0.push(server);
    println!();
    println!("  App:       {public}/");
    println!("  Provider:  {issuer}");
    println!("  Demo API:  http://127.0.0.1:{api_port} (behind {public}/api/demo)");
    println!("  Test user: alice / wonderland");
    println!("  Config:    {}", config.display());
    println!("  Stop with Ctrl-C.");
    println!();
    if let Some(server) = children.0.last_mut() {
        let _ = server.wait();
    }
    Ok(())
}

/// 32 random bytes, base64, from the OS.
/// The demo's API behind the proxy: answers every request with a small JSON document saying
/// whether a bearer token arrived (its length, never the token) and that no cookie did.
fn serve_demo_api(listener: std::net::TcpListener) {
    use std::io::{BufRead as _, Write as _};
    for stream in listener.incoming().flatten() {
        let mut reader = BufReader::new(&stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            continue;
        }
        let (mut bearer_len, mut cookie) = (None, false);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("authorization: bearer ") {
                bearer_len = Some(value.trim().len());
            }
            cookie |= lower.starts_with("cookie:");
            line.clear();
        }
        let path = request_line.split(' ').nth(1).unwrap_or("/");
        let body = format!(
            "{{\"message\":\"Hello from the demo API\",\"path\":{:?},\"bearerTokenLength\":{},\"sawBrowserCookie\":{cookie}}}",
            path,
            bearer_len.map_or("null".to_owned(), |n| n.to_string()),
        );
        let _ = (&stream).write_all(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
}

fn demo_key() -> Result<String> {
    let mut bytes = [0u8; 32];
    let mut file = fs::File::open("/dev/urandom").map_err(|e| e.to_string())?;
    std::io::Read::read_exact(&mut file, &mut bytes).map_err(|e| e.to_string())?;
    Ok(base64(&bytes))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn e2e_takes_the_provider_from_idp() {
        assert_eq!(parse_e2e_args(&[]), Ok(None));
        assert_eq!(
            parse_e2e_args(&args(&["--idp", "keycloak"])),
            Ok(Some(E2eIdp::Keycloak))
        );
        assert_eq!(
            parse_e2e_args(&args(&["--idp", "local"])),
            Ok(Some(E2eIdp::Local))
        );
        assert_eq!(
            parse_e2e_args(&args(&["--idp=keycloak"])),
            Ok(Some(E2eIdp::Keycloak))
        );
        for wrong in [
            &["--idp"][..],
            &["--idp", "podman"],
            &["--idp", "local", "extra"],
            &["--provider", "local"],
            &["keycloak"],
            &["--idp="],
        ] {
            let error = parse_e2e_args(&args(wrong)).unwrap_err();
            assert!(error.contains("--idp keycloak|local"), "{wrong:?}: {error}");
        }
    }

    #[test]
    fn keycloak_is_the_default_where_an_engine_answers_and_local_elsewhere() {
        let none = || Err::<(), String>("no engine here".into());
        // Asked for: taken, except Keycloak without an engine, which fails in one line.
        assert_eq!(
            choose_e2e_idp(Some(E2eIdp::Local), Ok(())),
            Ok((E2eIdp::Local, None))
        );
        assert_eq!(
            choose_e2e_idp(Some(E2eIdp::Local), none()),
            Ok((E2eIdp::Local, None))
        );
        assert_eq!(
            choose_e2e_idp(Some(E2eIdp::Keycloak), Ok(())),
            Ok((E2eIdp::Keycloak, None))
        );
        let error = choose_e2e_idp(Some(E2eIdp::Keycloak), none()).unwrap_err();
        assert!(error.contains("Docker engine") && error.contains("no engine here"));
        assert!(!error.contains('\n'), "{error}");
        // Not asked for: the choice and its reason, in one line.
        let (idp, note) = choose_e2e_idp(None, Ok(())).unwrap();
        assert_eq!(idp, E2eIdp::Keycloak);
        assert!(note.is_some_and(|n| !n.contains('\n')));
        let (idp, note) = choose_e2e_idp(None, none()).unwrap();
        assert_eq!(idp, E2eIdp::Local);
        let note = note.unwrap();
        assert!(
            note.contains("no engine here") && !note.contains('\n'),
            "{note}"
        );
    }

    #[test]
    fn the_keycloak_filter_names_the_ignored_keycloak_walk() {
        let tests = root().join("crates/bff-server/tests/it");
        let (module, name) = KEYCLOAK_WALK.split_once("::").unwrap();
        let main = fs::read_to_string(tests.join("main.rs")).unwrap();
        assert!(main.lines().any(|l| l.trim() == format!("mod {module};")));
        let source = fs::read_to_string(tests.join(format!("{module}.rs"))).unwrap();
        let at = source
            .find(&format!("async fn {name}()"))
            .unwrap_or_else(|| panic!("no test {KEYCLOAK_WALK}"));
        // Its attributes, just above it: a test, ignored (CI has no Docker engine).
        let attributes = &source[source[..at].rfind("\n\n").unwrap_or(0)..at];
        assert!(attributes.contains("#[tokio::test]"), "{attributes}");
        assert!(attributes.contains("#[ignore"), "{attributes}");
    }

    /// A Unix socket that answers one request with `answer`, at a fresh path.
    fn fake_engine(answer: &'static str) -> String {
        use std::io::{Read as _, Write as _};
        let path = env::temp_dir().join(format!(
            "xtask-fake-docker-{}-{}.sock",
            std::process::id(),
            answer.len()
        ));
        let _ = fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 512];
                let n = stream.read(&mut request).unwrap_or(0);
                assert!(request[..n].starts_with(b"GET /_ping "));
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        format!("unix://{}", path.display())
    }

    #[test]
    fn an_engine_is_one_that_answers_the_ping() {
        let engine = fake_engine("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
        assert_eq!(docker_engine_at(&engine), Ok(()));
        let other = fake_engine("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
        let why = docker_engine_at(&other).unwrap_err();
        assert!(why.contains("not a Docker engine"), "{why}");
        // The case on this project's machines: a `docker` client, no engine.
        let why = docker_engine_at("unix:///nonexistent/docker.sock").unwrap_err();
        assert!(why.contains("/nonexistent/docker.sock"), "{why}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(docker_engine_at(&format!("tcp://127.0.0.1:{port}")).is_err());
        assert!(
            docker_engine_at("ssh://user@host")
                .unwrap_err()
                .contains("neither")
        );
    }
}
