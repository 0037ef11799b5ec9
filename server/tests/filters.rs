//! ABI 1.1 over the wire: a filter sees every answer (the host's own too), a transform
//! reshapes files, streams and pages, and a rewriting case lets the chain go on.

use crate::support::*;

fn stamped(extra: &str) -> Server {
    Server::start(&chain_with(&["stamp"]), extra)
}

fn request(s: &Server, head: &str) -> Response {
    s.raw(&format!("{head}\r\nConnection: close\r\n\r\n"))
}

#[test]
fn the_filters_of_one_answer_share_64_kib_of_header_fields() {
    // Each adds 40 KiB: alone, either is taken; after the headers plugin's, the stamp's
    // set is refused and the answer fails (500) rather than going out with a head no
    // client takes.
    let big = "v".repeat(40 * 1024);
    let rule = format!("[plugins.headers]\n[[plugins.headers.rules]]\nmatch = \"/\"\nset = {{ \"X-Big\" = \"{big}\" }}\n");
    let alone = Server::start(
        &chain_with(&["stamp"]),
        &format!("[plugins.stamp]\nvalue = \"{big}\"\n"),
    );
    let r = alone.get("/plain.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-stamp").map(str::len), Some(big.len()));
    let both = Server::start(
        &chain_with(&["headers", "stamp"]),
        &format!("{rule}[plugins.stamp]\nvalue = \"{big}\"\n"),
    );
    let r = both.get("/plain.html");
    assert_eq!(r.status, 500, "{}", both.log());
    assert_eq!(r.header("x-stamp"), None);
}

#[test]
fn a_filter_stamps_every_answer_even_the_hosts_own() {
    let s = stamped("[limits]\nmax_body = 10\n");
    let answers = [
        ("GET /notes.txt HTTP/1.1\r\nHost: t", 200),
        ("HEAD /notes.txt HTTP/1.1\r\nHost: t", 200),
        ("GET /missing HTTP/1.1\r\nHost: t", 404),
        ("GET /subdir HTTP/1.1\r\nHost: t", 301),
        (
            "POST /notes.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab",
            405,
        ),
        ("GET /notes.txt HTTP/1.1\r\nHost: a b", 400),
        ("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 99", 413),
        ("GET /%zz HTTP/1.1\r\nHost: t", 400),
        ("GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: t", 200),
    ];
    for (head, status) in answers {
        let r = if head.contains("\r\n\r\n") {
            s.raw(head)
        } else {
            request(&s, head)
        };
        assert_eq!(r.status, status, "{head}");
        assert_eq!(r.header("x-stamp"), Some("1"), "{head}: {}", r.raw_head);
    }
}

#[test]
fn a_304_keeps_the_headers_a_filter_added() {
    let s = stamped("");
    let etag = s.get("/notes.txt").header("etag").unwrap().to_string();
    let r = request(
        &s,
        &format!("GET /notes.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}"),
    );
    assert_eq!(r.status, 304);
    assert_eq!(r.header("x-stamp"), Some("1"));
}

#[test]
fn a_filtered_file_keeps_one_content_length_and_its_body() {
    // The refusal of framing headers is shown by the stamp fixture's unit test
    // (`framing_headers_stay_the_hosts`); here the wire shows one framing after a filter.
    let s = stamped("");
    let r = s.get("/notes.txt");
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(r.text(), "just text\n");
}

#[test]
fn a_transform_reshapes_a_file_weakens_its_etag_and_turns_range_off() {
    let s = stamped("[plugins.stamp]\nshout = \"/\"\n");
    let r = s.get("/notes.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "JUST TEXT\n");
    assert_eq!(r.header("x-transformed"), Some("upper"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("accept-ranges"), None);
    let etag = r.header("etag").unwrap().to_string();
    assert!(etag.starts_with("W/\""), "{etag}");
    // Range is not cut from a transformed body: the whole (transformed) answer comes.
    let ranged = request(&s, "GET /notes.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-3");
    assert_eq!(ranged.status, 200);
    assert_eq!(ranged.text(), "JUST TEXT\n");
    // The weak ETag still revalidates (weak comparison for If-None-Match).
    let again = request(
        &s,
        &format!("GET /notes.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}"),
    );
    assert_eq!(again.status, 304);
}

#[test]
fn a_transform_reshapes_streams_and_host_pages_and_head_gets_no_body() {
    let s = stamped("[plugins.stamp]\nshout = \"/\"\n");
    let cgi = s.get("/cgi-bin/hello.sh?q");
    assert_eq!(cgi.text(), "CGI SAYS HI, QUERY=Q\n");
    let missing = s.get("/missing");
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("<!DOCTYPE HTML>"),
        "{}",
        missing.text()
    );
    let len: usize = missing.header("content-length").unwrap().parse().unwrap();
    assert_eq!(len, missing.body.len());
    let head = request(&s, "HEAD /notes.txt HTTP/1.1\r\nHost: t");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("x-transformed"), Some("upper"));
}

#[test]
fn a_rewrite_goes_on_with_the_new_path_its_query_and_its_variables() {
    let s = Server::start(
        &chain_with(&["old_new"]),
        "[plugins.cgi_file]\ndirs = [\"/cgi-bin/\", \"/new/bin/\"]\n",
    );
    std::fs::create_dir_all(s.root.join("new/bin")).unwrap();
    std::fs::write(s.root.join("new/a.txt"), "the new a\n").unwrap();
    let script = s.root.join("new/bin/vars.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf '%s|%s|%s\\n' \"$MOVED_FROM\" \"$QUERY_STRING\" \"$REQUEST_URI\"\n",
    )
    .unwrap();
    chmod(&script, 0o755);
    let r = s.get("/old/a.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "the new a\n"));
    let r = s.get("/old/bin/vars.sh?x=1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "/old/bin/vars.sh|x=1|/old/bin/vars.sh?x=1\n");
    // A rewrite to a missing path is answered by the cases after it, as any request.
    assert_eq!(s.get("/old/none.txt").status, 404);
}

#[test]
fn a_rewrite_that_leaves_the_root_is_refused() {
    let s = Server::start(&chain_with(&["old_new"]), "");
    let r = s.get("/old-escape");
    assert_eq!(r.status, 400);
    assert_eq!(s.get("/notes.txt").status, 200);
}

#[test]
fn the_debug_log_says_which_case_acted_and_which_filter_changed_the_answer() {
    let s = stamped("");
    assert_eq!(s.get("/notes.txt").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        s.log_contains("case=existing_file acted: done"),
        "{}",
        s.log()
    );
    assert!(
        s.log_contains("filter=stamp changed the answer (200)"),
        "{}",
        s.log()
    );
}

#[test]
fn check_config_shows_what_each_plugin_takes_part_in() {
    let dir = TempDir::new("roles");
    let root = fixture_root(&dir);
    let cases = chain_with(&["stamp", "old_new"]);
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], &cases, ""),
    );
    let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert!(
        e.stdout
            .contains("1. stamp 0.1.0 (ABI 1.1; filter + transform)"),
        "{}",
        e.stdout
    );
    assert!(
        e.stdout
            .contains("2. old_new 0.1.0 (ABI 1.1, any method; test/act + rewrite)"),
        "{}",
        e.stdout
    );
    assert!(
        e.stdout
            .contains("existing_file 0.1.0 (ABI 1.0, GET, HEAD; test/act)"),
        "{}",
        e.stdout
    );
}

/// Beside another transform, the plain answer a coded one stands for carries that
/// transform's weak tag: If-Match with the file's strong tag fails on the coded answer (no
/// answer ever carried it), and a 304 the weak tag earns names it.
#[test]
fn beside_another_transform_a_coded_answer_matches_the_plain_answers_weak_tag() {
    let s = Server::start(
        &chain_with(&["stamp", "compress"]),
        "[plugins.stamp]\nshout = \"/\"\n",
    );
    std::fs::write(s.root.join("page.txt"), "words ".repeat(1000)).unwrap();
    let plain = request(&s, "GET /page.txt HTTP/1.1\r\nHost: t");
    let weak = plain.header("etag").unwrap().to_string();
    let strong = weak.trim_start_matches("W/").to_string();
    assert!(weak.starts_with("W/\""), "{weak}");
    let ask = |field: &str| {
        request(
            &s,
            &format!("GET /page.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n{field}"),
        )
    };
    let r = ask(&format!("If-None-Match: {weak}"));
    assert_eq!(r.status, 304, "{}", r.raw_head);
    assert_eq!(r.header("etag"), Some(weak.as_str()));
    assert_eq!(ask(&format!("If-Match: {strong}")).status, 412);
    let coded = ask("");
    assert_eq!(coded.header("content-encoding"), Some("gzip"));
}
