//! Row and record mapping between the domain's types and the tables. The storage form belongs
//! here, not in the domain.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bff_domain::ports::StoreError;
use bff_domain::{
    Claims, ClientBinding, Connection, PendingLogin, ProviderId, RenewalAlias, RenewalNonce,
    ReturnUrl, Sealed, Session, SessionKey, Timestamp,
};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;

pub(crate) fn version_to_db(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| StoreError::unavailable("session version out of range"))
}

pub(crate) fn version_from_db(version: i64) -> Result<u64, StoreError> {
    u64::try_from(version)
        .map_err(|_| StoreError::unavailable("negative session version in database"))
}

pub(crate) fn bind_session<'q>(
    query: Query<'q, sqlx::Postgres, PgArguments>,
    s: &'q Session,
) -> Query<'q, sqlx::Postgres, PgArguments> {
    query
        .bind(s.key.as_str())
        .bind(s.provider.as_str())
        .bind(&s.issuer)
        .bind(&s.subject)
        .bind(s.provider_session_id.as_deref())
        .bind(sqlx::types::Json(s.claims.as_map()))
        .bind(s.created_at.unix_seconds())
        .bind(s.last_seen_at.unix_seconds())
        .bind(s.idle_expires_at.unix_seconds())
        .bind(s.absolute_expires_at.unix_seconds())
        .bind(s.access_token_expires_at.map(Timestamp::unix_seconds))
        .bind(i64::try_from(s.version).unwrap_or(i64::MAX))
        .bind(&s.tokens.key_id)
        .bind(&s.tokens.ciphertext)
        .bind(sqlx::types::Json(connections_to_db(&s.connections)))
        .bind(s.id_issued_at.unix_seconds())
        .bind(s.client_binding.as_ref().map(ClientBinding::as_str))
        .bind(s.user_agent.as_deref())
}

pub(crate) fn renewal_from_row(row: &PgRow) -> Result<RenewalAlias, String> {
    let new_key: String = row.try_get("new_key").map_err(|e| e.to_string())?;
    let nonce: String = row.try_get("nonce").map_err(|e| e.to_string())?;
    let expires_at: i64 = row.try_get("expires_at").map_err(|e| e.to_string())?;
    Ok(RenewalAlias {
        new_key: SessionKey::from_stored(&new_key).map_err(|e| e.to_string())?,
        nonce: RenewalNonce::from_stored(&nonce).map_err(|e| e.to_string())?,
        expires_at: Timestamp::from_unix_seconds(expires_at),
    })
}

/// A connected provider as stored in the `connections` JSON array. Its tokens arrive sealed by
/// the domain's vault.
#[derive(Serialize, Deserialize)]
pub(crate) struct ConnectionRecord {
    provider: String,
    claims: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    access_token_expires_at: Option<i64>,
    key_id: String,
    /// Base64 of the sealed tokens.
    sealed: String,
}

pub(crate) fn connections_to_db(connections: &[Connection]) -> Vec<ConnectionRecord> {
    connections
        .iter()
        .map(|c| ConnectionRecord {
            provider: c.provider.as_str().to_owned(),
            claims: c.claims.as_map().clone(),
            access_token_expires_at: c.access_token_expires_at.map(Timestamp::unix_seconds),
            key_id: c.tokens.key_id.clone(),
            sealed: STANDARD.encode(&c.tokens.ciphertext),
        })
        .collect()
}

fn connections_from_db(records: Vec<ConnectionRecord>) -> Result<Vec<Connection>, String> {
    records
        .into_iter()
        .map(|r| {
            Ok(Connection {
                provider: ProviderId::parse(&r.provider).map_err(|e| e.to_string())?,
                claims: Claims::new(r.claims),
                access_token_expires_at: r
                    .access_token_expires_at
                    .map(Timestamp::from_unix_seconds),
                tokens: Sealed {
                    key_id: r.key_id,
                    ciphertext: STANDARD.decode(&r.sealed).map_err(|e| e.to_string())?,
                },
            })
        })
        .collect()
}

pub(crate) fn session_from_row(row: &PgRow) -> Result<Session, String> {
    let get_i64 = |name: &str| row.try_get::<i64, _>(name).map_err(|e| e.to_string());
    let ts = |name: &str| get_i64(name).map(Timestamp::from_unix_seconds);
    let key: String = row.try_get("session_key").map_err(|e| e.to_string())?;
    let provider: String = row.try_get("provider").map_err(|e| e.to_string())?;
    let sqlx::types::Json(claims): sqlx::types::Json<serde_json::Map<String, serde_json::Value>> =
        row.try_get("claims").map_err(|e| e.to_string())?;
    let access: Option<i64> = row
        .try_get("access_token_expires_at")
        .map_err(|e| e.to_string())?;
    let sqlx::types::Json(connections): sqlx::types::Json<Vec<ConnectionRecord>> =
        row.try_get("connections").map_err(|e| e.to_string())?;
    let created_at = ts("created_at")?;
    // Rows from before the lifecycle columns: the id was issued at login.
    let id_issued_at: Option<i64> = row.try_get("id_issued_at").map_err(|e| e.to_string())?;
    let client_binding: Option<String> =
        row.try_get("client_binding").map_err(|e| e.to_string())?;
    Ok(Session {
        id_issued_at: id_issued_at.map_or(created_at, Timestamp::from_unix_seconds),
        client_binding: client_binding
            .as_deref()
            .map(ClientBinding::from_stored)
            .transpose()
            .map_err(|e| e.to_string())?,
        user_agent: row.try_get("user_agent").map_err(|e| e.to_string())?,
        key: SessionKey::from_stored(&key).map_err(|e| e.to_string())?,
        provider: ProviderId::parse(&provider).map_err(|e| e.to_string())?,
        issuer: row.try_get("issuer").map_err(|e| e.to_string())?,
        subject: row.try_get("subject").map_err(|e| e.to_string())?,
        provider_session_id: row
            .try_get("provider_session_id")
            .map_err(|e| e.to_string())?,
        claims: Claims::new(claims),
        created_at,
        last_seen_at: ts("last_seen_at")?,
        idle_expires_at: ts("idle_expires_at")?,
        absolute_expires_at: ts("absolute_expires_at")?,
        access_token_expires_at: access.map(Timestamp::from_unix_seconds),
        version: u64::try_from(get_i64("version")?).map_err(|e| e.to_string())?,
        tokens: Sealed {
            key_id: row.try_get("key_id").map_err(|e| e.to_string())?,
            ciphertext: row.try_get("sealed_tokens").map_err(|e| e.to_string())?,
        },
        connections: connections_from_db(connections)?,
    })
}

/// A pending login as stored (JSON). The PKCE verifier arrives sealed by the domain's vault.
#[derive(Serialize, Deserialize)]
pub(crate) struct PendingRecord {
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
    state: String,
    /// The session key a connect login joins (absent in records of plain logins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connect_to: Option<String>,
}

impl From<&PendingLogin> for PendingRecord {
    fn from(p: &PendingLogin) -> Self {
        Self {
            provider: p.provider.as_str().to_owned(),
            verifier_key_id: p.sealed_verifier.key_id.clone(),
            sealed_verifier: STANDARD.encode(&p.sealed_verifier.ciphertext),
            nonce: p.nonce.clone(),
            redirect_uri: p.redirect_uri.clone(),
            return_url: p.return_url.as_str().to_owned(),
            binding_hash: p.binding_hash.clone(),
            created_at: p.created_at.unix_seconds(),
            expires_at: p.expires_at.unix_seconds(),
            state: p.state.clone(),
            connect_to: p.connect_to.as_ref().map(|k| k.as_str().to_owned()),
        }
    }
}

impl PendingRecord {
    pub(crate) fn into_domain(self) -> Result<PendingLogin, String> {
        Ok(PendingLogin {
            state: self.state,
            provider: ProviderId::parse(&self.provider).map_err(|e| e.to_string())?,
            sealed_verifier: Sealed {
                key_id: self.verifier_key_id,
                ciphertext: STANDARD
                    .decode(&self.sealed_verifier)
                    .map_err(|e| e.to_string())?,
            },
            nonce: self.nonce,
            redirect_uri: self.redirect_uri,
            return_url: ReturnUrl::parse(&self.return_url).map_err(|e| e.to_string())?,
            binding_hash: self.binding_hash,
            created_at: Timestamp::from_unix_seconds(self.created_at),
            expires_at: Timestamp::from_unix_seconds(self.expires_at),
            connect_to: self
                .connect_to
                .as_deref()
                .map(SessionKey::from_stored)
                .transpose()
                .map_err(|e| e.to_string())?,
        })
    }
}
