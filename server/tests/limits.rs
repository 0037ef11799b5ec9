//! Every limit is hit once, and then a normal request on a new connection still succeeds.

use crate::support::*;
use std::io::Write;
use std::time::{Duration, Instant};

fn still_serves(s: &Server) {
    assert_eq!(s.get("/notes.txt").status, 200, "the server still answers");
}

/// A connection held open the way a slow client holds one: its request head begun, not
/// finished (a silent one is not handed to the server at once: see `defer_accept`).
fn hold(s: &Server) -> std::net::TcpStream {
    let mut c = s.connect();
    c.write_all(b"GET /notes.txt HTTP/1.1\r\n").unwrap();
    c
}

#[test]
fn a_long_request_line_is_414() {
    let s = Server::shipped();
    let r = s.raw(&format!(
        "GET /{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "a".repeat(9000)
    ));
    assert_eq!(r.status, 414);
    still_serves(&s);
}

#[test]
fn a_head_request_refused_before_its_head_is_read_whole_gets_no_body() {
    // RFC 9110 §9.3.2: never content for HEAD, also when the head is refused as it is read.
    let s = Server::shipped();
    let long = "a".repeat(9000);
    for (req, status) in [
        (
            "HEAD /notes.txt HTTP/1.1\r\nHost: t\r\nFoo : bar\r\n\r\n".to_string(),
            "400",
        ),
        (format!("HEAD /{long} HTTP/1.1\r\nHost: t\r\n\r\n"), "414"),
        (
            format!("HEAD / HTTP/1.1\r\nHost: t\r\nX-Big: {long}\r\n\r\n"),
            "431",
        ),
        ("HEAD / HTTP/2.0\r\nHost: t\r\n\r\n".to_string(), "505"),
    ] {
        let mut c = s.connect();
        c.write_all(req.as_bytes()).unwrap();
        let mut all = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c, &mut all);
        let text = String::from_utf8_lossy(&all);
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "a body after the head: {text}");
        assert!(text.contains("Content-Length: "), "GET's head: {text}");
    }
    still_serves(&s);
}

#[test]
fn a_large_header_field_too_many_fields_or_a_large_head_are_431() {
    let s = Server::shipped();
    let r = s.raw(&format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    ));
    assert_eq!(r.status, 431);
    let many: String = (0..101).map(|i| format!("X-{i}: y\r\n")).collect();
    assert_eq!(
        s.raw(&format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n"))
            .status,
        431
    );
    let big: String = (0..8)
        .map(|i| format!("X-{i}: {}\r\n", "b".repeat(5000)))
        .collect();
    assert_eq!(
        s.raw(&format!("GET / HTTP/1.1\r\nHost: t\r\n{big}\r\n"))
            .status,
        431
    );
    still_serves(&s);
}

#[test]
fn an_endless_run_of_blank_lines_is_refused_at_the_head_limit() {
    // Blank lines before a request line are ignored (RFC 9112 §2.2) but kept until it
    // comes: 64 KiB of them, and no request line, is answered at once instead of held.
    let s = Server::shipped();
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(&b"\r\n".repeat(32 * 1024)).unwrap();
    let r = read_response(&mut c, false).expect("an answer before the head timeout");
    assert_eq!(r.status, 431);
    still_serves(&s);
}

#[test]
fn a_body_over_the_limit_is_413_whether_announced_or_chunked() {
    let s = Server::shipped_with("[limits]\nmax_body = 100\n");
    let r = s.raw("POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n");
    assert_eq!(r.status, 413);
    let chunk = format!("65\r\n{}\r\n0\r\n\r\n", "x".repeat(101));
    let r = s.raw(&format!(
        "POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}"
    ));
    assert_eq!(r.status, 413);
    still_serves(&s);
}

/// A client that sends its whole body before it reads (Go's and Python's, without Expect)
/// still gets the 413: the server reads and drops the rest before it closes, so no reset
/// destroys the answer (RFC 9112 §9.6; nginx's lingering_close).
#[test]
fn a_client_that_sends_a_refused_body_whole_before_reading_still_gets_the_413() {
    let s = Server::shipped_with("[limits]\nmax_body = 1000\n");
    let size = 32 << 20;
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!("POST /notes.txt HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n");
    c.write_all(head.as_bytes()).unwrap();
    let piece = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < size && c.write_all(&piece).is_ok() {
        sent += piece.len();
    }
    assert_eq!(sent, size, "the server stopped reading the body");
    let r = read_response(&mut c, false).expect("the 413, not a reset");
    assert_eq!(r.status, 413);
    still_serves(&s);
}

#[test]
fn a_request_head_that_takes_too_long_is_408_even_when_bytes_trickle() {
    let s = Server::shipped_with("[limits]\nheader_timeout = 1.0\n");
    let mut c = s.connect();
    let start = Instant::now();
    c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    // Slowloris: a byte every 200 ms does not reset the clock.
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(200));
        if c.write_all(b"X").is_err() {
            break;
        }
    }
    let r = read_response(&mut c, false).expect("a 408");
    assert_eq!(r.status, 408);
    assert!(start.elapsed() < Duration::from_secs(3));
    still_serves(&s);
}

#[test]
fn a_body_that_stalls_is_408() {
    let s = Server::shipped_with("[limits]\nbody_timeout = 0.5\n");
    let mut c = s.connect();
    c.write_all(b"POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let r = read_response(&mut c, false).expect("a 408");
    assert_eq!(r.status, 408);
    still_serves(&s);
}

#[test]
fn connections_beyond_the_cap_get_503_and_the_server_recovers() {
    // The cap is per worker process, as nginx's worker_connections: one worker here.
    let s = Server::shipped_with("workers = 1\n[limits]\nmax_connections = 3\n");
    let held: Vec<_> = (0..3).map(|_| hold(&s)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let r = s.raw("GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    // The operator learns it from the error log too, as from nginx's
    // "worker_connections are not enough".
    assert!(s.log_contains("max_connections (3) reached"), "{}", s.log());
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    still_serves(&s);
}

#[test]
fn a_connection_that_sends_nothing_takes_no_place_under_the_cap() {
    let s = Server::shipped_with("workers = 1\n[limits]\nmax_connections = 1\n");
    let silent = s.connect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        s.get("/notes.txt").status,
        200,
        "the kernel still holds the silent one"
    );
    drop(silent);
}

#[test]
fn without_defer_accept_a_connection_that_sends_nothing_counts_at_once() {
    let s =
        Server::shipped_with("workers = 1\ndefer_accept = false\n[limits]\nmax_connections = 1\n");
    let silent = s.connect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        s.raw("GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n").status,
        503
    );
    drop(silent);
    std::thread::sleep(Duration::from_millis(300));
    still_serves(&s);
}

#[test]
fn a_connection_silent_past_the_deferral_is_served_when_it_sends() {
    let s = Server::shipped();
    let mut c = s.connect();
    // The kernel hands a silent connection over after about a second; it is then read at
    // once, finds nothing, and waits for its request like any other.
    std::thread::sleep(Duration::from_millis(2500));
    c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).expect("a response");
    assert_eq!(r.status, 200);
}

#[test]
fn a_connection_turned_away_at_the_cap_is_in_the_access_log() {
    let s = Server::shipped_with(
        "workers = 1\naccess_log = \"access.log\"\n[limits]\nmax_connections = 2\n",
    );
    let held: Vec<_> = (0..2).map(|_| hold(&s)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let r = s.raw("GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("connection limit"), "{}", r.text());
    drop(held);
    let log = || std::fs::read_to_string(s.dir.path().join("access.log")).unwrap_or_default();
    assert!(
        within(Duration::from_secs(3), || log().contains("] \"-\" 503 ")),
        "{}",
        log()
    );
}

#[test]
fn a_client_that_hangs_up_mid_body_is_not_logged_as_a_bad_request() {
    let s = Server::shipped_with("access_log = \"access.log\"");
    let mut c = s.connect();
    // A path whose case takes POST (no_file), so the body is waited for (a file's case
    // does not, and answers 405 before the body).
    c.write_all(b"POST /missing.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly")
        .unwrap();
    drop(c);
    std::thread::sleep(Duration::from_millis(300));
    still_serves(&s);
    let log = std::fs::read_to_string(s.dir.path().join("access.log")).unwrap();
    let first = log.lines().next().unwrap_or_default();
    assert!(
        first.contains("\"POST /missing.txt HTTP/1.1\" 499 "),
        "{log}"
    );
    assert!(!log.contains(" 400 "), "{log}");
}

#[test]
fn a_thousand_slow_clients_do_not_delay_a_normal_one() {
    let s = Server::shipped_with("[limits]\nmax_connections = 4096\nheader_timeout = 30.0\n");
    let mut slow: Vec<_> = (0..1000).map(|_| s.connect()).collect();
    for c in slow.iter_mut() {
        c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    }
    for round in 0..3 {
        for c in slow.iter_mut() {
            let _ = c.write_all(b"X");
        }
        let start = Instant::now();
        let r = s.get("/notes.txt");
        let took = start.elapsed();
        assert_eq!(r.status, 200);
        assert!(took < Duration::from_secs(1), "round {round}: {took:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_body_that_trickles_below_the_minimum_rate_is_408() {
    // Every read comes well within body_timeout, but 1 byte per 0.2 s is far below 500 B/s.
    let s = Server::shipped_with("[limits]\nbody_timeout = 1.0\nbody_min_rate = 500.0\n");
    let mut c = s.connect();
    c.write_all(b"POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let mut cut_off = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(200));
        if c.write_all(b"x").is_err() {
            cut_off = true;
            break;
        }
        if start.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let r = read_response(&mut c, false);
    assert!(cut_off || r.is_some());
    assert_eq!(r.map(|r| r.status), Some(408));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    still_serves(&s);
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_the_send_timeout() {
    let s = Server::shipped_with("[limits]\nsend_timeout = 1.0\n");
    let big = vec![b'z'; 64 << 20];
    std::fs::write(s.root.join("huge.bin"), &big).unwrap();
    let mut c = s.connect();
    c.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // Read nothing while the socket buffers fill and the server's send stalls.
    std::thread::sleep(Duration::from_millis(2500));
    let mut got = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = std::io::Read::read_to_end(&mut c, &mut got);
    assert!(!got.is_empty());
    assert!(
        got.len() < big.len(),
        "the server gave up: {} of {} bytes",
        got.len(),
        big.len()
    );
    // And says why, as nginx's "client timed out" line does.
    assert!(
        s.log_contains("(send_timeout) while sending /huge.bin"),
        "{}",
        s.log()
    );
    still_serves(&s);
}

/// Run the server on `config` with `args` and give its exit code and stderr; a server still
/// running after 10 s (it accepted the value) is stopped and reported as `None`.
fn exit_of(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(server_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run server");
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (code, stderr)
}

#[test]
fn an_access_log_in_a_missing_folder_fails_check_config_as_it_fails_start_up() {
    let dir = TempDir::new("badlog");
    let root = fixture_root(&dir);
    let log = dir.path().join("no-such-folder/access.log");
    let extra = format!("access_log = {:?}\n", log.display().to_string());
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], CHAIN, &extra),
    );
    for args in [&["--check-config"][..], &["--listen", "127.0.0.1:0"]] {
        let (code, stderr) = exit_of(&cfg, args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot open the access log"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("no-such-folder/access.log"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("fix: create its folder"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!log.exists());
}

#[test]
fn an_unusable_limit_stops_start_up_and_check_config_with_the_line_key_and_range() {
    let bad = [
        ("open_file_cache", "inf"),
        ("header_timeout", "inf"),
        ("header_timeout", "nan"),
        ("body_timeout", "-1"),
        ("keepalive_timeout", "0"),
        ("send_timeout", "-inf"),
        ("shutdown_timeout", "-1.5"),
        ("body_min_rate", "nan"),
        ("max_connections", "0"),
        ("max_header_count", "0"),
        ("max_requests_per_connection", "0"),
    ];
    let dir = TempDir::new("badlimits");
    let root = fixture_root(&dir);
    for (key, value) in bad {
        let extra = format!("[limits]\n{key} = {value}\n");
        let text = config_text(&root, &[plugins_dir()], CHAIN, &extra);
        let line = line_of(&text, &format!("{key} = "));
        let cfg = dir.write("server.toml", &text);
        for args in [&["--check-config"][..], &["--listen", "127.0.0.1:0"]] {
            let (code, stderr) = exit_of(&cfg, args);
            let what = format!("{key} = {value} with {args:?}");
            assert_eq!(code, Some(1), "{what}: {stderr}");
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            let place = format!(
                "server.toml: line {line}: [limits] {key} = {value} is out of range\n  expected: "
            );
            assert!(stderr.contains(&place), "{what}: {stderr}");
            assert!(
                stderr.contains("fix: correct the value, or remove the line for the default ("),
                "{what}: {stderr}"
            );
        }
    }
}

#[test]
fn a_negative_count_is_refused_by_its_type_with_the_line() {
    let dir = TempDir::new("negcount");
    let root = fixture_root(&dir);
    let text = config_text(
        &root,
        &[plugins_dir()],
        CHAIN,
        "[limits]\nmax_ranges = -1\n",
    );
    let cfg = dir.write("server.toml", &text);
    let (code, stderr) = exit_of(&cfg, &["--check-config"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid value: integer `-1`, expected u64"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("line {}", line_of(&text, "max_ranges = "))),
        "{stderr}"
    );
}

#[test]
fn zero_turns_the_open_file_cache_and_the_shutdown_wait_off_and_is_accepted() {
    let s = Server::shipped_with(
        "[limits]\nopen_file_cache = 0\nshutdown_timeout = 0\nmax_ranges = 0\n",
    );
    still_serves(&s);
}

/// The 1-based line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> usize {
    text.lines().position(|l| l.starts_with(start)).unwrap() + 1
}

#[test]
fn max_connections_is_kept_within_the_open_file_limit_so_the_503_still_goes_out() {
    let dir = TempDir::new("nofile");
    let root = fixture_root(&dir);
    let text = config_text(&root, &[plugins_dir()], CHAIN, "workers = 1\n");
    let cfg = dir.write("server.toml", text);
    // 320 descriptors: 256 kept aside, so 64 connections; the configured 8192 cannot be.
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 320 && exec {} --config {} --log-level debug",
            server_bin().display(),
            cfg.display()
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let s = Server::adopt(child, dir, root);
    let held: Vec<_> = (0..64).map(|_| hold(&s)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = s.raw("GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        r.status, 503,
        "the connection past the lowered cap is told so"
    );
    drop(held);
    assert!(
        s.log_contains(
            "max_connections = 8192 is more than an open-file limit of 320 allows (256 are kept for files and scripts): using 64"
        ),
        "{}",
        s.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    still_serves(&s);
}

#[test]
fn files_that_exist_are_503_not_404_while_the_server_is_out_of_open_files() {
    let dir = TempDir::new("nofile");
    let root = fixture_root(&dir);
    for i in 0..80 {
        std::fs::write(root.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    // Kept files hold their descriptors (open_file_cache), so 80 files on one connection
    // run a 48-descriptor worker out of them.
    let extra = "workers = 1\n[limits]\nopen_file_cache = 60.0\n";
    let text = config_text(&root, &[plugins_dir()], CHAIN, extra);
    let cfg = dir.write("server.toml", text);
    let s = start_limited(dir, root, &cfg, "--nofile=48:48");
    let mut c = s.connect();
    let mut statuses = Vec::new();
    for i in 0..80 {
        let req = format!("GET /f{i}.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        c.write_all(req.as_bytes()).unwrap();
        statuses.push(read_response(&mut c, false).unwrap().status);
    }
    // nginx answers 500 and logs the open; a 404 would tell the client the file is gone.
    assert!(!statuses.contains(&404), "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    // A page that needs no file is still served meanwhile.
    c.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
    assert!(s.log_contains(
        "Too many open files (os error 24); a path that needs a file is answered 503"
    ));
    let said = s.log().matches("Too many open files").count();
    assert!(said <= 3, "said once a second at most: {said}\n{}", s.log());
    // The limit it names is the one it has (it said 272, the floor of 16 plus its reserve).
    assert!(
        s.log_contains("an open-file limit of 48 allows"),
        "{}",
        s.log()
    );
}
