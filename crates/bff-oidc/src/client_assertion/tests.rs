//! The client assertion key and signer against independent verification: every key kind
//! parses and signs with its algorithm, each assertion verifies with the public half and
//! carries fresh, short-lived claims, and what is not a usable key is refused; a certificate
//! must certify the key and puts its thumbprints in the header; a pinned algorithm is used.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use super::*;

/// The RSA test key of the test provider, as PKCS#1 PEM.
fn rsa_pem() -> String {
    bff_test_op::rsa_private_pem()
}

fn rsa_public() -> DecodingKey {
    DecodingKey::from_rsa_pem(bff_test_op::fixture("rsa_public_pem").as_bytes()).unwrap()
}

/// A fresh key pair for `alg`: (private PKCS#8 PEM, public key to verify with).
fn generated(alg: &'static rcgen::SignatureAlgorithm) -> (String, DecodingKey) {
    let pair = rcgen::KeyPair::generate_for(alg).unwrap();
    let public = pair.public_key_pem();
    let decoding = if alg == &rcgen::PKCS_ED25519 {
        DecodingKey::from_ed_pem(public.as_bytes()).unwrap()
    } else {
        DecodingKey::from_ec_pem(public.as_bytes()).unwrap()
    };
    (pair.serialize_pem(), decoding)
}

/// The claims of `assertion` once its signature (`key`, `alg`) and `aud` are checked.
fn verified(assertion: &str, key: &DecodingKey, alg: Algorithm, audience: &str) -> Value {
    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    jsonwebtoken::decode::<Value>(assertion, key, &validation)
        .unwrap()
        .claims
}

#[test]
fn every_kind_of_key_is_recognised_and_signs_with_its_algorithm() {
    let (p256, p256_public) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (p384, p384_public) = generated(&rcgen::PKCS_ECDSA_P384_SHA384);
    let (ed, ed_public) = generated(&rcgen::PKCS_ED25519);
    let cases = [
        (rsa_pem(), rsa_public(), KeyKind::Rsa, Algorithm::RS256),
        (p256, p256_public, KeyKind::EcP256, Algorithm::ES256),
        (p384, p384_public, KeyKind::EcP384, Algorithm::ES384),
        (ed, ed_public, KeyKind::Ed25519, Algorithm::EdDSA),
    ];
    for (pem, public, kind, alg) in cases {
        let key = ClientAssertionKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(key.kind(), kind);
        let assertion =
            ClientAssertion::bind(key, "bff", None, "https://idp.example".into()).unwrap();
        assert_eq!(assertion.algorithm, alg, "{kind:?}");
        let [(type_name, type_value), (name, jwt)] = assertion.sign().unwrap();
        assert_eq!(type_name, "client_assertion_type");
        assert_eq!(type_value, JWT_BEARER_ASSERTION);
        assert_eq!(name, "client_assertion");
        let claims = verified(&jwt, &public, alg, "https://idp.example");
        assert_eq!(claims["iss"], "bff");
        assert_eq!(claims["sub"], "bff");
        // Another key of the same kind does not verify it.
        if kind == KeyKind::EcP256 {
            let (_, other) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
            let mut validation = Validation::new(alg);
            validation.set_audience(&["https://idp.example"]);
            assert!(jsonwebtoken::decode::<Value>(&jwt, &other, &validation).is_err());
        }
    }
}

#[test]
fn an_ec_key_in_openssls_sec1_form_is_read_too() {
    use p256::pkcs8::DecodePrivateKey as _;

    let (p256_pkcs8, p256_public) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (p384_pkcs8, p384_public) = generated(&rcgen::PKCS_ECDSA_P384_SHA384);
    let p256_sec1 = p256::SecretKey::from_pkcs8_pem(&p256_pkcs8)
        .unwrap()
        .to_sec1_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    let p384_sec1 = p384::SecretKey::from_pkcs8_pem(&p384_pkcs8)
        .unwrap()
        .to_sec1_pem(p384::pkcs8::LineEnding::LF)
        .unwrap();
    for (pem, public, kind, alg) in [
        (
            p256_sec1.as_str(),
            p256_public,
            KeyKind::EcP256,
            Algorithm::ES256,
        ),
        (
            p384_sec1.as_str(),
            p384_public,
            KeyKind::EcP384,
            Algorithm::ES384,
        ),
    ] {
        assert!(
            pem.starts_with("-----BEGIN EC PRIVATE KEY-----"),
            "{kind:?}"
        );
        let key = ClientAssertionKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(key.kind(), kind);
        let assertion = ClientAssertion::bind(key, "bff", None, "aud".into()).unwrap();
        let [_, (_, jwt)] = assertion.sign().unwrap();
        verified(&jwt, &public, alg, "aud");
    }
    // A SEC1 block that is not a key on either curve.
    let broken = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n";
    let message = ClientAssertionKey::from_pem(broken.as_bytes()).unwrap_err();
    assert!(message.contains("EC private key"), "{message}");
}

#[test]
fn an_encrypted_key_is_refused_with_what_to_do() {
    let pem = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let message = ClientAssertionKey::from_pem(pem.as_bytes()).unwrap_err();
    assert!(
        message.contains("encrypted") && message.contains("openssl pkey"),
        "{message}"
    );
}

#[test]
fn an_assertion_is_short_lived_unique_and_names_its_key() {
    let key = ClientAssertionKey::from_pem(rsa_pem().as_bytes())
        .unwrap()
        .with_key_id("bff-2026");
    let assertion =
        ClientAssertion::bind(key, "bff", None, "https://idp.example/token".into()).unwrap();
    let mut ids = HashSet::new();
    for _ in 0..20 {
        let [_, (_, jwt)] = assertion.sign().unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.kid.as_deref(), Some("bff-2026"));
        let claims = verified(
            &jwt,
            &rsa_public(),
            Algorithm::RS256,
            "https://idp.example/token",
        );
        let iat = claims["iat"].as_u64().unwrap();
        let exp = claims["exp"].as_u64().unwrap();
        assert_eq!(exp - iat, ASSERTION_LIFETIME_SECS);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(iat.abs_diff(now) <= 5, "iat {iat} is not now ({now})");
        let jti = claims["jti"].as_str().unwrap().to_owned();
        assert!(
            jti.len() >= 20,
            "jti {jti:?} is too short to be unguessable"
        );
        assert!(ids.insert(jti), "a jti repeated");
    }
}

#[test]
fn an_rsa_key_signs_with_the_algorithm_the_provider_accepts() {
    let key = || ClientAssertionKey::from_pem(rsa_pem().as_bytes()).unwrap();
    let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // (the provider's list, the algorithm chosen or `None` for a refusal)
    let cases: [(Option<Vec<String>>, Option<Algorithm>); 5] = [
        (None, Some(Algorithm::RS256)),
        (
            Some(names(&["RS256", "PS256", "ES256"])),
            Some(Algorithm::RS256),
        ),
        (Some(names(&["PS256", "ES256"])), Some(Algorithm::PS256)),
        (Some(names(&["ES256", "EdDSA"])), None),
        (Some(Vec::new()), None),
    ];
    for (accepted, expected) in cases {
        let bound = ClientAssertion::bind(key(), "bff", accepted.as_deref(), "x".into());
        match expected {
            Some(alg) => assert_eq!(bound.unwrap().algorithm, alg, "{accepted:?}"),
            None => {
                let message = bound.unwrap_err();
                assert!(
                    message.contains("RS256 or PS256"),
                    "{accepted:?}: {message}"
                );
            }
        }
    }
    // A PS256 assertion verifies as PS256.
    let ps = ClientAssertion::bind(key(), "bff", Some(&names(&["PS256"])), "aud".into()).unwrap();
    let [_, (_, jwt)] = ps.sign().unwrap();
    verified(&jwt, &rsa_public(), Algorithm::PS256, "aud");
}

#[test]
fn what_is_not_a_private_key_is_refused_without_being_quoted() {
    let public = bff_test_op::fixture("rsa_public_pem");
    let cases: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("not PEM", b"client-secret-looking-text"),
        ("a public key", public.as_bytes()),
        (
            "a certificate block",
            b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
        ),
    ];
    for (what, pem) in cases {
        let message = ClientAssertionKey::from_pem(pem).unwrap_err();
        assert!(
            message.contains("no usable private key"),
            "{what}: {message}"
        );
        assert!(
            !message.contains("client-secret-looking-text"),
            "{what}: {message}"
        );
    }
    // A PKCS#8 block whose key is cut in half.
    let (pem, _) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).unwrap();
    let cut = STANDARD.encode(&der[..der.len() / 2]);
    let broken = format!("-----BEGIN PRIVATE KEY-----\n{cut}\n-----END PRIVATE KEY-----\n");
    assert!(ClientAssertionKey::from_pem(broken.as_bytes()).is_err());
}

#[test]
fn a_key_file_is_named_in_errors_and_debug_shows_no_key_material() {
    let dir = std::env::temp_dir().join(format!("bff-assertion-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("client.pem");
    let (pem, _) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    std::fs::write(&path, &pem).unwrap();
    let key = ClientAssertionKey::read(&path).unwrap().with_key_id("k");
    let shown = format!("{key:?}");
    assert!(
        shown.contains("client.pem") && shown.contains("EcP256"),
        "{shown}"
    );
    let body_line = pem.lines().nth(1).unwrap();
    assert!(!shown.contains(body_line), "{shown}");

    let missing = ClientAssertionKey::read(&dir.join("missing.pem")).unwrap_err();
    assert!(
        missing.contains("missing.pem") && missing.contains("cannot be read"),
        "{missing}"
    );
    std::fs::write(&path, "nonsense").unwrap();
    let broken = ClientAssertionKey::read(&path).unwrap_err();
    assert!(
        broken.contains("client.pem") && broken.contains("no usable private key"),
        "{broken}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The test provider's RSA key as PKCS#8 DER (rcgen's `ring` backend reads only PKCS#8).
fn rsa_pkcs8_der() -> Vec<u8> {
    use p256::pkcs8::der::Encode as _;
    use p256::pkcs8::der::asn1::AnyRef;
    use p256::pkcs8::{AlgorithmIdentifierRef, ObjectIdentifier, PrivateKeyInfo};

    let pkcs1 = STANDARD
        .decode(bff_test_op::fixture("rsa_private_pkcs1_der_b64"))
        .unwrap();
    let algorithm = AlgorithmIdentifierRef {
        oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
        parameters: Some(AnyRef::NULL),
    };
    PrivateKeyInfo::new(algorithm, &pkcs1).to_der().unwrap()
}

/// A self-signed certificate of `pair`, valid until `not_after` (year, month, day): its PEM
/// and DER.
fn certificate_of(pair: &rcgen::KeyPair, not_after: (i32, u8, u8)) -> (String, Vec<u8>) {
    let mut params = rcgen::CertificateParams::new(vec!["bff.example".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let certificate = params.self_signed(pair).unwrap();
    (certificate.pem(), certificate.der().to_vec())
}

fn base64url_sha256(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(der))
}

#[test]
fn a_certificate_puts_its_thumbprints_in_every_header() {
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
    ] {
        let pair = rcgen::KeyPair::generate_for(alg).unwrap();
        let (pem, der) = certificate_of(&pair, (2040, 1, 1));
        let certificate = ClientCertificate::from_pem(pem.as_bytes()).unwrap();
        let key = ClientAssertionKey::from_pem(pair.serialize_pem().as_bytes())
            .unwrap()
            .with_certificate(certificate)
            .unwrap();
        let assertion = ClientAssertion::bind(key, "bff", None, "aud".into()).unwrap();
        let [_, (_, jwt)] = assertion.sign().unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        // Independently computed over the DER rcgen wrote.
        assert_eq!(
            header.x5t_s256.as_deref(),
            Some(base64url_sha256(&der).as_str())
        );
        let sha1 = URL_SAFE_NO_PAD.encode(<sha1::Sha1 as sha1::Digest>::digest(&der));
        assert_eq!(header.x5t.as_deref(), Some(sha1.as_str()));
    }
    // Without a certificate, no thumbprint.
    let (pem, _) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    let key = ClientAssertionKey::from_pem(pem.as_bytes()).unwrap();
    let [_, (_, jwt)] = ClientAssertion::bind(key, "bff", None, "aud".into())
        .unwrap()
        .sign()
        .unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!((header.x5t, header.x5t_s256), (None, None));
}

#[test]
fn a_certificate_of_another_key_is_refused() {
    let key_of = |pair: &rcgen::KeyPair| {
        ClientAssertionKey::from_pem(pair.serialize_pem().as_bytes()).unwrap()
    };
    let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other_p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let certificate = |pair: &rcgen::KeyPair| {
        ClientCertificate::from_pem(certificate_of(pair, (2040, 1, 1)).0.as_bytes()).unwrap()
    };
    // (key, the certificate of another key)
    let mismatches = [
        (key_of(&p256), certificate(&other_p256)),
        (key_of(&p256), certificate(&p384)),
        (key_of(&p384), certificate(&p256)),
        (key_of(&ed), certificate(&p256)),
        (key_of(&p256), certificate(&ed)),
    ];
    for (key, certificate) in mismatches {
        let kind = key.kind();
        let message = key.with_certificate(certificate).unwrap_err();
        assert!(
            message.contains("is not the certificate"),
            "{kind:?}: {message}"
        );
    }
    assert!(key_of(&ed).with_certificate(certificate(&ed)).is_ok());
}

#[test]
fn an_rsa_key_pinned_to_ps256_with_its_certificate_signs_as_entra_id_asks() {
    let pkcs8 = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(rsa_pkcs8_der())
    );
    let pair = rcgen::KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).unwrap();
    let (pem, der) = certificate_of(&pair, (2040, 1, 1));
    let key = ClientAssertionKey::from_pem(rsa_pem().as_bytes())
        .unwrap()
        .with_algorithm(Algorithm::PS256)
        .unwrap()
        .with_certificate(ClientCertificate::from_pem(pem.as_bytes()).unwrap())
        .unwrap();
    assert_eq!(key.algorithm(), Some(Algorithm::PS256));
    // Entra ID lists no assertion algorithms: the pinned one is used, not RS256.
    let assertion = ClientAssertion::bind(
        key.clone(),
        "bff",
        None,
        "https://login.example/t/oauth2/v2.0/token".into(),
    )
    .unwrap();
    let [_, (_, jwt)] = assertion.sign().unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, Algorithm::PS256);
    assert_eq!(
        header.x5t_s256.as_deref(),
        Some(base64url_sha256(&der).as_str())
    );
    verified(
        &jwt,
        &rsa_public(),
        Algorithm::PS256,
        "https://login.example/t/oauth2/v2.0/token",
    );
    // A provider that lists algorithms without the pinned one refuses the key at discovery.
    let message =
        ClientAssertion::bind(key, "bff", Some(&["RS256".to_owned()]), "aud".into()).unwrap_err();
    assert!(
        message.contains("accepts client assertions signed with RS256 only"),
        "{message}"
    );
    assert!(message.contains("signs with PS256"), "{message}");
    // Only an algorithm of the key's kind can be pinned.
    let rsa = ClientAssertionKey::from_pem(rsa_pem().as_bytes()).unwrap();
    let message = rsa.with_algorithm(Algorithm::ES256).unwrap_err();
    assert!(
        message.contains("ES256 is not an algorithm of the Rsa key"),
        "{message}"
    );
    assert!(message.contains("RS256 or PS256"), "{message}");
}

#[test]
fn a_certificate_file_is_read_from_a_chain_and_what_is_no_certificate_is_refused() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (leaf, der) = certificate_of(&pair, (2031, 7, 15));
    let (other, _) = certificate_of(
        &rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        (2040, 1, 1),
    );
    // The key first, then the leaf, then another certificate: the first certificate counts.
    let bundle = format!("{}{leaf}{other}", pair.serialize_pem());
    let certificate = ClientCertificate::from_pem(bundle.as_bytes()).unwrap();
    assert_eq!(certificate.sha256_thumbprint(), base64url_sha256(&der));
    // 2031-07-15T00:00:00Z
    assert_eq!(
        certificate.not_after(),
        UNIX_EPOCH + std::time::Duration::from_secs(1_941_840_000)
    );
    let shown = format!("{certificate:?}");
    assert!(shown.contains(&base64url_sha256(&der)), "{shown}");

    let cut: String = leaf.lines().take(3).collect::<Vec<_>>().join("\n");
    let cases: [(&str, &[u8]); 5] = [
        ("empty", b""),
        ("not PEM", b"client-secret-looking-text"),
        (
            "a private key only",
            pair.serialize_pem().into_bytes().leak(),
        ),
        ("a cut certificate", cut.into_bytes().leak()),
        (
            "a certificate block of garbage",
            b"-----BEGIN CERTIFICATE-----\nY2xpZW50LXNlY3JldA==\n-----END CERTIFICATE-----\n",
        ),
    ];
    for (what, pem) in cases {
        let message = ClientCertificate::from_pem(pem).unwrap_err();
        assert!(
            message.contains("no X.509 certificate"),
            "{what}: {message}"
        );
        assert!(!message.contains("client-secret"), "{what}: {message}");
    }
}
