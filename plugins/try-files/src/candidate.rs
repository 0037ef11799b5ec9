//! One `files` entry: a path pattern (`$path.html`, `/index.html`, `$path/`) checked at
//! start-up, then filled in with the request path and looked for beneath the root.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A checked entry of `files`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Candidate {
    /// A path pattern; ending in `/` it names a folder, else a regular file.
    Pattern(Vec<Part>),
    /// `=404` (nginx's syntax): answer this error status.
    Status(u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// `$path`: the decoded, normalised request path.
    Path,
}

const EXPECTED: &str = "expected a path starting with '/' or \"$path\" (like \"$path.html\", \"$path/index.html\", \"/index.html\"), or a last \"=404\"";

impl Candidate {
    /// Check one entry; `last` says whether it ends the list (`=NNN` must).
    pub fn parse(entry: &str, last: bool) -> Result<Candidate, String> {
        if let Some(code) = entry.strip_prefix('=') {
            return status(entry, code, last);
        }
        let parts = parts(entry);
        let starts_well = entry.starts_with('/') || parts.first() == Some(&Part::Path);
        if !starts_well {
            return Err(format!("{entry:?}: {EXPECTED}"));
        }
        if has_other_chars(&parts) {
            return Err(format!("{entry:?}: only $path may be filled in, and the path is written decoded (no '%', '?', '#' or '\\'); {EXPECTED}"));
        }
        let sample = fill(&parts, b"/x");
        let dots = sample
            .split(|&b| b == b'/')
            .any(|s| s == b"." || s == b"..");
        if dots {
            return Err(format!(
                "{entry:?}: '.' and '..' segments could lead outside the root; {EXPECTED}"
            ));
        }
        Ok(Candidate::Pattern(parts))
    }
}

/// `=NNN`: an error status, last in the list.
fn status(entry: &str, code: &str, last: bool) -> Result<Candidate, String> {
    let code: u16 = code
        .parse()
        .map_err(|_| format!("{entry:?}: expected =NNN with an error status, like \"=404\""))?;
    let code = plugin_api::helpers::error_status(code).map_err(|e| format!("{entry:?}: {e}"))?;
    if !last {
        return Err(format!(
            "{entry:?} must be the last entry: nothing after it could be tried"
        ));
    }
    Ok(Candidate::Status(code))
}

/// `entry` split at each `$path`.
fn parts(entry: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    for (i, text) in entry.split("$path").enumerate() {
        if i > 0 {
            parts.push(Part::Path);
        }
        if !text.is_empty() {
            parts.push(Part::Text(text.to_string()));
        }
    }
    parts
}

/// Does the literal text hold a `$` that is not `$path`, or a byte a decoded path never
/// has here?
fn has_other_chars(parts: &[Part]) -> bool {
    parts.iter().any(|p| match p {
        Part::Text(t) => t.contains(['$', '%', '?', '#', '\\', '\0']),
        Part::Path => false,
    })
}

/// The pattern with `$path` filled in, runs of `/` made one (`$path/index.html` on `/docs/`
/// is `/docs/index.html`).
pub fn fill(parts: &[Part], path: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(path.len() + 16);
    for p in parts {
        let bytes = match p {
            Part::Text(t) => t.as_bytes(),
            Part::Path => path,
        };
        for &b in bytes {
            if !(b == b'/' && out.last() == Some(&b'/')) {
                out.push(b);
            }
        }
    }
    out
}

/// Does `candidate` (a filled-in path) name what it asks for beneath `root`: a regular file,
/// or a folder when it ends in `/`? Symbolic links count only if they stay inside the root;
/// a name starting with `.` that the request did not already have is never made up.
pub fn exists(root: &Path, candidate: &[u8], request: &[u8]) -> bool {
    if invents_hidden_name(candidate, request) {
        return false;
    }
    let rel = OsStr::from_bytes(candidate.strip_prefix(b"/").unwrap_or(candidate));
    let Ok(real) = root.join(rel).canonicalize() else {
        return false;
    };
    let want_dir = candidate.ends_with(b"/");
    real.starts_with(root)
        && if want_dir {
            real.is_dir()
        } else {
            real.is_file()
        }
}

/// A segment of `candidate` that starts with `.` and is not one of the request's own
/// (`$path.html` on `/` would be `/.html`).
fn invents_hidden_name(candidate: &[u8], request: &[u8]) -> bool {
    let theirs: Vec<&[u8]> = request.split(|&b| b == b'/').collect();
    candidate
        .split(|&b| b == b'/')
        .any(|s| s.first() == Some(&b'.') && !theirs.contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::testing::TempRoot;

    fn pattern(entry: &str) -> Vec<Part> {
        match Candidate::parse(entry, false).unwrap() {
            Candidate::Pattern(p) => p,
            Candidate::Status(_) => panic!("{entry} is a status"),
        }
    }

    #[test]
    fn path_patterns_fill_in_the_request_path_with_single_slashes() {
        assert_eq!(fill(&pattern("$path.html"), b"/about"), b"/about.html");
        assert_eq!(
            fill(&pattern("$path/index.html"), b"/docs/"),
            b"/docs/index.html"
        );
        assert_eq!(fill(&pattern("/index.html"), b"/x/y"), b"/index.html");
        assert_eq!(fill(&pattern("/v/$path"), b"/a b"), b"/v/a b");
    }

    #[test]
    fn a_status_must_be_an_error_and_last() {
        assert_eq!(Candidate::parse("=404", true), Ok(Candidate::Status(404)));
        assert!(Candidate::parse("=404", false)
            .unwrap_err()
            .contains("must be the last entry"));
        assert!(Candidate::parse("=200", true)
            .unwrap_err()
            .contains("not an error status"));
        assert!(Candidate::parse("=x", true).is_err());
    }

    #[test]
    fn patterns_that_could_escape_the_root_or_never_match_are_refused() {
        for bad in [
            "$path/../../etc/passwd",
            "/../secret",
            "/a/./b",
            "index.html",
            "$uri.html",
            "/a%20b",
            "$path?x=1",
            "",
        ] {
            assert!(Candidate::parse(bad, false).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn only_regular_files_and_asked_for_folders_inside_the_root_exist() {
        let outside = TempRoot::new();
        outside.file("secret.html", "s");
        let root = TempRoot::new();
        root.file("about.html", "a");
        root.dir("docs");
        std::os::unix::fs::symlink(
            outside.path().join("secret.html"),
            root.path().join("out.html"),
        )
        .unwrap();
        let r = root.path();
        assert!(exists(r, b"/about.html", b"/about"));
        assert!(!exists(r, b"/docs", b"/docs"));
        assert!(exists(r, b"/docs/", b"/docs"));
        assert!(!exists(r, b"/missing.html", b"/missing"));
        assert!(!exists(r, b"/out.html", b"/out"));
    }

    #[test]
    fn a_hidden_name_is_never_made_up() {
        let root = TempRoot::new();
        root.file(".html", "dot");
        root.file(".well-known/x", "x");
        assert!(!exists(root.path(), b"/.html", b"/"));
        assert!(exists(root.path(), b"/.well-known/x", b"/.well-known/x"));
    }
}
