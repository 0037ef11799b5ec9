//! Case `directory_no_index_file`: a directory without an index page (`index.html`, or the
//! names in `index`) gets a listing (the chapter's `case_directory_no_index_file`, with its
//! `list_dir` bug fixed and names escaped), as a page or as JSON, sorted as the query
//! string asks.
//!
//! One directory read serves both forms: `entries::read`, then `order::sort`, then
//! `html::render` or `json::render`. Rendered listings are kept for `cache` seconds
//! while the folder is unchanged, one per path and [`view::View`].

mod clock;
mod entries;
mod html;
mod json;
mod order;
pub mod view;

use plugin_api::helpers::{
    first_index, index_names, needs_slash, redirect_to_folder, seconds, Seconds,
};
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use std::collections::HashMap;
use std::ffi::CStr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use view::{Format, View};

/// List a directory that has no index page.
pub struct DirectoryNoIndexFile {
    /// The names that make a folder an indexed one, left to directory_index_file.
    index: Vec<String>,
    /// How long a rendered listing may be reused while its folder is unchanged (zero: never).
    ttl: Duration,
    /// (URL path, view) → (when rendered, the folder's mtime and ctime then, the body).
    pages: Mutex<HashMap<(Vec<u8>, View), Cached>>,
}

struct Cached {
    at: Instant,
    stamp: Stamp,
    page: Arc<String>,
}

/// A folder's mtime and ctime (seconds, nanoseconds): they change whenever an entry is
/// added, removed or renamed.
type Stamp = (i64, i64, i64, i64);

/// Most listings kept.
const CACHE_CAP: usize = 256;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// Seconds a listing is reused while the folder's own mtime and ctime are unchanged (an
    /// entry added, removed or renamed shows at once; a file's new size within this time).
    /// 0 turns the cache off. Like lighttpd's dir-listing.cache.
    #[serde(default = "default_cache")]
    cache: f64,
    /// directory_index_file's `index`: a folder holding one of these is not listed.
    index: Option<Vec<String>>,
}

fn default_cache() -> f64 {
    1.0
}

fn folder_stamp(dir: &Path) -> Option<Stamp> {
    let st = rustix::fs::stat(dir).ok()?;
    Some((
        st.st_mtime,
        st.st_mtime_nsec as i64,
        st.st_ctime,
        st.st_ctime_nsec as i64,
    ))
}

/// The listing of `dir` (at `url`, beneath `root`) in `view`: read, sort, render. Public for
/// the benchmark in `examples/`.
pub fn listing(dir: &Path, root: &Path, url: &[u8], view: &View) -> std::io::Result<String> {
    let mut list = entries::read(dir, root)?;
    order::sort(&mut list, view.key, view.desc);
    Ok(match view.format {
        Format::Html => html::render(url, &list, view),
        Format::Json => json::render(&list),
    })
}

impl Case for DirectoryNoIndexFile {
    const NAME: &'static CStr = c"directory_no_index_file";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(DirectoryNoIndexFile {
            index: index_names(c.index)?,
            ttl: seconds("cache", c.cache, Seconds::ZeroOrMore)?,
            pages: Mutex::new(HashMap::new()),
        })
    }

    /// A folder without an index page: the two cases exclude each other, in either order.
    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::Dir && first_index(req.fs_path(), &self.index).is_none()
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        if needs_slash(req) {
            return redirect_to_folder(req, resp);
        }
        let accept = req.header_list("accept");
        let view = View::from_request(req.query(), accept.as_deref());
        let page = match self.page(req, view) {
            Ok(page) => page,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return resp.error(403, "the folder cannot be listed").into()
            }
            // Deleted since the host looked it up (the whole root, say): absent, as nginx says.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return resp.error(404, "the folder is gone").into()
            }
            Err(_) => return resp.error(500, "the folder cannot be read").into(),
        };
        let content_type = match view.format {
            Format::Html => "text/html; charset=utf-8",
            Format::Json => "application/json",
        };
        resp.header("Content-Type", content_type)
            // Without ?format= the Accept header chooses: caches must keep both forms apart.
            .and_then(|_| resp.header("Vary", "Accept"))
            .and_then(|_| resp.write(page.as_bytes()))
            .into()
    }
}

impl DirectoryNoIndexFile {
    /// The listing for this request, from the cache or freshly rendered (and kept).
    fn page(&self, req: &Request, view: View) -> std::io::Result<Arc<String>> {
        let key = (req.path_bytes().to_vec(), view);
        if let Some(page) = self.cached(&key, req.fs_path()) {
            return Ok(page);
        }
        let stamp = folder_stamp(req.fs_path());
        let page = Arc::new(listing(req.fs_path(), req.root(), &key.0, &view)?);
        if let Some(stamp) = stamp {
            self.keep(key, stamp, Arc::clone(&page));
        }
        Ok(page)
    }

    /// A listing rendered less than `ttl` ago for a folder that has not changed since.
    fn cached(&self, key: &(Vec<u8>, View), dir: &Path) -> Option<Arc<String>> {
        if self.ttl.is_zero() {
            return None;
        }
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        let c = pages.get(key)?;
        if c.at.elapsed() >= self.ttl {
            return None;
        }
        (folder_stamp(dir)? == c.stamp).then(|| Arc::clone(&c.page))
    }

    fn keep(&self, key: (Vec<u8>, View), stamp: Stamp, page: Arc<String>) {
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
        pages.insert(key, Cached { at, stamp, page });
    }
}

plugin_api::export_case!(DirectoryNoIndexFile);

#[cfg(test)]
mod case_tests;
