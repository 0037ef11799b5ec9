//! The listing as a page: a breadcrumb, a parent link, a table sortable by name, size and
//! date through the query string, human sizes with the exact bytes on hover, UTC dates.

use crate::clock::utc;
use crate::entries::Entry;
use crate::view::{Key, View};
use plugin_api::helpers::{encode_query_value, html_escape, page_start};
use std::fmt::Write;

/// The page for the folder at `url` (decoded path bytes) listing `list` in `view`'s order.
pub fn render(url: &[u8], list: &[Entry], view: &View) -> String {
    let shown = String::from_utf8_lossy(url);
    let mut page = page_start(&format!("Index of {shown}"));
    page.reserve(list.len() * 260 + 1024);
    breadcrumb(&mut page, url);
    let _ = writeln!(page, "<main>\n<h1>Index of {}</h1>", html_escape(&shown));
    page.push_str("<table>\n");
    header(&mut page, view);
    page.push_str("<tbody>\n");
    if url != b"/" {
        page.push_str(
            "<tr class=\"dir up\"><td class=\"name\"><a href=\"../\">../ \
             <span class=\"muted\">(parent folder)</span></a></td><td class=\"size\"></td>\
             <td class=\"date\"></td></tr>\n",
        );
    }
    for e in list {
        row(&mut page, e);
    }
    page.push_str("</tbody>\n</table>\n</main>\n");
    footer(&mut page, list);
    page.push_str("</body>\n</html>\n");
    page
}

/// `Home / a / b /`: every folder above this one is a link.
fn breadcrumb(page: &mut String, url: &[u8]) {
    page.push_str("<nav aria-label=\"Breadcrumb\"><a href=\"/\">Home</a> /");
    let segs: Vec<&[u8]> = url
        .split(|&b| b == b'/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut href = String::from("/");
    for (i, seg) in segs.iter().enumerate() {
        let text = html_escape(&String::from_utf8_lossy(seg));
        if i + 1 == segs.len() {
            let _ = write!(page, " <span aria-current=\"page\">{text}</span> /");
        } else {
            let _ = write!(href, "{}/", link_segment(seg));
            let _ = write!(page, " <a href=\"{}\">{text}</a> /", html_escape(&href));
        }
    }
    page.push_str("</nav>\n");
}

/// Column headings whose links sort by that column; the current one shows its direction and
/// a second click reverses it.
fn header(page: &mut String, view: &View) {
    page.push_str("<thead><tr>");
    for key in Key::ALL {
        let (class, label) = match key {
            Key::Name => ("name", "Name"),
            Key::Size => ("size", "Size"),
            Key::Date => ("date", "Modified (UTC)"),
        };
        let current = view.key == key;
        let desc = if current {
            !view.desc
        } else {
            key.first_desc()
        };
        let order = if desc { "desc" } else { "asc" };
        let (aria, arrow) = match (current, view.desc) {
            (false, _) => ("", ""),
            // aria-sort says the order; the arrow is for the eye.
            (true, false) => (
                " aria-sort=\"ascending\"",
                " <span aria-hidden=\"true\">▲</span>",
            ),
            (true, true) => (
                " aria-sort=\"descending\"",
                " <span aria-hidden=\"true\">▼</span>",
            ),
        };
        let _ = write!(
            page,
            "<th class=\"{class}\"{aria}><a href=\"?sort={}&amp;order={order}\">{label}</a>{arrow}</th>",
            key.word()
        );
    }
    page.push_str("</tr></thead>\n");
}

/// A name for a link: `&` (and `=`, `+`, `;`, and `'`, which HTML would escape) encoded
/// too, so the link reads the same with or without HTML's entity decoding (lftp reads it
/// without); and `:`, so that a file named
/// `javascript:alert(1)` or `https:evil.example` is a path, not a scheme (RFC 3986 §4.2),
/// as nginx writes it.
pub(crate) fn link_segment(raw: &[u8]) -> String {
    encode_query_value(raw)
        .replace(':', "%3A")
        .replace('\'', "%27")
}

fn row(page: &mut String, e: &Entry) {
    let slash = if e.dir { "/" } else { "" };
    let _ = write!(
        page,
        "<tr{}><td class=\"name\"><a href=\"{}{slash}\">{}{slash}</a></td>",
        if e.dir { " class=\"dir\"" } else { "" },
        html_escape(&link_segment(&e.raw)),
        html_escape(&e.name)
    );
    if e.dir {
        page.push_str("<td class=\"size\">—</td>");
    } else {
        page.push_str("<td class=\"size\" title=\"");
        grouped(page, e.size);
        page.push_str(if e.size == 1 { " byte\">" } else { " bytes\">" });
        human(page, e.size);
        page.push_str("</td>");
    }
    let t = utc(e.mtime);
    page.push_str("<td class=\"date\"><time datetime=\"");
    t.iso(page);
    page.push_str("\">");
    t.short(page);
    page.push_str("</time></td></tr>\n");
}

/// `3 folders, 12 files` and the same listing as JSON.
fn footer(page: &mut String, list: &[Entry]) {
    let dirs = list.iter().filter(|e| e.dir).count();
    let files = list.len() - dirs;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let _ = writeln!(
        page,
        "<footer>{dirs} folder{}, {files} file{} · <a href=\"?format=json\">JSON</a></footer>",
        plural(dirs),
        plural(files)
    );
}

/// `1,234,567`.
fn grouped(out: &mut String, n: u64) {
    let digits = n.to_string();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
}

/// A size in B, KiB, MiB...
fn human(out: &mut String, size: u64) {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut s = size as f64;
    let mut u = 0;
    while s >= 1024.0 && u + 1 < UNITS.len() {
        s /= 1024.0;
        u += 1;
    }
    let _ = if u == 0 {
        write!(out, "{size} B")
    } else {
        write!(out, "{s:.1} {}", UNITS[u])
    };
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::view::Format;

    const BY_NAME: View = View {
        format: Format::Html,
        key: Key::Name,
        desc: false,
    };

    fn file(name: &[u8], size: u64) -> Entry {
        Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            raw: name.to_vec(),
            dir: false,
            size,
            mtime: 1_000_000_000,
        }
    }

    #[test]
    fn names_are_escaped_in_text_and_encoded_in_links() {
        let page = render(b"/d/", &[file(b"a <b>&\"c\" #1?.txt", 3)], &BY_NAME);
        assert!(
            page.contains("href=\"a%20%3Cb%3E%26%22c%22%20%231%3F.txt\""),
            "{page}"
        );
        assert!(
            page.contains(">a &lt;b&gt;&amp;&quot;c&quot; #1?.txt</a>"),
            "{page}"
        );
        assert!(page.contains("href=\"../\""));
    }

    #[test]
    fn an_apostrophe_is_percent_encoded_in_links_as_nginx_and_lighttpd_write_it() {
        // lftp and other listing readers take an href as it is written: `&#39;` in it was
        // read as the end of the name (`it&`).
        let page = render(b"/d/it's/", &[file(b"it's.txt", 3)], &BY_NAME);
        assert!(page.contains("href=\"it%27s.txt\""), "{page}");
        assert!(!page.contains("href=\"it&#39;"), "{page}");
    }

    #[test]
    fn a_name_that_looks_like_a_scheme_links_to_the_file() {
        let names = [
            &b"javascript:alert(1)"[..],
            b"https:evil.example",
            b"data:text,hi",
        ];
        let files: Vec<Entry> = names.iter().map(|n| file(n, 1)).collect();
        let page = render(b"/d/", &files, &BY_NAME);
        for href in [
            "href=\"javascript%3Aalert(1)\"",
            "href=\"https%3Aevil.example\"",
            "href=\"data%3Atext,hi\"",
        ] {
            assert!(page.contains(href), "{href} in {page}");
        }
    }

    #[test]
    fn a_name_that_is_not_utf8_links_to_its_bytes() {
        let page = render(b"/", &[file(b"caf\xe9", 1)], &BY_NAME);
        assert!(page.contains("href=\"caf%E9\">caf\u{fffd}</a>"), "{page}");
    }

    #[test]
    fn the_root_has_no_parent_link_and_the_breadcrumb_links_every_folder_above() {
        assert!(!render(b"/", &[], &BY_NAME).contains("../"));
        let page = render(b"/a b/c&d/e/", &[], &BY_NAME);
        assert!(
            page.contains(
                "<a href=\"/\">Home</a> / <a href=\"/a%20b/\">a b</a> / \
                 <a href=\"/a%20b/c%26d/\">c&amp;d</a> / <span aria-current=\"page\">e</span> /"
            ),
            "{page}"
        );
    }

    #[test]
    fn sizes_are_human_with_the_exact_bytes_on_hover() {
        let page = render(b"/", &[file(b"x", 1_234_567), file(b"y", 1)], &BY_NAME);
        assert!(
            page.contains("title=\"1,234,567 bytes\">1.2 MiB</td>"),
            "{page}"
        );
        assert!(page.contains("title=\"1 byte\">1 B</td>"), "{page}");
        assert!(page.contains("<time datetime=\"2001-09-09T01:46:40Z\">2001-09-09 01:46</time>"));
    }

    #[test]
    fn the_current_column_link_reverses_the_order() {
        let page = render(b"/", &[], &BY_NAME);
        assert!(page.contains("aria-sort=\"ascending\"><a href=\"?sort=name&amp;order=desc\">"));
        assert!(page.contains("<a href=\"?sort=size&amp;order=desc\">Size</a>"));
        let by_size = View {
            key: Key::Size,
            desc: true,
            ..BY_NAME
        };
        let page = render(b"/", &[], &by_size);
        assert!(
            page.contains(
                "<a href=\"?sort=size&amp;order=asc\">Size</a> <span aria-hidden=\"true\">▼</span>"
            ),
            "{page}"
        );
        assert!(page.contains("<a href=\"?sort=name&amp;order=asc\">Name</a>"));
    }
}
