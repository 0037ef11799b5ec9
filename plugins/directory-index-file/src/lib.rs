//! Case `directory_index_file`: a directory holding one of the index names (`index.html`
//! by default) is answered by that file (the chapter's `case_directory_index_file`).

use plugin_api::helpers::{encode_path, needs_slash, redirect_to_folder};
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use std::ffi::CStr;
use std::path::PathBuf;

/// Serve a directory's index page.
pub struct DirectoryIndexFile {
    /// File names tried in order, as nginx's `index`.
    names: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    #[serde(default = "index_html")]
    index: Vec<String>,
}

fn index_html() -> Vec<String> {
    vec!["index.html".into()]
}

/// A name is one file in the folder itself: no `/`, not `.` or `..`, no NUL.
fn check_names(names: Vec<String>) -> Result<Vec<String>, String> {
    if names.is_empty() {
        return Err("`index` is empty: name at least one file, such as \"index.html\"".into());
    }
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() || n == "." || n == ".." || n.contains(['/', '\0']) {
            return Err(format!(
                "`index` entry {} ({n:?}) is not a file name: give a name in the folder itself, such as \"index.htm\", without '/'",
                i + 1
            ));
        }
    }
    Ok(names)
}

impl DirectoryIndexFile {
    /// The first index name that is a file in the request's folder.
    fn index_of(&self, req: &Request) -> Option<&str> {
        let dir = req.fs_path();
        self.names
            .iter()
            .find(|n| dir.join(n).is_file())
            .map(String::as_str)
    }
}

impl Case for DirectoryIndexFile {
    const NAME: &'static CStr = c"directory_index_file";
    const REWRITES: bool = true;

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(DirectoryIndexFile {
            names: check_names(c.index)?,
        })
    }

    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::Dir && self.index_of(req).is_some()
    }

    /// The request goes on as the index file's own path (nginx's `index` is an internal
    /// redirect too), so every case and filter sees the file: compress its sidecars, a
    /// script folder its script. A host without rewrites gets the file sent from here.
    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        if needs_slash(req) {
            return redirect_to_folder(req, resp);
        }
        let Some(name) = self.index_of(req) else {
            return Outcome::Declined;
        };
        let mut path = req.path_bytes().to_vec();
        path.extend_from_slice(name.as_bytes());
        let mut target = encode_path(&path);
        if !req.query().is_empty() {
            target.push('?');
            target.push_str(&String::from_utf8_lossy(req.query()));
        }
        match resp.rewrite(&target) {
            Ok(()) => Outcome::Continue,
            Err(_) => resp
                .send_file(&PathBuf::from(req.fs_path()).join(name))
                .into(),
        }
    }
}

plugin_api::export_case!(DirectoryIndexFile);

#[cfg(test)]
mod tests {
    use super::DirectoryIndexFile;
    use plugin_api::testing::{TempRoot, TestCase, TestRequest};
    use plugin_api::Outcome;

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
    fn act_hands_the_request_on_to_the_index_files_own_path_with_the_query() {
        let root = TempRoot::new();
        root.file("with me/index.html", "<p>index</p>");
        let case = TestCase::<DirectoryIndexFile>::create("{}").unwrap();
        let answer = case.act(&TestRequest::get("/with me/").query("a=1").root(root.path()));
        assert_eq!(answer.outcome, Outcome::Continue);
        assert_eq!(answer.rewrite.as_deref(), Some("/with%20me/index.html?a=1"));
        assert_eq!(answer.sent_file, None);
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
        assert_eq!(
            case.act(&req("/both/")).rewrite.as_deref(),
            Some("/both/index.htm")
        );
        assert_eq!(
            case.act(&req("/htm/")).rewrite.as_deref(),
            Some("/htm/index.htm")
        );
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
