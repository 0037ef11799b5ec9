//! Error answers: every error page the host sends, for its own refusals and for a case's
//! `send_error`, is built here (status, reason, the escaped path and a message).

use crate::errors::RequestError;
use crate::http::reason;
use crate::reply::{Body, Reply};
use plugin_api::helpers::{html_escape, html_escape_into};
use std::fmt::Write;
use std::sync::Arc;

/// The host's answer for `status`: its HTML page naming `path` and `message`.
pub fn reply(status: u16, path: &[u8], message: &str) -> Reply {
    let mut r = Reply::new(status, Body::Shared(render_kept(status, path, message)));
    r.headers.reserve(crate::reply::HEADER_ROOM);
    r.header_const("Content-Type", "text/html; charset=utf-8")
}

/// The answer to a request the host refuses.
pub fn refusal(err: RequestError, path: &[u8]) -> Reply {
    reply(err.status(), path, err.message())
}

/// The longest path and message a thread keeps a page for (a 405's message holds the
/// client's method, which may be as long as a request line).
const KEPT_TEXT_MAX: usize = 256;

/// What a kept page was rendered from: status, path, message.
type PageKey = (u16, Box<[u8]>, Box<str>);

/// The page for (`status`, `path`, `message`), shared with the last ones this thread
/// rendered when it is among them: the same few addresses miss again and again (a site
/// without a favicon, a scanner's list). Shared, not copied: a page is about 1.4 KB, past
/// the allocator's small sizes, and its copy cost about 400 instructions.
fn render_kept(status: u16, path: &[u8], message: &str) -> Arc<[u8]> {
    thread_local! {
        static KEPT: std::cell::RefCell<crate::recent::Recent<PageKey, Arc<[u8]>>> =
            const { std::cell::RefCell::new(crate::recent::Recent::new()) };
    }
    if path.len() > KEPT_TEXT_MAX || message.len() > KEPT_TEXT_MAX {
        return render(status, path, message).into();
    }
    KEPT.with_borrow_mut(|kept| {
        kept.get_or(
            |(s, p, m)| *s == status && **p == *path && **m == *message,
            || {
                let key = (status, path.into(), message.into());
                (key, render(status, path, message).into())
            },
        )
    })
}

/// An HTML error page for `status`: what happened in a sentence, the request path (escaped),
/// the case's message, what to try, and links home and to the parent folder; drawn with the
/// same stylesheet as the folder listings less its table rules, no external assets.
pub fn render(status: u16, path: &[u8], message: &str) -> Vec<u8> {
    let (_, next) = advice(status);
    let mut page = String::with_capacity(2048);
    push_opening(&mut page, status);
    // A head too broken to name a path (400, 414) shows none.
    if !path.is_empty() {
        page.push_str("<p>Address: <code>");
        html_escape_into(&mut page, &plugin_api::helpers::lossy(path));
        page.push_str("</code></p>\n");
    }
    if !message.is_empty() {
        page.push_str("<p class=\"muted\">The server says: ");
        html_escape_into(&mut page, message.trim_end_matches('.'));
        page.push_str(".</p>\n");
    }
    page.push_str("<p>");
    page.push_str(next);
    page.push_str("</p>\n</main>\n<nav><a href=\"/\">Home</a>");
    parent_link(&mut page, path);
    page.push_str("</nav>\n<footer>");
    page.push_str(crate::http::server());
    page.push_str("</footer>\n</body>\n</html>\n");
    page.into_bytes()
}

/// The part of a page that depends on the status alone (the head with its stylesheet, the
/// heading, what happened), made once per status per thread: most of every error page.
fn push_opening(page: &mut String, status: u16) {
    thread_local! {
        // The statuses the server sends: a few dozen at most, found by a scan.
        static OPENINGS: std::cell::RefCell<Vec<(u16, String)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    OPENINGS.with_borrow_mut(|o| {
        let i = match o.iter().position(|(s, _)| *s == status) {
            Some(i) => i,
            None => {
                o.push((status, opening(status)));
                o.len() - 1
            }
        };
        page.push_str(&o[i].1);
    })
}

fn opening(status: u16) -> String {
    let title = format!("{status} {}", reason(status));
    let mut page = plugin_api::helpers::page_start_with(&title, plugin_api::helpers::PAGE_STYLE);
    let what = advice(status).0;
    let _ = writeln!(
        page,
        "<main>\n<h1>{}</h1>\n<p class=\"lead\">{what}</p>",
        html_escape(&title)
    );
    page
}

/// What happened, in a sentence, and what to try, for `status`.
fn advice(status: u16) -> (&'static str, &'static str) {
    match status {
        301 | 302 | 303 | 307 | 308 => ("This page has moved.", "Follow its new address."),
        400 => (
            "The server could not understand this request.",
            "Check the address for stray characters, such as a % not followed by two hex digits.",
        ),
        401 => (
            "This page needs a user name and password.",
            "Sign in with the ones you were given, or ask the site's owner for them.",
        ),
        403 => (
            "You may not see this page.",
            "It leads outside the site or the server may not read it; go back to a page you know.",
        ),
        404 => (
            "There is nothing at this address.",
            "Check the address for typos, or look in the parent folder.",
        ),
        405 => (
            "This address does not take that kind of request.",
            "Open it with an ordinary link instead.",
        ),
        408 => ("The request took too long to arrive.", "Try again."),
        412 => (
            "A condition of the request did not hold.",
            "Reload the page.",
        ),
        413 => (
            "The request is too large for this server.",
            "Send less data.",
        ),
        414 => ("The address is too long.", "Use a shorter address."),
        416 => (
            "The part of the file asked for is not in it.",
            "Reload the whole file.",
        ),
        421 => (
            "This server does not answer for that address over this connection.",
            "Open the address directly, in a new window.",
        ),
        431 => (
            "The request headers are too large.",
            "Clear this site's cookies, then try again.",
        ),
        501 => (
            "The server does not know this method.",
            "Use GET, HEAD or POST.",
        ),
        503 => (
            "The server is too busy to answer now.",
            "Try again in a moment.",
        ),
        504 => ("A script took too long to answer.", "Try again later."),
        s if s < 500 => (
            "The request could not be answered.",
            "Check the address, then try again.",
        ),
        _ => (
            "Something went wrong on the server.",
            "Try again later; the server's log says more.",
        ),
    }
}

/// ` · <a href="/a/">Parent folder</a>` for a path below a folder; nothing for `/` or a
/// name in the root, whose parent is Home already. Nor
/// for a path with `%` or `?` in it: pages are drawn for decoded paths and, when the host
/// refused the target itself (400, 414, 416...), for the target as sent, and a `%` or `?`
/// could be either a name's own or the target's encoding and query; no link beats a link
/// to the wrong place (`/a%20b/` made `/a%2520b/`).
fn parent_link(page: &mut String, path: &[u8]) {
    if path.contains(&b'%') || path.contains(&b'?') {
        return;
    }
    // The folder above the path: "/a/b" and "/a/b/" both have "/a/"; "/" has none.
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let Some(last) = trimmed.iter().rposition(|&b| b == b'/') else {
        return;
    };
    if !path.starts_with(b"/") || trimmed.is_empty() || last == 0 {
        return;
    }
    page.push_str(" · <a href=\"/");
    for seg in trimmed[..last]
        .split(|&b| b == b'/')
        .filter(|s| !s.is_empty())
    {
        html_escape_into(page, &plugin_api::helpers::encode_segment(seg));
        page.push('/');
    }
    page.push_str("\">Parent folder</a>");
}

#[cfg(test)]
mod tests {
    #[test]
    fn kept_pages_come_back_exactly_as_rendered_for_their_own_address() {
        let long = format!("/{}", "a".repeat(super::KEPT_TEXT_MAX));
        let mut asks: Vec<(u16, Vec<u8>, &str)> = (0..40)
            .map(|i| (404, format!("/p{}", i % 20).into_bytes(), ""))
            .collect();
        // Near misses of a kept one: another status, message, or a path one byte longer.
        asks.extend([
            (404, b"/p1".to_vec(), ""),
            (410, b"/p1".to_vec(), ""),
            (404, b"/p1".to_vec(), "gone"),
            (404, b"/p11".to_vec(), ""),
            (404, long.clone().into_bytes(), ""),
            (404, long.clone().into_bytes(), "x"),
            (405, b"/p1".to_vec(), &long),
            (405, b"/p1".to_vec(), &long[1..]),
        ]);
        for (status, path, message) in &asks {
            assert_eq!(
                *super::render_kept(*status, path, message),
                *super::render(*status, path, message),
                "{status} {}",
                String::from_utf8_lossy(path)
            );
        }
    }

    #[test]
    fn the_path_and_message_are_escaped() {
        let page = String::from_utf8(super::render(404, b"/<script>", "a & b")).unwrap();
        assert!(page.contains("<h1>404 Not Found</h1>"));
        assert!(page.contains("/&lt;script&gt;"));
        assert!(page.contains("a &amp; b"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn a_page_says_what_happened_what_to_try_and_links_home_and_up() {
        let page = String::from_utf8(super::render(404, b"/a b/c.txt", "not found")).unwrap();
        assert!(page.contains("<title>404 Not Found</title>"), "{page}");
        assert!(page.contains("There is nothing at this address."), "{page}");
        assert!(page.contains("<code>/a b/c.txt</code>"), "{page}");
        assert!(page.contains("The server says: not found."), "{page}");
        assert!(page.contains("<a href=\"/\">Home</a> · <a href=\"/a%20b/\">Parent folder</a>"));
        assert!(page.contains("color-scheme:light dark") && page.contains("name=\"viewport\""));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external assets"
        );
        let folder = String::from_utf8(super::render(403, b"/a/b/", "")).unwrap();
        assert!(
            folder.contains("<a href=\"/a/\">Parent folder</a>"),
            "{folder}"
        );
        assert!(!folder.contains("The server says"));
        let root = String::from_utf8(super::render(500, b"/", "")).unwrap();
        assert!(root.contains("Something went wrong") && !root.contains("Parent folder"));
        // A name in the root: its parent is Home, linked once.
        let top = String::from_utf8(super::render(404, b"/nope", "")).unwrap();
        assert!(!top.contains("Parent folder"), "{top}");
        // The page's words are in <main>; a head with no path shows no empty address.
        let bare = String::from_utf8(super::render(400, b"", "")).unwrap();
        assert!(bare.contains("<main>\n<h1>400 Bad Request</h1>"), "{bare}");
        assert!(bare.contains("</p>\n</main>\n<nav>"), "{bare}");
        assert!(!bare.contains("Address:"), "{bare}");
    }

    #[test]
    fn a_parent_link_escapes_what_percent_encoding_leaves() {
        let page = String::from_utf8(super::render(404, b"/a&lt;b'/c", "")).unwrap();
        assert!(page.contains("href=\"/a&amp;lt;b&#39;/\""), "{page}");
    }

    #[test]
    fn a_path_that_may_still_be_encoded_gets_no_parent_link_rather_than_a_wrong_one() {
        for path in [&b"/dir%20sp/%00"[..], b"/a/b?q=/c", b"/%2F%2Fevil.com/x"] {
            let page = String::from_utf8(super::render(400, path, "")).unwrap();
            assert!(!page.contains("Parent folder"), "{page}");
            assert!(page.contains("<a href=\"/\">Home</a>"), "{page}");
        }
    }

    #[test]
    fn a_hostile_path_cannot_break_out_of_the_parent_link() {
        let page = String::from_utf8(super::render(404, b"/\"><script>/x", "")).unwrap();
        assert!(page.contains("href=\"/%22%3E%3Cscript%3E/\""), "{page}");
        assert!(!page.contains("<script>"), "{page}");
    }
}
