//! Case `always_fail`: the catch-all at the end of the chain (the chapter's `case_always_fail`).

use plugin_api::helpers::error_status;
use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// Base case if nothing else worked.
pub struct AlwaysFail {
    status: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// The status to answer: 500 as in the chapter ("unknown object"); 403 or 404 also make sense.
    #[serde(default = "default_status")]
    status: u16,
}

fn default_status() -> u16 {
    500
}

impl Case for AlwaysFail {
    const NAME: &'static CStr = c"always_fail";
    const ALLOW: &'static CStr = c"*";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(AlwaysFail {
            status: error_status(c.status)?,
        })
    }

    fn test(&self, _req: &Request) -> bool {
        true
    }

    fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
        resp.error(self.status, "unknown object").into()
    }
}

plugin_api::export_case!(AlwaysFail);

#[cfg(test)]
mod tests {
    use super::AlwaysFail;
    use plugin_api::testing::{TestCase, TestRequest};
    use plugin_api::Kind;

    #[test]
    fn test_is_true_for_anything() {
        let case = TestCase::<AlwaysFail>::create("{}").unwrap();
        assert!(case.test(&TestRequest::get("/")));
        assert!(case.test(&TestRequest::new("DELETE", "/x").kind(Kind::Other)));
    }

    #[test]
    fn act_answers_500_unknown_object_unless_configured() {
        let case = TestCase::<AlwaysFail>::create("{}").unwrap();
        let answer = case.act(&TestRequest::get("/x").kind(Kind::Other));
        assert_eq!(answer.error, Some((500, "unknown object".to_string())));
        let case = TestCase::<AlwaysFail>::create(r#"{"status": 403}"#).unwrap();
        assert_eq!(
            case.act(&TestRequest::get("/x")).error.map(|e| e.0),
            Some(403)
        );
    }

    #[test]
    fn settings_refuse_a_non_error_status_and_unknown_keys() {
        assert!(TestCase::<AlwaysFail>::create(r#"{"status": 301}"#).is_err());
        let err = TestCase::<AlwaysFail>::create(r#"{"stauts": 500}"#).err();
        assert!(err.is_some_and(|e| e.contains("unknown field `stauts`")));
    }
}
