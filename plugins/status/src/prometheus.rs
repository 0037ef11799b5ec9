//! The host's counters (its JSON) as Prometheus text exposition format 0.0.4.

use serde_json::Value;
use std::fmt::Write;

/// Render the metrics; `Err` when the host's JSON is not what this version expects.
pub fn render(json: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(4096);
    info(&mut out, &v);
    requests(&mut out, &v);
    cases(&mut out, &v);
    latency(&mut out, &v)?;
    for (name, key, kind, help) in [
        (
            "cases_bytes_sent_total",
            "bytes_sent",
            "counter",
            "Body bytes sent.",
        ),
        (
            "cases_connections_open",
            "connections_open",
            "gauge",
            "Open connections.",
        ),
        (
            "cases_blocking_running",
            "blocking_running",
            "gauge",
            "Cases (scripts) running off the event loop.",
        ),
        (
            "cases_uptime_seconds",
            "uptime_seconds",
            "gauge",
            "Seconds since this process started.",
        ),
        (
            "cases_config_loaded_timestamp_seconds",
            "config_loaded_unix",
            "gauge",
            "When the running configuration was loaded (Unix time).",
        ),
    ] {
        metric(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {}", number(&v[key]));
    }
    Ok(out)
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn number(v: &Value) -> String {
    v.as_f64().map_or_else(|| "0".into(), |n| n.to_string())
}

/// A label value, escaped as the format asks (backslash, quote, newline).
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn info(out: &mut String, v: &Value) {
    metric(
        out,
        "cases_info",
        "gauge",
        "The server's version and this process's id.",
    );
    let server = label(v["server"].as_str().unwrap_or(""));
    let _ = writeln!(
        out,
        "cases_info{{server=\"{server}\",pid=\"{}\"}} 1",
        number(&v["pid"])
    );
}

fn requests(out: &mut String, v: &Value) {
    metric(
        out,
        "cases_requests_total",
        "counter",
        "Requests answered, by status.",
    );
    if let Some(map) = v["requests_by_status"].as_object() {
        for (status, n) in map {
            let _ = writeln!(
                out,
                "cases_requests_total{{status=\"{}\"}} {}",
                label(status),
                number(n)
            );
        }
    }
}

fn cases(out: &mut String, v: &Value) {
    metric(
        out,
        "cases_case_acted_total",
        "counter",
        "Requests each case of the running chain answered.",
    );
    for c in v["chain"].as_array().into_iter().flatten() {
        let name = label(c["case"].as_str().unwrap_or(""));
        let _ = writeln!(
            out,
            "cases_case_acted_total{{case=\"{name}\"}} {}",
            number(&c["acted"])
        );
    }
}

/// The host sends per-bucket counts; Prometheus wants them cumulative.
fn latency(out: &mut String, v: &Value) -> Result<(), String> {
    let name = "cases_request_duration_seconds";
    metric(
        out,
        name,
        "histogram",
        "Time from a request's head to its answer written.",
    );
    let lat = &v["latency_seconds"];
    let buckets = lat["buckets"].as_array().ok_or("no latency buckets")?;
    let mut total = 0.0;
    for b in buckets {
        total += b["count"].as_f64().unwrap_or(0.0);
        let le = match &b["le"] {
            Value::String(s) => s.clone(),
            n => number(n),
        };
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {total}");
    }
    let _ = writeln!(
        out,
        "{name}_sum {}\n{name}_count {total}",
        number(&lat["sum"])
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn buckets_become_cumulative_and_labels_are_escaped() {
        let json = r#"{"server":"cases/0.1.0","pid":7,"requests_by_status":{"200":3,"404":1},
            "chain":[{"case":"a\"b","acted":2}],"bytes_sent":10,"connections_open":1,
            "blocking_running":0,"uptime_seconds":1.5,"config_loaded_unix":100,
            "latency_seconds":{"buckets":[{"le":0.001,"count":2},{"le":"+Inf","count":2}],"sum":0.5,"count":4}}"#;
        let text = super::render(json).unwrap();
        assert!(
            text.contains("cases_requests_total{status=\"404\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("cases_case_acted_total{case=\"a\\\"b\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("cases_request_duration_seconds_bucket{le=\"0.001\"} 2\n"));
        assert!(text.contains("cases_request_duration_seconds_bucket{le=\"+Inf\"} 4\n"));
        assert!(text.contains("cases_request_duration_seconds_count 4\n"));
        assert!(text.contains("# TYPE cases_connections_open gauge\n"));
    }
}
