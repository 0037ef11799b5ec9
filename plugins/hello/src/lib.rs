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

#[cfg(test)]
mod tests {
    use super::{Hello, PAGE};
    use plugin_api::testing::{TestCase, TestRequest};

    #[test]
    fn test_matches_the_prefix_and_below_only() {
        let case = TestCase::<Hello>::create("{}").unwrap();
        assert!(case.test(&TestRequest::get("/hello")));
        assert!(case.test(&TestRequest::get("/hello/there")));
        assert!(!case.test(&TestRequest::get("/helloworld")));
        assert!(!case.test(&TestRequest::get("/")));
    }

    #[test]
    fn act_writes_the_page_as_html() {
        let case = TestCase::<Hello>::create("{}").unwrap();
        let answer = case.act(&TestRequest::get("/hello"));
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(answer.body, PAGE);
        assert!(answer.text().contains("Hello, web!"));
    }

    #[test]
    fn the_prefix_is_configurable_and_must_start_with_a_slash() {
        let case = TestCase::<Hello>::create(r#"{"prefix": "/greet/"}"#).unwrap();
        assert!(case.test(&TestRequest::get("/greet")));
        assert!(!case.test(&TestRequest::get("/hello")));
        let err = TestCase::<Hello>::create(r#"{"prefix": "greet"}"#).err();
        assert_eq!(
            err.as_deref(),
            Some("prefix = \"greet\" must start with '/'")
        );
    }
}
