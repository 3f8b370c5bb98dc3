//! A provider under a private CA: with its `ca_file` the provider client trusts that CA and
//! nothing else (not the web PKI, not another private CA); a file that cannot serve is refused
//! when read, naming it.

use std::time::Duration;

use bff_oidc::CaCertificates;
use bff_test_services::tls::{ANSWER, PrivateCaServer, https_under_private_ca};

fn ca_of(server: &PrivateCaServer, name: &str) -> CaCertificates {
    let dir = std::env::temp_dir().join(format!("bff-oidc-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, &server.ca_pem).unwrap();
    CaCertificates::read(&file).unwrap()
}

#[tokio::test]
async fn the_provider_client_trusts_its_ca_file_and_only_it() {
    let provider = https_under_private_ca().await;
    let other = https_under_private_ca().await;
    let trusting =
        bff_oidc::http_client(Duration::from_secs(5), Some(&ca_of(&provider, "own.pem"))).unwrap();
    let answer = trusting.get(&provider.url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), ANSWER);

    let web_pki = bff_oidc::http_client(Duration::from_secs(5), None).unwrap();
    let err = web_pki.get(&provider.url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    let other_ca =
        bff_oidc::http_client(Duration::from_secs(5), Some(&ca_of(&other, "other.pem"))).unwrap();
    let err = other_ca.get(&provider.url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[test]
fn a_ca_file_that_cannot_serve_is_refused_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("bff-oidc-bad-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no certificate\n").unwrap();
    let missing = dir.join("missing.pem");
    for (file, reason) in [
        (&missing, "cannot be read"),
        (&empty, "holds no PEM certificate"),
    ] {
        let err = CaCertificates::read(file).unwrap_err();
        assert!(
            err.contains(&file.display().to_string()) && err.contains(reason),
            "{err}"
        );
    }
}
