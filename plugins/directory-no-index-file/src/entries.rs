//! Reading a folder once for every form of its listing: the entries a client can fetch, with
//! their real name bytes, kind, size and modification time.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One listed file or folder.
pub struct Entry {
    /// The name as shown (lossy when it is not UTF-8).
    pub name: String,
    /// The name's real bytes, for the link.
    pub raw: Vec<u8>,
    pub dir: bool,
    pub size: u64,
    /// Seconds since 1970 (UTC).
    pub mtime: i64,
}

/// The entries of `dir` a client can fetch: no dotfiles (hidden_files answers 404 for them),
/// no symlink that leads outside `root` or nowhere, nothing but files and folders (a fifo or
/// socket would only answer 500). Unsorted.
pub fn read(dir: &Path, root: &Path) -> std::io::Result<Vec<Entry>> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let rel_dir = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(&fd)? {
        let e = e?;
        let raw = e.file_name().to_bytes();
        if raw.starts_with(b".") {
            continue;
        }
        let maybe_link = matches!(e.file_type(), FileType::Symlink | FileType::Unknown);
        if maybe_link
            && is_link(&fd, e.file_name())
            && !inside(root, &rel_dir.join(OsStr::from_bytes(raw)))
        {
            continue;
        }
        // statat relative to the open folder: one name to resolve, not the whole path.
        // Symlinks are followed for what the entry is, as a client following the link would.
        let Ok(st) = rustix::fs::statat(&fd, e.file_name(), AtFlags::empty()) else {
            continue;
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::Directory && kind != FileType::RegularFile {
            continue;
        }
        out.push(Entry {
            name: String::from_utf8_lossy(raw).into_owned(),
            raw: raw.to_vec(),
            dir: kind == FileType::Directory,
            size: st.st_size.max(0) as u64,
            mtime: st.st_mtime,
        });
    }
    Ok(out)
}

fn is_link(dir: &rustix::fd::OwnedFd, name: &std::ffi::CStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// Does `rel` (relative to `root`) resolve inside the root, as the host resolves a request
/// path: the kernel's `RESOLVE_BENEATH`, or realpath where openat2 is missing.
fn inside(root: &Path, rel: &Path) -> bool {
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let Ok(root_fd) = rustix::fs::open(root, flags | OFlags::DIRECTORY, Mode::empty()) else {
        return false;
    };
    let beneath = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(&root_fd, rel, flags, Mode::empty(), beneath) {
        Ok(_) => true,
        // XDEV: an absolute symlink, which RESOLVE_BENEATH refuses wherever it leads; the
        // host serves one that leads back inside, so it is listed.
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM | rustix::io::Errno::XDEV) => {
            std::fs::canonicalize(root.join(rel)).is_ok_and(|real| real.starts_with(root))
        }
        Err(_) => false,
    }
}
