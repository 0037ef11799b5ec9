//! HTTP/1.1 semantics in the host, tested over raw sockets.

use crate::support::*;
use std::io::{Read, Write};
use std::time::Duration;

fn send(s: &mut std::net::TcpStream, req: &str) {
    s.write_all(req.as_bytes()).unwrap();
}

#[test]
fn http11_connections_are_persistent_by_default() {
    let s = Server::shipped();
    let mut c = s.connect();
    for _ in 0..3 {
        send(&mut c, "GET /plain.html HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = read_response(&mut c, false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
    }
}

#[test]
fn http10_closes_unless_keep_alive_is_asked_for() {
    let s = Server::shipped();
    let mut c = s.connect();
    send(&mut c, "GET /plain.html HTTP/1.0\r\n\r\n");
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_within(&mut c, Duration::from_secs(3)));

    let mut c = s.connect();
    send(
        &mut c,
        "GET /plain.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    send(
        &mut c,
        "GET /notes.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(read_response(&mut c, false).unwrap().text(), "just text\n");
}

#[test]
fn connection_close_is_honoured_and_announced() {
    let s = Server::shipped();
    let mut c = s.connect();
    send(
        &mut c,
        "GET /plain.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_within(&mut c, Duration::from_secs(3)));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = Server::shipped();
    let mut c = s.connect();
    send(
        &mut c,
        "GET /plain.html HTTP/1.1\r\nHost: t\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\nHEAD /subdir/ HTTP/1.1\r\nHost: t\r\n\r\nGET /missing HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(read_response(&mut c, false)
        .unwrap()
        .text()
        .contains("Test page"));
    assert_eq!(read_response(&mut c, false).unwrap().text(), "just text\n");
    let h = read_response(&mut c, true).unwrap();
    assert_eq!((h.status, h.header("content-length")), (200, Some("20")));
    assert_eq!(read_response(&mut c, false).unwrap().status, 404);
}

#[test]
fn a_connection_is_closed_after_its_request_cap() {
    let s = Server::shipped_with("[limits]\nmax_requests_per_connection = 2\n");
    let mut c = s.connect();
    send(&mut c, "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        read_response(&mut c, false).unwrap().header("connection"),
        None
    );
    send(&mut c, "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_within(&mut c, Duration::from_secs(3)));
    assert_eq!(s.get("/notes.txt").status, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let s = Server::shipped_with("[limits]\nkeepalive_timeout = 0.5\n");
    let mut c = s.connect();
    send(&mut c, "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    read_response(&mut c, false).unwrap();
    let start = std::time::Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(5)));
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_keep_alive_connection_serves_requests_after_pauses_within_the_timeout() {
    // A connection first waits for its next request inside its burst for a moment, then
    // goes back to idle: a request after either kind of pause is answered.
    let s = Server::shipped_with("[limits]\nkeepalive_timeout = 2.0\n");
    let mut c = s.connect();
    for pause_ms in [0, 10, 300, 700] {
        std::thread::sleep(Duration::from_millis(pause_ms));
        send(&mut c, "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = read_response(&mut c, false).expect("answered after the pause");
        assert_eq!(r.status, 200, "after {pause_ms} ms");
    }
}

#[test]
fn closing_after_an_error_does_not_reset_away_the_response() {
    // The client sends more than the server reads before it closes: without a graceful
    // (lingering) close the kernel answers with RST and the client may lose the 400.
    let s = Server::shipped();
    let mut c = s.connect();
    let mut req =
        b"GET /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 200_000));
    let _ = c.write_all(&req);
    std::thread::sleep(Duration::from_millis(200));
    let r = read_response(&mut c, false).expect("the 400 arrives intact");
    assert_eq!(r.status, 400);
}

#[test]
fn a_missing_or_repeated_host_in_http11_is_400_and_http10_needs_none() {
    let s = Server::shipped();
    assert_eq!(s.raw("GET /notes.txt HTTP/1.1\r\n\r\n").status, 400);
    assert_eq!(
        s.raw("GET /notes.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            .status,
        400
    );
    assert_eq!(s.raw("GET /notes.txt HTTP/1.0\r\n\r\n").status, 200);
}

/// Host is `uri-host [":" port]` (RFC 9110 §7.2) and an http URI's host is never empty
/// (§4.2.1): anything else is 400 (RFC 9112 §3.2), as lighttpd answers; so is an
/// absolute-form target with userinfo (§4.2.4), a fragment or no host (nginx, lighttpd).
#[test]
fn invalid_hosts_and_absolute_forms_without_a_valid_host_are_400() {
    let s = Server::shipped();
    for host in [
        "",
        "[::1",
        "::1",
        "localhost:abc",
        "x<y",
        "a\"b",
        "a{b",
        "a|b",
        "a#b",
        "a?b",
        // Brackets hold an IPv6 address or IPvFuture, nothing else (RFC 3986 §3.2.2).
        "[zz]",
        "[::g]",
        "[1:2:3:4:5:6:7:8:9]",
        "[v1]",
    ] {
        let r = s.raw(&format!("GET /notes.txt HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!(r.status, 400, "Host: {host}");
    }
    for host in [
        "example.test",
        "a.test:8080",
        "127.0.0.1:1",
        "[::1]:80",
        "[::ffff:127.0.0.1]",
        "[v7.a:b]",
        "under_score",
    ] {
        let r = s.raw(&format!(
            "GET /notes.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(r.status, 200, "Host: {host}");
    }
    for target in [
        "http://x#frag/notes.txt",
        "http:///notes.txt",
        "http://u:p@x.test/notes.txt",
        "http://x<y/notes.txt",
        "http://[zz]/notes.txt",
    ] {
        let r = s.raw(&format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(r.status, 400, "{target}");
    }
}

#[test]
fn absolute_form_targets_are_accepted() {
    let s = Server::shipped();
    let r = s.raw("GET http://example.test/notes.txt HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "just text\n"));
    // A fragment after the path is cut, as in origin-form (nginx and lighttpd serve both).
    for target in ["http://example.test/notes.txt#top", "/notes.txt#top"] {
        let r = s.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "just text\n"),
            "{target}"
        );
    }
}

/// The request line, chunk lines and trailers are read by the head's rules: a space in
/// the target is a malformed line (400, not 505); a bare CR in a chunk extension or a
/// trailer, a trailer without a name, or 8 KiB of trailers is refused (RFC 9112 §2.2,
/// §7.1); an empty Expect asks for nothing.
#[test]
fn malformed_lines_in_the_target_chunks_and_trailers_are_400() {
    let s = Server::shipped();
    assert_eq!(s.raw("GET /a b HTTP/1.1\r\nHost: t\r\n\r\n").status, 400);
    let post = |body: &str| {
        s.raw(&format!(
            "POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}"
        ))
        .status
    };
    assert_eq!(post("5;a=x\ry\r\nhello\r\n0\r\n\r\n"), 400);
    assert_eq!(post("5\r\nhello\r\n0\r\nX-A: a\rb\r\n\r\n"), 400);
    assert_eq!(post("5\r\nhello\r\n0\r\nno colon\r\n\r\n"), 400);
    let many: String = (0..1000).map(|i| format!("X-T-{i}: v\r\n")).collect();
    assert_eq!(post(&format!("5\r\nhello\r\n0\r\n{many}\r\n")), 431);
    assert_eq!(post("0005\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), 200);
    let r = s.raw("GET /notes.txt HTTP/1.1\r\nHost: t\r\nExpect:\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn request_bodies_are_consumed_so_the_next_request_parses() {
    let s = Server::shipped();
    let mut c = s.connect();
    send(&mut c, "POST /notes.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello worldGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(read_response(&mut c, false).unwrap().text(), "just text\n");
    send(&mut c, "POST /notes.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /plain.html HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(read_response(&mut c, false).unwrap().status, 405);
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
}

fn rejected_and_closed(s: &Server, req: &str, status: u16) {
    let mut c = s.connect();
    send(&mut c, req);
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, status, "{req:?}");
    assert_eq!(r.header("connection"), Some("close"), "{req:?}");
    assert!(closed_within(&mut c, Duration::from_secs(5)), "{req:?}");
}

#[test]
fn ambiguous_framing_is_refused_and_the_connection_closed() {
    let s = Server::shipped();
    let smuggle = "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    rejected_and_closed(&s, &format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggle}"), 400);
    rejected_and_closed(&s, &format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd{smuggle}"), 400);
    rejected_and_closed(
        &s,
        &format!("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{smuggle}"),
        400,
    );
    rejected_and_closed(
        &s,
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
    // A coding we cannot decode before a final chunked: 501 (RFC 9112 §6.1), as nginx says.
    rejected_and_closed(
        &s,
        &format!("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n{smuggle}"),
        501,
    );
    rejected_and_closed(
        &s,
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc",
        400,
    );
    rejected_and_closed(
        &s,
        "GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
        400,
    );
    assert_eq!(s.get("/notes.txt").status, 200);
}

/// Send `content_length` fields with a 5-byte body and a pipelined GET: the body must be read
/// as 5 bytes, so the GET after it is answered too.
fn body_of_five_then_a_get(s: &Server, content_length: &str) {
    let mut c = s.connect();
    send(&mut c, &format!("POST /notes.txt HTTP/1.1\r\nHost: t\r\n{content_length}\r\nhelloGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 405, "{content_length:?}");
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "just text\n"),
        "{content_length:?}"
    );
}

#[test]
fn a_repeated_content_length_is_refused_even_when_identical() {
    // RFC 9110 §8.6 lets a recipient refuse a repeated value; nginx and lighttpd do, for a
    // list and for repeated fields alike, so a peer that takes the first member cannot
    // disagree with us about where the body ends.
    let s = Server::shipped();
    let smuggle = "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    for cl in [
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5 , 5\r\n",
        "Content-Length: 0005 ,5\r\n",
        "Content-Length: 5, 05\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 05\r\n",
        "Content-Length: 5,\r\n",
    ] {
        let req = format!("POST /notes.txt HTTP/1.1\r\nHost: t\r\n{cl}\r\nhello{smuggle}");
        rejected_and_closed(&s, &req, 400);
    }
    rejected_and_closed(
        &s,
        "GET /notes.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0, 0\r\n\r\n",
        400,
    );
}

#[test]
fn a_content_length_with_leading_zeros_is_read_as_its_number() {
    // RFC 9110 §8.6: Content-Length = 1*DIGIT, so 005 is 5 (as nginx reads it).
    let s = Server::shipped();
    body_of_five_then_a_get(&s, "Content-Length: 005\r\n");
}

#[test]
fn a_content_length_with_spaces_around_it_is_read_as_its_number() {
    let s = Server::shipped();
    body_of_five_then_a_get(&s, "Content-Length:  5 \r\n");
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body_is_sent() {
    let s = Server::shipped();
    let mut c = s.connect();
    send(&mut c, "POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let mut buf = [0u8; 25];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    send(&mut c, "body");
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
}

#[test]
fn expect_lines_are_one_list_and_an_empty_one_asks_for_no_100() {
    let s = Server::shipped();
    // Two lines are one list (RFC 9110 §5.3): the second's unknown member is 417 too.
    let r = s.raw("POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\nExpect: tea\r\nConnection: close\r\n\r\nbody");
    assert_eq!(r.status, 417);
    // An empty Expect asks for nothing: no interim answer, just the final one.
    let mut c = s.connect();
    send(
        &mut c,
        "POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect:\r\n\r\n",
    );
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut early = [0u8; 64];
    let got = c.read(&mut early);
    assert!(
        got.is_err(),
        "{:?}",
        got.map(|n| String::from_utf8_lossy(&early[..n]).into_owned())
    );
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut c, "body");
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn expect_with_an_oversized_body_gets_413_without_100() {
    let s = Server::shipped_with("[limits]\nmax_body = 10\n");
    let mut c = s.connect();
    send(&mut c, "POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 413);
    assert!(!r.raw_head.contains("100 Continue"));
}

#[test]
fn unknown_methods_are_501_and_disallowed_ones_405_with_allow() {
    let s = Server::shipped();
    let r = s.raw("BREW /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 501);
    // Allow would name the file's methods, which a 501 is not about (nginx and lighttpd
    // send none).
    assert_eq!(r.header("allow"), None);
    let r = s.raw("DELETE /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    let r = s.raw("TRACE / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 405);
}

#[test]
fn a_refused_connect_closes_so_tunnel_bytes_are_never_read_as_requests() {
    // A client may start its tunnel before the answer comes: what follows a CONNECT must
    // not be served as a request of its own (nginx and lighttpd close too).
    let s = Server::shipped();
    let mut c = s.connect();
    send(
        &mut c,
        "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 501);
    assert_eq!(r.header("connection"), Some("close"));
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert_eq!(String::from_utf8_lossy(&rest), "");
}

#[test]
fn the_hosts_own_400_and_501_close_the_connection_and_what_follows_is_not_served() {
    // nginx and lighttpd close after the 400 or 501 they make themselves: the bytes behind
    // a request the host could not make sense of may be the rest of it.
    let s = Server::shipped();
    for bad in [
        "GET /%00 HTTP/1.1",
        "GET /../notes.txt HTTP/1.1",
        "GET notes.txt HTTP/1.1",
        "GET * HTTP/1.1",
        "CONNECT t:443 HTTP/1.1",
    ] {
        let mut c = s.connect();
        send(
            &mut c,
            &format!("{bad}\r\nHost: t\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n"),
        );
        let r = read_response(&mut c, false).unwrap();
        assert!(matches!(r.status, 400 | 501), "{bad}: {}", r.status);
        assert_eq!(r.header("connection"), Some("close"), "{bad}");
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        assert_eq!(String::from_utf8_lossy(&rest), "", "{bad}");
    }
    // A case's own 404 keeps it open: the next request is served.
    let mut c = s.connect();
    send(
        &mut c,
        "GET /missing HTTP/1.1\r\nHost: t\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(read_response(&mut c, false).unwrap().status, 404);
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
}

#[test]
fn options_lists_the_allowed_methods() {
    let s = Server::shipped();
    let r = s.raw("OPTIONS /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(r.header("content-length"), Some("0"));
    let r = s.raw("OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    let server_wide = r.header("allow").unwrap().to_string();
    assert!(server_wide.contains("POST"), "{server_wide}");
    // An absolute-form target without a path is the same question (RFC 9112 §3.2.4).
    let r = s.raw("OPTIONS http://t HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.header("allow"), Some(server_wide.as_str()));
}

#[test]
fn every_response_carries_date_server_and_framing() {
    let s = Server::shipped();
    for path in ["/plain.html", "/listing/", "/missing", "/hello"] {
        let r = s.get(path);
        let date = r.header("date").expect("Date");
        assert!(httpdate_ok(date), "{date}");
        assert!(r.header("server").unwrap().starts_with("cases/"));
        assert!(r.header("content-length").is_some(), "{path}");
    }
    // A script's answer is sent with a Content-Length when it is short and done at once,
    // chunked when it trickles or is long: exactly one of the two, always.
    let cgi = s.get("/cgi-bin/hello.sh");
    let framed = [
        cgi.header("transfer-encoding"),
        cgi.header("content-length"),
    ];
    assert_eq!(
        framed.iter().filter(|h| h.is_some()).count(),
        1,
        "{framed:?}"
    );
    assert_eq!(cgi.text(), "cgi says hi, query=\n");
}

fn httpdate_ok(d: &str) -> bool {
    d.ends_with(" GMT") && d.len() == 29 && d.as_bytes()[3] == b','
}

#[test]
fn head_gets_the_same_headers_as_get_and_no_body_whichever_case_answers() {
    let s = Server::shipped();
    for path in ["/plain.html", "/listing/", "/missing", "/hello", "/subdir/"] {
        let g = s.get(path);
        let mut c = s.connect();
        send(&mut c, &format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
        let h = read_response(&mut c, true).unwrap();
        assert_eq!(h.status, g.status, "{path}");
        assert_eq!(
            h.header("content-length"),
            g.header("content-length"),
            "{path}"
        );
        assert_eq!(h.header("content-type"), g.header("content-type"), "{path}");
        // No body: the next response on the connection starts right away.
        send(&mut c, "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(
            read_response(&mut c, false).unwrap().text(),
            "just text\n",
            "{path}"
        );
    }
}

#[test]
fn a_head_the_host_refuses_before_any_case_gets_no_body_either() {
    // Two Hosts (400), no Host (400), an expectation it cannot meet (417), Content-Length
    // with Transfer-Encoding (400): refused before the chain runs, yet still HEAD.
    let s = Server::shipped();
    for (extra, status) in [
        ("Host: a\r\nHost: b\r\n", 400),
        ("", 400),
        ("Host: t\r\nExpect: tea\r\n", 417),
        (
            "Host: t\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n",
            400,
        ),
    ] {
        let mut c = s.connect();
        send(&mut c, &format!("HEAD /plain.html HTTP/1.1\r\n{extra}\r\n"));
        let h = read_response(&mut c, true).unwrap();
        assert_eq!(h.status, status, "{extra:?}");
        assert!(h.header("content-length").is_some(), "{extra:?}");
        // The server closes after a refusal: whatever follows the head would be a body.
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        assert_eq!(String::from_utf8_lossy(&rest), "", "{extra:?}");
    }
}

#[test]
fn a_listing_answers_preconditions_as_a_file_does() {
    // RFC 9110 §13.1.1-2: "*" matches any current representation; a list no current
    // ETag is in fails If-Match. nginx answers its autoindex pages so.
    let s = Server::shipped();
    let ask = |field: &str| {
        s.raw(&format!(
            "GET /listing/ HTTP/1.1\r\nHost: t\r\n{field}\r\nConnection: close\r\n\r\n"
        ))
    };
    let r = ask("If-None-Match: *");
    assert_eq!((r.status, r.body.len()), (304, 0));
    assert_eq!(ask("If-Match: \"zz\"").status, 412);
    assert_eq!(ask("If-None-Match: \"zz\"").status, 200);
    // An empty member matches nothing, also where the answer has no ETag.
    assert_eq!(ask("If-None-Match: \"zz\", ,").status, 200);
}

#[test]
fn a_folder_without_its_slash_redirects_keeping_the_query() {
    let s = Server::shipped();
    let r = s.get("/listing?sort=name");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/listing/?sort=name"));
    let r = s.get("/sub%64ir");
    assert_eq!(r.header("location"), Some("/subdir/"));
    // A folder named with `%2f` at its end is sent to its real slash, where its relative
    // links work.
    let r = s.get("/subdir%2F");
    assert_eq!((r.status, r.header("location")), (301, Some("/subdir/")));
}

#[test]
fn a_folder_redirect_never_sends_the_browser_to_another_host() {
    let s = Server::shipped();
    for target in [
        "//evil.example/%2e%2e/listing",
        "/\\evil.example/%2e%2e/listing",
        "//evil.example/..//listing",
        "/./%2flisting",
    ] {
        let r = s.raw(&format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(r.status, 301, "{target}");
        let loc = r.header("location").unwrap_or_default().to_string();
        assert_eq!(loc, "/listing/", "{target}");
    }
}

#[test]
fn a_folder_redirect_percent_encodes_the_path() {
    let s = Server::shipped();
    let dir = s.root.join("a b%");
    std::fs::create_dir_all(&dir).unwrap();
    let r = s.get("/a%20b%25?x=1");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/a%20b%25/?x=1"));
}

#[test]
fn a_later_http_1_minor_version_is_answered_as_1_1() {
    // RFC 9110 §2.5: processed as the highest minor version we implement, as nginx does.
    let s = Server::shipped();
    let mut c = s.connect();
    send(&mut c, "GET /notes.txt HTTP/1.2\r\nHost: t\r\n\r\n");
    let r = read_response(&mut c, false).unwrap();
    assert_eq!((r.status, r.header("connection")), (200, None));
    send(&mut c, "HEAD /notes.txt HTTP/1.9\r\nHost: t\r\n\r\n");
    assert_eq!(read_response(&mut c, true).unwrap().status, 200);
    assert_eq!(s.raw("GET / HTTP/1.10\r\nHost: t\r\n\r\n").status, 400);
}

#[test]
fn an_unsupported_http_version_is_505() {
    let s = Server::shipped();
    assert_eq!(s.raw("GET / HTTP/2.0\r\nHost: t\r\n\r\n").status, 505);
    assert_eq!(s.raw("GET / HTTX/1.1\r\nHost: t\r\n\r\n").status, 400);
}

#[test]
fn one_or_several_event_loops_serve_alike() {
    // In single-process mode `workers` counts event loop threads.
    let cases = [
        ("single_process = true\nworkers = 1", 1),
        ("single_process = true\nworkers = 3", 3),
    ];
    for (workers, loops) in cases {
        let s = Server::start(CHAIN, workers);
        // The main thread runs the first loop; the others are threads named loop-N.
        let named = std::fs::read_dir(format!("/proc/{}/task", s.child.id()))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|c| c.starts_with("loop-"))
            .count();
        assert_eq!(named + 1, loops, "{workers}");
        let addr = s.addr;
        let clients: Vec<_> = (0..12)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut c = std::net::TcpStream::connect(addr).unwrap();
                    for _ in 0..5 {
                        send(&mut c, "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
                        assert_eq!(read_response(&mut c, false).unwrap().text(), "just text\n");
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    }
}

/// The bytes column counts what went out, as nginx's does: all of a script's stream (its
/// length unknown when the head left), and only part of a download the client cut short,
/// still logged with the status it was sent with.
#[test]
fn the_access_log_counts_the_body_bytes_sent_of_streams_and_cut_downloads() {
    // One worker: the lines are asserted in order (see the combined-format test).
    let s = Server::start(CHAIN, "workers = 1\naccess_log = \"access.log\"");
    let script = s.root.join("cgi-bin/pause.sh");
    let text = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho first\nsleep 1\necho second\n";
    std::fs::write(&script, text).unwrap();
    chmod(&script, 0o755);
    let r = s.get("/cgi-bin/pause.sh?q=streamed");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "first\nsecond\n");
    let streamed = r.body.len();
    std::fs::write(s.root.join("big.bin"), vec![7u8; 64 << 20]).unwrap();
    let mut c = s.connect();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 256 << 10];
    c.read_exact(&mut first).unwrap();
    drop(c);
    let log = s.access_log("access.log", 2);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].contains(&format!(
            "\"GET /cgi-bin/pause.sh?q=streamed HTTP/1.1\" 200 {streamed} "
        )),
        "{log}"
    );
    let cut = lines[1]
        .split_once("\"GET /big.bin HTTP/1.1\" 200 ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no byte count: {log}"));
    assert!(cut > 0 && cut < 64 << 20, "{cut}: {log}");
}

#[test]
fn the_access_log_records_each_request_in_combined_format() {
    // One worker: the lines are asserted in the order the requests were made, and two
    // workers each write their own lines (a line follows its answer out, so the next
    // request, on another worker, can be logged first, as with nginx's workers).
    let s = Server::start(CHAIN, "workers = 1\naccess_log = \"access.log\"");
    let r = s.raw("GET /notes.txt?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1.0\r\nReferer: http://r.test/\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    s.get("/missing\"quote");
    // Requests the host refuses before any case runs are logged too.
    assert_eq!(s.raw("GET /x HTTP/1.1\r\n\r\n").status, 400);
    assert_eq!(s.raw("NOT A REQUEST\r\n\r\n").status, 400);
    let log = s.access_log("access.log", 4);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(lines[2].contains("\"GET /x HTTP/1.1\" 400 "), "{log}");
    // What a bad client sent is logged as it came, escaped, as nginx logs it.
    assert!(lines[3].contains("] \"NOT A REQUEST\" 400 "), "{log}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{log}");
    assert!(
        lines[0]
            .ends_with("] \"GET /notes.txt?x=1 HTTP/1.1\" 200 10 \"http://r.test/\" \"probe/1.0\""),
        "{log}"
    );
    // Client-sent quotes cannot forge fields.
    assert!(
        lines[1].contains("\"GET /missing\\x22quote HTTP/1.1\" 404 "),
        "{log}"
    );
}

#[test]
fn server_tokens_off_names_the_server_without_its_version_in_headers_and_pages() {
    let version = concat!("cases/", env!("CARGO_PKG_VERSION"));
    let shown = Server::shipped();
    let r = shown.get("/nothing-here");
    assert_eq!(r.header("server"), Some(version));
    assert!(r.text().contains(version), "{}", r.text());
    let hidden = Server::shipped_with("server_tokens = false");
    for path in ["/nothing-here", "/plain.html"] {
        let r = hidden.get(path);
        assert_eq!(r.header("server"), Some("cases"), "{path}");
        assert!(!r.text().contains(version), "{path}: {}", r.text());
    }
}

#[test]
fn a_method_the_file_does_not_take_is_405_at_once_without_waiting_for_the_body() {
    // nginx answers a POST to a file at once; the body (which may come slowly, or never)
    // is not waited for, and no 100 Continue invites it.
    let s = Server::shipped();
    // What comes within 5 s of sending `sent`, with the rest of its body held back.
    let before_the_body = |sent: &str| {
        let mut c = s.connect();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(sent.as_bytes()).unwrap();
        read_response(&mut c, false).expect("an answer before the body")
    };
    for expect in ["", "Expect: 100-continue\r\n"] {
        let r = before_the_body(&format!(
            "POST /plain.html HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n{expect}\r\n"
        ));
        assert_eq!(r.status, 405, "{expect}: {}", r.raw_head);
        assert_eq!(
            r.header("allow"),
            Some("GET, HEAD, OPTIONS"),
            "{}",
            r.raw_head
        );
        assert_eq!(r.header("connection"), Some("close"), "{}", r.raw_head);
    }
    // Part of the body with the head (slowhttptest's slow body): the rest is not waited for.
    let part = "POST /plain.html HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\nfoo=bar";
    assert_eq!(before_the_body(part).status, 405);
    // A body that came whole with its head is read as before, and the connection stays.
    let r = s.raw("POST /plain.html HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("connection"), None, "{}", r.raw_head);
    // A method no case knows is 501 whatever the body says: at once too.
    let unknown = "FROB /plain.html HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n";
    assert_eq!(before_the_body(unknown).status, 501);
}

#[test]
fn an_access_log_on_a_full_disk_is_reported_and_requests_are_still_served() {
    let dir = TempDir::new("full-disk");
    let Some(disk) = FullDisk::at(dir.path().join("disk")) else {
        return;
    };
    let log = disk.0.join("access.log");
    let extra = format!(
        "access_log = {:?}\nworkers = 1\n",
        log.display().to_string()
    );
    let s = Server::start(CHAIN, &extra);
    for _ in 0..3 {
        assert_eq!(s.get("/notes.txt").status, 200);
    }
    let says = format!(
        "cannot write the access log {}: No space left on device",
        log.display()
    );
    assert!(s.log_contains(&says), "{}", s.log());
    // Once a minute at most, not a line per request (nginx rate-limits its alert too).
    assert_eq!(s.log().matches("cannot write the access log").count(), 1);
    drop(s);
}
