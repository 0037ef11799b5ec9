//! `[[sites]]`: requests go to a site by Host (or an absolute-form target's authority), each
//! site with its own root, chain and plugin settings; unknown hosts go to the default site;
//! `https_redirect` sends plain HTTP to https, only for the site's own names.

use crate::support::*;

/// The fixture root (the top level's, the default site) and a second root, `b/`, whose
/// index says which site answered.
fn two_roots(tag: &str) -> (TempDir, std::path::PathBuf, String) {
    let dir = TempDir::new(tag);
    let root = fixture_root(&dir);
    dir.write("b/index.html", "<p>site b</p>\n");
    dir.write("b/only-b.txt", "b\n");
    let b = format!("{:?}", dir.path().join("b").display().to_string());
    (dir, root, b)
}

/// `server.toml.new` in `dir`: the small chain on `root`, then `extra`.
fn write_config(dir: &TempDir, root: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let text = config_text(root, &[plugins_dir()], SMALL, extra);
    dir.write("server.toml.new", text)
}

const SMALL: &str =
    r#"["hello", "no_file", "existing_file", "directory_index_file", "always_fail"]"#;

/// The default site (the top level, shipped chain) and `b.test` with its own root and a
/// chain without `hello`.
fn two_sites() -> Server {
    let (dir, root, b) = two_roots("sites");
    let extra = format!(
        "[[sites]]\nserver_names = [\"b.test\", \"www.b.test\"]\nroot = {b}\n\
         cases = [\"no_file\", \"existing_file\", \"directory_index_file\", \"always_fail\"]\n"
    );
    Server::start_in(dir, root, &[plugins_dir()], SMALL, &extra)
}

fn get(s: &Server, path: &str, host: &str) -> Response {
    s.raw(&format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    ))
}

#[test]
fn two_sites_answer_from_their_own_root_and_chain_by_host() {
    let s = two_sites();
    assert!(get(&s, "/", "a.test").text().contains("home"));
    assert!(get(&s, "/", "b.test").text().contains("site b"));
    assert!(get(&s, "/", "www.b.test").text().contains("site b"));
    assert_eq!(get(&s, "/only-b.txt", "b.test").status, 200);
    assert_eq!(get(&s, "/only-b.txt", "a.test").status, 404);
    // hello is in the default site's chain only.
    assert_eq!(get(&s, "/hello", "a.test").status, 200);
    assert_eq!(get(&s, "/hello", "b.test").status, 404);
}

#[test]
fn the_host_is_matched_without_case_port_or_trailing_dot() {
    let s = two_sites();
    for host in ["B.Test", "b.test:8080", "b.test.", "WWW.B.TEST.:80"] {
        assert!(get(&s, "/", host).text().contains("site b"), "Host: {host}");
    }
}

#[test]
fn a_wildcard_takes_one_or_more_labels_in_front_but_not_the_bare_name() {
    let (dir, root, b) = two_roots("wild");
    let extra = format!(
        "[[sites]]\nserver_names = [\"*.w.test\"]\nroot = {b}\n\
         [[sites]]\nserver_names = [\"exact.w.test\"]\ncases = [\"hello\", \"always_fail\"]\n"
    );
    let s = Server::start_in(dir, root, &[plugins_dir()], SMALL, &extra);
    assert!(get(&s, "/", "x.w.test").text().contains("site b"));
    assert!(get(&s, "/", "a.b.w.test").text().contains("site b"));
    assert!(get(&s, "/", "w.test").text().contains("home"));
    assert!(get(&s, "/", "xw.test").text().contains("home"));
    // An exact name wins over the wildcard (the third site: its chain ends in always_fail).
    assert_eq!(get(&s, "/", "exact.w.test").status, 500);
}

#[test]
fn vhost_combined_access_lines_name_the_host_and_port_first() {
    let (dir, root, b) = two_roots("vhost-log");
    let extra = format!(
        "access_log = \"access.log\"\naccess_log_format = \"vhost_combined\"\n\
         [[sites]]\nserver_names = [\"b.test\"]\nroot = {b}\n"
    );
    let s = Server::start_in(dir, root, &[plugins_dir()], SMALL, &extra);
    get(&s, "/", "B.test:99");
    get(&s, "/", "a.test");
    s.raw("GET / HTTP/1.0\r\n\r\n");
    let log = s.access_log("access.log", 3);
    let port = s.addr.port();
    // The workers write their lines in their own order.
    for (host, request) in [
        ("b.test", "HTTP/1.1"),
        ("a.test", "HTTP/1.1"),
        ("-", "HTTP/1.0"),
    ] {
        let start = format!("{host}:{port} 127.0.0.1 - - [");
        let line = log.lines().find(|l| l.starts_with(&start));
        assert!(line.is_some_and(|l| l.contains(request)), "{start}: {log}");
    }
}

#[test]
fn a_host_with_an_empty_label_is_400_not_a_wildcard_sites() {
    let (dir, root, b) = two_roots("empty-label");
    let extra = format!("[[sites]]\nserver_names = [\"*.w.test\"]\nroot = {b}\n");
    let s = Server::start_in(dir, root, &[plugins_dir()], SMALL, &extra);
    for host in ["x..w.test", "..w.test", "x.w..test:80", ".x.w.test", "."] {
        assert_eq!(get(&s, "/", host).status, 400, "Host: {host}");
    }
    let r = s.raw("GET http://x..w.test/ HTTP/1.1\r\nHost: x.w.test\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 400);
    assert!(get(&s, "/", "x.w.test").text().contains("site b"));
}

#[test]
fn a_host_with_percent_escapes_is_400_in_the_field_and_in_an_absolute_target() {
    // RFC 3986's grammar lets a reg-name hold %41, but no resolved name does; nginx,
    // lighttpd and Caddy answer 400, and `a%2fb` reached scripts as SERVER_NAME.
    let s = Server::shipped();
    for host in ["a%2fb", "w%2etest:80"] {
        assert_eq!(get(&s, "/", host).status, 400, "Host: {host}");
    }
    for target in ["http://a%2fb/", "http://%3127.0.0.1/"] {
        let r = s.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(r.status, 400, "{target}");
    }
    assert_eq!(get(&s, "/", "[::1]:80").status, 200);
}

#[test]
fn nginx_leading_dot_names_the_domain_and_everything_under_it() {
    let (dir, root, b) = two_roots("dot");
    let extra = format!("[[sites]]\nserver_names = [\".d.test\"]\nroot = {b}\n");
    let s = Server::start_in(dir, root, &[plugins_dir()], SMALL, &extra);
    assert!(get(&s, "/", "d.test").text().contains("site b"));
    assert!(get(&s, "/", "x.d.test").text().contains("site b"));
    assert!(get(&s, "/", "xd.test").text().contains("home"));
}

#[test]
fn an_unknown_host_and_an_http_1_0_request_without_host_get_the_default_site() {
    let s = two_sites();
    assert!(get(&s, "/", "unknown.test").text().contains("home"));
    assert!(get(&s, "/", "127.0.0.1").text().contains("home"));
    let r = s.raw("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("home"));
}

#[test]
fn a_site_marked_default_answers_unknown_hosts() {
    let (dir, root, b) = two_roots("marked");
    let extra = format!(
        "[[sites]]\nserver_names = [\"a.test\"]\n\
         [[sites]]\nserver_names = [\"b.test\"]\ndefault = true\nroot = {b}\n"
    );
    let s = Server::start_in(dir, root, &[plugins_dir()], SMALL, &extra);
    assert!(get(&s, "/", "a.test").text().contains("home"));
    assert!(get(&s, "/", "unknown.test").text().contains("site b"));
    assert!(s.raw("GET / HTTP/1.0\r\n\r\n").text().contains("site b"));
}

#[test]
fn an_absolute_form_target_is_routed_by_its_authority_not_by_host() {
    let s = two_sites();
    let r = s.raw("GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    assert!(r.text().contains("site b"), "{}", r.text());
    let r = s.raw("GET http://a.test:80/ HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n");
    assert!(r.text().contains("home"), "{}", r.text());
}

#[test]
fn each_site_loads_its_plugins_with_its_own_settings() {
    // The same libhello.so in two sites, with two prefixes: two instances.
    let (dir, root, b) = two_roots("settings");
    let extra = format!(
        "[plugins.hello]\nprefix = \"/hello\"\n\
         [[sites]]\nserver_names = [\"b.test\"]\nroot = {b}\n\
         [sites.plugins.hello]\nprefix = \"/hi\"\n"
    );
    let s = Server::start_in(dir, root, &[plugins_dir()], SMALL, &extra);
    assert!(get(&s, "/hi", "b.test").text().contains("Hello, web!"));
    assert_eq!(get(&s, "/hello", "b.test").status, 404);
    assert!(get(&s, "/hello", "a.test").text().contains("Hello, web!"));
    assert_eq!(get(&s, "/hi", "a.test").status, 404);
}

#[test]
fn a_server_name_in_two_sites_is_refused_at_start_up() {
    let e = start_refused(
        "dup",
        SMALL,
        "[[sites]]\nserver_names = [\"b.test\"]\n[[sites]]\nserver_names = [\"c.test\", \"B.test\"]\n",
    );
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains(
            "\"b.test\" is a server name of both [[sites]] #1 (b.test) and [[sites]] #2 (c.test)"
        ),
        "{}",
        e.stderr
    );
    assert!(
        e.stderr.contains("fix: keep the name in one site"),
        "{}",
        e.stderr
    );
}

#[test]
fn a_plugin_that_refuses_a_sites_settings_names_the_site() {
    let e = start_refused(
        "badsite",
        SMALL,
        "[[sites]]\nserver_names = [\"b.test\"]\n[sites.plugins.hello]\nprefix = 7\n",
    );
    assert_eq!(e.code, Some(1));
    assert!(e.stderr.contains("[[sites]] #1 (b.test): "), "{}", e.stderr);
    assert!(e.stderr.contains("hello"), "{}", e.stderr);
}

/// A site `r.test` (and `*.r.test`) that redirects plain HTTP to https, beside the default.
fn redirecting(port: &str) -> Server {
    let (dir, root, b) = two_roots("redirect");
    let extra = format!(
        "[[sites]]\nserver_names = [\"r.test\", \"*.r.test\"]\nroot = {b}\nhttps_redirect = true\n{port}"
    );
    Server::start_in(dir, root, &[plugins_dir()], SMALL, &extra)
}

#[test]
fn https_redirect_answers_301_to_the_same_path_and_query_on_https() {
    let s = redirecting("");
    let r = get(&s, "/a/b%20c?x=1&y", "R.test:8080");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://r.test/a/b%20c?x=1&y"));
    let r = get(&s, "/", "www.r.test.");
    assert_eq!(r.header("location"), Some("https://www.r.test/"));
    let r = s.raw("GET http://r.test?q HTTP/1.1\r\nHost: r.test\r\nConnection: close\r\n\r\n");
    assert_eq!(r.header("location"), Some("https://r.test/?q"));
    // An empty query keeps its '?', as nginx's and Caddy's redirects keep it.
    let r = get(&s, "/p?", "r.test");
    assert_eq!(r.header("location"), Some("https://r.test/p?"));
    // Other sites are served as before.
    assert_eq!(get(&s, "/", "a.test").status, 200);
    // A target the chain would refuse is refused here too, not redirected (nginx: 400).
    for target in ["x", "/x%zz", "/x%", "/../etc", "http://r.test/x%zz"] {
        let r = get(&s, target, "r.test");
        assert_eq!(r.status, 400, "{target}: {:?}", r.header("location"));
    }
}

#[test]
fn https_redirect_answers_308_to_methods_other_than_get_and_head() {
    let s = redirecting("");
    let post = "POST /form?a HTTP/1.1\r\nHost: r.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nx=1";
    for (req, status) in [
        (post.to_string(), 308),
        (
            "HEAD /p HTTP/1.1\r\nHost: r.test\r\nConnection: close\r\n\r\n".into(),
            301,
        ),
        (
            "DELETE /p HTTP/1.1\r\nHost: r.test\r\nConnection: close\r\n\r\n".into(),
            308,
        ),
    ] {
        let r = s.raw(&req);
        assert_eq!(r.status, status, "{req:?}");
        assert!(r
            .header("location")
            .is_some_and(|l| l.starts_with("https://r.test/")));
    }
}

#[test]
fn https_redirect_names_a_port_other_than_443() {
    let s = redirecting("https_port = 8443\n");
    let r = get(&s, "/p?q", "r.test");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://r.test:8443/p?q"));
}

#[test]
fn https_redirect_never_sends_a_host_the_site_does_not_name() {
    // The redirecting site is the default: a made-up Host reaches it, and is refused.
    let (dir, root, _) = two_roots("open");
    let extra = "[[sites]]\nserver_names = [\"r.test\"]\ndefault = true\nhttps_redirect = true\n";
    let s = Server::start_in(dir, root, &[plugins_dir()], SMALL, extra);
    assert_eq!(
        get(&s, "/x", "r.test").header("location"),
        Some("https://r.test/x")
    );
    for req in [
        "GET /x HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n",
        "GET //evil.test/x HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n",
        "GET http://evil.test/x HTTP/1.1\r\nHost: r.test\r\nConnection: close\r\n\r\n",
        "GET /x HTTP/1.0\r\n\r\n",
    ] {
        let r = s.raw(req);
        assert_eq!(r.status, 421, "{req:?}");
        assert_eq!(r.header("location"), None, "{req:?}");
    }
}

#[test]
fn check_config_lists_every_site_with_its_chain() {
    let (dir, root, b) = two_roots("check");
    let extra = format!(
        "[[sites]]\nserver_names = [\"b.test\", \"*.b.test\"]\nroot = {b}\ncases = [\"no_file\", \"always_fail\"]\nhttps_redirect = true\n"
    );
    let cfg = write_config(&dir, &root, &extra);
    let out = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let o = &out.stdout;
    assert!(o.contains("default site: top level"), "{o}");
    assert!(
        o.contains("site [[sites]] #1 (b.test)\n  server_names b.test, *.b.test\n"),
        "{o}"
    );
    assert!(o.contains("  https_redirect to port 443"), "{o}");
    assert!(o.contains("  chain:\n    1. no_file "), "{o}");
    assert!(o.contains("    2. always_fail "), "{o}");
}

#[test]
fn the_banner_shows_the_sites() {
    // The harness reads only the banner's first line: read all of it here.
    let (dir, root, b) = two_roots("banner");
    let extra =
        format!("[[sites]]\nserver_names = [\"b.test\"]\nroot = {b}\ncases = [\"no_file\"]\n");
    let cfg = write_config(&dir, &root, &extra);
    let mut child = std::process::Command::new(server_bin())
        .args(["--config", cfg.to_str().unwrap(), "--single-process"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    while !banner.contains("b.test") {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap_or(0) == 0 {
            break;
        }
        banner.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(banner.contains("  sites  by Host;"), "{banner}");
    assert!(banner.contains("    b.test  root "), "{banner}");
    assert!(banner.contains("; chain no_file\n"), "{banner}");
}

#[test]
fn sighup_reloads_every_site() {
    let (dir, root, b) = two_roots("reload");
    let s = Server::start_in(dir, root.clone(), &[plugins_dir()], SMALL, "");
    assert!(get(&s, "/", "b.test").text().contains("home"));
    let extra = format!("[[sites]]\nserver_names = [\"b.test\"]\nroot = {b}\n");
    let new = write_config(&s.dir, &root, &extra);
    std::fs::rename(new, s.dir.path().join("server.toml")).unwrap();
    s.signal(rustix::process::Signal::HUP);
    assert!(s.log_contains("reloaded"), "{}", s.log());
    assert!(get(&s, "/", "b.test").text().contains("site b"));
    assert!(get(&s, "/", "a.test").text().contains("home"));
}
