//! Files sent with send_file: validators, 304/412, Range/If-Range, Content-Type.

use crate::support::*;

fn req(s: &Server, path: &str, headers: &str) -> Response {
    s.raw(&format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n"
    ))
}

#[test]
fn a_file_written_again_within_the_same_second_at_the_same_size_gets_a_new_etag() {
    // RFC 9110 §8.8.3: a strong tag changes with the bytes. A tag of whole seconds and the
    // size (nginx's) let a cache revalidate the old bytes with a 304 for good.
    let s = Server::shipped();
    let path = s.root.join("same.txt");
    let second = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let mut tags = Vec::new();
    for (text, nanos) in [("AAAA", 100_000_000), ("BBBB", 600_000_000)] {
        std::fs::write(&path, text).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(second + std::time::Duration::from_nanos(nanos))
            .unwrap();
        let r = s.get("/same.txt");
        assert_eq!(r.text(), text);
        tags.push(r.header("etag").unwrap().to_string());
    }
    assert_ne!(tags[0], tags[1]);
    let r = req(&s, "/same.txt", &format!("If-None-Match: {}\r\n", tags[0]));
    assert_eq!((r.status, r.text().as_str()), (200, "BBBB"));
    // A whole second's mtime keeps nginx's form.
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(second).unwrap();
    let tag = s.get("/same.txt").header("etag").unwrap().to_string();
    assert_eq!(tag, format!("\"{:x}-4\"", 1_700_000_000));
}

#[test]
fn if_none_match_and_if_modified_since_give_304() {
    let s = Server::shipped();
    let r = s.get("/notes.txt");
    let etag = r.header("etag").unwrap().to_string();
    let lm = r.header("last-modified").unwrap().to_string();
    let n = req(&s, "/notes.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(n.status, 304);
    assert!(n.body.is_empty());
    assert_eq!(n.header("etag"), Some(etag.as_str()));
    let w = req(
        &s,
        "/notes.txt",
        &format!("If-None-Match: \"x\", W/{etag}\r\n"),
    );
    assert_eq!(w.status, 304, "weak comparison for If-None-Match");
    assert_eq!(
        req(&s, "/notes.txt", &format!("If-Modified-Since: {lm}\r\n")).status,
        304
    );
    let old = "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
    assert_eq!(req(&s, "/notes.txt", old).status, 200);
    // If-None-Match wins over If-Modified-Since.
    let both = format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {lm}\r\n");
    assert_eq!(req(&s, "/notes.txt", &both).status, 200);
    // A date field on two lines is a list of two members, not a date: ignored (RFC 9110
    // §13.1.3, §13.1.4).
    let twice = format!("If-Modified-Since: {lm}\r\nIf-Modified-Since: {lm}\r\n");
    assert_eq!(req(&s, "/notes.txt", &twice).status, 200);
    let ius = "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
    assert_eq!(req(&s, "/notes.txt", ius).status, 412);
    assert_eq!(req(&s, "/notes.txt", &ius.repeat(2)).status, 200);
}

/// An HTTP-date `days` from now, by `date` (GNU coreutils).
fn http_date_in(days: i32) -> String {
    let out = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("{days} days"),
            "+%a, %d %b %Y %H:%M:%S GMT",
        ])
        .env("LC_ALL", "C")
        .output()
        .expect("date");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Field lines of one name are one list (RFC 9110 §5.3), so a match on any If-None-Match
/// or If-Match line counts; an If-Modified-Since later than the server's clock is a date
/// like any other (§13.1.3 has no exception for it, RFC 2616 had), as lighttpd and Caddy
/// take it.
#[test]
fn every_condition_line_counts_and_a_date_from_the_future_still_means_not_modified() {
    let s = Server::shipped();
    let etag = s.get("/notes.txt").header("etag").unwrap().to_string();
    let inm = format!("If-None-Match: \"x\"\r\nIf-None-Match: {etag}\r\n");
    assert_eq!(req(&s, "/notes.txt", &inm).status, 304);
    let im = format!("If-Match: \"x\"\r\nIf-Match: {etag}\r\n");
    assert_eq!(req(&s, "/notes.txt", &im).status, 200);
    let im = "If-Match: \"x\"\r\nIf-Match: \"y\"\r\n";
    assert_eq!(req(&s, "/notes.txt", im).status, 412);
    let future = format!("If-Modified-Since: {}\r\n", http_date_in(2));
    assert_eq!(req(&s, "/notes.txt", &future).status, 304, "{future}");
    let yesterday = format!("If-Modified-Since: {}\r\n", http_date_in(-1));
    assert_eq!(
        req(&s, "/notes.txt", &yesterday).status,
        200,
        "written since"
    );
}

/// RFC 9110 §8.8.2.1: a Last-Modified never later than the answer's Date; a file dated in
/// the future is sent with the Date as its Last-Modified (nginx and lighttpd send the
/// future date). Its ETag still tells versions apart.
#[test]
fn a_file_dated_in_the_future_is_last_modified_at_the_answers_date() {
    let s = Server::shipped();
    let path = s.root.join("later.txt");
    std::fs::write(&path, "from the future\n").unwrap();
    let year = std::time::Duration::from_secs(365 * 86_400);
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() + year)
        .unwrap();
    for _ in 0..2 {
        let r = s.get("/later.txt");
        assert_eq!(r.status, 200);
        let date = r.header("date").unwrap();
        assert_eq!(r.header("last-modified"), Some(date), "{}", r.raw_head);
        assert!(r.header("etag").is_some());
    }
    // A file of the past keeps its own date.
    let path = s.root.join("earlier.txt");
    std::fs::write(&path, "from the past\n").unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() - year)
        .unwrap();
    let r = s.get("/earlier.txt");
    assert_ne!(
        r.header("last-modified"),
        r.header("date"),
        "{}",
        r.raw_head
    );
}

#[test]
fn if_match_that_fails_gives_412() {
    let s = Server::shipped();
    assert_eq!(req(&s, "/notes.txt", "If-Match: \"nope\"\r\n").status, 412);
    let etag = s.get("/notes.txt").header("etag").unwrap().to_string();
    assert_eq!(
        req(&s, "/notes.txt", &format!("If-Match: {etag}\r\n")).status,
        200
    );
}

#[test]
fn a_single_range_gives_206_with_content_range() {
    let s = Server::shipped();
    // notes.txt is "just text\n" (10 bytes).
    let r = req(&s, "/notes.txt", "Range: bytes=0-3\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.text(), "just");
    assert_eq!(r.header("content-range"), Some("bytes 0-3/10"));
    let r = req(&s, "/notes.txt", "Range: bytes=-5\r\n");
    assert_eq!((r.status, r.text().as_str()), (206, "text\n"));
    let r = req(&s, "/notes.txt", "Range: bytes=5-\r\n");
    assert_eq!(
        (r.text().as_str(), r.header("content-range")),
        ("text\n", Some("bytes 5-9/10"))
    );
}

#[test]
fn max_ranges_zero_turns_ranges_off_and_stops_promising_them() {
    let s = Server::shipped_with("[limits]\nmax_ranges = 0\n");
    for range in ["bytes=0-3", "bytes=50-60"] {
        let r = req(&s, "/notes.txt", &format!("Range: {range}\r\n"));
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "just text\n"),
            "{range}"
        );
        assert_eq!(r.header("accept-ranges"), None, "{range}");
    }
    let r = s.get("/notes.txt");
    assert_eq!(r.header("accept-ranges"), None, "as nginx's max_ranges 0");
    assert!(r.header("etag").is_some());
}

#[test]
fn multiple_ranges_give_multipart_byteranges() {
    let s = Server::shipped();
    let r = req(&s, "/notes.txt", "Range: bytes=0-1, 5-6\r\n");
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect(ct);
    let t = r.text();
    assert!(t.starts_with(&format!("--{boundary}\r\n")), "{t}");
    assert!(
        t.contains("Content-Range: bytes 0-1/10\r\n\r\nju\r\n"),
        "{t}"
    );
    assert!(
        t.contains("Content-Range: bytes 5-6/10\r\n\r\nte\r\n"),
        "{t}"
    );
    assert!(t.ends_with(&format!("--{boundary}--\r\n")), "{t}");
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
}

#[test]
fn an_unsatisfiable_or_malformed_bytes_range_gives_416_and_another_unit_is_ignored() {
    let s = Server::shipped();
    let r = req(&s, "/notes.txt", "Range: bytes=50-60\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10"));
    assert_eq!(req(&s, "/notes.txt", "Range: lines=1-2\r\n").status, 200);
    // A bytes range that does not parse is rejected (RFC 9110 §14.2 allows it), as nginx,
    // lighttpd and Caddy answer it.
    for bad in ["bytes=5-1", "bytes=abc", "bytes="] {
        let r = req(&s, "/notes.txt", &format!("Range: {bad}\r\n"));
        assert_eq!(r.status, 416, "{bad}");
        assert_eq!(r.header("content-range"), Some("bytes */10"), "{bad}");
    }
}

#[test]
fn ranges_that_add_up_to_more_than_the_file_or_an_empty_file_get_the_whole_file() {
    let s = Server::shipped();
    // Overlaps would send the 10 bytes a hundred times over (RFC 9110 §17.15): 200, once.
    let many = vec!["0-"; 50].join(",");
    let r = req(&s, "/notes.txt", &format!("Range: bytes={many}\r\n"));
    assert_eq!((r.status, r.text().as_str()), (200, "just text\n"));
    let r = req(&s, "/notes.txt", "Range: bytes=0-5, 3-9\r\n");
    assert_eq!(r.status, 200);
    // Parts that do not overlap still make a multipart answer.
    assert_eq!(
        req(&s, "/notes.txt", "Range: bytes=0-1, 5-6\r\n").status,
        206
    );
    // No part of an empty file can be named: the (empty) whole, as nginx and lighttpd.
    std::fs::write(s.root.join("empty.txt"), b"").unwrap();
    for range in ["bytes=0-", "bytes=-1"] {
        let r = req(&s, "/empty.txt", &format!("Range: {range}\r\n"));
        assert_eq!((r.status, r.body.len()), (200, 0), "{range}");
    }
}

#[test]
fn if_range_with_a_stale_validator_sends_the_whole_file() {
    let s = Server::shipped();
    let etag = s.get("/notes.txt").header("etag").unwrap().to_string();
    let fresh = req(
        &s,
        "/notes.txt",
        &format!("Range: bytes=0-3\r\nIf-Range: {etag}\r\n"),
    );
    assert_eq!(fresh.status, 206);
    let stale = req(
        &s,
        "/notes.txt",
        "Range: bytes=0-3\r\nIf-Range: \"old\"\r\n",
    );
    assert_eq!((stale.status, stale.text().as_str()), (200, "just text\n"));
}

#[test]
fn content_type_comes_from_the_extension_with_a_fallback() {
    let s = Server::shipped();
    std::fs::write(s.root.join("data.bin9"), b"\x00\x01").unwrap();
    std::fs::write(s.root.join("style.css"), b"a{}").unwrap();
    std::fs::write(s.root.join("pic.png"), b"\x89PNG").unwrap();
    assert_eq!(
        s.get("/data.bin9").header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        s.get("/style.css").header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(s.get("/pic.png").header("content-type"), Some("image/png"));
}

#[test]
fn a_large_file_is_sent_whole() {
    let s = Server::shipped();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(s.root.join("big.bin"), &data).unwrap();
    let r = s.get("/big.bin");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data);
    let part = req(&s, "/big.bin", "Range: bytes=1000000-2999999\r\n");
    assert!(part.body == data[1_000_000..3_000_000]);
}

fn replace(path: &std::path::Path, data: &str) {
    // How files should be updated under a running server: write aside, then rename.
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Does any process of the server hold an open descriptor of a deleted file `name`?
fn holds_deleted(s: &Server, name: &str) -> bool {
    let gone = format!("{name} (deleted)");
    children(s.child.id()).into_iter().any(|p| {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{p}/fd")) else {
            return false;
        };
        fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .any(|target| target.to_string_lossy().ends_with(&gone))
    })
}

#[test]
fn a_deleted_file_is_closed_soon_after_its_cache_time_with_no_request() {
    let s = Server::shipped_with("[limits]\nopen_file_cache = 0.3\n");
    std::fs::write(s.root.join("gone.bin"), vec![1u8; 100_000]).unwrap();
    assert_eq!(s.get("/gone.bin").status, 200);
    std::fs::remove_file(s.root.join("gone.bin")).unwrap();
    // Kept open for the cache's time, so its disk space is not back yet...
    assert!(holds_deleted(&s, "gone.bin"));
    // ...but soon after, though no request asks for it again (nginx's `inactive`).
    assert!(within(
        std::time::Duration::from_secs(5),
        || !holds_deleted(&s, "gone.bin")
    ));
}

#[test]
fn with_the_open_file_cache_off_a_replaced_file_is_served_at_once() {
    let s = Server::shipped_with("[limits]\nopen_file_cache = 0.0\n");
    assert_eq!(s.get("/notes.txt").text(), "just text\n");
    replace(&s.root.join("notes.txt"), "second version\n");
    assert_eq!(s.get("/notes.txt").text(), "second version\n");
    std::fs::remove_file(s.root.join("notes.txt")).unwrap();
    assert_eq!(s.get("/notes.txt").status, 404);
}

#[test]
fn a_replaced_or_removed_file_shows_at_once_though_files_are_kept_open() {
    // Kept open for 30 s, but every request checks the path still names that file.
    let s = Server::shipped_with("workers = 1\n[limits]\nopen_file_cache = 30.0\n");
    assert_eq!(s.get("/notes.txt").text(), "just text\n");
    replace(&s.root.join("notes.txt"), "second version\n");
    let r = s.get("/notes.txt");
    assert_eq!(r.text(), "second version\n");
    assert_eq!(r.header("content-length"), Some("15"));
    std::fs::remove_file(s.root.join("notes.txt")).unwrap();
    assert_eq!(s.get("/notes.txt").status, 404);
    // A new file is found at once: a miss is kept only for a moment (1 ms).
    std::fs::write(s.root.join("fresh.txt"), "new").unwrap();
    assert_eq!(s.get("/fresh.txt").text(), "new");
}

#[test]
fn a_root_folder_replaced_by_a_new_release_is_served_from_the_new_one() {
    // A deploy that moves the old release away and puts a new folder at the root's path:
    // nginx, lighttpd and Caddy serve the new folder at once; ours within a second or two
    // (a root check per second, and the open-file cache's second), never the old one for good.
    for cache in ["1.0", "30.0"] {
        let s = Server::shipped_with(&format!(
            "workers = 1\n[limits]\nopen_file_cache = {cache}\n"
        ));
        std::fs::write(s.root.join("only-old.txt"), "old").unwrap();
        assert_eq!(s.get("/notes.txt").text(), "just text\n");
        assert_eq!(s.get("/only-old.txt").status, 200);
        let old = s.root.with_extension("old");
        std::fs::rename(&s.root, &old).unwrap();
        std::fs::create_dir(&s.root).unwrap();
        std::fs::write(s.root.join("notes.txt"), "new release\n").unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while s.get("/notes.txt").text() != "new release\n" {
            assert!(
                std::time::Instant::now() < until,
                "still the old release (cache {cache})"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(s.get("/only-old.txt").status, 404, "cache {cache}");
        std::fs::remove_dir_all(&old).unwrap();
    }
}

#[test]
fn a_root_deleted_under_the_server_is_404_and_logged_and_served_again_once_back() {
    let s = Server::shipped_with("workers = 1\n");
    assert_eq!(s.get("/").status, 200);
    std::fs::remove_dir_all(&s.root).unwrap();
    // The folder is gone (nginx: 404 and a log line), not a listing that failed (it was 500).
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !s.log().contains("is no longer there") {
        assert!(std::time::Instant::now() < until, "{}", s.log());
        assert_eq!(s.get("/").status, 404);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(s.get("/notes.txt").status, 404);
    std::fs::create_dir(&s.root).unwrap();
    std::fs::write(s.root.join("notes.txt"), "back\n").unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while s.get("/notes.txt").text() != "back\n" {
        assert!(std::time::Instant::now() < until, "{}", s.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(s.log_contains("is back"), "{}", s.log());
}

#[test]
fn a_file_rewritten_in_place_is_served_as_it_is_now_with_its_own_length() {
    let s = Server::shipped_with("workers = 1\n[limits]\nopen_file_cache = 30.0\n");
    let big = "x".repeat(100_000);
    std::fs::write(s.root.join("big.txt"), &big).unwrap();
    for (name, before) in [("notes.txt", "just text\n"), ("big.txt", big.as_str())] {
        assert_eq!(s.get(&format!("/{name}")).text(), before);
        // Rewritten in place (same inode, another length), as an editor that does not
        // rename: kept in memory (small) or sent from the open file (large), the answer
        // is the new version, its Content-Length and ETag too.
        std::fs::write(s.root.join(name), "a longer second version\n").unwrap();
        let r = s.get(&format!("/{name}"));
        assert_eq!(r.text(), "a longer second version\n", "{name}");
        assert_eq!(r.header("content-length"), Some("24"), "{name}");
        assert!(r.header("etag").unwrap().ends_with("-18\""), "{name}");
    }
}

#[test]
fn a_file_path_with_a_trailing_slash_is_404() {
    let s = Server::shipped();
    assert_eq!(s.get("/notes.txt/").status, 404);
    assert_eq!(s.get("/notes.txt").status, 200);
}

/// The bytes the server's end of `client` holds unsent or unacknowledged (`tx_queue` of
/// /proc/net/tcp, where addresses are hex and a port is its number).
fn queued_toward(server: std::net::SocketAddr, client: std::net::SocketAddr) -> Option<u64> {
    let end = |a: std::net::SocketAddr| format!(":{:04X}", a.port());
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let ours = f[1].ends_with(&end(server)) && f[2].ends_with(&end(client));
        let tx = f[4].split(':').next()?;
        ours.then(|| u64::from_str_radix(tx, 16).ok()).flatten()
    })
}

#[test]
fn a_large_file_waits_in_the_file_not_in_the_socket_for_a_client_that_stops_reading() {
    use std::io::{Read, Write};
    let s = Server::shipped();
    std::fs::write(s.root.join("huge.bin"), vec![7u8; 16 << 20]).unwrap();
    let mut c = s.connect();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    c.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    let mut read_to = |c: &mut std::net::TcpStream, until: usize| {
        while got < until {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "the answer stopped at {got} bytes");
            got += n;
        }
    };
    // Read fast for a while, so that the kernel grows the send buffer to its 4 MiB, then
    // stop: the client's window closes and what the server queued stays unsent.
    read_to(&mut c, 3_000_000);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let queued = queued_toward(s.addr, c.local_addr().unwrap()).expect("the connection");
    // TCP_NOTSENT_LOWAT of 256 KiB, plus the segment that crossed it.
    assert!(queued < 1 << 20, "{queued} bytes queued in the socket");
    // The rest still comes once the client reads again (the head's bytes come on top).
    read_to(&mut c, 16 << 20);
}
