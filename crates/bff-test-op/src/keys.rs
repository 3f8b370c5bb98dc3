//! The test-only signing keys and what a client derives from tokens.
//!
//! [`at_hash`] and [`pkce_s256`] are written here from the specifications, not taken from the
//! code under test, so a test comparing with them checks that code against an independent
//! oracle.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};

const TEST_KEYS: &str = include_str!("../keys/test-keys.json");

/// A value of `keys/test-keys.json` (base64 DER private keys, JWK coordinates, a PEM).
pub fn fixture(name: &str) -> String {
    let keys: Value = serde_json::from_str(TEST_KEYS).unwrap();
    keys[name]
        .as_str()
        .unwrap_or_else(|| panic!("no test key {name:?}"))
        .to_owned()
}

/// The provider's RSA test key as PKCS#1 PEM (`RSA PRIVATE KEY`), as a client's key file
/// would hold it.
pub fn rsa_private_pem() -> String {
    let der = fixture("rsa_private_pkcs1_der_b64");
    let lines: Vec<&str> = der
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn der(name: &str) -> Vec<u8> {
    STANDARD.decode(fixture(name)).unwrap()
}

/// A signing key of the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Signer {
    /// P-256 key 1, kid `k1`, ES256 (always published).
    #[default]
    Ec1,
    /// P-256 key 2, kid `k2`, ES256 (published only with `Script::publish_ec2`: "rotation").
    Ec2,
    /// RSA key, kid `rsa`, RS256 (always published).
    Rsa,
}

impl Signer {
    /// The algorithm this key signs with.
    pub fn alg(self) -> Algorithm {
        match self {
            Signer::Ec1 | Signer::Ec2 => Algorithm::ES256,
            Signer::Rsa => Algorithm::RS256,
        }
    }

    /// The key's `kid` in the JWKS.
    pub fn kid(self) -> &'static str {
        match self {
            Signer::Ec1 => "k1",
            Signer::Ec2 => "k2",
            Signer::Rsa => "rsa",
        }
    }

    /// The private key.
    pub fn key(self) -> EncodingKey {
        match self {
            Signer::Ec1 => EncodingKey::from_ec_der(&der("ec1_private_pkcs8_der_b64")),
            Signer::Ec2 => EncodingKey::from_ec_der(&der("ec2_private_pkcs8_der_b64")),
            Signer::Rsa => EncodingKey::from_rsa_der(&der("rsa_private_pkcs1_der_b64")),
        }
    }

    /// Signs `claims` with this key under `kid`.
    pub fn sign(self, kid: Option<&str>, claims: &Value) -> String {
        sign_raw(self.alg(), kid, &self.key(), claims)
    }
}

/// Signs `claims` with an arbitrary header algorithm and key (for hostile tokens).
pub fn sign_raw(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// base64url (unpadded) of the JSON of `value`: a JWS header or payload.
pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// `at_hash` of `access_token` for an ID token signed with `alg` (OIDC Core 3.1.3.6): the left
/// half of its hash with the algorithm's hash function, base64url. EdDSA (Ed25519) uses
/// SHA-512.
pub fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let bytes = access_token.as_bytes();
    let digest: Vec<u8> = match alg {
        Algorithm::HS256 | Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 => {
            Sha256::digest(bytes).to_vec()
        }
        Algorithm::HS384 | Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => {
            Sha384::digest(bytes).to_vec()
        }
        Algorithm::HS512 | Algorithm::RS512 | Algorithm::PS512 | Algorithm::EdDSA => {
            Sha512::digest(bytes).to_vec()
        }
        other => panic!("no at_hash rule for {other:?}"),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 section 4.2): base64url of its SHA-256,
/// unpadded.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hashes_match_the_specification_examples() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        // OIDC Core appendix A.3 (RS256).
        assert_eq!(
            at_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(Algorithm::ES384, "x").len(), 32);
        assert_eq!(at_hash(Algorithm::EdDSA, "x").len(), 43);
    }
}
