//! Precompressed sidecars (nginx's `gzip_static`, Caddy's `precompressed`): when a file's
//! answer is on its way and `file.br` (`.zst`, `.gz`) sits next to it, no older than the
//! file, that is sent instead, by sendfile, with no compression work per request.

use crate::coding::Coding;
use plugin_api::{Head, Kind, Request};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A sidecar to send.
pub struct Sidecar {
    pub path: PathBuf,
    pub coding: Coding,
    meta: Metadata,
}

impl Sidecar {
    /// A strong validator of the sidecar's own bytes, never equal to the file's: the host's
    /// form (mtime-size, the mtime's nanoseconds after a dot when it has any) of the
    /// sidecar, with the coding appended.
    pub fn etag(&self) -> String {
        let since = modified(&self.meta)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let nanos = match since.subsec_nanos() {
            0 => String::new(),
            n => format!(".{n:x}"),
        };
        format!(
            "\"{:x}{nanos}-{:x}-{}\"",
            since.as_secs(),
            self.meta.len(),
            self.coding.token()
        )
    }

    /// The sidecar's modification time, as an HTTP date; now, if it is later (RFC 9110
    /// §8.8.2.1: no Last-Modified later than the answer's Date).
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(modified(&self.meta).min(SystemTime::now()))
    }
}

/// The modification time, no earlier than 1970 as the host dates files (an HTTP date
/// cannot say earlier, and formatting one would panic).
fn modified(m: &Metadata) -> SystemTime {
    m.modified().unwrap_or(UNIX_EPOCH).max(UNIX_EPOCH)
}

/// Paths found without a sidecar lately: each a stat or two a request saved (nginx keeps
/// such misses in its open_file_cache). A sidecar added shows within `MISS_TTL`.
#[derive(Default)]
pub struct Misses(Mutex<HashMap<PathBuf, Miss>>);

/// When a path's answer was last found without sidecars, for which codings, and the length
/// and Last-Modified of the file it was then.
struct Miss {
    at: Instant,
    codings: Vec<Coding>,
    len: Option<u64>,
    stamp: Option<Vec<u8>>,
}

const MISS_TTL: Duration = Duration::from_secs(1);
const MISSES_KEPT: usize = 4096;

impl Misses {
    /// Was this answer (the same file, as its length and date say) found without any of
    /// `candidates` within the last second?
    fn recent(&self, req: &Request, head: &Head, candidates: &[Coding]) -> bool {
        let misses = self.0.lock().unwrap_or_else(|e| e.into_inner());
        misses.get(req.fs_path()).is_some_and(|m| {
            m.at.elapsed() < MISS_TTL
                && m.len == head.body_length()
                && m.stamp.as_deref() == head.header_ref("last-modified")
                && candidates.iter().all(|c| m.codings.contains(c))
        })
    }

    fn note(&self, req: &Request, head: &Head, candidates: &[Coding]) {
        let mut misses = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if misses.len() >= MISSES_KEPT {
            misses.clear();
        }
        let miss = Miss {
            at: Instant::now(),
            codings: candidates.to_vec(),
            len: head.body_length(),
            stamp: head.header("last-modified"),
        };
        misses.insert(req.fs_path().to_path_buf(), miss);
    }
}

/// The first of `candidates` with a fresh sidecar, when this answer is the request's file
/// as the host sends it.
pub fn find(req: &Request, head: &Head, candidates: &[Coding], misses: &Misses) -> Option<Sidecar> {
    if req.kind() != Kind::File || head.status() != 200 || misses.recent(req, head, candidates) {
        return None;
    }
    let found = look(req, head, candidates);
    if found.is_none() {
        misses.note(req, head, candidates);
    }
    found
}

fn look(req: &Request, head: &Head, candidates: &[Coding]) -> Option<Sidecar> {
    let file = file_answer(req, head)?;
    let path = req.fs_path();
    candidates.iter().find_map(|&coding| {
        let side = with_ext(path, coding.sidecar_ext());
        let meta = fresh(&side, &file)?;
        Some(Sidecar {
            path: side,
            coding,
            meta,
        })
    })
}

/// The file's metadata when the answer is that whole file, 200, untouched: its length and
/// `Last-Modified` are the file's. (A script or a listing at the same path has neither.)
fn file_answer(req: &Request, head: &Head) -> Option<Metadata> {
    if req.kind() != Kind::File || head.status() != 200 {
        return None;
    }
    let meta = std::fs::metadata(req.fs_path()).ok()?;
    // The host sends a file dated in the future with now as its Last-Modified.
    let stamp = httpdate::fmt_http_date(modified(&meta).min(SystemTime::now()));
    let same = head.body_length() == Some(meta.len())
        && head.header_ref("last-modified") == Some(stamp.as_bytes());
    same.then_some(meta)
}

/// `a.css` + `br` = `a.css.br`.
fn with_ext(path: &Path, ext: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// A regular file (not a link, which the host might refuse to open) no older than the file,
/// that this worker can read: the host answers 500 when a replacement body cannot be
/// opened, and an unreadable `file.zst` must not cost the readable file its answer.
fn fresh(side: &Path, file: &Metadata) -> Option<Metadata> {
    let meta = std::fs::symlink_metadata(side).ok()?;
    let usable = meta.is_file() && modified(&meta) >= modified(file) && readable(side);
    usable.then_some(meta)
}

/// Readable with this process's effective user and groups (access(2), AT_EACCESS).
fn readable(path: &Path) -> bool {
    use rustix::fs::{accessat, Access, AtFlags, CWD};
    accessat(CWD, path, Access::READ_OK, AtFlags::EACCESS).is_ok()
}
