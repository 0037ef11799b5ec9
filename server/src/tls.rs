//! TLS for the listeners that ask for it: certificates and keys read from PEM files (or made
//! in memory with `self-signed`), checked at start-up, chosen by the name the client asks
//! for (SNI), and turned into one rustls server configuration per listener.

use crate::config::listeners::{CertFiles, Tls};
use crate::config::Config;
use crate::control::TicketKey;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls::SupportedCipherSuite;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio_rustls::TlsAcceptor;

/// ALPN protocols we speak, in our order of preference (http/1.0 too, as nginx lists it: a
/// client that offers only that is served, not refused with no_application_protocol).
const ALPN: [&[u8]; 3] = [b"h2", b"http/1.1", b"http/1.0"];
/// TLS sessions remembered for resumption by session id (per worker), as nginx's
/// `ssl_session_cache` of a few MiB.
const SESSION_CACHE: usize = 10_240;

/// Per listener (in `Config::listen` order), its acceptor when it speaks TLS; set once per
/// process before privileges are dropped (key files are often readable by root only).
static ACCEPTORS: OnceLock<Vec<Option<TlsAcceptor>>> = OnceLock::new();

/// What a bad OCSP response file does: stop the process (start-up, a reload, a check), or
/// only cost its staple (a worker restarted after a crash, so that a file a cron job broke
/// since the last reload cannot keep the worker down).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Staples {
    Required,
    BestEffort,
}

/// Read every listener's certificates and keep them for `acceptor`; tickets are sealed with
/// `ticket_key` and a `self-signed` listener shows `made` (the master's, shared by every
/// worker; without them, this process makes its own).
pub fn install(
    config: &Config,
    ticket_key: TicketKey,
    staples: Staples,
    made: Option<&SelfSigned>,
) -> Result<(), String> {
    let built = build(config, &ticket_key, staples, made)?;
    let _ = ACCEPTORS.set(built);
    Ok(())
}

/// Read and check every listener's certificates, keeping nothing (`--check-config`).
pub fn check(config: &Config) -> Result<(), String> {
    build(
        config,
        &crate::tickets::TicketKey::new()?,
        Staples::Required,
        None,
    )
    .map(drop)
}

/// The TLS acceptor of listener `i`, when it speaks TLS.
pub fn acceptor(i: usize) -> Option<TlsAcceptor> {
    ACCEPTORS.get()?.get(i)?.clone()
}

fn build(
    config: &Config,
    ticket_key: &TicketKey,
    staples: Staples,
    made: Option<&SelfSigned>,
) -> Result<Vec<Option<TlsAcceptor>>, String> {
    config
        .tls
        .iter()
        .zip(&config.listen)
        .map(|(tls, addr)| match tls {
            None => Ok(None),
            Some(tls) => {
                let certs = certificates(tls, addr, staples, made)?;
                server_config(certs, ticket_key, config.http2)
                    .map(|c| Some(TlsAcceptor::from(Arc::new(c))))
            }
        })
        .collect()
}

/// The certificates a listener serves, the default (for clients that name no host) first.
fn certificates(
    tls: &Tls,
    addr: &std::net::SocketAddr,
    staples: Staples,
    made: Option<&SelfSigned>,
) -> Result<Vec<Arc<CertifiedKey>>, String> {
    match tls {
        Tls::SelfSigned => {
            log::warn!("TLS on {addr}: a self-signed certificate for localhost, made in memory; clients will not trust it (curl -k). For local testing only: give cert and key files for a real site");
            let made = match made {
                Some(m) => m.certified(),
                None => SelfSigned::new()?.certified(),
            };
            made.map(|c| vec![Arc::new(c)])
        }
        Tls::Files(files) => files
            .iter()
            .map(|f| load(f, staples).map(Arc::new))
            .collect(),
    }
}

/// rustls with ring, TLS 1.3 and 1.2 only (its safe cipher suites, in our order), ALPN h2
/// then http/1.1, resumption by session id (per worker) and by ticket (on any worker).
fn server_config(
    certs: Vec<Arc<CertifiedKey>>,
    ticket_key: &TicketKey,
    http2: bool,
) -> Result<ServerConfig, String> {
    let provider = provider();
    let suites = provider.cipher_suites.clone();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { certs, suites }));
    let offered = ALPN.iter().filter(|p| http2 || **p != b"h2");
    config.alpn_protocols = offered.map(|p| p.to_vec()).collect();
    // Our cipher suite order (AEADs with forward secrecy, see `provider`) wins over the
    // client's, as nginx's ssl_prefer_server_ciphers.
    config.ignore_client_order = true;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    config.ticketer = Arc::new(crate::tickets::SharedTicketer::new(ticket_key));
    Ok(config)
}

/// ring's suites (all of them) with AES-128-GCM before AES-256-GCM, as Go's crypto/tls
/// (Caddy) prefers them and browsers offer them: the suite RFC 8446 §9.1 makes mandatory,
/// four fewer AES rounds a block, and SHA-256 for the key schedule, which CPUs with the SHA
/// extensions compute in hardware (ring's SHA-384 has a fast path on Intel only). ChaCha20
/// stays last, and the client's order does not count, even when it lists ChaCha20 first
/// (Go then takes ChaCha20; rustls' choice has no such rule).
fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::cipher_suite::*;
    let suites = vec![
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(CryptoProvider {
        cipher_suites: suites,
        ..rustls::crypto::ring::default_provider()
    })
}

/// Picks the first certificate valid for the name the client asks for that the client can
/// also verify (its key signs with a scheme the client offers, under a cipher suite both
/// take), so an ECDSA and an RSA certificate for one site serve old and new clients alike,
/// as nginx's two `ssl_certificate` lines do; else the first valid for the name. A client
/// that names none, or no name that fits, gets the first it can verify, else the first (as
/// nginx's default server).
#[derive(Debug)]
struct BySni {
    certs: Vec<Arc<CertifiedKey>>,
    /// The suites the server offers (`provider`'s).
    suites: Vec<SupportedCipherSuite>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let wanted = hello
            .server_name()
            .and_then(|n| ServerName::try_from(n).ok());
        let fits = |c: &&Arc<CertifiedKey>| {
            let Some(name) = &wanted else { return false };
            let Some(der) = c.cert.first() else {
                return false;
            };
            webpki::EndEntityCert::try_from(der)
                .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(name).is_ok())
        };
        let usable = |c: &&Arc<CertifiedKey>| verifiable(c, &hello, &self.suites);
        let named: Vec<&Arc<CertifiedKey>> = self.certs.iter().filter(fits).collect();
        let chosen = match named.first() {
            Some(&first) => named.iter().copied().find(usable).unwrap_or(first),
            None => self.certs.iter().find(usable).or(self.certs.first())?,
        };
        Some(Arc::clone(chosen))
    }
}

/// Can the client of `hello` verify an answer signed by `cert`'s key: one of its signature
/// schemes, and one of its cipher suites that a key of that kind can serve (TLS 1.2's name
/// the key's kind; TLS 1.3's take any)?
fn verifiable(cert: &CertifiedKey, hello: &ClientHello<'_>, ours: &[SupportedCipherSuite]) -> bool {
    let algorithm = cert.key.algorithm();
    let suite_fits = ours.iter().any(|s| {
        hello.cipher_suites().contains(&s.suite()) && s.usable_for_signature_algorithm(algorithm)
    });
    suite_fits && cert.key.choose_scheme(hello.signature_schemes()).is_some()
}

/// A certificate for localhost, 127.0.0.1 and ::1 made in memory, and its key (DER). The
/// master makes one and hands it to every worker it starts, of every reload, so clients
/// see one certificate (one they were told to trust, or resume a session with) whichever
/// worker accepts them.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SelfSigned {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl SelfSigned {
    /// A certificate with a fresh key.
    pub fn new() -> Result<SelfSigned, String> {
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?;
        Ok(SelfSigned {
            cert: made.cert.der().to_vec(),
            key: made.key_pair.serialize_der(),
        })
    }

    fn certified(&self) -> Result<CertifiedKey, String> {
        let key = PrivateKeyDer::Pkcs8(self.key.clone().into());
        CertifiedKey::from_der(vec![self.cert.clone().into()], key, &provider())
            .map_err(|e| format!("cannot use the self-signed certificate: {e}"))
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SelfSigned(..)")
    }
}

/// One certificate chain and its key from PEM files, checked: present, readable, parsable,
/// valid today, and the key is the certificate's.
fn load(files: &CertFiles, staples: Staples) -> Result<CertifiedKey, String> {
    let chain = read_chain(&files.cert)?;
    check_dates(&files.cert, &chain[0])?;
    let key = read_key(&files.key)?;
    let mut certified =
        CertifiedKey::from_der(chain, key, &provider()).map_err(|e| mismatch(files, e))?;
    certified.ocsp = match files.ocsp.as_deref().map(read_ocsp).transpose() {
        Err(e) if staples == Staples::BestEffort => {
            log::warn!("{e}\n  this worker serves the certificate without a staple until the file is fixed and the server reloaded");
            None
        }
        read => read?,
    };
    Ok(certified)
}

/// An OCSP response to staple, as `openssl ocsp -respout` writes it: DER, and successful
/// (its first field, `responseStatus`, RFC 6960 §4.2.1, is 0). Its dates are the writer's
/// to keep fresh, as with nginx's `ssl_stapling_file`.
fn read_ocsp(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let der = read(path, "OCSP response")?;
    // SEQUENCE (short or long length), then ENUMERATED 1 byte: 30 LL 0a 01 SS.
    let body = match der.get(1) {
        Some(&len) if len < 0x80 => der.get(2..),
        Some(&len) => der.get(2 + usize::from(len & 0x7f)..),
        None => None,
    };
    match (der.first(), body.and_then(|b| b.get(..3))) {
        (Some(0x30), Some([0x0a, 0x01, 0])) => Ok(der),
        (Some(0x30), Some([0x0a, 0x01, status])) => Err(format!("OCSP response file {shown}: the responder refused (status {status})\n  fix: ask the certificate's OCSP responder again (openssl ocsp -issuer CA.pem -cert SITE.pem -url URL -respout FILE) and reload")),
        _ => Err(format!("OCSP response file {shown} is not a DER OCSP response\n  expected: the file `openssl ocsp ... -respout FILE` writes (not PEM, not the request)")),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = read(path, "certificate")?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate file {shown}: {e}\n  expected: PEM \"BEGIN CERTIFICATE\" blocks, the site's certificate first, then its intermediates"))?;
    if chain.is_empty() {
        return Err(format!("certificate file {shown} holds no certificate\n  expected: PEM \"BEGIN CERTIFICATE\" blocks, the site's certificate first, then its intermediates (a key file given as `cert`?)"));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!("private key file {}: no private key in it ({e})\n  expected: one PEM \"BEGIN PRIVATE KEY\" (or RSA/EC PRIVATE KEY) block, unencrypted", path.display())
    })
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!("cannot read the {what} file {}: {e}\n  fix: correct `cert`, `key` or `ocsp` in [[listeners]] (relative paths start at the configuration's folder), or make the file readable by the user that starts the server (the master reads it before workers drop privileges)", path.display())
    })
}

/// Refuse a certificate outside its validity period, naming the dates.
fn check_dates(path: &Path, der: &CertificateDer<'_>) -> Result<(), String> {
    let shown = path.display();
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("certificate file {shown}: the first certificate cannot be read: {e}\n  expected: a DER X.509 certificate in PEM"))?;
    let validity = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        return Err(format!("certificate file {shown} expired on {}\n  fix: renew the certificate (clients refuse an expired one) and reload", validity.not_after));
    }
    if now < validity.not_before {
        return Err(format!("certificate file {shown} is not valid before {}\n  fix: check the machine's clock, or use a certificate valid now", validity.not_before));
    }
    Ok(())
}

fn mismatch(files: &CertFiles, e: rustls::Error) -> String {
    let (cert, key) = (files.cert.display(), files.key.display());
    match e {
        rustls::Error::InconsistentKeys(_) => format!("private key file {key} does not match certificate file {cert}\n  expected: the key the certificate was issued for\n  fix: pair each `cert` with its own `key` in [[listeners]]"),
        other => format!("private key file {key} (for {cert}) cannot be used: {other}\n  expected: an RSA, ECDSA (P-256/P-384) or Ed25519 key"),
    }
}

#[cfg(test)]
mod tests {
    use super::read_ocsp;

    #[test]
    fn an_ocsp_file_must_be_a_successful_der_response() {
        let dir = std::env::temp_dir().join(format!("cases-ocsp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            read_ocsp(&p)
        };
        assert!(file("short", &[0x30, 0x03, 0x0a, 0x01, 0x00]).is_ok());
        assert!(file("long", &[0x30, 0x82, 0x00, 0x03, 0x0a, 0x01, 0x00]).is_ok());
        let refused = file("refused", &[0x30, 0x03, 0x0a, 0x01, 0x06]).unwrap_err();
        assert!(refused.contains("refused (status 6)"), "{refused}");
        for (name, bytes) in [
            ("pem", &b"-----BEGIN"[..]),
            ("empty", &[]),
            ("cut", &[0x30]),
        ] {
            let e = file(name, bytes).unwrap_err();
            assert!(e.contains("is not a DER OCSP response"), "{name}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
