//! TLS settings of the listeners from PEM files (rustls with ring): the server's certificate
//! chain and key, and for mutual TLS the client CA and its revocation list.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::ServeError;

fn bad(path: &Path, e: impl std::fmt::Display) -> ServeError {
    ServeError::Config(format!("{}: {e}", path.display()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let v = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(path, e))?;
    if v.is_empty() {
        return Err(bad(path, "no certificate in the file"));
    }
    Ok(v)
}

/// A server configuration: `cert` (chain, PEM) and `key`; with `client_ca`, clients must show
/// a certificate of that CA that `crl` (when given) does not revoke.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    crl: Option<&Path>,
) -> Result<Arc<ServerConfig>, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c).map_err(|e| bad(ca, e))?;
            }
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if let Some(crl) = crl {
                let crls = CertificateRevocationListDer::pem_file_iter(crl)
                    .map_err(|e| bad(crl, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(crl, e))?;
                v = v.with_crls(crls);
            }
            builder.with_client_cert_verifier(v.build().map_err(|e| bad(ca, e))?)
        }
    };
    let cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad(cert, e))?;
    Ok(Arc::new(cfg))
}
