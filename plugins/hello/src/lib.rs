//! Example case `hello`: the chapter's first program, a fixed page, mounted under a prefix.

use plugin_api::helpers::Prefix;
use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// Handle requests under `prefix` by returning a fixed page.
pub struct Hello {
    prefix: Prefix,
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

impl Case for Hello {
    const NAME: &'static CStr = c"hello";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(Hello {
            prefix: Prefix::new(&c.prefix)?,
        })
    }

    fn test(&self, req: &Request) -> bool {
        self.prefix.matches(&req.path())
    }

    fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
        let r = resp
            .header("Content-Type", "text/html; charset=utf-8")
            .and_then(|_| resp.write(PAGE));
        r.into()
    }
}

plugin_api::export_case!(Hello);
