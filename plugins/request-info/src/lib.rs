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
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Request</title></head>\n<body>\n<main>\n<h1>Request</h1>\n<table>\n<tr><th scope=\"col\">Header</th><th scope=\"col\">Value</th></tr>\n",
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
        page.push_str("</table>\n<h2>Request headers</h2>\n<table>\n<tr><th scope=\"col\">Name</th><th scope=\"col\">Value</th></tr>\n");
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
        page.push_str("</table>\n</main>\n</body>\n</html>\n");
        resp.header("Content-Type", "text/html; charset=utf-8")
            .and_then(|_| resp.header("Cache-Control", "no-store"))
            .and_then(|_| resp.write(page.as_bytes()))
            .into()
    }
}

plugin_api::export_case!(RequestInfo);

#[cfg(test)]
mod tests {
    use super::RequestInfo;
    use plugin_api::testing::{TestCase, TestRequest};

    fn info() -> TestCase<RequestInfo> {
        TestCase::create("{}").unwrap()
    }

    #[test]
    fn test_matches_the_prefix_and_below_only() {
        let case = info();
        assert!(case.test(&TestRequest::get("/info")));
        assert!(case.test(&TestRequest::get("/info/x")));
        assert!(!case.test(&TestRequest::get("/information")));
        let moved = TestCase::<RequestInfo>::create(r#"{"prefix": "/about"}"#).unwrap();
        assert!(moved.test(&TestRequest::get("/about")));
        assert!(TestCase::<RequestInfo>::create(r#"{"prefix": "about"}"#).is_err());
    }

    #[test]
    fn act_shows_the_client_method_path_and_headers_uncached() {
        let req = TestRequest::new("POST", "/info")
            .query("a=1")
            .client("192.0.2.7", 50123)
            .header("User-Agent", "unit <test>");
        let answer = info().act(&req);
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        let page = answer.text();
        for row in [
            "<td>Client host</td><td>192.0.2.7</td>",
            "<td>Client port</td><td>50123</td>",
            "<td>Command</td><td>POST</td>",
            "<td>Path</td><td>/info?a=1</td>",
            "<td>User-Agent</td><td>unit &lt;test&gt;</td>",
        ] {
            assert!(page.contains(row), "{row} missing from {page}");
        }
    }

    #[test]
    fn act_hides_cookie_and_authorization_values() {
        let req = TestRequest::get("/info")
            .header("Cookie", "session=s3cret")
            .header("Authorization", "Basic dXNlcjpwYXNz")
            .header("proxy-authorization", "Bearer t0ken");
        let page = info().act(&req).text();
        for secret in ["s3cret", "dXNlcjpwYXNz", "t0ken"] {
            assert!(!page.contains(secret), "{secret} shown in {page}");
        }
        assert!(page.contains("<td>Cookie</td><td>(hidden)</td>"), "{page}");
        assert!(page.contains("<td>Authorization</td><td>(hidden)</td>"));
    }
}
