//! Case `existing_file`: the path is a regular file, so send it (the chapter's
//! `case_existing_file`); the host adds type, validators, ranges and sendfile. A pipe,
//! socket or device there is refused (403).

use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use std::ffi::CStr;

/// File exists.
pub struct ExistingFile;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {}

impl Case for ExistingFile {
    const NAME: &'static CStr = c"existing_file";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let _: Conf = settings.parse()?;
        Ok(ExistingFile)
    }

    /// A regular file, or something else that is neither a folder nor missing (a pipe, a
    /// socket, a device), which is refused here rather than left to `always_fail`'s 500.
    fn test(&self, req: &Request) -> bool {
        matches!(req.kind(), Kind::File | Kind::Other)
    }

    /// Send the file; 403 for what is not one, as lighttpd answers (nginx says 404 for a
    /// pipe and 500 for a socket).
    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        if req.kind() == Kind::Other {
            return resp
                .error(403, "this is not a regular file (a pipe, socket or device)")
                .into();
        }
        resp.send_file(req.fs_path()).into()
    }
}

plugin_api::export_case!(ExistingFile);

#[cfg(test)]
mod tests {
    use super::ExistingFile;
    use plugin_api::testing::{TempRoot, TestCase, TestRequest};

    #[test]
    fn test_is_true_only_for_a_regular_file() {
        let root = TempRoot::new();
        root.file("page.html", "<p>hi</p>");
        root.dir("folder");
        let case = TestCase::<ExistingFile>::create("{}").unwrap();
        assert!(case.test(&TestRequest::get("/page.html").root(root.path())));
        assert!(!case.test(&TestRequest::get("/folder/").root(root.path())));
        assert!(!case.test(&TestRequest::get("/missing.html").root(root.path())));
    }

    #[test]
    fn act_sends_the_file_at_fs_path() {
        let root = TempRoot::new();
        let file = root.file("page.html", "<p>hi</p>");
        let case = TestCase::<ExistingFile>::create("{}").unwrap();
        let answer = case.act(&TestRequest::get("/page.html").root(root.path()));
        assert_eq!(answer.sent_file, Some(file));
        assert!(answer.body.is_empty() && answer.error.is_none());
    }

    #[test]
    fn settings_take_no_keys() {
        assert!(TestCase::<ExistingFile>::create(r#"{"index": "x"}"#).is_err());
    }
}
