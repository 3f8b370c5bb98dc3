//! Hostile-input tests for ID token validation, with two test-only P-256 keys.

use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

use bff_test_op::fixture;

fn der(name: &str) -> Vec<u8> {
    STANDARD.decode(fixture(name)).unwrap()
}

const ISSUER: &str = "https://idp.example";
const CLIENT: &str = "bff";
const NOW: i64 = 1_800_000_000;
const ACCESS_TOKEN: &str = "opaque-access-token";

fn keys() -> JwkSet {
    let (x, y) = (fixture("ec1_x"), fixture("ec1_y"));
    serde_json::from_value(json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": x, "y": y},
        {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": x, "y": y},
        {"kty": "RSA", "kid": "rsa", "n": fixture("rsa_n"), "e": fixture("rsa_e")},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "x": fixture("ed25519_x")},
    ]}))
    .unwrap()
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_der(&der("rsa_private_pkcs1_der_b64"))
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "alice", "nonce": "n-1",
        "iat": NOW - 10, "exp": NOW + 300,
        "at_hash": at_hash(Algorithm::ES256, ACCESS_TOKEN),
    })
}

fn sign_as(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn sign_with(key: &str, kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ec_der(&der(key));
    sign_as(Algorithm::ES256, &key, kid, claims)
}

fn sign(claims: &Value) -> String {
    sign_with(KEY1, Some("k1"), claims)
}

const KEY1: &str = "ec1_private_pkcs8_der_b64";
const KEY2: &str = "ec2_private_pkcs8_der_b64";

fn expect() -> Expectations<'static> {
    Expectations {
        issuer: ISSUER,
        client_id: CLIENT,
        grant: Grant::AuthorizationCode { nonce: "n-1" },
        access_token: Some(ACCESS_TOKEN),
        algorithms: &[
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::EdDSA,
        ],
        skew: Duration::from_secs(60),
        now: Timestamp::from_unix_seconds(NOW),
    }
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[test]
fn a_good_token_is_accepted() {
    let claims = validate(&sign(&claims()), &keys(), &expect()).unwrap();
    assert_eq!(claims["sub"], "alice");
}

#[test]
fn claim_checks_table() {
    let cases: Vec<(&str, Value, Result<(), IdTokenProblem>)> = vec![
        (
            "wrong iss",
            with(json!({"iss": "https://evil.example"})),
            Err(IdTokenProblem::Invalid("iss")),
        ),
        (
            "missing iss",
            with(json!({"iss": null})),
            Err(IdTokenProblem::Invalid("iss")),
        ),
        (
            "wrong aud",
            with(json!({"aud": "other"})),
            Err(IdTokenProblem::Invalid("aud")),
        ),
        (
            "aud list with us, no azp",
            with(json!({"aud": [CLIENT, "other"]})),
            Err(IdTokenProblem::Invalid("azp")),
        ),
        (
            "aud list with wrong azp",
            with(json!({"aud": [CLIENT, "other"], "azp": "other"})),
            Err(IdTokenProblem::Invalid("azp")),
        ),
        (
            "aud list with our azp",
            with(json!({"aud": [CLIENT, "other"], "azp": CLIENT})),
            Ok(()),
        ),
        (
            "single aud, wrong azp",
            with(json!({"azp": "other"})),
            Err(IdTokenProblem::Invalid("azp")),
        ),
        (
            "expired beyond skew",
            with(json!({"exp": NOW - 61})),
            Err(IdTokenProblem::Invalid("exp")),
        ),
        (
            "expired within skew",
            with(json!({"exp": NOW - 30})),
            Ok(()),
        ),
        (
            "no exp",
            with(json!({"exp": null})),
            Err(IdTokenProblem::Invalid("exp")),
        ),
        (
            "iat far in the future",
            with(json!({"iat": NOW + 3600})),
            Err(IdTokenProblem::Invalid("iat")),
        ),
        ("iat slightly ahead", with(json!({"iat": NOW + 30})), Ok(())),
        (
            "no iat",
            with(json!({"iat": null})),
            Err(IdTokenProblem::Invalid("iat")),
        ),
        (
            "nbf in the future",
            with(json!({"nbf": NOW + 3600})),
            Err(IdTokenProblem::Invalid("nbf")),
        ),
        (
            "wrong nonce",
            with(json!({"nonce": "n-2"})),
            Err(IdTokenProblem::Invalid("nonce")),
        ),
        (
            "missing nonce",
            with(json!({"nonce": null})),
            Err(IdTokenProblem::Invalid("nonce")),
        ),
        (
            "wrong at_hash",
            with(json!({"at_hash": at_hash(Algorithm::ES256, "other")})),
            Err(IdTokenProblem::Invalid("at_hash")),
        ),
        ("no at_hash is fine", with(json!({"at_hash": null})), Ok(())),
        (
            "empty sub",
            with(json!({"sub": ""})),
            Err(IdTokenProblem::Invalid("sub")),
        ),
        (
            "no sub",
            with(json!({"sub": null})),
            Err(IdTokenProblem::Invalid("sub")),
        ),
    ];
    for (name, claims, expected) in cases {
        let got = validate(&sign(&claims), &keys(), &expect()).map(|_| ());
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn a_tampered_payload_fails_the_signature() {
    let token = sign(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&with(json!({"sub": "admin"}))),
        parts[2]
    );
    assert_eq!(
        validate(&forged, &keys(), &expect()),
        Err(IdTokenProblem::Invalid("signature"))
    );
    let truncated = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(
        validate(&truncated, &keys(), &expect()),
        Err(IdTokenProblem::Invalid("signature"))
    );
}

#[test]
fn a_token_signed_by_another_key_fails() {
    let token = sign_with(KEY2, Some("k1"), &claims());
    assert_eq!(
        validate(&token, &keys(), &expect()),
        Err(IdTokenProblem::Invalid("signature"))
    );
}

#[test]
fn alg_none_is_refused() {
    let header = b64(&json!({"alg": "none", "kid": "k1"}));
    let token = format!("{header}.{}.", b64(&claims()));
    assert_eq!(
        validate(&token, &keys(), &expect()),
        Err(IdTokenProblem::Invalid("alg"))
    );
}

#[test]
fn hmac_with_the_public_key_as_secret_is_refused() {
    // Key confusion: an attacker signs with HS256 using the RSA public key (PEM bytes) as the
    // HMAC secret, hoping the verifier feeds the same bytes to HMAC.
    let secret = EncodingKey::from_secret(fixture("rsa_public_pem").as_bytes());
    let token = sign_as(Algorithm::HS256, &secret, Some("rsa"), &claims());
    assert_eq!(
        validate(&token, &keys(), &expect()),
        Err(IdTokenProblem::Invalid("alg"))
    );
    // The same with the JWK's modulus bytes and without a kid.
    let secret = EncodingKey::from_secret(&URL_SAFE_NO_PAD.decode(fixture("rsa_n")).unwrap());
    let token = sign_as(Algorithm::HS256, &secret, None, &claims());
    assert_eq!(
        validate(&token, &keys(), &expect()),
        Err(IdTokenProblem::Invalid("alg"))
    );
    // Even if someone configured HS256.
    let mut permissive = expect();
    permissive.algorithms = &[Algorithm::HS256, Algorithm::ES256];
    assert_eq!(
        validate(&token, &keys(), &permissive),
        Err(IdTokenProblem::Invalid("alg"))
    );
}

#[test]
fn algorithms_outside_the_allowlist_are_refused() {
    let mut strict = expect();
    strict.algorithms = &[Algorithm::RS256];
    assert_eq!(
        validate(&sign(&claims()), &keys(), &strict),
        Err(IdTokenProblem::Invalid("alg"))
    );
}

#[test]
fn a_header_alg_that_disagrees_with_the_key_is_refused() {
    // The JWK says ES256; a header claiming ES384 with the same kid must not be tried.
    let header = b64(&json!({"alg": "ES384", "kid": "k1"}));
    let token = format!("{header}.{}.AAAA", b64(&claims()));
    let mut lax = expect();
    lax.algorithms = &[Algorithm::ES256, Algorithm::ES384];
    assert_eq!(
        validate(&token, &keys(), &lax),
        Err(IdTokenProblem::Invalid("alg"))
    );
}

#[test]
fn unknown_and_encryption_kids_are_reported_for_refetch() {
    let token = sign_with(KEY1, Some("rotated"), &claims());
    assert_eq!(
        validate(&token, &keys(), &expect()),
        Err(IdTokenProblem::UnknownKid)
    );
    let token = sign_with(KEY1, Some("enc"), &claims());
    assert_eq!(
        validate(&token, &keys(), &expect()),
        Err(IdTokenProblem::UnknownKid)
    );
}

#[test]
fn a_token_without_kid_needs_exactly_one_candidate_key() {
    let token = sign_with(KEY1, None, &claims());
    // One P-256 signing key (the other one is for encryption): accepted.
    assert!(validate(&token, &keys(), &expect()).is_ok());
    let (x, y) = (fixture("ec1_x"), fixture("ec1_y"));
    let two: JwkSet = serde_json::from_value(json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "a", "x": x, "y": y},
        {"kty": "EC", "crv": "P-256", "kid": "b", "x": x, "y": y},
    ]}))
    .unwrap();
    assert_eq!(
        validate(&token, &two, &expect()),
        Err(IdTokenProblem::Invalid("kid"))
    );
}

/// The claims of the session's original ID token, as a refresh sees them.
fn original(changes: Value) -> Map<String, Value> {
    let Value::Object(map) = with(changes) else {
        unreachable!()
    };
    map
}

#[test]
fn refreshed_tokens_must_keep_the_subject() {
    let first = original(json!({}));
    let mut refresh = expect();
    refresh.grant = Grant::RefreshToken { original: &first };
    assert!(validate(&sign(&with(json!({"nonce": null}))), &keys(), &refresh).is_ok());
    let other = sign(&with(json!({"sub": "bob", "nonce": null})));
    assert_eq!(
        validate(&other, &keys(), &refresh),
        Err(IdTokenProblem::Invalid("sub"))
    );
}

#[test]
fn refreshed_tokens_must_describe_the_original_authentication() {
    const AUTH_TIME: i64 = NOW - 3600;
    type Case = (&'static str, Value, Value, Result<(), IdTokenProblem>);
    let cases: Vec<Case> = vec![
        // (name, original's changes, refreshed token's changes, expected)
        (
            "same everything, nonce repeated",
            json!({"auth_time": AUTH_TIME}),
            json!({"auth_time": AUTH_TIME}),
            Ok(()),
        ),
        (
            "no nonce and no auth_time repeated",
            json!({"auth_time": AUTH_TIME}),
            json!({"nonce": null}),
            Ok(()),
        ),
        (
            "another subject",
            json!({}),
            json!({"sub": "bob"}),
            Err(IdTokenProblem::Invalid("sub")),
        ),
        (
            "original without sub",
            json!({"sub": null}),
            json!({}),
            Err(IdTokenProblem::Invalid("sub")),
        ),
        // The session was created under another issuer value than the one configured now.
        (
            "original from another issuer",
            json!({"iss": "https://old.example"}),
            json!({}),
            Err(IdTokenProblem::Invalid("iss")),
        ),
        (
            "another nonce",
            json!({}),
            json!({"nonce": "n-2"}),
            Err(IdTokenProblem::Invalid("nonce")),
        ),
        (
            "a nonce the original did not have",
            json!({"nonce": null}),
            json!({}),
            Err(IdTokenProblem::Invalid("nonce")),
        ),
        (
            "a nonce that is not a string",
            json!({}),
            json!({"nonce": 7}),
            Err(IdTokenProblem::Invalid("nonce")),
        ),
        (
            "another auth_time (a new authentication)",
            json!({"auth_time": AUTH_TIME}),
            json!({"auth_time": AUTH_TIME + 1}),
            Err(IdTokenProblem::Invalid("auth_time")),
        ),
        (
            "an auth_time the original did not have",
            json!({}),
            json!({"auth_time": AUTH_TIME}),
            Err(IdTokenProblem::Invalid("auth_time")),
        ),
        (
            "an auth_time that is not a number",
            json!({"auth_time": AUTH_TIME}),
            json!({"auth_time": AUTH_TIME.to_string()}),
            Err(IdTokenProblem::Invalid("auth_time")),
        ),
    ];
    for (name, original_changes, refreshed_changes, expected) in cases {
        let first = original(original_changes);
        let mut refresh = expect();
        refresh.grant = Grant::RefreshToken { original: &first };
        let token = sign(&with(refreshed_changes));
        let result = validate(&token, &keys(), &refresh).map(|_| ());
        assert_eq!(result, expected, "{name}");
    }
}

#[test]
fn a_refreshed_token_still_passes_every_login_check() {
    // The comparison with the original comes on top of the usual checks, not instead.
    let first = original(json!({}));
    let mut refresh = expect();
    refresh.grant = Grant::RefreshToken { original: &first };
    for (changes, check) in [
        (json!({"aud": "other"}), "aud"),
        (json!({"exp": NOW - 3600}), "exp"),
        (json!({"iss": "https://evil.example"}), "iss"),
    ] {
        let token = sign(&with(changes));
        assert_eq!(
            validate(&token, &keys(), &refresh),
            Err(IdTokenProblem::Invalid(check))
        );
    }
}

#[test]
fn at_hash_follows_the_algorithm() {
    // Known vector from OpenID Connect Core examples is for RS256: SHA-256 left half.
    let h256 = at_hash(
        Algorithm::RS256,
        "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
    );
    assert_eq!(h256, "77QmUPtjPfzWtF2AnpK9RQ");
    assert_ne!(
        at_hash(Algorithm::ES384, "x"),
        at_hash(Algorithm::ES256, "x")
    );
}

#[test]
fn rsa_and_eddsa_tokens_are_accepted_with_their_at_hash() {
    for alg in [Algorithm::RS256, Algorithm::PS256] {
        let c = with(json!({"at_hash": at_hash(alg, ACCESS_TOKEN)}));
        let token = sign_as(alg, &rsa_key(), Some("rsa"), &c);
        assert!(validate(&token, &keys(), &expect()).is_ok(), "{alg:?}");
        // Without a kid the single RSA key is found.
        let token = sign_as(alg, &rsa_key(), None, &c);
        assert!(validate(&token, &keys(), &expect()).is_ok(), "{alg:?}");
        // The at_hash of another hash length is refused.
        let wrong = with(json!({"at_hash": at_hash(Algorithm::RS512, ACCESS_TOKEN)}));
        let token = sign_as(alg, &rsa_key(), Some("rsa"), &wrong);
        assert_eq!(
            validate(&token, &keys(), &expect()),
            Err(IdTokenProblem::Invalid("at_hash"))
        );
    }
    let ed = EncodingKey::from_ed_der(&der("ed25519_private_pkcs8_der_b64"));
    let c = with(json!({"at_hash": at_hash(Algorithm::EdDSA, ACCESS_TOKEN)}));
    let token = sign_as(Algorithm::EdDSA, &ed, Some("ed"), &c);
    assert!(validate(&token, &keys(), &expect()).is_ok());
}

#[test]
fn a_key_of_the_wrong_family_is_refused() {
    // An RS256 header pointing at the EC key.
    let token = sign_as(Algorithm::RS256, &rsa_key(), Some("k1"), &claims());
    assert_eq!(
        validate(&token, &keys(), &expect()),
        Err(IdTokenProblem::Invalid("alg"))
    );
}

#[test]
fn a_signed_payload_that_is_not_an_object_is_malformed() {
    let token = sign_as(
        Algorithm::RS256,
        &rsa_key(),
        Some("rsa"),
        &json!(["not", "claims"]),
    );
    assert_eq!(
        validate(&token, &keys(), &expect()),
        Err(IdTokenProblem::Invalid("malformed"))
    );
}

#[test]
fn problems_never_echo_the_token() {
    let token = sign(&with(json!({"iss": "https://evil.example"})));
    let problem = validate(&token, &keys(), &expect()).unwrap_err();
    let shown = format!("{problem} {problem:?}");
    assert!(
        !shown.contains(&token) && !shown.contains("evil"),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// Properties over hostile input (budget: 256 cases each, or `PROPTEST_CASES`)
// ---------------------------------------------------------------------------------------------

mod properties {
    use std::sync::LazyLock;

    use proptest::prelude::*;

    use super::*;

    /// A valid token, signed once: signing in a debug build is slow, and every case needs one.
    static HONEST: LazyLock<String> = LazyLock::new(|| sign(&claims()));

    /// Values a forged JOSE header might carry in a field.
    fn header_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::sample::select(vec![
                "none",
                "None",
                "HS256",
                "RS256",
                "ES256",
                "es256",
                "PS256",
                "EdDSA",
                "ES384",
                "RS256 ",
                "",
                "k1",
                "rsa",
                "ed",
                "enc",
                "../../etc/passwd",
                "JWT",
                "logout+jwt",
                "http://evil.example/jwks.json",
            ])
            .prop_map(|s| Value::String(s.to_owned())),
            any::<String>().prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
            Just(json!(["ES256"])),
            Just(json!({"kty": "oct", "k": "c2VjcmV0"})),
        ]
    }

    /// A JOSE header as an attacker writes it: the usual fields, some absent, some odd.
    fn forged_header() -> impl Strategy<Value = Value> {
        let field = prop::sample::select(vec![
            "alg", "kid", "typ", "crit", "jku", "x5u", "jwk", "cty", "b64", "zip", "enc",
        ]);
        prop::collection::btree_map(field, header_value(), 0..6).prop_map(|fields| {
            Value::Object(
                fields
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect(),
            )
        })
    }

    /// A base64url segment: valid encodings of arbitrary bytes, or arbitrary text.
    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
            "[A-Za-z0-9_=+/.-]{0,80}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_text_is_never_an_id_token(token in prop_oneof![
            any::<String>(),
            prop::collection::vec(segment(), 0..6).prop_map(|parts| parts.join(".")),
        ]) {
            prop_assert!(validate(&token, &keys(), &expect()).is_err(), "{token:?} accepted");
        }

        /// Whatever the header says, only the provider's own signature over exactly that
        /// header and payload passes: a forged header with the honest payload and signature, or
        /// with any other signature, is refused (and never panics).
        #[test]
        fn a_forged_header_is_refused(header in forged_header(), signature in segment()) {
            let honest: &str = &HONEST;
            let mut parts = honest.split('.');
            let (honest_header, payload, honest_signature) =
                (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            let forged_header = b64(&header);
            prop_assume!(forged_header != honest_header);
            for signature in [honest_signature, signature.as_str()] {
                let token = format!("{forged_header}.{payload}.{signature}");
                prop_assert!(
                    validate(&token, &keys(), &expect()).is_err(),
                    "accepted with header {header}"
                );
            }
        }

        /// Changing any one character of a valid token makes it invalid.
        #[test]
        fn a_signed_token_with_one_character_changed_is_refused(
            index in any::<prop::sample::Index>(),
            replacement in prop::sample::select(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "
                    .chars()
                    .collect::<Vec<_>>(),
            ),
        ) {
            let honest: &str = &HONEST;
            let at = index.index(honest.len());
            let original = honest.as_bytes()[at];
            prop_assume!(original != replacement as u8);
            let mut token = honest.as_bytes().to_vec();
            token[at] = replacement as u8;
            let token = String::from_utf8(token).unwrap();
            prop_assert!(
                validate(&token, &keys(), &expect()).is_err(),
                "accepted with {:?} at {at}", replacement
            );
        }
    }
}
