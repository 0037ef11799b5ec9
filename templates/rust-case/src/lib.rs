//! Case `my_case`: answers one path with a greeting, and stamps every response the server
//! sends (its own 404s included) with an `X-My-Case` header.

use plugin_api::{Case, Filtered, Head, Host, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// The case, built once from its settings; `test`, `act` and `filter` run on many threads.
pub struct MyCase {
    path: String,
    greeting: String,
}

/// `[plugins.my_case]` in server.toml, arriving as JSON. An unknown key is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// The one path answered.
    #[serde(default = "default_path")]
    path: String,
    /// The first word of the answer.
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_path() -> String {
    "/hello".into()
}

fn default_greeting() -> String {
    "Hello".into()
}

impl Case for MyCase {
    const NAME: &'static CStr = c"my_case";
    // ABI 1.1: `filter` sees every response head.
    const FILTERS: bool = true;

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        if !c.path.starts_with('/') {
            return Err(format!(
                "path = {:?}: expected a path starting with '/'",
                c.path
            ));
        }
        Ok(MyCase {
            path: c.path,
            greeting: c.greeting,
        })
    }

    fn test(&self, req: &Request) -> bool {
        req.path() == self.path
    }

    fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
        let body = format!("{} from my_case!\n", self.greeting);
        if resp
            .header("Content-Type", "text/plain; charset=utf-8")
            .is_err()
        {
            return Outcome::Error;
        }
        resp.write(body.as_bytes()).into()
    }

    fn filter(&self, _req: &Request, head: &mut Head) -> Filtered {
        let stamp = format!("saw {}", head.status());
        match head.set("X-My-Case", &stamp) {
            Ok(()) => Filtered::Pass,
            Err(_) => Filtered::Error,
        }
    }
}

plugin_api::export_case!(MyCase);

#[cfg(test)]
mod tests {
    use super::MyCase;
    use plugin_api::testing::{TestCase, TestRequest, TestResponse};
    use plugin_api::Outcome;

    #[test]
    fn answers_its_path_with_the_greeting() {
        let case = TestCase::<MyCase>::create(r#"{"greeting": "Bonjour"}"#).unwrap();
        let req = TestRequest::get("/hello");
        assert!(case.test(&req));
        let answer = case.act(&req);
        assert_eq!(answer.outcome, Outcome::Done);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.text(), "Bonjour from my_case!\n");
    }

    #[test]
    fn leaves_other_paths_to_later_cases() {
        let case = TestCase::<MyCase>::create("{}").unwrap();
        assert!(!case.test(&TestRequest::get("/hello/more")));
    }

    #[test]
    fn refuses_unknown_settings_and_relative_paths() {
        let e = TestCase::<MyCase>::create(r#"{"greting": "Hi"}"#)
            .err()
            .unwrap();
        assert!(e.contains("unknown field `greting`"), "{e}");
        let e = TestCase::<MyCase>::create(r#"{"path": "hello"}"#)
            .err()
            .unwrap();
        assert!(e.contains("expected a path starting with '/'"), "{e}");
    }

    #[test]
    fn stamps_every_response_with_its_status() {
        let case = TestCase::<MyCase>::create("{}").unwrap();
        let seen = case.filter(&TestRequest::get("/nowhere"), &TestResponse::new(404));
        assert_eq!(seen.header("x-my-case"), Some("saw 404"));
        assert_eq!(seen.status, 404);
    }
}
