//! Case `directory_no_index_file`: a directory without `index.html` gets a listing (the
//! chapter's `case_directory_no_index_file`, with its `list_dir` bug fixed and names escaped).

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use plugin_api::helpers::{html_escape, index_path};
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use std::ffi::CStr;
use std::time::SystemTime;

/// List a directory that has no index page.
pub struct DirectoryNoIndexFile;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {}

/// Characters escaped in a link's path segment (RFC 3986 pchar, plus what HTML cares about).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'/')
    .add(b'\'')
    .add(b'&');

struct Entry {
    name: String,
    dir: bool,
    size: u64,
    mtime: Option<SystemTime>,
}

fn entries(dir: &std::path::Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // Follow symlinks for what the entry is, as a client following the link would.
        let meta = std::fs::metadata(e.path()).or_else(|_| e.metadata());
        let (dir, size, mtime) = match meta {
            Ok(m) => (m.is_dir(), m.len(), m.modified().ok()),
            Err(_) => (false, 0, None),
        };
        out.push(Entry {
            name,
            dir,
            size,
            mtime,
        });
    }
    // Folders first, then by name, like lighttpd and nginx's autoindex.
    out.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

fn human(size: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut s = size as f64;
    let mut u = 0;
    while s >= 1024.0 && u + 1 < UNITS.len() {
        s /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{size} B")
    } else {
        format!("{s:.1} {}", UNITS[u])
    }
}

/// The listing page for `url_path` (already decoded), with `list` as its entries.
fn render(url_path: &str, list: &[Entry]) -> String {
    let title = format!("Index of {}", html_escape(url_path));
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title>\n<style>td{{padding:0 1em}} td.s{{text-align:right}}</style></head>\n<body>\n<h1>{title}</h1>\n<table>\n<tr><th>Name</th><th>Last modified</th><th>Size</th></tr>\n"
    );
    if url_path != "/" {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td class=\"s\">-</td></tr>\n");
    }
    for e in list {
        let slash = if e.dir { "/" } else { "" };
        let href = format!("{}{slash}", utf8_percent_encode(&e.name, SEGMENT));
        let shown = format!("{}{slash}", html_escape(&e.name));
        let when = e.mtime.map(httpdate::fmt_http_date).unwrap_or_default();
        let size = if e.dir {
            "-".to_string()
        } else {
            human(e.size)
        };
        page.push_str(&format!(
            "<tr><td><a href=\"{href}\">{shown}</a></td><td>{when}</td><td class=\"s\" title=\"{} bytes\">{size}</td></tr>\n",
            e.size
        ));
    }
    page.push_str("</table>\n</body>\n</html>\n");
    page
}

impl Case for DirectoryNoIndexFile {
    const NAME: &'static CStr = c"directory_no_index_file";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let _: Conf = settings.parse()?;
        Ok(DirectoryNoIndexFile)
    }

    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::Dir && !index_path(req.fs_path()).is_file()
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        let list = match entries(req.fs_path()) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return resp.error(403, "the folder cannot be listed").into()
            }
            Err(_) => return resp.error(500, "the folder cannot be read").into(),
        };
        let page = render(&req.path(), &list);
        resp.header("Content-Type", "text/html; charset=utf-8")
            .and_then(|_| resp.write(page.as_bytes()))
            .into()
    }
}

plugin_api::export_case!(DirectoryNoIndexFile);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_text_and_encoded_in_links() {
        let list = vec![Entry {
            name: "a <b>&\"c\" #1?.txt".into(),
            dir: false,
            size: 3,
            mtime: None,
        }];
        let page = render("/d/", &list);
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
    fn the_root_has_no_parent_link() {
        assert!(!render("/", &[]).contains("../"));
    }
}
