//! The connection pool: deadpool's managed pool with a connector whose checkout check costs no
//! round trip to Redis.
//!
//! deadpool-redis's manager sends `UNWATCH` + `PING` every time a connection leaves the pool,
//! so each store call cost two round trips instead of one (measured in `BENCHMARKS.md`). This
//! store never uses `WATCH` (its atomic steps are Lua scripts), so a checkout only has to know
//! whether the connection still works, and the connection knows that itself: its driver task
//! ends when the socket is closed or fails, and then sets the flag a checkout reads
//! ([`Connector::recycle`]). What no flag can show, a socket that silently stopped answering,
//! is handled by `RedisStore::run`: a connection whose command failed at the connection level
//! or timed out is taken out of the pool instead of going back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError};

/// Opens connections for the pool and checks them on checkout without a round trip.
pub(crate) struct Connector {
    info: ConnectionInfo,
}

impl Connector {
    /// A connector for `info` (a `redis://` address).
    pub(crate) fn new(info: ConnectionInfo) -> Self {
        Self { info }
    }
}

/// A pooled connection and whether its driver has ended.
pub(crate) struct PooledConnection {
    connection: MultiplexedConnection,
    closed: Arc<AtomicBool>,
}

impl PooledConnection {
    /// A handle on the connection for one command (clones share the one socket).
    pub(crate) fn handle(&self) -> MultiplexedConnection {
        self.connection.clone()
    }

    /// Whether the socket is known to be gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl managed::Manager for Connector {
    type Type = PooledConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<PooledConnection, RedisError> {
        let ConnectionAddr::Tcp(host, port) = self.info.addr() else {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "only redis:// over TCP is supported",
            )));
        };
        let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
        // Each command is one small write; Nagle's algorithm would hold a second one back
        // until the first is acknowledged.
        stream.set_nodelay(true)?;
        // No response timeout of the client's own (500 ms by default): every call is bounded by
        // the store's `timeout_ms`, which the client's default cut short, and a second timer
        // per command cost a timer-wheel entry and its removal on every request.
        let (connection, driver) = MultiplexedConnection::new_with_config(
            self.info.redis_settings(),
            stream,
            AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await?;
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        // The driver ends when Redis closes the socket, the socket fails, or every handle on
        // the connection is gone.
        tokio::spawn(async move {
            driver.await;
            flag.store(true, Ordering::Release);
        });
        Ok(PooledConnection { connection, closed })
    }

    async fn recycle(
        &self,
        connection: &mut PooledConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        if connection.is_closed() {
            Err(RecycleError::message("the connection is closed"))
        } else {
            Ok(())
        }
    }
}
