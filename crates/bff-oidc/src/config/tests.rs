//! The provider configuration against hostile and mistaken input: the documented defaults;
//! a `[providers.<name>]` section reads into final types, and refuses what does not fit
//! (hostile values, credential keys that do not match `client_auth`, a certificate of another
//! key, symmetric or unknown algorithms) without echoing secrets; `OidcProviderConfig::validate`
//! guards the configurations built in code.

use super::*;

fn config() -> OidcProviderConfig {
    OidcProviderConfig::new(
        ProviderId::parse("test").unwrap(),
        "https://idp.example",
        "bff",
        Secret::new("s3cret"),
    )
}

#[test]
fn new_uses_the_documented_defaults() {
    let c = config();
    assert_eq!(c.client_auth, ClientAuthMethod::ClientSecretBasic);
    assert_eq!(c.scopes, vec!["openid"]);
    assert_eq!(c.allowed_algorithms, None);
    assert_eq!(c.clock_skew, Duration::from_secs(60));
    assert_eq!(c.http_timeout, Duration::from_secs(10));
    assert_eq!(c.jwks_refetch_interval, Duration::from_secs(30));
    assert!(c.validate().is_ok());
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn validate_refuses_unusable_configurations() {
    type Change = fn(&mut OidcProviderConfig);
    let cases: Vec<(&str, Change)> = vec![
        ("HMAC", |c| {
            c.allowed_algorithms = Some(vec![Algorithm::HS384])
        }),
        ("no algorithm", |c| c.allowed_algorithms = Some(Vec::new())),
        ("issuer not a URL", |c| c.issuer = "idp.example".into()),
        ("issuer with query", |c| {
            c.issuer = "https://idp.example/?a=b".into()
        }),
        ("issuer with fragment", |c| {
            c.issuer = "https://idp.example/#x".into()
        }),
        ("issuer scheme", |c| c.issuer = "ftp://idp.example".into()),
        ("empty client id", |c| c.client_id.clear()),
        ("scope with space", |c| {
            c.scopes = vec!["openid email".into()]
        }),
        ("post-logout URI", |c| {
            c.post_logout_redirect_uri = Some("/x".into())
        }),
        ("post-logout URI scheme", |c| {
            c.post_logout_redirect_uri = Some("javascript:alert(1)".into())
        }),
        ("zero timeout", |c| c.http_timeout = Duration::ZERO),
    ];
    for (name, change) in cases {
        let mut c = config();
        change(&mut c);
        assert!(
            matches!(c.validate(), Err(DiscoveryError::Config(_))),
            "{name}"
        );
    }
}

fn section(value: serde_json::Value) -> Result<ProviderSection, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn minimal() -> serde_json::Value {
    serde_json::json!({
        "issuer": "https://idp.example",
        "client_id": "bff",
        "client_secret": "s3cret",
    })
}

fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut section = minimal();
    section[key] = value;
    section
}

#[test]
fn a_section_deserializes_into_final_types_with_defaults() {
    let s = section(minimal()).unwrap();
    assert_eq!(s.client_auth, ClientAuthMethod::ClientSecretBasic);
    assert_eq!(s.scopes, ["openid", "profile", "email"]);
    assert_eq!(s.id_token_algorithms, None, "absent: follow discovery");
    assert_eq!(s.clock_skew, Duration::from_secs(60));
    assert_eq!(s.http_timeout, Duration::from_secs(10));
    assert!(!format!("{s:?}").contains("s3cret"));

    let id = ProviderId::parse("main").unwrap();
    let c = s.to_config(id.clone(), "https://app.example/", true);
    assert_eq!(c.id, id);
    assert_eq!(c.issuer, "https://idp.example", "kept as written");
    assert_eq!(c.client_secret.expose(), "s3cret");
    assert_eq!(c.allowed_algorithms, None);
    assert_eq!(
        c.post_logout_redirect_uri.as_deref(),
        Some("https://app.example/")
    );
    assert!(c.userinfo);
    assert!(c.validate().is_ok());

    let mut full = minimal();
    full["client_auth"] = "client_secret_post".into();
    full["id_token_algorithms"] = serde_json::json!(["ES256", "EdDSA"]);
    full["post_logout_redirect_uri"] = "https://app.example/bye".into();
    full["clock_skew_secs"] = 5.into();
    full["http_timeout_secs"] = 3.into();
    let c = section(full)
        .unwrap()
        .to_config(id, "https://app.example/", false);
    assert_eq!(c.client_auth, ClientAuthMethod::ClientSecretPost);
    assert_eq!(
        c.allowed_algorithms,
        Some(vec![Algorithm::ES256, Algorithm::EdDSA])
    );
    assert_eq!(
        c.post_logout_redirect_uri.as_deref(),
        Some("https://app.example/bye")
    );
    assert_eq!(c.clock_skew, Duration::from_secs(5));
    assert_eq!(c.http_timeout, Duration::from_secs(3));
}

#[test]
fn pushed_requests_are_used_when_offered_unless_configured_otherwise() {
    assert_eq!(
        config().pushed_authorization_requests,
        PushedAuthorization::IfOffered
    );
    let read = |value: serde_json::Value| {
        section(with("pushed_authorization_requests", value))
            .map(|s| s.pushed_authorization_requests)
    };
    assert_eq!(
        section(minimal()).unwrap().pushed_authorization_requests,
        PushedAuthorization::IfOffered
    );
    for (value, expected) in [
        (
            serde_json::json!("if_offered"),
            PushedAuthorization::IfOffered,
        ),
        (serde_json::json!("always"), PushedAuthorization::Always),
        (serde_json::json!("off"), PushedAuthorization::Off),
        // The values before there were three, from a file or from a variable.
        (serde_json::json!(true), PushedAuthorization::Always),
        (serde_json::json!(false), PushedAuthorization::Off),
        (serde_json::json!("true"), PushedAuthorization::Always),
        (serde_json::json!("false"), PushedAuthorization::Off),
    ] {
        assert_eq!(read(value.clone()), Ok(expected), "{value}");
    }
    for value in [
        serde_json::json!("yes"),
        serde_json::json!("Always"),
        serde_json::json!(""),
        serde_json::json!(1),
    ] {
        let err = read(value.clone()).unwrap_err();
        assert!(
            err.contains("if_offered") && err.contains("always") && err.contains("off"),
            "{value}: {err}"
        );
    }
}

#[test]
fn hostile_section_values_are_refused_with_their_reason() {
    let cases = [
        (
            with("client_auth", "client_secret_jwt".into()),
            "must be client_secret_basic, client_secret_post or private_key_jwt, got \"client_secret_jwt\"",
        ),
        (
            with(
                "id_token_algorithms",
                serde_json::json!(["HS256", "none", "RS256"]),
            ),
            "\"HS256\", \"none\" not allowed",
        ),
        (
            with("id_token_algorithms", serde_json::json!([])),
            "at least one algorithm",
        ),
        (with("issuer", "idp.example".into()), "not an absolute URL"),
        (
            with("issuer", "ftp://idp.example".into()),
            "http:// or https://",
        ),
        (
            with("issuer", "https://idp.example/?tenant=a".into()),
            "no query or fragment",
        ),
        (with("client_id", "".into()), "must not be empty"),
        (with("client_secret", "".into()), "must not be empty"),
        (
            with("scopes", serde_json::json!(["openid email"])),
            "\"openid email\" is empty or contains whitespace",
        ),
        (
            with("post_logout_redirect_uri", "javascript:alert(1)".into()),
            "http:// or https://",
        ),
        (with("http_timeout_secs", 0.into()), "greater than zero"),
        (with("clock_skew", 5.into()), "unknown field `clock_skew`"),
    ];
    for (value, expected) in cases {
        let message = section(value).unwrap_err();
        assert!(message.contains(expected), "{expected}: {message}");
    }
}

#[test]
fn the_credential_keys_must_fit_the_client_authentication() {
    let client_key = bff_test_services::client_key::ClientKey::generate();
    let key_file = client_key.write_private_pem("bff-oidc-section-key");
    let key_path = serde_json::json!(key_file.display().to_string());
    let certificate_file = client_key.write_certificate_pem("bff-oidc-section-cert");
    let certificate_path = serde_json::json!(certificate_file.display().to_string());
    let stranger_certificate_file = bff_test_services::client_key::ClientKey::generate()
        .write_certificate_pem("bff-oidc-section-stranger-cert");
    let stranger_certificate_path =
        serde_json::json!(stranger_certificate_file.display().to_string());
    let private_key_jwt = |changes: serde_json::Value| {
        let mut s = minimal();
        s.as_object_mut().unwrap().remove("client_secret");
        s["client_auth"] = "private_key_jwt".into();
        s["private_key_file"] = key_path.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                s.as_object_mut().unwrap().remove(k);
            } else {
                s[k] = v.clone();
            }
        }
        s
    };
    let without_secret = {
        let mut s = minimal();
        s.as_object_mut().unwrap().remove("client_secret");
        s
    };
    // (section, the keys reported)
    let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
        (minimal(), vec![]),
        (with("client_auth", "client_secret_post".into()), vec![]),
        (private_key_jwt(serde_json::json!({})), vec![]),
        (
            private_key_jwt(serde_json::json!({"private_key_id": "k1"})),
            vec![],
        ),
        (without_secret, vec!["client_secret"]),
        (
            private_key_jwt(serde_json::json!({"private_key_file": null})),
            vec!["private_key_file"],
        ),
        (
            private_key_jwt(serde_json::json!({"client_secret": "s3cret"})),
            vec!["client_secret"],
        ),
        (
            with("private_key_file", key_path.clone()),
            vec!["private_key_file"],
        ),
        (with("private_key_id", "k1".into()), vec!["private_key_id"]),
        // The audience of an assertion no secret method sends would be silently ignored.
        (
            with("client_assertion_audience", "token_endpoint".into()),
            vec!["client_assertion_audience"],
        ),
        (
            private_key_jwt(serde_json::json!({"client_assertion_audience": "token_endpoint"})),
            vec![],
        ),
        (
            with("client_assertion_algorithm", "PS256".into()),
            vec!["client_assertion_algorithm"],
        ),
        (
            with("client_certificate_file", certificate_path.clone()),
            vec!["client_certificate_file"],
        ),
        // The key's certificate and an algorithm of the key fit; another key's certificate
        // and an algorithm of another kind of key do not.
        (
            private_key_jwt(serde_json::json!({
                "client_certificate_file": certificate_path.clone(),
                "client_assertion_algorithm": "ES256",
            })),
            vec![],
        ),
        (
            private_key_jwt(
                serde_json::json!({"client_certificate_file": stranger_certificate_path}),
            ),
            vec!["client_certificate_file"],
        ),
        (
            private_key_jwt(serde_json::json!({"client_assertion_algorithm": "PS256"})),
            vec!["client_assertion_algorithm"],
        ),
    ];
    for (value, expected) in cases {
        let s = section(value.clone()).unwrap();
        let problems = s.credential_problems();
        let keys: Vec<&str> = problems.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, expected, "{value}: {problems:?}");
        for (_, message) in &problems {
            assert!(!message.contains("s3cret"), "{message}");
        }
    }
    // A valid `private_key_jwt` section becomes a configuration that validates, with the
    // key named as configured and no secret.
    let s = section(private_key_jwt(serde_json::json!({"private_key_id": "k1"}))).unwrap();
    let c = s.to_config(
        ProviderId::parse("main").unwrap(),
        "https://app.example/",
        false,
    );
    c.validate().unwrap();
    assert_eq!(c.client_auth, ClientAuthMethod::PrivateKeyJwt);
    assert_eq!(c.private_key.as_ref().unwrap().key_id(), Some("k1"));
    assert_eq!(c.client_secret.expose(), "");
    assert_eq!(c.client_assertion_audience, AssertionAudience::Issuer);
    let s = section(private_key_jwt(
        serde_json::json!({"client_assertion_audience": "token_endpoint"}),
    ))
    .unwrap();
    let c = s.to_config(
        ProviderId::parse("main").unwrap(),
        "https://app.example/",
        false,
    );
    assert_eq!(
        c.client_assertion_audience,
        AssertionAudience::TokenEndpoint
    );
    // The certificate and the pinned algorithm travel with the key.
    let s = section(private_key_jwt(serde_json::json!({
        "client_certificate_file": certificate_path.clone(),
        "client_assertion_algorithm": "ES256",
    })))
    .unwrap();
    let c = s.to_config(
        ProviderId::parse("main").unwrap(),
        "https://app.example/",
        false,
    );
    let key = c.private_key.as_ref().unwrap();
    assert_eq!(key.algorithm(), Some(Algorithm::ES256));
    assert_eq!(
        key.certificate().unwrap().sha256_thumbprint(),
        s.client_certificate_file
            .as_ref()
            .unwrap()
            .sha256_thumbprint()
    );
    // An algorithm name that is not an assertion algorithm is refused when read, and a
    // certificate file that holds none, naming the file.
    let message = section(private_key_jwt(
        serde_json::json!({"client_assertion_algorithm": "HS256"}),
    ))
    .unwrap_err();
    assert!(message.contains("\"HS256\" is not one of"), "{message}");
    let message = section(private_key_jwt(
        serde_json::json!({"client_certificate_file": key_path.clone()}),
    ))
    .unwrap_err();
    assert!(
        message.contains("no X.509 certificate") && message.contains("bff-oidc-section-key"),
        "{message}"
    );
    std::fs::remove_file(&certificate_file).unwrap();
    std::fs::remove_file(&stranger_certificate_file).unwrap();
    // A key file that holds no key is refused when the section is read, naming the file.
    std::fs::write(&key_file, "not a key").unwrap();
    let message = section(private_key_jwt(serde_json::json!({}))).unwrap_err();
    assert!(
        message.contains("no usable private key") && message.contains("bff-oidc-section-key"),
        "{message}"
    );
    std::fs::remove_file(&key_file).unwrap();
}

#[test]
fn a_secret_of_the_wrong_type_is_not_echoed() {
    let message = section(with("client_secret", 918273645.into())).unwrap_err();
    assert!(message.contains("must be a string"), "{message}");
    assert!(!message.contains("918273645"), "{message}");
}

#[test]
fn only_asymmetric_algorithms_parse() {
    for name in ["RS256", "PS512", "ES384", "EdDSA"] {
        assert!(parse_algorithm(name).is_some(), "{name}");
    }
    for name in [
        "HS256", "HS384", "HS512", "none", "None", "rs256", "", "ES512",
    ] {
        assert!(parse_algorithm(name).is_none(), "{name}");
    }
}
