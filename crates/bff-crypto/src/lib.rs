//! ring-backed implementations of the domain's `Cipher` and `Random` ports.
//!
//! [`VaultCipher`] seals with AES-256-GCM under the first (active) configured key and opens with
//! whichever key the sealed value names, so keys rotate without logging anyone out: add the new
//! key first, keep the old ones for decryption until their sessions have expired. Each seal uses
//! a fresh random 96-bit nonce from the system RNG; the layout is `nonce || ciphertext || tag`.
//! The key id is part of the associated data, so a sealed value cannot be relabelled.
//!
//! [`SystemRandom`] is ring's OS-backed CSPRNG.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bff_domain::Sealed;
use bff_domain::ports::{Cipher, CipherError, Random};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SecureRandom as _;

/// Key length of AES-256 in bytes.
pub const KEY_LEN: usize = 32;

/// A key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No keys were given.
    #[error("at least one encryption key is required")]
    NoKeys,
    /// A key id is empty, too long or has characters other than a-z, A-Z, 0-9, '-', '_', '.'.
    #[error("key id {0:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.'")]
    BadId(String),
    /// Two keys share an id.
    #[error("key id {0:?} is used twice")]
    DuplicateId(String),
    /// The key material is not base64.
    #[error("key {0:?} is not valid base64")]
    NotBase64(String),
    /// The key is not 32 bytes.
    #[error(
        "key {id:?} is {len} bytes; AES-256 needs exactly 32 (generate one with `openssl rand -base64 32`)"
    )]
    WrongLength {
        /// Key id.
        id: String,
        /// Decoded length.
        len: usize,
    },
}

struct NamedKey {
    id: String,
    key: LessSafeKey,
}

/// AES-256-GCM with several keys, the first active.
pub struct VaultCipher {
    keys: Vec<NamedKey>,
    random: ring::rand::SystemRandom,
}

impl fmt::Debug for VaultCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultCipher")
            .field(
                "key_ids",
                &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl VaultCipher {
    /// Builds the cipher from `(key id, base64 key)` pairs; the first is used for sealing.
    ///
    /// # Errors
    /// [`KeyError`] for no keys, a bad or duplicate id, bad base64, or a key that is not 32
    /// bytes.
    pub fn from_base64_keys<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, KeyError> {
        let mut named = Vec::new();
        for (id, material) in keys {
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !id_ok {
                return Err(KeyError::BadId(id.to_owned()));
            }
            if named.iter().any(|k: &NamedKey| k.id == id) {
                return Err(KeyError::DuplicateId(id.to_owned()));
            }
            let bytes = STANDARD
                .decode(material.trim())
                .map_err(|_| KeyError::NotBase64(id.to_owned()))?;
            if bytes.len() != KEY_LEN {
                return Err(KeyError::WrongLength {
                    id: id.to_owned(),
                    len: bytes.len(),
                });
            }
            let unbound =
                UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyError::WrongLength {
                    id: id.to_owned(),
                    len: bytes.len(),
                })?;
            named.push(NamedKey {
                id: id.to_owned(),
                key: LessSafeKey::new(unbound),
            });
        }
        if named.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(Self {
            keys: named,
            random: ring::rand::SystemRandom::new(),
        })
    }

    fn full_aad(key_id: &str, associated_data: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(key_id.len() + 1 + associated_data.len());
        aad.extend_from_slice(key_id.as_bytes());
        aad.push(0);
        aad.extend_from_slice(associated_data);
        aad
    }
}

impl Cipher for VaultCipher {
    fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Result<Sealed, CipherError> {
        let active = self.keys.first().ok_or(CipherError::Failed)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| CipherError::Failed)?;
        let mut buffer = plaintext.to_vec();
        active
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::full_aad(&active.id, associated_data)),
                &mut buffer,
            )
            .map_err(|_| CipherError::Failed)?;
        let mut ciphertext = Vec::with_capacity(NONCE_LEN + buffer.len());
        ciphertext.extend_from_slice(&nonce);
        ciphertext.extend_from_slice(&buffer);
        Ok(Sealed {
            key_id: active.id.clone(),
            ciphertext,
        })
    }

    fn open(&self, sealed: &Sealed, associated_data: &[u8]) -> Result<Vec<u8>, CipherError> {
        let named = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or(CipherError::UnknownKey)?;
        if sealed.ciphertext.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(CipherError::Rejected);
        }
        let (nonce, body) = sealed.ciphertext.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CipherError::Rejected)?;
        let mut buffer = body.to_vec();
        let plain = named
            .key
            .open_in_place(
                nonce,
                Aad::from(Self::full_aad(&named.id, associated_data)),
                &mut buffer,
            )
            .map_err(|_| CipherError::Rejected)?;
        Ok(plain.to_vec())
    }
}

/// The operating system's CSPRNG, through ring.
#[derive(Debug)]
pub struct SystemRandom(ring::rand::SystemRandom);

impl Default for SystemRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemRandom {
    /// The system RNG.
    pub fn new() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl Random for SystemRandom {
    fn fill(&self, dest: &mut [u8]) {
        if self.0.fill(dest).is_err() {
            // Without an RNG every session id would be guessable; stopping is the only safe
            // answer, and the OS RNG failing means the machine is broken anyway.
            eprintln!("fatal: the operating system random number generator failed");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "HxwdHhscGRoXGBUWExQREg8QDQ4LDAkKBwgFBgMEAQI=";

    fn cipher(keys: &[(&str, &str)]) -> VaultCipher {
        VaultCipher::from_base64_keys(keys.iter().copied()).unwrap()
    }

    #[test]
    fn seal_then_open_round_trips_with_fresh_nonces() {
        let c = cipher(&[("k1", K1)]);
        let a = c.seal(b"secret tokens", b"session-a").unwrap();
        let b = c.seal(b"secret tokens", b"session-a").unwrap();
        assert_eq!(a.key_id, "k1");
        assert_ne!(a.ciphertext, b.ciphertext, "nonce reused");
        assert!(!a.ciphertext.windows(6).any(|w| w == b"secret"));
        assert_eq!(c.open(&a, b"session-a").unwrap(), b"secret tokens");
    }

    #[test]
    fn tampering_and_other_associated_data_are_rejected() {
        let c = cipher(&[("k1", K1)]);
        let sealed = c.seal(b"tokens", b"session-a").unwrap();
        assert_eq!(c.open(&sealed, b"session-b"), Err(CipherError::Rejected));
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 1;
            assert_eq!(
                c.open(&bad, b"session-a"),
                Err(CipherError::Rejected),
                "byte {i}"
            );
        }
        let mut short = sealed.clone();
        short.ciphertext.truncate(10);
        assert_eq!(c.open(&short, b"session-a"), Err(CipherError::Rejected));
    }

    #[test]
    fn keys_rotate_without_breaking_old_seals() {
        let old = cipher(&[("k1", K1)]);
        let sealed_old = old.seal(b"old", b"aad").unwrap();
        let rotated = cipher(&[("k2", K2), ("k1", K1)]);
        assert_eq!(rotated.open(&sealed_old, b"aad").unwrap(), b"old");
        let sealed_new = rotated.seal(b"new", b"aad").unwrap();
        assert_eq!(sealed_new.key_id, "k2");
        assert_eq!(old.open(&sealed_new, b"aad"), Err(CipherError::UnknownKey));
    }

    #[test]
    fn a_relabelled_key_id_does_not_open() {
        // Same key material under two ids: the id is authenticated, so relabelling fails.
        let c = cipher(&[("k1", K1), ("k1b", K1)]);
        let mut sealed = c.seal(b"x", b"aad").unwrap();
        sealed.key_id = "k1b".into();
        assert_eq!(c.open(&sealed, b"aad"), Err(CipherError::Rejected));
    }

    #[test]
    fn bad_keys_are_refused_with_a_clear_reason() {
        let short = STANDARD.encode([0u8; 16]);
        let cases: Vec<(Vec<(&str, &str)>, KeyError)> = vec![
            (vec![], KeyError::NoKeys),
            (vec![("", K1)], KeyError::BadId(String::new())),
            (vec![("a b", K1)], KeyError::BadId("a b".into())),
            (
                vec![("k", K1), ("k", K2)],
                KeyError::DuplicateId("k".into()),
            ),
            (vec![("k", "%%%")], KeyError::NotBase64("k".into())),
            (
                vec![("k", short.as_str())],
                KeyError::WrongLength {
                    id: "k".into(),
                    len: 16,
                },
            ),
        ];
        for (keys, expected) in cases {
            assert_eq!(
                VaultCipher::from_base64_keys(keys.iter().copied()).unwrap_err(),
                expected
            );
        }
    }

    #[test]
    fn debug_shows_ids_only() {
        let c = cipher(&[("k1", K1)]);
        let shown = format!("{c:?}");
        assert!(shown.contains("k1"));
        assert!(!shown.contains(K1));
    }

    #[test]
    fn system_random_fills() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        SystemRandom::new().fill(&mut a);
        SystemRandom::new().fill(&mut b);
        assert_ne!(a, b);
    }
}
