//! Test fixture (ABI 1.1 filter): every answer gets `X-Stamp`; a body under `shout` is
//! upper-cased as it streams, to prove transforms reach files, streams and host pages.

use plugin_api::{Case, Filtered, Head, Host, Outcome, Request, Response, Settings, Transform};
use std::ffi::CStr;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_value")]
    value: String,
    /// Paths under this prefix have their bodies upper-cased ("" for none).
    #[serde(default)]
    shout: String,
}

fn default_value() -> String {
    "1".into()
}

struct Stamp {
    cfg: Config,
}

/// ASCII upper-casing, a stand-in for a real content coding.
struct Upper;

impl Transform for Upper {
    fn transform(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        out.extend(input.iter().map(u8::to_ascii_uppercase));
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

impl Case for Stamp {
    const NAME: &'static CStr = c"stamp";
    const ACTS: bool = false;
    const FILTERS: bool = true;
    const TRANSFORMS: bool = true;

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        Ok(Stamp {
            cfg: settings.parse()?,
        })
    }

    fn test(&self, _req: &Request) -> bool {
        false
    }

    fn act(&self, _req: &Request, _resp: &mut Response) -> Outcome {
        Outcome::Declined
    }

    fn filter(&self, req: &Request, head: &mut Head) -> Filtered {
        if head.set("X-Stamp", &self.cfg.value).is_err() {
            return Filtered::Error;
        }
        let shout = !self.cfg.shout.is_empty() && req.path().starts_with(&self.cfg.shout);
        if !shout {
            return Filtered::Pass;
        }
        let _ = head.set("X-Transformed", "upper");
        Filtered::Transform(Box::new(Upper))
    }
}

plugin_api::export_case!(Stamp);

#[cfg(test)]
mod tests {
    use super::Stamp;
    use plugin_api::testing::{FilterVerdict, TestCase, TestRequest, TestResponse};

    #[test]
    fn every_answer_is_stamped_and_shouted_bodies_are_upper_cased() {
        let case = TestCase::<Stamp>::create(r#"{"shout": "/loud/"}"#).unwrap();
        let quiet = case.filter(&TestRequest::get("/a"), &TestResponse::new(404));
        assert_eq!(quiet.header("x-stamp"), Some("1"));
        assert_eq!(quiet.verdict, FilterVerdict::Pass);
        let body = "hello, ".repeat(50);
        let loud = case.filter(
            &TestRequest::get("/loud/x"),
            &TestResponse::new(200).body(body.clone()),
        );
        assert_eq!(loud.verdict, FilterVerdict::Transform);
        assert_eq!(loud.body, Some(body.to_uppercase().into_bytes()));
    }

    #[test]
    fn framing_headers_stay_the_hosts() {
        let case = TestCase::<Stamp>::create(r#"{"value": "x"}"#).unwrap();
        let seen = case.filter(
            &TestRequest::get("/"),
            &TestResponse::new(200).header("Content-Length", "3"),
        );
        assert_eq!(seen.all("content-length"), vec!["3"]);
    }
}
