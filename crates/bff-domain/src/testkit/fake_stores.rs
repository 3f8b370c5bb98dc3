//! `FakeStores`: the simple stores the domain's own tests use, a mutex around maps. They obey
//! the same store contract as every adapter, which the tests at the bottom prove by running the
//! contract suite against them. The real in-process adapter is `bff-store-memory`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;

use crate::ports::{Lock, LoginRef, PendingLoginStore, ReplayCache, SessionStore, StoreError};
use crate::{PendingLogin, RenewalAlias, Session, SessionKey, Timestamp};

/// Simple stores for domain tests: a mutex around maps. Expiry is judged by the `now` each call
/// passes; leases never expire (the `Lock` port passes no time).
#[derive(Debug, Default)]
pub struct FakeStores {
    pub sessions: Mutex<HashMap<SessionKey, Session>>,
    /// Pending logins by `state`.
    pub pending: Mutex<HashMap<String, PendingLogin>>,
    /// Lease name to owner.
    pub leases: Mutex<HashMap<String, String>>,
    /// Renewal aliases by old session key.
    pub renewals: Mutex<HashMap<SessionKey, RenewalAlias>>,
    /// One-time values and when each expires.
    pub replay: Mutex<HashMap<String, Timestamp>>,
    /// Every call fails as `Unavailable` (a store that is down).
    pub fail: AtomicBool,
    /// Only session deletes fail (a store that breaks halfway through a use case).
    pub fail_deletes: AtomicBool,
    /// Awaited before every session delete: a store slow enough for a test to act while a use
    /// case is deleting (the HTTP tests hold deletes there while their caller goes away).
    pub delete_gate: Mutex<Option<DeleteGate>>,
}

/// What [`FakeStores::delete_gate`] awaits: a new future per delete.
#[derive(Clone)]
pub struct DeleteGate(pub Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>);

impl std::fmt::Debug for DeleteGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeleteGate")
    }
}

impl FakeStores {
    async fn pass_delete_gate(&self) {
        // Cloned out: the lock is not held across the wait.
        let gate = self.delete_gate.lock().unwrap().clone();
        if let Some(DeleteGate(wait)) = gate {
            wait().await;
        }
    }

    fn check_up(&self) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(StoreError::unavailable("store down (fake)"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl SessionStore for FakeStores {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.check_up()?;
        let mut map = self.sessions.lock().unwrap();
        if map.contains_key(&session.key) {
            return Err(StoreError::Conflict);
        }
        map.insert(session.key.clone(), session.clone());
        Ok(())
    }

    async fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.check_up()?;
        Ok(self
            .sessions
            .lock()
            .unwrap()
            .get(key)
            .filter(|s| !s.is_expired(now))
            .cloned())
    }

    async fn update(&self, session: &Session, now: Timestamp) -> Result<u64, StoreError> {
        self.check_up()?;
        let mut map = self.sessions.lock().unwrap();
        let stored = map
            .get_mut(&session.key)
            .filter(|s| !s.is_expired(now))
            .ok_or(StoreError::NotFound)?;
        if stored.version != session.version {
            return Err(StoreError::Conflict);
        }
        // Touches may have moved the idle expiry meanwhile; never move it back.
        *stored = Session {
            version: session.version + 1,
            idle_expires_at: stored.idle_expires_at.max(session.idle_expires_at),
            last_seen_at: stored.last_seen_at.max(session.last_seen_at),
            ..session.clone()
        };
        Ok(stored.version)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_at: Timestamp,
        idle_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.check_up()?;
        let mut map = self.sessions.lock().unwrap();
        let stored = map
            .get_mut(key)
            .filter(|s| !s.is_expired(now))
            .ok_or(StoreError::NotFound)?;
        stored.last_seen_at = stored.last_seen_at.max(last_seen_at);
        stored.idle_expires_at = stored
            .idle_expires_at
            .max(idle_expires_at.min(stored.absolute_expires_at));
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        self.pass_delete_gate().await;
        self.check_up()?;
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("delete failed (fake)"));
        }
        Ok(self.sessions.lock().unwrap().remove(key).is_some())
    }

    async fn put_renewal(
        &self,
        old: &SessionKey,
        alias: &RenewalAlias,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.check_up()?;
        let mut map = self.renewals.lock().unwrap();
        if map.get(old).is_some_and(|a| a.expires_at > now) {
            return Ok(false);
        }
        map.insert(old.clone(), alias.clone());
        Ok(true)
    }

    async fn get_renewal(
        &self,
        old: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<RenewalAlias>, StoreError> {
        self.check_up()?;
        Ok(self
            .renewals
            .lock()
            .unwrap()
            .get(old)
            .filter(|a| a.expires_at > now)
            .cloned())
    }

    async fn find_by_provider_session(
        &self,
        issuer: &str,
        sid: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.check_up()?;
        Ok(self
            .sessions
            .lock()
            .unwrap()
            .values()
            .filter(|s| {
                s.issuer == issuer
                    && s.provider_session_id.as_deref() == Some(sid)
                    && !s.is_expired(now)
            })
            .cloned()
            .collect())
    }

    async fn find_by_subject(
        &self,
        issuer: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.check_up()?;
        Ok(self
            .sessions
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.issuer == issuer && s.subject == subject && !s.is_expired(now))
            .cloned()
            .collect())
    }

    async fn find_by_connection(
        &self,
        issuer: &str,
        login: LoginRef<'_>,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.check_up()?;
        Ok(self
            .sessions
            .lock()
            .unwrap()
            .values()
            .filter(|s| {
                !s.is_expired(now) && s.connections.iter().any(|c| c.is_login(issuer, login))
            })
            .cloned()
            .collect())
    }

    async fn delete_by_provider_session(&self, issuer: &str, sid: &str) -> Result<u64, StoreError> {
        self.pass_delete_gate().await;
        self.check_up()?;
        let mut map = self.sessions.lock().unwrap();
        let before = map.len();
        map.retain(|_, s| !(s.issuer == issuer && s.provider_session_id.as_deref() == Some(sid)));
        Ok((before - map.len()) as u64)
    }

    async fn delete_by_subject(&self, issuer: &str, subject: &str) -> Result<u64, StoreError> {
        self.pass_delete_gate().await;
        self.check_up()?;
        let mut map = self.sessions.lock().unwrap();
        let before = map.len();
        map.retain(|_, s| !(s.issuer == issuer && s.subject == subject));
        Ok((before - map.len()) as u64)
    }

    async fn sweep_expired(&self, now: Timestamp, batch: u32) -> Result<u64, StoreError> {
        self.check_up()?;
        let mut map = self.sessions.lock().unwrap();
        let expired: Vec<SessionKey> = map
            .values()
            .filter(|s| s.is_expired(now))
            .map(|s| s.key.clone())
            .take(usize::try_from(batch).unwrap_or(usize::MAX))
            .collect();
        for key in &expired {
            map.remove(key);
        }
        self.renewals
            .lock()
            .unwrap()
            .retain(|_, alias| alias.expires_at > now);
        Ok(expired.len() as u64)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.check_up()
    }
}

#[async_trait]
impl PendingLoginStore for FakeStores {
    async fn put(&self, login: &PendingLogin) -> Result<(), StoreError> {
        self.check_up()?;
        let mut pending = self.pending.lock().unwrap();
        if pending.contains_key(&login.state) {
            return Err(StoreError::Conflict);
        }
        pending.insert(login.state.clone(), login.clone());
        Ok(())
    }

    async fn take(&self, state: &str, now: Timestamp) -> Result<Option<PendingLogin>, StoreError> {
        self.check_up()?;
        Ok(self
            .pending
            .lock()
            .unwrap()
            .remove(state)
            .filter(|p| now < p.expires_at))
    }
}

#[async_trait]
impl ReplayCache for FakeStores {
    async fn insert_if_absent(
        &self,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.check_up()?;
        let mut replay = self.replay.lock().unwrap();
        match replay.get(value) {
            Some(until) if now < *until => Ok(false),
            _ => {
                replay.insert(value.to_owned(), expires_at);
                Ok(true)
            }
        }
    }

    async fn forget(&self, value: &str) -> Result<(), StoreError> {
        self.check_up()?;
        self.replay.lock().unwrap().remove(value);
        Ok(())
    }
}

#[async_trait]
impl Lock for FakeStores {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        _ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.check_up()?;
        let mut leases = self.leases.lock().unwrap();
        if leases.contains_key(name) {
            return Ok(false);
        }
        leases.insert(name.to_owned(), owner.to_owned());
        Ok(true)
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        self.check_up()?;
        let mut leases = self.leases.lock().unwrap();
        if leases.get(name).map(String::as_str) == Some(owner) {
            leases.remove(name);
            return Ok(true);
        }
        Ok(false)
    }

    async fn is_held(&self, name: &str) -> Result<bool, StoreError> {
        self.check_up()?;
        Ok(self.leases.lock().unwrap().contains_key(name))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_executor::block_on;

    use super::FakeStores;
    use crate::Timestamp;
    use crate::testkit::store_contract::ContractStores;

    fn fresh() -> ContractStores {
        let stores = Arc::new(FakeStores::default());
        ContractStores {
            sessions: stores.clone(),
            pending: stores.clone(),
            replay: stores.clone(),
            locks: stores,
        }
    }

    crate::store_contract_tests! {
        #[test]
        fn fake_stores_obey_the_contract(rule) {
            block_on(rule(&fresh(), Timestamp::from_unix_seconds(1_800_000_000)));
        }
    }

    /// The macro's list of rules is every `pub async fn` of the suite, so a rule added to the
    /// suite but not to the macro cannot silently go untested.
    #[test]
    fn every_rule_of_the_suite_has_a_test() {
        let source = include_str!("store_contract.rs");
        let defined: Vec<&str> = source
            .lines()
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .map(|rest| rest.split('(').next().unwrap())
            .collect();
        let tested: Vec<&str> = crate::store_contract_tests!(@rules names {}).to_vec();
        assert_eq!(tested, defined);
        assert!(defined.len() >= 10, "rules found: {defined:?}");
    }
}
