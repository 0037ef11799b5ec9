//! Case `no_file`: the path does not exist, so answer 404 (the chapter's `case_no_file`).

use plugin_api::helpers::error_status;
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// File or directory does not exist.
pub struct NoFile {
    status: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// The status to answer (404 unless configured, e.g. 410).
    #[serde(default = "default_status")]
    status: u16,
}

fn default_status() -> u16 {
    404
}

impl Case for NoFile {
    const NAME: &'static CStr = c"no_file";
    const ALLOW: &'static CStr = c"*";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(NoFile {
            status: error_status(c.status)?,
        })
    }

    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::Missing
    }

    fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
        resp.error(self.status, "not found").into()
    }
}

plugin_api::export_case!(NoFile);

#[cfg(test)]
mod tests {
    use super::NoFile;
    use plugin_api::testing::{TempRoot, TestCase, TestRequest};

    fn case(settings: &str) -> TestCase<NoFile> {
        TestCase::create(settings).unwrap()
    }

    #[test]
    fn test_is_true_only_for_a_missing_path() {
        let root = TempRoot::new();
        root.file("here.txt", "x");
        root.dir("folder");
        let case = case("{}");
        assert!(case.test(&TestRequest::get("/gone.txt").root(root.path())));
        assert!(!case.test(&TestRequest::get("/here.txt").root(root.path())));
        assert!(!case.test(&TestRequest::get("/folder/").root(root.path())));
    }

    #[test]
    fn act_sends_the_404_error_page() {
        let answer = case("{}").act(&TestRequest::get("/gone.txt"));
        assert_eq!(answer.error, Some((404, "not found".to_string())));
        assert!(answer.body.is_empty());
    }

    #[test]
    fn the_status_is_configurable_within_400_to_599() {
        let answer = case(r#"{"status": 410}"#).act(&TestRequest::get("/gone"));
        assert_eq!(answer.error.map(|e| e.0), Some(410));
        let err = TestCase::<NoFile>::create(r#"{"status": 200}"#).err();
        assert_eq!(
            err.as_deref(),
            Some("status = 200 is not an error status (400-599)")
        );
        assert!(TestCase::<NoFile>::create(r#"{"code": 404}"#).is_err());
    }
}
