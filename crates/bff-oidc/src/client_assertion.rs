//! `private_key_jwt` client authentication (OIDC Core section 9, RFC 7523 section 2.2): instead
//! of a shared secret, the client proves itself with a short-lived JWT signed by its own private
//! key, whose public half the provider knows (registered as a JWKS). Nothing the provider keeps
//! can log the client in; FAPI 2.0 asks for this or mutual TLS.
//!
//! [`ClientAssertionKey`] is the key, read from PEM when the configuration is loaded (RSA, EC
//! P-256 or P-384, Ed25519), with the `kid` the provider registered it under.
//! [`ClientAssertion`] is that key bound at discovery to one provider: the signing algorithm (the
//! key's, among those the provider accepts) and the audience. Each call to the token, revocation
//! or pushed authorization request endpoint gets a fresh assertion ([`ClientAssertion::sign`]):
//! `iss` and `sub` the client id, `aud` the provider's issuer identifier (or, when configured, its
//! token endpoint), `iat` now, `exp` [`ASSERTION_LIFETIME_SECS`] later, and a random `jti`, so a
//! provider that remembers `jti`s refuses a replayed one.
//!
//! Providers that find the client's key by its X.509 certificate rather than by `kid` (Entra
//! ID) also get the certificate's thumbprints in each header: [`ClientCertificate`], checked
//! against the key when it is attached. An operator can pin the algorithm
//! ([`ClientAssertionKey::with_algorithm`]) for providers that do not list the ones they take.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bff_domain::ports::ProviderError;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use x509_cert::der::Decode as _;

/// How long an assertion is good for: long enough for one call, with the provider's clock a
/// little off, and short enough that a captured one is soon useless (it is single-use anyway
/// where the provider checks `jti`).
pub const ASSERTION_LIFETIME_SECS: u64 = 60;

/// The `client_assertion_type` of a JWT assertion (RFC 7523 section 2.2).
pub(crate) const JWT_BEARER_ASSERTION: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The kind of a private key, which decides the algorithms it can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA: `RS256` or `PS256`.
    Rsa,
    /// EC on P-256: `ES256`.
    EcP256,
    /// EC on P-384: `ES384`.
    EcP384,
    /// Ed25519: `EdDSA`.
    Ed25519,
}

impl KeyKind {
    /// The algorithms this kind of key signs with, the preferred first: `RS256` before `PS256`
    /// because every provider that takes RSA assertions takes `RS256`.
    pub fn algorithms(self) -> &'static [Algorithm] {
        match self {
            Self::Rsa => &[Algorithm::RS256, Algorithm::PS256],
            Self::EcP256 => &[Algorithm::ES256],
            Self::EcP384 => &[Algorithm::ES384],
            Self::Ed25519 => &[Algorithm::EdDSA],
        }
    }
}

/// The client's private key for `private_key_jwt`. Its `Debug` shows where it came from, its
/// kind and `kid`, never the key.
#[derive(Clone)]
pub struct ClientAssertionKey {
    source: Option<PathBuf>,
    kind: KeyKind,
    key_id: Option<String>,
    /// The algorithm the operator pinned, one of `kind`'s; `None` lets discovery choose.
    algorithm: Option<Algorithm>,
    /// The key's certificate, whose thumbprints go in each header.
    certificate: Option<ClientCertificate>,
    key: EncodingKey,
}

impl ClientAssertionKey {
    /// The key in `pem`: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE
    /// KEY`); RSA, EC on P-256 or P-384, or Ed25519. The key signs once here, so a key that
    /// parses but cannot sign is refused now rather than at the first login.
    ///
    /// # Errors
    /// A message saying what the PEM does not hold; it never quotes the PEM.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(pem).unwrap_or_default();
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(
                "holds an encrypted private key: store it decrypted (`openssl pkey -in \
                        KEY -out PLAIN`) in a file only the server can read"
                    .to_owned(),
            );
        }
        if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            return Self::from_sec1_pem(text);
        }
        let candidates = [
            (KeyKind::Rsa, EncodingKey::from_rsa_pem(pem)),
            (KeyKind::EcP256, EncodingKey::from_ec_pem(pem)),
            (KeyKind::EcP384, EncodingKey::from_ec_pem(pem)),
            (KeyKind::Ed25519, EncodingKey::from_ed_pem(pem)),
        ];
        for (kind, key) in candidates {
            // An EC key parses as either curve; only signing tells which one it is on.
            if let Ok(key) = key
                && signs(kind, &key)
            {
                return Ok(Self {
                    source: None,
                    kind,
                    key_id: None,
                    algorithm: None,
                    certificate: None,
                    key,
                });
            }
        }
        Err(
            "holds no usable private key (expected PEM: an RSA, EC P-256, EC P-384 or Ed25519 \
             private key, as PKCS#8 \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\")"
                .to_owned(),
        )
    }

    /// An EC key in SEC1 form (`EC PRIVATE KEY`, what `openssl ecparam -genkey` writes), as
    /// the PKCS#8 the signer takes.
    fn from_sec1_pem(text: &str) -> Result<Self, String> {
        use p256::pkcs8::EncodePrivateKey as _;

        let pkcs8 = match p256::SecretKey::from_sec1_pem(text) {
            Ok(key) => key.to_pkcs8_der().map(|der| (KeyKind::EcP256, der)),
            Err(_) => match p384::SecretKey::from_sec1_pem(text) {
                Ok(key) => key.to_pkcs8_der().map(|der| (KeyKind::EcP384, der)),
                Err(_) => {
                    return Err(
                        "holds an EC private key on a curve other than P-256 or P-384, \
                                or a broken one"
                            .to_owned(),
                    );
                }
            },
        };
        let (kind, der) = pkcs8.map_err(|_| "holds an EC private key that cannot be re-encoded")?;
        let key = EncodingKey::from_ec_der(der.as_bytes());
        if !signs(kind, &key) {
            return Err("holds an EC private key that cannot sign".to_owned());
        }
        Ok(Self {
            source: None,
            kind,
            key_id: None,
            algorithm: None,
            certificate: None,
            key,
        })
    }

    /// The key in the PEM file at `path` (see [`ClientAssertionKey::from_pem`]).
    ///
    /// # Errors
    /// The file cannot be read or holds no usable key; the message names the file.
    pub fn read(path: &Path) -> Result<Self, String> {
        let mut key = read_pem_file(path, Self::from_pem)?;
        key.source = Some(path.to_path_buf());
        Ok(key)
    }

    /// The same key, named `key_id` (the `kid` its public half is registered under at the
    /// provider, sent in each assertion's header so the provider picks that key).
    #[must_use]
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// The same key, always signing with `algorithm` (for a provider that takes only that one
    /// and does not say so in its discovery document, such as `PS256` at Entra ID).
    ///
    /// # Errors
    /// A message naming the algorithms this kind of key signs with when `algorithm` is not one
    /// of them.
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Result<Self, String> {
        if !self.kind.algorithms().contains(&algorithm) {
            return Err(format!(
                "{} is not an algorithm of the {:?} key, which signs with {}",
                jose_name(algorithm),
                self.kind,
                names(self.kind.algorithms()),
            ));
        }
        self.algorithm = Some(algorithm);
        Ok(self)
    }

    /// The same key with its X.509 certificate, whose thumbprints then go in each assertion's
    /// header (`x5t#S256`, and `x5t` for providers that read only the SHA-1 one).
    ///
    /// # Errors
    /// A message when the certificate holds another key's public half.
    pub fn with_certificate(mut self, certificate: ClientCertificate) -> Result<Self, String> {
        if !certificate.certifies(&self) {
            return Err(format!(
                "is not the certificate of this {:?} private key (its public key is another)",
                self.kind
            ));
        }
        self.certificate = Some(certificate);
        Ok(self)
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The `kid` sent with each assertion, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The algorithm pinned with [`ClientAssertionKey::with_algorithm`], if any.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.algorithm
    }

    /// The certificate attached with [`ClientAssertionKey::with_certificate`], if any.
    pub fn certificate(&self) -> Option<&ClientCertificate> {
        self.certificate.as_ref()
    }
}

impl fmt::Debug for ClientAssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAssertionKey")
            .field("source", &self.source)
            .field("kind", &self.kind)
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// The X.509 certificate of a [`ClientAssertionKey`], for providers that find the key by the
/// certificate's thumbprint. Only its thumbprints, public key and expiry are kept; `Debug`
/// shows where it came from, the SHA-256 thumbprint and the expiry.
#[derive(Clone)]
pub struct ClientCertificate {
    source: Option<PathBuf>,
    /// `x5t#S256`: base64url of the SHA-256 of the certificate's DER.
    sha256_thumbprint: String,
    /// `x5t`: base64url of the SHA-1 of the certificate's DER.
    sha1_thumbprint: String,
    /// The certificate's `notAfter`, in seconds since 1970.
    not_after: u64,
    public_key: CertifiedKey,
}

/// The public key a certificate certifies, in the form jsonwebtoken verifies with.
#[derive(Clone)]
enum CertifiedKey {
    Rsa(Vec<u8>),
    Ec(Vec<u8>),
    Ed25519(Vec<u8>),
    Other,
}

impl ClientCertificate {
    /// The first certificate in `pem` (a chain's leaf comes first).
    ///
    /// # Errors
    /// A message saying what the PEM does not hold; it never quotes the PEM.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let not_a_certificate =
            || "holds no X.509 certificate (expected PEM \"CERTIFICATE\")".to_owned();
        let (label, der) = x509_cert::der::pem::decode_vec(
            first_pem_block(pem, "CERTIFICATE").ok_or_else(not_a_certificate)?,
        )
        .map_err(|_| not_a_certificate())?;
        if label != "CERTIFICATE" {
            return Err(not_a_certificate());
        }
        // The thumbprints are over the bytes as read, which the provider was given too.
        let certificate =
            x509_cert::Certificate::from_der(&der).map_err(|_| not_a_certificate())?;
        let tbs = &certificate.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let bits = spki.subject_public_key.raw_bytes().to_vec();
        let public_key = match spki.algorithm.oid.to_string().as_str() {
            "1.2.840.113549.1.1.1" => CertifiedKey::Rsa(bits),
            "1.2.840.10045.2.1" => CertifiedKey::Ec(bits),
            "1.3.101.112" => CertifiedKey::Ed25519(bits),
            _ => CertifiedKey::Other,
        };
        Ok(Self {
            source: None,
            sha256_thumbprint: URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(&der)),
            sha1_thumbprint: URL_SAFE_NO_PAD.encode(<sha1::Sha1 as sha1::Digest>::digest(&der)),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
            public_key,
        })
    }

    /// The certificate in the PEM file at `path` (see [`ClientCertificate::from_pem`]).
    ///
    /// # Errors
    /// The file cannot be read or holds no certificate; the message names the file.
    pub fn read(path: &Path) -> Result<Self, String> {
        let mut certificate = read_pem_file(path, Self::from_pem)?;
        certificate.source = Some(path.to_path_buf());
        Ok(certificate)
    }

    /// `x5t#S256`: the base64url SHA-256 thumbprint of the certificate's DER.
    pub fn sha256_thumbprint(&self) -> &str {
        &self.sha256_thumbprint
    }

    /// The certificate's `notAfter`.
    pub fn not_after(&self) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(self.not_after)
    }

    /// Whether this certificate's public key is the public half of `key`: a trial signature by
    /// `key` verifies with it.
    fn certifies(&self, key: &ClientAssertionKey) -> bool {
        let public = match (&self.public_key, key.kind) {
            (CertifiedKey::Rsa(der), KeyKind::Rsa) => DecodingKey::from_rsa_der(der),
            (CertifiedKey::Ec(point), KeyKind::EcP256 | KeyKind::EcP384) => {
                DecodingKey::from_ec_der(point)
            }
            (CertifiedKey::Ed25519(raw), KeyKind::Ed25519) => DecodingKey::from_ed_der(raw),
            _ => return false,
        };
        let algorithm = key.kind.algorithms()[0];
        let Ok(trial) = jsonwebtoken::encode(
            &Header::new(algorithm),
            &TrialClaims { trial: true },
            &key.key,
        ) else {
            return false;
        };
        let mut validation = Validation::new(algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<TrialClaims>(&trial, &public, &validation).is_ok()
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("source", &self.source)
            .field("sha256_thumbprint", &self.sha256_thumbprint)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// What `parse` makes of the file at `path`; errors name the file.
fn read_pem_file<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<T, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("{shown:?} cannot be read: {e}"))?;
    parse(&pem).map_err(|e| format!("{shown:?} {e}"))
}

/// The first PEM block labelled `label` in `pem`, so that a file with a chain, or with the key
/// before the certificate, still gives its certificate.
fn first_pem_block<'a>(pem: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let text = std::str::from_utf8(pem).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = start + text[start..].find(&end)? + end.len();
    Some(&pem[start..stop])
}

/// What a client assertion's `aud` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssertionAudience {
    /// The provider's issuer identifier (the default): what RFC 7523's update and FAPI 2.0 ask
    /// for, since an assertion for a token endpoint URL can be replayed by whoever serves a URL
    /// the client was tricked into trusting.
    #[default]
    Issuer,
    /// The provider's token endpoint URL, for providers that accept nothing else (OIDC Core's
    /// original wording).
    TokenEndpoint,
}

/// A [`ClientAssertionKey`] bound to one discovered provider.
#[derive(Clone)]
pub(crate) struct ClientAssertion {
    key: ClientAssertionKey,
    algorithm: Algorithm,
    client_id: String,
    audience: String,
}

impl fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAssertion")
            .field("key", &self.key)
            .field("algorithm", &self.algorithm)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims of a client assertion.
#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

/// Whether `key` signs as a `kind` key does (a trial signature of a throwaway claim).
fn signs(kind: KeyKind, key: &EncodingKey) -> bool {
    let header = Header::new(kind.algorithms()[0]);
    jsonwebtoken::encode(&header, &TrialClaims { trial: true }, key).is_ok()
}

/// The JOSE name of one of the algorithms a [`KeyKind`] signs with.
fn jose_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        // Not among any key kind's algorithms.
        _ => "unsupported",
    }
}

#[derive(Serialize, Deserialize)]
struct TrialClaims {
    trial: bool,
}

/// `RS256 or PS256`.
fn names(algorithms: &[Algorithm]) -> String {
    algorithms
        .iter()
        .map(|alg| jose_name(*alg))
        .collect::<Vec<_>>()
        .join(" or ")
}

impl ClientAssertion {
    /// `key` for `client_id` at a provider that accepts `accepted` algorithms (its
    /// `token_endpoint_auth_signing_alg_values_supported`; `None` when it does not say, which
    /// takes the key's preferred one), with `audience` in `aud`. A key with a pinned algorithm
    /// signs with that one, which the provider must then accept if it says.
    ///
    /// # Errors
    /// A message naming the key's algorithms and the provider's when none of the key's is
    /// accepted.
    pub(crate) fn bind(
        key: ClientAssertionKey,
        client_id: &str,
        accepted: Option<&[String]>,
        audience: String,
    ) -> Result<Self, String> {
        let algorithms = match &key.algorithm {
            Some(pinned) => std::slice::from_ref(pinned),
            None => key.kind.algorithms(),
        };
        let algorithm = match accepted {
            None => Some(algorithms[0]),
            Some(accepted) => algorithms
                .iter()
                .copied()
                .find(|alg| accepted.iter().any(|name| name == jose_name(*alg))),
        };
        let Some(algorithm) = algorithm else {
            return Err(format!(
                "the provider accepts client assertions signed with {} only, and this {:?} key \
                 signs with {}",
                accepted.unwrap_or_default().join(", "),
                key.kind,
                names(algorithms),
            ));
        };
        Ok(Self {
            key,
            algorithm,
            client_id: client_id.to_owned(),
            audience,
        })
    }

    /// The JOSE name of the algorithm assertions are signed with.
    pub(crate) fn algorithm_name(&self) -> &'static str {
        jose_name(self.algorithm)
    }

    /// A fresh assertion: the form parameters `client_assertion_type` and `client_assertion`.
    ///
    /// # Errors
    /// `ProviderError::Protocol` when signing fails (the key signed at load, so this is not
    /// expected) or the clock is before 1970.
    pub(crate) fn sign(&self) -> Result<[(&'static str, String); 2], ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| ProviderError::Protocol("the system clock is before 1970".into()))?
            .as_secs();
        let claims = AssertionClaims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: &self.audience,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
            // 128 random bits, base64url: unique per assertion.
            jti: oauth2::CsrfToken::new_random().secret().clone(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = self.key.key_id.clone();
        if let Some(certificate) = &self.key.certificate {
            header.x5t_s256 = Some(certificate.sha256_thumbprint.clone());
            header.x5t = Some(certificate.sha1_thumbprint.clone());
        }
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key.key)
            .map_err(|e| ProviderError::Protocol(format!("signing the client assertion: {e}")))?;
        Ok([
            ("client_assertion_type", JWT_BEARER_ASSERTION.to_owned()),
            ("client_assertion", assertion),
        ])
    }
}

#[cfg(test)]
mod tests;
