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
    // The preface whole, then split inside its first line (a client's small writes).
    for split in [0, 3, 15] {
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
