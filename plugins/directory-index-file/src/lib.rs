//! Case `directory_index_file`: a directory holding one of the index names (`index.html`
//! by default) is answered by that file (the chapter's `case_directory_index_file`).

use plugin_api::helpers::{first_index, index_names, needs_slash, redirect_to_folder};
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use std::ffi::CStr;

/// Serve a directory's index page.
pub struct DirectoryIndexFile {
    /// File names tried in order, as nginx's `index`.
    names: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    index: Option<Vec<String>>,
}

impl Case for DirectoryIndexFile {
    const NAME: &'static CStr = c"directory_index_file";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(DirectoryIndexFile {
            names: index_names(c.index)?,
        })
    }

    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::Dir && first_index(req.fs_path(), &self.names).is_some()
    }

    /// The page is sent for the folder's own address, as lighttpd's `index-file.names` and
    /// Caddy's `file_server` do: every case and header rule sees `/docs/`, and the filters
    /// see the page's file (compress sends its sidecar).
    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        if needs_slash(req) {
            return redirect_to_folder(req, resp);
        }
        let Some(name) = first_index(req.fs_path(), &self.names) else {
            return Outcome::Declined;
        };
        resp.send_file(&req.fs_path().join(name)).into()
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
    fn act_sends_the_first_index_page_the_folder_holds() {
        let root = TempRoot::new();
        let index = root.file("with/index.html", "<p>index</p>");
        let case = TestCase::<DirectoryIndexFile>::create("{}").unwrap();
        let answer = case.act(&TestRequest::get("/with/").root(root.path()));
        assert_eq!(answer.sent_file, Some(index));
    }

    #[test]
    fn the_index_names_are_tried_in_their_order() {
        let root = TempRoot::new();
        root.file("both/index.html", "html");
        root.file("both/index.htm", "htm");
        root.file("htm/index.htm", "htm");
        root.file("html/index.html", "html");
        let case =
            TestCase::<DirectoryIndexFile>::create(r#"{"index": ["index.htm", "default.txt"]}"#)
                .unwrap();
        let req = |path: &str| TestRequest::get(path).root(root.path());
        let sent = |path: &str| case.act(&req(path)).sent_file;
        assert_eq!(sent("/both/"), Some(root.path().join("both/index.htm")));
        assert_eq!(sent("/htm/"), Some(root.path().join("htm/index.htm")));
        assert!(!case.test(&req("/html/")), "index.html is not named");
    }

    #[test]
    fn index_names_that_are_not_one_file_in_the_folder_are_refused() {
        for bad in [r#"[]"#, r#"[""]"#, r#"["a/index.html"]"#, r#"[".."]"#] {
            let err = TestCase::<DirectoryIndexFile>::create(&format!(r#"{{"index": {bad}}}"#))
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(err.contains("`index`"), "{bad}: {err}");
        }
    }
}
