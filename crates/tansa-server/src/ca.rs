//! A small certificate authority for Tansa's own TLS (`tansa ca`): the server's listeners and
//! each agent get a certificate of it; a revoked certificate is listed in its CRL, which the
//! server loads, so that the agent is refused at the handshake.
//!
//! Files in the CA directory (default DATA/ca):
//! - `ca.pem`, `ca.key` (0600): the authority (ECDSA P-256, 10 years);
//! - `issued/NAME.pem`, `issued/NAME.key` (0600): certificates issued (P-256, `days`);
//! - `index.tsv`: serial, name, kind, issued, revoked (one line per certificate);
//! - `crl.pem`: the revocation list, rewritten by `init` and each `revoke`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("{0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, CaError>;

/// What a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A listener (syslog TLS, the agents' endpoint): its DNS names and addresses.
    Server { names: Vec<String> },
    /// An agent or a syslog client (mutual TLS).
    Client,
}

/// One line of `index.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub serial: String,
    pub name: String,
    pub kind: String,
    pub issued: String,
    pub revoked: Option<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write(path: &Path, text: &str, private: bool) -> Result<()> {
    crate::files::write_atomic(path, text.as_bytes(), if private { 0o600 } else { 0o644 })
        .map_err(io(path))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io(path))
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn random_serial() -> Result<SerialNumber> {
    let mut b = crate::files::random::<16>().map_err(io(Path::new("/dev/urandom")))?;
    b[0] &= 0x7f; // a positive INTEGER
    Ok(SerialNumber::from_slice(&b))
}

fn hex(s: &SerialNumber) -> String {
    crate::files::hex(s.as_ref())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A name usable as a file name and a certificate subject.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(CaError::Invalid(format!(
            "{name:?}: a certificate name is 1-64 letters, digits, '.', '-' or '_'"
        )))
    }
}

/// Creates the authority in `dir` (refused when one is there).
pub fn init(dir: &Path, name: &str) -> Result<PathBuf> {
    let cert = dir.join("ca.pem");
    if cert.exists() {
        return Err(CaError::Invalid(format!(
            "{}: a CA is already there",
            cert.display()
        )));
    }
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.distinguished_name.push(DnType::OrganizationName, "Tansa");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = now() - time::Duration::hours(1);
    p.not_after = now() + time::Duration::days(3650);
    p.serial_number = Some(random_serial()?);
    let c = p.self_signed(&key)?;
    write(&dir.join("ca.key"), &key.serialize_pem(), true)?;
    write(&cert, &c.pem(), false)?;
    write(&dir.join("index.tsv"), "", false)?;
    write_crl(dir, &[])?;
    Ok(cert)
}

fn issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>> {
    let key = KeyPair::from_pem(&read(&dir.join("ca.key"))?)?;
    Ok(Issuer::from_ca_cert_pem(&read(&dir.join("ca.pem"))?, key)?)
}

/// The certificates issued so far.
pub fn list(dir: &Path) -> Result<Vec<Issued>> {
    let text = read(&dir.join("index.tsv"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 5).then(|| Issued {
                serial: f[0].into(),
                name: f[1].into(),
                kind: f[2].into(),
                issued: f[3].into(),
                revoked: (f[4] != "-").then(|| f[4].into()),
            })
        })
        .collect())
}

fn save_index(dir: &Path, all: &[Issued]) -> Result<()> {
    let mut s = String::new();
    for i in all {
        s += &format!(
            "{}\t{}\t{}\t{}\t{}\n",
            i.serial,
            i.name,
            i.kind,
            i.issued,
            i.revoked.as_deref().unwrap_or("-")
        );
    }
    write(&dir.join("index.tsv"), &s, false)
}

/// Issues a certificate for `name`: `issued/NAME.pem` and `issued/NAME.key`. A name in use
/// by a certificate that is not revoked is refused.
pub fn issue(dir: &Path, name: &str, kind: &Kind, days: u32) -> Result<(PathBuf, PathBuf)> {
    check_name(name)?;
    let issuer = issuer(dir)?;
    let mut all = list(dir)?;
    if all.iter().any(|i| i.name == name && i.revoked.is_none()) {
        return Err(CaError::Invalid(format!(
            "{name}: already issued (revoke it first to issue it again)"
        )));
    }
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.distinguished_name.push(DnType::OrganizationName, "Tansa");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = now() - time::Duration::hours(1);
    p.not_after = now() + time::Duration::days(days.into());
    p.use_authority_key_identifier_extension = true;
    let serial = random_serial()?;
    p.serial_number = Some(serial.clone());
    match kind {
        Kind::Server { names } => {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            for n in names {
                p.subject_alt_names.push(match n.parse::<IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(
                        n.clone()
                            .try_into()
                            .map_err(|_| CaError::Invalid(format!("{n:?}: not a DNS name")))?,
                    ),
                });
            }
        }
        Kind::Client => {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
    }
    let c = p.signed_by(&key, &issuer)?;
    let cert_path = dir.join("issued").join(format!("{name}.pem"));
    let key_path = dir.join("issued").join(format!("{name}.key"));
    write(&key_path, &key.serialize_pem(), true)?;
    write(&cert_path, &c.pem(), false)?;
    all.push(Issued {
        serial: hex(&serial),
        name: name.into(),
        kind: match kind {
            Kind::Server { .. } => "server".into(),
            Kind::Client => "client".into(),
        },
        issued: jiff::Timestamp::now().to_string(),
        revoked: None,
    });
    save_index(dir, &all)?;
    Ok((cert_path, key_path))
}

/// Revokes the certificate of `name` and rewrites `crl.pem`. Servers read the CRL when they
/// start.
pub fn revoke(dir: &Path, name: &str) -> Result<PathBuf> {
    let mut all = list(dir)?;
    let Some(i) = all
        .iter_mut()
        .find(|i| i.name == name && i.revoked.is_none())
    else {
        return Err(CaError::Invalid(format!(
            "{name}: no certificate of that name in force"
        )));
    };
    i.revoked = Some(jiff::Timestamp::now().to_string());
    save_index(dir, &all)?;
    let revoked: Vec<String> = all
        .iter()
        .filter(|i| i.revoked.is_some())
        .map(|i| i.serial.clone())
        .collect();
    write_crl(dir, &revoked)
}

fn write_crl(dir: &Path, serials: &[String]) -> Result<PathBuf> {
    let issuer = issuer(dir)?;
    let revoked_certs = serials
        .iter()
        .filter_map(|s| unhex(s))
        .map(|b| RevokedCertParams {
            serial_number: SerialNumber::from_slice(&b),
            revocation_time: now(),
            reason_code: Some(RevocationReason::Unspecified),
            invalidity_date: None,
        })
        .collect();
    let crl_number = SerialNumber::from(now().unix_timestamp() as u64);
    let crl = CertificateRevocationListParams {
        this_update: now() - time::Duration::minutes(5),
        next_update: now() + time::Duration::days(3650),
        crl_number,
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)?;
    let path = dir.join("crl.pem");
    write(&path, &crl.pem()?, false)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_issues_are_recorded_and_revoked() {
        let d = std::env::temp_dir().join(format!("tansa-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        init(&d, "Test CA").unwrap();
        assert!(init(&d, "again").is_err(), "one CA per directory");
        assert!(issue(&d, "../etc/passwd", &Kind::Client, 30).is_err());
        assert!(issue(&d, "", &Kind::Client, 30).is_err());
        issue(&d, "web01", &Kind::Client, 30).unwrap();
        assert!(issue(&d, "web01", &Kind::Client, 30).is_err(), "in force");
        issue(
            &d,
            "server",
            &Kind::Server {
                names: vec!["localhost".into(), "127.0.0.1".into()],
            },
            30,
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("issued/web01.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private");
        revoke(&d, "web01").unwrap();
        let l = list(&d).unwrap();
        assert_eq!(l.len(), 2);
        assert!(l[0].revoked.is_some() && l[1].revoked.is_none());
        // the CRL names the revoked serial
        let crl = read(&d.join("crl.pem")).unwrap();
        let der = rustls::pki_types::CertificateRevocationListDer::from(pem_body(&crl));
        let serial = unhex(&l[0].serial).unwrap();
        assert!(
            der.as_ref().windows(serial.len()).any(|w| w == serial),
            "revoked serial in the CRL"
        );
        issue(&d, "web01", &Kind::Client, 30).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    fn pem_body(pem: &str) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }
}
