//! The pool's connections: a store call is one command on the wire (no check on checkout), and
//! a connection Redis closed is replaced before the next call uses it.
//!
//! Each test works in a Redis database of its own (11, 12), so it can find its connections in
//! `CLIENT LIST` and `MONITOR` among those of other tests running against the same server.

use std::time::Duration;

use bff_domain::ports::SessionStore;
use bff_domain::testkit::store_contract::sample_session;
use bff_store_redis::{RedisConfig, RedisStore};
use bff_test_services::now;
use futures_util::StreamExt;

use super::raw;

fn in_database(url: &str, db: u8) -> String {
    format!("{}/{db}", url.trim_end_matches('/'))
}

fn store_in(url: &str, prefix: &str, pool_size: usize) -> RedisStore {
    let mut config = RedisConfig::for_url(url);
    config.key_prefix = prefix.to_owned();
    config.pool_size = pool_size;
    RedisStore::connect_lazy(&config).unwrap()
}

/// The client address of a `MONITOR` line: `1700000000.123456 [12 127.0.0.1:5000] "GET" "k"`.
fn monitor_client(line: &str) -> Option<&str> {
    let inside = line.split_once('[')?.1.split_once(']')?.0;
    inside.split_once(' ').map(|(_db, addr)| addr)
}

#[tokio::test]
async fn a_session_read_is_one_command_on_the_wire() {
    let Some(service) = bff_test_services::redis().await else {
        return;
    };
    let url = in_database(&service.url, 12);
    let store = store_in(&url, &service.prefix, 2);
    let t = now();
    let session = sample_session(t, "https://a.example", "alice", None);
    store.create(&session).await.unwrap();
    let mut lines = redis::Client::open(service.url.as_str())
        .unwrap()
        .get_async_monitor()
        .await
        .unwrap()
        .into_on_message::<String>();
    const READS: usize = 50;
    for _ in 0..READS {
        assert!(store.get(&session.key, t).await.unwrap().is_some());
    }
    let sentinel = format!("{}end-of-reads", service.prefix);
    let _: String = redis::cmd("ECHO")
        .arg(&sentinel)
        .query_async(&mut raw(&url).await)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let collect = async {
        while let Some(line) = lines.next().await {
            if line.contains(&sentinel) {
                break;
            }
            seen.push(line);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("MONITOR shows the sentinel within 10 s");
    // The store's connections are those that read its session; everything they sent counts,
    // checks on checkout included.
    let ours: Vec<&str> = seen
        .iter()
        .filter(|l| l.contains("\"HMGET\"") && l.contains(&service.prefix))
        .filter_map(|l| monitor_client(l))
        .collect();
    assert!(!ours.is_empty(), "no HMGET seen: {seen:?}");
    let sent: Vec<&String> = seen
        .iter()
        .filter(|l| monitor_client(l).is_some_and(|c| ours.contains(&c)))
        .collect();
    assert_eq!(
        sent.len(),
        READS,
        "{READS} reads should be {READS} commands: {sent:#?}"
    );
}

#[tokio::test]
async fn a_connection_redis_closed_is_replaced_before_the_next_call() {
    let Some(service) = bff_test_services::redis().await else {
        return;
    };
    let url = in_database(&service.url, 11);
    // One connection, so the next call must take the one that was killed, or a new one.
    let store = store_in(&url, &service.prefix, 1);
    let t = now();
    let session = sample_session(t, "https://a.example", "alice", None);
    store.create(&session).await.unwrap();
    assert!(store.get(&session.key, t).await.unwrap().is_some());

    let mut admin = raw(&service.url).await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .unwrap();
    let ids: Vec<&str> = clients
        .lines()
        .filter(|l| l.split(' ').any(|f| f == "db=11"))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .collect();
    assert!(
        !ids.is_empty(),
        "the store's connection is listed: {clients}"
    );
    for id in ids {
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut admin)
            .await
            .unwrap();
    }
    // Redis has closed the socket; give the client's driver a moment to read the end of it.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The next calls succeed: the closed connection is not handed out again.
    for _ in 0..3 {
        assert!(store.get(&session.key, t).await.unwrap().is_some());
    }
    assert!(store.check().await.is_ok());
}
