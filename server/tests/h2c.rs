//! HTTP/2 over plain TCP with prior knowledge (RFC 9113 §3.3): a client that starts with
//! the connection preface gets HTTP/2 on the same port that serves HTTP/1.1.

use crate::support::*;
use std::io::Write;
use std::process::Command;

/// curl's `-w` line for one plain-HTTP request: `version status`.
fn curl(s: &Server, path: &str, args: &[&str]) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .args(args)
        .arg(format!("http://{}{path}", s.addr))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn curl_with_prior_knowledge_gets_http2_and_http1_1_still_works_on_the_port() {
    let s = Server::shipped_with("workers = 1\naccess_log = \"-\"");
    let h2 = curl(&s, "/plain.html", &["--http2-prior-knowledge"]);
    assert_eq!(h2, "2 200", "{}", s.log());
    let missing = curl(&s, "/nothing-here", &["--http2-prior-knowledge"]);
    assert_eq!(missing, "2 404");
    assert_eq!(curl(&s, "/plain.html", &["--http1.1"]), "1.1 200");
    assert!(
        s.log_contains("\"GET /plain.html HTTP/2.0\" 200"),
        "{}",
        s.log()
    );
}

/// The head of an HTTP/2 GET of `url` by curl (prior knowledge), lower-cased.
fn http2_head(url: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-D",
            "-",
            "-o",
            "/dev/null",
        ])
        .arg(url)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

/// The value of the field `name` (lower case) in a lower-cased `head`.
fn field_in<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name}: {head}"))
        .trim()
}

/// An HTTP/2 answer's head has what an HTTP/1.1 one has: Date (an IMF-fixdate), Server,
/// the file's validators, type and length.
#[test]
fn an_http2_answer_carries_date_server_and_the_files_fields() {
    let s = Server::shipped();
    let head = http2_head(&format!("http://{}/plain.html", s.addr));
    let field = |name: &str| field_in(&head, name).to_string();
    let date = field("date");
    assert!(date.len() == 29 && date.ends_with(" gmt"), "{date}");
    assert!(field("server").starts_with("cases"), "{head}");
    let len = std::fs::metadata(s.root.join("plain.html")).unwrap().len();
    assert_eq!(field("content-length"), len.to_string());
    assert!(field("content-type").starts_with("text/html"), "{head}");
    assert!(field("etag").starts_with('"'), "{head}");
    assert!(field("last-modified").ends_with(" gmt"), "{head}");
}

/// The fields the filters add (the shipped security preset, Cache-Control, Vary): over
/// HTTP/2 as over HTTP/1.1, on two answers in a row (filters' fields are kept for good
/// from the first answer that carries them, and handed to h2 without a copy).
#[test]
fn over_http2_the_filters_fields_arrive_as_over_http1() {
    let settings = "[plugins.headers]\nsecurity = true\n\
        [plugins.headers.cache]\nmax_age = { \".html\" = 0 }\n";
    let s = Server::start(&chain_with(&["headers", "compress"]), settings);
    let names = [
        "x-content-type-options",
        "referrer-policy",
        "x-frame-options",
        "content-security-policy",
        "cache-control",
        "vary",
    ];
    // A page compress could code (past its min_size), so Vary is among the fields.
    let page = format!(
        "<!DOCTYPE html><title>t</title><p>{}</p>",
        "text ".repeat(200)
    );
    std::fs::write(s.root.join("page.html"), page).unwrap();
    let url = format!("http://{}/page.html", s.addr);
    let first = http2_head(&url);
    let http1 = s.get("/page.html");
    for head in [first, http2_head(&url)] {
        assert!(head.starts_with("http/2 200"), "{head}");
        for name in names {
            let want = http1
                .header(name)
                .unwrap_or_else(|| panic!("{name} over HTTP/1.1"));
            assert_eq!(field_in(&head, name), want.to_lowercase(), "{name}");
        }
    }
}

/// Python's h2 over a plain socket: three streams, the later ones sent after a pause (so
/// they are read from the socket, not from the bytes read with the preface); the statuses.
const STREAMS: &str = r#"
import socket, sys, time, h2.connection, h2.config, h2.events
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
first = c.data_to_send()
split = int(sys.argv[2])
if split:
    # The preface in two writes, the first shorter than its first line.
    s.sendall(first[:split])
    time.sleep(0.3)
s.sendall(first[split:])
def get(sid, path):
    c.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"),
                         (":authority", "127.0.0.1")], end_stream=True)
    s.sendall(c.data_to_send())
    status, size = None, 0
    while True:
        data = s.recv(65536)
        if not data:
            return "closed"
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status = dict(ev.headers)[b":status"].decode()
            if isinstance(ev, h2.events.DataReceived):
                size += len(ev.data)
                c.acknowledge_received_data(len(ev.data), ev.stream_id)
            if isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                s.sendall(c.data_to_send())
                return "%s:%d" % (status, size)
        s.sendall(c.data_to_send())
out = [get(1, "/plain.html")]
time.sleep(0.3)
out += [get(3, "/nothing-here"), get(5, "/plain.html")]
print(" ".join(out))
"#;

/// Run STREAMS against `s`, the preface split after `split` bytes (0: whole); its stdout.
fn streams(s: &Server, split: usize) -> String {
    let out = Command::new("timeout")
        .args(["30", "python3", "-c", STREAMS])
        .arg(s.addr.port().to_string())
        .arg(split.to_string())
        .output()
        .expect("run python3");
    let said = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named"),
        "Python's h2 package is missing: python3 -m pip install h2 (.ci/run does)\n{err}"
    );
    format!("{said}{err}")
}

#[test]
fn an_http2_connection_without_tls_serves_streams_sent_after_a_pause() {
    let s = Server::shipped();
    let size = std::fs::metadata(s.root.join("plain.html")).unwrap().len();
    // The preface whole, then split inside it (a client's small writes).
    for split in [0, 3, 15, 20] {
        let said = streams(&s, split);
        let want = format!("200:{size} 404:");
        assert!(
            said.starts_with(&want),
            "split {split}: {said}\n{}",
            s.log()
        );
        let last = format!(" 200:{size}\n");
        assert!(said.contains(&last), "split {split}: {said}");
    }
}

/// Only the whole preface starts HTTP/2 (RFC 9113 §3.4): its first line followed by
/// fields is an HTTP/1.1 request for version 2.0, answered 505 as lighttpd answers it.
#[test]
fn a_pri_line_without_the_rest_of_the_preface_is_an_http1_request() {
    let s = Server::shipped();
    let mut c = s.connect();
    c.write_all(b"PRI * HTTP/2.0\r\nHost: t\r\n\r\n").unwrap();
    let r = read_response(&mut c, false).expect("an HTTP/1.1 answer, not frames");
    assert_eq!(r.status, 505, "{}", r.text());
}

#[test]
fn with_http2_off_the_preface_is_505_and_tls_offers_only_http1() {
    let s = Server::shipped_with("http2 = false");
    let mut c = s.connect();
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    let r = read_response(&mut c, false).expect("an answer");
    assert_eq!(r.status, 505, "{}", r.text());
    let tls = Server::start_on("https://127.0.0.1:0", CHAIN, "http2 = false");
    let out = Command::new("curl")
        .args([
            "-sSk",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
        ])
        .arg(format!("https://{}/plain.html", tls.addr))
        .output()
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.1", "{}", tls.log());
}

/// Python for scripts that read frames by hand: `frame()` reads the next whole frame from
/// the socket `s` the script opens (EOFError at the end).
const FRAMES: &str = r#"
import hyperframe.frame as F
buf = b""
def frame():
    global buf
    while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
        data = s.recv(65536)
        if not data:
            raise EOFError
        buf += data
    f, n = F.Frame.parse_frame_header(memoryview(buf[:9]))
    f.parse_body(memoryview(buf[9:9 + n]))
    buf = buf[9 + n:]
    return f
"#;

/// Run a Python `script` against `s` (its port first, then `args`), within 30 s, after
/// [`FRAMES`]: what it printed, trimmed; it must write nothing to stderr.
fn python(script: &str, s: &Server, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["30", "python3", "-c", &format!("{FRAMES}{script}")])
        .arg(s.addr.port().to_string())
        .args(args)
        .output()
        .expect("run python3");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "{err}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Python's h2 over a plain socket, one request whose body is held back: the events that
/// come within 3 s, as `informational:STATUS`, `response:STATUS`, `reset:CODE`; then, if
/// the stream is still open, the body is sent and what follows printed the same way.
const HELD_BODY: &str = r#"
import socket, sys, time, h2.connection, h2.config, h2.events
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
method, path = sys.argv[2], sys.argv[3]
fields = [(":method", method), (":authority", "127.0.0.1")]
if method != "CONNECT":
    fields += [(":path", path), (":scheme", "http"), ("content-length", "5")]
fields += [tuple(f.split(": ", 1)) for f in sys.argv[4:]]
c.send_headers(1, fields, end_stream=False)
s.sendall(c.data_to_send())
said, ended = [], False
def events(seconds):
    global ended
    s.settimeout(seconds)
    try:
        while not ended:
            data = s.recv(65536)
            if not data:
                said.append("closed"); return
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.InformationalResponseReceived):
                    said.append("informational:" + dict(ev.headers)[b":status"].decode())
                elif isinstance(ev, h2.events.ResponseReceived):
                    said.append("response:" + dict(ev.headers)[b":status"].decode())
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended = True
            s.sendall(c.data_to_send())
    except socket.timeout:
        pass
events(3)
said.append("|")
if not ended:
    c.send_data(1, b"hello", end_stream=True)
    s.sendall(c.data_to_send())
    events(5)
print(" ".join(said))
"#;

/// Python's h2: one GET of argv[2] with the fields that follow (`name: value`, repeats
/// kept); prints the status and whether the answer is dated.
const ONE_GET: &str = r#"
import socket, sys, h2.connection, h2.config, h2.events
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, validate_outbound_headers=False))
c.initiate_connection()
fields = [(":method", "GET"), (":path", sys.argv[2]), (":scheme", "http"), (":authority", "t")]
fields += [tuple(f.split(": ", 1)) for f in sys.argv[3:]]
c.send_headers(1, fields, end_stream=True)
s.sendall(c.data_to_send())
s.settimeout(5)
while True:
    data = s.recv(65536)
    if not data:
        print("closed"); break
    got = [e for e in c.receive_data(data) if isinstance(e, h2.events.ResponseReceived)]
    s.sendall(c.data_to_send())
    if got:
        h = dict(got[0].headers)
        print(h[b":status"].decode(), "dated" if b"date" in h else "undated"); break
"#;

#[test]
fn over_http2_cookie_crumbs_count_once_and_a_large_list_gets_the_hosts_431() {
    let s = Server::shipped();
    let get = |path: &str, fields: &[String]| {
        let args: Vec<&str> = std::iter::once(path)
            .chain(fields.iter().map(String::as_str))
            .collect();
        python(ONE_GET, &s, &args)
    };
    // Browsers send each cookie as a field of its own (RFC 9113 §8.2.3): 120 crumbs are
    // one Cookie, within max_header_count (100).
    let crumbs: Vec<String> = (0..120).map(|i| format!("cookie: c{i}=v")).collect();
    assert_eq!(get("/plain.html", &crumbs), "200 dated", "{}", s.log());
    // A list past max_header_bytes (32 KiB) is the host's 431: dated, logged.
    let big: Vec<String> = (0..10)
        .map(|i| format!("x-big-{i}: {}", "b".repeat(4000)))
        .collect();
    assert_eq!(get("/plain.html", &big), "431 dated", "{}", s.log());
    // Host may write the scheme's default port where :authority does not (§8.3.1).
    assert_eq!(get("/plain.html", &["host: t:80".into()]), "200 dated");
    assert_eq!(get("/plain.html", &["host: other".into()]), "400 dated");
    // A :path past max_request_line is 414, as over HTTP/1.1.
    assert_eq!(get(&format!("/{}", "a".repeat(9000)), &[]), "414 dated");
}

/// HELD_BODY against `s`: what came before the body was sent, and what came after.
fn held_body(s: &Server, method: &str, path: &str, fields: &[&str]) -> (String, String) {
    let said = python(HELD_BODY, s, &[&[method, path], fields].concat());
    let (before, after) = said.split_once('|').expect("both parts");
    (before.trim().to_string(), after.trim().to_string())
}

#[test]
fn an_http2_client_expecting_100_continue_gets_it_before_it_sends_its_body() {
    // RFC 9110 §10.1.1: a 100 (or the final answer) at once, never a wait for the body.
    let s = Server::shipped();
    let (before, after) = held_body(&s, "POST", "/nothing-here", &["expect: 100-continue"]);
    assert_eq!(before, "informational:100", "{}", s.log());
    assert_eq!(after, "response:404", "{}", s.log());
    // Without the expectation the body is simply read first.
    let (before, after) = held_body(&s, "POST", "/nothing-here", &[]);
    assert_eq!((before.as_str(), after.as_str()), ("", "response:404"));
}

#[test]
fn over_http2_an_answer_the_head_decides_does_not_wait_for_the_body() {
    let s = Server::shipped_with("access_log = \"-\"");
    // A file does not take POST: 405 at once, as nginx answers.
    let (before, _) = held_body(&s, "POST", "/plain.html", &[]);
    assert_eq!(before, "response:405", "{}", s.log());
    // CONNECT, which no case implements: 501 at once, where its open stream used to wait
    // for body_timeout.
    let (before, _) = held_body(&s, "CONNECT", "", &[]);
    assert_eq!(before, "response:501", "{}", s.log());
    let logged = "\"CONNECT 127.0.0.1 HTTP/2.0\" 501";
    assert!(s.log_contains(logged), "{}", s.log());
    // A declared length over max_body: 413 at once.
    let s = Server::shipped_with("[limits]\nmax_body = 4");
    let (before, _) = held_body(&s, "POST", "/nothing-here", &[]);
    assert_eq!(before, "response:413", "{}", s.log());
}

/// POST /plain.html with `content-length: 5` (HEADERS without END_STREAM), then, after
/// argv[2] seconds, DATA of argv[3] bytes ending the stream: how stream 1 ended, as
/// `405` (the answer, ending the stream), `reset:REASON`, or `closed`/`nothing`.
const LATE_BODY: &str = r#"
import socket, sys, time, hpack, hyperframe.frame as F
from h2.errors import ErrorCodes
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
enc, dec = hpack.Encoder(), hpack.Decoder()
block = enc.encode([(":method", "POST"), (":path", "/plain.html"), (":scheme", "http"),
                    (":authority", "127.0.0.1"), ("content-length", "5")])
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + F.SettingsFrame(0).serialize()
          + F.HeadersFrame(1, data=block, flags=["END_HEADERS"]).serialize())
time.sleep(float(sys.argv[2]))
s.sendall(F.DataFrame(1, data=b"x" * int(sys.argv[3]), flags=["END_STREAM"]).serialize())
said = []
try:
    while True:
        f = frame()
        if f.stream_id != 1:
            continue
        if isinstance(f, F.HeadersFrame):
            said.append(dict(dec.decode(f.data))[":status"])
        if isinstance(f, F.RstStreamFrame):
            said.append("reset:" + ErrorCodes(f.error_code).name)
            break
        if "END_STREAM" in f.flags:
            break
except EOFError:
    said.append("closed")
except socket.timeout:
    said.append("nothing")
print(" ".join(said))
"#;

fn late_body(s: &Server, pause: &str, len: usize) -> String {
    python(LATE_BODY, s, &[pause, &len.to_string()])
}

/// A 405 the head decides waits a moment for a body that follows its head: one that does
/// not match its Content-Length is then a stream error, as for any request (RFC 9113
/// §8.1.1; h2spec 8.1.2.6 sends its DATA apart from its HEADERS and expects
/// PROTOCOL_ERROR), and one that matches gets the 405 with the stream ended.
#[test]
fn over_http2_a_body_just_behind_a_refused_head_is_still_checked() {
    let s = Server::shipped();
    assert_eq!(late_body(&s, "0.05", 10), "reset:PROTOCOL_ERROR");
    assert_eq!(late_body(&s, "0.05", 5), "405");
}

/// GET /plain.html `n` times on one plain HTTP/2 connection, one after another, with
/// frames read and written by hand (Python's h2 ends its connection at the first GOAWAY,
/// even the graceful one, while streams may still be answered): the statuses, then
/// `goaway` if a GOAWAY came by 2 s after the last answer, else `open`; then `closed` if
/// the server closed the connection by then, else `open`. With a third argument the
/// client never answers a PING (a graceful GOAWAY comes with one) and waits up to 8 s.
const MANY: &str = r#"
import socket, sys, hpack, hyperframe.frame as F
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(2)
quiet = len(sys.argv) > 3
enc, dec = hpack.Encoder(), hpack.Decoder()
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + F.SettingsFrame(0).serialize())
said, goaway = [], False
def until_end(sid):
    global goaway
    while True:
        f = frame()
        if isinstance(f, F.SettingsFrame) and "ACK" not in f.flags:
            s.sendall(F.SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, F.PingFrame) and "ACK" not in f.flags and not quiet:
            s.sendall(F.PingFrame(0, opaque_data=f.opaque_data, flags=["ACK"]).serialize())
        elif isinstance(f, F.GoAwayFrame):
            goaway = True
        elif isinstance(f, F.HeadersFrame) and f.stream_id == sid:
            said.append(dict(dec.decode(f.data))[":status"])
        if f.stream_id == sid and "END_STREAM" in f.flags:
            return
for i in range(int(sys.argv[2])):
    sid = 2 * i + 1
    block = enc.encode([(":method", "GET"), (":path", "/plain.html"), (":scheme", "http"),
                        (":authority", "127.0.0.1")])
    s.sendall(F.HeadersFrame(sid, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    until_end(sid)
if quiet:
    s.settimeout(8)
try:
    until_end(-1)
except socket.timeout:
    end = "open"
except EOFError:
    end = "closed"
print(" ".join(said), "goaway" if goaway else "open", end)
"#;

/// MANY against `s` with `n` requests (and `quiet`: no PING answered).
fn many(s: &Server, n: usize, quiet: bool) -> String {
    let n = n.to_string();
    let mut args = vec![n.as_str()];
    args.extend(quiet.then_some("quiet"));
    python(MANY, s, &args)
}

#[test]
fn an_http2_connection_goes_away_after_max_requests_per_connection() {
    // As over HTTP/1.1, and as nginx's keepalive_requests over HTTP/2: a graceful GOAWAY,
    // every stream accepted before it still answered.
    let limits = "[limits]\nkeepalive_timeout = 30.0";
    let s = Server::shipped_with(&format!("{limits}\nmax_requests_per_connection = 3"));
    assert_eq!(
        many(&s, 3, false),
        "200 200 200 goaway closed",
        "{}",
        s.log()
    );
    // A client that never answers the GOAWAY's PING is closed all the same (2 s after its
    // last stream), not kept for as long as it stays connected.
    assert_eq!(
        many(&s, 3, true),
        "200 200 200 goaway closed",
        "{}",
        s.log()
    );
    let s = Server::shipped_with(limits);
    assert_eq!(many(&s, 3, false), "200 200 200 open open");
}

/// Raw frames: one GET on stream 1, read to its end, then a SIGTERM to the server (its pid
/// is argv[2]) while this client stays idle and never answers the server's PING; prints the
/// GOAWAYs' last stream ids and how many seconds after the signal the server closed.
const IDLE_AT_A_STOP: &str = r#"
import os, signal, socket, sys, time
import hpack
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(20)
block = hpack.Encoder().encode([(":method", "GET"), (":path", "/plain.html"), (":scheme", "http"), (":authority", "t")])
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + F.SettingsFrame(0).serialize()
          + F.HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
while True:
    f = frame()
    if f.stream_id == 1 and "END_STREAM" in f.flags:
        break
os.kill(int(sys.argv[2]), signal.SIGTERM)
began, said = time.time(), []
try:
    while True:
        f = frame()
        if isinstance(f, F.GoAwayFrame):
            said.append("goaway:%d" % f.last_stream_id)
except (EOFError, ConnectionResetError):
    pass
print(" ".join(said), "closed-after:%d" % round(time.time() - began))
"#;

/// A stop tells an idle HTTP/2 client to go away and closes its connection with the final
/// GOAWAY within GOODBYE_WAIT, as when it idles out, also when the client never answers
/// the PING that came with the first GOAWAY (it was held until shutdown_timeout and cut
/// without a final GOAWAY; nginx and Caddy close at once).
#[test]
fn a_stop_closes_an_idle_http2_connection_whose_client_ignores_the_ping() {
    let mut s = Server::shipped();
    let pid = s.child.id().to_string();
    let said = python(IDLE_AT_A_STOP, &s, &[&pid]);
    assert!(
        said.starts_with("goaway:2147483647 goaway:1 closed-after:"),
        "{said}\n{}",
        s.log()
    );
    let secs: u64 = said.rsplit(':').next().unwrap().parse().unwrap();
    assert!(secs <= 4, "{said}");
    assert!(s.child.wait().unwrap().success());
}

#[test]
fn an_http2_request_whose_client_leaves_before_the_answer_is_logged_as_499() {
    // nginx's "client closed request": every request read gets its access line; a stream
    // reset while its script worked had none.
    let dir = TempDir::new("h2-left");
    let root = fixture_root(&dir);
    let late = "#!/bin/sh\nsleep 1\nprintf 'Content-Type: text/plain\\r\\n\\r\\nlate\\n'\n";
    chmod(&dir.write("www/cgi-bin/late.sh", late), 0o755);
    let extra = "workers = 1\naccess_log = \"-\"";
    let s = Server::start_in(dir, root, &[plugins_dir()], CHAIN, extra);
    let out = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-m", "0.3"])
        .arg(format!("http://{}/cgi-bin/late.sh", s.addr))
        .output()
        .expect("curl");
    assert!(!out.status.success(), "curl waited for the answer");
    let logged = "\"GET /cgi-bin/late.sh HTTP/2.0\" 499 0 ";
    let seen = within(std::time::Duration::from_secs(3), || s.log_contains(logged));
    assert!(seen, "{}", s.log());
}
