//! A client's key pair for `private_key_jwt` tests: the private key as PEM, as the BFF reads
//! it from `private_key_file`, and the public key as a JWK, as a provider registers it (or a
//! self-signed certificate of it, for providers that register certificates).

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A fresh EC P-256 key pair (`ES256`).
pub struct ClientKey {
    pair: rcgen::KeyPair,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey").finish_non_exhaustive()
    }
}

impl ClientKey {
    /// A new key pair.
    pub fn generate() -> Self {
        Self {
            pair: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .expect("an EC P-256 key pair"),
        }
    }

    /// The private key, PKCS#8 PEM.
    pub fn private_pem(&self) -> String {
        self.pair.serialize_pem()
    }

    /// The private key written to a fresh file under the system's temporary folder.
    pub fn write_private_pem(&self, label: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("{}.pem", crate::unique(label)));
        std::fs::write(&path, self.private_pem()).expect("writing the client key");
        path
    }

    /// A new self-signed X.509 certificate of the key, PEM, as a provider that finds client
    /// keys by certificate thumbprint (Entra ID) registers it. Each call makes another one (a
    /// fresh serial number, so another thumbprint).
    pub fn certificate_pem(&self) -> String {
        self.certificate_pem_expiring(None)
    }

    /// [`ClientKey::certificate_pem`], valid until `not_after` (year, month, day) when given.
    pub fn certificate_pem_expiring(&self, not_after: Option<(i32, u8, u8)>) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["bff.example".to_owned()])
            .expect("certificate parameters");
        if let Some((year, month, day)) = not_after {
            params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
            params.not_after = rcgen::date_time_ymd(year, month, day);
        }
        params
            .self_signed(&self.pair)
            .expect("a self-signed certificate")
            .pem()
    }

    /// [`ClientKey::certificate_pem`] written to a fresh file under the system's temporary
    /// folder.
    pub fn write_certificate_pem(&self, label: &str) -> PathBuf {
        self.write_certificate_pem_expiring(label, None)
    }

    /// [`ClientKey::certificate_pem_expiring`] written to a fresh file under the system's
    /// temporary folder.
    pub fn write_certificate_pem_expiring(
        &self,
        label: &str,
        not_after: Option<(i32, u8, u8)>,
    ) -> PathBuf {
        let path = std::env::temp_dir().join(format!("{}.pem", crate::unique(label)));
        std::fs::write(&path, self.certificate_pem_expiring(not_after))
            .expect("writing the client certificate");
        path
    }

    /// The public key, SubjectPublicKeyInfo PEM.
    pub fn public_pem(&self) -> String {
        self.pair.public_key_pem()
    }

    /// The public key as a JWK (JSON text) under `kid`.
    pub fn public_jwk(&self, kid: &str) -> String {
        // The uncompressed point: 0x04, then x and y, 32 bytes each.
        let point = self.pair.public_key_raw();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let (x, y) = point[1..].split_at(32);
        format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}","kid":"{kid}","use":"sig","alg":"ES256"}}"#,
            URL_SAFE_NO_PAD.encode(x),
            URL_SAFE_NO_PAD.encode(y),
        )
    }
}
