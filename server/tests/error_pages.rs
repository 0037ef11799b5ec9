//! error_pages: every error answer, the host's own included, gets the site's page for its
//! status or class with its status and guidance headers kept; HEAD gets the same head; the
//! built-in page answers where none is configured; the pages are ordinary files unless
//! `internal`; a page that is missing or outside the root stops start-up.

use crate::support::*;

const OUR_404: &str = "<h1>our 404</h1>\n";
const OUR_4XX: &str = "<h1>our 4xx</h1>\n";
const OUR_5XX: &str = "<h1>our 5xx</h1>\n";

fn with_pages(cases: &str, extra: &str) -> Server {
    let dir = TempDir::new("pages");
    let root = fixture_root(&dir);
    dir.write("www/errors/404.html", OUR_404);
    dir.write("www/errors/4xx.html", OUR_4XX);
    dir.write("www/errors/5xx.html", OUR_5XX);
    Server::start_in(dir, root, &[plugins_dir()], cases, extra)
}

/// error_pages in front of the shipped chain.
fn start(pages: &str, more: &str) -> Server {
    let chain = CHAIN.replacen('[', "[\"error_pages\", ", 1);
    with_pages(
        &chain,
        &format!("[plugins.error_pages]\npages = {pages}\n{more}"),
    )
}

const ALL: &str =
    r#"{ 404 = "errors/404.html", "4xx" = "errors/4xx.html", "5xx" = "errors/5xx.html" }"#;

fn send(s: &Server, head: &str) -> Response {
    s.raw(&format!("{head}\r\nConnection: close\r\n\r\n"))
}

#[test]
fn the_hosts_own_errors_get_the_sites_pages_with_their_status() {
    let s = start(ALL, "[limits]\nmax_body = 10\n");
    let answers = [
        ("GET /missing HTTP/1.1\r\nHost: t", 404, OUR_404),
        ("GET /%zz HTTP/1.1\r\nHost: t", 400, OUR_4XX),
        ("GET /notes.txt HTTP/1.1\r\nHost: a b", 400, OUR_4XX),
        (
            "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 99",
            413,
            OUR_4XX,
        ),
        ("GET /../../etc/passwd HTTP/1.1\r\nHost: t", 400, OUR_4XX),
    ];
    for (head, status, page) in answers {
        let r = send(&s, head);
        assert_eq!((r.status, r.text().as_str()), (status, page), "{head}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    }
}

#[test]
fn a_405_keeps_its_allow_header() {
    let s = start(ALL, "");
    let r = s.raw(
        "POST /notes.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab",
    );
    assert_eq!((r.status, r.text().as_str()), (405, OUR_4XX));
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn head_gets_the_same_head_as_get_and_no_body() {
    let s = start(ALL, "");
    let get = s.get("/missing");
    let head = send(&s, "HEAD /missing HTTP/1.1\r\nHost: t");
    assert_eq!(head.status, 404);
    assert_eq!(head.header("content-length"), Some("17"));
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert_eq!(head.header("content-type"), get.header("content-type"));
    assert!(head.body.is_empty());
}

#[test]
fn a_5xx_from_a_case_gets_the_class_page() {
    let s = with_pages(
        r#"["error_pages", "always_fail"]"#,
        &format!("[plugins.error_pages]\npages = {ALL}\n"),
    );
    let r = s.get("/anything");
    assert_eq!((r.status, r.text().as_str()), (500, OUR_5XX));
}

#[test]
fn a_scripts_own_error_body_is_kept_unless_intercept_errors() {
    // As nginx with fastcgi_intercept_errors off (its default) and lighttpd without
    // server.error-intercept: a script's 404 with a body of its own (an API's JSON) is its
    // answer; a script that fails gets the host's 502, which the site's page replaces.
    let scripts = |s: &Server| {
        s.dir.write(
            "www/cgi-bin/api.sh",
            "#!/bin/sh\nprintf 'Status: 404 Not Found\\r\\nContent-Type: application/json\\r\\n\\r\\n{\"error\": \"no such user\"}'\n",
        );
        s.dir.write("www/cgi-bin/fail.sh", "#!/bin/sh\nexit 3\n");
        for f in ["api.sh", "fail.sh"] {
            chmod(&s.root.join("cgi-bin").join(f), 0o755);
        }
    };
    let s = start(ALL, "");
    scripts(&s);
    let r = s.get("/cgi-bin/api.sh");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), r#"{"error": "no such user"}"#);
    let r = s.get("/cgi-bin/fail.sh");
    assert_eq!((r.status, r.text().as_str()), (502, OUR_5XX));
    let s = start(ALL, "intercept_errors = true\n");
    scripts(&s);
    let r = s.get("/cgi-bin/api.sh");
    assert_eq!((r.status, r.text().as_str()), (404, OUR_404));
}

#[test]
fn a_page_is_kept_open_between_answers_as_other_files_are() {
    // The open-file cache serves the page as it serves files: a flood of 404s costs no
    // open, stat and read of 404.html each (four system calls a 404 before).
    let s = start(ALL, "[limits]\nopen_file_cache = 30.0\n");
    let page = s.root.join("errors/404.html");
    let holds_page = || {
        children(s.child.id()).into_iter().any(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd")).is_ok_and(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                    .any(|target| target == page)
            })
        })
    };
    for _ in 0..2 {
        assert_eq!(s.get("/missing").text(), OUR_404);
    }
    assert!(holds_page(), "no worker holds {} open", page.display());
}

#[test]
fn a_page_deleted_while_serving_gives_the_built_in_page_at_once_never_a_500() {
    // The host opens a page when the filter names it, so a page gone since start-up is
    // refused to the filter, which keeps the host's page and the status (the open-file
    // cache sees the deletion on its next look).
    let s = start(ALL, "");
    assert_eq!(s.get("/missing").text(), OUR_404);
    std::fs::remove_file(s.root.join("errors/404.html")).unwrap();
    for _ in 0..3 {
        let r = s.get("/missing");
        assert_eq!(r.status, 404);
        assert!(
            r.text().contains("404") && r.text() != OUR_404,
            "{}",
            r.text()
        );
    }
    assert!(
        s.log_contains("is gone; the built-in page answers"),
        "{}",
        s.log()
    );
}

#[test]
fn statuses_without_a_page_keep_the_built_in_one() {
    let s = start(r#"{ 404 = "errors/404.html" }"#, "");
    let r = s.raw(
        "POST /notes.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab",
    );
    assert_eq!(r.status, 405);
    assert!(r.text().contains("<!DOCTYPE"), "{}", r.text());
    let moved = s.get("/subdir");
    assert_eq!(
        (moved.status, moved.header("location")),
        (301, Some("/subdir/"))
    );
    assert!(!moved.text().contains("our"));
}

#[test]
fn a_page_requested_directly_is_an_ordinary_file_unless_internal() {
    let s = start(ALL, "");
    let r = s.get("/errors/404.html");
    assert_eq!((r.status, r.text().as_str()), (200, OUR_404));
    let s = start(ALL, "internal = true\n");
    let r = s.get("/errors/404.html");
    assert_eq!((r.status, r.text().as_str()), (404, OUR_404));
    let r = s.get("/errors/5xx.html");
    assert_eq!((r.status, r.text().as_str()), (404, OUR_404));
}

#[test]
fn a_missing_page_or_one_outside_the_root_stops_start_up() {
    let chain = r#"["error_pages", "always_fail"]"#;
    let e = start_refused(
        "pages-missing",
        chain,
        "[plugins.error_pages]\npages = { 404 = \"errors/404.html\" }\n",
    );
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr
            .contains("refused its settings [plugins.error_pages]")
            && e.stderr.contains("pages.\"404\" = \"errors/404.html\":")
            && e.stderr.contains("cannot be used"),
        "{}",
        e.stderr
    );
    let outside = TempDir::new("pages-outside");
    let page = outside.write("404.html", "x");
    let e = start_refused(
        "pages-outside",
        chain,
        &format!(
            "[plugins.error_pages]\npages = {{ 404 = {:?} }}\n",
            page.display().to_string()
        ),
    );
    assert!(
        e.stderr.contains("is outside the document root"),
        "{}",
        e.stderr
    );
}
