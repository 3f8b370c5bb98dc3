//! Redis adapter (a deadpool pool of multiplexed connections) for every store port of
//! `bff-domain`.
//!
//! - Sessions: one hash per session under `{prefix}s:{session key}` whose TTL is the session's
//!   own expiry (the earlier of idle and absolute, so never past absolute); connected providers
//!   and their sealed tokens are in the same `rec` field as the primary tokens, so the version
//!   check of an update covers them. Updates are
//!   compare-and-set on the version and touches move idle expiry forward only, each in one Lua
//!   script (`scripts`).
//! - Lookup by `(issuer, sid)` and `(issuer, sub)`: sets of session keys whose TTL is pushed to
//!   the longest member's absolute expiry, so they cannot grow without bound; dead members are
//!   pruned when read.
//! - Renewed session ids: a hash `{prefix}r:{old session key}` (new key, nonce, expiry) that
//!   expires with the grace period, recorded once by a script.
//! - Pending logins: `SET NX EXAT`, taken once with `GETDEL`.
//! - Replay cache: insert-if-absent (atomic script, honours the caller's `now`).
//! - Leases: `SET NX PX` with an owner token, released only by the owner (script).
//!
//! Every command is bounded by the configured timeout (including the wait for a pooled
//! connection); failures are `StoreError::Unavailable`, never "absent". Each store call is one
//! round trip: taking a connection from the pool asks Redis nothing (`connections`).

mod config;
mod connections;
mod scripts;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bff_domain::ports::{Lock, LoginRef, PendingLoginStore, ReplayCache, SessionStore, StoreError};
use bff_domain::{
    Claims, ClientBinding, Connection, PendingLogin, ProviderId, RenewalAlias, RenewalNonce,
    ReturnUrl, Sealed, Session, SessionKey, Timestamp,
};
use deadpool::Runtime;
use deadpool::managed::{Object, Pool, PoolConfig, Timeouts};
use redis::aio::MultiplexedConnection;
use redis::{IntoConnectionInfo, Script};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

pub use config::{InvalidRedisUrl, RedisConfig, RedisUrl};

/// Every store port on Redis.
pub struct RedisStore {
    pool: Pool<connections::Connector>,
    prefix: String,
    timeout: Duration,
    create: Script,
    update: Script,
    touch: Script,
    delete: Script,
    replay: Script,
    release: Script,
    put_renewal: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The store could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("store.redis: {0}")]
pub struct SetupError(String);

/// The fields of a session's hash that [`RedisStore::get`] reads, in this order, with `HMGET`:
/// not `HGETALL`, which also returns every field's name and the index keys (`isid`, `isub`)
/// only deletion needs. The client's reply parser costs about a thousand instructions per
/// element, so the reply's 14 elements were a sixth of a proxied request on Redis.
const SESSION_FIELDS: [&str; 5] = ["v", "idle", "abs", "last", "rec"];

/// Sessions per pipelined round trip when many are read or deleted at once.
const MANY_PER_ROUND_TRIP: usize = 500;

/// [`SESSION_FIELDS`]' values, `None` where the hash has no such field (all `None`: no hash).
type SessionFields = [Option<String>; SESSION_FIELDS.len()];

/// The rest of a session, stored as JSON in the `rec` field.
#[derive(Serialize, Deserialize)]
struct SessionRecord {
    provider: String,
    issuer: String,
    subject: String,
    #[serde(default)]
    sid: Option<String>,
    /// Kept as text: the domain parses it only when the claims are read, which a proxied
    /// request never does.
    claims: Box<RawValue>,
    created_at: i64,
    #[serde(default)]
    access_token_expires_at: Option<i64>,
    key_id: String,
    sealed: String,
    /// Connected providers; absent (not an empty list) when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    connections: Vec<ConnectionRecord>,
    /// When the current session id was issued; absent in records written before renewal
    /// existed, which read it as `created_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_issued_at: Option<i64>,
    /// The client binding (a SHA-256), when binding was on at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_binding: Option<String>,
    /// The user-agent summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
}

/// A connected provider inside a [`SessionRecord`]. Its tokens arrive sealed by the domain's
/// vault.
#[derive(Serialize, Deserialize)]
struct ConnectionRecord {
    provider: String,
    claims: Box<RawValue>,
    #[serde(default)]
    access_token_expires_at: Option<i64>,
    key_id: String,
    /// Base64 of the sealed tokens.
    sealed: String,
}

impl ConnectionRecord {
    fn from_domain(c: &Connection) -> Result<Self, StoreError> {
        Ok(Self {
            provider: c.provider.as_str().to_owned(),
            claims: c.claims.to_json().map_err(|e| corrupt("session", e))?,
            access_token_expires_at: c.access_token_expires_at.map(Timestamp::unix_seconds),
            key_id: c.tokens.key_id.clone(),
            sealed: STANDARD.encode(&c.tokens.ciphertext),
        })
    }

    fn into_domain(self) -> Result<Connection, StoreError> {
        Ok(Connection {
            provider: ProviderId::parse(&self.provider).map_err(|e| corrupt("session", e))?,
            claims: Claims::from_json(self.claims).map_err(|e| corrupt("session", e))?,
            access_token_expires_at: self
                .access_token_expires_at
                .map(Timestamp::from_unix_seconds),
            tokens: Sealed {
                key_id: self.key_id,
                ciphertext: STANDARD
                    .decode(self.sealed)
                    .map_err(|e| corrupt("session", e))?,
            },
        })
    }
}

/// A pending login, stored as JSON. The PKCE verifier arrives sealed by the domain's vault.
#[derive(Serialize, Deserialize)]
struct PendingRecord {
    state: String,
    provider: String,
    verifier_key_id: String,
    /// Base64 of the sealed verifier.
    sealed_verifier: String,
    nonce: String,
    redirect_uri: String,
    return_url: String,
    binding_hash: String,
    created_at: i64,
    expires_at: i64,
    /// The session key a connect login joins (absent for plain logins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connect_to: Option<String>,
}

fn hex_sha256(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(format!("redis: corrupt {what}: {e}"))
}

impl RedisStore {
    /// Builds the pool (connections open on first use, so a Redis that is down at start makes
    /// requests fail with 503 until it is back; `/readyz` reports it).
    ///
    /// # Errors
    /// [`SetupError`] when the URL is invalid.
    pub fn connect_lazy(config: &RedisConfig) -> Result<Self, SetupError> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut pool_config = PoolConfig::new(config.pool_size);
        pool_config.timeouts = Timeouts {
            wait: Some(timeout),
            create: Some(timeout),
            recycle: Some(timeout),
        };
        let info = config
            .url
            .expose()
            .into_connection_info()
            .map_err(|e| SetupError(e.to_string()))?;
        let pool = Pool::builder(connections::Connector::new(info))
            .config(pool_config)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| SetupError(e.to_string()))?;
        Ok(Self {
            pool,
            prefix: config.key_prefix.clone(),
            timeout,
            create: Script::new(scripts::CREATE),
            update: Script::new(scripts::UPDATE),
            touch: Script::new(scripts::TOUCH),
            delete: Script::new(scripts::DELETE),
            replay: Script::new(scripts::REPLAY),
            release: Script::new(scripts::RELEASE),
            put_renewal: Script::new(scripts::PUT_RENEWAL),
        })
    }

    /// The session's Redis key, joined without the formatting machinery: every session read
    /// makes one.
    fn session_key(&self, key: &SessionKey) -> String {
        self.prefixed("s:", key.as_str())
    }

    /// A replay cache value's key: its hash, so a value of any length or content is a plain key.
    fn replay_key(&self, value: &str) -> String {
        format!("{}r:{}", self.prefix, hex_sha256(value))
    }

    fn renewal_key(&self, old: &SessionKey) -> String {
        self.prefixed("r:", old.as_str())
    }

    /// `prefix`, `kind`, `name`.
    fn prefixed(&self, kind: &str, name: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + name.len());
        key.push_str(&self.prefix);
        key.push_str(kind);
        key.push_str(name);
        key
    }

    fn sid_index(&self, issuer: &str, sid: &str) -> String {
        format!("{}sid:{}:{sid}", self.prefix, hex_sha256(issuer))
    }

    fn subject_index(&self, issuer: &str, subject: &str) -> String {
        format!("{}sub:{}:{subject}", self.prefix, hex_sha256(issuer))
    }

    /// The index set of the sessions whose connection's login was `login` at `issuer`.
    fn connection_index(&self, issuer: &str, login: LoginRef<'_>) -> String {
        let (kind, value) = match login {
            LoginRef::Session(sid) => ("csid", sid),
            LoginRef::Subject(subject) => ("csub", subject),
        };
        format!("{}{kind}:{}:{value}", self.prefix, hex_sha256(issuer))
    }

    /// The connection index sets `session` belongs in, one per login of each connection
    /// ([`Connection::logins`]).
    fn connection_indexes(&self, session: &Session) -> Vec<String> {
        session
            .connections
            .iter()
            .flat_map(Connection::logins)
            .map(|(issuer, login)| self.connection_index(issuer, login))
            .collect()
    }

    /// Runs `op` on a pooled connection within the timeout. A connection that failed at the
    /// connection level or timed out leaves the pool instead of going back, so the next call
    /// opens a fresh one rather than meeting the same dead socket.
    async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let timed_out = || StoreError::unavailable(format!("redis {what}: timed out"));
        let deadline = tokio::time::Instant::now() + self.timeout;
        let pooled = match tokio::time::timeout_at(deadline, self.pool.get()).await {
            Ok(Ok(pooled)) => pooled,
            Ok(Err(e)) => return Err(StoreError::unavailable(format!("redis {what}: {e}"))),
            Err(_) => return Err(timed_out()),
        };
        match tokio::time::timeout_at(deadline, op(pooled.handle())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_unrecoverable_error() {
                    drop(Object::take(pooled));
                }
                Err(StoreError::unavailable(format!("redis {what}: {e}")))
            }
            Err(_) => {
                drop(Object::take(pooled));
                Err(timed_out())
            }
        }
    }

    /// What `get` answers for the hash's [`SESSION_FIELDS`]: `None` when there is no hash (all
    /// fields missing) or the session has expired at `now`.
    fn live_session(
        key: &SessionKey,
        fields: SessionFields,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        if fields.iter().all(Option::is_none) {
            return Ok(None);
        }
        let session = Self::session_from_fields(key, fields)?;
        Ok((!session.is_expired(now)).then_some(session))
    }

    /// The session from its hash's [`SESSION_FIELDS`], in that order.
    fn session_from_fields(key: &SessionKey, fields: SessionFields) -> Result<Session, StoreError> {
        let [version, idle, absolute, last, record] = fields;
        let field = |value: Option<String>, name: &str| {
            value.ok_or_else(|| corrupt("session", format!("no {name}")))
        };
        let number = |value: Option<String>, name: &str| -> Result<i64, StoreError> {
            field(value, name)?
                .parse::<i64>()
                .map_err(|e| corrupt("session", e))
        };
        let record: SessionRecord =
            serde_json::from_str(&field(record, "rec")?).map_err(|e| corrupt("session", e))?;
        Ok(Session {
            key: key.clone(),
            provider: ProviderId::parse(&record.provider).map_err(|e| corrupt("session", e))?,
            issuer: record.issuer,
            subject: record.subject,
            provider_session_id: record.sid,
            claims: Claims::from_json(record.claims).map_err(|e| corrupt("session", e))?,
            created_at: Timestamp::from_unix_seconds(record.created_at),
            id_issued_at: Timestamp::from_unix_seconds(
                record.id_issued_at.unwrap_or(record.created_at),
            ),
            client_binding: record
                .client_binding
                .as_deref()
                .map(ClientBinding::from_stored)
                .transpose()
                .map_err(|e| corrupt("session", e))?,
            user_agent: record.user_agent,
            last_seen_at: Timestamp::from_unix_seconds(number(last, "last")?),
            idle_expires_at: Timestamp::from_unix_seconds(number(idle, "idle")?),
            absolute_expires_at: Timestamp::from_unix_seconds(number(absolute, "abs")?),
            access_token_expires_at: record
                .access_token_expires_at
                .map(Timestamp::from_unix_seconds),
            version: u64::try_from(number(version, "v")?).map_err(|e| corrupt("session", e))?,
            tokens: Sealed {
                key_id: record.key_id,
                ciphertext: STANDARD
                    .decode(record.sealed)
                    .map_err(|e| corrupt("session", e))?,
            },
            connections: record
                .connections
                .into_iter()
                .map(ConnectionRecord::into_domain)
                .collect::<Result<_, _>>()?,
        })
    }

    fn record_json(session: &Session) -> Result<String, StoreError> {
        serde_json::to_string(&SessionRecord {
            provider: session.provider.as_str().to_owned(),
            issuer: session.issuer.clone(),
            subject: session.subject.clone(),
            sid: session.provider_session_id.clone(),
            claims: session
                .claims
                .to_json()
                .map_err(|e| corrupt("session", e))?,
            created_at: session.created_at.unix_seconds(),
            access_token_expires_at: session.access_token_expires_at.map(Timestamp::unix_seconds),
            key_id: session.tokens.key_id.clone(),
            sealed: STANDARD.encode(&session.tokens.ciphertext),
            connections: session
                .connections
                .iter()
                .map(ConnectionRecord::from_domain)
                .collect::<Result<_, _>>()?,
            id_issued_at: Some(session.id_issued_at.unix_seconds()),
            client_binding: session
                .client_binding
                .as_ref()
                .map(|b| b.as_str().to_owned()),
            user_agent: session.user_agent.clone(),
        })
        .map_err(|e| corrupt("session", e))
    }

    /// Live sessions among the members of an index set; dead members are pruned.
    async fn sessions_in(&self, index: String, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        let members: Vec<String> = self
            .run("index read", |mut c| {
                let index = index.clone();
                async move { redis::cmd("SMEMBERS").arg(index).query_async(&mut c).await }
            })
            .await?;
        let mut live = Vec::new();
        let mut dead = Vec::new();
        let mut readable = Vec::with_capacity(members.len());
        for member in members {
            match SessionKey::from_stored(&member) {
                Ok(key) => readable.push((member, key)),
                Err(_) => dead.push(member),
            }
        }
        // The members' sessions read as `get` reads one, pipelined: one round trip per batch
        // instead of one per session (a user signed in on many devices).
        for batch in readable.chunks(MANY_PER_ROUND_TRIP) {
            let replies: Vec<SessionFields> = self
                .run("get many", |mut c| async move {
                    let mut pipe = redis::pipe();
                    for (_, key) in batch {
                        pipe.cmd("HMGET")
                            .arg(self.session_key(key))
                            .arg(&SESSION_FIELDS);
                    }
                    pipe.query_async(&mut c).await
                })
                .await?;
            for ((member, key), fields) in batch.iter().zip(replies) {
                match Self::live_session(key, fields, now)? {
                    Some(session) => live.push(session),
                    None => dead.push(member.clone()),
                }
            }
        }
        if !dead.is_empty() {
            self.run("index prune", |mut c| {
                let index = index.clone();
                async move {
                    redis::cmd("SREM")
                        .arg(index)
                        .arg(dead)
                        .query_async::<i64>(&mut c)
                        .await
                }
            })
            .await?;
        }
        Ok(live)
    }

    async fn delete_members(&self, index: String) -> Result<u64, StoreError> {
        let members: Vec<String> = self
            .run("index read", |mut c| {
                let index = index.clone();
                async move { redis::cmd("SMEMBERS").arg(index).query_async(&mut c).await }
            })
            .await?;
        let keys: Vec<SessionKey> = members
            .iter()
            .filter_map(|member| SessionKey::from_stored(member).ok())
            .collect();
        self.delete_many(&keys).await
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let rec = Self::record_json(session)?;
        let sid_index = session
            .provider_session_id
            .as_deref()
            .map(|sid| self.sid_index(&session.issuer, sid))
            .unwrap_or_default();
        let subject_index = self.subject_index(&session.issuer, &session.subject);
        let connection_indexes = self.connection_indexes(session);
        let key = self.session_key(&session.key);
        let created: i64 = self
            .run("create", |mut c| async move {
                self.create
                    .key(key)
                    .key(sid_index)
                    .key(subject_index)
                    .key(connection_indexes)
                    .arg(session.version)
                    .arg(session.idle_expires_at.unix_seconds())
                    .arg(session.absolute_expires_at.unix_seconds())
                    .arg(session.last_seen_at.unix_seconds())
                    .arg(rec)
                    .arg(session.key.as_str())
                    .arg(session.absolute_expires_at.unix_seconds())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if created == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let redis_key = self.session_key(key);
        let fields: SessionFields = self
            .run("get", |mut c| async move {
                redis::cmd("HMGET")
                    .arg(redis_key)
                    .arg(&SESSION_FIELDS)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Self::live_session(key, fields, now)
    }

    async fn update(&self, session: &Session, now: Timestamp) -> Result<u64, StoreError> {
        let rec = Self::record_json(session)?;
        let key = self.session_key(&session.key);
        let connection_indexes = self.connection_indexes(session);
        let result: i64 = self
            .run("update", |mut c| async move {
                self.update
                    .key(key)
                    .key(connection_indexes)
                    .arg(session.version)
                    .arg(now.unix_seconds())
                    .arg(session.idle_expires_at.unix_seconds())
                    .arg(session.absolute_expires_at.unix_seconds())
                    .arg(session.last_seen_at.unix_seconds())
                    .arg(rec)
                    .arg(session.key.as_str())
                    .arg(session.absolute_expires_at.unix_seconds())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match result {
            -1 => Err(StoreError::NotFound),
            -2 => Err(StoreError::Conflict),
            v => u64::try_from(v).map_err(|e| corrupt("session version", e)),
        }
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_at: Timestamp,
        idle_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let redis_key = self.session_key(key);
        let touched: i64 = self
            .run("touch", |mut c| async move {
                self.touch
                    .key(redis_key)
                    .arg(last_seen_at.unix_seconds())
                    .arg(idle_expires_at.unix_seconds())
                    .arg(now.unix_seconds())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if touched == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn put_renewal(
        &self,
        old: &SessionKey,
        alias: &RenewalAlias,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let redis_key = self.renewal_key(old);
        let recorded: i64 = self
            .run("put renewal", |mut c| async move {
                self.put_renewal
                    .key(redis_key)
                    .arg(alias.expires_at.unix_seconds())
                    .arg(now.unix_seconds())
                    .arg(alias.new_key.as_str())
                    .arg(alias.nonce.expose())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(recorded == 1)
    }

    async fn get_renewal(
        &self,
        old: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<RenewalAlias>, StoreError> {
        let redis_key = self.renewal_key(old);
        let hash: HashMap<String, String> = self
            .run("get renewal", |mut c| async move {
                redis::cmd("HGETALL")
                    .arg(redis_key)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        let field = |name: &str| {
            hash.get(name)
                .ok_or_else(|| corrupt("renewal", format!("no {name}")))
        };
        let expires_at = Timestamp::from_unix_seconds(
            field("exp")?
                .parse::<i64>()
                .map_err(|e| corrupt("renewal", e))?,
        );
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(RenewalAlias {
            new_key: SessionKey::from_stored(field("new")?).map_err(|e| corrupt("renewal", e))?,
            nonce: RenewalNonce::from_stored(field("nonce")?).map_err(|e| corrupt("renewal", e))?,
            expires_at,
        }))
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let redis_key = self.session_key(key);
        let deleted: i64 = self
            .run("delete", |mut c| async move {
                self.delete
                    .key(redis_key)
                    .arg(key.as_str())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(deleted > 0)
    }

    async fn delete_many(&self, keys: &[SessionKey]) -> Result<u64, StoreError> {
        let mut deleted = 0;
        // The delete script once per session, pipelined: one round trip per batch instead of
        // one per session. Loading the script first makes its `EVALSHA`s safe on a Redis that
        // has not seen it (restarted, or a new replica).
        for batch in keys.chunks(MANY_PER_ROUND_TRIP) {
            let results: Vec<i64> = self
                .run("delete many", |mut c| async move {
                    let mut pipe = redis::pipe();
                    pipe.load_script(&self.delete).ignore();
                    for key in batch {
                        pipe.invoke_script(
                            self.delete.key(self.session_key(key)).arg(key.as_str()),
                        );
                    }
                    pipe.query_async(&mut c).await
                })
                .await?;
            deleted += results.iter().filter(|&&n| n > 0).count() as u64;
        }
        Ok(deleted)
    }

    async fn find_by_provider_session(
        &self,
        issuer: &str,
        sid: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.sessions_in(self.sid_index(issuer, sid), now).await
    }

    async fn find_by_subject(
        &self,
        issuer: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.sessions_in(self.subject_index(issuer, subject), now)
            .await
    }

    async fn find_by_connection(
        &self,
        issuer: &str,
        login: LoginRef<'_>,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.sessions_in(self.connection_index(issuer, login), now)
            .await
    }

    async fn delete_by_provider_session(&self, issuer: &str, sid: &str) -> Result<u64, StoreError> {
        self.delete_members(self.sid_index(issuer, sid)).await
    }

    async fn delete_by_subject(&self, issuer: &str, subject: &str) -> Result<u64, StoreError> {
        self.delete_members(self.subject_index(issuer, subject))
            .await
    }

    async fn sweep_expired(&self, _now: Timestamp, _batch: u32) -> Result<u64, StoreError> {
        // Redis evicts expired sessions by their TTL; index sets expire with their longest member
        // and are pruned on read. Nothing to sweep.
        Ok(0)
    }

    async fn check(&self) -> Result<(), StoreError> {
        let pong: String = self
            .run("ping", |mut c| async move {
                redis::cmd("PING").query_async(&mut c).await
            })
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::unavailable("redis ping: unexpected answer"))
        }
    }
}

#[async_trait]
impl PendingLoginStore for RedisStore {
    async fn put(&self, login: &PendingLogin) -> Result<(), StoreError> {
        let record = serde_json::to_string(&PendingRecord {
            state: login.state.clone(),
            provider: login.provider.as_str().to_owned(),
            verifier_key_id: login.sealed_verifier.key_id.clone(),
            sealed_verifier: STANDARD.encode(&login.sealed_verifier.ciphertext),
            nonce: login.nonce.clone(),
            redirect_uri: login.redirect_uri.clone(),
            return_url: login.return_url.as_str().to_owned(),
            binding_hash: login.binding_hash.clone(),
            created_at: login.created_at.unix_seconds(),
            expires_at: login.expires_at.unix_seconds(),
            connect_to: login.connect_to.as_ref().map(|k| k.as_str().to_owned()),
        })
        .map_err(|e| corrupt("pending login", e))?;
        let key = format!("{}p:{}", self.prefix, login.state);
        let stored: Option<String> = self
            .run("put pending login", |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(record)
                    .arg("NX")
                    .arg("EXAT")
                    .arg(login.expires_at.unix_seconds())
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if stored.is_none() {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn take(&self, state: &str, now: Timestamp) -> Result<Option<PendingLogin>, StoreError> {
        let key = format!("{}p:{state}", self.prefix);
        let value: Option<String> = self
            .run("take pending login", |mut c| async move {
                redis::cmd("GETDEL").arg(key).query_async(&mut c).await
            })
            .await?;
        let Some(value) = value else { return Ok(None) };
        let r: PendingRecord =
            serde_json::from_str(&value).map_err(|e| corrupt("pending login", e))?;
        if r.expires_at <= now.unix_seconds() {
            return Ok(None);
        }
        Ok(Some(PendingLogin {
            state: r.state,
            provider: ProviderId::parse(&r.provider).map_err(|e| corrupt("pending login", e))?,
            sealed_verifier: Sealed {
                key_id: r.verifier_key_id,
                ciphertext: STANDARD
                    .decode(&r.sealed_verifier)
                    .map_err(|e| corrupt("pending login", e))?,
            },
            nonce: r.nonce,
            redirect_uri: r.redirect_uri,
            return_url: ReturnUrl::parse(&r.return_url).map_err(|e| corrupt("pending login", e))?,
            binding_hash: r.binding_hash,
            created_at: Timestamp::from_unix_seconds(r.created_at),
            expires_at: Timestamp::from_unix_seconds(r.expires_at),
            connect_to: r
                .connect_to
                .as_deref()
                .map(SessionKey::from_stored)
                .transpose()
                .map_err(|e| corrupt("pending login", e))?,
        }))
    }
}

#[async_trait]
impl ReplayCache for RedisStore {
    async fn insert_if_absent(
        &self,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = self.replay_key(value);
        let inserted: i64 = self
            .run("replay insert", |mut c| async move {
                self.replay
                    .key(key)
                    .arg(expires_at.unix_seconds())
                    .arg(now.unix_seconds())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(inserted == 1)
    }

    async fn forget(&self, value: &str) -> Result<(), StoreError> {
        let key = self.replay_key(value);
        let _removed: i64 = self
            .run("replay forget", |mut c| async move {
                redis::cmd("DEL").arg(key).query_async(&mut c).await
            })
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Lock for RedisStore {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = format!("{}l:{name}", self.prefix);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = self
            .run("acquire lease", |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        let key = format!("{}l:{name}", self.prefix);
        let released: i64 = self
            .run("release lease", |mut c| async move {
                self.release.key(key).arg(owner).invoke_async(&mut c).await
            })
            .await?;
        Ok(released > 0)
    }

    async fn is_held(&self, name: &str) -> Result<bool, StoreError> {
        let key = format!("{}l:{name}", self.prefix);
        // An expired lease is gone: Redis removed the key with its `PX` expiry.
        let held: i64 = self
            .run("look at lease", |mut c| async move {
                redis::cmd("EXISTS").arg(key).query_async(&mut c).await
            })
            .await?;
        Ok(held > 0)
    }
}
