//! Case `status`: the server's counters (requests by status and by case, bytes sent, a
//! latency histogram, open connections, running scripts, uptime, the chain, when the
//! configuration was loaded) as a JSON page and as Prometheus text metrics, for the
//! addresses allowed (loopback by default). The host counts; this case only renders.

mod prometheus;

use ipnet::IpNet;
use plugin_api::{Case, Host, Level, Outcome, Request, Response, Settings};
use std::ffi::CStr;
use std::net::IpAddr;

/// Settings of `[plugins.status]`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// Path of the JSON page ("" for none).
    #[serde(default = "default_json")]
    json: String,
    /// Path of the Prometheus text metrics ("" for none).
    #[serde(default = "default_metrics")]
    metrics: String,
    /// Client networks allowed to see them; others get 403.
    #[serde(default = "default_allow")]
    allow: Vec<String>,
}

fn default_json() -> String {
    "/status".into()
}

fn default_metrics() -> String {
    "/metrics".into()
}

fn default_allow() -> Vec<String> {
    vec!["127.0.0.0/8".into(), "::1/128".into()]
}

/// Show the server's counters.
pub struct Status {
    host: Host,
    json: String,
    metrics: String,
    allow: Vec<IpNet>,
}

/// A page path: empty (off) or starting with `/`.
fn page_path(key: &str, value: String) -> Result<String, String> {
    if value.is_empty() || value.starts_with('/') {
        Ok(value)
    } else {
        Err(format!(
            "{key} = {value:?} must be a path starting with / (or \"\" for none)"
        ))
    }
}

/// An address or a network (`10.0.0.0/8`, `::1`): a bare address is a one-address network.
/// IPv4 written as IPv6 (`::ffff:127.0.0.1`), which no client would ever match, is refused,
/// as access refuses it; bits past a network's length are dropped, as before (a warning
/// says so, as nginx warns).
fn network(s: &str) -> Result<IpNet, String> {
    let net = s
        .parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("allow: {s:?} is not an address or a network like 10.0.0.0/8"))?;
    match net {
        IpNet::V6(v6) if v6.network().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 => {
            Err(format!("allow: {s:?} is IPv4 written as IPv6: write the IPv4 address or network (IPv4 clients are always matched as IPv4)"))
        }
        net => Ok(net),
    }
}

impl Case for Status {
    const NAME: &'static CStr = c"status";

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        let allow: Vec<IpNet> = c
            .allow
            .iter()
            .map(|s| network(s))
            .collect::<Result<_, _>>()?;
        for (written, net) in c.allow.iter().zip(&allow) {
            if net != &net.trunc() {
                let fix = net.trunc();
                let msg = format!(
                    "allow: {written:?} has bits set past its length; taken as {fix} (write that)"
                );
                host.log(Level::Warn, &msg);
            }
        }
        let allow = allow.iter().map(IpNet::trunc).collect();
        Ok(Status {
            json: page_path("json", c.json)?,
            metrics: page_path("metrics", c.metrics)?,
            allow,
            host,
        })
    }

    fn test(&self, req: &Request) -> bool {
        let p = req.path();
        (!self.json.is_empty() && p == self.json) || (!self.metrics.is_empty() && p == self.metrics)
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        if !self.allowed(req) {
            return resp
                .error(403, "the status page is not for this address")
                .into();
        }
        let Some(stats) = self.host.stats() else {
            return resp
                .error(501, "this server does not share its counters")
                .into();
        };
        let (body, content_type) = if req.path() == self.json {
            (stats, "application/json")
        } else {
            match prometheus::render(&stats) {
                Ok(text) => (text, "text/plain; version=0.0.4; charset=utf-8"),
                Err(_) => return Outcome::Error,
            }
        };
        resp.header("Content-Type", content_type)
            .and_then(|_| resp.header("Cache-Control", "no-store"))
            .and_then(|_| resp.write(body.as_bytes()))
            .into()
    }
}

impl Status {
    fn allowed(&self, req: &Request) -> bool {
        plugin_api::helpers::client_ip(req)
            .is_some_and(|ip| self.allow.iter().any(|n| n.contains(&ip)))
    }
}

plugin_api::export_case!(Status);

#[cfg(test)]
mod tests {
    use super::Status;
    use plugin_api::testing::{TestCase, TestRequest};

    #[test]
    fn only_the_configured_paths_are_taken() {
        let case = TestCase::<Status>::create(r#"{"json": "/s", "metrics": ""}"#).unwrap();
        assert!(case.test(&TestRequest::get("/s")));
        assert!(!case.test(&TestRequest::get("/metrics")));
        assert!(!case.test(&TestRequest::get("/s/x")));
    }

    #[test]
    fn other_addresses_are_refused_with_403() {
        let case = TestCase::<Status>::create("{}").unwrap();
        let r = case.act(&TestRequest::get("/status").client("192.0.2.7", 5000));
        assert_eq!(r.error.map(|e| e.0), Some(403));
    }

    #[test]
    fn bad_settings_stop_start_up() {
        let bad = |json: &str| TestCase::<Status>::create(json).err().unwrap_or_default();
        assert!(bad(r#"{"allow": ["nope"]}"#).contains("is not an address"));
        // Entries that would never match, refused as access refuses them.
        assert!(bad(r#"{"allow": ["::ffff:127.0.0.1"]}"#).contains("is IPv4 written as IPv6"));
        // Bits past the length are dropped with a warning, as before (nginx warns too).
        assert!(TestCase::<Status>::create(r#"{"allow": ["127.0.0.5/8"]}"#).is_ok());
        assert!(bad(r#"{"json": "status"}"#).contains("must be a path"));
        assert!(bad(r#"{"jsn": "/x"}"#).contains("unknown field"));
    }
}
