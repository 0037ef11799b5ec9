//! Case `hidden_files`: a path through a name that starts with `.` answers 404, as if absent
//! (`.env`, `.git/`, `.htpasswd`), so what the listing hides cannot be fetched either.

use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// The path names a hidden file or folder, or something inside one.
pub struct HiddenFiles {
    /// Paths still served: a folder (ending in `/`) and all below it, or one exact path.
    allow: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// Hidden paths served anyway (default `["/.well-known/"]`, RFC 8615).
    #[serde(default = "default_allow")]
    allow: Vec<String>,
}

fn default_allow() -> Vec<String> {
    vec!["/.well-known/".into()]
}

/// Refuse an `allow` entry that could never match a decoded, normalised path.
fn check_allow(entry: &str) -> Result<(), String> {
    let expected = "expected a decoded path starting with '/', like \"/.well-known/\" (a folder \
                    and everything in it) or \"/.nojekyll\" (one file)";
    let inner = entry.strip_prefix('/').unwrap_or("");
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if inner.is_empty() || !entry.starts_with('/') {
        return Err(format!("allow = {entry:?}: {expected}"));
    }
    if entry.contains('%') {
        return Err(format!(
            "allow = {entry:?}: paths are compared decoded; write '.' and not '%2e' ({expected})"
        ));
    }
    if inner
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "allow = {entry:?}: no empty, '.' or '..' segments ({expected})"
        ));
    }
    if !inner.split('/').any(|s| s.starts_with('.')) {
        return Err(format!(
            "allow = {entry:?}: nothing in it is hidden, so allowing it changes nothing ({expected})"
        ));
    }
    Ok(())
}

/// How much of `path` an allowed entry covers: a folder entry covers its own segments, an
/// exact entry the whole path; the longest match wins.
fn allowed_len(path: &[u8], allow: &[Vec<u8>]) -> usize {
    allow
        .iter()
        .filter_map(|a| match a.strip_suffix(b"/") {
            Some(folder) if path == folder => Some(path.len()),
            Some(_) => path.starts_with(a).then_some(a.len()),
            None => (path == a.as_slice()).then_some(path.len()),
        })
        .max()
        .unwrap_or(0)
}

/// Does a segment of `path` (decoded and normalised by the host, so `%2e` is already `.` and
/// `//` gone) past what `allow` covers start with a dot?
fn hidden(path: &[u8], allow: &[Vec<u8>]) -> bool {
    path[allowed_len(path, allow)..]
        .split(|&b| b == b'/')
        .any(|seg| seg.first() == Some(&b'.'))
}

impl Case for HiddenFiles {
    const NAME: &'static CStr = c"hidden_files";
    // Every method: a POST or PUT to a dotfile must not reach a later case either.
    const ALLOW: &'static CStr = c"*";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        for entry in &c.allow {
            check_allow(entry)?;
        }
        Ok(HiddenFiles {
            allow: c.allow.into_iter().map(String::into_bytes).collect(),
        })
    }

    fn test(&self, req: &Request) -> bool {
        hidden(req.path_bytes(), &self.allow)
    }

    fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
        // The same status and words as no_file: whether the file exists is not told.
        resp.error(404, "not found").into()
    }
}

plugin_api::export_case!(HiddenFiles);

#[cfg(test)]
mod unit {
    use super::*;

    fn allow(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_dot_segment_anywhere_is_hidden() {
        let none = allow(&[]);
        for p in ["/.env", "/.git/", "/.git/config", "/a/.secret", "/a/.b/c"] {
            assert!(hidden(p.as_bytes(), &none), "{p}");
        }
        for p in ["/", "/a.txt", "/a/b.c/d", "/env.", "/a/b"] {
            assert!(!hidden(p.as_bytes(), &none), "{p}");
        }
    }

    #[test]
    fn an_allowed_folder_covers_only_its_own_segments() {
        let a = allow(&["/.well-known/", "/.nojekyll"]);
        assert!(!hidden(b"/.well-known/x", &a));
        assert!(!hidden(b"/.well-known/", &a));
        assert!(!hidden(b"/.well-known", &a));
        assert!(!hidden(b"/.nojekyll", &a));
        assert!(hidden(b"/.well-known/.secret", &a));
        assert!(hidden(b"/.well-knownx/y", &a));
        assert!(hidden(b"/.nojekyll/x", &a));
        assert!(hidden(b"/a/.well-known/x", &a));
    }

    #[test]
    fn bad_allow_entries_are_refused_with_what_is_expected() {
        for bad in [
            "",
            "/",
            ".well-known/",
            "//.x/",
            "/%2ex/",
            "/a/../.x",
            "/public/",
        ] {
            let e = check_allow(bad).unwrap_err();
            assert!(e.contains("expected a decoded path"), "{bad}: {e}");
        }
        assert!(check_allow("/.well-known/").is_ok());
        assert!(check_allow("/a/.b").is_ok());
    }
}
