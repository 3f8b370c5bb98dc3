//! A session store in two tiers: a cache in front of the system of record.
//!
//! In production the record is Postgres and the cache is Redis; this crate only composes two
//! `SessionStore`s, so it depends on nothing but `bff-domain`. Pending logins, the replay cache
//! and leases are not sessions: the server gives those ports to Redis alone.
//!
//! Consistency choices:
//! - Reads try the cache, then the record; a record hit fills the cache (insert-if-absent, so a
//!   fill never overwrites something newer).
//! - Writes go to the record first (it decides versions and conflicts), then to the cache: an
//!   update is replayed on the cached copy with the same version check, and a cache that cannot
//!   take it drops its copy, so the next read refills from the record. The cache therefore never
//!   holds a version newer than the record, and a stale copy lives at most until the next write.
//! - Touches go to both; the record's sliding expiry is what counts after a cache loss.
//! - Deletes go to the record first, then the cache.
//! - Renewal aliases (renewed session ids in their grace period) live in the record only: it
//!   decides which of concurrent renewals wins, and they are read only when a key is not found.
//! - Any failure of either tier is `Unavailable` (503): a cache outage is never reported as "no
//!   session", and nothing is ever deleted from the record because the cache failed.

use std::sync::Arc;

use async_trait::async_trait;
use bff_domain::ports::{LoginRef, SessionStore, StoreError};
use bff_domain::{RenewalAlias, Session, SessionKey, Timestamp};

/// A cache in front of a system of record.
#[derive(Clone)]
pub struct TieredSessionStore {
    record: Arc<dyn SessionStore>,
    cache: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for TieredSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TieredSessionStore")
    }
}

/// Attempts at bringing the cached copy in line after a write.
const CACHE_SYNC_ATTEMPTS: usize = 3;

impl TieredSessionStore {
    /// `cache` in front of `record`.
    pub fn new(record: Arc<dyn SessionStore>, cache: Arc<dyn SessionStore>) -> Self {
        Self { record, cache }
    }

    /// Makes the cache hold `written` (the record's state after a write), or nothing.
    async fn sync_cache(&self, written: &Session, now: Timestamp) -> Result<(), StoreError> {
        for _ in 0..CACHE_SYNC_ATTEMPTS {
            let previous = Session {
                version: written.version.saturating_sub(1),
                ..written.clone()
            };
            match self.cache.update(&previous, now).await {
                Ok(_) => return Ok(()),
                Err(StoreError::NotFound) => match self.cache.create(written).await {
                    Ok(()) => return Ok(()),
                    // Someone filled it meanwhile; check what they filled.
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e),
                },
                Err(StoreError::Conflict) => {
                    // The cached copy is of another version: drop it; reads refill.
                    self.cache.delete(&written.key).await?;
                }
                Err(e) => return Err(e),
            }
        }
        self.cache.delete(&written.key).await.map(|_| ())
    }
}

#[async_trait]
impl SessionStore for TieredSessionStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.record.create(session).await?;
        match self.cache.create(session).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => {
                self.cache.delete(&session.key).await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Session>, StoreError> {
        if let Some(hit) = self.cache.get(key, now).await? {
            return Ok(Some(hit));
        }
        let Some(found) = self.record.get(key, now).await? else {
            return Ok(None);
        };
        match self.cache.create(&found).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(Some(found)),
            Err(e) => Err(e),
        }
    }

    async fn update(&self, session: &Session, now: Timestamp) -> Result<u64, StoreError> {
        let version = self.record.update(session, now).await?;
        let written = Session {
            version,
            ..session.clone()
        };
        self.sync_cache(&written, now).await?;
        Ok(version)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_at: Timestamp,
        idle_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.record
            .touch(key, last_seen_at, idle_expires_at, now)
            .await?;
        match self
            .cache
            .touch(key, last_seen_at, idle_expires_at, now)
            .await
        {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let existed = self.record.delete(key).await?;
        self.cache.delete(key).await?;
        Ok(existed)
    }

    async fn delete_many(&self, keys: &[SessionKey]) -> Result<u64, StoreError> {
        let existed = self.record.delete_many(keys).await?;
        self.cache.delete_many(keys).await?;
        Ok(existed)
    }

    async fn put_renewal(
        &self,
        old: &SessionKey,
        alias: &RenewalAlias,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.record.put_renewal(old, alias, now).await
    }

    async fn get_renewal(
        &self,
        old: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<RenewalAlias>, StoreError> {
        self.record.get_renewal(old, now).await
    }

    async fn find_by_provider_session(
        &self,
        issuer: &str,
        sid: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.record.find_by_provider_session(issuer, sid, now).await
    }

    async fn find_by_connection(
        &self,
        issuer: &str,
        login: LoginRef<'_>,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.record.find_by_connection(issuer, login, now).await
    }

    async fn find_by_subject(
        &self,
        issuer: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.record.find_by_subject(issuer, subject, now).await
    }

    async fn delete_by_provider_session(&self, issuer: &str, sid: &str) -> Result<u64, StoreError> {
        let deleted = self.record.delete_by_provider_session(issuer, sid).await?;
        self.cache.delete_by_provider_session(issuer, sid).await?;
        Ok(deleted)
    }

    async fn delete_by_subject(&self, issuer: &str, subject: &str) -> Result<u64, StoreError> {
        let deleted = self.record.delete_by_subject(issuer, subject).await?;
        self.cache.delete_by_subject(issuer, subject).await?;
        Ok(deleted)
    }

    async fn sweep_expired(&self, now: Timestamp, batch: u32) -> Result<u64, StoreError> {
        let swept = self.record.sweep_expired(now, batch).await?;
        self.cache.sweep_expired(now, batch).await?;
        Ok(swept)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.record.check().await?;
        self.cache.check().await
    }
}
