//! status: the host's counters as JSON and as Prometheus text, for allowed addresses only.

use crate::support::*;
use std::process::Command;

/// One worker process: the counters are each worker's own.
fn with_status(extra: &str) -> Server {
    let cases = CHAIN.replacen("\"hidden_files\", ", "\"hidden_files\", \"status\", ", 1);
    Server::start(&cases, &format!("workers = 1\n{extra}"))
}

#[test]
fn the_json_page_counts_requests_by_status_and_by_case() {
    let s = with_status("");
    assert_eq!(s.get("/notes.txt").status, 200);
    assert_eq!(s.get("/missing").status, 404);
    // A request is counted once its answer is written, just after the client has it.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let r = s.get("/status");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(v["requests_by_status"]["200"], 1, "{v}");
    assert_eq!(v["requests_by_status"]["404"], 1, "{v}");
    assert_eq!(v["requests_total"], 2, "{v}");
    assert_eq!(v["latency_seconds"]["count"], 2, "{v}");
    assert!(v["bytes_sent"].as_u64().unwrap() >= 10, "{v}");
    assert!(v["connections_open"].as_u64().unwrap() >= 1, "{v}");
    let acted = |name: &str| {
        v["chain"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["case"] == name)
            .map(|c| c["acted"].as_u64().unwrap())
    };
    assert_eq!(acted("existing_file"), Some(1), "{v}");
    assert_eq!(acted("no_file"), Some(1), "{v}");
    assert_eq!(
        acted("status"),
        Some(0),
        "the page counts when it is done: {v}"
    );
    assert!(v["uptime_seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn the_metrics_are_prometheus_text_a_real_parser_reads() {
    let s = with_status("");
    s.get("/notes.txt");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text();
    assert!(
        text.contains("cases_requests_total{status=\"200\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("cases_request_duration_seconds_bucket{le=\"+Inf\"} 1\n"),
        "{text}"
    );
    let check = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nnames = {f.name for f in p(sys.stdin.read())}\nassert 'cases_request_duration_seconds' in names, names\nprint(len(names))\n";
    let parsed = Command::new("python3")
        .args(["-c", check])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .expect("run python3");
    let err = String::from_utf8_lossy(&parsed.stderr);
    if err.contains("No module named 'prometheus_client'") {
        eprintln!("SKIPPED the parser check: python3-prometheus-client is not installed");
        return;
    }
    assert!(parsed.status.success(), "{err}");
}

#[test]
fn addresses_outside_allow_get_403() {
    let s = with_status("[plugins.status]\nallow = [\"10.0.0.0/8\"]\n");
    assert_eq!(s.get("/status").status, 403);
    assert_eq!(s.get("/metrics").status, 403);
}
