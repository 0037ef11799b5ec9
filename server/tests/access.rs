//! access: allow/deny by client address per prefix, over the wire. Only loopback is reachable
//! here, so each test has a rule that lets loopback in and one that keeps it out.

use crate::support::*;

/// The shipped chain with access after hidden_files (and status, to protect it).
fn chain() -> String {
    CHAIN.replacen(
        "\"hidden_files\", ",
        "\"hidden_files\", \"access\", \"status\", ",
        1,
    )
}

/// The snippet for a shipped config: the status pages for loopback only, plus a folder no
/// one may see.
const RULES: &str = r#"
[[plugins.access.rules]]
prefix = "/status"
allow = ["127.0.0.0/8", "::1"]
deny = ["all"]

[[plugins.access.rules]]
prefix = "/metrics"
allow = ["127.0.0.0/8", "::1"]
deny = ["all"]

[[plugins.access.rules]]
prefix = "/listing/"
allow = ["10.0.0.0/8"]
deny = ["all"]
"#;

#[test]
fn loopback_is_let_in_where_it_is_allowed() {
    let s = Server::start(&chain(), RULES);
    assert_eq!(s.get("/status").status, 200);
    assert_eq!(s.get("/metrics").status, 200);
    // No rule for this path: let through.
    assert_eq!(s.get("/notes.txt").status, 200);
}

#[test]
fn loopback_gets_403_where_it_is_not_allowed_whatever_the_method() {
    let s = Server::start(&chain(), RULES);
    let r = s.get("/listing/b.txt");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("403 Forbidden"), "{}", r.text());
    assert!(!r.text().contains("bee"));
    assert_eq!(s.get("/listing").status, 403, "the folder itself");
    for method in ["POST", "OPTIONS", "DELETE", "HEAD"] {
        let r = s.raw(&format!(
            "{method} /listing/b.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(r.status, 403, "{method}");
    }
    assert!(
        s.log_contains("client 127.0.0.1 denied for /listing/b.txt by the rule for \"/listing/\"")
    );
}

#[test]
fn an_access_rule_closes_the_status_page_even_to_addresses_status_allows() {
    // status lets loopback in by default; access is asked first.
    let s = Server::start(
        &chain(),
        "[[plugins.access.rules]]\nprefix = \"/status\"\ndeny = [\"127.0.0.0/8\"]\n",
    );
    assert_eq!(s.get("/status").status, 403);
    assert_eq!(s.get("/metrics").status, 200);
}

#[test]
fn an_ipv6_loopback_client_is_matched_by_ipv6_rules() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this machine cannot listen on [::1]");
        return;
    }
    let rules = "[[plugins.access.rules]]\nprefix = \"/v4/\"\nallow = [\"127.0.0.0/8\"]\ndeny = [\"all\"]\n\
                 [[plugins.access.rules]]\nprefix = \"/\"\nallow = [\"::1\"]\ndeny = [\"all\"]\n";
    let s = Server::start_on("[::1]:0", &chain(), rules);
    assert!(s.addr.is_ipv6(), "{}", s.addr);
    assert_eq!(s.get("/notes.txt").status, 200);
    std::fs::create_dir_all(s.root.join("v4")).unwrap();
    std::fs::write(s.root.join("v4/a.txt"), "a\n").unwrap();
    assert_eq!(s.get("/v4/a.txt").status, 403);
    assert!(s.log_contains("client ::1 denied for /v4/a.txt"));
}

#[test]
fn a_rule_that_allows_without_denying_stops_start_up() {
    let dir = TempDir::new("access-bad");
    let root = fixture_root(&dir);
    let extra = "[[plugins.access.rules]]\nprefix = \"/status\"\nallow = [\"127.0.0.1\"]\n";
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], &chain(), extra),
    );
    let e = run_to_exit(&["--config", cfg.to_str().unwrap()]);
    assert_ne!(e.code, Some(0));
    assert!(
        e.stderr.contains(
            "rule 1 (prefix = \"/status\") allows some addresses, but no rule denies anyone"
        ),
        "{}",
        e.stderr
    );
    assert!(
        e.stderr.contains("fix: add deny = [\"all\"]"),
        "{}",
        e.stderr
    );
}
