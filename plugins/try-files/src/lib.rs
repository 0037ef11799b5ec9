//! Case `try_files`: the path is not a file, but one of its candidates is. For GET and HEAD
//! under a rule's prefix, the first candidate that exists beneath the root (`$path.html`,
//! `$path/index.html`, `/index.html`) becomes the request, and the chain goes on with it:
//! clean URLs and single-page-app fallback, as nginx's `try_files`.

mod candidate;

use candidate::{exists, fill, Candidate};
use plugin_api::helpers::{encode_path, Prefix};
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// A rule's prefix covers the path and one of its candidates exists.
pub struct TryFiles {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// Tried in order; the first whose prefix covers the path decides.
    rules: Vec<RuleConf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConf {
    /// The paths this rule covers (default `/`, all).
    #[serde(default = "everything")]
    prefix: String,
    /// The candidates, in order.
    files: Vec<String>,
}

fn everything() -> String {
    "/".into()
}

struct Rule {
    prefix: Prefix,
    files: Vec<Candidate>,
}

/// What a rule decided for one request.
#[derive(Debug, PartialEq, Eq)]
enum Choice {
    /// The request path itself is the first candidate that exists: nothing to change.
    AsIs,
    /// Go on with this (decoded) path instead.
    Rewrite(Vec<u8>),
    /// `=NNN` was reached.
    Status(u16),
    /// No candidate exists: the next cases answer as usual.
    Nothing,
}

impl Rule {
    fn new(c: RuleConf) -> Result<Rule, String> {
        let prefix = Prefix::new(&c.prefix)?;
        if c.files.is_empty() {
            return Err("files is empty; expected candidates like [\"$path\", \"$path.html\", \"/index.html\"]".into());
        }
        let last = c.files.len() - 1;
        let files = c.files.iter().enumerate();
        let files = files
            .map(|(i, f)| Candidate::parse(f, i == last).map_err(|e| format!("files[{i}] = {e}")));
        Ok(Rule {
            prefix,
            files: files.collect::<Result<_, _>>()?,
        })
    }

    /// The first candidate that exists for this request.
    fn choose(&self, req: &Request) -> Choice {
        let path = req.path_bytes();
        for c in &self.files {
            let parts = match c {
                Candidate::Status(s) => return Choice::Status(*s),
                Candidate::Pattern(parts) => parts,
            };
            let filled = fill(parts, path);
            if filled == path && req.kind() == Kind::File {
                return Choice::AsIs;
            }
            if exists(req.root(), &filled, path) {
                return if filled == path || is_folder_of(&filled, path) {
                    Choice::AsIs
                } else {
                    Choice::Rewrite(filled)
                };
            }
        }
        Choice::Nothing
    }
}

/// `filled` is the folder `path` names, slash added (`"$path/"` on `/docs`): left to the
/// folder cases, whose 301 to `/docs/` keeps the folder page's relative links right.
fn is_folder_of(filled: &[u8], path: &[u8]) -> bool {
    filled.strip_suffix(b"/") == Some(path)
}

impl TryFiles {
    /// The rule for a GET or HEAD whose path a rule's prefix covers.
    fn rule(&self, req: &Request) -> Option<&Rule> {
        if !matches!(req.method(), "GET" | "HEAD") {
            return None;
        }
        let path = req.path();
        self.rules.iter().find(|r| r.prefix.matches(&path))
    }
}

/// The rewrite target: the path encoded again (the host decodes it), then the query as sent.
fn target(path: &[u8], query: &[u8]) -> String {
    let mut t = encode_path(path);
    if !query.is_empty() {
        t.push('?');
        t.push_str(&String::from_utf8_lossy(query));
    }
    t
}

impl Case for TryFiles {
    const NAME: &'static CStr = c"try_files";
    const REWRITES: bool = true;

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        if c.rules.is_empty() {
            return Err(
                "rules is empty; expected at least one { prefix = \"/\", files = [...] }".into(),
            );
        }
        let rules = c.rules.into_iter().enumerate();
        let rules = rules.map(|(i, r)| Rule::new(r).map_err(|e| format!("rules[{i}]: {e}")));
        Ok(TryFiles {
            rules: rules.collect::<Result<_, _>>()?,
        })
    }

    fn test(&self, req: &Request) -> bool {
        self.rule(req).is_some()
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        let Some(rule) = self.rule(req) else {
            return Outcome::Declined;
        };
        match rule.choose(req) {
            Choice::AsIs | Choice::Nothing => Outcome::Declined,
            Choice::Status(status) => resp.error(status, "not found").into(),
            Choice::Rewrite(path) => match resp.rewrite(&target(&path, req.query())) {
                Ok(()) => Outcome::Continue,
                Err(_) => Outcome::Error,
            },
        }
    }
}

plugin_api::export_case!(TryFiles);

#[cfg(test)]
mod tests {
    use super::TryFiles;
    use plugin_api::testing::{TempRoot, TestCase, TestRequest};
    use plugin_api::Outcome;

    const SITE: &str = r#"{"rules": [
        {"prefix": "/app/assets/", "files": ["$path", "=404"]},
        {"prefix": "/app/", "files": ["$path", "/app/index.html"]},
        {"files": ["$path", "$path.html", "$path/index.html"]}
    ]}"#;

    fn site() -> (TempRoot, TestCase<TryFiles>) {
        let root = TempRoot::new();
        root.file("about.html", "about");
        root.file("a b.html", "spaced");
        root.file("docs/index.html", "docs");
        root.file("app/index.html", "app");
        root.file("app/assets/app.js", "js");
        (root, TestCase::create(SITE).unwrap())
    }

    fn act(
        case: &TestCase<TryFiles>,
        root: &TempRoot,
        req: TestRequest,
    ) -> plugin_api::testing::Recorded {
        case.act(&req.root(root.path()))
    }

    #[test]
    fn a_clean_url_goes_on_as_its_html_file_with_the_query() {
        let (root, case) = site();
        let r = act(&case, &root, TestRequest::get("/about").query("x=1"));
        assert_eq!(r.outcome, Outcome::Continue);
        assert_eq!(r.rewrite.as_deref(), Some("/about.html?x=1"));
        let r = act(&case, &root, TestRequest::get("/docs"));
        assert_eq!(r.rewrite.as_deref(), Some("/docs/index.html"));
    }

    #[test]
    fn the_rewrite_target_is_encoded_again() {
        let (root, case) = site();
        let r = act(&case, &root, TestRequest::get("/a b"));
        assert_eq!(r.rewrite.as_deref(), Some("/a%20b.html"));
    }

    #[test]
    fn an_existing_file_is_left_as_it_is() {
        let (root, case) = site();
        for path in ["/about.html", "/app/assets/app.js"] {
            let r = act(&case, &root, TestRequest::get(path));
            assert_eq!((r.outcome, r.rewrite), (Outcome::Declined, None), "{path}");
        }
    }

    #[test]
    fn deep_links_under_the_app_fall_back_to_its_index() {
        let (root, case) = site();
        let r = act(&case, &root, TestRequest::get("/app/deep/link"));
        assert_eq!(r.rewrite.as_deref(), Some("/app/index.html"));
    }

    #[test]
    fn a_missing_asset_answers_the_configured_status() {
        let (root, case) = site();
        let r = act(&case, &root, TestRequest::get("/app/assets/gone.js"));
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(r.error, Some((404, "not found".to_string())));
    }

    #[test]
    fn nothing_found_and_other_methods_are_left_to_the_next_cases() {
        let (root, case) = site();
        let r = act(&case, &root, TestRequest::get("/nowhere"));
        assert_eq!((r.outcome, r.rewrite), (Outcome::Declined, None));
        let post = TestRequest::new("POST", "/about").root(root.path());
        assert!(!case.test(&post));
        assert!(case.test(&TestRequest::new("HEAD", "/about").root(root.path())));
    }

    #[test]
    fn bad_settings_stop_start_up_with_what_is_expected() {
        let refusal = |json: &str| TestCase::<TryFiles>::create(json).err().unwrap_or_default();
        let e = refusal(r#"{"rules": [{"files": ["$path/../../etc/passwd"]}]}"#);
        assert!(
            e.starts_with("rules[0]: files[0] = ") && e.contains("outside the root"),
            "{e}"
        );
        let e = refusal(r#"{"rules": [{"files": ["=404", "$path"]}]}"#);
        assert!(e.contains("must be the last entry"), "{e}");
        let e = refusal(r#"{"rules": [{"prefix": "app", "files": ["$path"]}]}"#);
        assert!(e.contains("must start with '/'"), "{e}");
        let e = refusal(r#"{"rules": [{"files": []}]}"#);
        assert!(e.contains("files is empty"), "{e}");
        let e = refusal(r#"{"rules": [{"files": ["$path"], "root": "/"}]}"#);
        assert!(e.contains("unknown field `root`"), "{e}");
    }
}
