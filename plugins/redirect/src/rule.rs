//! One redirect rule: what it matches (an exact path, a prefix, or a regex), where it sends
//! the client, with which status, and whether the query goes along.

use crate::target::{Fill, Group, Groups, Target};
use regex::bytes::{Captures, Regex};
use serde::Deserialize;

/// A rule as written in `[[plugins.redirect.rules]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConf {
    /// This path only.
    exact: Option<String>,
    /// This path and everything below it; the rest is appended to `to`.
    prefix: Option<String>,
    /// A regex on the decoded path; `to` may use its captures.
    regex: Option<String>,
    /// Where to send the client.
    to: String,
    /// 301, 302 (default), 303, 307 or 308.
    #[serde(default = "found")]
    status: u16,
    /// Append the request's query to the Location (default true).
    #[serde(default = "yes")]
    keep_query: bool,
}

fn found() -> u16 {
    302
}

fn yes() -> bool {
    true
}

/// What a rule matches.
enum Matcher {
    Exact(Vec<u8>),
    /// Without its trailing `/`: `/blog` matches `/blog` and `/blog/...`, not `/blogger`.
    Prefix(Vec<u8>),
    Regex(Regex),
}

/// A checked rule.
pub struct Rule {
    matcher: Matcher,
    target: Target,
    pub status: u16,
    keep_query: bool,
}

/// The statuses that redirect with a Location.
const STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

impl Rule {
    /// Check one rule; errors name what is wrong and what is expected.
    pub fn new(c: RuleConf) -> Result<Rule, String> {
        if !STATUSES.contains(&c.status) {
            return Err(format!(
                "status = {} is not a redirect; expected 301, 302, 303, 307 or 308",
                c.status
            ));
        }
        let matcher = matcher(c.exact, c.prefix, c.regex)?;
        let target = match &matcher {
            Matcher::Regex(re) => {
                let groups = Groups {
                    count: re.captures_len() - 1,
                    names: re.capture_names().flatten().collect(),
                };
                Target::parse(&c.to, Some(&groups), false)?
            }
            Matcher::Prefix(_) => Target::parse(&c.to, None, true)?,
            Matcher::Exact(_) => Target::parse(&c.to, None, false)?,
        };
        Ok(Rule {
            matcher,
            target,
            status: c.status,
            keep_query: c.keep_query,
        })
    }

    /// The Location for `path` (decoded, normalised) and `query` (raw), if the rule matches.
    pub fn location(&self, path: &[u8], query: &[u8]) -> Option<String> {
        let query = self.keep_query.then_some(query);
        match &self.matcher {
            Matcher::Exact(p) => (p == path).then(|| self.fill(&|_| None, None, query)),
            Matcher::Prefix(p) => {
                let rest = path.strip_prefix(p.as_slice())?;
                if !rest.is_empty() && !rest.starts_with(b"/") {
                    return None;
                }
                Some(self.fill(&|_| None, Some(rest), query))
            }
            Matcher::Regex(re) => {
                let caps = re.captures(path)?;
                Some(self.fill(&|g| group(&caps, g), None, query))
            }
        }
    }

    fn fill<'a>(
        &self,
        capture: &'a dyn Fn(&Group) -> Option<&'a [u8]>,
        rest: Option<&'a [u8]>,
        query: Option<&'a [u8]>,
    ) -> String {
        self.target.fill(&Fill {
            capture,
            rest,
            query,
        })
    }
}

/// The bytes of one capture group (empty when it took no part in the match).
fn group<'a>(caps: &Captures<'a>, g: &Group) -> Option<&'a [u8]> {
    let m = match g {
        Group::Index(n) => caps.get(*n),
        Group::Name(name) => caps.name(name),
    };
    m.map(|m| m.as_bytes())
}

/// Exactly one of `exact`, `prefix` and `regex`, checked.
fn matcher(
    exact: Option<String>,
    prefix: Option<String>,
    regex: Option<String>,
) -> Result<Matcher, String> {
    match (exact, prefix, regex) {
        (Some(p), None, None) => Ok(Matcher::Exact(decoded_path("exact", &p)?.into_bytes())),
        (None, Some(p), None) => {
            let p = decoded_path("prefix", &p)?;
            Ok(Matcher::Prefix(p.trim_end_matches('/').as_bytes().to_vec()))
        }
        (None, None, Some(r)) => Regex::new(&r)
            .map(Matcher::Regex)
            .map_err(|e| format!("regex = {r:?} does not compile: {e}")),
        _ => Err("a rule needs exactly one of exact = \"/path\", prefix = \"/folder/\" or regex = \"^/(.*)$\"".into()),
    }
}

/// A path to compare with the request's, which arrives decoded and normalised: one that
/// could never match (relative, `%`-encoded, `//`, `.` or `..`) is refused.
fn decoded_path(key: &str, p: &str) -> Result<String, String> {
    let expected = "expected a decoded path starting with '/', like \"/old.html\" or \"/blog/\"";
    let inner = p.strip_prefix('/').unwrap_or(p);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    let bad_segment = !inner.is_empty()
        && inner
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if !p.starts_with('/') || bad_segment {
        return Err(format!(
            "{key} = {p:?}: {expected} (no empty, '.' or '..' segments)"
        ));
    }
    if p.contains('%') {
        return Err(format!(
            "{key} = {p:?}: paths are compared decoded; write ' ' and not '%20' ({expected})"
        ));
    }
    Ok(p.to_string())
}
