//! `bench proxy --instructions`: the instructions each server executes per request, for the
//! same scenarios as [`crate::proxy`], counted by valgrind's callgrind instead of timed.
//!
//! CPU time on a shared machine moves by 20% and more between runs minutes apart; an
//! instruction count does not move with the machine's load (the same binary and inputs give
//! the same count to within a fraction of a per cent). It measures user-space work only: the
//! kernel's share (sockets, wake-ups), about a third of the CPU time here, is not in it, and
//! an instruction is not a fixed time (a cache miss costs more than many of them; a `rep movsb`
//! copy counts one per byte). So it tells whether a change made the server's own work
//! smaller, which is what comparing two builds needs; throughput and CPU time stay the job of
//! the timed run.
//!
//! Each server runs under `valgrind --tool=callgrind` as its own process (the upstream runs
//! natively). One client sends requests one after another on one keep-alive connection: a
//! warm-up, then the counters are zeroed (`callgrind_control -z`), then the measured requests,
//! then a dump (`callgrind_control -d`) whose total divided by the requests is the figure.
//! Every answer must be `200`. `--only TEXT` runs only the scenarios whose name contains it;
//! `--keep-dumps DIR` leaves callgrind's files there for `callgrind_annotate --inclusive=yes`
//! (the profile of the measured requests is the file ending in `.1`). Needs valgrind (`apt-get install -y valgrind`), and PostgreSQL and
//! Redis as the timed run does (the Redis and Postgres+Redis rows); loopback only.

use std::path::Path;
use std::process::Command;

use crate::proxy::{BenchStores, Server};

/// Requests before the counters are zeroed: connection set-up, first-use initialisation,
/// pools filled.
const WARM_UP: u32 = 200;

pub(crate) fn run(args: &[String]) {
    let requests = args
        .iter()
        .position(|a| a == "--requests")
        .and_then(|i| args.get(i + 1))
        .map_or(2000, |v| v.parse::<u32>().unwrap())
        .clamp(100, 100_000);
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only = option("--only");
    let kept_dumps = option("--keep-dumps").map(std::path::PathBuf::from);
    for tool in ["valgrind", "callgrind_control"] {
        Command::new(tool)
            .arg("--version")
            .output()
            .unwrap_or_else(|_| panic!("{tool} is needed: apt-get install -y valgrind"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dumps = kept_dumps.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("bff-bench-callgrind-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dumps).unwrap();
    eprintln!("bench proxy --instructions: {requests} requests per scenario after {WARM_UP}");

    let upstream = Server::start(&["upstream"]);
    let upstream_url = upstream.url("");
    // One callgrind file per scenario, named after it; `None` for a scenario `--only` leaves out.
    let count = |scenario: &str, args: &[&str], path: &str, headers: &[(&str, String)]| {
        if only.as_deref().is_some_and(|only| !scenario.contains(only)) {
            return None;
        }
        let file_name: String = scenario
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let out = dumps.join(format!("{file_name}.out"));
        let out_arg = format!("--callgrind-out-file={}", out.display());
        let server = Server::start_under(&["valgrind", "-q", "--tool=callgrind", &out_arg], args);
        let headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(name, value)| {
                (
                    *name,
                    value.replace("{session}", server.session.as_deref().unwrap_or("")),
                )
            })
            .collect();
        let url = server.url(path);
        runtime.block_on(send(&url, &headers, WARM_UP));
        callgrind_control("-z", server.pid());
        runtime.block_on(send(&url, &headers, requests));
        callgrind_control("-d", server.pid());
        let total = dumped_instructions(&out);
        drop(server);
        Some((scenario.to_owned(), total as f64 / f64::from(requests)))
    };
    let stores = runtime.block_on(BenchStores::open("instructions"));
    let bff_on = |store: &'static str| stores.bff_args(store, &upstream_url);
    let bff = bff_on("memory");
    let session = [
        ("cookie", "__Host-Http-bff={session}".to_owned()),
        ("x-csrf", "1".to_owned()),
    ];
    let csrf = [("x-csrf", "1".to_owned())];
    let bare = ["bare", "--upstream", &upstream_url];
    let bare_reqwest = ["bare-reqwest", "--upstream", &upstream_url];
    let proxied: Vec<(String, f64)> = [
        count("(2) bare pass-through proxy", &bare, "/api/orders/7", &[]),
        count(
            "bare proxy on a reqwest client",
            &bare_reqwest,
            "/api/orders/7",
            &[],
        ),
        count(
            "BFF, `none` route (no session)",
            &bff,
            "/open/orders/7",
            &csrf,
        ),
        count(
            "(3) BFF, `user` route, memory",
            &bff,
            "/api/orders/7",
            &session,
        ),
        count(
            "(4) BFF, `user` route, redis",
            &bff_on("redis"),
            "/api/orders/7",
            &session,
        ),
        count(
            "(4) BFF, `user` route, postgres+redis",
            &bff_on("postgres+redis"),
            "/api/orders/7",
            &session,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let user: Vec<(String, f64)> = [
        count(
            "`GET /healthz` (bare endpoint, same server)",
            &bff,
            "/healthz",
            &[],
        ),
        count("`GET /bff/user`, memory", &bff, "/bff/user", &session),
        count(
            "`GET /bff/user`, redis",
            &bff_on("redis"),
            "/bff/user",
            &session,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    drop(upstream);
    runtime.block_on(stores.remove());
    if kept_dumps.is_none() {
        let _ = std::fs::remove_dir_all(&dumps);
    }

    println!(
        "Instructions per request (callgrind, {requests} sequential requests, one connection):"
    );
    println!();
    print_table(&proxied);
    println!();
    print_table(&user);
}

/// The rows with their ratio to the first one, which is the baseline unless `--only` left it
/// out (nothing when it left every row out).
fn print_table(rows: &[(String, f64)]) {
    let Some((baseline_name, baseline)) = rows.first() else {
        return;
    };
    let baseline = *baseline;
    println!("| scenario | instructions per request | vs {baseline_name} |");
    println!("| --- | ---: | ---: |");
    for (name, per_request) in rows {
        println!(
            "| {name} | {per_request:.0} | {:.2} |",
            per_request / baseline
        );
    }
}

/// `requests` sequential `GET`s of `url` on one keep-alive connection; every answer must be 200.
async fn send(url: &str, headers: &[(&str, String)], requests: u32) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .no_proxy()
        .build()
        .unwrap();
    for _ in 0..requests {
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        response.bytes().await.unwrap();
        assert_eq!(status, 200, "{url}: the scenario is broken, not slow");
    }
}

fn callgrind_control(option: &str, pid: u32) {
    let out = Command::new("callgrind_control")
        .args([option, &pid.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "callgrind_control {option} {pid} failed"
    );
}

/// The instructions in the dumps callgrind wrote for `out` after the counters were zeroed
/// (`out.1`, `out.2`, ...; `out` itself is the final dump at exit, not part of the measurement).
fn dumped_instructions(out: &Path) -> u64 {
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    // `callgrind_control -d` may return before the dump is written whole; it ends with totals.
    let first = out.with_file_name(format!("{name}.1"));
    for _ in 0..100 {
        if std::fs::read_to_string(&first).is_ok_and(|text| text.contains("\ntotals: ")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut total = 0;
    for entry in std::fs::read_dir(out.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(number) = file.strip_prefix(&format!("{name}.")) else {
            continue;
        };
        if number.parse::<u32>().is_err() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        total += text
            .lines()
            .find_map(|line| line.strip_prefix("totals: "))
            .map(|value| value.trim().parse::<u64>().unwrap())
            .unwrap_or_else(|| panic!("no totals in {}", path.display()));
    }
    assert!(total > 0, "callgrind wrote no dump for {name}");
    total
}
