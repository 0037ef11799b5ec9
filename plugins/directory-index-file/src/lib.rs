//! Case `directory_index_file`: a directory with an `index.html` serves that page (the
//! chapter's `case_directory_index_file`).

use plugin_api::helpers::{index_path, needs_slash, redirect_to_folder};
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use std::ffi::CStr;

/// Serve index.html page for a directory.
pub struct DirectoryIndexFile;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {}

impl Case for DirectoryIndexFile {
    const NAME: &'static CStr = c"directory_index_file";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let _: Conf = settings.parse()?;
        Ok(DirectoryIndexFile)
    }

    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::Dir && index_path(req.fs_path()).is_file()
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        if needs_slash(req) {
            return redirect_to_folder(req, resp);
        }
        resp.send_file(&index_path(req.fs_path())).into()
    }
}

plugin_api::export_case!(DirectoryIndexFile);

#[cfg(test)]
mod tests {
    use super::DirectoryIndexFile;
    use plugin_api::testing::{TempRoot, TestCase, TestRequest};

    #[test]
    fn test_is_true_only_for_a_folder_with_index_html() {
        let root = TempRoot::new();
        root.file("with/index.html", "<p>index</p>");
        root.file("without/a.txt", "a");
        root.file("file.txt", "f");
        let case = TestCase::<DirectoryIndexFile>::create("{}").unwrap();
        let req = |path: &str| TestRequest::get(path).root(root.path());
        assert!(case.test(&req("/with/")));
        assert!(!case.test(&req("/without/")));
        assert!(!case.test(&req("/file.txt")));
        assert!(!case.test(&req("/missing/")));
    }

    #[test]
    fn a_folder_named_without_its_slash_is_redirected_to_it_keeping_the_query() {
        let root = TempRoot::new();
        root.file("with me/index.html", "<p>index</p>");
        let case = TestCase::<DirectoryIndexFile>::create("{}").unwrap();
        let answer = case.act(&TestRequest::get("/with me").query("a=1").root(root.path()));
        assert_eq!(answer.status, 301);
        assert_eq!(answer.header("location"), Some("/with%20me/?a=1"));
        assert_eq!(answer.sent_file, None);
    }

    #[test]
    fn act_sends_the_folders_index_html() {
        let root = TempRoot::new();
        let index = root.file("with/index.html", "<p>index</p>");
        let case = TestCase::<DirectoryIndexFile>::create("{}").unwrap();
        let answer = case.act(&TestRequest::get("/with/").root(root.path()));
        assert_eq!(answer.sent_file, Some(index));
    }
}
