//! In-process store adapter: every store port of `bff-domain` on maps behind mutexes.
//!
//! This is the embedded default (one process, no external service) and a real adapter: entries
//! expire by the `now` the domain passes (idle and absolute for sessions, `expires_at` for pending
//! logins and replay entries), expired entries are dropped lazily on read and in bounded batches
//! by [`MemoryStore::sweep_expired`](bff_domain::ports::SessionStore::sweep_expired), and
//! sessions are indexed by `(issuer, sid)` and `(issuer, sub)`, of their first login and of
//! their connections' logins, so logout lookups do not scan.
//!
//! Nothing here survives a restart, and nothing is shared between processes: for several nodes
//! use the Postgres and/or Redis adapters.
//!
//! Mutexes are `std::sync::Mutex` held only for map operations, never across an `.await`.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bff_domain::ports::{Lock, LoginRef, PendingLoginStore, ReplayCache, SessionStore, StoreError};
use bff_domain::{Connection, PendingLogin, RenewalAlias, Session, SessionKey, Timestamp};

type IndexKey = (String, String);

#[derive(Default)]
struct Sessions {
    by_key: HashMap<SessionKey, Session>,
    by_sid: HashMap<IndexKey, HashSet<SessionKey>>,
    by_subject: HashMap<IndexKey, HashSet<SessionKey>>,
    /// The sessions by their connections' logins ([`Connection::logins`]).
    by_connection: HashMap<ConnectionIndexKey, HashSet<SessionKey>>,
}

/// A connection's login as an index key: its issuer, `sid` or `sub`, and the value.
type ConnectionIndexKey = (String, &'static str, String);

fn connection_index_key(issuer: &str, login: LoginRef<'_>) -> ConnectionIndexKey {
    let (kind, value) = match login {
        LoginRef::Session(sid) => ("sid", sid),
        LoginRef::Subject(subject) => ("sub", subject),
    };
    (issuer.to_owned(), kind, value.to_owned())
}

/// The connection index keys `session` belongs under.
fn connection_entries(session: &Session) -> impl Iterator<Item = ConnectionIndexKey> + '_ {
    session
        .connections
        .iter()
        .flat_map(Connection::logins)
        .map(|(issuer, login)| connection_index_key(issuer, login))
}

impl Sessions {
    fn insert(&mut self, session: Session) {
        if let Some(sid) = &session.provider_session_id {
            self.by_sid
                .entry((session.issuer.clone(), sid.clone()))
                .or_default()
                .insert(session.key.clone());
        }
        self.by_subject
            .entry((session.issuer.clone(), session.subject.clone()))
            .or_default()
            .insert(session.key.clone());
        for at in connection_entries(&session) {
            self.by_connection
                .entry(at)
                .or_default()
                .insert(session.key.clone());
        }
        self.by_key.insert(session.key.clone(), session);
    }

    fn remove(&mut self, key: &SessionKey) -> Option<Session> {
        let session = self.by_key.remove(key)?;
        if let Some(sid) = &session.provider_session_id {
            remove_from_index(&mut self.by_sid, (session.issuer.clone(), sid.clone()), key);
        }
        remove_from_index(
            &mut self.by_subject,
            (session.issuer.clone(), session.subject.clone()),
            key,
        );
        for at in connection_entries(&session) {
            remove_from_index(&mut self.by_connection, at, key);
        }
        Some(session)
    }

    /// The live session under `key`; an expired one is removed.
    fn live(&mut self, key: &SessionKey, now: Timestamp) -> Option<&mut Session> {
        if self.by_key.get(key)?.is_expired(now) {
            self.remove(key);
            return None;
        }
        self.by_key.get_mut(key)
    }

    fn indexed<K: Hash + Eq>(
        &self,
        index: &HashMap<K, HashSet<SessionKey>>,
        at: &K,
    ) -> Vec<SessionKey> {
        index
            .get(at)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn remove_from_index<K: Hash + Eq>(
    index: &mut HashMap<K, HashSet<SessionKey>>,
    at: K,
    key: &SessionKey,
) {
    if let Some(keys) = index.get_mut(&at) {
        keys.remove(key);
        if keys.is_empty() {
            index.remove(&at);
        }
    }
}

struct Lease {
    owner: String,
    until: Instant,
}

/// Every store port in process memory.
#[derive(Default)]
pub struct MemoryStore {
    sessions: Mutex<Sessions>,
    pending: Mutex<HashMap<String, PendingLogin>>,
    replay: Mutex<HashMap<String, Timestamp>>,
    leases: Mutex<HashMap<String, Lease>>,
    /// Renewal aliases by the renewed (old) session key.
    renewals: Mutex<HashMap<SessionKey, RenewalAlias>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

/// Locks a mutex; a poisoned one (a panic while holding it) makes the store unavailable rather
/// than serving possibly half-updated data.
fn guard<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
    mutex
        .lock()
        .map_err(|_| StoreError::unavailable("memory store poisoned by an earlier panic"))
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of sessions held, expired or not (for metrics and tests).
    ///
    /// # Errors
    /// `Unavailable` when the store is poisoned.
    pub fn session_count(&self) -> Result<usize, StoreError> {
        Ok(guard(&self.sessions)?.by_key.len())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let mut sessions = guard(&self.sessions)?;
        if sessions.by_key.contains_key(&session.key) {
            return Err(StoreError::Conflict);
        }
        sessions.insert(session.clone());
        Ok(())
    }

    async fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let mut sessions = guard(&self.sessions)?;
        // One lookup for the usual live session (`live` looks twice, to hand out `&mut`).
        match sessions.by_key.get(key) {
            None => return Ok(None),
            Some(session) if !session.is_expired(now) => return Ok(Some(session.clone())),
            Some(_) => {}
        }
        sessions.remove(key);
        Ok(None)
    }

    async fn update(&self, session: &Session, now: Timestamp) -> Result<u64, StoreError> {
        let mut sessions = guard(&self.sessions)?;
        let stored = sessions
            .live(&session.key, now)
            .ok_or(StoreError::NotFound)?;
        if stored.version != session.version {
            return Err(StoreError::Conflict);
        }
        let version = session.version + 1;
        // Touches may have moved the idle expiry meanwhile; never move it back.
        let idle_expires_at = stored.idle_expires_at.max(session.idle_expires_at);
        let last_seen_at = stored.last_seen_at.max(session.last_seen_at);
        let replacement = Session {
            version,
            idle_expires_at,
            last_seen_at,
            ..session.clone()
        };
        // Re-insert so the secondary indexes follow a changed sid or subject.
        sessions.remove(&session.key);
        sessions.insert(replacement);
        Ok(version)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_at: Timestamp,
        idle_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut sessions = guard(&self.sessions)?;
        let stored = sessions.live(key, now).ok_or(StoreError::NotFound)?;
        stored.last_seen_at = stored.last_seen_at.max(last_seen_at);
        stored.idle_expires_at = stored
            .idle_expires_at
            .max(idle_expires_at.min(stored.absolute_expires_at));
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        Ok(guard(&self.sessions)?.remove(key).is_some())
    }

    async fn find_by_provider_session(
        &self,
        issuer: &str,
        sid: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let mut sessions = guard(&self.sessions)?;
        let keys = sessions.indexed(&sessions.by_sid, &(issuer.to_owned(), sid.to_owned()));
        Ok(keys
            .iter()
            .filter_map(|k| sessions.live(k, now).map(|s| s.clone()))
            .collect())
    }

    async fn find_by_subject(
        &self,
        issuer: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let mut sessions = guard(&self.sessions)?;
        let keys = sessions.indexed(
            &sessions.by_subject,
            &(issuer.to_owned(), subject.to_owned()),
        );
        Ok(keys
            .iter()
            .filter_map(|k| sessions.live(k, now).map(|s| s.clone()))
            .collect())
    }

    async fn find_by_connection(
        &self,
        issuer: &str,
        login: LoginRef<'_>,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let mut sessions = guard(&self.sessions)?;
        let keys = sessions.indexed(
            &sessions.by_connection,
            &connection_index_key(issuer, login),
        );
        Ok(keys
            .iter()
            .filter_map(|k| sessions.live(k, now).map(|s| s.clone()))
            .collect())
    }

    async fn delete_by_provider_session(&self, issuer: &str, sid: &str) -> Result<u64, StoreError> {
        let mut sessions = guard(&self.sessions)?;
        let keys = sessions.indexed(&sessions.by_sid, &(issuer.to_owned(), sid.to_owned()));
        Ok(keys.iter().filter(|k| sessions.remove(k).is_some()).count() as u64)
    }

    async fn delete_by_subject(&self, issuer: &str, subject: &str) -> Result<u64, StoreError> {
        let mut sessions = guard(&self.sessions)?;
        let keys = sessions.indexed(
            &sessions.by_subject,
            &(issuer.to_owned(), subject.to_owned()),
        );
        Ok(keys.iter().filter(|k| sessions.remove(k).is_some()).count() as u64)
    }

    async fn put_renewal(
        &self,
        old: &SessionKey,
        alias: &RenewalAlias,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut renewals = guard(&self.renewals)?;
        if renewals.get(old).is_some_and(|a| now < a.expires_at) {
            return Ok(false);
        }
        renewals.insert(old.clone(), alias.clone());
        Ok(true)
    }

    async fn get_renewal(
        &self,
        old: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<RenewalAlias>, StoreError> {
        Ok(guard(&self.renewals)?
            .get(old)
            .filter(|a| now < a.expires_at)
            .cloned())
    }

    async fn sweep_expired(&self, now: Timestamp, batch: u32) -> Result<u64, StoreError> {
        let limit = usize::try_from(batch).unwrap_or(usize::MAX);
        let removed = {
            let mut sessions = guard(&self.sessions)?;
            let expired: Vec<SessionKey> = sessions
                .by_key
                .values()
                .filter(|s| s.is_expired(now))
                .map(|s| s.key.clone())
                .take(limit)
                .collect();
            for key in &expired {
                sessions.remove(key);
            }
            expired.len()
        };
        guard(&self.pending)?.retain(|_, p| now < p.expires_at);
        guard(&self.replay)?.retain(|_, until| now < *until);
        guard(&self.renewals)?.retain(|_, alias| now < alias.expires_at);
        let instant = Instant::now();
        guard(&self.leases)?.retain(|_, lease| instant < lease.until);
        Ok(removed as u64)
    }

    async fn check(&self) -> Result<(), StoreError> {
        guard(&self.sessions).map(|_| ())
    }
}

#[async_trait]
impl PendingLoginStore for MemoryStore {
    async fn put(&self, login: &PendingLogin) -> Result<(), StoreError> {
        let mut pending = guard(&self.pending)?;
        if pending.contains_key(&login.state) {
            return Err(StoreError::Conflict);
        }
        pending.insert(login.state.clone(), login.clone());
        Ok(())
    }

    async fn take(&self, state: &str, now: Timestamp) -> Result<Option<PendingLogin>, StoreError> {
        Ok(guard(&self.pending)?
            .remove(state)
            .filter(|p| now < p.expires_at))
    }
}

#[async_trait]
impl ReplayCache for MemoryStore {
    async fn insert_if_absent(
        &self,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut replay = guard(&self.replay)?;
        match replay.get(value) {
            Some(until) if now < *until => Ok(false),
            _ => {
                replay.insert(value.to_owned(), expires_at);
                Ok(true)
            }
        }
    }

    async fn forget(&self, value: &str) -> Result<(), StoreError> {
        guard(&self.replay)?.remove(value);
        Ok(())
    }
}

#[async_trait]
impl Lock for MemoryStore {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut leases = guard(&self.leases)?;
        let now = Instant::now();
        if leases
            .get(name)
            .is_some_and(|l| now < l.until && l.owner != owner)
        {
            return Ok(false);
        }
        leases.insert(
            name.to_owned(),
            Lease {
                owner: owner.to_owned(),
                until: now + ttl,
            },
        );
        Ok(true)
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        let mut leases = guard(&self.leases)?;
        if leases.get(name).is_some_and(|l| l.owner == owner) {
            leases.remove(name);
            return Ok(true);
        }
        Ok(false)
    }

    async fn is_held(&self, name: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        Ok(guard(&self.leases)?
            .get(name)
            .is_some_and(|l| now < l.until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bff_domain::testkit::SeededRandom;
    use bff_domain::{Claims, ProviderId, Sealed, SessionId};
    use futures_executor::block_on;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix_seconds(s)
    }

    fn session(random: &SeededRandom, sid: &str) -> Session {
        Session {
            key: SessionId::generate(random).key(),
            provider: ProviderId::parse("main").unwrap(),
            issuer: "https://idp.example".into(),
            subject: "alice".into(),
            provider_session_id: Some(sid.into()),
            claims: Claims::default(),
            created_at: t(0),
            last_seen_at: t(0),
            id_issued_at: t(0),
            client_binding: None,
            user_agent: None,
            idle_expires_at: t(100),
            absolute_expires_at: t(1000),
            access_token_expires_at: None,
            version: 0,
            tokens: Sealed {
                key_id: "k".into(),
                ciphertext: vec![1, 2, 3],
            },
            connections: Vec::new(),
        }
    }

    #[test]
    fn indexes_follow_deletes_and_expiry() {
        let store = MemoryStore::new();
        let random = SeededRandom::new(1);
        let a = session(&random, "sid-1");
        let b = session(&random, "sid-1");
        block_on(store.create(&a)).unwrap();
        block_on(store.create(&b)).unwrap();
        assert_eq!(
            block_on(store.find_by_provider_session("https://idp.example", "sid-1", t(1)))
                .unwrap()
                .len(),
            2
        );
        // Expired at t=100: lookups drop it and the index shrinks.
        assert!(
            block_on(store.find_by_subject("https://idp.example", "alice", t(100)))
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.session_count().unwrap(), 0);
        let sessions = store.sessions.lock().unwrap();
        assert!(sessions.by_sid.is_empty() && sessions.by_subject.is_empty());
    }

    #[test]
    fn sweeping_is_bounded_by_the_batch() {
        let store = MemoryStore::new();
        let random = SeededRandom::new(2);
        for i in 0..5 {
            block_on(store.create(&session(&random, &format!("s{i}")))).unwrap();
        }
        assert_eq!(block_on(store.sweep_expired(t(500), 2)).unwrap(), 2);
        assert_eq!(block_on(store.sweep_expired(t(500), 2)).unwrap(), 2);
        assert_eq!(block_on(store.sweep_expired(t(500), 2)).unwrap(), 1);
        assert_eq!(store.session_count().unwrap(), 0);
    }

    #[test]
    fn an_update_never_moves_idle_expiry_back() {
        let store = MemoryStore::new();
        let random = SeededRandom::new(3);
        let s = session(&random, "x");
        block_on(store.create(&s)).unwrap();
        block_on(store.touch(&s.key, t(50), t(150), t(50))).unwrap();
        // A writer that read before the touch writes its stale idle expiry.
        assert_eq!(block_on(store.update(&s, t(60))).unwrap(), 1);
        let stored = block_on(store.get(&s.key, t(60))).unwrap().unwrap();
        assert_eq!(stored.idle_expires_at, t(150));
        assert_eq!(stored.version, 1);
    }
}
