//! Case `redirect`: the path has moved. The first rule that matches (an exact path, a prefix,
//! or a regex with captures) answers 301/302/303/307/308 with a Location, percent-encoded
//! from the decoded path, and a tiny page with the link.

mod rule;
mod target;

use plugin_api::helpers::html_escape;
use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
use rule::{Rule, RuleConf};
use serde::Deserialize;
use std::ffi::CStr;

/// A rule matches the path.
pub struct Redirect {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// Tried in order; the first match answers.
    rules: Vec<RuleConf>,
}

impl Redirect {
    /// The first rule that matches, with its Location.
    fn find(&self, req: &Request) -> Option<(&Rule, String)> {
        let (path, query) = (req.path_bytes(), req.query());
        self.rules
            .iter()
            .find_map(|r| r.location(path, query).map(|loc| (r, loc)))
    }
}

/// The reason phrase of a redirect status.
fn reason(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        _ => "Permanent Redirect",
    }
}

/// The body, as nginx's `return 301` sends one: the status and a link, for clients that do
/// not follow Location themselves.
fn page(status: u16, location: &str) -> String {
    let title = format!("{status} {}", reason(status));
    let href = html_escape(location);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1><p><a href=\"{href}\">{href}</a></p></body></html>\n"
    )
}

impl Case for Redirect {
    const NAME: &'static CStr = c"redirect";
    // A moved path has moved for every method; 307 and 308 tell the client to keep it.
    const ALLOW: &'static CStr = c"*";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        if c.rules.is_empty() {
            return Err(
                "rules is empty; expected at least one { exact | prefix | regex = ..., to = ... }"
                    .into(),
            );
        }
        let rules = c
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| Rule::new(r).map_err(|e| format!("rules[{i}]: {e}")));
        Ok(Redirect {
            rules: rules.collect::<Result<_, _>>()?,
        })
    }

    fn test(&self, req: &Request) -> bool {
        self.find(req).is_some()
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        let Some((rule, location)) = self.find(req) else {
            return Outcome::Declined;
        };
        resp.status(rule.status)
            .and_then(|()| resp.header("Location", &location))
            .and_then(|()| resp.header("Content-Type", "text/html; charset=utf-8"))
            .and_then(|()| resp.write(page(rule.status, &location).as_bytes()))
            .into()
    }
}

plugin_api::export_case!(Redirect);

#[cfg(test)]
mod tests {
    use super::Redirect;
    use plugin_api::testing::{TestCase, TestRequest};
    use plugin_api::Outcome;

    fn case(rules: &str) -> TestCase<Redirect> {
        TestCase::create(&format!(r#"{{"rules": [{rules}]}}"#)).unwrap()
    }

    fn refusal(rules: &str) -> String {
        TestCase::<Redirect>::create(&format!(r#"{{"rules": [{rules}]}}"#))
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn an_exact_rule_answers_its_status_location_and_a_page_with_the_link() {
        let c = case(r#"{"exact": "/old.html", "to": "/new.html", "status": 301}"#);
        assert!(!c.test(&TestRequest::get("/old.html/x")));
        let r = c.act(&TestRequest::get("/old.html").query("a=1"));
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("/new.html?a=1"));
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(
            r.text().contains("<a href=\"/new.html?a=1\">"),
            "{}",
            r.text()
        );
        assert!(r.text().contains("301 Moved Permanently"));
    }

    #[test]
    fn a_prefix_rule_carries_the_rest_of_the_path_re_encoded() {
        let c = case(r#"{"prefix": "/blog/", "to": "https://blog.example.com/", "status": 308}"#);
        assert!(!c.test(&TestRequest::get("/blogger")));
        let r = c.act(&TestRequest::get("/blog/2024/a b ü"));
        assert_eq!(r.status, 308);
        assert_eq!(
            r.header("location"),
            Some("https://blog.example.com/2024/a%20b%20%C3%BC")
        );
        let r = c.act(&TestRequest::get("/blog"));
        assert_eq!(r.header("location"), Some("https://blog.example.com/"));
    }

    #[test]
    fn a_regex_rule_fills_in_numbered_and_named_captures() {
        let c = case(
            r#"{"regex": "^/user/(?P<id>[0-9]+)/(.*)$", "to": "/people/${id}?tab=$2", "keep_query": false}"#,
        );
        let r = c.act(&TestRequest::get("/user/42/a&b").query("dropped=1"));
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("/people/42?tab=a%26b"));
        assert!(!c.test(&TestRequest::get("/user/x/y")));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let c = case(
            r#"{"exact": "/a", "to": "/first"}, {"prefix": "/", "to": "https://new.example"}"#,
        );
        assert_eq!(
            c.act(&TestRequest::get("/a")).header("location"),
            Some("/first")
        );
        assert_eq!(
            c.act(&TestRequest::get("/b/c")).header("location"),
            Some("https://new.example/b/c")
        );
    }

    #[test]
    fn the_page_escapes_the_location() {
        let c = case(r#"{"exact": "/x", "to": "/y?a=1&b=\"2\""}"#);
        let r = c.act(&TestRequest::get("/x"));
        assert!(
            r.text().contains("href=\"/y?a=1&amp;b=%222%22\""),
            "{}",
            r.text()
        );
    }

    #[test]
    fn bad_rules_stop_start_up_with_what_is_expected() {
        let cases = [
            (
                r#"{"exact": "/a", "to": "//evil.example"}"#,
                "open redirect",
            ),
            (
                r#"{"exact": "/a", "to": "/b", "status": 200}"#,
                "expected 301, 302, 303, 307 or 308",
            ),
            (
                r#"{"exact": "/a", "prefix": "/b", "to": "/c"}"#,
                "exactly one of",
            ),
            (r#"{"to": "/c"}"#, "exactly one of"),
            (r#"{"exact": "a", "to": "/c"}"#, "starting with '/'"),
            (r#"{"prefix": "/a%20b/", "to": "/c"}"#, "compared decoded"),
            (r#"{"exact": "/a/../b", "to": "/c"}"#, "'..' segments"),
            (r#"{"regex": "(", "to": "/c"}"#, "does not compile"),
            (r#"{"regex": "^/(a)$", "to": "/$2"}"#, "no such group"),
            (
                r#"{"prefix": "/a", "to": "/$1"}"#,
                "only work in regex rules",
            ),
            (
                r#"{"exact": "/a", "to": "/c", "code": 301}"#,
                "unknown field `code`",
            ),
        ];
        for (rule, words) in cases {
            let e = refusal(rule);
            assert!(
                e.starts_with("rules[0]: ") || e.contains(words),
                "{rule}: {e}"
            );
            assert!(e.contains(words), "{rule}: {e}");
        }
        let e = TestCase::<Redirect>::create(r#"{"rules": []}"#)
            .err()
            .unwrap();
        assert!(e.contains("rules is empty"), "{e}");
    }
}
