//! Which certificate authorities a route's HTTPS upstream is verified against: the built-in web
//! PKI roots (the default), or the certificates of the route's `ca_file`, for an internal API
//! whose certificate a private CA signed.
//!
//! A `ca_file` replaces the built-in roots for its route rather than adding to them: the route
//! then trusts exactly the authority its operator named, and nothing a public CA issued for the
//! same name. The files are read and checked once, at start ([`upstream_trust`]), so a missing or
//! unreadable file stops the server with a message naming it instead of failing every request.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use super::config::{ProxyConfigError, ProxyRouteConfig};

/// The trusted roots of each route with a `ca_file`, by route prefix; routes not in it use the
/// built-in web PKI roots.
#[derive(Clone, Default)]
pub struct UpstreamTrust {
    by_prefix: BTreeMap<String, Arc<RootCertStore>>,
}

impl fmt::Debug for UpstreamTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.by_prefix
                    .iter()
                    .map(|(prefix, roots)| (prefix, format!("{} CA certificates", roots.len()))),
            )
            .finish()
    }
}

impl UpstreamTrust {
    /// The roots of the route at `prefix`, or `None` for the built-in web PKI roots.
    pub(super) fn roots_for(&self, prefix: &str) -> Option<Arc<RootCertStore>> {
        self.by_prefix.get(prefix).cloned()
    }
}

/// Reads the `ca_file` of every route that has one.
///
/// # Errors
/// One [`ProxyConfigError::CaFile`] per file that cannot be read, holds no PEM certificate, or
/// holds one that is not a usable CA certificate.
pub fn upstream_trust(routes: &[ProxyRouteConfig]) -> Result<UpstreamTrust, Vec<ProxyConfigError>> {
    let mut trust = UpstreamTrust::default();
    let mut problems = Vec::new();
    for route in routes {
        let Some(file) = &route.ca_file else {
            continue;
        };
        match read_roots(file) {
            Ok(roots) => {
                trust.by_prefix.insert(route.path.clone(), Arc::new(roots));
            }
            Err(reason) => problems.push(ProxyConfigError::CaFile {
                path: route.path.clone(),
                file: file.display().to_string(),
                reason,
            }),
        }
    }
    if problems.is_empty() {
        Ok(trust)
    } else {
        Err(problems)
    }
}

/// The certificates of the PEM file `file` as a root store, or why not.
fn read_roots(file: &Path) -> Result<RootCertStore, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot be read: {e}"))?;
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|e| format!("is not valid PEM: {e}"))?;
        roots
            .add(certificate)
            .map_err(|e| format!("holds a certificate that cannot be a trust anchor: {e}"))?;
    }
    if roots.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn route(path: &str, ca_file: Option<&Path>) -> ProxyRouteConfig {
        let mut config: ProxyRouteConfig = serde_json::from_value(serde_json::json!({
            "path": path, "upstream": "https://api.internal", "token": "none"
        }))
        .unwrap();
        config.ca_file = ca_file.map(Path::to_path_buf);
        config
    }

    fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bff-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(name);
        std::fs::write(&file, contents).unwrap();
        file
    }

    #[test]
    fn routes_without_a_ca_file_keep_the_web_pki_roots() {
        let trust = upstream_trust(&[route("/api", None)]).unwrap();
        assert!(trust.roots_for("/api").is_none());
    }

    #[test]
    fn a_ca_file_becomes_the_routes_only_roots() {
        let pem = bff_test_services::tls::ca_certificate_pem();
        let file = temp_file("one-ca.pem", pem.as_bytes());
        let trust = upstream_trust(&[route("/api", Some(&file)), route("/open", None)]).unwrap();
        assert_eq!(trust.roots_for("/api").unwrap().len(), 1);
        assert!(trust.roots_for("/open").is_none());
    }

    #[test]
    fn unusable_ca_files_are_refused_each_naming_its_route_and_file() {
        let missing = std::env::temp_dir().join("bff-trust-no-such-file.pem");
        let empty = temp_file("empty.pem", b"no certificate here\n");
        let broken = temp_file(
            "broken.pem",
            b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        );
        let problems = upstream_trust(&[
            route("/a", Some(&missing)),
            route("/b", Some(&empty)),
            route("/c", Some(&broken)),
        ])
        .unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].starts_with("route \"/a\": ca_file ") && lines[0].contains("cannot be read")
        );
        assert!(
            lines[1].starts_with("route \"/b\": ca_file ")
                && lines[1].contains("no PEM certificate")
        );
        assert!(
            lines[2].starts_with("route \"/c\": ca_file "),
            "{}",
            lines[2]
        );
        for (line, file) in lines.iter().zip([&missing, &empty, &broken]) {
            assert!(line.contains(&file.display().to_string()), "{line}");
        }
    }
}
