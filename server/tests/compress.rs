//! compress over the wire: real `curl --compressed` for each coding curl has, Python's gzip
//! and zlib to decode a large file and a script's stream, and what must stay as it is
//! (HEAD bodies, q=0, Range); precompressed sidecars sent by sendfile.

use crate::support::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn start(settings: &str) -> Server {
    Server::start(
        &chain_with(&["compress"]),
        &format!("[plugins.compress]\n{settings}\n"),
    )
}

/// Text of `n` bytes that compresses well but not trivially.
fn page(n: usize) -> String {
    let mut out = String::with_capacity(n + 64);
    let mut i = 0u64;
    while out.len() < n {
        out.push_str(&format!(
            "<p>Line {i}: the quick brown fox {}</p>\n",
            i * 7919 % 1000
        ));
        i += 1;
    }
    out.truncate(n);
    out
}

/// Run `python3 -c code` with `input` on stdin; its stdout.
fn python(code: &str, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("python3")
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "python failed");
    out.stdout
}

/// Python's gzip module decodes a whole gzip body.
fn gunzip(data: &[u8]) -> Vec<u8> {
    python(
        "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))",
        data,
    )
}

/// What curl's `-V` lists as features (`brotli`, `zstd`, `libz`).
fn curl_features() -> String {
    let out = Command::new("curl").arg("-V").output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("Features:"))
        .unwrap_or("")
        .to_string()
}

/// `curl --compressed` with this Accept-Encoding: the response head and the decoded body.
fn curl(s: &Server, path: &str, accept: &str) -> (String, Vec<u8>) {
    let (whole, head, body) = curl_any(s, path, accept);
    assert!(whole, "curl failed");
    (head, body)
}

/// The same, also for an answer curl finds incomplete: whether it took it as whole, the
/// head, and what it decoded.
fn curl_any(s: &Server, path: &str, accept: &str) -> (bool, String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "--compressed", "-H"])
        .arg(format!("Accept-Encoding: {accept}"))
        .arg(format!("http://{}{path}", s.addr))
        .output()
        .expect("curl");
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&out.stdout[..split]).to_ascii_lowercase();
    (out.status.success(), head, out.stdout[split + 4..].to_vec())
}

#[test]
fn curl_decodes_each_coding_it_has_and_gets_what_the_file_holds() {
    let s = start("");
    let body = page(20_000);
    std::fs::write(s.root.join("page.html"), &body).unwrap();
    let features = curl_features();
    for (coding, feature) in [("gzip", "libz"), ("br", "brotli"), ("zstd", "zstd")] {
        if !features.split_whitespace().any(|f| f == feature) {
            eprintln!("skipped {coding}: this curl lacks {feature} ({features})");
            continue;
        }
        let (head, decoded) = curl(&s, "/page.html", coding);
        assert!(
            head.contains(&format!("content-encoding: {coding}")),
            "{coding}: {head}"
        );
        assert!(head.contains("vary: accept-encoding"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        assert_eq!(decoded, body.as_bytes(), "{coding}");
    }
    // Ties go to the server's order: br before zstd before gzip.
    let r = s.request("GET /page.html HTTP/1.1\r\nAccept-Encoding: gzip, zstd, br");
    assert_eq!(r.header("content-encoding"), Some("br"));
}

#[test]
fn a_large_file_is_coded_as_a_stream_that_lets_its_event_loop_turn_and_decodes_whole() {
    // A watchdog that replaces a worker whose event loop is stuck for a second: coding
    // 6 MiB in one poll (a debug build takes seconds) tripped it, and the client got
    // nothing.
    let s = Server::start(
        &chain_with(&["compress"]),
        "[limits]\nstall_timeout = 1.0\n[plugins.compress]\n",
    );
    let body = page(6 << 20);
    std::fs::write(s.root.join("big.txt"), &body).unwrap();
    let r = s.request("GET /big.txt HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("accept-ranges"), None);
    assert!(r.header("etag").unwrap().starts_with("W/\""));
    assert!(r.body.len() < body.len() / 4, "{} bytes", r.body.len());
    assert!(
        gunzip(&r.body) == body.as_bytes(),
        "the decoded body differs"
    );
    assert!(!s.log().contains("stuck"), "{}", s.log());
}

/// The access log says how many body bytes went out: the coded length (chunk framing
/// aside), not "-" for a length unknown when the head was written, and 0 for HEAD.
#[test]
fn the_access_log_counts_the_coded_bytes_that_went_out() {
    let s = Server::start(
        &chain_with(&["compress"]),
        "access_log = \"access.log\"\n[plugins.compress]\n",
    );
    std::fs::write(s.root.join("page.html"), page(50_000)).unwrap();
    let r = s.request("GET /page.html?coded HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let coded = r.body.len();
    assert!(coded > 0 && coded < 50_000 / 4, "{coded} bytes");
    s.request("HEAD /page.html?head HTTP/1.1\r\nAccept-Encoding: gzip");
    let log = s.access_log("access.log", 2);
    assert!(
        log.contains(&format!("\"GET /page.html?coded HTTP/1.1\" 200 {coded} ")),
        "{coded}: {log}"
    );
    assert!(
        log.contains("\"HEAD /page.html?head HTTP/1.1\" 200 0 "),
        "{log}"
    );
}

#[test]
fn a_scripts_stream_is_coded_and_each_piece_reaches_the_client_at_once() {
    piece_before_the_pause(
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
         i=0; while [ $i -lt 3000 ]; do echo \"line $i of the script\"; i=$((i+1)); done\n\
         echo first; sleep 2; echo second\n",
    );
}

/// A script that says its length is coded as it comes too: the coded copies kept of
/// small bodies never hold a stream back (they gather only files and the host's pages).
#[test]
fn a_script_with_a_content_length_is_coded_as_it_comes_too() {
    let dir = TempDir::new("compress-part");
    let mut first = String::new();
    for i in 0..3000 {
        first.push_str(&format!("line {i} of the script\n"));
    }
    first.push_str("first\n");
    let one = dir.write("one.txt", &first);
    let two = dir.write("two.txt", "second\n");
    let len = first.len() + "second\n".len();
    piece_before_the_pause(&format!(
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: {len}\\r\\n\\r\\n'\n\
         cat '{}'; sleep 2; cat '{}'\n",
        one.display(),
        two.display()
    ));
}

/// A script that writes less than its Content-Length is broken off in every coding, as
/// it is without one (RFC 9112 §8): what it wrote arrives coded, and the answer does not
/// end as whole.
#[test]
fn a_script_short_of_its_length_is_cut_off_in_every_coding() {
    let s = start("");
    let script = s.root.join("cgi-bin/short.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 2490\\r\\n\\r\\n'\n\
         i=0; while [ $i -lt 100 ]; do echo \"line $i of 19\"; i=$((i+1)); done\n",
    )
    .unwrap();
    chmod(&script, 0o755);
    let written: String = (0..100).map(|i| format!("line {i} of 19\n")).collect();
    let features = curl_features();
    for (coding, feature) in [("gzip", "libz"), ("br", "brotli"), ("zstd", "zstd")] {
        if features.split_whitespace().any(|f| f == feature) {
            let (whole, head, decoded) = curl_any(&s, "/cgi-bin/short.sh", coding);
            assert!(!whole, "{coding}: curl took a short answer as whole");
            assert!(
                head.contains(&format!("content-encoding: {coding}")),
                "{head}"
            );
            assert!(written.as_bytes().starts_with(&decoded), "{coding}");
        }
    }
}

/// Run `script` (which writes "line 0 of the script"... "first", sleeps 2 s, then writes
/// "second") with gzip asked for: all before the pause arrives, coded, before it ends.
fn piece_before_the_pause(script_text: &str) {
    let s = start("");
    let script = s.root.join("cgi-bin/lines.sh");
    std::fs::write(&script, script_text).unwrap();
    chmod(&script, 0o755);
    let mut c = s.connect();
    c.write_all(b"GET /cgi-bin/lines.sh HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
        .unwrap();
    // Read what arrives before the script's sleep ends, then decode it as far as it goes.
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    c.set_read_timeout(Some(std::time::Duration::from_millis(1200)))
        .unwrap();
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.contains("content-encoding: gzip"), "{text:.300}");
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = dechunk(&got[split..]);
    let partial = python(
        "import zlib,sys; d=zlib.decompressobj(16+zlib.MAX_WBITS); \
         sys.stdout.buffer.write(d.decompress(sys.stdin.buffer.read()))",
        &body,
    );
    let partial = String::from_utf8_lossy(&partial);
    assert!(
        partial.starts_with("line 0 of the script\n"),
        "{partial:.80}"
    );
    assert!(
        partial.ends_with("first\n"),
        "{:?}",
        &partial[partial.len().saturating_sub(40)..]
    );
    assert!(!partial.contains("second"));
}

/// The data of the complete chunks in `raw` (chunked framing, RFC 9112 §7.1).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap(), 16).unwrap();
        let start = eol + 2;
        if size == 0 || raw.len() < start + size + 2 {
            break;
        }
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    out
}

#[test]
fn head_gets_the_heads_of_get_without_a_body() {
    let s = start("");
    std::fs::write(s.root.join("page.html"), page(5000)).unwrap();
    let get = s.request("GET /page.html HTTP/1.1\r\nAccept-Encoding: gzip");
    let head = s.request("HEAD /page.html HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for name in [
        "content-encoding",
        "vary",
        "etag",
        "content-length",
        "transfer-encoding",
    ] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    assert_eq!(head.header("content-encoding"), Some("gzip"));
}

#[test]
fn head_of_a_page_the_server_builds_says_the_length_get_sends() {
    // A listing (and every page held in memory) is coded whole with a Content-Length for
    // GET; HEAD's head must say the same (RFC 9110 §9.3.2), not fall back to chunked.
    let s = start("");
    for name in ["a.txt", "b.txt", "c.txt"] {
        std::fs::write(s.root.join("listing").join(name), "x").unwrap();
    }
    let get = s.request("GET /listing/ HTTP/1.1\r\nAccept-Encoding: gzip");
    let head = s.request("HEAD /listing/ HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(get.header("content-encoding"), Some("gzip"));
    assert!(get.header("content-length").is_some());
    for name in ["content-encoding", "content-length", "transfer-encoding"] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    assert!(head.body.is_empty());
}

#[test]
fn refusals_and_ranges_are_sent_as_they_are_but_vary_and_small_bodies_do_not() {
    let s = start("");
    let body = page(5000);
    std::fs::write(s.root.join("page.html"), &body).unwrap();
    for ae in ["gzip;q=0", "identity", "*;q=0", "deflate", ""] {
        let r = s.request(&format!("GET /page.html HTTP/1.1\r\nAccept-Encoding: {ae}"));
        assert_eq!(r.header("content-encoding"), None, "{ae}");
        assert_eq!(r.header("content-length"), Some("5000"), "{ae}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{ae}");
        assert_eq!(r.body, body.as_bytes());
    }
    let none = s.request("GET /page.html HTTP/1.1");
    assert_eq!(none.header("content-encoding"), None);
    assert_eq!(none.header("vary"), Some("Accept-Encoding"));
    // Under min_size no client gets it coded, so nothing varies: a cache keyed on the raw
    // field keeps one copy (as nginx's gzip_min_length leaves it).
    for ae in ["gzip", "br", ""] {
        let small = s.request(&format!("GET /notes.txt HTTP/1.1\r\nAccept-Encoding: {ae}"));
        assert_eq!(small.header("content-encoding"), None);
        assert_eq!(small.header("vary"), None, "{ae}: {}", small.raw_head);
    }
    // Unless a sidecar stands beside it: then every answer for the URL varies, whatever
    // the client asked or cut (a gzip client gets the sidecar).
    std::fs::write(s.root.join("tiny.css"), "a{}\n").unwrap();
    fresh_sidecar(&s.root.join("tiny.css.gz"), "a{}");
    for ask in [
        "Accept-Encoding: gzip",
        "Accept-Encoding: br",
        "Range: bytes=0-0",
    ] {
        let r = s.request(&format!("GET /tiny.css HTTP/1.1\r\n{ask}"));
        assert_eq!(
            r.header("vary"),
            Some("Accept-Encoding"),
            "{ask}: {}",
            r.raw_head
        );
    }
    let ranged = s.request("GET /page.html HTTP/1.1\r\nAccept-Encoding: gzip\r\nRange: bytes=0-9");
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.header("content-encoding"), None);
    assert_eq!(ranged.header("content-range"), Some("bytes 0-9/5000"));
    assert_eq!(ranged.body, &body.as_bytes()[..10]);
}

/// A Range the host will ignore (another unit, an If-Range naming another version) gets
/// the whole answer, so that answer is coded, as nginx codes it; a Range it may still cut
/// keeps the identity bytes.
#[test]
fn a_range_the_host_will_ignore_leaves_the_whole_answer_coded() {
    let s = start("");
    let body = page(5000);
    std::fs::write(s.root.join("page.html"), &body).unwrap();
    let etag = s.get("/page.html").header("etag").unwrap().to_string();
    for extra in [
        "Range: items=0-9".to_string(),
        "Range: bytes=0-9\r\nIf-Range: \"another\"".to_string(),
        format!("Range: bytes=0-9\r\nIf-Range: W/{etag}"),
    ] {
        let r = s.request(&format!(
            "GET /page.html HTTP/1.1\r\nAccept-Encoding: gzip\r\n{extra}"
        ));
        assert_eq!(r.status, 200, "{extra}");
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{extra}");
        assert_eq!(gunzip(&r.body), body.as_bytes(), "{extra}");
    }
    let kept = s.request(&format!(
        "GET /page.html HTTP/1.1\r\nAccept-Encoding: gzip\r\nRange: bytes=0-9\r\nIf-Range: {etag}"
    ));
    assert_eq!(kept.status, 206);
    assert_eq!(kept.header("content-encoding"), None);
    assert_eq!(kept.body, &body.as_bytes()[..10]);
}

#[test]
fn accept_encoding_over_two_lines_is_one_list_and_its_q0_holds() {
    // RFC 9110 §5.3: the lines of a list field are one list, in order.
    let s = start("");
    std::fs::write(s.root.join("page.html"), page(5000)).unwrap();
    let ae = |a: &str, b: &str| {
        let r = s.request(&format!(
            "GET /page.html HTTP/1.1\r\nAccept-Encoding: {a}\r\nAccept-Encoding: {b}"
        ));
        r.header("content-encoding").map(str::to_string)
    };
    assert_eq!(ae("*", "br;q=0").as_deref(), Some("zstd"));
    assert_eq!(ae("br;q=0", "gzip").as_deref(), Some("gzip"));
    assert_eq!(ae("deflate", "gzip").as_deref(), Some("gzip"));
}

#[test]
fn a_scripts_tag_that_is_no_entity_tag_is_dropped_from_its_coded_answer() {
    // `ETag: noquotes` could not be told from the plain answer's, and matched it (nginx
    // drops it from what it compresses).
    let s = start("");
    let script = s.root.join("cgi-bin/tagged.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nETag: noquotes\\r\\n\\r\\n'\n\
         i=0; while [ $i -lt 300 ]; do echo \"line $i\"; i=$((i+1)); done\n",
    )
    .unwrap();
    chmod(&script, 0o755);
    let get = |more: &str| s.request(&format!("GET /cgi-bin/tagged.sh HTTP/1.1{more}"));
    let plain = get("");
    assert_eq!(plain.header("etag"), Some("noquotes"));
    let coded = get("\r\nAccept-Encoding: gzip");
    assert_eq!(coded.header("content-encoding"), Some("gzip"));
    assert_eq!(coded.header("etag"), None);
    let asked = get("\r\nAccept-Encoding: gzip\r\nIf-None-Match: noquotes");
    assert_eq!(asked.status, 200);
}

#[test]
fn an_http10_client_gets_a_text_file_uncoded_with_its_length_and_keeps_alive() {
    // A coded stream's length is unknown, and HTTP/1.0 has no chunks: coded, the answer
    // would end with the close. As nginx's `gzip_http_version 1.1`, it goes plain.
    let s = start("");
    std::fs::write(s.root.join("page.html"), page(5000)).unwrap();
    let mut c = s.connect();
    let req = "GET /page.html HTTP/1.0\r\nConnection: keep-alive\r\nAccept-Encoding: gzip\r\n\r\n";
    for _ in 0..2 {
        c.write_all(req.as_bytes()).unwrap();
        let r = read_response(&mut c, false).expect("an answer on the kept connection");
        assert_eq!(r.header("content-encoding"), None, "{}", r.raw_head);
        assert_eq!(r.header("content-length"), Some("5000"), "{}", r.raw_head);
        assert_eq!(r.header("connection"), Some("keep-alive"), "{}", r.raw_head);
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.body, page(5000).into_bytes());
    }
}

#[test]
fn a_text_file_dated_before_1970_is_coded_as_any_other() {
    // The host dates it 1 Jan 1970; the filter must not fail on the earlier time (it did:
    // a 500, and compress was switched off for the worker).
    let s = start("");
    let path = s.root.join("old.txt");
    std::fs::write(&path, page(5000)).unwrap();
    let ten_years = std::time::Duration::from_secs(10 * 365 * 86_400);
    let before = std::time::UNIX_EPOCH - ten_years;
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(before)
        .unwrap();
    for _ in 0..2 {
        let r = s.request("GET /old.txt HTTP/1.1\r\nAccept-Encoding: gzip");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(
            r.header("last-modified"),
            Some("Thu, 01 Jan 1970 00:00:00 GMT")
        );
        assert_eq!(gunzip(&r.body), page(5000).into_bytes());
    }
}

#[test]
fn a_304_of_a_coded_answer_keeps_vary_and_its_etag_but_names_no_coding() {
    let s = start("");
    std::fs::write(s.root.join("page.html"), page(5000)).unwrap();
    let r = s.request("GET /page.html HTTP/1.1\r\nAccept-Encoding: gzip");
    let etag = r.header("etag").unwrap();
    let again = s.request(&format!(
        "GET /page.html HTTP/1.1\r\nAccept-Encoding: gzip\r\nIf-None-Match: {etag}"
    ));
    assert_eq!(again.status, 304);
    assert_eq!(again.header("vary"), Some("Accept-Encoding"));
    assert_eq!(again.header("etag"), Some(etag));
    // Content-Encoding describes content a 304 has not (RFC 9110 §15.4.5); a cache holding
    // the plain copy must not relabel it.
    assert_eq!(again.header("content-encoding"), None, "{}", again.raw_head);
}

#[test]
fn a_coded_answer_has_a_tag_of_its_own_so_a_plain_request_with_it_gets_plain_bytes() {
    // What Chromium does after a coded answer: a Range request with the cached copy's tag
    // and `Accept-Encoding: identity`. A 304 would confirm the coded copy to it, and it
    // would cut the range from the coded bytes (RFC 9110 §8.8.3.3).
    let s = start("");
    let body = page(5000);
    std::fs::write(s.root.join("page.html"), &body).unwrap();
    let plain = s.request("GET /page.html HTTP/1.1");
    let plain_tag = plain.header("etag").unwrap();
    for coding in ["gzip", "br", "zstd"] {
        let r = s.request(&format!(
            "GET /page.html HTTP/1.1\r\nAccept-Encoding: {coding}"
        ));
        assert_eq!(r.header("content-encoding"), Some(coding));
        let tag = r.header("etag").unwrap();
        assert_eq!(
            tag,
            format!("W/{}-{coding}\"", plain_tag.trim_end_matches('"'))
        );
        let again = s.request(&format!(
            "GET /page.html HTTP/1.1\r\nAccept-Encoding: identity\r\nIf-None-Match: {tag}\r\nRange: bytes=0-4"
        ));
        assert_eq!(again.status, 206, "{coding}: {}", again.raw_head);
        assert_eq!(again.body, &body.as_bytes()[..5], "{coding}");
        // The coded copy's own tag still answers 304 when that coding is asked for again.
        let same = s.request(&format!(
            "GET /page.html HTTP/1.1\r\nAccept-Encoding: {coding}\r\nIf-None-Match: {tag}"
        ));
        assert_eq!(same.status, 304, "{coding}");
    }
}

/// nginx, lighttpd and Caddy check preconditions before they code, so a client that holds
/// the plain file (its tag from a request without Accept-Encoding) and asks again with one
/// gets a 304; so does ours, and the 304 names the plain tag it confirms.
#[test]
fn the_plain_files_tag_still_answers_preconditions_on_a_coded_answer() {
    let s = start("");
    std::fs::write(s.root.join("page.html"), page(5000)).unwrap();
    let plain = s.request("GET /page.html HTTP/1.1");
    let tag = plain.header("etag").unwrap().to_string();
    for coding in ["gzip", "br", "zstd"] {
        let ask = |field: &str| {
            s.request(&format!(
                "GET /page.html HTTP/1.1\r\nAccept-Encoding: {coding}\r\n{field}"
            ))
        };
        let r = ask(&format!("If-None-Match: {tag}"));
        assert_eq!(r.status, 304, "{coding}: {}", r.raw_head);
        assert_eq!(r.header("etag"), Some(tag.as_str()), "{coding}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{coding}");
        let r = ask(&format!("If-Match: {tag}"));
        assert_eq!(r.status, 200, "{coding}: {}", r.raw_head);
        assert_eq!(r.header("content-encoding"), Some(coding));
        // A tag that is neither still gets the coded answer, or 412.
        assert_eq!(ask("If-None-Match: \"other\"").status, 200, "{coding}");
        assert_eq!(ask("If-Match: \"other\"").status, 412, "{coding}");
    }
}

#[test]
fn images_and_answers_already_coded_are_left_alone() {
    let s = start("");
    std::fs::write(s.root.join("pic.png"), page(5000)).unwrap();
    let r = s.request("GET /pic.png HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), None);
    let script = s.root.join("cgi-bin/coded.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Encoding: identity\\r\\n\\r\\n'\n\
         i=0; while [ $i -lt 100 ]; do echo \"line $i\"; i=$((i+1)); done\n",
    )
    .unwrap();
    chmod(&script, 0o755);
    let coded = s.request("GET /cgi-bin/coded.sh HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(coded.header("content-encoding"), Some("identity"));
    assert!(coded.text().starts_with("line 0\n"));
}

#[test]
fn the_hosts_own_pages_are_coded_whole_with_a_length() {
    let s = start("min_size = 100");
    let r = s.request("GET /missing HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let len: usize = r.header("content-length").unwrap().parse().unwrap();
    assert_eq!(len, r.body.len());
    assert!(String::from_utf8_lossy(&gunzip(&r.body)).contains("<!DOCTYPE html>"));
}

/// A root with `site.css` and a newer `site.css.gz` that is NOT the file compressed: what
/// comes back tells which was sent.
fn with_sidecar(s: &Server) -> (Vec<u8>, Vec<u8>) {
    let body = page(8000);
    std::fs::write(s.root.join("site.css"), &body).unwrap();
    let sidecar = fresh_sidecar(&s.root.join("site.css.gz"), "the sidecar, not the file");
    (body.into_bytes(), sidecar)
}

/// Write `line` gzipped at `side`, dated 5 s ahead so it is never older than its file;
/// its bytes.
fn fresh_sidecar(side: &std::path::Path, line: &str) -> Vec<u8> {
    let sidecar = python(
        &format!("import gzip,sys; sys.stdout.buffer.write(gzip.compress(b'{line}\\n'))"),
        b"",
    );
    std::fs::write(side, &sidecar).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    let f = std::fs::File::options().write(true).open(side).unwrap();
    f.set_modified(later).unwrap();
    sidecar
}

#[test]
fn a_fresh_sidecar_is_sent_by_sendfile_with_its_own_length_and_etag() {
    let s = start("");
    let (body, sidecar) = with_sidecar(&s);
    let plain = s.request("GET /site.css HTTP/1.1");
    assert_eq!(plain.body, body);
    let r = s.request("GET /site.css HTTP/1.1\r\nAccept-Encoding: gzip, br");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        r.header("content-length"),
        Some(sidecar.len().to_string().as_str())
    );
    assert_eq!(r.body, sidecar);
    assert_eq!(gunzip(&r.body), b"the sidecar, not the file\n");
    let etag = r.header("etag").unwrap();
    assert!(etag.starts_with('"'), "strong: {etag}");
    assert_ne!(Some(etag), plain.header("etag"));
    let features = curl_features();
    if features.split_whitespace().any(|f| f == "libz") {
        let (_, decoded) = curl(&s, "/site.css", "gzip");
        assert_eq!(decoded, b"the sidecar, not the file\n");
    }
    let again = s.request(&format!(
        "GET /site.css HTTP/1.1\r\nAccept-Encoding: gzip\r\nIf-None-Match: {etag}"
    ));
    assert_eq!(again.status, 304);
    // No representation metadata on a 304 (RFC 9110 §15.4.5; nginx, Go's ServeContent).
    assert_eq!(again.header("content-encoding"), None);
    // The identity ETag does not validate the sidecar.
    let old = plain.header("etag").unwrap();
    let other = s.request(&format!(
        "GET /site.css HTTP/1.1\r\nAccept-Encoding: gzip\r\nIf-None-Match: {old}"
    ));
    assert_eq!(other.status, 200);
    // A Range is cut from the file (what `curl --compressed -C -` resumes), past the
    // sidecar's end too; one resuming the sidecar by its own tag, from the sidecar.
    let ranged = s.request("GET /site.css HTTP/1.1\r\nAccept-Encoding: gzip\r\nRange: bytes=0-9");
    assert_eq!(ranged.status, 206, "{}", ranged.raw_head);
    assert_eq!(ranged.header("content-encoding"), None);
    let file = &body;
    assert_eq!(
        ranged.header("content-range"),
        Some(format!("bytes 0-9/{}", file.len()).as_str())
    );
    assert_eq!(ranged.body, &file[..10]);
    let past = sidecar.len() + 1;
    let tail = s.request(&format!(
        "GET /site.css HTTP/1.1\r\nAccept-Encoding: gzip\r\nRange: bytes={past}-"
    ));
    assert_eq!((tail.status, tail.body.as_slice()), (206, &file[past..]));
    let resumed = s.request(&format!(
        "GET /site.css HTTP/1.1\r\nAccept-Encoding: gzip\r\nRange: bytes=0-9\r\nIf-Range: {etag}"
    ));
    assert_eq!(resumed.status, 206, "{}", resumed.raw_head);
    assert_eq!(resumed.header("content-encoding"), Some("gzip"));
    assert_eq!(
        resumed.header("content-range"),
        Some(format!("bytes 0-9/{}", sidecar.len()).as_str())
    );
    assert_eq!(resumed.body, &sidecar[..10]);
    let head = s.request("HEAD /site.css HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(head.header("content-length"), r.header("content-length"));
    assert_eq!(head.header("content-encoding"), Some("gzip"));
}

/// A folder's index page is its file: `/docs/` gets `docs/index.html.gz` as
/// `/docs/index.html` does (nginx's `index` then `gzip_static`, Caddy, static-web-server),
/// the same bytes and tag, and the log keeps the line the client sent.
#[test]
fn a_folders_index_page_is_sent_from_its_sidecar_as_the_page_itself_is() {
    let s = Server::start(
        &chain_with(&["compress"]),
        "access_log = \"access.log\"\n[plugins.compress]\n",
    );
    std::fs::write(s.root.join("subdir/index.html"), page(8000)).unwrap();
    let sidecar = fresh_sidecar(&s.root.join("subdir/index.html.gz"), "the index sidecar");
    let folder = s.request("GET /subdir/?q=1 HTTP/1.1\r\nAccept-Encoding: gzip");
    let page = s.request("GET /subdir/index.html HTTP/1.1\r\nAccept-Encoding: gzip");
    for r in [&folder, &page] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.body, sidecar);
    }
    assert_eq!(folder.header("etag"), page.header("etag"));
    let log = s.access_log("access.log", 2);
    assert!(log.contains("\"GET /subdir/?q=1 HTTP/1.1\" 200 "), "{log}");
}

/// Coded copies are kept by the bytes they were made from: a file rewritten in place with
/// the same length and modification time (so the same ETag) is still answered with its
/// new bytes, and a page sent again is the same coded answer.
#[test]
fn a_file_rewritten_in_place_is_coded_anew_not_answered_from_a_kept_copy() {
    let s = start("");
    let path = s.root.join("page.html");
    let body = page(3000);
    std::fs::write(&path, &body).unwrap();
    let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
    let get = || s.request("GET /page.html HTTP/1.1\r\nAccept-Encoding: gzip");
    let (first, again) = (get(), get());
    assert_eq!(first.body, again.body);
    assert_eq!(gunzip(&first.body), body.as_bytes());
    let edited = body.replace("quick", "QUICK");
    assert_eq!(edited.len(), body.len());
    std::fs::write(&path, &edited).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(stamp).unwrap();
    let after = get();
    assert_eq!(after.header("etag"), first.header("etag"), "the same tag");
    assert_eq!(gunzip(&after.body), edited.as_bytes());
}

/// A file found without sidecars is not looked at again for a second (the stats it saves
/// are most of a coded answer's cost); a sidecar added then is sent within that second.
#[test]
fn a_sidecar_added_after_a_miss_is_sent_within_a_second() {
    let s = start("");
    let body = page(8000);
    std::fs::write(s.root.join("late.css"), &body).unwrap();
    let get = || s.request("GET /late.css HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(gunzip(&get().body), body.as_bytes(), "coded on the fly");
    let sidecar = fresh_sidecar(&s.root.join("late.css.gz"), "late sidecar");
    let start = std::time::Instant::now();
    assert!(within(std::time::Duration::from_secs(3), || get().body == sidecar));
    assert!(start.elapsed() < std::time::Duration::from_millis(2500));
}

/// A later filter that replaces the body (error_pages after compress) changes what is
/// sent from what compress was told: every coding still gets the whole page.
#[test]
fn a_page_replaced_after_compress_is_coded_whole_in_every_coding() {
    let dir = TempDir::new("compress-pages");
    let root = fixture_root(&dir);
    let page = page(3000);
    dir.write("www/errors/404.html", &page);
    let s = Server::start_in(
        dir,
        root,
        &[plugins_dir()],
        &chain_with(&["compress", "error_pages"]),
        "[plugins.compress]\n[plugins.error_pages]\npages = { 404 = \"errors/404.html\" }\n",
    );
    let features = curl_features();
    for (coding, feature) in [("gzip", "libz"), ("br", "brotli"), ("zstd", "zstd")] {
        if !features.split_whitespace().any(|f| f == feature) {
            continue;
        }
        // Coded or not (the page replaced after the coding was chosen goes out plain), the
        // client gets the whole page.
        let (head, decoded) = curl(&s, "/missing", coding);
        assert!(head.starts_with("http/1.1 404"), "{head}");
        assert_eq!(decoded, page.as_bytes(), "{coding}: {head}");
    }
}

#[test]
fn a_stale_sidecar_is_ignored_and_the_file_coded_on_the_fly() {
    let s = start("");
    let (body, _) = with_sidecar(&s);
    let earlier = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(s.root.join("site.css.gz"))
        .unwrap()
        .set_modified(earlier)
        .unwrap();
    let r = s.request("GET /site.css HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(gunzip(&r.body), body);
    let off = Server::start(
        &chain_with(&["compress"]),
        "[plugins.compress]\nprecompressed = false\n",
    );
    with_sidecar(&off);
    let r = off.request("GET /site.css HTTP/1.1\r\nAccept-Encoding: gzip");
    assert_eq!(gunzip(&r.body), page(8000).as_bytes());
}

#[test]
fn bad_compress_settings_stop_start_up_with_the_reason() {
    let dir = TempDir::new("compress-bad");
    let root = fixture_root(&dir);
    let extra = "[plugins.compress.level]\nbr = 12\n";
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], &chain_with(&["compress"]), extra),
    );
    let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains("refused its settings [plugins.compress]")
            && e.stderr.contains("level.br = 12: expected 0-11"),
        "{}",
        e.stderr
    );
}
