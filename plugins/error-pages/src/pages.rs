//! The `pages` setting: which file answers which error status or class, each checked at
//! start-up to be a regular file inside the document root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A page file, as configured and as it really is.
#[derive(Clone, Debug)]
pub struct Page {
    /// The file's real (canonical) path, handed to the host.
    pub real: PathBuf,
    /// Root + the configured path, as a request would name it.
    pub named: PathBuf,
}

/// Pages by exact status (`404`) and by class (`5` for `5xx`); an exact status wins.
#[derive(Debug, Default)]
pub struct Pages {
    exact: BTreeMap<u16, Page>,
    class: BTreeMap<u16, Page>,
}

impl Pages {
    /// Check every entry of `pages` against `root`.
    pub fn new(root: &Path, pages: BTreeMap<String, String>) -> Result<Pages, String> {
        let mut out = Pages::default();
        for (key, file) in pages {
            let page = page(root, &file).map_err(|e| format!("pages.{key:?} = {file:?}: {e}"))?;
            match key_of(&key)? {
                Key::Exact(status) => out.exact.insert(status, page),
                Key::Class(hundreds) => out.class.insert(hundreds, page),
            };
        }
        Ok(out)
    }

    /// The page for `status`, if any.
    pub fn find(&self, status: u16) -> Option<&Page> {
        self.exact
            .get(&status)
            .or_else(|| self.class.get(&(status / 100)))
    }

    /// Every configured page.
    pub fn all(&self) -> impl Iterator<Item = &Page> {
        self.exact.values().chain(self.class.values())
    }
}

enum Key {
    Exact(u16),
    Class(u16),
}

/// `404` or `4xx`, for error statuses (400-599) only.
fn key_of(key: &str) -> Result<Key, String> {
    let expected = format!("pages key {key:?}: expected an error status like \"404\" or a class like \"5xx\" (400-599)");
    let lower = key.to_ascii_lowercase();
    if let Some(d) = lower.strip_suffix("xx") {
        return match d {
            "4" => Ok(Key::Class(4)),
            "5" => Ok(Key::Class(5)),
            _ => Err(expected),
        };
    }
    match key.parse::<u16>() {
        Ok(status) if (400..=599).contains(&status) => Ok(Key::Exact(status)),
        _ => Err(expected),
    }
}

/// A page path, relative to the root or absolute: it must be a regular file whose real
/// path is inside the root.
fn page(root: &Path, file: &str) -> Result<Page, String> {
    let named = root.join(file);
    let real = named.canonicalize().map_err(|e| {
        format!(
            "{} cannot be used: {e}; expected a file inside the document root {}",
            named.display(),
            root.display()
        )
    })?;
    if !real.starts_with(root) {
        return Err(format!(
            "{} is outside the document root {}; the host only sends files inside it",
            real.display(),
            root.display()
        ));
    }
    if !real.is_file() {
        return Err(format!("{} is not a regular file", real.display()));
    }
    Ok(Page { real, named })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::testing::TempRoot;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_exact_status_wins_over_its_class() {
        let root = TempRoot::new();
        root.file("e/404.html", "404");
        root.file("e/4xx.html", "4xx");
        let abs = root.path().join("e/4xx.html");
        let pages = map(&[("404", "e/404.html"), ("4XX", abs.to_str().unwrap())]);
        let pages = Pages::new(root.path(), pages).unwrap();
        assert!(pages.find(404).unwrap().real.ends_with("e/404.html"));
        assert!(pages.find(403).unwrap().real.ends_with("e/4xx.html"));
        assert!(pages.find(500).is_none());
    }

    #[test]
    fn keys_must_be_error_statuses_or_classes() {
        let root = TempRoot::new();
        root.file("p.html", "p");
        for key in ["200", "3xx", "600", "40x", "internal"] {
            let e = Pages::new(root.path(), map(&[(key, "p.html")])).unwrap_err();
            assert!(e.contains("expected an error status"), "{key}: {e}");
        }
    }

    #[test]
    fn a_page_must_exist_be_a_file_and_stay_inside_the_root() {
        let outside = TempRoot::new();
        let secret = outside.file("secret.html", "s");
        let root = TempRoot::new();
        root.dir("dir");
        std::os::unix::fs::symlink(&secret, root.path().join("link.html")).unwrap();
        let cases = [
            ("missing.html", "cannot be used"),
            ("dir", "not a regular file"),
            ("../x.html", "cannot be used"),
            ("link.html", "outside the document root"),
            (secret.to_str().unwrap(), "outside the document root"),
        ];
        for (file, words) in cases {
            let e = Pages::new(root.path(), map(&[("404", file)])).unwrap_err();
            assert!(
                e.starts_with("pages.\"404\" = ") && e.contains(words),
                "{file}: {e}"
            );
        }
    }
}
