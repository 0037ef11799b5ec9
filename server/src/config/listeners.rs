//! Where to listen: `listen = "ADDR"` (or a list) and `[[listeners]]` tables with an address
//! and optional TLS, read into one list of addresses, each with its TLS settings.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `listen = "ADDR"` or `listen = ["ADDR", ...]`.
#[derive(Deserialize, Debug)]
#[serde(
    untagged,
    expecting = "expected an address in quotes (\"127.0.0.1:8080\", \"[::]:80\", \"https://0.0.0.0:443\"), or a list of them"
)]
pub enum Listen {
    One(String),
    Many(Vec<String>),
}

/// One `[[listeners]]` table as written.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Written {
    address: String,
    #[serde(default)]
    tls: Option<WrittenTls>,
}

/// `tls = "self-signed"`, `tls = { cert = "...", key = "..." }`, or a list of such pairs
/// (chosen by the names the client asks for; the first serves clients that name none).
#[derive(Deserialize, Debug)]
#[serde(
    untagged,
    expecting = "expected \"self-signed\", or { cert = \"site.pem\", key = \"site.key\" } with both files, or a list of such tables"
)]
enum WrittenTls {
    Mode(String),
    One(Pair),
    Many(Vec<Pair>),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Pair {
    cert: PathBuf,
    key: PathBuf,
    /// A DER OCSP response for the certificate, stapled to handshakes (nginx's
    /// `ssl_stapling_file`); refreshed by whoever writes it, read again on HUP.
    #[serde(default)]
    ocsp: Option<PathBuf>,
}

/// TLS on one listener, with paths resolved against the configuration's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// A certificate for localhost made in memory at start-up, for trying HTTPS locally.
    SelfSigned,
    /// Certificate chains and their keys (PEM files); the first is the default.
    Files(Vec<CertFiles>),
}

/// A certificate chain and its private key, as PEM files, and an OCSP response to staple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ocsp: Option<PathBuf>,
}

/// The addresses to listen on, each with its TLS (`None`: plain HTTP). `--listen` alone when
/// given, else `listen` then `[[listeners]]`; each parsed, none twice. An address written
/// `https://ADDR` is TLS with a self-signed certificate.
pub fn addresses(
    shown: &str,
    flag: Option<&str>,
    listen: Option<&Listen>,
    tables: &[Written],
    base: &Path,
) -> Result<Vec<(SocketAddr, Option<Tls>)>, String> {
    let mut written: Vec<(&str, Option<Tls>)> = Vec::new();
    match (flag, listen) {
        (Some(one), _) => written.push((one, None)),
        (None, Some(Listen::One(one))) => written.push((one, None)),
        (None, Some(Listen::Many(many))) => written.extend(many.iter().map(|m| (m.as_str(), None))),
        (None, None) => {}
    }
    if flag.is_none() {
        for t in tables {
            written.push((&t.address, tls(shown, t, base)?));
        }
    }
    if written.is_empty() {
        return Err(format!("{shown}: nothing to listen on\n  expected: listen = \"127.0.0.1:8080\" (or a list), or [[listeners]] tables with an `address`"));
    }
    let mut out: Vec<(SocketAddr, Option<Tls>)> = Vec::new();
    for (text, tls) in written {
        let (addr, tls) = parse(shown, text, tls)?;
        if addr.port() != 0 && out.iter().any(|(a, _)| *a == addr) {
            return Err(format!(
                "{shown}: {addr} is named twice in `listen`/[[listeners]]\n  fix: keep one"
            ));
        }
        out.push((addr, tls));
    }
    Ok(out)
}

/// `ADDR` or `https://ADDR` (self-signed TLS, when no other TLS is given).
fn parse(shown: &str, text: &str, tls: Option<Tls>) -> Result<(SocketAddr, Option<Tls>), String> {
    let (bare, tls) = match text.strip_prefix("https://") {
        Some(rest) => (rest.trim_end_matches('/'), tls.or(Some(Tls::SelfSigned))),
        None => (text, tls),
    };
    let addr: SocketAddr = bare.parse().map_err(|_| {
        let zone = if bare.contains('%') {
            " (a zone such as %eth0 cannot be named: use a global address, or [::])"
        } else {
            ""
        };
        format!("{shown}: listen address {text:?} is not an address{zone}\n  expected: IP:PORT such as \"127.0.0.1:8080\" or \"[::]:8443\" (or https://IP:PORT for TLS with a self-signed certificate)")
    })?;
    Ok((addr, tls))
}

/// A table's TLS settings, paths resolved against `base`.
fn tls(shown: &str, t: &Written, base: &Path) -> Result<Option<Tls>, String> {
    let resolve = |p: &Path| base.join(p);
    let files = |pairs: &[Pair]| {
        pairs
            .iter()
            .map(|p| CertFiles {
                cert: resolve(&p.cert),
                key: resolve(&p.key),
                ocsp: p.ocsp.as_deref().map(resolve),
            })
            .collect()
    };
    match &t.tls {
        None => Ok(None),
        Some(WrittenTls::Mode(m)) if m == "self-signed" => Ok(Some(Tls::SelfSigned)),
        Some(WrittenTls::Mode(m)) => Err(format!("{shown}: [[listeners]] {}: tls = {m:?} is not known\n  expected: tls = \"self-signed\", tls = {{ cert = \"site.pem\", key = \"site.key\" }}, or a list of such tables", t.address)),
        Some(WrittenTls::Many(pairs)) if pairs.is_empty() => Err(format!("{shown}: [[listeners]] {}: tls = [] names no certificate\n  fix: give at least one {{ cert = \"...\", key = \"...\" }}", t.address)),
        Some(WrittenTls::One(pair)) => Ok(Some(Tls::Files(files(std::slice::from_ref(pair))))),
        Some(WrittenTls::Many(pairs)) => Ok(Some(Tls::Files(files(pairs)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, flag: Option<&str>) -> Result<Vec<(SocketAddr, Option<Tls>)>, String> {
        #[derive(Deserialize)]
        struct F {
            listen: Option<Listen>,
            #[serde(default)]
            listeners: Vec<Written>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        addresses(
            "s.toml",
            flag,
            f.listen.as_ref(),
            &f.listeners,
            Path::new("/c"),
        )
    }

    #[test]
    fn listen_and_listener_tables_add_up_in_order() {
        let got = read(
            "listen = \"127.0.0.1:80\"\n[[listeners]]\naddress = \"[::]:443\"\ntls = { cert = \"a.pem\", key = \"a.key\" }\n",
            None,
        )
        .unwrap();
        assert_eq!(got[0], ("127.0.0.1:80".parse().unwrap(), None));
        let files = vec![CertFiles {
            cert: "/c/a.pem".into(),
            key: "/c/a.key".into(),
            ocsp: None,
        }];
        assert_eq!(
            got[1],
            ("[::]:443".parse().unwrap(), Some(Tls::Files(files)))
        );
    }

    #[test]
    fn https_prefix_and_self_signed_mean_a_certificate_made_in_memory() {
        let got = read("listen = \"https://127.0.0.1:0\"\n[[listeners]]\naddress = \"[::1]:0\"\ntls = \"self-signed\"\n", None).unwrap();
        assert!(got.iter().all(|(_, t)| *t == Some(Tls::SelfSigned)));
    }

    #[test]
    fn the_flag_replaces_every_listener_and_bad_values_are_refused() {
        let got = read(
            "[[listeners]]\naddress = \"[::]:443\"\ntls = \"self-signed\"\n",
            Some("127.0.0.1:1"),
        )
        .unwrap();
        assert_eq!(got, vec![("127.0.0.1:1".parse().unwrap(), None)]);
        assert!(read("[[listeners]]\naddress = \"x\"\n", None)
            .unwrap_err()
            .contains("not an address"));
        assert!(read("listen = \"[fe80::1%lo]:80\"", None)
            .unwrap_err()
            .contains("a zone such as %eth0 cannot be named"));
        assert!(read(
            "[[listeners]]\naddress = \"127.0.0.1:1\"\ntls = \"yes\"\n",
            None
        )
        .unwrap_err()
        .contains("not known"));
        assert!(read("", None).unwrap_err().contains("nothing to listen on"));
        assert!(read("listen = [\"127.0.0.1:1\", \"127.0.0.1:1\"]", None)
            .unwrap_err()
            .contains("twice"));
    }
}
