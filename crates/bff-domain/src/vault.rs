//! The token vault: tokens are sealed with the session key as associated data (a connected
//! provider's tokens with the session key and that provider's name), and a pending login's PKCE
//! verifier with its `state`.
//!
//! Binding the ciphertext to its session means a blob copied from one session row into another
//! does not open, so a write-access attacker on the store cannot move tokens between users; the
//! provider name in a connection's associated data means one provider's tokens cannot be passed
//! off as another's within a session either. A reader of the store sees no token and no PKCE
//! verifier.
//!
//! The `Cipher` port and the `Sealed` bytes it produces live here too, next to their only users.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ProviderId, SessionKey};
use crate::secret::Secret;
use crate::time::Timestamp;
use crate::tokens::TokenSet;

/// Bytes encrypted by the [`Cipher`] (a session's tokens, a pending login's PKCE
/// verifier), bound by associated data to what they belong to.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Which key sealed them, so keys can rotate.
    pub key_id: String,
    /// Nonce, ciphertext and tag, as the cipher lays them out.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("len", &self.ciphertext.len())
            .finish()
    }
}

/// Authenticated encryption with associated data and key ids.
pub trait Cipher: Send + Sync {
    /// Encrypts `plaintext` under the active key, binding `associated_data`.
    ///
    /// # Errors
    /// [`CipherError`] when encryption fails.
    fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Result<Sealed, CipherError>;

    /// Decrypts with the key named in `sealed`.
    ///
    /// # Errors
    /// [`CipherError`] for an unknown key id, tampering, or different associated data.
    fn open(&self, sealed: &Sealed, associated_data: &[u8]) -> Result<Vec<u8>, CipherError>;
}

/// Sealing or opening failed. Deliberately without detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The key id is not configured.
    #[error("unknown key id")]
    UnknownKey,
    /// Authentication failed: tampered ciphertext or wrong associated data.
    #[error("decryption failed")]
    Rejected,
    /// The cipher itself failed.
    #[error("encryption failed")]
    Failed,
}

const AAD_PREFIX: &str = "bff-session-tokens/v1:";
const VERIFIER_AAD_PREFIX: &str = "bff-pkce-verifier/v1:";
const CONNECTION_AAD_PREFIX: &str = "bff-connection-tokens/v1:";

/// The plaintext layout inside the seal. Private: only this module reads or writes it.
#[derive(Serialize, Deserialize)]
struct Plain {
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    it: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// `AAD_PREFIX` and the key, joined without the formatting machinery: every proxied request
/// opens a session's tokens.
fn associated_data(key: &SessionKey) -> Vec<u8> {
    joined(&[AAD_PREFIX, key.as_str()])
}

/// The key is 64 hex digits, so the `:` after it cannot be confused with part of the name.
fn connection_associated_data(key: &SessionKey, provider: &ProviderId) -> Vec<u8> {
    joined(&[CONNECTION_AAD_PREFIX, key.as_str(), ":", provider.as_str()])
}

fn joined(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn seal_with(
    cipher: &dyn Cipher,
    associated_data: &[u8],
    tokens: &TokenSet,
) -> Result<Sealed, CipherError> {
    let plain = Plain {
        at: tokens.access_token.expose().to_owned(),
        rt: tokens.refresh_token.as_ref().map(|s| s.expose().to_owned()),
        it: tokens.id_token.as_ref().map(|s| s.expose().to_owned()),
        exp: tokens.access_token_expires_at.map(Timestamp::unix_seconds),
        scope: tokens.scope.clone(),
    };
    let bytes = serde_json::to_vec(&plain).map_err(|_| CipherError::Failed)?;
    cipher.seal(&bytes, associated_data)
}

fn open_with(
    cipher: &dyn Cipher,
    associated_data: &[u8],
    sealed: &Sealed,
) -> Result<TokenSet, CipherError> {
    let bytes = cipher.open(sealed, associated_data)?;
    let plain: Plain = serde_json::from_slice(&bytes).map_err(|_| CipherError::Rejected)?;
    Ok(TokenSet {
        access_token: Secret::new(plain.at),
        refresh_token: plain.rt.map(Secret::new),
        id_token: plain.it.map(Secret::new),
        access_token_expires_at: plain.exp.map(Timestamp::from_unix_seconds),
        // Folded into the session's absolute expiry when the tokens were stored.
        refresh_token_expires_at: None,
        scope: plain.scope,
    })
}

/// Seals `tokens` for the session `key`.
///
/// # Errors
/// [`CipherError`] when the cipher fails.
pub(crate) fn seal(
    cipher: &dyn Cipher,
    key: &SessionKey,
    tokens: &TokenSet,
) -> Result<Sealed, CipherError> {
    seal_with(cipher, &associated_data(key), tokens)
}

/// Opens the tokens of the session `key`.
///
/// # Errors
/// [`CipherError`] when the key id is unknown, the blob was tampered with or belongs to another
/// session.
pub(crate) fn open(
    cipher: &dyn Cipher,
    key: &SessionKey,
    sealed: &Sealed,
) -> Result<TokenSet, CipherError> {
    open_with(cipher, &associated_data(key), sealed)
}

/// Whether the tokens of the session `key` open, without reading them: the cipher's check (a
/// known key id, nothing tampered with, this session's) and nothing more.
///
/// # Errors
/// As [`open`].
pub(crate) fn opens(
    cipher: &dyn Cipher,
    key: &SessionKey,
    sealed: &Sealed,
) -> Result<(), CipherError> {
    cipher.open(sealed, &associated_data(key)).map(drop)
}

/// Seals the tokens of the provider `provider` connected to the session `key`.
///
/// # Errors
/// [`CipherError`] when the cipher fails.
pub(crate) fn seal_connection(
    cipher: &dyn Cipher,
    key: &SessionKey,
    provider: &ProviderId,
    tokens: &TokenSet,
) -> Result<Sealed, CipherError> {
    seal_with(cipher, &connection_associated_data(key, provider), tokens)
}

/// Opens the tokens of the provider `provider` connected to the session `key`.
///
/// # Errors
/// [`CipherError`] when the key id is unknown, the blob was tampered with, or belongs to another
/// session, another provider or the session's primary login.
pub(crate) fn open_connection(
    cipher: &dyn Cipher,
    key: &SessionKey,
    provider: &ProviderId,
    sealed: &Sealed,
) -> Result<TokenSet, CipherError> {
    open_with(cipher, &connection_associated_data(key, provider), sealed)
}

fn verifier_associated_data(state: &str) -> Vec<u8> {
    format!("{VERIFIER_AAD_PREFIX}{state}").into_bytes()
}

/// Seals the PKCE verifier of the pending login `state`.
///
/// # Errors
/// [`CipherError`] when the cipher fails.
pub(crate) fn seal_verifier(
    cipher: &dyn Cipher,
    state: &str,
    verifier: &Secret,
) -> Result<Sealed, CipherError> {
    cipher.seal(
        verifier.expose().as_bytes(),
        &verifier_associated_data(state),
    )
}

/// Opens the PKCE verifier of the pending login `state`.
///
/// # Errors
/// [`CipherError`] when the key id is unknown, the blob was tampered with or belongs to another
/// pending login.
pub(crate) fn open_verifier(
    cipher: &dyn Cipher,
    state: &str,
    sealed: &Sealed,
) -> Result<Secret, CipherError> {
    let bytes = cipher.open(sealed, &verifier_associated_data(state))?;
    String::from_utf8(bytes)
        .map(Secret::new)
        .map_err(|_| CipherError::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;
    use crate::testkit::{FakeCipher, SeededRandom};

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: Secret::new("access"),
            refresh_token: Some(Secret::new("refresh")),
            id_token: Some(Secret::new("id")),
            access_token_expires_at: Some(Timestamp::from_unix_seconds(99)),
            refresh_token_expires_at: None,
            scope: Some("openid".into()),
        }
    }

    #[test]
    fn the_associated_data_is_the_label_then_the_key_as_sealed_tokens_were_bound_to() {
        // Tokens already in a store were sealed with exactly these bytes; any other bytes
        // would leave every stored session unreadable.
        let key = SessionId::generate(&SeededRandom::new(1)).key();
        let provider = ProviderId::parse("b").unwrap();
        assert_eq!(
            associated_data(&key),
            format!("bff-session-tokens/v1:{}", key.as_str()).into_bytes()
        );
        assert_eq!(
            connection_associated_data(&key, &provider),
            format!("bff-connection-tokens/v1:{}:b", key.as_str()).into_bytes()
        );
    }

    #[test]
    fn tokens_open_for_their_own_session_only_and_untampered() {
        let cipher = FakeCipher;
        let key = SessionId::generate(&SeededRandom::new(1)).key();
        let other = SessionId::generate(&SeededRandom::new(2)).key();
        let sealed = seal(&cipher, &key, &tokens()).unwrap();
        assert!(opens(&cipher, &key, &sealed).is_ok());
        assert!(opens(&cipher, &other, &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(opens(&cipher, &key, &tampered).is_err());
    }

    #[test]
    fn tokens_round_trip_through_the_vault() {
        let cipher = FakeCipher;
        let key = SessionId::generate(&SeededRandom::new(1)).key();
        let sealed = seal(&cipher, &key, &tokens()).unwrap();
        assert_eq!(open(&cipher, &key, &sealed).unwrap(), tokens());
    }

    #[test]
    fn a_pkce_verifier_opens_only_for_its_own_state() {
        let cipher = FakeCipher;
        let verifier = Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let sealed = seal_verifier(&cipher, "state-a", &verifier).unwrap();
        assert_eq!(
            open_verifier(&cipher, "state-a", &sealed).unwrap().expose(),
            verifier.expose()
        );
        assert_eq!(
            open_verifier(&cipher, "state-b", &sealed).unwrap_err(),
            CipherError::Rejected,
            "a verifier copied to another pending login must not open"
        );
        // Token blobs and verifiers use different associated data: one never opens as the other.
        let key = SessionId::generate(&SeededRandom::new(3)).key();
        let as_tokens = seal(&cipher, &key, &tokens()).unwrap();
        assert!(open_verifier(&cipher, key.as_str(), &as_tokens).is_err());
    }

    #[test]
    fn connection_tokens_open_only_for_their_session_and_provider() {
        let cipher = FakeCipher;
        let random = SeededRandom::new(4);
        let key = SessionId::generate(&random).key();
        let other_key = SessionId::generate(&random).key();
        let b = ProviderId::parse("b").unwrap();
        let c = ProviderId::parse("c").unwrap();
        let sealed = seal_connection(&cipher, &key, &b, &tokens()).unwrap();
        assert_eq!(
            open_connection(&cipher, &key, &b, &sealed).unwrap(),
            tokens()
        );
        // Another provider's slot, another session, or the primary slot: none opens it.
        assert_eq!(
            open_connection(&cipher, &key, &c, &sealed),
            Err(CipherError::Rejected)
        );
        assert_eq!(
            open_connection(&cipher, &other_key, &b, &sealed),
            Err(CipherError::Rejected)
        );
        assert_eq!(open(&cipher, &key, &sealed), Err(CipherError::Rejected));
        // And the primary login's tokens cannot pose as a connection's.
        let primary = seal(&cipher, &key, &tokens()).unwrap();
        assert_eq!(
            open_connection(&cipher, &key, &b, &primary),
            Err(CipherError::Rejected)
        );
    }

    #[test]
    fn a_blob_moved_to_another_session_does_not_open() {
        let cipher = FakeCipher;
        let random = SeededRandom::new(2);
        let victim = SessionId::generate(&random).key();
        let attacker = SessionId::generate(&random).key();
        let sealed = seal(&cipher, &victim, &tokens()).unwrap();
        assert_eq!(
            open(&cipher, &attacker, &sealed),
            Err(CipherError::Rejected)
        );
    }
}
