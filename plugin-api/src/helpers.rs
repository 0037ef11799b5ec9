//! Helpers shared by two or more cases (the chapter's `base_case`), and nothing else.

use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `index.html` inside a directory: the default index page (the cases that take an
/// `index` setting use [`index_names`] and [`first_index`]).
pub fn index_path(dir: &Path) -> PathBuf {
    dir.join("index.html")
}

/// The `index` setting of directory_index_file and directory_no_index_file: file names in
/// the folder itself (no `/`, not `.` or `..`, no NUL), at least one; `index.html` when the
/// setting is left out.
pub fn index_names(names: Option<Vec<String>>) -> Result<Vec<String>, String> {
    let names = names.unwrap_or_else(|| vec!["index.html".into()]);
    if names.is_empty() {
        return Err("`index` is empty: name at least one file, such as \"index.html\"".into());
    }
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() || n == "." || n == ".." || n.contains(['/', '\0']) {
            return Err(format!(
                "`index` entry {} ({n:?}) is not a file name: give a name in the folder itself, such as \"index.htm\", without '/'",
                i + 1
            ));
        }
    }
    Ok(names)
}

/// The first of `names` that is a file in `dir`.
pub fn first_index<'a>(dir: &Path, names: &'a [String]) -> Option<&'a str> {
    names
        .iter()
        .find(|n| dir.join(n).is_file())
        .map(String::as_str)
}

/// A folder named without its trailing slash (`/docs`): relative links in its page would
/// resolve against the parent, so it is answered with a redirect to `/docs/`.
pub fn needs_slash(req: &crate::Request) -> bool {
    req.kind() == crate::Kind::Dir && !req.path_bytes().ends_with(b"/")
}

/// 301 to the folder's address with its slash, the query kept. The Location is built from
/// the decoded, normalised path the host gives, percent-encoded, never from the raw target
/// (directory_index_file and directory_no_index_file).
pub fn redirect_to_folder(req: &crate::Request, resp: &mut crate::Response) -> crate::Outcome {
    let mut loc = encode_path(req.path_bytes());
    loc.push('/');
    if !req.query().is_empty() {
        loc.push('?');
        loc.push_str(&String::from_utf8_lossy(req.query()));
    }
    let body = format!(
        "{start}<h1>301 Moved Permanently</h1>\n<p>This folder is at <a href=\"{href}\">{href}</a>.</p>\n</body>\n</html>\n",
        start = page_start("301 Moved Permanently"),
        href = html_escape(&loc)
    );
    resp.status(301)
        .and_then(|_| resp.header("Location", &loc))
        .and_then(|_| resp.header("Content-Type", "text/html; charset=utf-8"))
        .and_then(|_| resp.write(body.as_bytes()))
        .into()
}

/// Bytes as text: borrowed when they are UTF-8 (checked the fast way, a word at a time),
/// else with U+FFFD for what is not.
pub fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match crate::export::utf8_text(b) {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => String::from_utf8_lossy(b),
    }
}

/// Escape text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    html_escape_into(&mut out, s);
    out
}

/// [`html_escape`], appended to `out`: runs without a special character are copied whole.
pub fn html_escape_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        // An ASCII byte is always a character boundary.
        out.push_str(&s[start..i]);
        out.push_str(entity);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// The rules of [`STYLE`] every page uses, as a literal for `concat!`.
macro_rules! page_rules {
    () => {
        concat!(
            ":root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;",
            "--bg:#fff;--link:#0550ae;--hover:#f6f8fa}",
            "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;",
            "--line:#3d444d;--bg:#0d1117;--link:#4493f8;--hover:#151b23}}",
            "*{box-sizing:border-box}",
            "body{margin:0 auto;max-width:60rem;padding:1rem 1.25rem;color:var(--fg);",
            "background:var(--bg);font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}",
            "a{color:var(--link);text-decoration:none}a:hover,a:focus{text-decoration:underline}",
            // Links in muted text differ from it by more than their colour (WCAG 1.4.1).
            "nav a,footer a,p a{text-decoration:underline}",
            "h1{font-size:1.375rem;line-height:1.3;margin:.25rem 0 1rem;overflow-wrap:anywhere}",
            "nav{color:var(--muted);overflow-wrap:anywhere}",
            "code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;",
            "overflow-wrap:anywhere}",
            ".lead{font-size:1.125rem}.muted,footer{color:var(--muted)}",
            "footer{margin-top:2rem;font-size:.875rem}",
        )
    };
}

/// The stylesheet of every page the server itself draws (error pages and folder listings):
/// the system font, light and dark (`color-scheme`), long names wrapped, no external assets.
pub const STYLE: &str = concat!(
    page_rules!(),
    "table{width:100%;border-collapse:collapse}",
    "th,td{padding:.4rem .6rem;text-align:left;vertical-align:baseline}",
    "th{border-bottom:2px solid var(--line);white-space:nowrap;font-weight:600}",
    "td{border-bottom:1px solid var(--line)}tbody tr:hover{background:var(--hover)}",
    ".name{width:100%;overflow-wrap:anywhere}.dir a{font-weight:600}",
    ".size,.date{white-space:nowrap;text-align:right;color:var(--muted);",
    "font-variant-numeric:tabular-nums}",
    "@media (max-width:40rem){body{padding:.75rem}th,td{padding:.4rem .3rem}",
    "td.date{font-size:.8125rem}}",
);

/// [`STYLE`] without the table rules: for pages without a table, such as error pages, which
/// are sent often and should stay small.
pub const PAGE_STYLE: &str = concat!(
    page_rules!(),
    "@media (max-width:40rem){body{padding:.75rem}}"
);

/// The start of a page drawn with [`STYLE`]: doctype, charset, viewport, the title (escaped
/// here) and the stylesheet, ending just inside `<body>`.
pub fn page_start(title: &str) -> String {
    page_start_with(title, STYLE)
}

/// [`page_start`] with another stylesheet, such as [`PAGE_STYLE`].
pub fn page_start_with(title: &str, style: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{style}</style>\n</head>\n<body>\n",
        html_escape(title)
    )
}

/// A `status` setting for a case that answers with an error page (no_file, always_fail).
pub fn error_status(status: u16) -> Result<u16, String> {
    if (400..=599).contains(&status) {
        Ok(status)
    } else {
        Err(format!(
            "status = {status} is not an error status (400-599)"
        ))
    }
}

/// A `prefix` setting: the URL path a case answers, and everything below it (hello,
/// request_info).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// Check a configured prefix; it must start with `/`. A trailing `/` is dropped.
    pub fn new(prefix: &str) -> Result<Prefix, String> {
        if !prefix.starts_with('/') {
            return Err(format!("prefix = {prefix:?} must start with '/'"));
        }
        Ok(Prefix(prefix.trim_end_matches('/').to_string()))
    }

    /// Does `path` equal the prefix or lie below it (`/hello`, `/hello/x`, not `/helloworld`)?
    pub fn matches(&self, path: &str) -> bool {
        path == self.0
            || path
                .strip_prefix(&self.0)
                .is_some_and(|r| r.starts_with('/'))
    }
}

/// What a decoded path segment keeps as it is in a URL: RFC 3986's `pchar` (unreserved,
/// sub-delims, `:` and `@`). `/`, `%`, `?`, `#`, backslashes, spaces, controls and non-ASCII
/// bytes are encoded.
const SEGMENT_CHARS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// A path's characters: a segment's, and `/`.
const PATH_CHARS: &AsciiSet = &SEGMENT_CHARS.remove(b'/');

/// One decoded path segment percent-encoded for a URL (`/` encoded too): the host's folder
/// redirect builds its Location from these.
pub fn encode_segment(decoded: &[u8]) -> String {
    percent_encode(decoded, SEGMENT_CHARS).to_string()
}

/// A decoded path (what [`crate::Request::path_bytes`] gives) percent-encoded again for a
/// URL, `/` kept: for a Location or a rewrite target (redirect, try_files).
pub fn encode_path(decoded: &[u8]) -> String {
    percent_encode(decoded, PATH_CHARS).to_string()
}

/// Decoded bytes for one value inside a URL's query: as [`encode_path`], and also `&`, `=`,
/// `+` and `;`, which would split the query.
pub fn encode_query_value(decoded: &[u8]) -> String {
    const QUERY_VALUE: &AsciiSet = &PATH_CHARS.add(b'&').add(b'=').add(b'+').add(b';');
    percent_encode(decoded, QUERY_VALUE).to_string()
}

/// The client's address, an IPv4 client on an IPv6 socket (`::ffff:a.b.c.d`) as IPv4, so
/// one rule written for IPv4 covers both (status, access). `None` if the host sent no address.
pub fn client_ip(req: &crate::Request) -> Option<std::net::IpAddr> {
    use std::net::IpAddr;
    match req.client_addr().parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// Which values a seconds setting accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seconds {
    /// Zero turns the feature off (directory_no_index_file's `cache`, cgi_file's
    /// `queue_timeout`).
    ZeroOrMore,
    /// A real wait (cgi_file's `timeout`).
    Positive,
}

/// A setting in seconds, as a `Duration`; the error names the key and what it accepts.
pub fn seconds(key: &str, value: f64, accept: Seconds) -> Result<Duration, String> {
    let d = Duration::try_from_secs_f64(value).ok();
    match (d, accept) {
        (Some(d), Seconds::ZeroOrMore) => Ok(d),
        (Some(d), Seconds::Positive) if value > 0.0 => Ok(d),
        (_, Seconds::ZeroOrMore) => Err(format!("{key} = {value} must be zero or more seconds")),
        (_, Seconds::Positive) => Err(format!(
            "{key} = {value} must be a positive number of seconds"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_borrows_utf8_and_replaces_the_rest() {
        assert!(matches!(
            lossy("/ä/b".as_bytes()),
            std::borrow::Cow::Borrowed("/ä/b")
        ));
        assert_eq!(lossy(b"/a\xff"), "/a\u{fffd}");
        // ASCII of every length around a word, and a stray byte after a long ASCII run.
        for n in 0..40 {
            let ascii = &b"/abcdefghijklmnopqrstuvwxyz0123456789-_.~"[..n];
            assert!(matches!(lossy(ascii), std::borrow::Cow::Borrowed(s) if s.as_bytes() == ascii));
            let mut bad = ascii.to_vec();
            bad.push(0x80);
            assert_eq!(lossy(&bad).chars().last(), Some('\u{fffd}'), "{n}");
        }
    }

    #[test]
    fn html_escape_escapes_markup_and_quotes() {
        assert_eq!(
            html_escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_page_starts_with_an_escaped_title_a_viewport_and_the_stylesheet() {
        let p = page_start("<x>");
        assert!(p.contains("<title>&lt;x&gt;</title>"), "{p}");
        assert!(p.contains("name=\"viewport\""));
        assert!(p.contains("color-scheme:light dark") && p.ends_with("<body>\n"));
    }

    #[test]
    fn index_path_appends_index_html() {
        assert_eq!(index_path(Path::new("/r/d")), Path::new("/r/d/index.html"));
    }

    #[test]
    fn error_status_accepts_400_to_599_only() {
        assert_eq!(error_status(404), Ok(404));
        assert_eq!(error_status(599), Ok(599));
        assert_eq!(
            error_status(302).unwrap_err(),
            "status = 302 is not an error status (400-599)"
        );
        assert!(error_status(600).is_err());
    }

    #[test]
    fn prefix_matches_itself_and_below_only() {
        let p = Prefix::new("/hello/").unwrap();
        assert!(p.matches("/hello"));
        assert!(p.matches("/hello/x"));
        assert!(!p.matches("/helloworld"));
        assert!(!p.matches("/"));
        assert!(Prefix::new("/").unwrap().matches("/anything"));
        assert_eq!(
            Prefix::new("nope").unwrap_err(),
            "prefix = \"nope\" must start with '/'"
        );
    }

    #[test]
    fn paths_and_query_values_are_encoded_for_where_they_land() {
        let decoded = "/a b/ü?#%\\x&y=z+w;v".as_bytes();
        assert_eq!(encode_path(decoded), "/a%20b/%C3%BC%3F%23%25%5Cx&y=z+w;v");
        assert_eq!(encode_segment(b"a/b c"), "a%2Fb%20c");
        assert_eq!(
            encode_query_value(decoded),
            "/a%20b/%C3%BC%3F%23%25%5Cx%26y%3Dz%2Bw%3Bv"
        );
    }

    #[test]
    fn client_ip_reads_ipv4_mapped_addresses_as_ipv4() {
        use crate::testing::{TestCase, TestRequest};
        // client_ip needs a Request, which only a case sees: ask one that reports it.
        struct Ip;
        impl crate::Case for Ip {
            const NAME: &'static std::ffi::CStr = c"ip";
            fn create(_: crate::Host, _: crate::Settings) -> Result<Self, String> {
                Ok(Ip)
            }
            fn test(&self, _: &crate::Request) -> bool {
                true
            }
            fn act(&self, req: &crate::Request, resp: &mut crate::Response) -> crate::Outcome {
                let ip = client_ip(req).map(|ip| ip.to_string()).unwrap_or_default();
                resp.write(ip.as_bytes()).into()
            }
        }
        let case = TestCase::<Ip>::create("{}").unwrap();
        let ip = |addr: &str| case.act(&TestRequest::get("/").client(addr, 1)).text();
        assert_eq!(ip("::ffff:10.1.2.3"), "10.1.2.3");
        assert_eq!(ip("10.1.2.3"), "10.1.2.3");
        assert_eq!(ip("::1"), "::1");
        assert_eq!(ip("2001:db8::1"), "2001:db8::1");
        assert_eq!(ip("not an address"), "");
    }

    #[test]
    fn seconds_refuse_negative_nan_and_too_large_values() {
        let zero = Seconds::ZeroOrMore;
        assert_eq!(seconds("cache", 0.0, zero), Ok(Duration::ZERO));
        assert_eq!(seconds("cache", 1.5, zero), Ok(Duration::from_millis(1500)));
        assert_eq!(
            seconds("cache", -1.0, zero).unwrap_err(),
            "cache = -1 must be zero or more seconds"
        );
        assert!(seconds("cache", f64::NAN, zero).is_err());
        assert!(seconds("cache", 1e300, zero).is_err());
        assert_eq!(
            seconds("timeout", 0.0, Seconds::Positive).unwrap_err(),
            "timeout = 0 must be a positive number of seconds"
        );
        assert!(seconds("timeout", f64::INFINITY, Seconds::Positive).is_err());
        assert_eq!(
            seconds("timeout", 2.0, Seconds::Positive),
            Ok(Duration::from_secs(2))
        );
    }
}
