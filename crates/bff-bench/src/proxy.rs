//! `bench proxy`: what the BFF costs on the way to an API, against the same upstream reached
//! straight and through a bare pass-through proxy on the same HTTP stack, and what `GET
//! /bff/user` costs on each store beside a bare endpoint of the same server.
//!
//! `cargo xtask bench proxy [--secs 10] [--connections 16] [--warmup-secs 2] [--rounds N]`.
//! `--rounds N` adds the target ratios measured in N back-to-back pairs of alternating order
//! ([`interleaved_ratios`]), steadier on a machine whose speed drifts. Needs `wrk` (the
//! Debian package) as the load generator, and PostgreSQL and Redis at `BFF_TEST_POSTGRES_URL` /
//! `BFF_TEST_REDIS_URL` (defaults: the local services). Everything is on loopback.
//!
//! Every server runs as its own child process ([`crate::serve`]) so that its CPU time is its
//! own: utime + stime from `/proc/PID/stat` before and after a run, divided by the requests
//! `wrk` completed, is the CPU per request. Each scenario is one warm-up run (not measured) and
//! one measured run, both bounded in time, with a fixed number of connections and one `wrk`
//! thread; a scenario with any non-2xx answer or socket error fails the benchmark. The BFF works
//! in its own Redis key prefix and PostgreSQL schema, both removed at the end.
//!
//! `BFF_BENCH_SERVERS=/path/to/another/bff-bench` measures that build's servers instead (for a
//! before/after comparison under the same load generator and reporting).
//!
//! Redis is also asked how many commands it ran per request (`INFO commandstats` after a
//! `CONFIG RESETSTAT`). Those counters are server-wide: run it when nothing else uses that Redis.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// One server under test, killed (by its own process id) when dropped.
pub(crate) struct Server {
    child: Child,
    addr: String,
    pub(crate) session: Option<String>,
}

impl Server {
    /// Starts `bff-bench serve ARGS` and waits for its `listening` line.
    pub(crate) fn start(args: &[&str]) -> Self {
        Self::start_under(&[], args)
    }

    /// [`Self::start`] under a `wrapper` command (`valgrind ...`), which must run the server in
    /// its own process, as valgrind does.
    pub(crate) fn start_under(wrapper: &[&str], args: &[&str]) -> Self {
        // Another build's servers can be measured by the same run of this one (before/after).
        let exe = std::env::var_os("BFF_BENCH_SERVERS")
            .map_or_else(|| std::env::current_exe().unwrap(), Into::into);
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The server's log lines go into a pipe, as under a container runtime; reading them is
        // this process's work, not the server's.
        let mut logs = child.stdout.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut logs, &mut std::io::sink()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut session = None;
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("server {args:?} exited before listening");
            };
            if let Some(addr) = line.strip_prefix("listening ") {
                break addr.to_owned();
            } else if let Some(id) = line.strip_prefix("session ") {
                session = Some(id.to_owned());
            } else {
                eprintln!("[{}] {line}", args[0]);
            }
        };
        // Anything it says later (a panic) still reaches the terminal.
        let name = args[0].to_owned();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[{name}] {line}");
            }
        });
        Self {
            child,
            addr,
            session,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system, all threads) of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    // utime and stime: the 14th and 15th fields of the line.
    stat_tick_pair(&format!("/proc/{pid}/stat"), 11)
}

/// CPU time (user + system) of this process's children that have ended and been waited for, in
/// clock ticks: across one `wrk` run (waited for by `Command::output`), what `wrk` spent.
fn waited_children_ticks() -> u64 {
    // cutime and cstime: the 16th and 17th fields of the line.
    stat_tick_pair("/proc/self/stat", 13)
}

/// The sum of two adjacent tick counts in a `/proc/PID/stat` file, `index` counting from the
/// field after the command name (which may contain spaces) in parentheses: the 3rd field, state,
/// is index 0.
fn stat_tick_pair(path: &str, index: usize) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[index].parse::<u64>().unwrap() + fields[index + 1].parse::<u64>().unwrap()
}

/// The whole machine's CPU time, in clock ticks summed over every CPU: in all, and idle (idle
/// plus waiting for I/O), from the `cpu` line of `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat.lines().find(|l| l.starts_with("cpu ")).unwrap();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total = fields.iter().take(8).sum();
    (total, fields[3] + fields[4])
}

fn clock_ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// What one measured run gave.
#[derive(Clone, Debug)]
struct Figures {
    requests: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU microseconds per request of the server under test.
    cpu_us: f64,
    /// CPU microseconds per request of the upstream, when it is behind the server.
    upstream_cpu_us: Option<f64>,
    /// CPU microseconds per request of `wrk`.
    wrk_cpu_us: f64,
    /// The whole machine's CPU microseconds per request (every core, idle included): with the
    /// cores always busy, throughput follows this, whoever spends it.
    machine_us: f64,
    /// The part of [`Self::machine_us`] no core was busy.
    idle_us: f64,
}

/// `wrk`'s latency ("850.00us", "1.23ms", "1.02s") in milliseconds.
fn wrk_millis(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap();
    match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        other => panic!("unknown wrk unit {other:?}"),
    }
}

struct Load {
    secs: u64,
    warmup_secs: u64,
    connections: u32,
    ticks_per_second: f64,
}

impl Load {
    fn wrk(&self, secs: u64, url: &str, headers: &[String]) -> String {
        let mut cmd = Command::new("wrk");
        cmd.args(["-t1", &format!("-c{}", self.connections)])
            .arg(format!("-d{secs}s"))
            .args(["--timeout", "5s", "--latency"]);
        for h in headers {
            cmd.args(["-H", h]);
        }
        let out = cmd.arg(url).output().expect("wrk (apt-get install wrk)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "wrk failed: {text}");
        for bad in ["Non-2xx or 3xx responses", "Socket errors"] {
            assert!(
                !text.contains(bad),
                "{url}: {bad} (the scenario is broken, not slow):\n{text}"
            );
        }
        text
    }

    /// A warm-up run, then the measured run with the CPU time of `server` (and `upstream`)
    /// around it.
    fn measure(
        &self,
        url: &str,
        headers: &[String],
        server: u32,
        upstream: Option<u32>,
    ) -> Figures {
        self.measure_after(url, headers, server, upstream, || {})
    }

    /// [`Self::measure`], calling `before` between the warm-up and the measured run.
    fn measure_after(
        &self,
        url: &str,
        headers: &[String],
        server: u32,
        upstream: Option<u32>,
        before: impl FnOnce(),
    ) -> Figures {
        self.wrk(self.warmup_secs, url, headers);
        before();
        let (server_before, upstream_before) = (cpu_ticks(server), upstream.map(cpu_ticks));
        let (wrk_before, machine_before) = (waited_children_ticks(), machine_ticks());
        let text = self.wrk(self.secs, url, headers);
        let (wrk_after, machine_after) = (waited_children_ticks(), machine_ticks());
        let (server_after, upstream_after) = (cpu_ticks(server), upstream.map(cpu_ticks));
        let requests: u64 = text
            .lines()
            .find_map(|l| l.trim().split_once(" requests in "))
            .map(|(n, _)| n.trim().parse().unwrap())
            .unwrap();
        let field = |prefix: &str| {
            text.lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix(prefix)
                        .map(str::trim)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| panic!("no {prefix:?} in wrk output:\n{text}"))
        };
        let per_request = |ticks: u64| ticks as f64 / self.ticks_per_second * 1e6 / requests as f64;
        Figures {
            requests,
            per_second: field("Requests/sec:").parse().unwrap(),
            p50_ms: wrk_millis(&field("50%")),
            p99_ms: wrk_millis(&field("99%")),
            cpu_us: per_request(server_after - server_before),
            upstream_cpu_us: upstream_before
                .zip(upstream_after)
                .map(|(before, after)| per_request(after - before)),
            wrk_cpu_us: per_request(wrk_after - wrk_before),
            machine_us: per_request(machine_after.0 - machine_before.0),
            idle_us: per_request(machine_after.1 - machine_before.1),
        }
    }
}

/// Redis's per-command call counts since the last `CONFIG RESETSTAT`.
async fn redis_calls(redis: &mut redis::aio::MultiplexedConnection) -> Vec<(String, u64)> {
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await
        .unwrap();
    stats
        .lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse()
                .ok()?;
            // The benchmark's own questions are not the server's work.
            (!matches!(name, "info" | "config|resetstat")).then(|| (name.to_owned(), calls))
        })
        .collect()
}

async fn reset_redis_stats(redis: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(redis)
        .await
        .unwrap();
}

fn commands_per_request(calls: &[(String, u64)], requests: u64) -> String {
    let total: u64 = calls.iter().map(|(_, n)| n).sum();
    // Commands seen less than once per hundred requests are other clients of the same server.
    let detail: Vec<String> = calls
        .iter()
        .filter(|(_, n)| n * 100 >= requests)
        .map(|(name, n)| format!("{name} {:.2}", *n as f64 / requests as f64))
        .collect();
    format!(
        "{:.2} ({})",
        total as f64 / requests as f64,
        detail.join(", ")
    )
}

struct Row {
    name: String,
    figures: Figures,
}

fn print_table(rows: &[Row], baseline: &Figures, baseline_name: &str) {
    println!(
        "| scenario | req/s | p50 ms | p99 ms | CPU µs/req | upstream CPU µs/req | req/s vs {baseline_name} | p99 vs {baseline_name} |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let f = &row.figures;
        println!(
            "| {} | {:.0} | {:.3} | {:.3} | {:.1} | {} | {:.2} | {:.2} |",
            row.name,
            f.per_second,
            f.p50_ms,
            f.p99_ms,
            f.cpu_us,
            f.upstream_cpu_us
                .map_or_else(|| "-".to_owned(), |u| format!("{u:.1}")),
            f.per_second / baseline.per_second,
            f.p99_ms / baseline.p99_ms,
        );
    }
}

/// Where the machine's CPU time went per request of each scenario: the load generator, the
/// server and the upstream all share the cores, so a server that costs more also leaves less for
/// the others, and their cost per request moves with its latency (fewer requests per wake-up).
fn print_machine_table<'a>(rows: impl Iterator<Item = &'a Row>) {
    println!(
        "| scenario | server | upstream | wrk | rest (Redis, PostgreSQL, the log reader, ...) | idle | machine, µs/req |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let f = &row.figures;
        let upstream = f.upstream_cpu_us.unwrap_or(0.0);
        let rest = f.machine_us - f.cpu_us - upstream - f.wrk_cpu_us - f.idle_us;
        println!(
            "| {} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            row.name,
            f.cpu_us,
            f.upstream_cpu_us
                .map_or_else(|| "-".to_owned(), |u| format!("{u:.1}")),
            f.wrk_cpu_us,
            rest,
            f.idle_us,
            f.machine_us,
        );
    }
}

pub(crate) fn run(args: &[String]) {
    if args.iter().any(|a| a == "--instructions") {
        return crate::instructions::run(args);
    }
    let option = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().unwrap())
    };
    let load = Load {
        secs: option("--secs", 10).clamp(1, 120),
        warmup_secs: option("--warmup-secs", 2).clamp(1, 30),
        connections: u32::try_from(option("--connections", 16).clamp(1, 256)).unwrap(),
        ticks_per_second: clock_ticks_per_second(),
    };
    Command::new("wrk")
        .arg("--version")
        .output()
        .expect("the load generator is wrk: apt-get install -y wrk");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stores = runtime.block_on(BenchStores::open("proxy"));
    let mut redis = stores.redis.clone();
    eprintln!(
        "bench proxy: {} s per scenario after {} s of warm-up, {} connections, load average {}",
        load.secs,
        load.warmup_secs,
        load.connections,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    let upstream = Server::start(&["upstream"]);
    let upstream_url = upstream.url("");
    let csrf = "x-csrf: 1".to_owned();
    let mut proxy_rows = Vec::new();
    let mut user_rows = Vec::new();
    let mut notes = Vec::new();

    let direct = load.measure(&upstream.url("/orders/7"), &[], upstream.pid(), None);
    proxy_rows.push(Row {
        name: "(1) upstream, straight".into(),
        figures: direct,
    });
    let bare_figures = {
        let bare = Server::start(&["bare", "--upstream", &upstream_url]);
        load.measure(
            &bare.url("/api/orders/7"),
            &[],
            bare.pid(),
            Some(upstream.pid()),
        )
    };
    proxy_rows.push(Row {
        name: "(2) bare pass-through proxy".into(),
        figures: bare_figures.clone(),
    });
    // Not the BFF's stack since it left reqwest: what reqwest's own layers cost, for the record.
    let bare_reqwest = Server::start(&["bare-reqwest", "--upstream", &upstream_url]);
    proxy_rows.push(Row {
        name: "bare proxy on a reqwest client".into(),
        figures: load.measure(
            &bare_reqwest.url("/api/orders/7"),
            &[],
            bare_reqwest.pid(),
            Some(upstream.pid()),
        ),
    });
    drop(bare_reqwest);

    for store in ["memory", "redis", "postgres+redis"] {
        let bff = Server::start(&stores.bff_args(store, &upstream_url));
        let cookie = format!("Cookie: __Host-Http-bff={}", bff.session.clone().unwrap());
        let with_session = [cookie, csrf.clone()];
        let number = if store == "memory" { "(3)" } else { "(4)" };
        if store == "memory" {
            // The BFF's own proxy work without a session: a `token = "none"` route.
            let figures = load.measure(
                &bff.url("/open/orders/7"),
                std::slice::from_ref(&csrf),
                bff.pid(),
                Some(upstream.pid()),
            );
            proxy_rows.push(Row {
                name: "BFF, `none` route (no session)".into(),
                figures,
            });
        }
        let figures = load.measure_after(
            &bff.url("/api/orders/7"),
            &with_session,
            bff.pid(),
            Some(upstream.pid()),
            || runtime.block_on(reset_redis_stats(&mut redis)),
        );
        if store != "memory" {
            let calls = runtime.block_on(redis_calls(&mut redis));
            notes.push(format!(
                "Redis commands per proxied request, {store}: {}",
                commands_per_request(&calls, figures.requests)
            ));
        }
        proxy_rows.push(Row {
            name: format!("{number} BFF, `user` route, {store}"),
            figures,
        });
        if store == "memory" {
            let figures = load.measure(&bff.url("/healthz"), &[], bff.pid(), None);
            user_rows.push(Row {
                name: "`GET /healthz` (bare endpoint, same server)".into(),
                figures,
            });
        }
        let figures = load.measure_after(
            &bff.url("/bff/user"),
            &with_session,
            bff.pid(),
            None,
            || runtime.block_on(reset_redis_stats(&mut redis)),
        );
        if store != "memory" {
            let calls = runtime.block_on(redis_calls(&mut redis));
            notes.push(format!(
                "Redis commands per `GET /bff/user`, {store}: {}",
                commands_per_request(&calls, figures.requests)
            ));
        }
        user_rows.push(Row {
            name: format!("`GET /bff/user`, {store}"),
            figures,
        });
    }
    let rounds = option("--rounds", 0).clamp(0, 20);
    let interleaved = (rounds > 0).then(|| {
        interleaved_ratios(
            &load,
            rounds,
            &upstream,
            &stores.bff_args("memory", &upstream_url),
        )
    });
    drop(upstream);

    println!(
        "API proxy, {} connections, {} s:",
        load.connections, load.secs
    );
    println!();
    print_table(&proxy_rows, &bare_figures, "(2)");
    println!();
    println!("`GET /bff/user`:");
    println!();
    print_table(&user_rows, &user_rows[0].figures.clone(), "/healthz");
    println!();
    println!("Where the machine's CPU time went, µs per request (all cores):");
    println!();
    print_machine_table(proxy_rows.iter().chain(&user_rows));
    println!();
    for note in notes {
        println!("- {note}");
    }
    println!(
        "- load average after the run: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if let Some(lines) = interleaved {
        println!();
        println!(
            "Interleaved, {rounds} rounds of {} s per scenario (median, then each round):",
            load.secs
        );
        println!();
        for line in lines {
            println!("- {line}");
        }
    }

    runtime.block_on(stores.remove());
}

/// The two comparisons the targets are stated in, (3) against (2) and `GET /bff/user` against
/// `GET /healthz` (memory store), measured in `rounds` back-to-back pairs whose order alternates,
/// so that a machine getting faster or slower during the run moves both sides of each ratio.
/// One line per ratio: the median, then each round's.
fn interleaved_ratios(
    load: &Load,
    rounds: u64,
    upstream: &Server,
    bff_args: &[&str],
) -> Vec<String> {
    let bare = Server::start(&["bare", "--upstream", &upstream.url("")]);
    let bff = Server::start(bff_args);
    let with_session = [
        format!("Cookie: __Host-Http-bff={}", bff.session.clone().unwrap()),
        "x-csrf: 1".to_owned(),
    ];
    let mut proxied_throughput = Vec::new();
    let mut proxied_cpu = Vec::new();
    let mut user_cpu = Vec::new();
    let measure_bare = || {
        load.measure(
            &bare.url("/api/orders/7"),
            &[],
            bare.pid(),
            Some(upstream.pid()),
        )
    };
    let measure_bff = || {
        load.measure(
            &bff.url("/api/orders/7"),
            &with_session,
            bff.pid(),
            Some(upstream.pid()),
        )
    };
    let measure_healthz = || load.measure(&bff.url("/healthz"), &[], bff.pid(), None);
    let measure_user = || load.measure(&bff.url("/bff/user"), &with_session, bff.pid(), None);
    for round in 0..rounds {
        let forward = round % 2 == 0;
        let (bare_figures, bff_figures) = in_order(forward, measure_bare, measure_bff);
        let (healthz, user) = in_order(forward, measure_healthz, measure_user);
        proxied_throughput.push(bff_figures.per_second / bare_figures.per_second);
        proxied_cpu.push(bff_figures.cpu_us / bare_figures.cpu_us);
        user_cpu.push(user.cpu_us / healthz.cpu_us);
    }
    let line = |name: &str, mut values: Vec<f64>| {
        let each: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
        values.sort_by(f64::total_cmp);
        let median = if values.len() % 2 == 1 {
            values[values.len() / 2]
        } else {
            (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
        };
        format!("{name}: {median:.2} ({})", each.join(", "))
    };
    vec![
        line("(3) req/s ÷ (2) req/s", proxied_throughput),
        line("(3) CPU µs/req ÷ (2) CPU µs/req", proxied_cpu),
        line(
            "`GET /bff/user` CPU µs/req ÷ `GET /healthz` CPU µs/req, memory",
            user_cpu,
        ),
    ]
}

/// `a()` and `b()`, called in that order when `forward`, else `b()` first.
fn in_order<A, B>(forward: bool, a: impl FnOnce() -> A, b: impl FnOnce() -> B) -> (A, B) {
    if forward {
        let a = a();
        (a, b())
    } else {
        let b = b();
        (a(), b)
    }
}

/// The PostgreSQL schema and Redis key prefix of one run's BFF servers (`--pg-schema`,
/// `--redis-prefix`): made at the start, removed with everything in them at the end.
pub(crate) struct BenchStores {
    pg: sqlx::PgPool,
    /// A connection to the same Redis, for statistics and the clean-up.
    pub(crate) redis: redis::aio::MultiplexedConnection,
    /// The schema, also the base of the key prefix.
    tag: String,
    redis_prefix: String,
}

impl BenchStores {
    /// A fresh schema and prefix named after `bench` and this process, on the servers of
    /// `BFF_TEST_POSTGRES_URL` and `BFF_TEST_REDIS_URL` (default: the local ones).
    pub(crate) async fn open(bench: &str) -> Self {
        let pg_url = std::env::var("BFF_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let redis_url =
            std::env::var("BFF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let tag = format!("bff_bench_{bench}_{}", std::process::id());
        let pg = sqlx::PgPool::connect(&pg_url).await.expect("PostgreSQL");
        sqlx::query(&format!("CREATE SCHEMA {tag}"))
            .execute(&pg)
            .await
            .unwrap();
        let redis = redis::Client::open(redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("Redis");
        Self {
            pg,
            redis,
            redis_prefix: format!("{tag}:"),
            tag,
        }
    }

    /// The arguments of `bff-bench serve bff` on `store` (`memory`, `redis`, `postgres+redis`)
    /// with these stores, proxying to `upstream`.
    pub(crate) fn bff_args<'a>(&'a self, store: &'a str, upstream: &'a str) -> [&'a str; 9] {
        [
            "bff",
            "--store",
            store,
            "--upstream",
            upstream,
            "--redis-prefix",
            &self.redis_prefix,
            "--pg-schema",
            &self.tag,
        ]
    }

    /// Drops the schema and deletes the keys under the prefix.
    pub(crate) async fn remove(mut self) {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.redis_prefix))
            .query_async(&mut self.redis)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut self.redis)
                .await
                .unwrap();
        }
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.tag))
            .execute(&self.pg)
            .await
            .unwrap();
    }
}
