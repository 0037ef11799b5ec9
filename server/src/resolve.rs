//! URL path → file system path confined to the document root: decoding, normalising, and the
//! one place where path safety is decided (a path never escapes the root).

use crate::shared_file::{Meta, SharedFile};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a path was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed: bad percent-encoding, NUL, `..` above the root (400).
    BadRequest,
    /// Leads outside the root through a symlink (403).
    Forbidden,
    /// The server is out of open files or memory just now (logged): the path may well name
    /// a file, so a 404 for it becomes a 503.
    Unavailable,
}

/// A decoded, normalised URL path: `/seg1/seg2` (empty for the root), every segment
/// non-empty, never `.` or `..`, holding neither `/` nor NUL.
#[derive(Debug, PartialEq, Eq)]
pub struct Normal(Vec<u8>);

impl Normal {
    /// The path relative to the root: `seg1/seg2`, empty for the root itself.
    pub fn rel(&self) -> &[u8] {
        self.0.get(1..).unwrap_or_default()
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &[u8]> {
        self.rel().split(|&b| b == b'/').filter(|s| !s.is_empty())
    }

    /// The path as cases see it: `/` for the root, a trailing slash when asked for.
    pub fn into_url_path(mut self, trailing: bool) -> Vec<u8> {
        if self.0.is_empty() || trailing {
            self.0.push(b'/');
        }
        self.0
    }
}

/// Percent-decode a path and normalise it: `.` and empty segments dropped, `..` pops one
/// segment. Returns the path and whether it ended in a slash; `..` above the root, `%00` and
/// bad escapes are refused. Decoded `%2f` separates segments like `/`.
pub fn normalise(raw: &[u8]) -> Result<(Normal, bool), Refusal> {
    if raw.first() != Some(&b'/') {
        return Err(Refusal::BadRequest);
    }
    let mut p = decode(raw)?;
    // A last `.` or `..` segment leaves a folder: `/a/b/.` is `/a/b/` (RFC 3986 §5.2.4).
    let trailing = p.len() > 1 && (p.ends_with(b"/") || ends_in_dot_segment(&p));
    squeeze(&mut p)?;
    Ok((Normal(p), trailing))
}

/// Is the last segment `.` or `..`?
pub fn ends_in_dot_segment(p: &[u8]) -> bool {
    matches!(p.rsplit(|&b| b == b'/').next(), Some(b"." | b".."))
}

/// Normalise a decoded path that starts with `/` in place: the result is never longer, so
/// each kept segment (with its leading slash) is moved down over what was dropped.
fn squeeze(p: &mut Vec<u8>) -> Result<(), Refusal> {
    let (mut w, mut r) = (0, 0);
    while r < p.len() {
        let start = r + 1;
        let end = p[start..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(p.len(), |i| start + i);
        match &p[start..end] {
            b"" | b"." => {}
            b".." => {
                w = p[..w]
                    .iter()
                    .rposition(|&b| b == b'/')
                    .ok_or(Refusal::BadRequest)?
            }
            _ => {
                if w != r {
                    p.copy_within(r..end, w);
                }
                w += end - r;
            }
        }
        r = end;
    }
    p.truncate(w);
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Strict percent-decoding: `%` must be followed by two hex digits; NUL is refused.
pub fn decode(raw: &[u8]) -> Result<Vec<u8>, Refusal> {
    // Most paths have no escape at all: copied whole.
    if !raw.contains(&b'%') && !raw.contains(&0) {
        return Ok(raw.to_vec());
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(Refusal::BadRequest);
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.contains(&0) {
        return Err(Refusal::BadRequest);
    }
    Ok(out)
}

/// The normalised URL path (`/a/b/` form) from segments.
/// The document root, opened once.
pub struct Root {
    pub path: PathBuf,
    fd: OwnedFd,
    /// Distinguishes this root's entries in the per-thread open-file cache.
    id: u64,
    /// How long an opened file and its stat are reused (zero: never).
    cache_ttl: Duration,
    /// How long a lookup that found no file (a missing path, a folder) is reused.
    kind_ttl: Duration,
}

/// Longest a lookup that found no regular file is reused: a burst of requests for one
/// missing path (a flood of 404s, a folder's absent index.html under load) shares one
/// lookup, while a file created just after a 404 is still found by the next request.
const KIND_TTL: Duration = Duration::from_millis(1);

/// Most files each event loop keeps open.
const CACHE_CAP: usize = 1024;

/// How often each event loop closes the files whose entries are past their time.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Close this event loop's kept files whose time is up, every `SWEEP_EVERY`, for as long as
/// the loop runs: a file deleted or replaced under the root gives its disk space back
/// within `open_file_cache` and two seconds even when no request comes (entries are
/// otherwise only dropped when the cache is full or their path is asked for again; nginx's
/// open_file_cache has `inactive` for this).
pub async fn close_expired_files() {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let now = Instant::now();
        OPEN_FILES.with_borrow_mut(|roots| {
            for files in roots.values_mut() {
                files.retain(|_, (_, expires)| now < *expires);
            }
        });
    }
}

/// Root id → path relative to the root → the open file and when its entry expires.
type FileCache = HashMap<u64, HashMap<Box<[u8]>, (OpenFile, Instant), FastHash>, FastHash>;

/// The paths are files that exist (a miss is never kept here), so the keys are not the
/// client's to choose; foldhash is seeded per process all the same.
type FastHash = foldhash::fast::RandomState;

thread_local! {
    /// Open regular files by (root id, relative path): each event loop has its own, so no
    /// lock is taken. An entry lives for `cache_ttl`, and each use checks that its file is
    /// unchanged and not deleted (`cached_file`).
    static OPEN_FILES: RefCell<FileCache> = RefCell::new(FileCache::default());
    /// What paths that are not regular files were found to be (mostly: missing), trusted
    /// for a moment (`KIND_TTL`): under load, a repeated 404, a folder's missing index or
    /// a single-page app's fallback costs no system call.
    static KINDS: RefCell<Kinds> = RefCell::new(Kinds::new());
    /// Each root as this event loop last found it at its path (`current_dir`).
    static ROOT_DIRS: RefCell<HashMap<u64, RootDir, FastHash>> = RefCell::new(HashMap::default());
}

/// How often each event loop checks that the folder at a root's path is still the one it
/// opened: a release moved away and a new folder made in its place (or the root removed
/// and made again) is served within this, as nginx, lighttpd and Caddy serve it at once.
const ROOT_CHECK: Duration = Duration::from_secs(1);

/// A root's folder as one event loop found it at the root's path: the descriptor it opens
/// files beneath when the folder there was replaced (None: the root's own, so a root
/// dropped by a reload leaves no descriptor here), and when it looked.
struct RootDir {
    fd: Option<std::rc::Rc<OwnedFd>>,
    checked: Instant,
    /// Nothing was at the root's path at the last look (said once in the log).
    gone: bool,
}

/// How many non-file lookups each event loop keeps (a power of 2), and the longest path kept.
const KIND_SLOTS: usize = 256;
const KIND_PATH_MAX: usize = 256;

/// A direct-mapped table: one entry per slot, picked by a per-process seeded hash of the
/// root and the path, so clients cannot aim many paths at one slot, and a flood of new
/// paths only replaces entries of this table.
struct Kinds {
    hasher: FastHash,
    slots: Vec<Option<KindEntry>>,
}

struct KindEntry {
    root: u64,
    rel: Box<[u8]>,
    kind: Kind,
    expires: Instant,
}

impl Kinds {
    fn new() -> Kinds {
        Kinds {
            hasher: FastHash::default(),
            slots: (0..KIND_SLOTS).map(|_| None).collect(),
        }
    }

    fn slot(&self, root: u64, rel: &[u8]) -> usize {
        use std::hash::BuildHasher;
        (self.hasher.hash_one((root, rel)) as usize) & (KIND_SLOTS - 1)
    }
}

/// What a path is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Dir,
    Other,
}

impl Root {
    pub fn open(path: &Path, cache_ttl: Duration) -> std::io::Result<Root> {
        static IDS: AtomicU64 = AtomicU64::new(1);
        // Decide (and say) at start-up whether the kernel or the fallback confines paths.
        let _ = openat2_usable();
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            path: path.to_path_buf(),
            fd,
            id: IDS.fetch_add(1, Ordering::Relaxed),
            cache_ttl,
            kind_ttl: cache_ttl.min(KIND_TTL),
        })
    }

    /// The folder now at the root's path, when it is no longer the one opened at start-up
    /// (None: the root's own descriptor). Looked at once per `ROOT_CHECK` per event loop;
    /// when it changed, the files this loop kept from the old folder are let go.
    fn current_dir(&self) -> Option<std::rc::Rc<OwnedFd>> {
        let now = Instant::now();
        let known = ROOT_DIRS.with_borrow(|d| {
            d.get(&self.id)
                .map(|r| (r.fd.clone(), now < r.checked + ROOT_CHECK, r.gone))
        });
        let (fd, was_gone) = match known {
            Some((fd, true, _)) => return fd,
            Some((fd, false, gone)) => (fd, gone),
            None => (None, false),
        };
        let there = rustix::fs::stat(&self.path);
        let gone = self.gone(matches!(there, Err(rustix::io::Errno::NOENT)), was_gone);
        let fd = match self.replaced(there.ok(), fd.as_deref().unwrap_or(&self.fd)) {
            Some(new) => {
                log::info!(
                    "document root {} was replaced: serving the folder now there",
                    self.path.display()
                );
                self.forget_all();
                Some(std::rc::Rc::new(new))
            }
            None => fd,
        };
        let dir = RootDir {
            fd: fd.clone(),
            checked: now,
            gone,
        };
        ROOT_DIRS.with_borrow_mut(|d| d.insert(self.id, dir));
        fd
    }

    /// `gone`: nothing is at the root's path now; said in the log when that changes. The
    /// folder it was is still answered from (moved away in a deploy, its files; deleted, 404).
    fn gone(&self, gone: bool, was: bool) -> bool {
        if gone && !was {
            log::error!(
                "document root {} is no longer there: answering from the folder it was (404 where that was deleted) until one is put at its path",
                self.path.display()
            );
        } else if was && !gone {
            log::warn!("document root {} is back", self.path.display());
        }
        gone
    }

    /// The folder at the root's path (`now_there`, its stat), opened, when it is another
    /// than `dir`.
    fn replaced(&self, now_there: Option<rustix::fs::Stat>, dir: &OwnedFd) -> Option<OwnedFd> {
        let now_there = now_there?;
        let ours = rustix::fs::fstat(dir).ok()?;
        if (now_there.st_dev, now_there.st_ino) == (ours.st_dev, ours.st_ino) {
            return None;
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::open(&self.path, flags, Mode::empty()).ok()
    }

    /// Let go of every file and kind this event loop keeps for this root.
    fn forget_all(&self) {
        OPEN_FILES.with_borrow_mut(|c| c.remove(&self.id));
        KINDS.with_borrow_mut(|k| {
            for slot in k.slots.iter_mut() {
                if slot.as_ref().is_some_and(|e| e.root == self.id) {
                    *slot = None;
                }
            }
        });
    }

    /// Open `rel` (relative to the root) without ever leaving it: `RESOLVE_BENEATH` makes the
    /// kernel refuse `..` and symlinks that lead outside.
    pub fn open_beneath(&self, rel: &[u8], flags: OFlags) -> Result<OwnedFd, OpenError> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        if !openat2_usable() {
            return self.open_by_realpath(rel, flags);
        }
        let dir = self.current_dir();
        let r = rustix::fs::openat2(
            dir.as_deref().unwrap_or(&self.fd),
            OsStr::from_bytes(rel),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        );
        match r {
            // No openat2 here (Linux < 5.6, a seccomp filter, valgrind): fall back for good.
            Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {
                if !OPENAT2_MISSING.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "openat2 is not available on this system: paths are confined with realpath instead (Linux 5.6 or later does it in the kernel)"
                    );
                }
                self.open_by_realpath(rel, flags)
            }
            // An absolute symlink: RESOLVE_BENEATH refuses every one, even one that leads
            // back inside the root (nginx, lighttpd and Caddy serve those).
            Err(rustix::io::Errno::XDEV) => self.open_resolved(rel, flags),
            r => r.map_err(open_error),
        }
    }

    /// Resolve `rel`'s symlinks in userspace and, when that ends inside the root, open the
    /// resolved path with the kernel refusing any symlink on the way: one swapped in since
    /// is refused, not followed.
    fn open_resolved(&self, rel: &[u8], flags: OFlags) -> Result<OwnedFd, OpenError> {
        let real = self.canonical(rel)?;
        let inner = real
            .strip_prefix(&self.path)
            .map_err(|_| OpenError::Outside)?;
        let inner = if inner.as_os_str().is_empty() {
            Path::new(".")
        } else {
            inner
        };
        let dir = self.current_dir();
        rustix::fs::openat2(
            dir.as_deref().unwrap_or(&self.fd),
            inner,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(open_error)
    }

    /// The fallback: resolve every symlink in userspace, refuse results outside the root,
    /// then open the resolved path (with the final component not followed again).
    fn open_by_realpath(&self, rel: &[u8], flags: OFlags) -> Result<OwnedFd, OpenError> {
        let real = self.canonical(rel)?;
        if !real.starts_with(&self.path) {
            return Err(OpenError::Outside);
        }
        rustix::fs::open(
            &real,
            flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(open_error)
    }

    /// `rel` under the root with every symlink resolved (realpath).
    fn canonical(&self, rel: &[u8]) -> Result<PathBuf, OpenError> {
        std::fs::canonicalize(self.path.join(OsStr::from_bytes(rel))).map_err(|e| {
            match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
                Some(errno) => open_error(errno),
                None => OpenError::Io(e),
            }
        })
    }

    /// The path relative to the root, if `abs` lies textually inside it.
    pub fn relative<'a>(&self, abs: &'a Path) -> Option<&'a Path> {
        abs.strip_prefix(&self.path).ok()
    }

    /// Open `rel` beneath the root once: what is there, plus the open file and its stat for
    /// a regular file (kept so sending it costs no second open), or `Forbidden` when a
    /// symlink leads outside. An open file is reused for `cache_ttl` (the open-file cache),
    /// anything else (a missing path, a folder) for `kind_ttl`.
    pub fn lookup(&self, rel: &[u8]) -> Result<Found, Refusal> {
        if self.cache_ttl.is_zero() {
            return self.lookup_uncached(rel);
        }
        let now = Instant::now();
        if self.cache_ttl > ROOT_CHECK {
            // Kept files outlive a root check: look first whether the root was replaced.
            self.current_dir();
        }
        if let Some(found) = self
            .cached_file(rel, now)
            .or_else(|| self.kept_kind(rel, now))
        {
            return Ok(found);
        }
        let found = self.lookup_uncached(rel)?;
        match &found.file {
            Some(f) => self.keep_file(rel, f, now),
            None => {
                self.forget_file(rel);
                self.keep_kind(rel, found.kind, now);
            }
        }
        Ok(found)
    }

    /// A fresh entry of the open-file cache, when its file is as it was and still has a
    /// name: one fstat of the open file instead of an open beneath the root, a stat and a
    /// close (and a read for a small file kept in memory; a stat of the path would cost
    /// three times the fstat). A file written in place, deleted, or replaced by a rename
    /// (which unlinks the old one) is looked up afresh at once; only one renamed away,
    /// or with another link, while a new file takes its name shows after the entry's
    /// time (nginx's open_file_cache trusts an entry for `open_file_cache_valid`, 60 s;
    /// lighttpd's stat cache for a second).
    fn cached_file(&self, rel: &[u8], now: Instant) -> Option<Found> {
        let file = OPEN_FILES.with(|c| {
            let c = c.borrow();
            let (file, expires) = c.get(&self.id)?.get(rel)?;
            (now < *expires).then(|| file.clone())
        })?;
        let st = rustix::fs::fstat(&*file.file).ok()?;
        (st.st_nlink > 0 && Version::of(&st) == file.version).then_some(Found {
            kind: Kind::File,
            file: Some(file),
        })
    }

    fn keep_file(&self, rel: &[u8], f: &OpenFile, now: Instant) {
        OPEN_FILES.with(|c| {
            let mut c = c.borrow_mut();
            let files = c.entry(self.id).or_default();
            if files.len() >= CACHE_CAP {
                files.retain(|_, (_, expires)| now < *expires);
                if files.len() >= CACHE_CAP {
                    files.clear();
                }
            }
            files.insert(rel.into(), (f.clone(), now + self.cache_ttl));
        });
    }

    /// Close the file kept for `rel` when the path no longer names one (its disk space
    /// goes back now if it was deleted).
    fn forget_file(&self, rel: &[u8]) {
        OPEN_FILES.with(|c| {
            if let Some(files) = c.borrow_mut().get_mut(&self.id) {
                files.remove(rel);
            }
        });
    }

    /// What `rel` was found to be (missing, a folder...) when that is still fresh.
    fn kept_kind(&self, rel: &[u8], now: Instant) -> Option<Found> {
        KINDS.with_borrow(|k| {
            let e = k.slots[k.slot(self.id, rel)].as_ref()?;
            (e.root == self.id && *e.rel == *rel && now < e.expires).then_some(Found {
                kind: e.kind,
                file: None,
            })
        })
    }

    /// Keep a lookup that found no regular file, in the slot its path hashes to (a path the
    /// client chose replaces one other entry at most, never an open file).
    fn keep_kind(&self, rel: &[u8], kind: Kind, now: Instant) {
        if rel.len() > KIND_PATH_MAX {
            return;
        }
        KINDS.with_borrow_mut(|k| {
            let i = k.slot(self.id, rel);
            k.slots[i] = Some(KindEntry {
                root: self.id,
                rel: rel.into(),
                kind,
                expires: now + self.kind_ttl,
            });
        });
    }

    fn lookup_uncached(&self, rel: &[u8]) -> Result<Found, Refusal> {
        // O_NONBLOCK: opening a fifo must not wait for a writer. O_NOCTTY: never adopt a tty.
        let readable = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let (opened, can_read) = match self.open_beneath(rel, readable) {
            // Unreadable (permissions, a socket): still find out what it is, but keep no
            // file, so sending it opens it again and answers 403 (nginx's answer) instead
            // of a 200 head over a descriptor that cannot be read.
            Err(OpenError::Io(_)) => (self.open_beneath(rel, OFlags::PATH), false),
            r => (r, true),
        };
        match opened {
            Ok(fd) => match rustix::fs::fstat(&fd) {
                Ok(st) => {
                    let kind = kind_of_mode(st.st_mode);
                    let file = (kind == Kind::File && can_read).then(|| OpenFile::new(fd, &st));
                    Ok(Found { kind, file })
                }
                Err(_) => Ok(Found::missing()),
            },
            Err(OpenError::Outside) => Err(Refusal::Forbidden),
            Err(OpenError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Ok(self.unsearchable(rel, &e))
            }
            Err(OpenError::Io(e)) if out_of_resources(&e) => {
                if crate::throttle::due(&RESOURCES_LOGGED, 1) {
                    log::error!(
                        "cannot open {}: {e}; a path that needs a file is answered 503 (said once a second at most)",
                        self.join(rel).display()
                    );
                }
                Err(Refusal::Unavailable)
            }
            Err(OpenError::Missing) | Err(OpenError::Io(_)) => Ok(Found::missing()),
        }
    }

    /// A path behind a folder the server may not search: there may be a file, so it is
    /// refused (403, nginx's and lighttpd's answer) rather than called missing, and the
    /// operator is told, as nginx logs `open() ... failed (13: Permission denied)`.
    fn unsearchable(&self, rel: &[u8], e: &std::io::Error) -> Found {
        if crate::throttle::due(&SEARCH_LOGGED, 1) {
            log::warn!(
                "cannot open {}: {e} (the server's user must be able to search every folder above it; said once a second at most)",
                self.join(rel).display()
            );
        }
        Found {
            kind: Kind::Other,
            file: None,
        }
    }

    /// Test helper: just the kind.
    #[cfg(test)]
    pub fn kind_of(&self, path: &Normal) -> Result<Kind, Refusal> {
        self.lookup(path.rel()).map(|f| f.kind)
    }

    /// `root/seg1/seg2...` as a file system path.
    pub fn join(&self, rel: &[u8]) -> PathBuf {
        let root = self.path.as_os_str().as_bytes();
        let mut p = Vec::with_capacity(root.len() + 1 + rel.len());
        p.extend_from_slice(root);
        if !rel.is_empty() {
            if !root.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(rel);
        }
        PathBuf::from(std::ffi::OsString::from_vec(p))
    }
}

/// The root must be a folder this process (a worker, as `user`) may enter: otherwise every
/// file in it would be a silent 404 (nginx logs each 403). Checked where the chain is
/// loaded, so start-up (the master's check runs as `user`) and a reload stop here.
pub fn enterable(root: &std::path::Path, user: Option<&str>) -> Result<(), String> {
    use rustix::fs::{accessat, Access, AtFlags, CWD};
    let who = match user {
        Some(u) => format!("user {u:?} (`user` in the configuration), whom the workers run as,"),
        None => "this server's user".into(),
    };
    accessat(CWD, root, Access::EXEC_OK, AtFlags::EACCESS).map_err(|e| {
        format!(
            "document root {}: {who} cannot enter it ({e})\n  fix: let that user search it and every folder above it (chmod o+x, or a group it is in), or set `user` to one that can",
            root.display()
        )
    })
}

pub fn kind_of_mode(mode: u32) -> Kind {
    match rustix::fs::FileType::from_raw_mode(mode) {
        rustix::fs::FileType::RegularFile => Kind::File,
        rustix::fs::FileType::Directory => Kind::Dir,
        _ => Kind::Other,
    }
}

/// A regular file opened during lookup, with its stat (shared with the open-file cache).
#[derive(Clone)]
pub struct OpenFile {
    pub file: Arc<SharedFile>,
    /// How the file was when opened, to tell whether it changed since.
    version: Version,
}

impl OpenFile {
    pub fn new(fd: OwnedFd, stat: &rustix::fs::Stat) -> OpenFile {
        OpenFile {
            file: Arc::new(SharedFile::new(fd.into(), Meta::of(stat))),
            version: Version::of(stat),
        }
    }
}

/// A file's size and change time: every write, truncate and chmod moves ctime.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Version {
    size: i64,
    ctime: (i64, i64),
}

impl Version {
    fn of(st: &rustix::fs::Stat) -> Version {
        Version {
            size: st.st_size,
            ctime: (st.st_ctime, st.st_ctime_nsec as i64),
        }
    }
}

/// What lookup found.
pub struct Found {
    pub kind: Kind,
    /// Set for regular files that could be opened for reading.
    pub file: Option<OpenFile>,
}

impl Found {
    pub fn missing() -> Found {
        Found {
            kind: Kind::Missing,
            file: None,
        }
    }
}

/// When each kind of failed open was last logged (seconds since the epoch): a client that
/// asks again and again must not flood the log.
static SEARCH_LOGGED: AtomicU64 = AtomicU64::new(0);
static RESOURCES_LOGGED: AtomicU64 = AtomicU64::new(0);

/// Out of descriptors (the process's or the system's) or kernel memory: a passing state.
fn out_of_resources(e: &std::io::Error) -> bool {
    let errno = e.raw_os_error().map(rustix::io::Errno::from_raw_os_error);
    matches!(
        errno,
        Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE | rustix::io::Errno::NOMEM)
    )
}

fn open_error(e: rustix::io::Errno) -> OpenError {
    match e {
        rustix::io::Errno::XDEV | rustix::io::Errno::LOOP => OpenError::Outside,
        rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::NAMETOOLONG => {
            OpenError::Missing
        }
        e => OpenError::Io(e.into()),
    }
}

/// Set once openat2 turned out to be missing (or forced off with CASES_NO_OPENAT2=1, which
/// the tests use to check the fallback).
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

fn openat2_usable() -> bool {
    static FORCED_OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off = *FORCED_OFF.get_or_init(|| {
        let off = std::env::var_os("CASES_NO_OPENAT2").is_some();
        if off {
            log::warn!("openat2 is not available (CASES_NO_OPENAT2 is set): paths are confined with realpath instead");
        }
        off
    });
    !off && !OPENAT2_MISSING.load(Ordering::Relaxed)
}

#[derive(Debug)]
pub enum OpenError {
    Outside,
    Missing,
    Io(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(s: &str) -> Result<String, Refusal> {
        normalise(s.as_bytes())
            .map(|(path, t)| String::from_utf8_lossy(&path.into_url_path(t)).into_owned())
    }

    #[test]
    fn traversal_table() {
        let bad = Err(Refusal::BadRequest);
        let table: &[(&str, Result<String, Refusal>)] = &[
            ("/", Ok("/".into())),
            ("/a/b.html", Ok("/a/b.html".into())),
            ("/a/./b/", Ok("/a/b/".into())),
            ("/a//b", Ok("/a/b".into())),
            ("/a/../b", Ok("/b".into())),
            ("/..", bad),
            ("/../etc/passwd", Err(Refusal::BadRequest)),
            ("/a/../../etc/passwd", Err(Refusal::BadRequest)),
            ("/%2e%2e/etc/passwd", Err(Refusal::BadRequest)),
            ("/%2E%2E/%2e%2e/x", Err(Refusal::BadRequest)),
            ("/..%2fetc%2fpasswd", Err(Refusal::BadRequest)),
            ("/a%2f..%2f..%2fx", Err(Refusal::BadRequest)),
            ("/a/%2e%2e", Ok("/".into())),
            ("/x%00.html", Err(Refusal::BadRequest)),
            ("/%zz", Err(Refusal::BadRequest)),
            ("/%2", Err(Refusal::BadRequest)),
            // A backslash is an ordinary file name byte on Unix, never a separator.
            ("/..%5c..%5cetc", Ok("/..\\..\\etc".into())),
            // Overlong UTF-8 for '.' and '/' decodes to bytes that are neither.
            (
                "/%c0%ae%c0%ae/x",
                Ok("/\u{fffd}\u{fffd}\u{fffd}\u{fffd}/x".into()),
            ),
            ("/%c0%af", Ok("/\u{fffd}\u{fffd}".into())),
            ("relative", Err(Refusal::BadRequest)),
            ("/a%20b", Ok("/a b".into())),
        ];
        for (input, want) in table {
            assert_eq!(&norm(input), want, "input {input}");
        }
    }

    #[test]
    fn symlinks_out_of_the_root_are_forbidden_and_inside_ones_allowed() {
        let dir = std::env::temp_dir().join(format!("resolve-test-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(dir.join("secret"), b"s").unwrap();
        std::fs::write(root.join("sub/ok"), b"o").unwrap();
        let _ = std::os::unix::fs::symlink(dir.join("secret"), root.join("out"));
        let _ = std::os::unix::fs::symlink("sub/ok", root.join("in"));
        let _ = std::os::unix::fs::symlink("/", root.join("slash"));
        let r = Root::open(&root.canonicalize().unwrap(), Duration::ZERO).unwrap();
        let segs = |s: &str| normalise(s.as_bytes()).unwrap().0;
        assert_eq!(r.kind_of(&segs("/out")), Err(Refusal::Forbidden));
        assert_eq!(
            r.kind_of(&segs("/slash/etc/passwd")),
            Err(Refusal::Forbidden)
        );
        assert_eq!(r.kind_of(&segs("/in")), Ok(Kind::File));
        assert_eq!(r.kind_of(&segs("/sub")), Ok(Kind::Dir));
        assert_eq!(r.kind_of(&segs("/nope")), Ok(Kind::Missing));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_found_missing_is_kept_for_its_moment_by_its_own_root_only() {
        let dir = std::env::temp_dir().join(format!("resolve-kinds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let segs = |s: &str| normalise(s.as_bytes()).unwrap().0;
        let mut long = Root::open(&dir, Duration::from_secs(60)).unwrap();
        assert_eq!(
            long.kind_ttl, KIND_TTL,
            "a miss is kept a moment, not the file cache's time"
        );
        // Long enough to see within a test: the file created after the miss stays unseen.
        long.kind_ttl = Duration::from_secs(60);
        assert_eq!(long.kind_of(&segs("/late.txt")), Ok(Kind::Missing));
        std::fs::write(dir.join("late.txt"), b"x").unwrap();
        assert_eq!(long.kind_of(&segs("/late.txt")), Ok(Kind::Missing));
        // Another root's lookups are its own; after the moment the file is found.
        let short = Root::open(&dir, Duration::from_secs(60)).unwrap();
        assert_eq!(short.kind_of(&segs("/late.txt")), Ok(Kind::File));
        std::fs::remove_file(dir.join("late.txt")).unwrap();
        assert_eq!(short.kind_of(&segs("/gone.txt")), Ok(Kind::Missing));
        std::fs::write(dir.join("gone.txt"), b"x").unwrap();
        std::thread::sleep(KIND_TTL * 2);
        assert_eq!(short.kind_of(&segs("/gone.txt")), Ok(Kind::File));
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest! {
        #[test]
        fn normalised_paths_never_hold_dot_segments_or_nul(raw in "/[a-z./%0-9A-F\\\\]{0,40}") {
            if let Ok((path, _)) = normalise(raw.as_bytes()) {
                prop_assert!(path.rel().len() < raw.len());
                for s in path.segments() {
                    prop_assert!(s != b".." && s != b"." && !s.is_empty());
                    prop_assert!(!s.contains(&b'/') && !s.contains(&0));
                }
            }
        }

        #[test]
        fn decoding_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut p = vec![b'/'];
            p.extend(raw);
            let _ = normalise(&p);
        }
    }
}
