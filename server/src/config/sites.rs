//! `[[sites]]`: several sites told apart by Host name, each with its own root, chain and
//! plugin settings; checked into `Site`s, the default one marked.
//!
//! Names follow nginx's `server_name`: an exact name (`example.com`), a leading wildcard
//! (`*.example.com`: one or more labels in front, never `example.com` itself) and nginx's
//! leading-dot shorthand (`.example.com`: the name itself and every name under it). An exact
//! name wins over a wildcard, a longer wildcard over a shorter one. A site leaves out `root`,
//! `cases` or a `[sites.plugins.NAME]` table to use the top level's.

use super::{valid_name, CaseEntry};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// One `[[sites]]` entry as written.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct Written {
    #[serde(default)]
    server_names: Vec<String>,
    /// The site for a Host no site names (and requests without one).
    #[serde(default)]
    default: bool,
    root: Option<PathBuf>,
    cases: Option<Vec<Name>>,
    #[serde(default)]
    plugins: BTreeMap<String, toml::Table>,
    /// Answer plain-HTTP requests with 301 to the same URL on https.
    #[serde(default)]
    https_redirect: bool,
    /// The port of that https URL (443, the default, is left out of it).
    https_port: Option<u16>,
}

/// The top level's chain settings: the default site's when no `[[sites]]` entry says
/// `default = true`, and what a site that leaves a key out uses.
pub(super) struct Top<'a> {
    pub root: Option<PathBuf>,
    pub cases: Option<&'a [Name]>,
    pub plugins: &'a BTreeMap<String, toml::Table>,
    /// The file's text, for the line a case name is on.
    pub text: &'a str,
}

/// A case name as written, with where it is in the file.
type Name = toml::Spanned<String>;

/// Whether `cases` lists `name`.
fn lists(cases: &[Name], name: &str) -> bool {
    cases.iter().any(|c| c.get_ref() == name)
}

/// A name a site answers to, lower-case, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerName {
    Exact(String),
    /// `*.example.com`, kept as the suffix `.example.com`.
    Wildcard(String),
}

/// One site, checked: what its chain is made of and the names it answers to.
#[derive(Debug, Clone)]
pub struct Site {
    /// How messages, the banner and `--check-config` name it: `[[sites]] #2 (example.com)`,
    /// or `top level` for the site the top-level settings make.
    pub label: String,
    /// The names as written, for the banner.
    pub written: Vec<String>,
    pub names: Vec<ServerName>,
    /// The site for unknown hosts.
    pub default: bool,
    pub root: PathBuf,
    pub cases: Vec<CaseEntry>,
    /// `https_redirect = true`: the https port plain-HTTP requests are sent to.
    pub https_redirect: Option<u16>,
}

/// Check every site, and the top level as the default site when none is marked default.
/// `resolve` makes a written path absolute; the default site comes first in the result.
pub(super) fn check(
    file: &str,
    top: Top,
    written: &[Written],
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Vec<Site>, String> {
    let marked: Vec<usize> = (0..written.len()).filter(|&i| written[i].default).collect();
    if let [a, b, ..] = marked[..] {
        return Err(format!(
            "{file}: {} and {} both say `default = true`\n  fix: keep `default = true` on one site only (it answers hosts no site names)",
            label(a, &written[a]),
            label(b, &written[b])
        ));
    }
    let mut sites = Vec::with_capacity(written.len() + 1);
    if marked.is_empty() {
        sites.push(top_site(file, &top, !written.is_empty())?);
    }
    for (i, w) in written.iter().enumerate() {
        sites.push(site(file, &top, i, w, resolve)?);
    }
    orphan_tables(file, &top, written)?;
    no_name_twice(file, &sites)?;
    sites.sort_by_key(|s| !s.default);
    Ok(sites)
}

/// `[[sites]] #2 (example.com)`: the 1-based position and the first name.
fn label(i: usize, w: &Written) -> String {
    match w.server_names.first() {
        Some(n) => format!("[[sites]] #{} ({n})", i + 1),
        None => format!("[[sites]] #{}", i + 1),
    }
}

/// The site the top-level `root`, `cases` and `[plugins]` make: the only one without
/// `[[sites]]`, the default one beside them.
fn top_site(file: &str, top: &Top, with_sites: bool) -> Result<Site, String> {
    let missing = |key: &str| {
        if with_sites {
            format!("{file}: no site is the default: the top level has no `{key}`, and no [[sites]] entry says `default = true`\n  fix: add `default = true` to the site that answers hosts no site names, or give the top level `root` and `cases` for them")
        } else {
            format!("{file}: missing field `{key}`\n  expected: `root = \"www\"` and `cases = [...]`, the chain in priority order")
        }
    };
    let root = top.root.clone().ok_or_else(|| missing("root"))?;
    let cases = top.cases.ok_or_else(|| missing("cases"))?;
    let where_ = |_: &str| String::new();
    Ok(Site {
        label: "top level".into(),
        written: Vec::new(),
        names: Vec::new(),
        default: true,
        root: document_root(file, "", &root)?,
        cases: chain(file, top.text, &where_, cases, |n| top.plugins.get(n))?,
        https_redirect: None,
    })
}

/// One `[[sites]]` entry: its names, its root and chain (or the top level's), its redirect.
fn site(
    file: &str,
    top: &Top,
    i: usize,
    w: &Written,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Site, String> {
    let label = label(i, w);
    let at = format!("{label}: ");
    if w.server_names.is_empty() && !w.default {
        return Err(format!("{file}: {at}`server_names` is empty\n  expected: the host names this site answers, e.g. server_names = [\"example.com\", \"*.example.com\"]\n  fix: add its names, or `default = true` for the site that answers every other host"));
    }
    let mut names = Vec::new();
    for written in &w.server_names {
        names.extend(server_name(written).map_err(|why| {
            format!("{file}: {at}server_names entry {written:?} {why}\n  expected: a host name (example.com), a wildcard (*.example.com), nginx's .example.com (the name and all under it), or an IP address (IPv6 in brackets: [::1])")
        })?);
    }
    let root = w.root.as_deref().map(resolve).or(top.root.clone());
    let root = root.ok_or_else(|| {
        format!("{file}: {at}no `root`, and the top level has none to share\n  fix: add root = \"FOLDER\" to this site")
    })?;
    let cases = w.cases.as_deref().or(top.cases).ok_or_else(|| {
        format!("{file}: {at}no `cases`, and the top level has none to share\n  fix: add cases = [...] to this site, the chain in priority order")
    })?;
    let where_ = |key: &str| format!("`{key}` of {label}");
    let settings = |n: &str| w.plugins.get(n).or_else(|| top.plugins.get(n));
    for name in w.plugins.keys() {
        if !lists(cases, name) {
            return Err(format!("{file}: {at}[sites.plugins.{name}] configures a case that is not in this site's `cases`\n  fix: add \"{name}\" to the site's `cases` or remove the table (a typo?)"));
        }
    }
    if w.https_port == Some(0) {
        return Err(format!("{file}: {at}`https_port = 0` is no port a browser can reach\n  fix: the port of the https listener, 1 to 65535 (443 is left out of the URL)"));
    }
    if w.https_port.is_some() && !w.https_redirect {
        return Err(format!("{file}: {at}`https_port` is set but `https_redirect` is not\n  fix: add https_redirect = true, or remove https_port"));
    }
    if w.https_redirect && names.is_empty() {
        return Err(format!("{file}: {at}`https_redirect = true` needs `server_names`: only a request for one of them is redirected (never to a host the client made up)\n  fix: add the site's names"));
    }
    Ok(Site {
        written: w.server_names.clone(),
        names,
        default: w.default,
        root: document_root(file, &at, &root)?,
        cases: chain(file, top.text, &where_, cases, settings)?,
        https_redirect: w.https_redirect.then_some(w.https_port.unwrap_or(443)),
        label,
    })
}

/// The root, canonical, and a folder.
fn document_root(file: &str, at: &str, root: &Path) -> Result<PathBuf, String> {
    let canonical = root.canonicalize().map_err(|e| {
        format!("{file}: {at}document root {} cannot be used: {e}\n  fix: create the folder or point `root` (or --root) at an existing one", root.display())
    })?;
    if !canonical.is_dir() {
        return Err(format!(
            "{file}: {at}document root {} is not a folder",
            canonical.display()
        ));
    }
    Ok(canonical)
}

/// The chain: valid names, none twice, each with its settings as JSON. `where_("cases")`
/// says whose chain it is in messages (empty for the top level).
fn chain<'a>(
    file: &str,
    text: &str,
    where_: &dyn Fn(&str) -> String,
    cases: &[Name],
    settings: impl Fn(&str) -> Option<&'a toml::Table>,
) -> Result<Vec<CaseEntry>, String> {
    let key = match where_("cases") {
        k if k.is_empty() => "`cases`".to_string(),
        k => k,
    };
    if cases.is_empty() {
        return Err(format!("{file}: {key} is empty\n  expected: the case names in priority order, e.g. cases = [\"no_file\", \"existing_file\", \"always_fail\"]"));
    }
    let mut seen = HashSet::new();
    for written in cases {
        let (name, line) = (
            written.get_ref(),
            super::line_at(text, written.span().start),
        );
        if !valid_name(name) {
            return Err(format!("{file}: line {line}: case name {name:?} in {key} is not valid\n  expected: lower-case letters, digits and '_' only (the plugin file is lib<name>.so)"));
        }
        if !seen.insert(name.as_str()) {
            return Err(format!("{file}: line {line}: case {name:?} is listed twice in {key}\n  fix: keep one entry; order decides which case runs first"));
        }
    }
    Ok(cases
        .iter()
        .map(|written| (written.get_ref(), written.span().start))
        .map(|(name, at)| CaseEntry {
            name: name.clone(),
            line: super::line_at(text, at),
            settings: settings(name)
                .map(|t| serde_json::to_string(t).unwrap_or_else(|_| "{}".into()))
                .unwrap_or_else(|| "{}".into()),
        })
        .collect())
}

/// A top-level `[plugins.NAME]` must configure a case of some chain that uses it: the top
/// level's own, or a site's that takes its settings from the top level.
fn orphan_tables(file: &str, top: &Top, written: &[Written]) -> Result<(), String> {
    let used = |name: &String| {
        top.cases.is_some_and(|c| lists(c, name))
            || written.iter().any(|w| {
                !w.plugins.contains_key(name)
                    && w.cases
                        .as_deref()
                        .or(top.cases)
                        .is_some_and(|c| lists(c, name))
            })
    };
    let Some(name) = top.plugins.keys().find(|n| !used(n)) else {
        return Ok(());
    };
    let listed = top
        .cases
        .into_iter()
        .chain(written.iter().filter_map(|w| w.cases.as_deref()));
    let names = listed.flatten().map(|c| c.get_ref().as_str());
    let typo = match super::closest(name, names) {
        Some(meant) => format!("a typo of [plugins.{meant}]?"),
        None => "a typo?".into(),
    };
    Err(format!("{file}: [plugins.{name}] configures a case that is not in `cases`\n  fix: add \"{name}\" to `cases` or remove the table ({typo})"))
}

/// Each name belongs to one site: a request for it must not depend on the order of the file.
fn no_name_twice(file: &str, sites: &[Site]) -> Result<(), String> {
    let mut owner: BTreeMap<&ServerName, &str> = BTreeMap::new();
    for site in sites {
        for name in &site.names {
            if let Some(first) = owner.insert(name, &site.label) {
                let shown = match name {
                    ServerName::Exact(n) => n.clone(),
                    ServerName::Wildcard(s) => format!("*{s}"),
                };
                let whom = if first == site.label {
                    format!("{first} names {shown:?} twice")
                } else {
                    format!(
                        "{shown:?} is a server name of both {first} and {}",
                        site.label
                    )
                };
                return Err(format!("{file}: {whom}\n  fix: keep the name in one site (requests for it go to exactly one site)"));
            }
        }
    }
    Ok(())
}

impl PartialOrd for ServerName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ServerName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |n: &ServerName| match n {
            ServerName::Exact(s) => (0, s.clone()),
            ServerName::Wildcard(s) => (1, s.clone()),
        };
        key(self).cmp(&key(other))
    }
}

/// One written name as what it matches: `.example.com` is two (the name and the wildcard).
pub fn server_name(written: &str) -> Result<Vec<ServerName>, &'static str> {
    let lower = written.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if let Some(rest) = name.strip_prefix("*.") {
        host_name(rest)?;
        return Ok(vec![ServerName::Wildcard(format!(".{rest}"))]);
    }
    if let Some(rest) = name.strip_prefix('.') {
        host_name(rest)?;
        return Ok(vec![
            ServerName::Exact(rest.to_string()),
            ServerName::Wildcard(format!(".{rest}")),
        ]);
    }
    if is_ip_literal(name) {
        return Ok(vec![ServerName::Exact(name.to_string())]);
    }
    if name.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err("is an IPv6 address without its brackets: write it in brackets, as a Host header carries it (\"[2001:db8::1]\" for 2001:db8::1)");
    }
    host_name(name)?;
    Ok(vec![ServerName::Exact(name.to_string())])
}

/// Dot-separated labels of letters, digits, '-' and '_'.
fn host_name(name: &str) -> Result<(), &'static str> {
    if name.contains('*') {
        return Err("has a '*' that is not a leading \"*.\" (nginx's trailing wildcards and regular expressions are not supported)");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || !name.split('.').all(label_ok) {
        return Err("is not a host name");
    }
    Ok(())
}

/// `127.0.0.1` or `[::1]`, as a Host header carries an address.
fn is_ip_literal(name: &str) -> bool {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => name.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::ServerName::{Exact, Wildcard};
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, String> {
        let top = "listen = \"127.0.0.1:0\"\nplugin_dirs = []\n";
        Config::from_text(
            Path::new("/tmp/x/server.toml"),
            &format!("{top}{text}"),
            None,
            None,
        )
    }

    #[test]
    fn the_top_level_is_the_default_site_and_sites_inherit_what_they_leave_out() {
        let c = parse(
            "root = \"/\"\ncases = [\"a\", \"b\"]\n[plugins.a]\nx = 1\n\
             [[sites]]\nserver_names = [\".Example.com.\"]\nroot = \"/tmp\"\n\
             [sites.plugins.a]\nx = 2\n",
        )
        .unwrap();
        assert_eq!(c.sites.len(), 2);
        assert_eq!(
            (c.sites[0].label.as_str(), c.sites[0].default),
            ("top level", true)
        );
        let site = &c.sites[1];
        assert_eq!(site.label, "[[sites]] #1 (.Example.com.)");
        assert_eq!(
            site.names,
            [Exact("example.com".into()), Wildcard(".example.com".into())]
        );
        assert_eq!(site.cases[0].settings, r#"{"x":2}"#);
        assert_eq!(site.cases[1].name, "b");
        assert_eq!(c.sites[0].cases[0].settings, r#"{"x":1}"#);
    }

    #[test]
    fn a_marked_default_site_comes_first_and_the_top_level_is_only_shared() {
        let c = parse(
            "cases = [\"a\"]\n[[sites]]\nserver_names = [\"a.test\"]\nroot = \"/tmp\"\n\
             [[sites]]\ndefault = true\nroot = \"/\"\n",
        )
        .unwrap();
        assert_eq!(c.sites.len(), 2);
        assert_eq!(c.sites[0].label, "[[sites]] #2");
        assert_eq!(c.root, Path::new("/"));
    }

    #[test]
    fn refusals_name_the_site_the_key_and_the_fix() {
        let cases = "root = \"/\"\ncases = [\"a\"]\n";
        for (text, says) in [
            (
                "[[sites]]\nserver_names = [\"a.test\"]\n[[sites]]\nserver_names = [\"b.test\", \"A.test\"]\n",
                "\"a.test\" is a server name of both [[sites]] #1 (a.test) and [[sites]] #2 (b.test)",
            ),
            (
                "[[sites]]\nserver_names = [\"*.a.test\", \".a.test\"]\n",
                "[[sites]] #1 (*.a.test) names \"*.a.test\" twice",
            ),
            (
                "[[sites]]\ndefault = true\n[[sites]]\ndefault = true\n",
                "[[sites]] #1 and [[sites]] #2 both say `default = true`",
            ),
            ("[[sites]]\nroot = \"/\"\n", "[[sites]] #1: `server_names` is empty"),
            (
                "[[sites]]\nserver_names = [\"a.*.test\"]\n",
                "[[sites]] #1 (a.*.test): server_names entry \"a.*.test\" has a '*'",
            ),
            (
                "[[sites]]\nserver_names = [\"a.test\"]\n[sites.plugins.b]\n",
                "[[sites]] #1 (a.test): [sites.plugins.b] configures a case that is not in this site's `cases`",
            ),
            (
                "[[sites]]\nserver_names = [\"a.test\"]\ncases = []\n",
                "`cases` of [[sites]] #1 (a.test) is empty",
            ),
            (
                "[[sites]]\nserver_names = [\"a.test\"]\ncases = [\n  \"a\",\n  \"a\",\n]\n",
                "line 9: case \"a\" is listed twice in `cases` of [[sites]] #1 (a.test)",
            ),
            (
                "[[sites]]\nserver_names = [\"a.test\"]\ncases = [\"a\", \"B\"]\n",
                "line 7: case name \"B\" in `cases` of [[sites]] #1 (a.test) is not valid",
            ),
            (
                "[[sites]]\nserver_names = [\"a.test\"]\nhttps_port = 8443\n",
                "[[sites]] #1 (a.test): `https_port` is set but `https_redirect` is not",
            ),
            (
                "[[sites]]\nserver_names = [\"a.test\"]\nhttps_redirect = true\nhttps_port = 0\n",
                "[[sites]] #1 (a.test): `https_port = 0` is no port a browser can reach",
            ),
            (
                "[[sites]]\nserver_names = [\"::1\"]\n",
                "server_names entry \"::1\" is an IPv6 address without its brackets",
            ),
        ] {
            let e = parse(&format!("{cases}{text}")).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
            assert!(e.contains("\n  "), "{text}: no fix in {e}");
        }
        let e = parse("[[sites]]\nserver_names = [\"a.test\"]\nroot = \"/\"\ncases = [\"a\"]\n")
            .unwrap_err();
        assert!(e.contains("no site is the default"), "{e}");
    }
}
