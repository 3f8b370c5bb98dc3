//! `[store]`: which store keeps sessions. `[store.postgres]` and `[store.redis]` belong to
//! their adapters (`bff_store_postgres::PostgresConfig`, `bff_store_redis::RedisConfig`).

use bff_store_postgres::PostgresConfig;
use bff_store_redis::RedisConfig;
use serde::Deserialize;

use super::problem::KeyPath;
use super::reader::{Reader, greater_than_zero};

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `kind`: `memory` (default), `postgres`, `redis` or `postgres+redis`.
    #[serde(default = "default_store_kind")]
    pub kind: StoreKind,
    /// `sweep_interval_secs`: seconds between sweeps of expired sessions; default 60, not zero.
    #[serde(
        default = "default_sweep_interval",
        deserialize_with = "greater_than_zero"
    )]
    pub sweep_interval_secs: u64,
    /// `[store.postgres]`, for `postgres` and `postgres+redis`.
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
    /// `[store.redis]`, for `redis` and `postgres+redis`.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            sweep_interval_secs: default_sweep_interval(),
            postgres: None,
            redis: None,
        }
    }
}

impl StoreConfig {
    /// Reports a store kind whose section is missing.
    pub(crate) fn check_sections(&self, path: &KeyPath, reader: &mut Reader<'_>) {
        let needs_postgres = matches!(self.kind, StoreKind::Postgres | StoreKind::PostgresRedis);
        let needs_redis = matches!(self.kind, StoreKind::Redis | StoreKind::PostgresRedis);
        for (needed, present, section) in [
            (needs_postgres, self.postgres.is_some(), "postgres"),
            (needs_redis, self.redis.is_some(), "redis"),
        ] {
            if needed && !present {
                reader.problem(
                    &path.key(section).key("url"),
                    format!(
                        "store.kind = \"{}\" needs a [store.{section}] section with a url",
                        self.kind.name()
                    ),
                );
            }
        }
    }
}

fn default_store_kind() -> StoreKind {
    StoreKind::Memory
}

fn default_sweep_interval() -> u64 {
    60
}

/// Store choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum StoreKind {
    /// In process memory: one node, nothing survives a restart.
    #[serde(rename = "memory")]
    Memory,
    /// PostgreSQL for everything.
    #[serde(rename = "postgres")]
    Postgres,
    /// Redis for everything (sessions live as long as Redis keeps them).
    #[serde(rename = "redis")]
    Redis,
    /// Postgres is the system of record; Redis caches hot sessions and holds pending logins,
    /// the replay cache and locks.
    #[serde(rename = "postgres+redis")]
    PostgresRedis,
}

impl StoreKind {
    /// The configuration value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::PostgresRedis => "postgres+redis",
        }
    }
}
