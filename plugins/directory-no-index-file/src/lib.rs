//! Case `directory_no_index_file`: a directory without `index.html` gets a listing (the
//! chapter's `case_directory_no_index_file`, with its `list_dir` bug fixed and names escaped).

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use plugin_api::helpers::{html_escape, index_path, seconds, Seconds};
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use std::time::{Duration, Instant};

/// List a directory that has no index page.
pub struct DirectoryNoIndexFile {
    /// How long a rendered page may be reused while its folder is unchanged (zero: never).
    ttl: Duration,
    /// URL path → (when rendered, the folder's mtime and ctime then, the page).
    pages: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    at: Instant,
    stamp: (i64, i64, i64, i64),
    page: Arc<String>,
}

/// Most pages kept.
const CACHE_CAP: usize = 256;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// Seconds a listing is reused while the folder's own mtime and ctime are unchanged (an
    /// entry added, removed or renamed shows at once; a file's new size within this time).
    /// 0 turns the cache off. Like lighttpd's dir-listing.cache.
    #[serde(default = "default_cache")]
    cache: f64,
}

fn default_cache() -> f64 {
    1.0
}

/// The folder's mtime and ctime: they change whenever an entry is added, removed or renamed.
fn folder_stamp(dir: &std::path::Path) -> Option<(i64, i64, i64, i64)> {
    let st = rustix::fs::stat(dir).ok()?;
    Some((
        st.st_mtime,
        st.st_mtime_nsec as i64,
        st.st_ctime,
        st.st_ctime_nsec as i64,
    ))
}

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
    use rustix::fs::{AtFlags, Mode, OFlags};
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(&fd)? {
        let e = e?;
        let raw = e.file_name().to_bytes();
        if raw.starts_with(b".") {
            continue;
        }
        // statat relative to the open folder: one name to resolve, not the whole path.
        // Symlinks are followed for what the entry is, as a client following the link would.
        let st = rustix::fs::statat(&fd, e.file_name(), AtFlags::empty())
            .or_else(|_| rustix::fs::statat(&fd, e.file_name(), AtFlags::SYMLINK_NOFOLLOW));
        let (dir, size, mtime) = match st {
            Ok(st) => (
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory,
                st.st_size.max(0) as u64,
                Some(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_secs(st.st_mtime.max(0) as u64),
                ),
            ),
            Err(_) => (false, 0, None),
        };
        out.push(Entry {
            name: String::from_utf8_lossy(raw).into_owned(),
            dir,
            size,
            mtime,
        });
    }
    // Folders first, then by name, like lighttpd and nginx's autoindex.
    out.sort_unstable_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

/// Append a modification time as `YYYY-MM-DD HH:MM` (UTC), as nginx's autoindex shows it.
fn stamp(out: &mut String, t: SystemTime) {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    );
}

/// Append a size in B, KiB, MiB...
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

/// The listing page for `url_path` (already decoded), with `list` as its entries.
fn render(url_path: &str, list: &[Entry]) -> String {
    let title = format!("Index of {}", html_escape(url_path));
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title>\n<style>td{{padding:0 1em}} td:last-child{{text-align:right}}</style></head>\n<body>\n<h1>{title}</h1>\n<table>\n<tr><th>Name</th><th>Last modified</th><th>Size</th></tr>\n"
    );
    if url_path != "/" {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td>-</td></tr>\n");
    }
    page.reserve(list.len() * 120);
    for e in list {
        let slash = if e.dir { "/" } else { "" };
        let _ = write!(
            page,
            "<tr><td><a href=\"{}{slash}\">{}{slash}</a></td><td>",
            utf8_percent_encode(&e.name, SEGMENT),
            html_escape(&e.name)
        );
        if let Some(t) = e.mtime {
            stamp(&mut page, t);
        }
        page.push_str("</td><td>");
        if e.dir {
            page.push('-');
        } else {
            human(&mut page, e.size);
        }
        page.push_str("</td></tr>\n");
    }
    page.push_str("</table>\n</body>\n</html>\n");
    page
}

impl Case for DirectoryNoIndexFile {
    const NAME: &'static CStr = c"directory_no_index_file";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(DirectoryNoIndexFile {
            ttl: seconds("cache", c.cache, Seconds::ZeroOrMore)?,
            pages: Mutex::new(HashMap::new()),
        })
    }

    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::Dir && !index_path(req.fs_path()).is_file()
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        let url = req.path().into_owned();
        let page = match self.cached(&url, req.fs_path()) {
            Some(page) => page,
            None => {
                let stamp = folder_stamp(req.fs_path());
                let list = match entries(req.fs_path()) {
                    Ok(l) => l,
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        return resp.error(403, "the folder cannot be listed").into()
                    }
                    Err(_) => return resp.error(500, "the folder cannot be read").into(),
                };
                let page = Arc::new(render(&url, &list));
                if let Some(stamp) = stamp {
                    self.keep(url, stamp, Arc::clone(&page));
                }
                page
            }
        };
        resp.header("Content-Type", "text/html; charset=utf-8")
            .and_then(|_| resp.write(page.as_bytes()))
            .into()
    }
}

impl DirectoryNoIndexFile {
    /// A page rendered less than `ttl` ago for a folder that has not changed since.
    fn cached(&self, url: &str, dir: &std::path::Path) -> Option<Arc<String>> {
        if self.ttl.is_zero() {
            return None;
        }
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        let c = pages.get(url)?;
        if c.at.elapsed() >= self.ttl {
            return None;
        }
        (folder_stamp(dir)? == c.stamp).then(|| Arc::clone(&c.page))
    }

    fn keep(&self, url: String, stamp: (i64, i64, i64, i64), page: Arc<String>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if pages.len() >= CACHE_CAP {
            pages.retain(|_, c| c.at.elapsed() < self.ttl);
            if pages.len() >= CACHE_CAP {
                pages.clear();
            }
        }
        let at = Instant::now();
        pages.insert(url, Cached { at, stamp, page });
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
    fn times_are_shown_as_utc_date_and_minute() {
        let mut s = String::new();
        stamp(
            &mut s,
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_999_602),
        );
        assert_eq!(s, "2026-11-30 00:46");
        s.clear();
        stamp(
            &mut s,
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400),
        );
        assert_eq!(s, "2000-02-29 00:00");
    }

    #[test]
    fn the_root_has_no_parent_link() {
        assert!(!render("/", &[]).contains("../"));
    }
}

#[cfg(test)]
mod case_tests;
