//! The `bff-server` binary: `check-config` (valid files pass, broken ones fail with one line per
//! problem), `migrate`, and serving until SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::VAULT_KEY;

fn check(text: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("bff-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{:x}.toml", text.len() * 31 + env.len()));
    std::fs::write(&file, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bff-server"));
    // Only the variables the test sets: the developer's or CI's BFF_* must not leak in.
    cmd.env_clear()
        .arg("check-config")
        .arg("--config")
        .arg(&file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_file(&file);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn valid() -> String {
    format!(
        r#"
default_provider = "main"
[server]
public_url = "https://app.example"
[[vault_keys]]
id = "k1"
key = "{VAULT_KEY}"
[providers.main]
issuer = "https://idp.example"
client_id = "bff"
client_secret = "do-not-print-me"
"#
    )
}

#[test]
fn a_valid_file_passes() {
    let (code, out) = check(&valid(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration OK"), "{out}");
    // The conformance self-check's report follows: one line per requirement, all kept.
    assert!(
        out.contains(
            "conformance self-check (draft-ietf-oauth-browser-based-apps-27, section 6.1):"
        ),
        "{out}"
    );
    assert_eq!(out.matches("\n  ok        ").count(), 7, "{out}");
    assert!(!out.contains("VIOLATED"), "{out}");
}

#[test]
fn check_config_reports_a_violation_the_dev_switch_allows_and_refuses_it_without() {
    let nonconformant = valid() + "[http]\nsession_cookie = \"sid\"\n";
    let (code, out) = check(&nonconformant, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(
            "http.session_cookie (BFF_HTTP__SESSION_COOKIE): \"sid\" lacks the __Host-Http- prefix"
        ),
        "{out}"
    );
    let (code, out) = check(&nonconformant, &[("BFF_DEV__ALLOW_NONCONFORMANT", "true")]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "  VIOLATED  session cookie named __Host-Http-*: http.session_cookie: \"sid\""
        ),
        "{out}"
    );
    assert!(out.contains("DEVELOPMENT ONLY"), "{out}");
}

#[test]
fn every_problem_is_reported_on_its_own_line_without_secrets() {
    let broken = valid()
        .replace(
            "default_provider = \"main\"",
            "default_provider = \"keycloak\"",
        )
        .replace(VAULT_KEY, "dG9vIHNob3J0")
        .replace("https://app.example", "http://app.example");
    let (code, out) = check(&broken, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(
            "default_provider (BFF_DEFAULT_PROVIDER): \"keycloak\" is not one of the configured providers"
        ),
        "{out}"
    );
    assert!(
        out.contains("vault_keys[0].key (BFF_VAULT_KEYS): is 9 bytes"),
        "{out}"
    );
    assert!(
        out.contains("server.public_url (BFF_SERVER__PUBLIC_URL): is http://"),
        "{out}"
    );
    assert!(
        out.lines()
            .filter(|l| l.trim_start().starts_with("- "))
            .count()
            >= 3,
        "{out}"
    );
    assert!(!out.contains("do-not-print-me"), "{out}");
}

#[test]
fn unknown_keys_and_env_typos_fail() {
    let (code, out) = check(&format!("{}\nlisten_adress = 1\n", valid()), &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("listen_adress"), "{out}");
    let (code, out) = check(&valid(), &[("BFF_SERVR__LISTEN", "0.0.0.0:1")]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("servr"), "{out}");
    assert!(
        out.contains("servr.listen (BFF_SERVR__LISTEN): unknown variable"),
        "{out}"
    );
}

#[test]
fn a_secret_of_digits_from_the_environment_stays_a_string() {
    let (code, out) = check(
        &valid(),
        &[
            ("BFF_PROVIDERS__MAIN__CLIENT_SECRET", "123456"),
            ("BFF_SESSION__IDLE_TIMEOUT_SECS", "900"),
        ],
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn every_wrong_key_is_reported_with_its_variable() {
    let broken = valid() + "client_auth = \"x\"\nid_token_algorithms = [\"HS256\"]\n";
    let (code, out) = check(&broken, &[("BFF_SESSION__IDLE_TIMEOUT_SECS", "0")]);
    assert_eq!(code, 2, "{out}");
    for line in [
        "  - providers.main.client_auth (BFF_PROVIDERS__MAIN__CLIENT_AUTH): must be client_secret_basic, client_secret_post or private_key_jwt, got \"x\"",
        "  - providers.main.id_token_algorithms (BFF_PROVIDERS__MAIN__ID_TOKEN_ALGORITHMS): \"HS256\" not allowed",
        "  - session.idle_timeout_secs (BFF_SESSION__IDLE_TIMEOUT_SECS): must be greater than zero",
    ] {
        assert!(out.lines().any(|l| l.starts_with(line)), "{line}\n{out}");
    }
}

#[test]
fn a_toml_syntax_error_names_line_and_column() {
    // An unquoted secret: the message points at it without showing it.
    let broken = valid().replace("\"do-not-print-me\"", "do-not-print-me");
    let (code, out) = check(&broken, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("TOML syntax error at line 11, column 17:"),
        "{out}"
    );
    assert!(!out.contains("do-not-print-me"), "{out}");
}

#[test]
fn environment_variables_override_the_file() {
    let broken = valid().replace("https://idp.example", "not a url");
    let (code, _) = check(&broken, &[]);
    assert_eq!(code, 2);
    let (code, out) = check(
        &broken,
        &[("BFF_PROVIDERS__MAIN__ISSUER", "https://idp2.example")],
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_bff-server"))
        .args(["check-config", "--config", "/nonexistent/bff.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read config file /nonexistent/bff.toml")
    );
}

#[test]
fn no_arguments_and_no_config_points_to_help() {
    let empty = std::env::temp_dir().join(format!("bff-no-config-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bff-server"))
        .env_clear()
        .current_dir(&empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read config file bff.toml"),
        "{stderr}"
    );
    assert!(stderr.contains("bff-server --help"), "{stderr}");
    assert!(stderr.contains("minimal bff.toml"), "{stderr}");
}

#[test]
fn example_config_prints_a_file_that_check_config_accepts() {
    let out = Command::new(env!("CARGO_BIN_EXE_bff-server"))
        .env_clear()
        .arg("example-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let example = String::from_utf8(out.stdout).unwrap();
    assert!(example.contains("# [[vault_keys]]"), "{example}");
    // The vault keys belong in the environment, not in a copied file.
    let vault_keys = format!("[{{ id = \"k1\", key = \"{VAULT_KEY}\" }}]");
    let (code, out) = check(&example, &[("BFF_VAULT_KEYS", &vault_keys)]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("VIOLATED"), "{out}");
}

#[tokio::test]
async fn migrate_applies_the_schema() {
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let text = format!(
        "{}\n[store]\nkind = \"postgres\"\n[store.postgres]\nurl = \"{}\"\nschema = \"{}\"\n",
        valid(),
        pg.url,
        pg.schema
    );
    let (code, out) = run("migrate", &text);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("migrations applied"), "{out}");
    // Idempotent.
    let (code, out) = run("migrate", &text);
    assert_eq!(code, 0, "{out}");
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let tables: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'bff_%'",
    )
    .bind(&pg.schema)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables.0, 5,
        "bff_sessions, bff_pending_logins, bff_replay, bff_leases, bff_session_renewals"
    );
    pool.close().await;
    pg.drop_schema().await;
}

#[test]
fn migrate_without_postgres_is_a_clear_error() {
    let (code, out) = run("migrate", &valid());
    assert_ne!(code, 0);
    assert!(out.contains("[store.postgres] is missing"), "{out}");
}

fn run(command: &str, text: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("bff-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{command}-{}.toml", text.len()));
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bff-server"))
        .env_clear()
        .arg(command)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs the binary with its provider down and `env` (nothing else) until it listens, sends it
/// SIGTERM and returns its exit status and standard output (a pipe).
fn serve_until_sigterm(env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let text = valid()
        .replace("https://app.example", "http://127.0.0.1:1")
        .replace("https://idp.example", "http://127.0.0.1:1")
        + "[dev]\nallow_plain_http = true\n";
    let text = text.replace("[server]\n", "[server]\nlisten = \"127.0.0.1:0\"\n");
    let dir = std::env::temp_dir().join(format!("bff-log-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("serve-{}.toml", env.len()));
    std::fs::write(&file, text).unwrap();
    // Nothing answers at the issuer: the server logs that, and serves.
    let mut child = Command::new(env!("CARGO_BIN_EXE_bff-server"))
        .env_clear()
        .envs(env.iter().copied())
        .arg("--config")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let listening = loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let found = line.contains("bff-server listening");
                seen.push(line);
                if found {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    if !listening {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server did not start listening: {seen:?}");
    }
    // SIGTERM, as a container runtime sends it; to this test's own child, by its PID.
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no exit 15 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    let _ = std::fs::remove_file(&file);
    (status, seen.join("\n"))
}

/// The binary with its provider down: it serves anyway, and SIGTERM drains and exits `0`. Its
/// logs, written to a pipe, are JSON lines (the default off a terminal) with no colour codes.
#[test]
fn the_binary_serves_without_its_provider_and_stops_on_sigterm_with_json_logs() {
    let (status, stdout) = serve_until_sigterm(&[]);
    assert!(status.success(), "{status:?}: {stdout}");
    assert!(stdout.contains("allow_plain_http"), "{stdout}");
    assert!(
        stdout.contains("provider discovery failed; serving without it"),
        "{stdout}"
    );
    assert!(stdout.contains("draining"), "{stdout}");
    assert!(!stdout.contains("do-not-print-me"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}'),
        "colour codes in piped logs: {stdout:?}"
    );
    let mut conformance = Vec::new();
    for line in stdout.lines() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(
            parsed.as_ref().is_ok_and(|l| l.is_object()),
            "not a JSON line: {line}"
        );
        let fields = parsed.unwrap()["fields"].clone();
        if fields["message"] == "conformance" {
            conformance.push(fields);
        }
    }
    // The start-up self-check: a line per requirement; plain HTTP (this server's dev mode)
    // violates the two cookie requirements, each a warning naming its switch.
    assert_eq!(conformance.len(), 7, "{stdout}");
    let violated: Vec<&str> = conformance
        .iter()
        .filter(|f| f["status"] == "violated")
        .map(|f| f["allowed_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        violated,
        ["dev.allow_plain_http", "dev.allow_plain_http"],
        "{stdout}"
    );
    assert!(stdout.contains("NOT CONFORMANT"), "{stdout}");
}

/// `[log] format` (here through its variable) chooses the lines: `plain` is text without colour
/// codes, `pretty` is coloured, `json` is JSON lines whatever the output is.
#[test]
fn the_log_format_is_configurable_and_only_pretty_has_colours() {
    let listening = |stdout: &str| {
        stdout
            .lines()
            .find(|l| l.contains("bff-server listening"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no listening line: {stdout}"))
    };
    let (status, plain) = serve_until_sigterm(&[("BFF_LOG__FORMAT", "plain")]);
    assert!(status.success(), "{status:?}: {plain}");
    assert!(
        !plain.contains('\u{1b}'),
        "colour codes in plain logs: {plain:?}"
    );
    let line = listening(&plain);
    assert!(
        serde_json::from_str::<serde_json::Value>(&line).is_err(),
        "{line}"
    );
    assert!(line.contains(" INFO "), "{line}");

    let (status, pretty) = serve_until_sigterm(&[("BFF_LOG__FORMAT", "pretty")]);
    assert!(status.success(), "{status:?}: {pretty}");
    assert!(listening(&pretty).contains('\u{1b}'), "{pretty:?}");

    let (status, json) = serve_until_sigterm(&[("BFF_LOG__FORMAT", "json")]);
    assert!(status.success(), "{status:?}: {json}");
    let line: serde_json::Value = serde_json::from_str(&listening(&json)).unwrap();
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["message"], "bff-server listening");
}
