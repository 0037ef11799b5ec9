//! TLS listeners: HTTPS with HTTP/1.1 and HTTP/2 checked with curl and openssl s_client,
//! certificates chosen by SNI, certificates reloaded on HUP, the start-up errors for bad
//! certificate files, and the self-signed mode. Certificates are made by the test (rcgen): a
//! test CA and leaf certificates for names under `.test`.

use crate::support::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A test certificate authority; its certificate is `ca.pem` in the test's folder.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    pub pem: PathBuf,
}

impl Ca {
    pub fn new(dir: &TempDir) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "cases test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let pem = dir.write("ca.pem", cert.pem());
        Ca { cert, key, pem }
    }

    /// A leaf for `names` (the first is its common name), written as `<file>.pem` and
    /// `<file>.key`; `expired` makes one that ended in 2000.
    pub fn leaf(
        &self,
        dir: &TempDir,
        file: &str,
        names: &[&str],
        expired: bool,
    ) -> (PathBuf, PathBuf) {
        self.leaf_with(dir, file, names, expired, KeyPair::generate().unwrap())
    }

    /// A leaf as `leaf` makes one, with an RSA key (2048 bits, made by openssl: rcgen with
    /// ring signs with RSA but cannot make the key).
    pub fn rsa_leaf(&self, dir: &TempDir, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let path = dir.path().join(format!("{file}-rsa.key"));
        let made = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&path)
            .output()
            .expect("run openssl");
        assert!(made.status.success(), "openssl genpkey failed");
        let pem = std::fs::read_to_string(&path).unwrap();
        let key = KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap();
        self.leaf_with(dir, file, names, false, key)
    }

    fn leaf_with(
        &self,
        dir: &TempDir,
        file: &str,
        names: &[&str],
        expired: bool,
        key: KeyPair,
    ) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        if expired {
            params.not_before = rcgen::date_time_ymd(1999, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 1, 1);
        }
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (
            dir.write(&format!("{file}.pem"), cert.pem()),
            dir.write(&format!("{file}.key"), key.serialize_pem()),
        )
    }
}

/// `tls = { cert = ..., key = ... }` for a pair of files.
pub fn pair((cert, key): &(PathBuf, PathBuf)) -> String {
    format!(
        "{{ cert = {:?}, key = {:?} }}",
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// A configuration whose only listener is TLS on `address` with `tls` (TOML), the shipped
/// chain, and `extra` TOML.
pub fn tls_config(dir: &TempDir, root: &Path, address: &str, tls: &str, extra: &str) -> PathBuf {
    let text = format!(
        "root = {:?}\nplugin_dirs = [{:?}]\ncases = {CHAIN}\n{extra}\n[[listeners]]\naddress = {address:?}\ntls = {tls}\n",
        root.display().to_string(),
        plugins_dir().display().to_string(),
    );
    dir.write("server.toml", cgi_as_root(&text))
}

/// A server with one TLS listener on 127.0.0.1 serving a certificate for site.test; the CA.
pub fn https_server(extra: &str) -> (Server, Ca) {
    let dir = TempDir::new("tls");
    let root = fixture_root(&dir);
    let ca = Ca::new(&dir);
    let site = ca.leaf(&dir, "site", &["site.test"], false);
    tls_config(&dir, &root, "127.0.0.1:0", &pair(&site), extra);
    (Server::start_config(dir, root, &[]), ca)
}

/// curl over HTTPS to `name` (resolved to the server's address) with the test CA; returns
/// stdout (the body, then a last line from `-w`) and whether curl succeeded.
pub fn curl(s: &Server, ca: &Ca, name: &str, path: &str, args: &[&str]) -> (String, bool) {
    let port = s.addr.port();
    let ip = match s.addr.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&ca.pem)
        .args(["--resolve", &format!("{name}:{port}:{ip}")])
        .args(args)
        .args(["-w", "\n%{http_version} %{http_code}"])
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .expect("run curl");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.success())
}

#[test]
fn curl_gets_a_page_over_https_with_http2_and_with_http1_1() {
    let (s, ca) = https_server("");
    let (h2, ok) = curl(&s, &ca, "site.test", "/plain.html", &["--http2"]);
    assert!(ok, "{h2}\n{}", s.log());
    assert!(h2.contains("Test page.") && h2.ends_with("\n2 200"), "{h2}");
    let (h1, ok) = curl(&s, &ca, "site.test", "/plain.html", &["--http1.1"]);
    assert!(ok, "{h1}");
    assert!(
        h1.contains("Test page.") && h1.ends_with("\n1.1 200"),
        "{h1}"
    );
}

#[test]
fn a_tls_listener_on_ipv6_loopback_serves() {
    let dir = TempDir::new("tls6");
    let root = fixture_root(&dir);
    let ca = Ca::new(&dir);
    let site = ca.leaf(&dir, "site", &["site.test"], false);
    tls_config(&dir, &root, "[::1]:0", &pair(&site), "");
    let s = Server::start_config(dir, root, &[]);
    assert!(s.addr.is_ipv6(), "{}", s.addr);
    let (out, ok) = curl(&s, &ca, "site.test", "/plain.html", &[]);
    assert!(ok && out.contains("Test page."), "{out}");
}

#[test]
fn self_signed_mode_serves_https_with_no_files_and_says_so() {
    let s = Server::start_on("https://127.0.0.1:0", CHAIN, "");
    let out = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--max-time",
            "20",
            "--http2",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .arg(format!("https://localhost:{}/plain.html", s.addr.port()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Test page.") && text.ends_with("\n2 200"),
        "{text}"
    );
    assert!(
        s.log_contains("self-signed certificate for localhost"),
        "{}",
        s.log()
    );
}

#[test]
fn every_worker_shows_the_same_self_signed_certificate_and_a_reload_keeps_it() {
    // Made by each worker, it differed from connection to connection: a client told to
    // trust the one it saw (curl --cacert, Go with SSL_CERT_FILE) failed on the others.
    let s = Server::start_on("https://127.0.0.1:0", CHAIN, "workers = 2\n");
    let cert = || {
        let out = s_client(&s, &[]);
        let begin = out.find("-----BEGIN CERTIFICATE-----");
        let end = out.find("-----END CERTIFICATE-----");
        match (begin, end) {
            (Some(b), Some(e)) => out[b..e].to_string(),
            _ => panic!("no certificate in {out}\n{}", s.log()),
        }
    };
    let first = cert();
    for _ in 0..6 {
        assert_eq!(cert(), first);
    }
    // New workers, of a reload, show it too.
    s.signal(rustix::process::Signal::HUP);
    let reloaded = || s.log().contains("] reloaded ");
    assert!(
        within(std::time::Duration::from_secs(10), reloaded),
        "{}",
        s.log()
    );
    for _ in 0..4 {
        assert_eq!(cert(), first);
    }
}

#[test]
fn plain_http_to_a_tls_port_gets_a_plain_400_saying_so_and_tls_goes_on() {
    // As nginx and Go's server answer, where a TLS alert would leave the client guessing.
    let s = Server::start_on("https://127.0.0.1:0", CHAIN, "");
    // Whatever the first byte, unless it starts a TLS handshake (nginx's test).
    for req in [
        "GET /plain.html HTTP/1.1",
        "get /plain.html HTTP/1.1",
        "\r\nGET / HTTP/1.1",
    ] {
        let r = s.raw(&format!("{req}\r\nHost: t\r\n\r\n"));
        assert_eq!(r.status, 400, "{req:?}: {}", r.raw_head);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(r.header("date").is_some(), "{}", r.raw_head);
        assert!(r.text().contains("https://"), "{}", r.text());
    }
    let out = Command::new("curl")
        .args([
            "-sSk",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("https://localhost:{}/plain.html", s.addr.port()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}

/// Every way an HTTP/1.1 connection over TLS ends (the client's Connection: close, an
/// HTTP/1.0 answer that only the close delimits, the keep-alive timeout) ends with
/// close_notify (RFC 8446 §6.1), so a client can tell the end from a cut (RFC 9112 §9.8).
/// Python's ssl with `suppress_ragged_eofs=False` raises on an EOF without it.
#[test]
fn tls_connections_end_with_close_notify() {
    let s = Server::start_on(
        "https://127.0.0.1:0",
        CHAIN,
        "[limits]\nkeepalive_timeout = 1.0\n",
    );
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
port = int(sys.argv[1])
for req in [b"GET /plain.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            b"GET /cgi-bin/hello.sh HTTP/1.0\r\n\r\n",
            b"GET /plain.html HTTP/1.1\r\nHost: t\r\n\r\n"]:
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), suppress_ragged_eofs=False)
    s.settimeout(10); s.sendall(req); got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
        print("close_notify", got.split(b"\r\n")[0].decode())
    except ssl.SSLError as e:
        print("cut", e)
"#;
    let out = Command::new("timeout")
        .args(["30", "python3", "-c", script])
        .arg(s.addr.port().to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "close_notify HTTP/1.1 200 OK",
            "close_notify HTTP/1.1 200 OK",
            "close_notify HTTP/1.1 200 OK"
        ],
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TLS 1.2 client asking to renegotiate gets the no_renegotiation alert at once (RFC 5246
/// §7.2.2, as nginx sends it), not a wait for an answer that never comes.
#[test]
fn a_renegotiation_is_refused_at_once_with_an_alert() {
    refused_renegotiation("");
}

/// The same in the middle of a request head: the alert goes out while the server waits for
/// the rest (tlsfuzzer's "renegotiation with incomplete GET"; it waited for the client's end).
#[test]
fn a_renegotiation_inside_a_request_head_is_refused_at_once_too() {
    refused_renegotiation("GET /plain.html HTTP/1.1\r\nHost: t\r\n");
}

/// Ask to renegotiate after sending `first` (a head's beginning, or nothing); the alert
/// must come within a few seconds.
fn refused_renegotiation(first: &str) {
    use std::io::Write;
    let s = Server::start_on("https://127.0.0.1:0", CHAIN, "");
    // Without -ign_eof: that would make `R` a line of data rather than a command.
    let mut child = s_client_child(&s, &["-tls1_2", "-alpn", "http/1.1"]);
    let mut stdin = child.stdin.take().unwrap();
    // s_client takes commands once its handshake is done, each at the start of a read.
    std::thread::sleep(std::time::Duration::from_millis(700));
    if !first.is_empty() {
        stdin.write_all(first.as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let asked = std::time::Instant::now();
    stdin.write_all(b"R\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("RENEGOTIATING"), "{text}");
    assert!(text.contains("no renegotiation"), "{text}");
    // The header timeout (20 s), or s_client's own 10, is what ended it before.
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    drop(stdin);
}

/// TLS records that bring no request (a KeyUpdate every 300 ms) do not keep an idle
/// connection open past keepalive_timeout (each put the deadline off by the whole wait).
#[test]
fn key_updates_do_not_keep_an_idle_tls_connection_open() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let s = Server::start_on(
        "https://127.0.0.1:0",
        CHAIN,
        "[limits]\nkeepalive_timeout = 1.0\n",
    );
    let mut child = s_client_child(&s, &["-tls1_3", "-alpn", "http/1.1"]);
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    stdin
        .write_all(b"GET /plain.html HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    // s_client's `k` (at the start of a read of its input) sends a KeyUpdate.
    while start.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(300));
        if child.try_wait().unwrap().is_some() || stdin.write_all(b"k\n").is_err() {
            break;
        }
    }
    let closed_after = start.elapsed();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("HTTP/1.1 200"), "{text}");
    assert!(text.contains("KEYUPDATE"), "{text}");
    assert!(
        closed_after < Duration::from_secs(4),
        "{closed_after:?}\n{text}"
    );
}

/// What `openssl s_client` says about one handshake with the server.
pub fn s_client(s: &Server, extra: &[&str]) -> String {
    s_client_saying(s, extra, "")
}

/// `s_client` sending `input` and reading until the server closes.
pub fn s_client_saying(s: &Server, extra: &[&str], input: &str) -> String {
    use std::io::Write;
    let ign_eof = (!input.is_empty()).then_some("-ign_eof");
    let mut child = s_client_child(s, &[extra, ign_eof.as_slice()].concat());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `openssl s_client` connecting to the server (10 s at most), its stdin, stdout and stderr
/// piped.
fn s_client_child(s: &Server, extra: &[&str]) -> std::process::Child {
    Command::new("timeout")
        .args(["10", "openssl", "s_client", "-connect"])
        .arg(s.addr.to_string())
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl")
}

#[test]
fn an_ecdsa_and_an_rsa_certificate_for_one_name_serve_clients_of_either_kind() {
    // As nginx's two ssl_certificate lines: the certificate whose key the client can
    // verify, not always the first listed for the name.
    let dir = TempDir::new("tls-dual");
    let root = fixture_root(&dir);
    let ca = Ca::new(&dir);
    let ecdsa = ca.leaf(&dir, "ec", &["site.test"], false);
    let rsa = ca.rsa_leaf(&dir, "rsa", &["site.test"]);
    let tls = format!("[{}, {}]", pair(&ecdsa), pair(&rsa));
    tls_config(&dir, &root, "127.0.0.1:0", &tls, "");
    let s = Server::start_config(dir, root, &[]);
    let sni = ["-servername", "site.test"];
    for (sigalgs, kind) in [
        ("RSA-PSS+SHA256:RSA+SHA256", "RSA-PSS"),
        ("ECDSA+SHA256", "ECDSA"),
    ] {
        let out = s_client(&s, &[&sni[..], &["-tls1_3", "-sigalgs", sigalgs]].concat());
        assert!(
            out.contains(&format!("Peer signature type: {kind}")),
            "{sigalgs}: {out}"
        );
    }
    // TLS 1.2 with RSA suites only: the suite names the key's kind.
    let rsa_only = ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"];
    let out = s_client(&s, &[&sni[..], &rsa_only].concat());
    assert!(out.contains("Peer signature type: RSA-PSS"), "{out}");
    // No name: the first the client can verify.
    let out = s_client(
        &s,
        &["-noservername", "-tls1_3", "-sigalgs", "RSA-PSS+SHA256"],
    );
    assert!(out.contains("Peer signature type: RSA-PSS"), "{out}");
}

#[test]
fn tls_1_2_and_1_3_are_accepted_1_0_and_1_1_refused() {
    let (s, _ca) = https_server("");
    // SECLEVEL=0: the client would offer the old versions; the server must say no.
    let old = ["-cipher", "DEFAULT@SECLEVEL=0"];
    for v in ["-tls1", "-tls1_1"] {
        let out = s_client(&s, &[&[v][..], &old].concat());
        assert!(out.contains("Cipher is (NONE)"), "{v}: {out}");
    }
    for (v, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let out = s_client(&s, &[v, "-servername", "site.test"]);
        assert!(
            out.contains(&format!("New, {name}, Cipher is")),
            "{v}: {out}"
        );
    }
}

/// The server's suite order wins, and it puts AES-128-GCM first (as Go's crypto/tls, so
/// Caddy, does): a client listing AES-256-GCM first (OpenSSL's default order) gets
/// AES-128-GCM with TLS 1.3 and with TLS 1.2, and a client offering only AES-256 or only
/// ChaCha20 still gets it.
#[test]
fn the_server_prefers_aes_128_gcm_whatever_order_the_client_offers() {
    let (s, _ca) = https_server("");
    let cases: [(&[&str], &str); 4] = [
        (
            &["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"],
            "Cipher is TLS_AES_128_GCM_SHA256",
        ),
        (
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"],
            "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
        (
            &["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"],
            "Cipher is TLS_AES_256_GCM_SHA384",
        ),
        (
            &["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
            "Cipher is TLS_CHACHA20_POLY1305_SHA256",
        ),
    ];
    for (args, want) in cases {
        let out = s_client(&s, args);
        assert!(out.contains(want), "{args:?}: {out}");
    }
}

#[test]
fn alpn_chooses_h2_when_offered_and_http1_1_otherwise() {
    let (s, _ca) = https_server("");
    let both = s_client(&s, &["-alpn", "h2,http/1.1"]);
    assert!(both.contains("ALPN protocol: h2"), "{both}");
    let one = s_client(&s, &["-alpn", "http/1.1"]);
    assert!(one.contains("ALPN protocol: http/1.1"), "{one}");
    // A client that offers only http/1.0 (curl --http1.0) is served, as nginx serves it.
    let old = s_client_saying(
        &s,
        &["-alpn", "http/1.0"],
        "GET /plain.html HTTP/1.0\r\n\r\n",
    );
    assert!(old.contains("ALPN protocol: http/1.0"), "{old}");
    assert!(old.contains("HTTP/1.1 200 OK"), "{old}");
}

/// Start with `tls` on the listener and expect a refusal naming `file` and saying `what`.
fn refused(dir: TempDir, tls: &str, file: &Path, what: &str) {
    let root = fixture_root(&dir);
    let cfg = tls_config(&dir, &root, "127.0.0.1:0", tls, "");
    let exit = run_to_exit(&["--config", cfg.to_str().unwrap()]);
    assert_ne!(exit.code, Some(0), "{}", exit.stderr);
    let said = exit.stderr;
    assert!(said.contains(&file.display().to_string()), "{said}");
    assert!(said.contains(what), "{said}");
    assert!(
        said.contains("fix:") || said.contains("expected:"),
        "{said}"
    );
}

/// An OCSP response for the certificate `leaf`, signed by the CA (status unknown: the
/// responder's index is empty), as `openssl ocsp -respout` writes it.
fn ocsp_response(dir: &TempDir, ca: &Ca, leaf: &Path) -> PathBuf {
    let key = dir.write("ca.key", ca.key.serialize_pem());
    let index = dir.write("index.txt", "");
    let (req, resp) = (dir.path().join("req.der"), dir.path().join("resp.der"));
    let openssl = |args: &[&std::ffi::OsStr]| {
        let out = Command::new("openssl")
            .arg("ocsp")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (ca_pem, leaf) = (ca.pem.as_os_str(), leaf.as_os_str());
    openssl(&[
        "-issuer".as_ref(),
        ca_pem,
        "-cert".as_ref(),
        leaf,
        "-no_nonce".as_ref(),
        "-reqout".as_ref(),
        req.as_os_str(),
    ]);
    openssl(&[
        "-index".as_ref(),
        index.as_os_str(),
        "-rsigner".as_ref(),
        ca_pem,
        "-rkey".as_ref(),
        key.as_os_str(),
        "-CA".as_ref(),
        ca_pem,
        "-reqin".as_ref(),
        req.as_os_str(),
        "-respout".as_ref(),
        resp.as_os_str(),
        "-ndays".as_ref(),
        "1".as_ref(),
    ]);
    resp
}

/// `tls = { cert, key, ocsp }` for a pair and an OCSP response file.
fn with_ocsp((cert, key): &(PathBuf, PathBuf), ocsp: &Path) -> String {
    let text = |p: &Path| p.display().to_string();
    format!(
        "{{ cert = {:?}, key = {:?}, ocsp = {:?} }}",
        text(cert),
        text(key),
        text(ocsp)
    )
}

/// A server whose TLS listener staples an OCSP response for site.test, with `extra` TOML;
/// the response's file.
fn stapling_server(tag: &str, extra: &str) -> (Server, PathBuf) {
    let dir = TempDir::new(tag);
    let root = fixture_root(&dir);
    let ca = Ca::new(&dir);
    let site = ca.leaf(&dir, "site", &["site.test"], false);
    let resp = ocsp_response(&dir, &ca, &site.0);
    tls_config(&dir, &root, "127.0.0.1:0", &with_ocsp(&site, &resp), extra);
    (Server::start_config(dir, root, &[]), resp)
}

#[test]
fn an_ocsp_response_given_is_stapled_to_handshakes_that_ask_for_it() {
    let (s, _) = stapling_server("tlsocsp", "");
    let out = s_client(&s, &["-status", "-servername", "site.test"]);
    assert!(out.contains("OCSP Response Status: successful"), "{out}");
    // Without the file nothing is stapled.
    let (plain, _) = https_server("");
    let out = s_client(&plain, &["-status", "-servername", "site.test"]);
    assert!(out.contains("OCSP response: no response sent"), "{out}");
}

#[test]
fn a_worker_restarted_after_a_crash_serves_without_a_staple_the_file_broke_since() {
    // A cron job rewrites the OCSP file; a bad write must not keep a crashed worker down
    // (start-up and reloads still refuse it).
    let (s, resp) = stapling_server("tlsocsprespawn", "workers = 1\n");
    let before = s.workers(1);
    std::fs::write(&resp, "not an OCSP response").unwrap();
    signal_pid(before[0], rustix::process::Signal::KILL);
    assert!(within(std::time::Duration::from_secs(10), || {
        let now = s.workers(1);
        now.len() == 1 && !now.contains(&before[0])
    }));
    let out = s_client(&s, &["-status", "-servername", "site.test"]);
    assert!(out.contains("OCSP response: no response sent"), "{out}");
    assert!(
        s.log_contains("without a staple until the file is fixed"),
        "{}",
        s.log()
    );
}

#[test]
fn startup_refuses_an_ocsp_file_that_is_not_a_response() {
    let dir = TempDir::new("tlsocspbad");
    let ca = Ca::new(&dir);
    let site = ca.leaf(&dir, "site", &["site.test"], false);
    let tls = with_ocsp(&site, &site.0);
    refused(dir, &tls, &site.0, "is not a DER OCSP response");
}

#[test]
fn startup_refuses_a_missing_certificate_file_naming_it() {
    let dir = TempDir::new("tlsmiss");
    let cert = dir.path().join("nowhere.pem");
    let key = dir.path().join("nowhere.key");
    refused(
        dir,
        &pair(&(cert.clone(), key)),
        &cert,
        "cannot read the certificate file",
    );
}

#[test]
fn startup_refuses_a_key_that_does_not_match_its_certificate() {
    let dir = TempDir::new("tlsmismatch");
    let ca = Ca::new(&dir);
    let (cert, _) = ca.leaf(&dir, "a", &["a.test"], false);
    let (_, other_key) = ca.leaf(&dir, "b", &["b.test"], false);
    refused(
        dir,
        &pair(&(cert, other_key.clone())),
        &other_key,
        "does not match certificate",
    );
}

#[test]
fn startup_refuses_an_expired_certificate_with_its_date() {
    let dir = TempDir::new("tlsexpired");
    let ca = Ca::new(&dir);
    let old = ca.leaf(&dir, "old", &["old.test"], true);
    refused(dir, &pair(&old), &old.0, "expired on");
}

#[test]
fn startup_refuses_a_certificate_file_that_holds_no_certificate() {
    let dir = TempDir::new("tlsnocert");
    let ca = Ca::new(&dir);
    let (_, key) = ca.leaf(&dir, "a", &["a.test"], false);
    // The key given as the certificate, a common slip.
    refused(
        dir,
        &pair(&(key.clone(), key.clone())),
        &key,
        "holds no certificate",
    );
}

#[test]
fn check_config_reports_a_bad_certificate_too() {
    let dir = TempDir::new("tlscheck");
    let root = fixture_root(&dir);
    let missing = dir.path().join("gone.pem");
    let cfg = tls_config(
        &dir,
        &root,
        "127.0.0.1:0",
        &pair(&(missing.clone(), missing.clone())),
        "",
    );
    let exit = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(exit.code, Some(1), "{}", exit.stderr);
    assert!(exit.stderr.contains("gone.pem"), "{}", exit.stderr);
}

/// The subject line s_client prints for the certificate it got.
fn subject(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or("no subject")
}

#[test]
fn sni_picks_the_certificate_for_the_name_and_the_first_without_one() {
    let dir = TempDir::new("tlssni");
    let root = fixture_root(&dir);
    let ca = Ca::new(&dir);
    let a = ca.leaf(&dir, "a", &["a.test"], false);
    let b = ca.leaf(&dir, "b", &["b.test", "*.b.test"], false);
    let tls = format!("[{}, {}]", pair(&a), pair(&b));
    tls_config(&dir, &root, "127.0.0.1:0", &tls, "");
    let s = Server::start_config(dir, root, &[]);
    let by_name = |name: &str| subject(&s_client(&s, &["-servername", name])).to_string();
    assert!(
        by_name("b.test").contains("CN = b.test"),
        "{}",
        by_name("b.test")
    );
    assert!(by_name("www.b.test").contains("CN = b.test"));
    assert!(by_name("a.test").contains("CN = a.test"));
    assert!(by_name("other.test").contains("CN = a.test"));
    let none = s_client(&s, &["-noservername"]);
    assert!(subject(&none).contains("CN = a.test"), "{none}");
    // And the page itself comes over either name, verified against the CA by curl.
    for name in ["a.test", "www.b.test"] {
        let (out, ok) = curl(&s, &ca, name, "/plain.html", &[]);
        assert!(ok && out.contains("Test page."), "{name}: {out}");
    }
}

fn sighup(s: &Server) {
    let pid = rustix::process::Pid::from_raw(s.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
}

/// A download of `path` at 1.5 MB/s over HTTP/2 in the background: its output and success.
fn slow_download(s: &Server, ca: &Ca, path: &str) -> std::thread::JoinHandle<(String, bool)> {
    let (port, cafile, path) = (s.addr.port(), ca.pem.clone(), path.to_string());
    std::thread::spawn(move || {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--http2",
                "--max-time",
                "30",
                "--limit-rate",
                "1500k",
            ])
            .arg("--cacert")
            .arg(cafile)
            .args(["--resolve", &format!("site.test:{port}:127.0.0.1")])
            .args(["-o", "/dev/null", "-w", "%{http_code} %{size_download}"])
            .arg(format!("https://site.test:{port}{path}"))
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.success(),
        )
    })
}

#[test]
fn sighup_serves_new_certificates_and_downloads_in_flight_finish() {
    let dir = TempDir::new("tlsreload");
    let root = fixture_root(&dir);
    dir.write("www/big.bin", vec![7u8; 6 << 20]);
    let ca = Ca::new(&dir);
    let one = ca.leaf(&dir, "site", &["site.test", "one.test"], false);
    tls_config(&dir, &root, "127.0.0.1:0", &pair(&one), "workers = 1");
    let s = Server::start_config(dir, root, &[]);
    assert!(subject(&s_client(&s, &["-servername", "site.test"])).contains("CN = site.test"));
    let download = slow_download(&s, &ca, "/big.bin");
    std::thread::sleep(std::time::Duration::from_millis(500));
    // New files at the same paths, then HUP.
    ca.leaf(&s.dir, "site", &["two.test", "site.test"], false);
    sighup(&s);
    assert!(s.log_contains("] reloaded "), "{}", s.log());
    let now = s_client(&s, &["-servername", "site.test"]);
    assert!(subject(&now).contains("CN = two.test"), "{now}");
    let (out, ok) = download.join().unwrap();
    assert!(ok, "{out}\n{}", s.log());
    assert_eq!(out, format!("200 {}", 6 << 20));
}

/// A session made with TLS version `v` (`-tls1_2`), saved to a file: its path.
fn session_saved(s: &Server, v: &str) -> String {
    let file = s.dir.path().join(format!("session{v}"));
    let file = file.to_str().unwrap().to_string();
    // A request answered before the close: the TLS 1.3 tickets arrive before it.
    let ask = "GET /plain.html HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n";
    let first = s_client_saying(s, &[v, "-sess_out", &file, "-servername", "site.test"], ask);
    assert!(first.contains("New, TLSv1."), "{v}: {first}");
    file
}

/// A new connection offering the saved session: is it resumed?
fn resumes(s: &Server, v: &str, file: &str) -> Result<(), String> {
    let again = s_client(s, &[v, "-sess_in", file, "-servername", "site.test"]);
    match again.contains("Reused, TLSv1.") {
        true => Ok(()),
        false => Err(again),
    }
}

#[test]
fn sessions_resume_with_tls_1_2_and_1_3() {
    let (s, _ca) = https_server("workers = 1");
    for v in ["-tls1_2", "-tls1_3"] {
        let file = session_saved(&s, v);
        resumes(&s, v, &file).unwrap_or_else(|again| panic!("{v}: {again}"));
    }
}

/// Every worker seals tickets with the master's key, so a session resumes on whichever
/// worker accepts the next connection (nginx's workers share their ticket keys too);
/// with a key per worker, about one in two of these would be a full handshake.
#[test]
fn a_session_resumes_on_any_worker() {
    let (s, _ca) = https_server("workers = 2");
    for v in ["-tls1_2", "-tls1_3"] {
        let file = session_saved(&s, v);
        for i in 0..10 {
            resumes(&s, v, &file).unwrap_or_else(|again| panic!("{v}, try {i}: {again}"));
        }
    }
}

/// A TLS server whose root has a 3 MiB file and a CGI script that echoes its body.
fn h2_server(extra: &str) -> (Server, Ca, Vec<u8>) {
    let dir = TempDir::new("h2");
    let root = fixture_root(&dir);
    let big: Vec<u8> = (0..3u32 << 20).map(|i| b'a' + (i % 23) as u8).collect();
    dir.write("www/big.bin", &big);
    let echo = dir.write(
        "www/cgi-bin/echo.sh",
        "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nexec cat\n",
    );
    chmod(&echo, 0o755);
    let proto = dir.write(
        "www/cgi-bin/proto.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s' \"$SERVER_PROTOCOL\"\n",
    );
    chmod(&proto, 0o755);
    let ca = Ca::new(&dir);
    let site = ca.leaf(&dir, "site", &["site.test"], false);
    tls_config(&dir, &root, "127.0.0.1:0", &pair(&site), extra);
    (Server::start_config(dir, root, &[]), ca, big)
}

#[test]
fn http2_sends_a_file_many_times_its_window_whole() {
    let (s, ca, big) = h2_server("");
    let out = s.dir.path().join("got.bin");
    let got = out.to_str().unwrap();
    // 3 MiB is many times the 64 KiB window a stream starts with: the server waits for
    // the client's WINDOW_UPDATEs.
    let (said, ok) = curl(&s, &ca, "site.test", "/big.bin", &["--http2", "-o", got]);
    assert!(ok && said.ends_with("2 200"), "{said}");
    assert!(std::fs::read(&out).unwrap() == big, "the file differs");
}

/// A file read and encrypted piece by piece (no sendfile through TLS) arrives byte for
/// byte over HTTP/1.1 and HTTP/2, whole and as a range across several pieces.
#[test]
fn a_large_file_over_tls_arrives_byte_for_byte_whole_and_in_a_range() {
    let (s, ca, big) = h2_server("");
    let out = s.dir.path().join("got.bin");
    let got = out.to_str().unwrap();
    for proto in ["--http1.1", "--http2"] {
        let (said, ok) = curl(&s, &ca, "site.test", "/big.bin", &[proto, "-o", got]);
        assert!(ok && said.ends_with(" 200"), "{proto}: {said}");
        assert!(
            std::fs::read(&out).unwrap() == big,
            "{proto}: the file differs"
        );
        let range = ["-r", "70000-1300000", "-o", got];
        let (said, ok) = curl(
            &s,
            &ca,
            "site.test",
            "/big.bin",
            &[&[proto][..], &range].concat(),
        );
        assert!(ok && said.ends_with(" 206"), "{proto}: {said}");
        let want = &big[70000..=1300000];
        assert!(
            std::fs::read(&out).unwrap() == want,
            "{proto}: the range differs"
        );
    }
}

#[test]
fn http2_head_range_listing_and_errors_match_http1() {
    let (s, ca, big) = h2_server("");
    let (head, _) = curl(&s, &ca, "site.test", "/big.bin", &["--http2", "-I"]);
    assert!(head.contains("content-length: 3145728"), "{head}");
    assert!(head.ends_with("2 200"), "{head}");
    let (part, _) = curl(
        &s,
        &ca,
        "site.test",
        "/big.bin",
        &["--http2", "-r", "1000-1009"],
    );
    let want: Vec<u8> = big[1000..1010].to_vec();
    assert!(
        part.as_bytes().starts_with(&want) && part.ends_with("2 206"),
        "{part}"
    );
    let (list, _) = curl(&s, &ca, "site.test", "/listing/", &["--http2"]);
    assert!(list.contains("b.txt") && list.ends_with("2 200"), "{list}");
    let (missing, _) = curl(&s, &ca, "site.test", "/nothing-here", &["--http2"]);
    assert!(missing.ends_with("2 404"), "{missing}");
    let (cgi, _) = curl(&s, &ca, "site.test", "/cgi-bin/hello.sh?x=1", &["--http2"]);
    assert!(
        cgi.contains("cgi says hi, query=x=1") && cgi.ends_with("2 200"),
        "{cgi}"
    );
}

#[test]
fn a_script_asked_over_http2_sees_server_protocol_http_2_0() {
    let (s, ca, _) = h2_server("");
    let (h2, _) = curl(&s, &ca, "site.test", "/cgi-bin/proto.sh", &["--http2"]);
    assert!(h2.starts_with("HTTP/2.0") && h2.ends_with("2 200"), "{h2}");
    let (h1, _) = curl(&s, &ca, "site.test", "/cgi-bin/proto.sh", &["--http1.1"]);
    assert!(
        h1.starts_with("HTTP/1.1") && h1.ends_with("1.1 200"),
        "{h1}"
    );
}

#[test]
fn http2_request_bodies_reach_the_case_and_the_body_limit_holds() {
    let (s, ca, _) = h2_server("[limits]\nmax_body = 100000");
    let body = s.dir.write("body.bin", vec![b'x'; 50_000]);
    let at = format!("@{}", body.display());
    let (echoed, ok) = curl(
        &s,
        &ca,
        "site.test",
        "/cgi-bin/echo.sh",
        &["--http2", "--data-binary", &at],
    );
    assert!(ok && echoed.ends_with("2 200"), "{echoed}");
    assert_eq!(echoed.matches('x').count(), 50_000);
    let large = s.dir.write("large.bin", vec![b'y'; 200_000]);
    let at = format!("@{}", large.display());
    let (refused, _) = curl(
        &s,
        &ca,
        "site.test",
        "/cgi-bin/echo.sh",
        &["--http2", "--data-binary", &at],
    );
    assert!(refused.ends_with("2 413"), "{refused}");
}

#[test]
fn many_http2_streams_share_one_connection() {
    let (s, ca, _) = h2_server("workers = 1\naccess_log = \"-\"");
    let urls: Vec<String> = (0..20).map(|i| format!("/plain.html?{i}")).collect();
    let port = s.addr.port();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--http2", "-Z", "--parallel-max", "20", "--cacert"])
        .arg(&ca.pem)
        .args(["--resolve", &format!("site.test:{port}:127.0.0.1")])
        .args([
            "-w",
            "%{http_version} %{http_code} %{num_connects}\n",
            "-o",
            "/dev/null",
        ]);
    for u in &urls {
        cmd.arg(format!("https://site.test:{port}{u}"))
            .args(["-o", "/dev/null"]);
    }
    let out = String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned();
    assert_eq!(out.matches("2 200").count(), 20, "{out}");
    // One TLS connection made for all of them (the others reused it).
    let connects: u32 = out
        .lines()
        .filter_map(|l| l.split(' ').nth(2)?.parse::<u32>().ok())
        .sum();
    assert_eq!(connects, 1, "{out}");
    assert!(
        s.log_contains("\"GET /plain.html?19 HTTP/2.0\" 200"),
        "{}",
        s.log()
    );
}

/// Answers ready together leave together: ten GETs of a 1 KiB file sent in one write come
/// back in at most a few TLS records (h2 flushes after every DATA frame, which made one
/// record, one system call and one TCP segment an answer: ten records).
#[test]
fn http2_answers_ready_together_share_tls_records() {
    let (s, _ca, _) = h2_server("workers = 1");
    s.dir.write("www/1k.html", vec![b'k'; 1024]);
    let script = workspace().join("server/tests/fixtures/h2records.py");
    let out = Command::new("timeout")
        .args(["30", "python3"])
        .arg(script)
        .args([&s.addr.port().to_string(), "/1k.html", "10"])
        .output()
        .expect("run python3");
    let said = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let records: usize = said
        .strip_prefix("records ")
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{said}{err}"));
    assert!(said.contains("statuses {'200': 10}"), "{said}{err}");
    assert!(records <= 3, "{said}");
}

/// Run one abuse scenario of fixtures/h2abuse.py (Python's h2 package, raw frames over TLS)
/// against a fresh server; its JSON report, and the server.
fn abuse(scenario: &str) -> (serde_json::Value, Server) {
    let s = abuse_server("");
    (abuse_on(&s, scenario), s)
}

/// A server for the abuse scenarios, with `limits` in its `[limits]`.
fn abuse_server(limits: &str) -> Server {
    let extra = format!("workers = 1\naccess_log = \"-\"\n[limits]\n{limits}");
    Server::start_on("https://127.0.0.1:0", CHAIN, &extra)
}

/// Run `scenario` against `s`: its JSON report.
fn abuse_on(s: &Server, scenario: &str) -> serde_json::Value {
    let script = workspace().join("server/tests/fixtures/h2abuse.py");
    let out = Command::new("timeout")
        .args(["60", "python3"])
        .arg(script)
        .arg(s.addr.port().to_string())
        .arg(scenario)
        .output()
        .expect("run python3");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named"),
        "Python's h2 package is missing: python3 -m pip install h2 (.ci/run does)\n{err}"
    );
    serde_json::from_str(said.trim()).unwrap_or_else(|_| panic!("{said}\n{err}"))
}

/// The abusive connection ended within the script's 15 s bound (with GOAWAY
/// ENHANCE_YOUR_CALM; when the client is still writing as the server closes, the kernel's
/// reset can destroy that frame before the client reads it, so a close counts too), and a
/// new well-behaved connection then got a 200.
fn calmed(r: &serde_json::Value) {
    let calm = r["goaway"] == "ENHANCE_YOUR_CALM";
    let cut_off = r["closed"] == true && r["goaway"].is_null();
    assert!(calm || cut_off, "{r}");
    assert!(r["seconds"].as_f64().unwrap() < 15.0, "{r}");
    assert_eq!(r["fresh"], 200, "{r}");
}

#[test]
fn an_idle_http2_client_that_never_answers_the_goaway_ping_is_closed() {
    // keepalive_timeout is 5 s; then GOAWAY and a PING, which this client never answers.
    let (r, _s) = abuse("silent");
    assert_eq!(r["closed"], true, "{r}");
    let secs = r["seconds"].as_f64().unwrap();
    assert!((4.5..12.0).contains(&secs), "{r}");
    assert_eq!(r["fresh"], 200, "{r}");
}

#[test]
fn http2_host_against_authority_and_padded_values_are_400_and_the_connection_goes_on() {
    let (r, s) = abuse("malformed_fields");
    assert_eq!(
        r["responses"],
        serde_json::json!({"400": 2, "200": 1}),
        "{r}"
    );
    assert_eq!(r["goaway"], serde_json::Value::Null, "{r}");
    // The refused requests are logged by method and target, not as "-".
    let refused = "\"GET /plain.html HTTP/2.0\" 400";
    assert!(s.log_contains(refused), "{}", s.log());
    assert!(!s.log_contains("\"-\" 400"), "{}", s.log());
}

#[test]
fn http2_rapid_reset_closes_the_connection_and_others_are_served() {
    let (r, _s) = abuse("rapid_reset");
    calmed(&r);
}

#[test]
fn http2_resets_of_streams_already_answering_are_counted_too() {
    let (r, s) = abuse("reset_after_accept");
    calmed(&r);
    assert!(s.log_contains("reset more than 256 streams"), "{}", s.log());
}

#[test]
fn http2_resets_of_streams_waiting_for_the_clients_window_are_counted_too() {
    let (r, s) = abuse("reset_while_sending");
    calmed(&r);
    assert!(s.log_contains("reset more than 256 streams"), "{}", s.log());
}

#[test]
fn http2_requests_past_the_stream_limit_in_a_first_flight_are_refused_not_the_connection() {
    let (r, _s) = abuse("first_flight");
    assert_eq!(r["goaway"], serde_json::Value::Null, "{r}");
    assert_eq!(r["responses"]["200"], 128, "{r}");
    assert_eq!(r["refused"], 300 - 128, "{r}");
}

#[test]
fn http2_max_requests_per_connection_holds_for_a_client_that_ignores_the_goaway() {
    let s = abuse_server("max_requests_per_connection = 50");
    let r = abuse_on(&s, "ignores_goaway");
    // The streams it may have had in flight when the GOAWAY went (128) are answered; what
    // it opens after that is refused, and after as many again the connection ends, while
    // the client still sends (it would for 8 s).
    let answered = r["responses"]["200"].as_u64().unwrap();
    assert!((50..=50 + 128).contains(&answered), "{r}");
    assert!(r["refused"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["closed"], true, "{r}");
    assert!(r["seconds"].as_f64().unwrap() < 6.0, "{r}");
}

#[test]
fn http2_a_client_that_stops_reading_is_closed_after_send_timeout() {
    let s = abuse_server("send_timeout = 2.0\nkeepalive_timeout = 30.0");
    s.dir.write("www/big.bin", vec![b'x'; 4 << 20]);
    let r = abuse_on(&s, "stalled_reader");
    // Closed while it did not read: once it reads, only what the kernel held arrives, at
    // once, not the 80 MB it asked for (nor an end only after keepalive_timeout).
    assert_eq!(r["closed"], true, "{r}");
    assert!(r["read_for"].as_f64().unwrap() < 5.0, "{r}");
    assert!(r["data"].as_u64().unwrap() < 40 << 20, "{r}");
    assert!(
        s.log_contains("HTTP/2 client read nothing for 2s"),
        "{}",
        s.log()
    );
}

#[test]
fn http2_continuation_flood_closes_the_connection() {
    let (r, _s) = abuse("continuation_flood");
    calmed(&r);
    // Most of the 32 MB flood was never read.
    assert!(r["unsent"].as_u64().unwrap() > 1 << 20, "{r}");
}

#[test]
fn http2_settings_flood_is_survived_and_the_server_still_serves() {
    let (r, mut s) = abuse("settings_flood");
    assert!(r["seconds"].as_f64().unwrap() < 15.0, "{r}");
    assert_eq!(r["fresh"], 200, "{r}");
    assert!(s.alive());
}

#[test]
fn http2_header_list_over_the_limit_gets_431_and_the_connection_goes_on() {
    let (r, _s) = abuse("large_headers");
    assert_eq!(r["responses"]["431"], 1, "{r}");
    assert_eq!(r["responses"]["200"], 1, "{r}");
    assert_eq!(r["fresh"], 200, "{r}");
}

/// testssl.sh on the path, under either of its names.
fn testssl() -> Option<&'static str> {
    ["testssl", "testssl.sh"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// A certificate as a CA would issue it: 90 days from yesterday, with a CRL address.
fn issued(ca: &Ca, dir: &TempDir) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec!["site.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "site.test");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(90);
    params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec!["http://crl.site.test/ca.crl".into()],
    }];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (
        dir.write("issued.pem", cert.pem()),
        dir.write("issued.key", key.serialize_pem()),
    )
}

/// testssl.sh (about a minute) finds nothing HIGH or CRITICAL: protocols, cipher suites and
/// their order, known vulnerabilities, the certificate as served. Skipped when testssl.sh
/// is not installed (.ci/run installs it).
#[test]
fn testssl_finds_nothing_high_or_critical() {
    let Some(bin) = testssl() else {
        eprintln!("skipped: testssl.sh is not installed (apt-get install testssl.sh)");
        return;
    };
    let dir = TempDir::new("testssl");
    let root = fixture_root(&dir);
    let ca = Ca::new(&dir);
    let site = issued(&ca, &dir);
    tls_config(&dir, &root, "127.0.0.1:0", &pair(&site), "workers = 1");
    let s = Server::start_config(dir, root, &[]);
    let json = s.dir.path().join("testssl.json");
    let out = Command::new("timeout")
        .args([
            "300",
            bin,
            "--fast",
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "off",
        ])
        .args(["--nodns", "none", "--add-ca"])
        .arg(&ca.pem)
        .arg("--jsonfile")
        .arg(&json)
        .args(["--ip", "127.0.0.1"])
        .arg(format!("site.test:{}", s.addr.port()))
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        panic!("no report: {said}")
    });
    let findings: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("HIGH" | "CRITICAL")))
        .map(|f| format!("{} {}: {}", f["severity"], f["id"], f["finding"]))
        .collect();
    assert!(findings.len() > 50, "too few findings: {text}");
    assert!(bad.is_empty(), "{bad:#?}");
}

/// curl -k to `name` (sent as SNI, resolved to the server) with `host` as the Host header,
/// over HTTP/1.1 and HTTP/2: the status codes.
fn status_for(s: &Server, name: &str, host: &str, path: &str) -> Vec<String> {
    let port = s.addr.port();
    ["--http1.1", "--http2"]
        .iter()
        .map(|proto| {
            let out = Command::new("curl")
                .args(["-sS", "-k", "--max-time", "20", proto, "-o", "/dev/null"])
                .args(["-w", "%{http_code}", "--resolve"])
                .arg(format!("{name}:{port}:127.0.0.1"))
                .args(["-H", &format!("Host: {host}")])
                .arg(format!("https://{name}:{port}{path}"))
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

#[test]
fn an_sni_name_and_a_host_of_different_sites_get_421_over_http1_and_http2() {
    let sites = "workers = 1\n[[sites]]\nserver_names = [\"a.test\"]\n[[sites]]\nserver_names = [\"b.test\"]\n";
    let s = Server::start_on("https://127.0.0.1:0", CHAIN, sites);
    assert_eq!(
        status_for(&s, "a.test", "a.test", "/plain.html"),
        ["200", "200"]
    );
    assert_eq!(
        status_for(&s, "a.test", "b.test", "/plain.html"),
        ["421", "421"]
    );
}

/// HTTPS=on as nginx's `$https`, and REQUEST_SCHEME as nginx's fastcgi_params and
/// lighttpd set it.
#[test]
fn a_script_over_tls_sees_https_on() {
    let s = Server::start_on("https://127.0.0.1:0", CHAIN, "workers = 1");
    let script = s.root.join("cgi-bin/https.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nHTTPS=%s %s\\n' \"$HTTPS\" \"$REQUEST_SCHEME\"\n",
    )
    .unwrap();
    chmod(&script, 0o755);
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "20", "--http1.1"])
        .arg(format!(
            "https://localhost:{}/cgi-bin/https.sh",
            s.addr.port()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HTTPS=on https\n");
}
