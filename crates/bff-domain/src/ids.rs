//! Identifiers with rules: session ids, their storage keys, provider ids, login bindings,
//! post-logout states, prompts.
//!
//! Each is a newtype with a private field and a constructor that can fail, so a value of the type
//! is always valid. Values that act as credentials (`SessionId`, `LoginBinding`) redact themselves
//! in `Debug`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::random::Random;
use crate::secret::constant_time_eq;

/// Bytes of randomness in a session id and a login binding: 256 bits.
const CREDENTIAL_BYTES: usize = 32;
/// Length of 32 bytes in unpadded base64url.
const CREDENTIAL_CHARS: usize = 43;

fn random_credential(random: &dyn Random) -> String {
    let mut bytes = [0u8; CREDENTIAL_BYTES];
    random.fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn is_credential_shaped(value: &str) -> bool {
    value.len() == CREDENTIAL_CHARS
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value is not a well-formed credential (wrong length or alphabet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0}")]
pub struct MalformedCredential(&'static str);

impl MalformedCredential {
    pub(crate) fn new(what: &'static str) -> Self {
        Self(what)
    }
}

/// The opaque session id carried by the browser's session cookie: 256 random bits, base64url.
///
/// It is a bearer credential: it is never logged, and stores only ever see its [`SessionKey`].
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random session id.
    pub fn generate(random: &dyn Random) -> Self {
        Self(random_credential(random))
    }

    /// Parses a cookie value. Anything that is not 43 base64url characters is refused, so junk
    /// never reaches a store.
    ///
    /// # Errors
    /// [`MalformedCredential`] when the value has the wrong length or alphabet.
    pub fn parse(value: &str) -> Result<Self, MalformedCredential> {
        if is_credential_shaped(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(MalformedCredential("session id"))
        }
    }

    /// The cookie value. Only the HTTP adapter calls this, to set the cookie.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key under which stores keep this session: SHA-256 of the id, hex encoded.
    pub fn key(&self) -> SessionKey {
        SessionKey(hex_sha256(self.0.as_bytes()))
    }

    /// The id this one is renewed to with `nonce`: SHA-256 over a label, this id and the nonce,
    /// base64url. Whoever holds this id during the renewal's grace period can work the new one
    /// out (so a request that lost the answer carrying the new cookie gets it again); the store,
    /// which holds the nonce but only the old id's hash, cannot.
    pub fn renewed(&self, nonce: &RenewalNonce) -> SessionId {
        let digest = Sha256::new()
            .chain_update(RENEWAL_LABEL)
            .chain_update(self.0.as_bytes())
            .chain_update(b":")
            .chain_update(nonce.0.as_bytes())
            .finalize();
        SessionId(URL_SAFE_NO_PAD.encode(digest))
    }
}

const RENEWAL_LABEL: &[u8] = b"bff-session-renewal/v1:";

/// The random value of a session id renewal, kept with the old key for the grace period (see
/// [`SessionId::renewed`]). Redacted in `Debug`: with the old id it gives the new one.
#[derive(Clone, PartialEq, Eq)]
pub struct RenewalNonce(String);

impl RenewalNonce {
    /// A fresh random nonce.
    pub fn generate(random: &dyn Random) -> Self {
        Self(random_credential(random))
    }

    /// Rebuilds a nonce read back from a store.
    ///
    /// # Errors
    /// [`MalformedCredential`] when the value has the wrong length or alphabet.
    pub fn from_stored(value: &str) -> Result<Self, MalformedCredential> {
        if is_credential_shaped(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(MalformedCredential("renewal nonce"))
        }
    }

    /// The value, for stores.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RenewalNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RenewalNonce([redacted])")
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// The storage key of a session: the SHA-256 of its [`SessionId`], so a leaked table or cache
/// cannot be replayed as cookies.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(String);

impl SessionKey {
    /// Rebuilds a key read back from a store.
    ///
    /// # Errors
    /// [`MalformedCredential`] unless the value is 64 lowercase hex digits.
    pub fn from_stored(value: &str) -> Result<Self, MalformedCredential> {
        if value.len() == 64
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(value.to_owned()))
        } else {
            Err(MalformedCredential("session key"))
        }
    }

    /// The hex digest, as stores keep it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate log lines; the whole key is not a credential, but
        // there is no reason to print it.
        write!(f, "SessionKey({}…)", &self.0[..8.min(self.0.len())])
    }
}

/// The random value of the login-binding cookie, which ties a pending authorization request to
/// the browser that started it. Stores keep only its hash.
#[derive(Clone)]
pub struct LoginBinding(String);

impl LoginBinding {
    /// A fresh random binding.
    pub fn generate(random: &dyn Random) -> Self {
        Self(random_credential(random))
    }

    /// Parses a cookie value.
    ///
    /// # Errors
    /// [`MalformedCredential`] when the value has the wrong length or alphabet.
    pub fn parse(value: &str) -> Result<Self, MalformedCredential> {
        if is_credential_shaped(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(MalformedCredential("login binding"))
        }
    }

    /// The cookie value.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash a pending login keeps.
    pub fn hash(&self) -> String {
        hex_sha256(self.0.as_bytes())
    }

    /// Whether this binding is the one whose hash was stored, compared in constant time.
    pub fn matches(&self, stored_hash: &str) -> bool {
        constant_time_eq(self.hash().as_bytes(), stored_hash.as_bytes())
    }
}

impl fmt::Debug for LoginBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginBinding([redacted])")
    }
}

/// The `state` of an RP-initiated logout: sent to the provider's end-session endpoint, kept by
/// the browser in a short-lived cookie, and compared when the provider redirects back, so a
/// forged "you are logged out" redirect is recognised.
#[derive(Clone)]
pub struct PostLogoutState(String);

impl PostLogoutState {
    /// A fresh random state.
    pub fn generate(random: &dyn Random) -> Self {
        Self(random_credential(random))
    }

    /// Parses a cookie value.
    ///
    /// # Errors
    /// [`MalformedCredential`] when the value has the wrong length or alphabet.
    pub fn parse(value: &str) -> Result<Self, MalformedCredential> {
        if is_credential_shaped(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(MalformedCredential("post-logout state"))
        }
    }

    /// The value, for the end-session URL and the cookie.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `returned` (the provider's `state` parameter) is this state, in constant time.
    pub fn matches(&self, returned: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), returned.as_bytes())
    }
}

impl fmt::Debug for PostLogoutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PostLogoutState([redacted])")
    }
}

/// The name of a configured identity provider: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(String);

/// The provider name breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider names are 1 to 64 characters of a-z, 0-9, '-' and '_'")]
pub struct InvalidProviderId;

impl ProviderId {
    /// Parses a provider name.
    ///
    /// # Errors
    /// [`InvalidProviderId`] when the name is empty, too long or has other characters.
    pub fn parse(value: &str) -> Result<Self, InvalidProviderId> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidProviderId)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The OIDC `prompt` values an app may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// `none`: no interaction (silent login).
    None,
    /// `login`: re-authenticate.
    Login,
    /// `consent`: ask for consent again.
    Consent,
    /// `select_account`: let the user choose an account.
    SelectAccount,
    /// `create`: registration (Initiating User Registration via OIDC).
    Create,
}

/// The prompt value is not one the BFF passes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prompt must be one of none, login, consent, select_account, create")]
pub struct InvalidPrompt;

impl Prompt {
    /// Parses the wire value.
    ///
    /// # Errors
    /// [`InvalidPrompt`] for any other value.
    pub fn parse(value: &str) -> Result<Self, InvalidPrompt> {
        match value {
            "none" => Ok(Self::None),
            "login" => Ok(Self::Login),
            "consent" => Ok(Self::Consent),
            "select_account" => Ok(Self::SelectAccount),
            "create" => Ok(Self::Create),
            _ => Err(InvalidPrompt),
        }
    }

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Login => "login",
            Self::Consent => "consent",
            Self::SelectAccount => "select_account",
            Self::Create => "create",
        }
    }
}

/// Hex-encoded SHA-256.
pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::SeededRandom;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte_and_hex_sha256_the_standard_digest() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
        // FIPS 180-2's example: SHA-256 of "abc".
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn session_ids_are_256_bits_and_differ() {
        let random = SeededRandom::new(1);
        let a = SessionId::generate(&random);
        let b = SessionId::generate(&random);
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.expose()).unwrap(), a);
    }

    #[test]
    fn malformed_session_ids_are_refused() {
        let too_short = "a".repeat(42);
        let too_long = "a".repeat(44);
        let bad_alphabet = format!("{}+", "a".repeat(42));
        for value in [
            "",
            too_short.as_str(),
            too_long.as_str(),
            bad_alphabet.as_str(),
        ] {
            assert!(SessionId::parse(value).is_err(), "{value:?} accepted");
        }
    }

    #[test]
    fn the_storage_key_is_a_hash_not_the_id() {
        let id = SessionId::generate(&SeededRandom::new(7));
        let key = id.key();
        assert_eq!(key.as_str().len(), 64);
        assert!(!key.as_str().contains(id.expose()));
        assert_eq!(SessionKey::from_stored(key.as_str()).unwrap(), key);
        assert!(SessionKey::from_stored("XYZ").is_err());
    }

    #[test]
    fn a_renewed_id_is_a_well_formed_new_id_fixed_by_the_old_id_and_the_nonce() {
        let random = SeededRandom::new(11);
        let old = SessionId::generate(&random);
        let other = SessionId::generate(&random);
        let nonce = RenewalNonce::generate(&random);
        let renewed = old.renewed(&nonce);
        assert_eq!(SessionId::parse(renewed.expose()).unwrap(), renewed);
        assert_ne!(renewed, old);
        assert_eq!(
            old.renewed(&nonce),
            renewed,
            "deterministic for the grace period"
        );
        assert_ne!(other.renewed(&nonce), renewed);
        assert_ne!(old.renewed(&RenewalNonce::generate(&random)), renewed);
        assert!(!format!("{nonce:?}").contains(nonce.expose()));
        assert!(RenewalNonce::from_stored("short").is_err());
    }

    #[test]
    fn debug_redacts_credentials() {
        let random = SeededRandom::new(3);
        let id = SessionId::generate(&random);
        let binding = LoginBinding::generate(&random);
        assert!(!format!("{id:?}").contains(id.expose()));
        assert!(!format!("{binding:?}").contains(binding.expose()));
    }

    #[test]
    fn login_binding_matches_only_its_own_hash() {
        let random = SeededRandom::new(5);
        let a = LoginBinding::generate(&random);
        let b = LoginBinding::generate(&random);
        assert!(a.matches(&a.hash()));
        assert!(!b.matches(&a.hash()));
    }

    #[test]
    fn provider_ids_follow_the_naming_rule() {
        for ok in ["keycloak", "a", "my-idp_2"] {
            assert!(ProviderId::parse(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", "Keycloak", "a b", "a/b", long.as_str()] {
            assert!(ProviderId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prompts_round_trip_and_others_are_refused() {
        for p in ["none", "login", "consent", "select_account", "create"] {
            assert_eq!(Prompt::parse(p).unwrap().as_str(), p);
        }
        assert!(Prompt::parse("none login").is_err());
        assert!(Prompt::parse("").is_err());
    }
}
