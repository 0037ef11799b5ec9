//! headers: the security preset, cache lifetimes, CORS and rules on every answer over the
//! wire (files by sendfile, HEAD, 304s, scripts, the host's own errors), and preflights
//! answered before the cases that serve.

use crate::support::*;

fn start(settings: &str) -> Server {
    Server::start(
        &chain_with(&["headers"]),
        &format!("[plugins.headers]\n{settings}\n"),
    )
}

#[test]
fn the_security_preset_reaches_files_heads_304s_412s_416s_scripts_and_the_hosts_errors() {
    let s = start("security = true");
    let etag = s.get("/notes.txt").header("etag").unwrap().to_string();
    let answers = [
        ("GET /notes.txt HTTP/1.1".to_string(), 200),
        ("HEAD /notes.txt HTTP/1.1".into(), 200),
        (
            format!("GET /notes.txt HTTP/1.1\r\nIf-None-Match: {etag}"),
            304,
        ),
        // The file's answer turned into 412 and 416 keeps what the filter added to it.
        ("GET /notes.txt HTTP/1.1\r\nIf-Match: \"other\"".into(), 412),
        ("GET /notes.txt HTTP/1.1\r\nRange: bytes=99-".into(), 416),
        ("GET /cgi-bin/hello.sh HTTP/1.1".into(), 200),
        ("GET /missing HTTP/1.1".into(), 404),
        ("GET /subdir HTTP/1.1".into(), 301),
        ("GET /%zz HTTP/1.1".into(), 400),
        ("DELETE /notes.txt HTTP/1.1".into(), 405),
    ];
    for (head, status) in answers {
        let r = s.request(&head);
        assert_eq!(r.status, status, "{head}");
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
            ("content-security-policy", "frame-ancestors 'self'"),
            ("x-frame-options", "SAMEORIGIN"),
        ] {
            assert_eq!(r.header(name), Some(value), "{head}: {}", r.raw_head);
        }
    }
    // The file itself is untouched: same length, same bytes.
    assert_eq!(s.get("/notes.txt").text(), "just text\n");
}

#[test]
fn cache_lifetimes_follow_the_extension_and_fingerprinted_names_are_immutable() {
    let s = start(
        "[plugins.headers.cache]\nmax_age = { \".txt\" = 3600, \".html\" = 0 }\n\
         immutable = [\"*.[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f].*\"]",
    );
    std::fs::write(s.root.join("app.0123abcd.js"), "let x = 1;\n").unwrap();
    let txt = s.get("/notes.txt");
    assert_eq!(txt.header("cache-control"), Some("max-age=3600"));
    let etag = txt.header("etag").unwrap();
    let again = s.request(&format!("GET /notes.txt HTTP/1.1\r\nIf-None-Match: {etag}"));
    assert_eq!(again.status, 304);
    assert_eq!(again.header("cache-control"), Some("max-age=3600"));
    assert_eq!(
        s.get("/plain.html").header("cache-control"),
        Some("no-cache")
    );
    // "/" answers with index.html: a folder counts as .html.
    assert_eq!(s.get("/").header("cache-control"), Some("no-cache"));
    assert_eq!(
        s.get("/app.0123abcd.js").header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    // Errors are not kept by caches for an hour, those made from the file's answer
    // (412, 416) neither: a cache could give them for a plain GET of the file.
    assert_eq!(s.get("/missing.txt").header("cache-control"), None);
    let failed = s.request("GET /notes.txt HTTP/1.1\r\nIf-Match: \"other\"");
    assert_eq!(failed.status, 412);
    assert_eq!(failed.header("cache-control"), None, "{}", failed.raw_head);
    let past = s.request("GET /notes.txt HTTP/1.1\r\nRange: bytes=99999-");
    assert_eq!(past.status, 416);
    assert_eq!(past.header("cache-control"), None, "{}", past.raw_head);
}

const CORS: &str = "[plugins.headers.cors]\norigins = [\"https://app.example\"]\n\
                    methods = [\"GET\", \"PUT\"]\nheaders = [\"Content-Type\"]\nmax_age = 600\n\
                    paths = [\"/api/\", \"/notes.txt\"]";

#[test]
fn a_cors_preflight_is_answered_204_before_the_cases_that_serve() {
    let s = start(CORS);
    let preflight = |path: &str, origin: &str| {
        s.request(&format!(
                "OPTIONS {path} HTTP/1.1\r\nOrigin: {origin}\r\n\
                 Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: content-type"
            ))
    };
    // /api/items exists nowhere: no_file would answer 404 if headers did not come first.
    let r = preflight("/api/items", "https://app.example");
    assert_eq!(r.status, 204, "{}", r.raw_head);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), None);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Content-Type")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let stranger = preflight("/api/items", "https://evil.example");
    assert_eq!(stranger.status, 204);
    assert_eq!(stranger.header("access-control-allow-origin"), None);
    // Outside the CORS paths, and a plain OPTIONS, reach the cases as before.
    let outside = preflight("/plain.html", "https://app.example");
    assert_eq!(outside.status, 200);
    assert!(outside.header("allow").is_some(), "{}", outside.raw_head);
    assert_eq!(outside.header("access-control-allow-origin"), None);
    let plain = s.request("OPTIONS /api/items HTTP/1.1\r\nOrigin: https://app.example");
    assert_eq!(plain.status, 404);
}

#[test]
fn answers_to_an_allowed_origin_carry_allow_origin_and_vary_on_origin() {
    let s = start(CORS);
    let r = s.request("GET /notes.txt HTTP/1.1\r\nOrigin: https://app.example");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    assert_eq!(r.text(), "just text\n");
    let etag = r.header("etag").unwrap();
    let not_modified = s.request(&format!(
        "GET /notes.txt HTTP/1.1\r\nOrigin: https://app.example\r\nIf-None-Match: {etag}"
    ));
    assert_eq!(not_modified.status, 304);
    assert_eq!(
        not_modified.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let missing = s.request("GET /api/none HTTP/1.1\r\nOrigin: https://app.example");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    // Another origin gets no permission, but the answer still varies on Origin.
    let other = s.request("GET /notes.txt HTTP/1.1\r\nOrigin: https://evil.example");
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert_eq!(other.header("vary"), Some("Origin"));
    assert_eq!(s.get("/plain.html").header("vary"), None);
}

#[test]
fn rules_set_append_and_remove_by_path_glob_extension_and_status() {
    let s = start(
        "security = true\n\
         [[plugins.headers.rules]]\nmatch = \"/subdir/\"\nremove = [\"X-Frame-Options\"]\n\
         [[plugins.headers.rules]]\nglob = \"*.txt\"\nstatus = \"2xx\"\nset = { \"X-Kind\" = \"text\" }\n\
         [[plugins.headers.rules]]\next = [\".sh\"]\nappend = { \"X-Script\" = \"yes\" }\n\
         [[plugins.headers.rules]]\nstatus = \"4xx\"\nset = { \"Cache-Control\" = \"no-store\" }",
    );
    let sub = s.get("/subdir/");
    assert_eq!(sub.status, 200);
    assert_eq!(sub.header("x-frame-options"), None);
    assert_eq!(sub.header("x-content-type-options"), Some("nosniff"));
    let txt = s.get("/notes.txt");
    assert_eq!(txt.header("x-kind"), Some("text"));
    assert_eq!(txt.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(txt.header("cache-control"), None);
    assert_eq!(s.get("/cgi-bin/hello.sh").header("x-script"), Some("yes"));
    let missing = s.get("/missing.txt");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-kind"), None);
    assert_eq!(missing.header("cache-control"), Some("no-store"));
}

#[test]
fn bad_headers_settings_stop_start_up_with_the_reason() {
    let dir = TempDir::new("headers-bad");
    let root = fixture_root(&dir);
    let extra =
        "[plugins.headers]\n[[plugins.headers.rules]]\nstatus = \"304\"\nset = { \"X\" = \"1\" }\n";
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], &chain_with(&["headers"]), extra),
    );
    let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains("refused its settings [plugins.headers]")
            && e.stderr
                .contains("rules[1].status: 304 is made by the server"),
        "{}",
        e.stderr
    );
}

#[test]
fn hsts_is_sent_over_https_and_never_over_plain_http() {
    let settings = "[plugins.headers]\nhsts = \"max-age=63072000; includeSubDomains\"\n\
        [[plugins.headers.rules]]\nmatch = \"/subdir/\"\nset = { \"Strict-Transport-Security\" = \"max-age=60\" }\n";
    let chain = chain_with(&["headers"]);
    let https = Server::start_on("https://127.0.0.1:0", &chain, settings);
    let sts_over_https = |path: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-k",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "--max-time",
                "20",
            ])
            .arg(format!("https://localhost:{}{path}", https.addr.port()))
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        let sts: Vec<String> = head
            .lines()
            .filter_map(|l| l.strip_prefix("strict-transport-security: "))
            .map(|v| v.trim().to_string())
            .collect();
        sts
    };
    assert_eq!(
        sts_over_https("/notes.txt"),
        ["max-age=63072000; includesubdomains"]
    );
    assert_eq!(
        sts_over_https("/missing"),
        ["max-age=63072000; includesubdomains"]
    );
    // A rule's own value replaces the policy where it matches.
    assert_eq!(sts_over_https("/subdir/"), ["max-age=60"]);
    let plain = Server::start(&chain, settings);
    for path in ["/notes.txt", "/missing", "/subdir/"] {
        let r = plain.get(path);
        assert_eq!(r.header("strict-transport-security"), None, "{path}");
    }
}
