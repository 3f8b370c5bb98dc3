//! An HTTPS server under a private certificate authority, for the clients that must trust a
//! CA the operator names (`ca_file`) and nothing else: a fresh CA per call, and a server on
//! `127.0.0.1` whose certificate it signed, answering every request `200 tls ok`.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// The body every request to a [`PrivateCaServer`] gets.
pub const ANSWER: &str = "tls ok";

/// A running HTTPS server under its own CA.
#[derive(Debug, Clone)]
pub struct PrivateCaServer {
    /// `https://127.0.0.1:PORT/`.
    pub url: String,
    /// The CA's certificate, PEM: what a client must trust to reach [`Self::url`].
    pub ca_pem: String,
}

/// A new self-signed CA, with its key.
fn new_ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate")
}

/// The PEM certificate of a new CA, for what reads a `ca_file` without connecting anywhere.
pub fn ca_certificate_pem() -> String {
    new_ca().pem()
}

/// Starts a server under a new CA; it serves until the runtime ends.
pub async fn https_under_private_ca() -> PrivateCaServer {
    let ca = new_ca();
    let leaf_key = KeyPair::generate().expect("server key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server parameters")
        .signed_by(&leaf_key, &ca)
        .expect("server certificate");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key"),
    )
    .expect("server TLS configuration");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A handshake the client refuses ends here.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{ANSWER}",
                    ANSWER.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    PrivateCaServer {
        url: format!("https://127.0.0.1:{port}/"),
        ca_pem: ca.pem(),
    }
}
