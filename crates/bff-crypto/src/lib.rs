//! ring-backed implementations of the domain's `Cipher` and `Random` ports.
//!
//! [`VaultCipher`] seals with AES-256-GCM under the first (active) configured key and opens with
//! whichever key the sealed value names, so keys rotate without logging anyone out: add the new
//! key first, keep the old ones for decryption until their sessions have expired. Each seal uses
//! a fresh random 96-bit nonce from the system RNG; the layout is `nonce || ciphertext || tag`.
//! The key id is part of the associated data, so a sealed value cannot be relabelled.
//!
//! [`VaultKeys`] is the key list as configured, checked once when it is parsed (or
//! deserialized): ids, base64, 32 bytes, no duplicates; [`VaultCipher::new`] then cannot fail.
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

/// Key material that is not a base64-encoded AES-256 key. The message never contains the
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyMaterialError {
    /// Not base64.
    #[error("is not valid base64")]
    NotBase64,
    /// Not 32 bytes.
    #[error("is {0} bytes; AES-256 needs exactly 32 (generate one with `openssl rand -base64 32`)")]
    WrongLength(usize),
}

/// A vault key id: 1 to 64 of `A-Z`, `a-z`, `0-9`, `-`, `_`, `.`. It is stored beside every
/// sealed value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct KeyId(String);

impl KeyId {
    /// Checks the naming rule.
    ///
    /// # Errors
    /// [`KeyError::BadId`].
    pub fn parse(id: &str) -> Result<Self, KeyError> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(KeyError::BadId(id.to_owned()))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = KeyError;

    fn try_from(id: String) -> Result<Self, KeyError> {
        Self::parse(&id)
    }
}

/// An AES-256 key decoded from base64 (`openssl rand -base64 32`), ready to use. `Debug` never
/// shows it.
#[derive(Clone, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct KeyMaterial(LessSafeKey);

impl KeyMaterial {
    /// Decodes standard base64 (surrounding whitespace ignored) into a 32-byte key.
    ///
    /// # Errors
    /// [`KeyMaterialError`] for bad base64 or a length other than 32 bytes.
    pub fn from_base64(material: &str) -> Result<Self, KeyMaterialError> {
        let bytes = STANDARD
            .decode(material.trim())
            .map_err(|_| KeyMaterialError::NotBase64)?;
        if bytes.len() != KEY_LEN {
            return Err(KeyMaterialError::WrongLength(bytes.len()));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| KeyMaterialError::WrongLength(bytes.len()))?;
        Ok(Self(LessSafeKey::new(unbound)))
    }
}

impl TryFrom<String> for KeyMaterial {
    type Error = KeyMaterialError;

    fn try_from(material: String) -> Result<Self, KeyMaterialError> {
        Self::from_base64(&material)
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One vault key: `{ id, key }` in configuration.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultKey {
    /// Stored beside each sealed value, so the right key opens it.
    pub id: KeyId,
    /// The key.
    pub key: KeyMaterial,
}

/// The vault keys, checked once: at least one, ids unique. The first seals; the others only
/// open (rotation). Deserializes from a list of `{ id, key }` tables.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(try_from = "Vec<VaultKey>")]
pub struct VaultKeys(Vec<VaultKey>);

impl VaultKeys {
    /// Checks that there is a key and that no id repeats.
    ///
    /// # Errors
    /// [`KeyError::NoKeys`] or [`KeyError::DuplicateId`].
    pub fn new(keys: Vec<VaultKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|earlier| earlier.id == key.id) {
                return Err(KeyError::DuplicateId(key.id.0.clone()));
            }
        }
        Ok(Self(keys))
    }

    /// Parses `(key id, base64 key)` pairs; the first is the one that seals.
    ///
    /// # Errors
    /// [`KeyError`] for no keys, a bad or duplicate id, bad base64, or a key that is not 32
    /// bytes.
    pub fn from_base64<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, KeyError> {
        let mut parsed = Vec::new();
        for (id, material) in keys {
            let id = KeyId::parse(id)?;
            let key = KeyMaterial::from_base64(material).map_err(|e| match e {
                KeyMaterialError::NotBase64 => KeyError::NotBase64(id.0.clone()),
                KeyMaterialError::WrongLength(len) => KeyError::WrongLength {
                    id: id.0.clone(),
                    len,
                },
            })?;
            parsed.push(VaultKey { id, key });
        }
        Self::new(parsed)
    }

    /// The key ids, the sealing one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|k| k.id.as_str())
    }
}

impl TryFrom<Vec<VaultKey>> for VaultKeys {
    type Error = KeyError;

    fn try_from(keys: Vec<VaultKey>) -> Result<Self, KeyError> {
        Self::new(keys)
    }
}

/// AES-256-GCM with several keys, the first active.
pub struct VaultCipher {
    keys: Vec<VaultKey>,
    random: ring::rand::SystemRandom,
}

impl fmt::Debug for VaultCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultCipher")
            .field(
                "key_ids",
                &self.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl VaultCipher {
    /// The cipher for already checked keys; the first seals.
    pub fn new(keys: VaultKeys) -> Self {
        Self {
            keys: keys.0,
            random: ring::rand::SystemRandom::new(),
        }
    }

    /// Builds the cipher from `(key id, base64 key)` pairs; the first is used for sealing.
    ///
    /// # Errors
    /// [`KeyError`] for no keys, a bad or duplicate id, bad base64, or a key that is not 32
    /// bytes.
    pub fn from_base64_keys<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, KeyError> {
        VaultKeys::from_base64(keys).map(Self::new)
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
            .0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::full_aad(active.id.as_str(), associated_data)),
                &mut buffer,
            )
            .map_err(|_| CipherError::Failed)?;
        let mut ciphertext = Vec::with_capacity(NONCE_LEN + buffer.len());
        ciphertext.extend_from_slice(&nonce);
        ciphertext.extend_from_slice(&buffer);
        Ok(Sealed {
            key_id: active.id.as_str().to_owned(),
            ciphertext,
        })
    }

    fn open(&self, sealed: &Sealed, associated_data: &[u8]) -> Result<Vec<u8>, CipherError> {
        let named = self
            .keys
            .iter()
            .find(|k| k.id.as_str() == sealed.key_id)
            .ok_or(CipherError::UnknownKey)?;
        if sealed.ciphertext.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(CipherError::Rejected);
        }
        let (nonce, body) = sealed.ciphertext.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CipherError::Rejected)?;
        let mut buffer = body.to_vec();
        let plain = named
            .key
            .0
            .open_in_place(
                nonce,
                Aad::from(Self::full_aad(named.id.as_str(), associated_data)),
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
        let keys = VaultKeys::from_base64([("k1", K1)]).unwrap();
        let shown = format!("{keys:?}");
        assert!(
            shown.contains("k1") && shown.contains("[redacted]"),
            "{shown}"
        );
        assert!(!shown.contains(K1), "{shown}");
    }

    fn entry(id: &str, key: &str) -> Result<VaultKey, serde::de::value::Error> {
        use serde::Deserialize as _;
        use serde::de::IntoDeserializer as _;
        let fields = vec![("id", id.to_owned()), ("key", key.to_owned())];
        VaultKey::deserialize(serde::de::value::MapDeserializer::new(
            fields.into_iter().map(|(k, v)| (k, v.into_deserializer())),
        ))
    }

    #[test]
    fn keys_deserialize_checked_once_and_the_cipher_needs_no_more_checks() {
        use serde::Deserialize as _;
        let keys =
            VaultKeys::try_from(vec![entry("k2", K2).unwrap(), entry("k1", K1).unwrap()]).unwrap();
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        let c = VaultCipher::new(keys);
        let sealed = c.seal(b"x", b"aad").unwrap();
        assert_eq!(sealed.key_id, "k2");
        assert_eq!(cipher(&[("k2", K2)]).open(&sealed, b"aad").unwrap(), b"x");

        let short = STANDARD.encode([7u8; 31]);
        let message = entry("k", &short).unwrap_err().to_string();
        assert!(message.contains("is 31 bytes"), "{message}");
        assert!(!message.contains(&short), "{message}");
        let message = entry("k", "not base64!").unwrap_err().to_string();
        assert!(message.contains("not valid base64"), "{message}");
        assert!(!message.contains("not base64!"), "{message}");
        let message = entry("a b", K1).unwrap_err().to_string();
        assert!(message.contains("key id \"a b\""), "{message}");
        let message = KeyMaterial::deserialize(serde::de::value::StrDeserializer::<
            serde::de::value::Error,
        >::new(" "))
        .unwrap_err()
        .to_string();
        assert!(message.contains("is 0 bytes"), "{message}");

        assert_eq!(
            VaultKeys::try_from(Vec::new()).unwrap_err(),
            KeyError::NoKeys
        );
        assert_eq!(
            VaultKeys::try_from(vec![entry("k", K1).unwrap(), entry("k", K2).unwrap()])
                .unwrap_err(),
            KeyError::DuplicateId("k".into())
        );
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
