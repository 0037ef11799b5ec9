//! redirect: exact, prefix and regex rules answer their status with a correctly encoded
//! Location and a page with the link; HEAD gets the head only; a target that could send
//! browsers to another host stops start-up.

use crate::support::*;

const CHAIN_REDIRECT: &str = r#"["redirect", "no_file", "existing_file", "always_fail"]"#;

const RULES: &str = r#"
[[plugins.redirect.rules]]
exact = "/old.html"
to = "/plain.html"
status = 301

[[plugins.redirect.rules]]
prefix = "/blog/"
to = "https://blog.example.com/posts/"
status = 308

[[plugins.redirect.rules]]
regex = "^/u/(?P<id>[0-9]+)/(.*)$"
to = "/people/${id}/$2"
keep_query = false

[[plugins.redirect.rules]]
exact = "/form"
to = "/elsewhere"
status = 307
"#;

fn start() -> Server {
    Server::start(CHAIN_REDIRECT, RULES)
}

#[test]
fn an_exact_rule_answers_its_status_the_location_and_a_page_with_the_link() {
    let s = start();
    let r = s.get("/old.html?from=mail");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/plain.html?from=mail"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        r.text().contains("<a href=\"/plain.html?from=mail\">"),
        "{}",
        r.text()
    );
    // Paths that are not the rule's go on down the chain.
    assert_eq!(s.get("/plain.html").status, 200);
    assert_eq!(s.get("/old.html/x").status, 404);
    // A slash written `%2f` is a slash: not the rule's path, as the file lookup sees it.
    assert_eq!(s.get("/old.html/").status, 404);
    assert_eq!(s.get("/old.html%2f").status, 404);
}

#[test]
fn head_gets_the_same_head_and_no_body() {
    let s = start();
    let get = s.get("/old.html");
    let head = s.raw("HEAD /old.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(head.status, 301);
    assert_eq!(head.header("location"), Some("/plain.html"));
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert!(head.body.is_empty());
}

#[test]
fn a_prefix_rule_carries_the_rest_of_the_decoded_path_re_encoded() {
    let s = start();
    let r = s.get("/blog/2024/a%20b/%C3%BC%3F.html?x=1");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://blog.example.com/posts/2024/a%20b/%C3%BC%3F.html?x=1")
    );
}

#[test]
fn a_regex_rule_fills_in_its_captures_encoded_and_can_drop_the_query() {
    let s = start();
    let r = s.get("/u/42/my%20page%23top?utm=x");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/people/42/my%20page%23top"));
}

#[test]
fn a_real_client_follows_the_location_to_the_file() {
    let s = start();
    let out = std::process::Command::new("curl")
        .args(["-s", "-L", "-w", "\n%{http_code} %{url_effective}"])
        .arg(format!("http://{}/old.html", s.addr))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("<html><body><p>Test page."), "{text}");
    assert!(
        text.ends_with(&format!("200 http://{}/plain.html", s.addr)),
        "{text}"
    );
}

#[test]
fn every_method_is_redirected_and_307_tells_the_client_to_keep_it() {
    let s = start();
    let r = s
        .raw("POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=1");
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("/elsewhere"));
}

#[test]
fn a_target_that_would_leave_the_site_stops_start_up() {
    let bad = "[[plugins.redirect.rules]]\nprefix = \"/go/\"\nto = \"//evil.example/\"\n";
    let e = start_refused("redirect-open", CHAIN_REDIRECT, bad);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains("refused its settings [plugins.redirect]")
            && e.stderr
                .contains("rules[0]: to = \"//evil.example/\" would send browsers to another host"),
        "{}",
        e.stderr
    );
}
