//! Example case `request_info`: the chapter's "Displaying Values" page (date and time, client
//! host and port, method, path) plus the request headers, mounted under a prefix.

use plugin_api::helpers::{html_escape, Prefix};
use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// Show what the server knows about the request.
pub struct RequestInfo {
    prefix: Prefix,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// The path this page answers, and everything below it (default `/info`).
    #[serde(default = "default_prefix")]
    prefix: String,
}

fn default_prefix() -> String {
    "/info".into()
}

fn row(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!(
        "<tr><td>{}</td><td>{}</td></tr>\n",
        html_escape(name),
        html_escape(value)
    ));
}

impl Case for RequestInfo {
    const NAME: &'static CStr = c"request_info";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(RequestInfo {
            prefix: Prefix::new(&c.prefix)?,
        })
    }

    fn test(&self, req: &Request) -> bool {
        self.prefix.matches(&req.path())
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        let mut page = String::from(
            "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Request</title></head>\n<body>\n<table>\n<tr><th>Header</th><th>Value</th></tr>\n",
        );
        row(
            &mut page,
            "Date and time",
            &httpdate::fmt_http_date(std::time::SystemTime::now()),
        );
        row(&mut page, "Client host", req.client_addr());
        row(&mut page, "Client port", &req.client_port().to_string());
        row(&mut page, "Command", req.method());
        row(&mut page, "Path", &String::from_utf8_lossy(req.target()));
        page.push_str("</table>\n<h2>Request headers</h2>\n<table>\n");
        for (n, v) in req.headers() {
            let name = String::from_utf8_lossy(n);
            // Echoing credentials would let any script on the site read HttpOnly cookies, the
            // cross-site tracing hole that TRACE has.
            let secret = ["cookie", "authorization", "proxy-authorization"]
                .iter()
                .any(|s| name.eq_ignore_ascii_case(s));
            let value = if secret {
                "(hidden)".into()
            } else {
                String::from_utf8_lossy(v)
            };
            row(&mut page, &name, &value);
        }
        page.push_str("</table>\n</body>\n</html>\n");
        resp.header("Content-Type", "text/html; charset=utf-8")
            .and_then(|_| resp.header("Cache-Control", "no-store"))
            .and_then(|_| resp.write(page.as_bytes()))
            .into()
    }
}

plugin_api::export_case!(RequestInfo);
