//! PostgreSQL adapter (sqlx) for every store port of `bff-domain`: the system of record.
//!
//! Sessions are rows keyed by the session key (the SHA-256 of the session id, never the id), with
//! the issuer, `sub`, `sid`, the lifetimes, an optimistic `version`, the sealed token blob with
//! its key id, and the connected providers with their own sealed tokens (`connections`, JSONB in
//! the same row, so an update's version check covers them). Indexes serve lookup by key, by `(issuer, sid)`, by `(issuer, sub)` and expiry
//! sweeps, which delete in bounded batches. The schema lives in the top-level `migrations/`
//! folder and is embedded here ([`PostgresStore::migrate`]).
//!
//! Every call is bounded: the pool's acquire timeout, a per-connection `statement_timeout`, and an
//! overall deadline around each operation. Driver errors become `StoreError::Unavailable` (their
//! messages name the operation, never a value).

mod config;
mod records;

use std::time::Duration;

use async_trait::async_trait;
use bff_domain::ports::{Lock, LoginRef, PendingLoginStore, ReplayCache, SessionStore, StoreError};
use bff_domain::{PendingLogin, RenewalAlias, Session, SessionKey, Timestamp};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Row};

pub use config::{DatabaseUrl, InvalidDatabaseUrl, PostgresConfig};

/// Every store port on PostgreSQL.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    deadline: Duration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL is not a PostgreSQL URL.
    #[error("store.postgres.url is not a valid PostgreSQL URL: {0}")]
    Url(String),
    /// Migrations failed.
    #[error("migrations failed: {0}")]
    Migrate(String),
}

const SESSION_COLUMNS: &str = "session_key, provider, issuer, subject, provider_session_id, claims, \
     created_at, last_seen_at, idle_expires_at, absolute_expires_at, access_token_expires_at, \
     version, key_id, sealed_tokens, connections, id_issued_at, client_binding, user_agent";

/// `true` when live at `$n` (the row's earlier expiry is after now).
const LIVE: &str = "LEAST(idle_expires_at, absolute_expires_at) >";

/// Sessions per `DELETE` statement of `delete_many`.
pub const DELETE_MANY_BATCH: usize = 1000;

fn unavailable(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| StoreError::unavailable(format!("postgres {what}: {}", describe(&e)))
}

/// A driver error without the values of the statement.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => format!("database error {}", db.code().unwrap_or_default()),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        sqlx::Error::Io(io) => format!("I/O: {io}"),
        other => other.to_string(),
    }
}

impl PostgresStore {
    /// Connects lazily (the first query opens connections), so a database that is down at start
    /// makes requests fail with 503 rather than the process exit; `/readyz` reports it.
    ///
    /// # Errors
    /// [`SetupError::Url`] when the URL cannot be parsed.
    pub fn connect_lazy(config: &PostgresConfig) -> Result<Self, SetupError> {
        let mut options: PgConnectOptions = config
            .url
            .expose()
            .parse()
            .map_err(|e: sqlx::Error| SetupError::Url(describe(&e)))?;
        let mut session_options = vec![(
            "statement_timeout".to_owned(),
            config.statement_timeout_ms.to_string(),
        )];
        if let Some(schema) = &config.schema {
            session_options.push(("search_path".to_owned(), schema.clone()));
        }
        options = options
            .options(session_options)
            // Statements carry no values, but there is no reason to log them at all.
            .disable_statement_logging()
            .application_name("bff-server");
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            deadline: Duration::from_millis(
                config.acquire_timeout_ms + config.statement_timeout_ms,
            ),
        })
    }

    /// Applies the embedded migrations (idempotent).
    ///
    /// # Errors
    /// [`SetupError::Migrate`] when the database is unreachable or a migration fails.
    pub async fn migrate(&self) -> Result<(), SetupError> {
        sqlx::migrate!("../../migrations")
            .run(&self.pool)
            .await
            .map_err(|e| SetupError::Migrate(e.to_string()))
    }

    /// The pool (for tests and benchmarks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn bounded<T>(
        &self,
        what: &'static str,
        fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, fut).await {
            Ok(result) => result.map_err(unavailable(what)),
            Err(_) => Err(StoreError::unavailable(format!(
                "postgres {what}: deadline exceeded"
            ))),
        }
    }

    async fn delete_expired(
        &self,
        table: &str,
        column: &str,
        now: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {column} <= $1 LIMIT $2)"
        );
        let done = self
            .bounded(
                "sweep",
                sqlx::query(&sql).bind(now).bind(batch).execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected())
    }
}

fn row_to_session(row: &PgRow) -> Result<Session, StoreError> {
    records::session_from_row(row)
        .map_err(|e| StoreError::unavailable(format!("postgres: corrupt session row: {e}")))
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO bff_sessions ({SESSION_COLUMNS}) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18) ON CONFLICT (session_key) DO NOTHING"
        );
        let done = self
            .bounded(
                "create",
                records::bind_session(sqlx::query(&sql), session).execute(&self.pool),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM bff_sessions WHERE session_key = $1 AND {LIVE} $2"
        );
        let row = self
            .bounded(
                "get",
                sqlx::query(&sql)
                    .bind(key.as_str())
                    .bind(now.unix_seconds())
                    .fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref().map(row_to_session).transpose()
    }

    async fn update(&self, session: &Session, now: Timestamp) -> Result<u64, StoreError> {
        let sql = format!(
            "UPDATE bff_sessions SET provider = $2, issuer = $3, subject = $4, provider_session_id = $5, \
             claims = $6, last_seen_at = GREATEST(last_seen_at, $7), \
             idle_expires_at = GREATEST(idle_expires_at, $8), absolute_expires_at = $9, \
             access_token_expires_at = $10, key_id = $11, sealed_tokens = $12, connections = $15, \
             version = version + 1 \
             WHERE session_key = $1 AND version = $13 AND {LIVE} $14 RETURNING version"
        );
        let row = self
            .bounded(
                "update",
                sqlx::query(&sql)
                    .bind(session.key.as_str())
                    .bind(session.provider.as_str())
                    .bind(&session.issuer)
                    .bind(&session.subject)
                    .bind(session.provider_session_id.as_deref())
                    .bind(sqlx::types::Json(session.claims.as_map()))
                    .bind(session.last_seen_at.unix_seconds())
                    .bind(session.idle_expires_at.unix_seconds())
                    .bind(session.absolute_expires_at.unix_seconds())
                    .bind(session.access_token_expires_at.map(Timestamp::unix_seconds))
                    .bind(&session.tokens.key_id)
                    .bind(&session.tokens.ciphertext)
                    .bind(records::version_to_db(session.version)?)
                    .bind(now.unix_seconds())
                    .bind(sqlx::types::Json(records::connections_to_db(
                        &session.connections,
                    )))
                    .fetch_optional(&self.pool),
            )
            .await?;
        if let Some(row) = row {
            let version: i64 = row.try_get("version").map_err(unavailable("update"))?;
            return records::version_from_db(version);
        }
        match self.get(&session.key, now).await? {
            Some(_) => Err(StoreError::Conflict),
            None => Err(StoreError::NotFound),
        }
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_at: Timestamp,
        idle_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE bff_sessions SET last_seen_at = GREATEST(last_seen_at, $2), \
             idle_expires_at = GREATEST(idle_expires_at, LEAST($3, absolute_expires_at)) \
             WHERE session_key = $1 AND {LIVE} $4"
        );
        let done = self
            .bounded(
                "touch",
                sqlx::query(&sql)
                    .bind(key.as_str())
                    .bind(last_seen_at.unix_seconds())
                    .bind(idle_expires_at.unix_seconds())
                    .bind(now.unix_seconds())
                    .execute(&self.pool),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let done = self
            .bounded(
                "delete",
                sqlx::query("DELETE FROM bff_sessions WHERE session_key = $1")
                    .bind(key.as_str())
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_many(&self, keys: &[SessionKey]) -> Result<u64, StoreError> {
        let mut deleted = 0;
        // One statement per batch: each stays within the statement timeout however many
        // sessions a logout ends.
        for batch in keys.chunks(DELETE_MANY_BATCH) {
            let batch: Vec<&str> = batch.iter().map(SessionKey::as_str).collect();
            let done = self
                .bounded(
                    "delete many",
                    sqlx::query("DELETE FROM bff_sessions WHERE session_key = ANY($1)")
                        .bind(batch)
                        .execute(&self.pool),
                )
                .await?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }

    async fn find_by_provider_session(
        &self,
        issuer: &str,
        sid: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM bff_sessions \
             WHERE issuer = $1 AND provider_session_id = $2 AND {LIVE} $3"
        );
        let rows = self
            .bounded(
                "find by sid",
                sqlx::query(&sql)
                    .bind(issuer)
                    .bind(sid)
                    .bind(now.unix_seconds())
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.iter().map(row_to_session).collect()
    }

    async fn find_by_subject(
        &self,
        issuer: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM bff_sessions WHERE issuer = $1 AND subject = $2 AND {LIVE} $3"
        );
        let rows = self
            .bounded(
                "find by subject",
                sqlx::query(&sql)
                    .bind(issuer)
                    .bind(subject)
                    .bind(now.unix_seconds())
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.iter().map(row_to_session).collect()
    }

    async fn find_by_connection(
        &self,
        issuer: &str,
        login: LoginRef<'_>,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        // Containment in the `connections` array, which the GIN index answers: an element whose
        // claims hold that `iss` and that `sid` (or `sub`).
        let claims = match login {
            LoginRef::Session(sid) => serde_json::json!({"iss": issuer, "sid": sid}),
            LoginRef::Subject(subject) => serde_json::json!({"iss": issuer, "sub": subject}),
        };
        let contained = serde_json::json!([{ "claims": claims }]);
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM bff_sessions WHERE connections @> $1 AND {LIVE} $2"
        );
        let rows = self
            .bounded(
                "find by connection",
                sqlx::query(&sql)
                    .bind(sqlx::types::Json(contained))
                    .bind(now.unix_seconds())
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.iter().map(row_to_session).collect()
    }

    async fn delete_by_provider_session(&self, issuer: &str, sid: &str) -> Result<u64, StoreError> {
        let done = self
            .bounded(
                "delete by sid",
                sqlx::query(
                    "DELETE FROM bff_sessions WHERE issuer = $1 AND provider_session_id = $2",
                )
                .bind(issuer)
                .bind(sid)
                .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete_by_subject(&self, issuer: &str, subject: &str) -> Result<u64, StoreError> {
        let done = self
            .bounded(
                "delete by subject",
                sqlx::query("DELETE FROM bff_sessions WHERE issuer = $1 AND subject = $2")
                    .bind(issuer)
                    .bind(subject)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn put_renewal(
        &self,
        old: &SessionKey,
        alias: &RenewalAlias,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // Replaces an expired alias, never a live one; the primary key makes it atomic.
        let done = self
            .bounded(
                "put renewal",
                sqlx::query(
                    "INSERT INTO bff_session_renewals (old_key, new_key, nonce, expires_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (old_key) DO UPDATE SET new_key = EXCLUDED.new_key, \
                     nonce = EXCLUDED.nonce, expires_at = EXCLUDED.expires_at \
                     WHERE bff_session_renewals.expires_at <= $5",
                )
                .bind(old.as_str())
                .bind(alias.new_key.as_str())
                .bind(alias.nonce.expose())
                .bind(alias.expires_at.unix_seconds())
                .bind(now.unix_seconds())
                .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_renewal(
        &self,
        old: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<RenewalAlias>, StoreError> {
        let row = self
            .bounded(
                "get renewal",
                sqlx::query(
                    "SELECT new_key, nonce, expires_at FROM bff_session_renewals \
                     WHERE old_key = $1 AND expires_at > $2",
                )
                .bind(old.as_str())
                .bind(now.unix_seconds())
                .fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref()
            .map(records::renewal_from_row)
            .transpose()
            .map_err(|e| StoreError::unavailable(format!("postgres: corrupt renewal row: {e}")))
    }

    async fn sweep_expired(&self, now: Timestamp, batch: u32) -> Result<u64, StoreError> {
        let now = now.unix_seconds();
        let batch = i64::from(batch);
        let sql = "DELETE FROM bff_sessions WHERE session_key IN (\
                   SELECT session_key FROM bff_sessions \
                   WHERE LEAST(idle_expires_at, absolute_expires_at) <= $1 LIMIT $2)";
        let done = self
            .bounded(
                "sweep",
                sqlx::query(sql).bind(now).bind(batch).execute(&self.pool),
            )
            .await?;
        // The small tables go along, each in a bounded batch as well.
        self.delete_expired("bff_pending_logins", "expires_at", now, batch)
            .await?;
        self.delete_expired("bff_replay", "expires_at", now, batch)
            .await?;
        self.delete_expired("bff_session_renewals", "expires_at", now, batch)
            .await?;
        self.delete_expired(
            "bff_leases",
            "expires_at_ms",
            now.saturating_mul(1000),
            batch,
        )
        .await?;
        Ok(done.rows_affected())
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.bounded("check", sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl PendingLoginStore for PostgresStore {
    async fn put(&self, login: &PendingLogin) -> Result<(), StoreError> {
        // Replaces an expired leftover with the same state, never a live one.
        let done = self
            .bounded(
                "put pending login",
                sqlx::query(
                    "INSERT INTO bff_pending_logins (state, record, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (state) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at \
                     WHERE bff_pending_logins.expires_at <= $4",
                )
                .bind(&login.state)
                .bind(sqlx::types::Json(records::PendingRecord::from(login)))
                .bind(login.expires_at.unix_seconds())
                .bind(login.created_at.unix_seconds())
                .execute(&self.pool),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn take(&self, state: &str, now: Timestamp) -> Result<Option<PendingLogin>, StoreError> {
        let row = self
            .bounded(
                "take pending login",
                sqlx::query(
                    "DELETE FROM bff_pending_logins WHERE state = $1 RETURNING record, expires_at",
                )
                .bind(state)
                .fetch_optional(&self.pool),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row
            .try_get("expires_at")
            .map_err(unavailable("take pending login"))?;
        if expires_at <= now.unix_seconds() {
            return Ok(None);
        }
        let sqlx::types::Json(record): sqlx::types::Json<records::PendingRecord> = row
            .try_get("record")
            .map_err(unavailable("take pending login"))?;
        record
            .into_domain()
            .map(Some)
            .map_err(|e| StoreError::unavailable(format!("postgres: corrupt pending login: {e}")))
    }
}

#[async_trait]
impl ReplayCache for PostgresStore {
    async fn insert_if_absent(
        &self,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = self
            .bounded(
                "replay insert",
                sqlx::query(
                    "INSERT INTO bff_replay (value, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (value) DO UPDATE SET expires_at = EXCLUDED.expires_at \
                     WHERE bff_replay.expires_at <= $3",
                )
                .bind(value)
                .bind(expires_at.unix_seconds())
                .bind(now.unix_seconds())
                .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn forget(&self, value: &str) -> Result<(), StoreError> {
        self.bounded(
            "replay forget",
            sqlx::query("DELETE FROM bff_replay WHERE value = $1")
                .bind(value)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }
}

/// Milliseconds since the epoch by the database clock, in SQL.
const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

#[async_trait]
impl Lock for PostgresStore {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let sql = format!(
            "INSERT INTO bff_leases (name, owner, expires_at_ms) VALUES ($1, $2, {DB_NOW_MS} + $3) \
             ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at_ms = EXCLUDED.expires_at_ms \
             WHERE bff_leases.expires_at_ms <= {DB_NOW_MS} OR bff_leases.owner = EXCLUDED.owner"
        );
        let done = self
            .bounded(
                "acquire lease",
                sqlx::query(&sql)
                    .bind(name)
                    .bind(owner)
                    .bind(ttl_ms)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        let done = self
            .bounded(
                "release lease",
                sqlx::query("DELETE FROM bff_leases WHERE name = $1 AND owner = $2")
                    .bind(name)
                    .bind(owner)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn is_held(&self, name: &str) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM bff_leases WHERE name = $1 AND expires_at_ms > {DB_NOW_MS})"
        );
        let held: bool = self
            .bounded(
                "look at lease",
                sqlx::query_scalar(&sql).bind(name).fetch_one(&self.pool),
            )
            .await?;
        Ok(held)
    }
}
