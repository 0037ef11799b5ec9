//! CGI/1.1 (RFC 3875) through the cgi_file plugin: a script per behaviour, over real sockets.

use crate::support::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A server whose /cgi-bin/ holds the fixture scripts, with extra cgi_file settings.
fn cgi_server(settings: &str, limits: &str, env: &[(&str, &str)]) -> Server {
    let dir = TempDir::new("cgi");
    let root = fixture_root(&dir);
    let src = workspace().join("server/tests/fixtures/cgi-bin");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), root.join("cgi-bin").join(e.file_name())).unwrap();
    }
    // One worker process: max_running counts the scripts of one process.
    let extra = format!("workers = 1\n[limits]\n{limits}\n[plugins.cgi_file]\n{settings}\n");
    Server::start_full(dir, root, &[plugins_dir()], CHAIN, &extra, env)
}

/// A server with one more script, `cgi-bin/<name>` holding `text`, behind compress.
fn coded_script_server(tag: &str, name: &str, text: &str) -> Server {
    let dir = TempDir::new(tag);
    let root = fixture_root(&dir);
    let script = root.join("cgi-bin").join(name);
    std::fs::write(&script, text).unwrap();
    chmod(&script, 0o755);
    let chain = chain_with(&["compress"]);
    Server::start_full(dir, root, &[plugins_dir()], &chain, "workers = 1\n", &[])
}

/// POST `body` to `path` on a new connection and read the answer.
fn post(s: &Server, path: &str, body: &[u8]) -> Response {
    let mut c = s.connect();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(body).unwrap();
    read_response(&mut c, false).unwrap()
}

/// GET `path` from another thread (for requests that must run at the same time).
fn get_in_background(
    addr: std::net::SocketAddr,
    path: &'static str,
) -> std::thread::JoinHandle<Option<Response>> {
    std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        c.write_all(req.as_bytes()).unwrap();
        read_response(&mut c, false)
    })
}

fn env_of(r: &Response) -> std::collections::BTreeMap<String, String> {
    r.text()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_meta_variable_is_set_per_rfc_3875() {
    let s = cgi_server("", "", &[("LEAKY_SERVER_SECRET", "1")]);
    let port = s.addr.port();
    let r = s.raw("POST /cgi-bin/env.py/extra/path%20x?a=%2F%20b&c HTTP/1.1\r\nHost: example.test:8080\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nX-Custom-Thing: yes\r\nAccept: a\r\nAccept: b\r\nConnection: close\r\n\r\nabc");
    assert_eq!(r.status, 200, "{}", s.log());
    let env = env_of(&r);
    let want = [
        ("GATEWAY_INTERFACE", "CGI/1.1".to_string()),
        ("SERVER_NAME", "example.test".into()),
        ("SERVER_PORT", port.to_string()),
        ("SERVER_PROTOCOL", "HTTP/1.1".into()),
        ("REQUEST_METHOD", "POST".into()),
        ("SCRIPT_NAME", "/cgi-bin/env.py".into()),
        ("PATH_INFO", "/extra/path x".into()),
        (
            "PATH_TRANSLATED",
            s.root.join("extra/path x").display().to_string(),
        ),
        ("QUERY_STRING", "a=%2F%20b&c".into()),
        ("REMOTE_ADDR", "127.0.0.1".into()),
        ("CONTENT_LENGTH", "3".into()),
        ("CONTENT_TYPE", "text/plain".into()),
        ("HTTP_X_CUSTOM_THING", "yes".into()),
        ("HTTP_HOST", "example.test:8080".into()),
        ("HTTP_ACCEPT", "a, b".into()),
    ];
    for (k, v) in want {
        assert_eq!(env.get(k), Some(&v), "{k} in {env:?}");
    }
    assert!(env["SERVER_SOFTWARE"].starts_with("cases/"));
    assert!(env["REMOTE_PORT"].parse::<u16>().unwrap() > 0);
    assert!(env.contains_key("PATH"));
    // The server's own environment does not leak, and framing headers are not HTTP_*.
    assert!(!env.contains_key("LEAKY_SERVER_SECRET"));
    assert!(!env.contains_key("HTTP_CONTENT_LENGTH") && !env.contains_key("HTTP_CONTENT_TYPE"));
}

#[test]
fn a_get_without_a_body_has_no_content_length_and_an_empty_query_is_empty() {
    let s = cgi_server("", "", &[]);
    let env = env_of(&s.get("/cgi-bin/env.py"));
    assert_eq!(env.get("QUERY_STRING"), Some(&String::new()));
    assert!(!env.contains_key("CONTENT_LENGTH"));
    assert!(!env.contains_key("PATH_INFO"));
    assert_eq!(env.get("REQUEST_METHOD").map(String::as_str), Some("GET"));
}

#[test]
fn the_proxy_header_never_becomes_http_proxy() {
    let s = cgi_server("", "", &[]);
    let r = s.raw("GET /cgi-bin/env.py HTTP/1.1\r\nHost: t\r\nProxy: http://evil.test:3128\r\nAuthorization: Basic eDp5\r\nConnection: close\r\n\r\n");
    let env = env_of(&r);
    assert!(!env.contains_key("HTTP_PROXY"), "{env:?}");
    assert!(!env.contains_key("HTTP_AUTHORIZATION"), "{env:?}");
}

#[test]
fn settings_add_environment_variables() {
    let s = cgi_server("env = { APP_MODE = \"test\" }", "", &[]);
    assert_eq!(
        env_of(&s.get("/cgi-bin/env.py"))
            .get("APP_MODE")
            .map(String::as_str),
        Some("test")
    );
}

#[test]
fn post_bodies_text_and_binary_reach_stdin_intact() {
    let s = cgi_server("", "", &[]);
    for body in [
        b"hello, script".to_vec(),
        (0..=255u8).cycle().take(5000).collect(),
    ] {
        let r = post(&s, "/cgi-bin/echo.py", &body);
        assert_eq!(r.status, 200);
        assert!(r.body == body);
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
}

#[test]
fn an_extension_method_reaches_a_script_and_is_501_from_a_case_that_does_not_take_it() {
    // lighttpd's mod_cgi, nginx with fcgiwrap and h2o hand QUERY or PROPFIND to the script,
    // and cgi_file takes any method. A case that lists its methods answers another
    // method's 501 (RFC 9110 §15.6.2), and the connection goes on: the request was read.
    let s = cgi_server("", "", &[]);
    let mut c = s.connect();
    c.write_all(
        b"QUERY /cgi-bin/echo.py HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nq=a+b&c=dPROPFIND /notes.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nxyGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "q=a+b&c=d"),
        "{}",
        s.log()
    );
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 501, "{}", r.raw_head);
    assert_eq!(r.header("allow"), None, "{}", r.raw_head);
    assert_eq!(r.header("connection"), None, "{}", r.raw_head);
    assert_eq!(read_response(&mut c, false).unwrap().text(), "just text\n");
    let env =
        env_of(&s.raw("QUERY /cgi-bin/env.py HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    assert_eq!(env.get("REQUEST_METHOD").map(String::as_str), Some("QUERY"));
}

#[test]
fn a_chunked_post_is_dechunked_with_a_content_length() {
    let s = cgi_server("", "", &[]);
    let r = s.raw("POST /cgi-bin/echo.py HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nhello \r\n6\r\nchunks\r\n0\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "hello chunks"));
}

#[test]
fn an_empty_chunked_body_still_has_a_content_length_of_0() {
    // RFC 3875 §4.1.2: CONTENT_LENGTH is set when a body comes with the request, and
    // Transfer-Encoding says one does (RFC 9112 §6), even with no bytes in it.
    let s = cgi_server("", "", &[]);
    let r = s.raw("POST /cgi-bin/env.py HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(
        env_of(&r).get("CONTENT_LENGTH").map(String::as_str),
        Some("0")
    );
}

#[test]
fn bytes_past_ascii_in_a_scripts_header_reach_the_client_unchanged() {
    let s = cgi_server("", "", &[]);
    let mut c = s.connect();
    c.write_all(b"GET /cgi-bin/latin.sh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = &got[..head_end + 2];
    let want = b"X-Latin: caf\xe9\r\n";
    assert!(
        head.windows(want.len()).any(|w| w == want),
        "{}",
        String::from_utf8_lossy(head)
    );
}

#[test]
fn fields_a_scripts_connection_names_are_hop_by_hop_and_dropped() {
    // RFC 9110 §7.6.1: the fields Connection names go with it.
    let s = cgi_server("", "", &[]);
    let r = s.get("/cgi-bin/hop.sh");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-secret"), None, "{}", r.raw_head);
    assert_eq!(r.header("x-kept"), Some("yes"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
}

#[test]
fn a_large_post_is_streamed_to_the_script() {
    let s = cgi_server("", "max_body = 16777216", &[]);
    let body: Vec<u8> = (0..8_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let r = post(&s, "/cgi-bin/echo.py", &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body);
}

#[test]
fn output_is_streamed_as_the_script_writes_it() {
    let s = cgi_server("", "", &[]);
    let mut c = s.connect();
    let start = Instant::now();
    c.write_all(b"GET /cgi-bin/stream.sh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("first") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "first line took {:?}",
        start.elapsed()
    );
    assert!(!String::from_utf8_lossy(&seen).contains("second"));
    c.read_to_end(&mut seen).unwrap();
    assert!(String::from_utf8_lossy(&seen).contains("second"));
}

#[test]
fn a_large_output_arrives_whole_and_chunked() {
    let s = cgi_server("", "", &[]);
    let r = s.get("/cgi-bin/big.sh");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body.len(), 33_554_432);
    assert!(r.body.iter().all(|&b| b == 0));
}

#[test]
fn status_and_location_headers_are_honoured() {
    let s = cgi_server("", "", &[]);
    let r = s.get("/cgi-bin/status.sh");
    assert_eq!((r.status, r.text().as_str()), (404, "not here\n"));
    assert_eq!(r.header("x-script"), Some("yes"));
    let r = s.get("/cgi-bin/created.py");
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("http://example.test/thing/1"));
    let r = s.get("/cgi-bin/away.sh");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://example.test/elsewhere"));
}

#[test]
fn a_local_location_is_a_server_side_redirect() {
    let s = cgi_server("", "", &[]);
    let r = s.get("/cgi-bin/local.sh");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "just text\n");
    assert_eq!(r.header("location"), None);
}

#[test]
fn a_local_redirect_lets_the_script_finish() {
    let s = cgi_server("", "", &[]);
    let r = s.get("/cgi-bin/late.sh");
    assert_eq!((r.status, r.text().as_str()), (200, "just text\n"));
    assert!(s.log_contains("late.sh finished its work"), "{}", s.log());
    assert!(!s.log().contains("signal"), "{}", s.log());
}

#[test]
fn a_local_redirect_out_of_the_site_or_round_a_loop_is_a_logged_500() {
    let s = cgi_server("", "", &[]);
    // The script's mistake, not the client's: no 400.
    let r = s.get("/cgi-bin/goto.sh?/../../outside.sh");
    assert_eq!(r.status, 500, "{}", s.log());
    assert!(
        s.log_contains("which is not a path in the site"),
        "{}",
        s.log()
    );
    let r = s.get("/cgi-bin/goto.sh?self");
    assert_eq!(r.status, 500);
    assert!(
        s.log_contains("more than 10 local redirects"),
        "{}",
        s.log()
    );
    // A redirect within the site still works.
    let r = s.get("/cgi-bin/goto.sh?/notes.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "just text\n"));
}

#[test]
fn a_script_that_exits_leaving_a_child_on_its_stdout_is_answered_at_once_and_whole() {
    // Apache and lighttpd wait for the child; the answer is whole when the script exits.
    let s = cgi_server("timeout = 6.0", "", &[]);
    let start = Instant::now();
    let mut c = s.connect();
    c.write_all(b"GET /cgi-bin/background.sh HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).expect("a whole answer");
    assert_eq!((r.status, r.text().as_str()), (200, "answered\n"));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // The connection goes on.
    c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().text(), "just text\n");
    assert!(s.log_contains("holds stdout open"), "{}", s.log());
}

#[test]
fn a_script_short_of_its_own_content_length_is_logged() {
    let s = cgi_server("", "", &[]);
    let mut c = s.connect();
    c.write_all(b"GET /cgi-bin/short.sh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    // What it wrote under its own length, cut off by the close: an incomplete answer
    // (RFC 9112 §8), also when it was all there before the head went out.
    assert!(text.contains("\r\nContent-Length: 10\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nabc"), "{text}");
    assert!(
        s.log_contains("wrote 7 bytes fewer than its Content-Length"),
        "{}",
        s.log()
    );
}

#[test]
fn a_coded_answer_of_a_script_short_of_its_content_length_does_not_end_as_whole() {
    // The script names 5,000 bytes and writes 2,000 of text: coded, the answer is chunked,
    // and it must break off (no last chunk) rather than end cleanly.
    let text = "#!/bin/sh\nprintf 'Content-Type: text/html\\r\\nContent-Length: 5000\\r\\n\\r\\n'\nhead -c 2000 /dev/zero | tr '\\0' a\n";
    let s = coded_script_server("cgishortcoded", "short_page.sh", text);
    let mut c = s.connect();
    c.write_all(b"GET /cgi-bin/short_page.sh HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all)
        .expect("the server closes the connection");
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("Content-Encoding: gzip"), "{text}");
    assert!(!all.ends_with(b"0\r\n\r\n"), "{text}");
}

#[test]
fn a_full_temp_folder_is_reported_once_and_a_script_waits_for_its_client_instead() {
    // A client that reads nothing for a while: what the script writes past the socket and
    // the 64 KiB in memory would go to a spool file in the temp folder, which is full.
    let dir = TempDir::new("cgi-full-tmp");
    let Some(disk) = FullDisk::at(dir.path().join("tmp")) else {
        return;
    };
    let root = fixture_root(&dir);
    let script = root.join("cgi-bin/big.sh");
    let text =
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nhead -c 4194304 /dev/zero\n";
    std::fs::write(&script, text).unwrap();
    chmod(&script, 0o755);
    let tmp = disk.0.to_str().unwrap();
    let s = Server::start_full(
        dir,
        root,
        &[plugins_dir()],
        CHAIN,
        "workers = 1\n",
        &[("TMPDIR", tmp)],
    );
    for _ in 0..3 {
        let mut c = s.connect();
        c.write_all(b"GET /cgi-bin/big.sh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let r = read_response(&mut c, false).expect("the whole answer");
        assert_eq!((r.status, r.body.len()), (200, 4 << 20));
    }
    // One line, not one an answer (nginx warns of its temp files per request).
    assert_eq!(s.log().matches("spool file").count(), 1, "{}", s.log());
    drop(s);
}

#[test]
fn output_past_the_scripts_own_content_length_is_cut_there() {
    let s = cgi_server("", "", &[]);
    let mut c = s.connect();
    c.write_all(b"GET /cgi-bin/overlong.sh HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "hel"));
    assert_eq!(r.header("content-length"), Some("3"));
    // The connection goes on.
    c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().text(), "just text\n");
}

/// Two lengths, or one that is no number, leave the body's end unknown: 502, as a gateway
/// answers (RFC 9112 §6.3; nginx refuses a duplicate Content-Length from upstream). The
/// same length twice is one length.
#[test]
fn a_script_naming_two_lengths_or_no_number_gets_502_and_equal_ones_pass() {
    let s = cgi_server("", "", &[]);
    for bad in ["two", "bad"] {
        let r = s.get(&format!("/cgi-bin/lengths.sh?{bad}"));
        assert_eq!(r.status, 502, "{bad}");
        assert!(!r.text().contains("hel"), "{bad}");
    }
    assert!(s.log_contains("names no one length"), "{}", s.log());
    for same in ["same", "list"] {
        let r = s.get(&format!("/cgi-bin/lengths.sh?{same}"));
        assert_eq!((r.status, r.text().as_str()), (200, "hello"), "{same}");
        assert_eq!(r.header("content-length"), Some("5"), "{same}");
    }
}

#[test]
fn a_status_that_is_no_final_answer_gives_502_and_304_or_205_drop_the_body() {
    let s = cgi_server("", "", &[]);
    for bad in ["101", "999", "600", "99"] {
        let r = s.get(&format!("/cgi-bin/status_q.sh?{bad}"));
        assert_eq!(r.status, 502, "{bad}");
    }
    let r = s.get("/cgi-bin/status_q.sh?299");
    assert_eq!((r.status, r.text().as_str()), (299, "body\n"));
    let r = s.raw("GET /cgi-bin/status_q.sh?304 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (304, ""));
    // 205 carries no content (RFC 9110 §15.3.6), and says so with Content-Length: 0.
    let r = s.get("/cgi-bin/status_q.sh?205");
    assert_eq!((r.status, r.text().as_str()), (205, ""));
    assert_eq!(r.header("content-length"), Some("0"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!s.log().contains("failed after it started"), "{}", s.log());
}

#[test]
fn a_205_from_a_script_is_not_coded_and_head_gets_the_head_of_get() {
    // 205 has no content to code (RFC 9110 §15.3.6), and HEAD gets GET's head (§9.3.2),
    // also when the script's body comes after a pause (no length when the head goes out).
    let slow = "#!/bin/sh\nprintf 'Status: 205\\r\\nContent-Type: text/html\\r\\n\\r\\n'\nsleep 0.3\nprintf 'a body that is long enough to code\\n'\n";
    let s = coded_script_server("cgi205", "slow205.sh", slow);
    for method in ["GET", "HEAD"] {
        let r = s.raw(&format!("{method} /cgi-bin/slow205.sh HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br, gzip\r\nConnection: close\r\n\r\n"));
        let framing = (r.header("content-encoding"), r.header("content-length"));
        assert_eq!((r.status, framing), (205, (None, Some("0"))), "{method}");
    }
}

#[test]
fn head_of_a_small_script_answer_with_its_length_gets_the_head_of_get() {
    // RFC 9110 §9.3.2. Under compress's min_size, GET goes uncoded with the script's
    // length; HEAD, whose body the host does not wait for, said gzip and chunked.
    let text = "#!/bin/sh\nprintf 'Content-Type: text/html\\r\\nContent-Length: 100\\r\\n\\r\\n'\nhead -c 100 /dev/zero | tr '\\0' a\n";
    let s = coded_script_server("cgihead", "small.sh", text);
    for method in ["GET", "HEAD", "GET", "HEAD"] {
        let r = s.raw(&format!("{method} /cgi-bin/small.sh HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"));
        let framing = (r.header("content-encoding"), r.header("content-length"));
        assert_eq!((r.status, framing), (200, (None, Some("100"))), "{method}");
    }
}

#[test]
fn registered_statuses_from_a_script_carry_their_registered_reason_phrase() {
    let s = cgi_server("", "", &[]);
    for (code, phrase) in [
        (451, "Unavailable For Legal Reasons"),
        (428, "Precondition Required"),
        (203, "Non-Authoritative Information"),
        (507, "Insufficient Storage"),
    ] {
        let r = s.get(&format!("/cgi-bin/status_q.sh?{code}"));
        let line = r.raw_head.lines().next().unwrap_or_default().to_string();
        assert_eq!(line, format!("HTTP/1.1 {code} {phrase}"));
    }
}

#[test]
fn a_scripts_own_etag_answers_if_none_match_and_if_match() {
    // RFC 9110 §13.2.1: the server evaluates preconditions for a 200 it would send; the
    // script ignores them (Apache's mod_cgi answers them for it too).
    let s = cgi_server("", "", &[]);
    let ask = |field: &str| {
        s.raw(&format!(
            "GET /cgi-bin/etag.sh HTTP/1.1\r\nHost: t\r\n{field}\r\nConnection: close\r\n\r\n"
        ))
    };
    let r = ask("If-None-Match: \"v1\"");
    assert_eq!((r.status, r.text().as_str()), (304, ""));
    assert_eq!(r.header("etag"), Some("\"v1\""));
    assert_eq!(ask("If-None-Match: \"v0\"").text(), "version one\n");
    assert_eq!(ask("If-Match: \"v0\"").status, 412);
    assert_eq!(ask("If-Match: \"v1\"").status, 200);
}

#[test]
fn path_info_keeps_a_trailing_slash_once_and_a_folder_gets_its_slash() {
    let s = cgi_server("", "", &[]);
    // A slash written `%2f` is a slash too, as the file lookup takes it.
    for (path, info) in [
        ("/cgi-bin/env.py/", "/"),
        ("/cgi-bin/env.py/a/", "/a/"),
        ("/cgi-bin/env.py/a%2f", "/a/"),
        ("/cgi-bin/env.py/a%2fb", "/a/b"),
    ] {
        let env = env_of(&s.get(path));
        assert_eq!(
            env.get("PATH_INFO").map(String::as_str),
            Some(info),
            "{path}"
        );
    }
    std::fs::create_dir(s.root.join("cgi-bin/sub")).unwrap();
    let r = s.get("/cgi-bin/sub?x=1");
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("/cgi-bin/sub/?x=1"))
    );
    assert_eq!(s.get("/cgi-bin/sub/").status, 403);
    assert_eq!(s.get("/cgi-bin/env.py/%ff").status, 400);
}

#[test]
fn server_name_is_a_url_host_an_ipv6_address_in_brackets_and_a_name_without_its_final_dot() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this machine cannot listen on [::1]");
        return;
    }
    let s = Server::start_on("[::1]:0", CHAIN, "");
    let env_py = workspace().join("server/tests/fixtures/cgi-bin/env.py");
    std::fs::copy(env_py, s.root.join("cgi-bin/env.py")).unwrap();
    let name = |head: &str| {
        let env = env_of(&s.raw(&format!("GET /cgi-bin/env.py HTTP/1.0\r\n{head}\r\n")));
        env.get("SERVER_NAME").cloned()
    };
    // No Host (HTTP/1.0): our address, as RFC 3875 §4.1.14 writes an IPv6 one, so that
    // http://$SERVER_NAME:$SERVER_PORT/ is a URL.
    assert_eq!(name("").as_deref(), Some("[::1]"));
    assert_eq!(name("Host: [::1]:8080\r\n").as_deref(), Some("[::1]"));
    // One spelling of a name, as lighttpd gives it (and as the site was chosen).
    assert_eq!(
        name("Host: Example.TEST.:8080\r\n").as_deref(),
        Some("example.test")
    );
}

#[test]
fn an_absolute_form_target_gives_an_origin_form_request_uri_and_cookies_join_with_semicolons() {
    let s = cgi_server("", "", &[]);
    let r = s.raw("GET http://Example.TEST:8080/cgi-bin/env.py/p?q=1 HTTP/1.1\r\nHost: other\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n");
    let env = env_of(&r);
    let get = |k: &str| env.get(k).map(String::as_str);
    assert_eq!(get("REQUEST_URI"), Some("/cgi-bin/env.py/p?q=1"));
    assert_eq!(get("SERVER_NAME"), Some("example.test"));
    assert_eq!(get("HTTP_HOST"), Some("Example.TEST:8080"));
    assert_eq!(get("HTTP_COOKIE"), Some("a=1; b=2"));
    assert_eq!(get("REQUEST_SCHEME"), Some("http"));
}

#[test]
fn header_bytes_that_are_not_utf8_reach_the_script_unchanged() {
    let s = cgi_server("", "", &[]);
    let mut c = s.connect();
    c.write_all(b"GET /cgi-bin/rawenv.sh?a=%FF HTTP/1.1\r\nHost: t\r\nX-Raw: caf\xe9\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!((r.status, &r.body[..]), (200, &b"caf\xe9|a=%FF"[..]));
}

#[test]
fn a_crash_or_garbage_gives_502_and_stderr_reaches_the_log() {
    let s = cgi_server("", "", &[]);
    let r = s.get("/cgi-bin/crash.sh");
    assert_eq!(r.status, 502);
    assert_eq!(s.get("/cgi-bin/garbage.sh").status, 502);
    assert!(
        s.log_contains("/cgi-bin/crash.sh: something went wrong"),
        "{}",
        s.log()
    );
    assert!(
        s.log_contains("/cgi-bin/crash.sh: exited with"),
        "{}",
        s.log()
    );
}

#[test]
fn a_header_injection_attempt_gives_502_and_never_a_split_response() {
    let s = cgi_server("", "", &[]);
    let r = s.get("/cgi-bin/inject.sh");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("set-cookie"), None);
    assert!(s.log_contains("possible header injection"), "{}", s.log());
}

#[test]
fn a_hung_script_is_killed_with_its_process_group_and_gets_504() {
    let dir = TempDir::new("pids");
    let pidfile = dir.path().join("pids");
    let s = cgi_server(
        &format!(
            "timeout = 1.0\nenv = {{ PIDFILE = {:?} }}",
            pidfile.display().to_string()
        ),
        "",
        &[],
    );
    let start = Instant::now();
    let r = s.get("/cgi-bin/hang.sh");
    assert_eq!(r.status, 504);
    assert!(start.elapsed() < Duration::from_secs(4));
    let pids = std::fs::read_to_string(&pidfile).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for pid in pids.split_whitespace() {
        // Gone, or dead and waiting to be reaped (the orphan's new parent reaps it).
        assert!(has_ended(pid), "process {pid} survived");
    }
}

#[test]
fn a_script_that_keeps_writing_runs_past_the_timeout() {
    // The timeout is for silence, as nginx's fastcgi_read_timeout: drip.sh writes every
    // 0.3 s for 2.4 s, and a 1 s limit on its whole run would cut it after 3 lines.
    let s = cgi_server("timeout = 1.0", "", &[]);
    let r = s.get("/cgi-bin/drip.sh");
    assert_eq!(r.status, 200);
    let want: String = (1..=8).map(|i| format!("line {i}\n")).collect();
    assert_eq!(r.text(), want, "{}", s.log());
}

#[test]
fn the_server_keeps_serving_while_scripts_hang() {
    let s = cgi_server("timeout = 5.0", "", &[]);
    let addr = s.addr;
    let hangers: Vec<_> = (0..4)
        .map(|_| get_in_background(addr, "/cgi-bin/hang.sh"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(s.get("/notes.txt").status, 200);
        assert!(start.elapsed() < Duration::from_millis(500));
    }
    drop(hangers);
}

#[test]
fn files_in_a_cgi_folder_that_are_not_scripts_are_403_never_source() {
    let s = cgi_server("", "", &[]);
    let r = s.get("/cgi-bin/data.txt");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("plain data"));
    // A .py file runs through the configured interpreter even without the execute bit.
    let r = s.get("/cgi-bin/noexec.py");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "run by the interpreter\n")
    );
    assert_eq!(s.get("/cgi-bin/nothing-here.sh").status, 404);
    // Nor is a CGI folder listed: that would show every script's name.
    let r = s.get("/cgi-bin/");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("env.py"));
}

#[test]
fn scripts_run_in_their_folder_with_only_the_standard_descriptors() {
    let s = cgi_server("", "", &[]);
    let r = s.get("/cgi-bin/fds.py");
    let t = r.text();
    assert!(t.contains("fds=0,1,2\n"), "{t}");
    assert!(
        t.contains(&format!("cwd={}", s.root.join("cgi-bin").display())),
        "{t}"
    );
}

#[test]
fn twenty_scripts_at_once_all_answer_and_leave_no_zombies() {
    let s = cgi_server("", "", &[]);
    let addr = s.addr;
    let start = Instant::now();
    let workers: Vec<_> = (0..20)
        .map(|_| get_in_background(addr, "/cgi-bin/slow.sh"))
        .collect();
    for w in workers {
        let r = w.join().unwrap().expect("a response");
        assert_eq!((r.status, r.text().as_str()), (200, "slow done\n"));
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    let zombies = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|st| {
            let f: Vec<&str> = st
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            f.first() == Some(&"Z") && f.get(1) == Some(&s.child.id().to_string().as_str())
        })
        .count();
    assert_eq!(zombies, 0);
}

/// A cgroup (v1 `pids`) that lets the processes put in it start no new thread or process
/// until `release`; gone on drop, its processes back in the root group.
struct NoNewThreads(std::path::PathBuf);

impl NoNewThreads {
    fn new() -> Option<NoNewThreads> {
        let dir = std::path::PathBuf::from(format!(
            "/sys/fs/cgroup/pids/cases-test-{}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).ok()?;
        Some(NoNewThreads(dir))
    }

    /// Put `pid` in, and allow no task beyond those it has.
    fn hold(&self, pid: u32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string()).unwrap();
        let now = std::fs::read_to_string(self.0.join("pids.current")).unwrap();
        std::fs::write(self.0.join("pids.max"), now.trim()).unwrap();
    }

    fn release(&self) {
        std::fs::write(self.0.join("pids.max"), "max").unwrap();
    }
}

impl Drop for NoNewThreads {
    fn drop(&mut self) {
        self.release();
        let procs = std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = std::fs::write("/sys/fs/cgroup/pids/cgroup.procs", pid);
        }
        // A process killed a moment ago may still be leaving the group.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_script_no_thread_can_be_started_for_is_503_at_once_and_never_runs_later() {
    let Some(group) = NoNewThreads::new() else {
        eprintln!("SKIPPED: no writable pids cgroup at /sys/fs/cgroup/pids (cgroup v1, root)");
        return;
    };
    let s = cgi_server("", "", &[]);
    let marker = s.dir.path().join("ran");
    let script = s.root.join("cgi-bin/mark.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch {:?}\nprintf 'Content-Type: text/plain\\r\\n\\r\\nran'\n",
            marker.display().to_string()
        ),
    )
    .unwrap();
    chmod(&script, 0o755);
    // The worker's thread limit reached (a process limit, a cgroup's pids.max).
    group.hold(s.workers(1)[0]);
    let refused = post(&s, "/cgi-bin/mark.sh", b"order=1");
    assert_eq!(refused.status, 503, "{}", s.log());
    assert!(s.log_contains("cannot start a thread for this request"));
    assert_eq!(s.get("/plain.html").status, 200, "files need no thread");
    // The refused POST is not run once threads can start again (it was, by tokio's pool).
    group.release();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!marker.exists(), "the refused script ran later");
    assert_eq!(post(&s, "/cgi-bin/mark.sh", b"order=2").text(), "ran");
    assert!(marker.exists());
}

#[test]
fn ten_scripts_at_once_fit_in_half_a_gigabyte_of_address_space() {
    let dir = TempDir::new("cgi-as");
    let root = fixture_root(&dir);
    let slow = workspace().join("server/tests/fixtures/cgi-bin/slow.sh");
    std::fs::copy(slow, root.join("cgi-bin/slow.sh")).unwrap();
    let text = config_text(&root, &[plugins_dir()], CHAIN, "workers = 1\n");
    let cfg = dir.write("server.toml", text);
    // An address-space limit (ulimit -v, systemd's LimitAS=): each thread's own malloc
    // arena (64 MiB) made ten scripts need more than this, and the worker aborted.
    let s = start_limited(dir, root, &cfg, "--as=536870912");
    let runs: Vec<_> = (0..10)
        .map(|_| get_in_background(s.addr, "/cgi-bin/slow.sh"))
        .collect();
    for run in runs {
        let r = run.join().unwrap();
        assert_eq!(r.map(|r| r.status), Some(200), "{}", s.log());
    }
    assert!(!s.log().contains("signal"), "{}", s.log());
}

#[test]
fn scripts_beyond_the_concurrency_limit_wait_and_then_get_503() {
    // slow.sh takes 0.5 s: with 2 slots and a 0.7 s wait, 4 of 6 run and the rest give up.
    let s = cgi_server(
        "max_running = 2\nqueue_timeout = 0.7\ntimeout = 5.0",
        "",
        &[],
    );
    let addr = s.addr;
    let workers: Vec<_> = (0..6)
        .map(|_| get_in_background(addr, "/cgi-bin/slow.sh"))
        .collect();
    let statuses: Vec<u16> = workers
        .into_iter()
        .map(|w| w.join().unwrap().expect("a response").status)
        .collect();
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let busy = statuses.iter().filter(|&&s| s == 503).count();
    assert_eq!(ok + busy, 6, "{statuses:?}");
    assert!(
        ok > 2,
        "queued requests ran once a slot was free: {statuses:?}"
    );
    assert!(busy >= 1, "{statuses:?}");
    // Said once in the error log, with the fix.
    assert!(s.log_contains("script places stayed taken"), "{}", s.log());
    assert!(s.log_contains("raise max_running"), "{}", s.log());
}

#[test]
fn a_client_that_does_not_read_keeps_no_script_running_and_still_gets_every_byte() {
    // One place for scripts. count.sh writes about 21 MB, far more than the sockets hold:
    // what its client has not read is held by the server, so the script ends at once and
    // the next script runs, where it used to wait for the slow client and then get 503.
    let s = cgi_server("max_running = 1\nqueue_timeout = 3", "", &[]);
    let mut slow = s.connect();
    let req = "GET /cgi-bin/count.sh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    slow.write_all(req.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let next = s.get("/cgi-bin/status.sh");
    assert_ne!(next.status, 503, "{}", s.log());
    // The slow client then reads it all, in order.
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let r = read_response(&mut slow, false).expect("the whole answer");
    let want: String = (1..=3_000_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(r.body.len(), want.len());
    assert!(r.body == want.as_bytes(), "the answer came out of order");
}

#[test]
fn what_the_server_holds_for_a_slow_client_reaches_it_while_the_script_pauses() {
    // 8 MiB, then a line, then a pause: a client that starts reading late finds much of it
    // held by the server; all of it, the line too, must come before the pause ends.
    let s = cgi_server("", "", &[]);
    let script = s.root.join("cgi-bin/pause.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\n\
         head -c 8388608 /dev/zero; echo first; sleep 5; echo second\n",
    )
    .unwrap();
    chmod(&script, 0o755);
    let mut c = s.connect();
    let start = Instant::now();
    c.write_all(b"GET /cgi-bin/pause.sh HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    while !got.windows(6).any(|w| w == b"first\n") {
        let n = c.read(&mut buf).expect("the answer keeps coming");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "the line came after {took:?}"
    );
}

#[test]
fn cgi_runs_only_under_the_configured_folders() {
    let s = cgi_server("dirs = [\"/scripts/\"]", "", &[]);
    // /cgi-bin/ is an ordinary folder now: its files are served as they are, not run.
    let r = s.get("/cgi-bin/hello.sh");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("#!/bin/sh"));
}

#[test]
fn the_chapters_any_py_anywhere_is_possible_only_through_the_settings() {
    let s = cgi_server("", "", &[]);
    std::fs::copy(s.root.join("cgi-bin/noexec.py"), s.root.join("page.py")).unwrap();
    // By default a .py outside the CGI folders is a file like any other.
    assert_eq!(
        s.get("/page.py").text(),
        "print(\"Content-Type: text/plain\")\nprint()\nprint(\"run by the interpreter\")\n"
    );
    drop(s);
    let s = cgi_server("anywhere = [\".py\"]", "", &[]);
    std::fs::copy(s.root.join("cgi-bin/noexec.py"), s.root.join("page.py")).unwrap();
    let r = s.get("/page.py");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "run by the interpreter\n")
    );
    // Everything else is still served as usual.
    assert_eq!(s.get("/notes.txt").text(), "just text\n");
}

#[test]
fn an_anywhere_script_gets_the_path_after_it_as_path_info() {
    // Apache and lighttpd run /app/env.py/users/7 for a .py handler, as ours does in dirs.
    let s = cgi_server("anywhere = [\".py\"]", "", &[]);
    std::fs::create_dir(s.root.join("app")).unwrap();
    std::fs::copy(s.root.join("cgi-bin/env.py"), s.root.join("app/env.py")).unwrap();
    let r = s.get("/app/env.py/users/7?x=1");
    assert_eq!(r.status, 200, "{}", s.log());
    let env = env_of(&r);
    assert_eq!(
        env.get("SCRIPT_NAME").map(String::as_str),
        Some("/app/env.py")
    );
    assert_eq!(env.get("PATH_INFO").map(String::as_str), Some("/users/7"));
    assert_eq!(env.get("QUERY_STRING").map(String::as_str), Some("x=1"));
    assert_eq!(s.get("/app/gone.py/users/7").status, 404);
}

#[test]
fn a_script_that_floods_stderr_before_answering_does_not_deadlock() {
    let s = cgi_server("timeout = 10.0", "", &[]);
    let start = Instant::now();
    let r = s.get("/cgi-bin/noisy.sh");
    assert_eq!((r.status, r.text().as_str()), (200, "finished\n"));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(s.log_contains("/cgi-bin/noisy.sh: a complaint on stderr"));
}

#[test]
fn an_http10_client_gets_a_long_answer_delimited_by_the_close() {
    // HTTP/1.0 has no chunked coding: the end of a long answer of unknown length is the
    // end of the connection.
    let s = cgi_server("", "", &[]);
    let r = s.raw("GET /cgi-bin/big.sh HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body.len(), 33_554_432);
}

#[test]
fn an_http10_client_that_keeps_alive_gets_a_short_script_answer_with_its_length() {
    // nginx, lighttpd and Caddy keep an HTTP/1.0 keep-alive connection after a short
    // script's page: it goes whole, with a Content-Length, not delimited by the close.
    let s = cgi_server("", "", &[]);
    let mut c = s.connect();
    for method in ["GET", "HEAD"] {
        let req = format!("{method} /cgi-bin/status.sh HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        c.write_all(req.as_bytes()).unwrap();
        let r = read_response(&mut c, method == "HEAD").unwrap();
        assert_eq!(r.status, 404, "{method}");
        assert_eq!(r.header("content-length"), Some("9"), "{method}");
        assert_eq!(r.header("connection"), Some("keep-alive"), "{method}");
        if method == "GET" {
            assert_eq!(r.text(), "not here\n");
        }
    }
    c.write_all(b"GET /notes.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().text(), "just text\n");
}

#[test]
fn an_http10_client_that_keeps_alive_gets_a_slow_or_long_script_answer_until_the_close() {
    // A script still writing after half a second, or past 64 KiB, is sent as it comes,
    // delimited by the close, with nothing lost or out of order of what was held back.
    let s = cgi_server("", "", &[]);
    let numbers: String = (1..=200_000).map(|n| format!("{n}\n")).collect();
    let slow_then_long = [
        ("/cgi-bin/stream.sh", "first\nsecond\n".to_string()),
        ("/cgi-bin/numbers.sh", numbers),
    ];
    for (path, whole) in slow_then_long {
        let mut c = s.connect();
        let req = format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        c.write_all(req.as_bytes()).unwrap();
        let r = read_response(&mut c, false).unwrap();
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-length"), None, "{path}");
        assert_eq!(r.header("connection"), Some("close"), "{path}");
        assert_eq!(r.body.len(), whole.len(), "{path}");
        assert!(r.body == whole.as_bytes(), "{path}: the bytes differ");
    }
}

#[test]
fn head_on_a_script_sends_its_headers_and_no_body_and_the_connection_goes_on() {
    let s = cgi_server("", "", &[]);
    for (path, status) in [("/cgi-bin/status.sh", 404), ("/cgi-bin/big.sh", 200)] {
        let mut c = s.connect();
        c.write_all(format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        let h = read_response(&mut c, true).unwrap();
        assert_eq!(h.status, status, "{path}");
        assert!(h.header("content-type").is_some(), "{path}");
        // Nothing but the head came: the next answer on the connection parses.
        c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_response(&mut c, false).unwrap().text(),
            "just text\n",
            "{path}"
        );
    }
}
