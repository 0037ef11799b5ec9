//! Example case `hello`: the chapter's first program, a fixed page, mounted under a prefix.

use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// Handle requests under `prefix` by returning a fixed page.
pub struct Hello {
    prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// The path this page answers, and everything below it (default `/hello`).
    #[serde(default = "default_prefix")]
    prefix: String,
}

fn default_prefix() -> String {
    "/hello".into()
}

const PAGE: &[u8] = b"<html>\n<body>\n<p>Hello, web!</p>\n</body>\n</html>\n";

/// Does `path` equal `prefix` or lie below it?
fn under(path: &str, prefix: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    path == p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
}

impl Case for Hello {
    const NAME: &'static CStr = c"hello";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        if !c.prefix.starts_with('/') {
            return Err(format!("prefix = {:?} must start with '/'", c.prefix));
        }
        Ok(Hello { prefix: c.prefix })
    }

    fn test(&self, req: &Request) -> bool {
        under(&req.path(), &self.prefix)
    }

    fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
        let r = resp
            .header("Content-Type", "text/html; charset=utf-8")
            .and_then(|_| resp.write(PAGE));
        r.into()
    }
}

plugin_api::export_case!(Hello);

#[cfg(test)]
mod tests {
    #[test]
    fn prefix_matches_itself_and_below_only() {
        assert!(super::under("/hello", "/hello"));
        assert!(super::under("/hello/x", "/hello/"));
        assert!(!super::under("/helloworld", "/hello"));
    }
}
