//! A rule's `to`: checked once at start-up (an absolute http(s) URL, or a local path that can
//! never become another host), then filled in for each request with percent-encoded pieces.

use percent_encoding::{percent_encode, AsciiSet, CONTROLS};
use plugin_api::helpers::{encode_path, encode_query_value};

/// Bytes that are not URL characters: encoded wherever they come from.
const NOT_URL: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The request's own query, appended as it came (it is already encoded); only bytes that
/// cannot be in a header are encoded, and `#`, which would end it.
const RAW_QUERY: &AsciiSet = &NOT_URL.add(b'#');

/// A capture group named in `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Group {
    Index(usize),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// Text from `to`, already in URL form.
    Text(String),
    /// A capture, and whether it lands in the query.
    Capture(Group, bool),
}

/// The capture groups a regex rule offers, to check `$n` and `${name}` against.
pub struct Groups<'a> {
    /// How many numbered groups there are (group 0, the whole match, not counted).
    pub count: usize,
    pub names: Vec<&'a str>,
}

/// A checked `to`.
#[derive(Clone, Debug)]
pub struct Target {
    pieces: Vec<Piece>,
    local: bool,
}

/// What a request fills in: captures, the rest of the path after a prefix, its query.
pub struct Fill<'a> {
    pub capture: &'a dyn Fn(&Group) -> Option<&'a [u8]>,
    pub rest: Option<&'a [u8]>,
    pub query: Option<&'a [u8]>,
}

impl Target {
    /// Check `to`. `groups` is `None` outside regex rules, where captures are refused;
    /// `appends` says the rest of the path will be appended (prefix rules).
    pub fn parse(to: &str, groups: Option<&Groups>, appends: bool) -> Result<Target, String> {
        let pieces = pieces(to)?;
        check_groups(&pieces, groups)?;
        let local = check_shape(to, &pieces)?;
        if appends
            && pieces
                .iter()
                .any(|p| matches!(p, Piece::Text(t) if t.contains(['?', '#'])))
        {
            return Err(format!("to = {to:?}: a prefix rule appends the rest of the path to `to`, so `to` cannot have a query or fragment (use keep_query for the query)"));
        }
        Ok(Target { pieces, local })
    }

    /// The Location for one request.
    pub fn fill(&self, fill: &Fill) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Capture(g, in_query) => {
                    let bytes = (fill.capture)(g).unwrap_or_default();
                    out.push_str(&if *in_query {
                        encode_query_value(bytes)
                    } else {
                        encode_path(bytes)
                    });
                }
            }
        }
        if let Some(rest) = fill.rest {
            append_rest(&mut out, rest);
        }
        if let Some(query) = fill.query.filter(|q| !q.is_empty()) {
            out = with_query(out, query);
        }
        if self.local {
            squeeze_leading_slashes(&mut out);
        }
        out
    }
}

/// Split `to` into text and captures: `$1`..`$9`, `${n}`, `${name}`; `$$` is a `$`.
fn pieces(to: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = to.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            text.push(c);
            continue;
        }
        let group = match chars.next() {
            Some((_, '$')) => {
                text.push('$');
                continue;
            }
            Some((_, d @ '1'..='9')) => Group::Index(d as usize - '0' as usize),
            Some((j, '{')) => braced(to, j + 1, &mut chars)?,
            _ => return Err(format!("to = {to:?}: the '$' at byte {i} starts no capture; expected $1..$9, ${{name}}, or $$ for a '$'")),
        };
        let in_query = pieces
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if t.contains('?')))
            || text.contains('?');
        if !text.is_empty() {
            pieces.push(Piece::Text(url_text(to, &std::mem::take(&mut text))?));
        }
        pieces.push(Piece::Capture(group, in_query));
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(url_text(to, &text)?));
    }
    Ok(pieces)
}

/// The group inside `${...}`, starting at byte `start` of `to`.
fn braced(
    to: &str,
    start: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices>,
) -> Result<Group, String> {
    let end = chars
        .by_ref()
        .find(|&(_, c)| c == '}')
        .map(|(k, _)| k)
        .ok_or_else(|| format!("to = {to:?}: '${{' without its closing '}}'"))?;
    let inner = &to[start..end];
    if let Ok(n) = inner.parse::<usize>() {
        return Ok(Group::Index(n));
    }
    let word = inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if inner.is_empty() || !word {
        return Err(format!(
            "to = {to:?}: ${{{inner}}} is not a group; expected a number or a name of letters, digits and '_'"
        ));
    }
    Ok(Group::Name(inner.to_string()))
}

/// Literal text of `to` in URL form: spaces and other non-URL bytes encoded; a `%` must
/// already start an escape (`%20`), so an encoded `to` is kept as written.
fn url_text(to: &str, text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    for (i, _) in text.match_indices('%') {
        let hex = b.get(i + 1..i + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Err(format!(
                "to = {to:?}: a '%' must start an escape like %20; write %25 for a '%' itself"
            ));
        }
    }
    Ok(percent_encode(b, NOT_URL).to_string())
}

/// Every capture names a group the regex has; none outside regex rules.
fn check_groups(pieces: &[Piece], groups: Option<&Groups>) -> Result<(), String> {
    for p in pieces {
        let Piece::Capture(g, _) = p else { continue };
        let Some(groups) = groups else {
            return Err(format!(
                "{} in `to`: captures only work in regex rules (write $$ for a '$')",
                show(g)
            ));
        };
        let exists = match g {
            Group::Index(n) => *n >= 1 && *n <= groups.count,
            Group::Name(name) => groups.names.contains(&name.as_str()),
        };
        if !exists {
            return Err(format!(
                "{} in `to`: the regex has no such group (it has {} numbered group(s){})",
                show(g),
                groups.count,
                named_list(&groups.names)
            ));
        }
    }
    Ok(())
}

fn show(g: &Group) -> String {
    match g {
        Group::Index(n) => format!("${n}"),
        Group::Name(name) => format!("${{{name}}}"),
    }
}

fn named_list(names: &[&str]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(", named {}", names.join(", "))
    }
}

/// `to` is an absolute http(s) URL whose host no capture chooses, or a local path that starts
/// with one `/` (never `//` or `/\`, which browsers read as another host). `true`: local.
fn check_shape(to: &str, pieces: &[Piece]) -> Result<bool, String> {
    let head = match pieces.first() {
        Some(Piece::Text(t)) => t.as_str(),
        _ => "",
    };
    let whole = pieces.len() == 1;
    let lower = head.to_ascii_lowercase();
    let expected = "expected an absolute http(s) URL (\"https://example.com/new\") or a path on this site starting with one '/' (\"/new\")";
    if let Some(rest) = ["http://", "https://"]
        .iter()
        .find_map(|s| lower.strip_prefix(s))
    {
        check_authority(rest, whole)?;
        return Ok(false);
    }
    if to.starts_with("//") || to.starts_with("/\\") {
        return Err(format!(
            "to = {to:?} would send browsers to another host (an open redirect); {expected}"
        ));
    }
    if !head.starts_with('/') {
        return Err(format!("to = {head:?}...: {expected}, before any capture"));
    }
    Ok(true)
}

/// The host part of an absolute `to`: present, plain (no user@), and not left to a capture.
fn check_authority(rest: &str, whole: bool) -> Result<(), String> {
    let end = rest.find(['/', '?', '#']);
    if end.is_none() && !whole {
        return Err("to: captures cannot choose the host of an absolute URL; end the host with '/' before any capture".into());
    }
    let authority = &rest[..end.unwrap_or(rest.len())];
    if !valid_authority(authority) {
        return Err(format!(
            "to: {authority:?} is not a plain host[:port]: a name or IPv4 address, or an IPv6 address in brackets ([2001:db8::1]), then a port from 1 to 65535 (no user@, no spaces)"
        ));
    }
    Ok(())
}

/// `host[:port]` as a browser takes it (RFC 3986 §3.2): labels of letters, digits, '-' and
/// '_' (a final '.' allowed), or an IPv6 address in brackets; a port of 1 to 65535.
fn valid_authority(authority: &str) -> bool {
    let (host_ok, after) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, after)) => (addr.parse::<std::net::Ipv6Addr>().is_ok(), after),
            None => return false,
        },
        None => {
            let (host, after) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
            let name = host.strip_suffix('.').unwrap_or(host);
            let label = |l: &str| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            };
            (name.split('.').all(label), after)
        }
    };
    let port_ok = match after.strip_prefix(':') {
        None => after.is_empty(),
        Some(p) => p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0),
    };
    host_ok && port_ok
}

/// `to` + the rest of a prefix match, with one `/` between them.
fn append_rest(out: &mut String, rest: &[u8]) {
    if rest.is_empty() {
        return;
    }
    while out.ends_with('/') && rest.starts_with(b"/") {
        out.pop();
    }
    out.push_str(&encode_path(rest));
}

/// The request's query joined to the Location's own (`&`), before any fragment.
fn with_query(loc: String, query: &[u8]) -> String {
    let (base, frag) = match loc.find('#') {
        Some(i) => loc.split_at(i),
        None => (loc.as_str(), ""),
    };
    let sep = if base.contains('?') { "&" } else { "?" };
    format!("{base}{sep}{}{frag}", percent_encode(query, RAW_QUERY))
}

/// A local Location starts with exactly one `/`, whatever a capture began with.
fn squeeze_leading_slashes(loc: &mut String) {
    let extra = loc.len() - loc.trim_start_matches('/').len();
    if extra > 1 {
        loc.drain(..extra - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(to: &str) -> Result<Target, String> {
        Target::parse(to, None, false)
    }

    fn filled(t: &Target, caps: &[&[u8]], rest: Option<&[u8]>, query: Option<&[u8]>) -> String {
        let capture = |g: &Group| match g {
            Group::Index(n) => caps.get(n - 1).copied(),
            Group::Name(_) => caps.first().copied(),
        };
        t.fill(&Fill {
            capture: &capture,
            rest,
            query,
        })
    }

    #[test]
    fn absolute_and_local_targets_are_accepted() {
        for to in [
            "https://example.com",
            "HTTPS://example.com/a?b#c",
            "http://[::1]:8080/x",
            "/",
            "/new?x=1",
        ] {
            assert!(plain(to).is_ok(), "{to}");
        }
    }

    #[test]
    fn targets_that_could_leave_the_site_by_accident_are_refused() {
        for to in [
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "new.html",
            "",
            "ftp://example.com/",
            "https://good.example@evil.example/",
            "https:///path",
            "http:/x",
            // Hosts no browser would follow (sent as they were before this was checked).
            "http://::1/x",
            "http://[::1/x",
            "http://[::1]]/x",
            "http://[1::2::3]/x",
            "http://a[b]c/x",
            "http://example.com:99999/x",
            "http://example.com:/x",
            "http://a..b/x",
        ] {
            assert!(plain(to).is_err(), "{to} was accepted");
        }
        for to in [
            "http://[::1]:8080/x",
            "https://Example.COM./",
            "http://127.0.0.1:80/a?b",
            "https://my_host-1.example",
        ] {
            assert!(plain(to).is_ok(), "{to} was refused");
        }
    }

    #[test]
    fn captures_are_refused_outside_regex_rules_and_must_name_real_groups() {
        let e = plain("/u/$1").unwrap_err();
        assert!(e.contains("only work in regex rules"), "{e}");
        let groups = Groups {
            count: 1,
            names: vec!["id"],
        };
        assert!(Target::parse("/u/$1/${id}/${1}", Some(&groups), false).is_ok());
        for bad in ["/u/$2", "/u/${name}", "/u/${0}", "/u/$x", "/u/${id"] {
            assert!(Target::parse(bad, Some(&groups), false).is_err(), "{bad}");
        }
        let e = Target::parse("/u/$2", Some(&groups), false).unwrap_err();
        assert!(e.contains("1 numbered group(s), named id"), "{e}");
        assert_eq!(
            filled(&plain("/price$$").unwrap(), &[], None, None),
            "/price$"
        );
    }

    #[test]
    fn a_capture_cannot_choose_the_host_or_start_the_target() {
        let groups = Groups {
            count: 1,
            names: vec![],
        };
        for bad in ["https://$1", "https://$1.example.com/", "$1", "${1}/x"] {
            let e = Target::parse(bad, Some(&groups), false).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(Target::parse("https://example.com/$1", Some(&groups), false).is_ok());
    }

    #[test]
    fn captures_are_percent_encoded_for_where_they_land() {
        let groups = Groups {
            count: 2,
            names: vec![],
        };
        let t = Target::parse("/new/$1?q=$2", Some(&groups), false).unwrap();
        let loc = filled(&t, &["a b/ü?#%".as_bytes(), b"x&y=z+w"], None, None);
        assert_eq!(loc, "/new/a%20b/%C3%BC%3F%23%25?q=x%26y%3Dz%2Bw");
    }

    #[test]
    fn a_local_target_never_starts_with_two_slashes_whatever_a_capture_holds() {
        let groups = Groups {
            count: 1,
            names: vec![],
        };
        let t = Target::parse("/$1", Some(&groups), false).unwrap();
        assert_eq!(
            filled(&t, &[b"//evil.example/x"], None, None),
            "/evil.example/x"
        );
        assert_eq!(filled(&t, &[b"\\evil"], None, None), "/%5Cevil");
    }

    #[test]
    fn the_rest_of_a_prefix_and_the_query_are_appended() {
        let t = Target::parse("https://blog.example.com/", None, true).unwrap();
        assert_eq!(
            filled(&t, &[], Some(b"/a b/c"), Some(b"x=1&y=%20")),
            "https://blog.example.com/a%20b/c?x=1&y=%20"
        );
        let t = plain("/new?lang=en#top").unwrap();
        assert_eq!(filled(&t, &[], None, Some(b"x=1")), "/new?lang=en&x=1#top");
        assert!(Target::parse("/new?x", None, true).is_err());
    }

    #[test]
    fn literal_text_is_put_in_url_form_and_bad_escapes_are_refused() {
        assert_eq!(
            filled(&plain("/a b/%C3%BC/ü").unwrap(), &[], None, None),
            "/a%20b/%C3%BC/%C3%BC"
        );
        assert!(plain("/100%").unwrap_err().contains("%25"));
        assert!(plain("/%zz").is_err());
    }
}
