//! Behind a trusted reverse proxy (`trusted_proxies`): the client and scheme its
//! X-Forwarded-For and X-Forwarded-Proto name reach scripts, the access log, address rules
//! and https_redirect; from anyone else the fields are only fields.

use crate::support::*;

const SMALL: &str = r#"["no_file", "existing_file", "always_fail"]"#;

/// A server with the env.py script, the status page (loopback only) and an access log;
/// `trusted` is the `trusted_proxies` line (or nothing).
fn behind(trusted: &str) -> Server {
    let dir = TempDir::new("proxy");
    let root = fixture_root(&dir);
    let script = workspace().join("server/tests/fixtures/cgi-bin/env.py");
    std::fs::copy(script, root.join("cgi-bin/env.py")).unwrap();
    let extra = format!("{trusted}\naccess_log = \"access.log\"\n[plugins.status]\njson = \"/status\"\nallow = [\"127.0.0.0/8\"]\n");
    Server::start_in(
        dir,
        root,
        &[plugins_dir()],
        &chain_with(&["status"]),
        &extra,
    )
}

fn env_var(r: &Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

const FORWARDED: &str = "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\nX-Forwarded-Proto: https\r\n";

fn get(s: &Server, path: &str, fields: &str) -> Response {
    s.raw(&format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\n{fields}Connection: close\r\n\r\n"
    ))
}

#[test]
fn a_trusted_proxys_client_and_scheme_reach_scripts_the_log_and_address_rules() {
    let s = behind("trusted_proxies = [\"127.0.0.1\"]");
    let r = get(&s, "/cgi-bin/env.py", FORWARDED);
    assert_eq!(r.status, 200, "{}", s.log());
    // The last hop before the trusted proxy is the client; 6.6.6.6 is what it claimed.
    assert_eq!(env_var(&r, "REMOTE_ADDR").as_deref(), Some("203.0.113.7"));
    assert_eq!(env_var(&r, "HTTPS").as_deref(), Some("on"));
    let log = s.access_log("access.log", 1);
    assert!(log.starts_with("203.0.113.7 - - ["), "{log}");
    // The status page admits loopback only: not a client on the far side of the proxy.
    assert_eq!(get(&s, "/status", FORWARDED).status, 403);
    assert_eq!(get(&s, "/status", "").status, 200);
}

#[test]
fn over_http2_too_the_trusted_proxys_client_is_the_one_served_and_logged() {
    let s = behind("trusted_proxies = [\"127.0.0.1\"]");
    let url = format!("http://{}/cgi-bin/env.py", s.addr);
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-H",
            "X-Forwarded-For: 203.0.113.9",
        ])
        .args(["-H", "X-Forwarded-Proto: https", &url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l == "REMOTE_ADDR=203.0.113.9"),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "HTTPS=on"), "{text}");
    let log = s.access_log("access.log", 1);
    assert!(log.starts_with("203.0.113.9 - - ["), "{log}");
    assert!(log.contains("HTTP/2.0\" 200"), "{log}");
}

#[test]
fn without_trusted_proxies_the_forwarded_fields_change_nothing() {
    let s = behind("");
    let r = get(&s, "/cgi-bin/env.py", FORWARDED);
    assert_eq!(env_var(&r, "REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
    assert_eq!(env_var(&r, "HTTPS"), None);
    assert_eq!(get(&s, "/status", FORWARDED).status, 200);
    // A proxy that is not the peer is not believed either.
    let s = behind("trusted_proxies = [\"10.0.0.0/8\"]");
    let r = get(&s, "/cgi-bin/env.py", FORWARDED);
    assert_eq!(env_var(&r, "REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
    assert_eq!(env_var(&r, "HTTPS"), None);
}

#[test]
fn https_redirect_does_not_loop_behind_a_tls_terminating_proxy() {
    let dir = TempDir::new("proxy-redirect");
    let root = fixture_root(&dir);
    let extra = "trusted_proxies = [\"127.0.0.1\"]\n\
                 [[sites]]\nserver_names = [\"r.test\"]\ndefault = true\nhttps_redirect = true\n";
    let s = Server::start_in(dir, root, &[plugins_dir()], SMALL, extra);
    let req = |fields: &str| {
        s.raw(&format!(
            "GET /plain.html HTTP/1.1\r\nHost: r.test\r\n{fields}Connection: close\r\n\r\n"
        ))
    };
    assert_eq!(req("X-Forwarded-Proto: https\r\n").status, 200);
    assert_eq!(req("X-Forwarded-Proto: http\r\n").status, 301);
    assert_eq!(req("").status, 301);
}

#[test]
fn a_trusted_proxy_entry_that_is_no_address_stops_start_up() {
    let dir = TempDir::new("proxy-bad");
    let root = fixture_root(&dir);
    let text = config_text(
        &root,
        &[plugins_dir()],
        SMALL,
        "trusted_proxies = [\"lb.local\"]\n",
    );
    let cfg = dir.write("server.toml", text);
    let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains("trusted_proxies entry \"lb.local\""),
        "{}",
        e.stderr
    );
}
