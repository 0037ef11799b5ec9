//! What a rule matches (path prefix, glob, extension, status class) and what it changes;
//! the cache lifetimes by extension and by fingerprinted name.

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use plugin_api::helpers::Prefix;
use plugin_api::Head;

/// The paths a rule applies to: every part given must match.
pub struct PathMatch {
    prefix: Option<Prefix>,
    glob: Option<NameOrPath<GlobMatcher>>,
    ext: Option<Vec<String>>,
}

/// A glob with no `/` is matched against the file name (`*.css`, like .gitignore); one with
/// a `/` against the whole path (`/assets/**/*.css`).
enum NameOrPath<T> {
    Name(T),
    Path(T),
}

/// `*` and `?` stop at `/`; `**` crosses folders.
fn glob(key: &str, pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| {
            format!(
                "{key}: {pattern:?} is not a glob ({e}); expected e.g. \"*.css\" or \"/assets/**\""
            )
        })
}

impl PathMatch {
    pub fn new(
        key: &str,
        prefix: Option<&str>,
        pattern: Option<&str>,
        ext: Option<Vec<String>>,
    ) -> Result<PathMatch, String> {
        let prefix = prefix
            .map(|p| Prefix::new(p).map_err(|e| format!("{key}.match: {e}")))
            .transpose()?;
        let glob = pattern
            .map(|p| {
                let m = glob(&format!("{key}.glob"), p)?.compile_matcher();
                Ok::<_, String>(if p.contains('/') {
                    NameOrPath::Path(m)
                } else {
                    NameOrPath::Name(m)
                })
            })
            .transpose()?;
        Ok(PathMatch { prefix, glob, ext })
    }

    pub fn matches(&self, path: &str) -> bool {
        let prefix = self.prefix.as_ref().map_or(true, |p| p.matches(path));
        let glob = self.glob.as_ref().map_or(true, |g| match g {
            NameOrPath::Name(m) => m.is_match(file_name(path)),
            NameOrPath::Path(m) => m.is_match(path),
        });
        let ext = self.ext.as_ref().map_or(true, |list| {
            let e = extension_of(path);
            list.iter().any(|x| x.eq_ignore_ascii_case(e))
        });
        prefix && glob && ext
    }
}

/// The last segment of a path (`""` for a folder path ending in `/`).
fn file_name(path: &str) -> &str {
    // By byte: `/` never occurs inside a UTF-8 sequence, so the cut is on a boundary.
    match path.bytes().rposition(|b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// The extension of a path's file name, with its dot (`".css"`), or `""`. A folder path
/// (ending in `/`) answers with its index page or listing, so it counts as `.html`.
pub fn extension_of(path: &str) -> &str {
    if path.ends_with('/') {
        return ".html";
    }
    let name = file_name(path);
    match name.bytes().rposition(|b| b == b'.') {
        Some(i) if i > 0 => &name[i..],
        _ => "",
    }
}

/// Status codes a rule applies to: classes (`2xx`) and single codes.
pub struct StatusMatch(Vec<(u16, u16)>);

impl StatusMatch {
    pub fn new(key: &str, specs: Vec<String>) -> Result<StatusMatch, String> {
        specs
            .iter()
            .map(|s| status_range(key, s))
            .collect::<Result<_, _>>()
            .map(StatusMatch)
    }

    pub fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

/// `"2xx"` is 200..=299, `"404"` is 404. 206, 304, 412 and 416 are made by the host after
/// the filters ran, so a rule could never see them.
fn status_range(key: &str, spec: &str) -> Result<(u16, u16), String> {
    let expected = "expected a class like \"2xx\" or a code like \"404\" (100-599)";
    let class = spec
        .strip_suffix("xx")
        .and_then(|d| d.parse::<u16>().ok())
        .filter(|d| (1..=5).contains(d));
    if let Some(d) = class {
        return Ok((d * 100, d * 100 + 99));
    }
    let code: u16 = spec
        .parse()
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| format!("{key}: {spec:?}: {expected}"))?;
    if [206, 304, 412, 416].contains(&code) {
        return Err(format!(
            "{key}: {code} is made by the server after the filters ran (from the 200 they saw; a \
             304 keeps what was set for the 200): match \"200\" or \"2xx\" instead"
        ));
    }
    Ok((code, code))
}

/// What a rule changes, in this order: remove, set (replacing), append.
pub struct Edits {
    pub set: Vec<(String, String)>,
    pub append: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl Edits {
    /// Apply the edits. The names were checked at start-up, so the host takes them all;
    /// `Strict-Transport-Security` is added only to an answer over HTTPS (`secure`).
    pub fn apply(&self, head: &mut Head, secure: bool) {
        let allowed = |name: &str| secure || !name.eq_ignore_ascii_case(crate::STS);
        for name in &self.remove {
            let _ = head.remove(name);
        }
        for (name, value) in self.set.iter().filter(|(n, _)| allowed(n)) {
            let _ = head.set(name, value);
        }
        for (name, value) in self.append.iter().filter(|(n, _)| allowed(n)) {
            let _ = head.append(name, value);
        }
    }
}

/// One `[[plugins.headers.rules]]` entry.
pub struct Rule {
    pub path: PathMatch,
    pub status: Option<StatusMatch>,
    pub edits: Edits,
}

impl Rule {
    pub fn matches(&self, path: &str, status: u16) -> bool {
        self.status.as_ref().map_or(true, |s| s.matches(status)) && self.path.matches(path)
    }
}

/// `Cache-Control` for fingerprinted names: a year, never revalidated (RFC 8246).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Cache lifetimes: fingerprinted names first, then the extension's `max-age`.
pub struct Cache {
    /// Extension → its `Cache-Control` value, made once from the settings.
    max_age: Vec<(String, String)>,
    immutable_names: GlobSet,
    immutable_paths: GlobSet,
}

impl Cache {
    pub fn new(max_age: Vec<(String, u32)>, immutable: &[String]) -> Result<Cache, String> {
        let (mut names, mut paths) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for p in immutable {
            let g = glob("cache.immutable", p)?;
            if p.contains('/') {
                paths.add(g);
            } else {
                names.add(g);
            }
        }
        let built = |b: GlobSetBuilder| b.build().map_err(|e| format!("cache.immutable: {e}"));
        let value = |secs: u32| match secs {
            0 => "no-cache".to_string(),
            s => format!("max-age={s}"),
        };
        Ok(Cache {
            max_age: max_age.into_iter().map(|(e, s)| (e, value(s))).collect(),
            immutable_names: built(names)?,
            immutable_paths: built(paths)?,
        })
    }

    /// The `Cache-Control` value for a path, if the settings give one.
    pub fn control(&self, path: &str) -> Option<&str> {
        // An empty set is skipped: matching builds a candidate even when there is nothing
        // to match, and this runs for every answer.
        let names = &self.immutable_names;
        let paths = &self.immutable_paths;
        if (!names.is_empty() && names.is_match(file_name(path)))
            || (!paths.is_empty() && paths.is_match(path))
        {
            return Some(IMMUTABLE);
        }
        let ext = extension_of(path);
        let (_, value) = self
            .max_age
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(ext))?;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_match(prefix: Option<&str>, g: Option<&str>, ext: Option<&[&str]>) -> PathMatch {
        let ext = ext.map(|e| e.iter().map(|s| s.to_string()).collect());
        PathMatch::new("rules[1]", prefix, g, ext).unwrap()
    }

    #[test]
    fn a_prefix_covers_its_folder_and_below_only() {
        let m = path_match(Some("/assets/"), None, None);
        assert!(m.matches("/assets/app.css"));
        assert!(m.matches("/assets"));
        assert!(!m.matches("/assetsx/app.css"));
        assert!(!m.matches("/a/assets/x"));
    }

    #[test]
    fn a_glob_without_a_slash_matches_the_file_name() {
        let m = path_match(None, Some("*.css"), None);
        assert!(m.matches("/a/b/site.css"));
        assert!(!m.matches("/a/site.css/x.txt"));
        let deep = path_match(None, Some("/assets/**/*.js"), None);
        assert!(deep.matches("/assets/x/y/app.js"));
        assert!(deep.matches("/assets/app.js"));
        assert!(!deep.matches("/other/app.js"));
        let star = path_match(None, Some("/assets/*.js"), None);
        assert!(!star.matches("/assets/x/app.js"), "* stops at /");
    }

    #[test]
    fn all_given_parts_must_match() {
        let m = path_match(Some("/a/"), None, Some(&[".css", ".js"]));
        assert!(m.matches("/a/x.CSS"));
        assert!(m.matches("/a/x.js"));
        assert!(!m.matches("/b/x.css"));
        assert!(!m.matches("/a/x.html"));
    }

    #[test]
    fn folders_count_as_html_and_dotfiles_have_no_extension() {
        assert_eq!(extension_of("/docs/"), ".html");
        assert_eq!(extension_of("/a/b.tar.gz"), ".gz");
        assert_eq!(extension_of("/a/.env"), "");
        assert_eq!(extension_of("/a/README"), "");
    }

    #[test]
    fn status_classes_and_codes() {
        let s = StatusMatch::new("k", vec!["2xx".into(), "404".into()]).unwrap();
        assert!(s.matches(200) && s.matches(299) && s.matches(404));
        assert!(!s.matches(301) && !s.matches(500));
        for bad in ["6xx", "0xx", "2x", "abc", "99", "600"] {
            assert!(status_range("k", bad).is_err(), "{bad}");
        }
        let e = status_range("k", "304").unwrap_err();
        assert!(e.contains("after the filters"), "{e}");
    }

    #[test]
    fn fingerprinted_names_are_immutable_before_any_extension_lifetime() {
        let hex8 = "*.[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f].*";
        let c = Cache::new(
            vec![(".css".into(), 3600), (".html".into(), 0)],
            &[hex8.into(), "/static/**".into()],
        )
        .unwrap();
        assert_eq!(c.control("/a/app.0123abcd.css"), Some(IMMUTABLE));
        assert_eq!(c.control("/static/x/y.png"), Some(IMMUTABLE));
        assert_eq!(c.control("/a/app.css"), Some("max-age=3600"));
        assert_eq!(c.control("/a/app.0123abcz.css"), Some("max-age=3600"));
        assert_eq!(c.control("/index.html"), Some("no-cache"));
        assert_eq!(c.control("/"), Some("no-cache"));
        assert_eq!(c.control("/a.png"), None);
    }

    #[test]
    fn a_bad_glob_is_refused_with_its_key() {
        let Err(e) = Cache::new(Vec::new(), &["[a-".into()]) else {
            panic!("a bad glob was accepted");
        };
        assert!(
            e.starts_with("cache.immutable: \"[a-\" is not a glob"),
            "{e}"
        );
    }
}
