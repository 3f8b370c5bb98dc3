//! Benchmarks (not tests), run through `cargo xtask bench` in release mode; results and how to
//! read them are in `BENCHMARKS.md`.
//!
//! - `stores`: session store latency at 100k and 1M stored sessions ([`stores`]).
//! - `proxy`: throughput, latency and CPU per request of the API proxy and `GET /bff/user`
//!   against a bare pass-through proxy and the upstream itself, under `wrk` ([`proxy`]); with
//!   `--instructions`, the instructions each server executes per request instead, counted by
//!   callgrind, which a busy machine does not change ([`instructions`]).
//! - `backchannel`: back-channel logout by `sub` of one user's sessions among 1M stored, on
//!   every store: time, round trips, and exactly those sessions gone ([`backchannel`]).
//! - `serve upstream|bare|bff`: the servers `proxy` measures, each in its own child process so
//!   its CPU time is its own ([`serve`]); not meant to be run by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The allocator `bff-server` uses (see its `main.rs`), so the measured servers run on the same
/// stack as production.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod backchannel;
mod instructions;
mod proxy;
mod serve;
mod stores;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("stores") => stores::run(&args[1..]),
        Some("proxy") => proxy::run(&args[1..]),
        Some("backchannel") => backchannel::run(&args[1..]),
        Some("serve") => serve::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: bff-bench stores [--sizes N,M] [--samples N]\n       bff-bench proxy [--secs 10] [--connections 16] [--warmup-secs 2] [--rounds N]\n       bff-bench proxy --instructions [--requests 2000] [--only TEXT] [--keep-dumps DIR]\n       bff-bench backchannel [--total 1000000] [--users 10000,10]"
            );
            std::process::exit(2);
        }
    }
}
