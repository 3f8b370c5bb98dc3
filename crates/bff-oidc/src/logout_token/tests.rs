//! Hostile-input tests for logout token validation: every check of section 2.6, with the
//! provider's test keys and an unknown one.

use base64::engine::general_purpose::STANDARD;
use bff_test_op::fixture;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const ISSUER: &str = "https://idp.example";
const CLIENT: &str = "bff";
const NOW: i64 = 1_800_000_000;

fn der(name: &str) -> Vec<u8> {
    STANDARD.decode(fixture(name)).unwrap()
}

fn keys() -> JwkSet {
    let (x, y) = (fixture("ec1_x"), fixture("ec1_y"));
    serde_json::from_value(json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": x, "y": y},
        {"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": fixture("rsa_n"), "e": fixture("rsa_e")},
    ]}))
    .unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "iat": NOW - 5, "exp": NOW + 120, "jti": "jti-1",
        "sub": "alice", "sid": "op-session-1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    })
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

fn ec1() -> EncodingKey {
    EncodingKey::from_ec_der(&der("ec1_private_pkcs8_der_b64"))
}

fn sign_full(
    alg: Algorithm,
    key: &EncodingKey,
    kid: Option<&str>,
    typ: Option<&str>,
    claims: &Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// Signed by the provider's key `k1`, `typ` `logout+jwt`.
fn sign(claims: &Value) -> String {
    sign_full(
        Algorithm::ES256,
        &ec1(),
        Some("k1"),
        Some("logout+jwt"),
        claims,
    )
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn expect() -> Expectations<'static> {
    Expectations {
        issuer: ISSUER,
        client_id: CLIENT,
        algorithms: &[Algorithm::ES256, Algorithm::RS256],
        skew: Duration::from_secs(60),
        now: Timestamp::from_unix_seconds(NOW),
    }
}

fn check(token: &str) -> Result<LogoutToken, IdTokenProblem> {
    validate(token, &keys(), &expect())
}

fn refused(token: &str) -> &'static str {
    match check(token) {
        Err(IdTokenProblem::Invalid(check)) => check,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_good_token_gives_what_the_domain_needs() {
    let token = check(&sign(&claims())).unwrap();
    assert_eq!(
        token,
        LogoutToken {
            issuer: ISSUER.into(),
            subject: Some("alice".into()),
            provider_session_id: Some("op-session-1".into()),
            token_id: "jti-1".into(),
            issued_at: Timestamp::from_unix_seconds(NOW - 5),
            expires_at: Some(Timestamp::from_unix_seconds(NOW + 120)),
        }
    );
}

#[test]
fn sid_alone_sub_alone_and_no_exp_are_enough() {
    let only_sid = check(&sign(&with(json!({"sub": null})))).unwrap();
    assert_eq!(only_sid.subject, None);
    let only_sub = check(&sign(&with(json!({"sid": null})))).unwrap();
    assert_eq!(only_sub.provider_session_id, None);
    let no_exp = check(&sign(&with(json!({"exp": null})))).unwrap();
    assert_eq!(no_exp.expires_at, None);
    // Several audiences with us as `azp`, other events beside the logout event.
    check(&sign(&with(json!({"aud": [CLIENT, "api"], "azp": CLIENT})))).unwrap();
    check(&sign(&with(json!({"events": {
        BACKCHANNEL_LOGOUT_EVENT: {}, "https://example/other": {"x": 1}
    }}))))
    .unwrap();
}

#[test]
fn typ_logout_jwt_is_accepted_jwt_and_none_tolerated_others_refused() {
    for typ in [
        Some("logout+jwt"),
        Some("application/logout+jwt"),
        Some("Logout+JWT"),
        Some("JWT"),
        None,
    ] {
        let token = sign_full(Algorithm::ES256, &ec1(), Some("k1"), typ, &claims());
        assert!(check(&token).is_ok(), "{typ:?}");
    }
    for typ in ["at+jwt", "secevent+jwt", "id_token", ""] {
        let token = sign_full(Algorithm::ES256, &ec1(), Some("k1"), Some(typ), &claims());
        assert_eq!(refused(&token), "typ", "{typ:?}");
    }
}

#[test]
fn claim_checks_table() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("missing jti", with(json!({"jti": null})), "jti"),
        ("empty jti", with(json!({"jti": ""})), "jti"),
        ("numeric jti", with(json!({"jti": 7})), "jti"),
        ("missing events", with(json!({"events": null})), "events"),
        (
            "event value not an object",
            with(json!({"events": {BACKCHANNEL_LOGOUT_EVENT: "yes"}})),
            "events",
        ),
        (
            "another event",
            with(json!({"events": {"http://schemas.openid.net/event/other": {}}})),
            "events",
        ),
        (
            "events not an object",
            with(json!({"events": [BACKCHANNEL_LOGOUT_EVENT]})),
            "events",
        ),
        ("with nonce", with(json!({"nonce": "n-1"})), "nonce"),
        ("wrong aud", with(json!({"aud": "other-client"})), "aud"),
        ("missing aud", with(json!({"aud": null})), "aud"),
        (
            "several aud without azp",
            with(json!({"aud": [CLIENT, "api"]})),
            "azp",
        ),
        (
            "azp of another client",
            with(json!({"azp": "other-client"})),
            "azp",
        ),
        (
            "wrong iss",
            with(json!({"iss": "https://evil.example"})),
            "iss",
        ),
        ("missing iss", with(json!({"iss": null})), "iss"),
        ("expired", with(json!({"exp": NOW - 61})), "exp"),
        ("exp not a number", with(json!({"exp": "tomorrow"})), "exp"),
        (
            "iat far in the future",
            with(json!({"iat": NOW + 3600})),
            "iat",
        ),
        ("missing iat", with(json!({"iat": null})), "iat"),
        (
            "neither sid nor sub",
            with(json!({"sid": null, "sub": null})),
            "sub_or_sid",
        ),
        (
            "empty sid and sub",
            with(json!({"sid": "", "sub": ""})),
            "sub_or_sid",
        ),
    ];
    for (name, claims, expected) in cases {
        assert_eq!(refused(&sign(&claims)), expected, "{name}");
    }
}

#[test]
fn clock_skew_is_tolerated_both_ways() {
    check(&sign(&with(json!({"exp": NOW - 30})))).unwrap();
    check(&sign(&with(json!({"iat": NOW + 30})))).unwrap();
}

#[test]
fn an_id_token_is_not_a_logout_token() {
    let id_token = json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "alice", "sid": "op-session-1",
        "iat": NOW - 5, "exp": NOW + 300, "nonce": "n-1",
    });
    let token = sign_full(Algorithm::ES256, &ec1(), Some("k1"), Some("JWT"), &id_token);
    assert_eq!(refused(&token), "events");
    // Even one carrying a `jti` and the event: its nonce gives it away.
    let mut disguised = id_token.clone();
    disguised["jti"] = json!("j");
    disguised["events"] = json!({BACKCHANNEL_LOGOUT_EVENT: {}});
    assert_eq!(refused(&sign(&disguised)), "nonce");
}

#[test]
fn alg_none_is_refused() {
    for header in [
        json!({"alg": "none", "typ": "logout+jwt"}),
        json!({"alg": "None"}),
    ] {
        let token = format!("{}.{}.", b64(&header), b64(&claims()));
        assert_eq!(refused(&token), "alg", "{header}");
    }
}

#[test]
fn hmac_signed_with_the_public_key_is_refused() {
    // Key confusion: HS256 keyed with the provider's RSA public key (PEM, and raw modulus).
    let pem = EncodingKey::from_secret(fixture("rsa_public_pem").as_bytes());
    let token = sign_full(
        Algorithm::HS256,
        &pem,
        Some("rsa"),
        Some("logout+jwt"),
        &claims(),
    );
    assert_eq!(refused(&token), "alg");
    let modulus = EncodingKey::from_secret(&URL_SAFE_NO_PAD.decode(fixture("rsa_n")).unwrap());
    let token = sign_full(Algorithm::HS256, &modulus, None, None, &claims());
    assert_eq!(refused(&token), "alg");
    // Even with HS256 in the allowlist.
    let mut permissive = expect();
    permissive.algorithms = &[Algorithm::HS256, Algorithm::ES256];
    assert_eq!(
        validate(&token, &keys(), &permissive),
        Err(IdTokenProblem::Invalid("alg"))
    );
}

#[test]
fn a_signature_from_an_unknown_key_is_refused() {
    // Key 2 is not published: under key 1's kid the signature does not verify...
    let ec2 = EncodingKey::from_ec_der(&der("ec2_private_pkcs8_der_b64"));
    let token = sign_full(
        Algorithm::ES256,
        &ec2,
        Some("k1"),
        Some("logout+jwt"),
        &claims(),
    );
    assert_eq!(refused(&token), "signature");
    // ...and under its own kid there is no key (the provider adapter refetches once, then
    // refuses it as `kid`).
    let token = sign_full(
        Algorithm::ES256,
        &ec2,
        Some("k2"),
        Some("logout+jwt"),
        &claims(),
    );
    assert_eq!(check(&token), Err(IdTokenProblem::UnknownKid));
}

#[test]
fn a_token_changed_after_signing_is_refused() {
    let token = sign(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&with(json!({"sub": "bob", "sid": "op-session-2"}))),
        parts[2]
    );
    assert_eq!(refused(&forged), "signature");
}

#[test]
fn malformed_tokens_are_refused() {
    let good = sign(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    for token in [
        String::new(),
        "garbage".to_owned(),
        "a.b".to_owned(),
        format!("{good}.x.y"),
        format!("!!!.{}.{}", parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            b64(&json!(["not", "an object"])),
            parts[1],
            parts[2]
        ),
        format!("{}.{}.{}", b64(&json!({"typ": "JWT"})), parts[1], parts[2]),
    ] {
        assert_eq!(refused(&token), "malformed", "{token}");
    }
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

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
            "[A-Za-z0-9_=+/.-]{0,80}",
            any::<String>(),
        ]
    }

    /// Claims an attacker controls, starting from the honest ones.
    fn forged_claims() -> impl Strategy<Value = Value> {
        let name = prop::sample::select(vec![
            "iss", "aud", "azp", "iat", "exp", "jti", "sub", "sid", "events", "nonce",
        ]);
        let value = prop_oneof![
            any::<String>().prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            Just(Value::Null),
            Just(json!([])),
            Just(json!({})),
            Just(json!({BACKCHANNEL_LOGOUT_EVENT: "yes"})),
            Just(json!([CLIENT, "other"])),
        ];
        prop::collection::btree_map(name, value, 1..4).prop_map(|changes| {
            let mut c = claims();
            for (name, value) in changes {
                c[name] = value;
            }
            c
        })
    }

    proptest! {
        #[test]
        fn arbitrary_text_is_never_a_logout_token(token in prop_oneof![
            any::<String>(),
            prop::collection::vec(segment(), 0..6).prop_map(|parts| parts.join(".")),
        ]) {
            prop_assert!(check(&token).is_err(), "{token:?} accepted");
        }

        /// A logout token with forged claims, signed by the provider's own key, is accepted
        /// only when every rule of section 2.6 still holds; it never panics.
        #[test]
        fn forged_claims_pass_only_when_every_rule_holds(claims in forged_claims()) {
            let Ok(token) = check(&sign(&claims)) else {
                return Ok(());
            };
            prop_assert_eq!(claims["iss"].as_str(), Some(ISSUER));
            let audiences = match &claims["aud"] {
                Value::String(a) => vec![a.as_str()],
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            prop_assert!(audiences.contains(&CLIENT));
            prop_assert!(claims.get("nonce").is_none());
            prop_assert!(claims["events"][BACKCHANNEL_LOGOUT_EVENT].is_object());
            prop_assert!(!token.token_id.is_empty());
            prop_assert!(token.subject.is_some() || token.provider_session_id.is_some());
        }

        /// Changing any one character of a valid logout token makes it invalid.
        #[test]
        fn a_signed_logout_token_with_one_character_changed_is_refused(
            index in any::<prop::sample::Index>(),
            replacement in prop::sample::select(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "
                    .chars()
                    .collect::<Vec<_>>(),
            ),
        ) {
            let honest: &str = &HONEST;
            let at = index.index(honest.len());
            prop_assume!(honest.as_bytes()[at] != replacement as u8);
            let mut token = honest.as_bytes().to_vec();
            token[at] = replacement as u8;
            let token = String::from_utf8(token).unwrap();
            prop_assert!(check(&token).is_err(), "accepted with {:?} at {at}", replacement);
        }
    }
}
