//! The case through `plugin_api::testing`: what its test matches and what its act answers.

use super::DirectoryNoIndexFile;
use plugin_api::testing::{TempRoot, TestCase, TestRequest};

fn listing() -> TestCase<DirectoryNoIndexFile> {
    TestCase::create("{}").unwrap()
}

/// A folder holding one of the `index` names (`index.html` by default) is left to
/// directory_index_file.
#[test]
fn test_is_true_only_for_a_folder_without_an_index_page() {
    let root = TempRoot::new();
    root.file("plain/a.txt", "a");
    root.file("indexed/index.html", "i");
    root.file("htm/index.htm", "i");
    let case = listing();
    let req = |path: &str| TestRequest::get(path).root(root.path());
    assert!(case.test(&req("/plain/")));
    assert!(!case.test(&req("/indexed/")));
    assert!(case.test(&req("/htm/")));
    let htm = TestCase::<DirectoryNoIndexFile>::create(r#"{"index": ["index.htm"]}"#).unwrap();
    assert!(!htm.test(&req("/htm/")));
    assert!(htm.test(&req("/indexed/")));
    assert!(!case.test(&req("/plain/a.txt")));
    assert!(!case.test(&req("/missing/")));
}

#[test]
fn act_lists_visible_entries_folders_first_with_names_escaped() {
    let root = TempRoot::new();
    root.file("d/b <x>.txt", "bb");
    root.file("d/.hidden", "h");
    root.dir("d/sub");
    let answer = listing().act(&TestRequest::get("/d/").root(root.path()));
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = answer.text();
    assert!(page.contains("<title>Index of /d/</title>"), "{page}");
    assert!(page.contains("href=\"b%20%3Cx%3E.txt\">b &lt;x&gt;.txt</a>"));
    assert!(!page.contains(".hidden"));
    let (sub, b) = (page.find("sub/").unwrap(), page.find("b &lt;x").unwrap());
    assert!(sub < b, "folders come first: {page}");
}

#[test]
fn a_folder_deleted_after_the_lookup_is_404_not_500() {
    let root = TempRoot::new();
    root.file("d/a.txt", "a");
    let req = TestRequest::get("/d/").root(root.path());
    std::fs::remove_dir_all(root.path().join("d")).unwrap();
    let answer = listing().act(&req);
    assert_eq!(answer.error.map(|e| e.0), Some(404));
}

#[test]
fn settings_refuse_a_negative_cache_and_unknown_keys() {
    let err = TestCase::<DirectoryNoIndexFile>::create(r#"{"cache": -1}"#).err();
    assert_eq!(
        err.as_deref(),
        Some("cache = -1 must be zero or more seconds")
    );
    assert!(TestCase::<DirectoryNoIndexFile>::create(r#"{"ttl": 1}"#).is_err());
    assert!(TestCase::<DirectoryNoIndexFile>::create(r#"{"cache": 0}"#).is_ok());
}
