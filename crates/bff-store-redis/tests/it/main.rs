//! The Redis adapter against a real server: the shared contract suite (`contract`, one test per
//! rule), plus TTLs, index sets that expire, outages, and the pool's connections (`connections`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bff_domain::ports::{SessionStore, StoreError};
use bff_domain::testkit::store_contract::sample_session;
use bff_store_redis::{RedisConfig, RedisStore};

use bff_test_services::now;

mod connections;
mod contract;

async fn store() -> Option<(RedisStore, bff_test_services::RedisService)> {
    let service = bff_test_services::redis().await?;
    let mut config = RedisConfig::for_url(&service.url);
    config.key_prefix = service.prefix.clone();
    config.pool_size = 32;
    Some((RedisStore::connect_lazy(&config).unwrap(), service))
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn ttls_follow_the_session_and_index_sets_expire() {
    let Some((store, service)) = store().await else {
        return;
    };
    let t = now();
    let mut session = sample_session(t, "https://a.example", "alice", Some("sid-ttl"));
    session.idle_expires_at = t.plus(Duration::from_secs(600));
    session.absolute_expires_at = t.plus(Duration::from_secs(900));
    store.create(&session).await.unwrap();
    let mut c = raw(&service.url).await;
    let key = format!("{}s:{}", service.prefix, session.key.as_str());
    let expire_at: i64 = redis::cmd("EXPIRETIME")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        expire_at,
        session.idle_expires_at.unix_seconds(),
        "TTL is the idle expiry"
    );
    // Touching far ahead caps the TTL at the absolute expiry.
    store
        .touch(&session.key, t, t.plus(Duration::from_secs(5000)), t)
        .await
        .unwrap();
    let expire_at: i64 = redis::cmd("EXPIRETIME")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        expire_at,
        session.absolute_expires_at.unix_seconds(),
        "TTL never passes absolute expiry"
    );
    // Every index set has a TTL, at least as long as its members.
    let pattern = format!("{}s*:*", service.prefix);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut c)
        .await
        .unwrap();
    let index_keys: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains("sid:") || k.contains("sub:"))
        .collect();
    assert_eq!(index_keys.len(), 2, "{keys:?}");
    for index in index_keys {
        let ttl: i64 = redis::cmd("EXPIRETIME")
            .arg(index)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(
            ttl >= session.absolute_expires_at.unix_seconds(),
            "index {index} has TTL {ttl}"
        );
    }
    // Deleting removes the index entries too.
    store.delete(&session.key).await.unwrap();
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!(
            "{}sub:{}:alice",
            service.prefix,
            sha_hex("https://a.example")
        ))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(members.is_empty(), "{members:?}");
}

fn sha_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A session hash that lost one of the fields a read takes is an error (a store that answers
/// `503`), never "no session" (which would log the user out) and never a session built from a
/// default; a hash that is gone altogether is no session.
#[tokio::test]
async fn a_session_hash_missing_a_field_is_corrupt_and_a_missing_hash_is_no_session() {
    let Some((store, service)) = store().await else {
        return;
    };
    let t = now();
    let mut c = raw(&service.url).await;
    for field in ["v", "idle", "abs", "last", "rec"] {
        let session = sample_session(t, "https://a.example", field, None);
        store.create(&session).await.unwrap();
        let key = format!("{}s:{}", service.prefix, session.key.as_str());
        let removed: i64 = redis::cmd("HDEL")
            .arg(&key)
            .arg(field)
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(removed, 1, "{field} is a field of the session hash");
        let err = store.get(&session.key, t).await.unwrap_err();
        let StoreError::Unavailable(reason) = err else {
            panic!("without {field}: {err:?}");
        };
        let reason = reason.to_string();
        assert!(reason.contains(&format!("no {field}")), "{reason}");
        let _: i64 = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(store.get(&session.key, t).await.unwrap().is_none());
    }
}

/// The claims in a session record are kept as text and parsed only when read; text that is
/// JSON but not an object is still a corrupt session when it is read, never a session with no
/// claims. The claims of a stored session read back as they were written.
#[tokio::test]
async fn claims_that_are_not_a_json_object_are_corrupt() {
    let Some((store, service)) = store().await else {
        return;
    };
    let t = now();
    let mut c = raw(&service.url).await;
    let session = sample_session(t, "https://a.example", "claims-check", None);
    store.create(&session).await.unwrap();
    let read = store.get(&session.key, t).await.unwrap().unwrap();
    assert_eq!(read.claims, session.claims);
    assert_eq!(read.claims.subject(), session.claims.subject());
    let key = format!("{}s:{}", service.prefix, session.key.as_str());
    let rec: String = redis::cmd("HGET")
        .arg(&key)
        .arg("rec")
        .query_async(&mut c)
        .await
        .unwrap();
    for claims in [
        serde_json::json!([1, 2]),
        serde_json::json!("sub"),
        serde_json::json!(null),
    ] {
        let mut record: serde_json::Value = serde_json::from_str(&rec).unwrap();
        record["claims"] = claims.clone();
        let _: i64 = redis::cmd("HSET")
            .arg(&key)
            .arg("rec")
            .arg(record.to_string())
            .query_async(&mut c)
            .await
            .unwrap();
        let err = store.get(&session.key, t).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Unavailable(_)),
            "claims {claims}: {err:?}"
        );
    }
}

/// Relays one connection to `server`, holding every chunk the server sends back for `delay`.
async fn slow_relay(client: tokio::net::TcpStream, server: String, delay: Duration) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let Ok(server) = tokio::net::TcpStream::connect(server).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
    let mut chunk = vec![0u8; 64 * 1024];
    while let Ok(n) = server_read.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        tokio::time::sleep(delay).await;
        if client_write.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
}

/// `timeout_ms` is the one bound on a call: a server slower than the Redis client's own default
/// response timeout (500 ms) but within `timeout_ms` is answered, not failed.
#[tokio::test]
async fn a_server_slower_than_half_a_second_within_the_timeout_is_answered() {
    use redis::IntoConnectionInfo as _;

    let Some((_, service)) = store().await else {
        return;
    };
    let info = service.url.as_str().into_connection_info().unwrap();
    let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
        panic!("the test server is not on TCP: {:?}", info.addr());
    };
    let server = format!("{host}:{port}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = listener.local_addr().unwrap();
    let relayed_server = server.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = relayed_server.clone();
            tokio::spawn(slow_relay(client, server, Duration::from_millis(700)));
        }
    });
    let mut config = RedisConfig::for_url(&service.url.replacen(&server, &relay.to_string(), 1));
    config.key_prefix = service.prefix.clone();
    config.timeout_ms = 10_000;
    let store = RedisStore::connect_lazy(&config).unwrap();
    let t = now();
    let session = sample_session(t, "https://a.example", "slow-server", None);
    let started = Instant::now();
    store.create(&session).await.unwrap();
    let read = store.get(&session.key, t).await.unwrap();
    assert_eq!(read.map(|s| s.key), Some(session.key.clone()));
    // Two calls, each answered at least 700 ms late: the relay was in the way.
    assert!(started.elapsed() >= Duration::from_millis(1400));
}

#[tokio::test]
async fn a_dead_server_is_unavailable_within_the_timeout() {
    let mut config = RedisConfig::for_url("redis://127.0.0.1:1");
    config.timeout_ms = 300;
    let store = RedisStore::connect_lazy(&config).unwrap();
    let started = Instant::now();
    let err = store
        .get(&sample_session(now(), "i", "s", None).key, now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(store.check().await.is_err());
}

/// The members of the Redis set `key`, sorted.
async fn set_members(c: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    let mut members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(key)
        .query_async(c)
        .await
        .unwrap();
    members.sort();
    members
}

/// A connection's index sets name only the sessions that hold it: an update that drops or
/// changes the connection takes the session out of the old login's sets, one that keeps it
/// leaves it in, and a delete takes it out of all of them.
#[tokio::test]
async fn connection_index_sets_lose_a_session_that_drops_the_connection_or_ends() {
    use bff_domain::Claims;
    use bff_domain::testkit::store_contract::sample_connection;
    let Some((store, service)) = store().await else {
        return;
    };
    let t = now();
    let issuer = "https://b.example";
    let connection = |sid: &str| {
        let serde_json::Value::Object(claims) =
            serde_json::json!({"iss": issuer, "sub": "bob", "sid": sid})
        else {
            unreachable!()
        };
        bff_domain::Connection {
            claims: Claims::new(claims),
            ..sample_connection(t, "b", 7)
        }
    };
    let set =
        |kind: &str, value: &str| format!("{}{kind}:{}:{value}", service.prefix, sha_hex(issuer));
    let mut c = raw(&service.url).await;

    let mut session = sample_session(t, "https://a.example", "alice", Some("sid-a"));
    session.connections = vec![connection("sid-1")];
    store.create(&session).await.unwrap();
    let member = session.key.as_str().to_owned();
    let mut other = sample_session(t, "https://a.example", "carol", None);
    other.connections = vec![connection("sid-1")];
    store.create(&other).await.unwrap();
    let both = {
        let mut both = vec![member.clone(), other.key.as_str().to_owned()];
        both.sort();
        both
    };
    assert_eq!(set_members(&mut c, &set("csid", "sid-1")).await, both);
    assert_eq!(set_members(&mut c, &set("csub", "bob")).await, both);

    // An update that keeps the connection keeps the session in its sets.
    let mut kept = store.get(&session.key, t).await.unwrap().unwrap();
    kept.last_seen_at = t.plus(Duration::from_secs(1));
    store.update(&kept, t).await.unwrap();
    assert_eq!(set_members(&mut c, &set("csid", "sid-1")).await, both);

    // The connection's provider session changes: out of sid-1's set, into sid-2's, still bob's.
    let mut moved = store.get(&session.key, t).await.unwrap().unwrap();
    moved.connections = vec![connection("sid-2")];
    store.update(&moved, t).await.unwrap();
    let only_other = vec![other.key.as_str().to_owned()];
    assert_eq!(set_members(&mut c, &set("csid", "sid-1")).await, only_other);
    assert_eq!(
        set_members(&mut c, &set("csid", "sid-2")).await,
        vec![member.clone()]
    );
    assert_eq!(set_members(&mut c, &set("csub", "bob")).await, both);

    // Disconnected: in no connection set any more; the other session is untouched.
    let mut disconnected = store.get(&session.key, t).await.unwrap().unwrap();
    disconnected.connections.clear();
    store.update(&disconnected, t).await.unwrap();
    assert!(set_members(&mut c, &set("csid", "sid-2")).await.is_empty());
    assert_eq!(set_members(&mut c, &set("csub", "bob")).await, only_other);

    // Deleted: the other session leaves every set it was in.
    store.delete(&other.key).await.unwrap();
    assert!(set_members(&mut c, &set("csid", "sid-1")).await.is_empty());
    assert!(set_members(&mut c, &set("csub", "bob")).await.is_empty());
}
