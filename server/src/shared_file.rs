//! An opened file shared by the open-file cache and the answers that send it; a small one
//! keeps its bytes after its first read, so a page served again and again costs no read.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Files up to this size keep their bytes once read (a favicon, a small page or script):
/// at most this much per entry of the open-file cache, for as long as the entry lives.
pub const KEEP_BYTES: u64 = 4096;

/// Facts about the file that validators come from.
#[derive(Clone, Copy)]
pub struct Meta {
    pub size: u64,
    pub mtime: SystemTime,
}

impl Meta {
    pub fn of(st: &rustix::fs::Stat) -> Meta {
        Meta {
            size: st.st_size.max(0) as u64,
            mtime: UNIX_EPOCH + Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32),
        }
    }

    /// `"<mtime>-<size>"` in hex, as nginx writes it, with the mtime's nanoseconds when it
    /// has any (`"<secs>.<nanos>-<size>"`, as Caddy's tag has them): a file written again
    /// within the same second at the same size gets another tag (RFC 9110 §8.8.3).
    pub fn etag(&self) -> Vec<u8> {
        let mut tag = Vec::with_capacity(32);
        tag.push(b'"');
        crate::digits::push_hex(&mut tag, self.secs());
        let nanos = self.nanos();
        if nanos != 0 {
            tag.push(b'.');
            crate::digits::push_hex(&mut tag, u64::from(nanos));
        }
        tag.push(b'-');
        crate::digits::push_hex(&mut tag, self.size);
        tag.push(b'"');
        tag
    }

    /// The modification time in whole seconds as an IMF-fixdate.
    pub fn last_modified(&self) -> Vec<u8> {
        let secs = UNIX_EPOCH + Duration::from_secs(self.secs());
        httpdate::fmt_http_date(secs).into_bytes()
    }

    pub fn secs(&self) -> u64 {
        self.mtime
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn nanos(&self) -> u32 {
        self.mtime
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    }
}

/// A regular file and, once read, the bytes of a small one.
impl std::os::fd::AsFd for SharedFile {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

pub struct SharedFile {
    file: File,
    /// Its size and modification time when it was opened (the stat the answer's
    /// Content-Length and validators come from).
    meta: Meta,
    /// The whole file, when it is small; `None` inside when the read failed.
    bytes: OnceLock<Option<Box<[u8]>>>,
    /// `Last-Modified` and `ETag`, written once for every answer that sends this file.
    validators: OnceLock<[Arc<[u8]>; 2]>,
}

impl SharedFile {
    pub fn new(file: File, meta: Meta) -> SharedFile {
        SharedFile {
            file,
            meta,
            bytes: OnceLock::new(),
            validators: OnceLock::new(),
        }
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// `Last-Modified` and `ETag` for this file, made on first use. A file dated later than
    /// now gets the answer's Date as its Last-Modified, made for each answer until its date
    /// has passed: RFC 9110 §8.8.2.1 forbids a Last-Modified later than the Date.
    pub fn validators(&self) -> [Arc<[u8]>; 2] {
        if let Some(kept) = self.validators.get() {
            return kept.clone();
        }
        let future = crate::http::with_date_now(|now, date| {
            (self.meta.secs() > now).then(|| Arc::from(date.as_bytes()))
        });
        if let Some(date) = future {
            return [date, self.meta.etag().into()];
        }
        let make = || [self.meta.last_modified().into(), self.meta.etag().into()];
        self.validators.get_or_init(make).clone()
    }

    /// `len` bytes from `off` out of the kept bytes of a small file (read whole the first
    /// time); `None` for a larger file, or when the read failed.
    pub fn kept_range(&self, off: u64, len: usize) -> Option<&[u8]> {
        self.kept()?
            .get(off as usize..(off as usize).checked_add(len)?)
    }

    /// Append `len` bytes from `off` to `out`: from the kept bytes of a small file (read
    /// whole the first time), else with one positioned read.
    pub fn read_into(&self, out: &mut Vec<u8>, off: u64, len: usize) -> io::Result<()> {
        if let Some(part) = self.kept_range(off, len) {
            out.extend_from_slice(part);
            return Ok(());
        }
        let start = out.len();
        out.resize(start + len, 0);
        self.file.read_exact_at(&mut out[start..], off)
    }

    fn kept(&self) -> Option<&[u8]> {
        if self.meta.size > KEEP_BYTES {
            return None;
        }
        let read_whole = || {
            let mut b = vec![0; self.meta.size as usize];
            self.file.read_exact_at(&mut b, 0).ok()?;
            Some(b.into_boxed_slice())
        };
        self.bytes.get_or_init(read_whole).as_deref()
    }
}

impl Deref for SharedFile {
    type Target = File;

    fn deref(&self) -> &File {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file in the temporary folder holding `bytes`, removed when the guard drops.
    struct Temp(std::path::PathBuf);

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn file_with(name: &str, bytes: &[u8]) -> (Temp, SharedFile) {
        let path = std::env::temp_dir().join(format!("cases-{}-{name}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        let meta = Meta {
            size: bytes.len() as u64,
            mtime: UNIX_EPOCH,
        };
        let f = SharedFile::new(File::open(&path).unwrap(), meta);
        (Temp(path), f)
    }

    #[test]
    fn a_small_file_is_read_once_and_then_served_from_memory() {
        let (t, f) = file_with("small", b"hello, world");
        let mut out = b"head|".to_vec();
        f.read_into(&mut out, 7, 5).unwrap();
        assert_eq!(out, b"head|world");
        // Changed on disk: the kept bytes are what was read first, as the cached stat is.
        std::fs::write(&t.0, b"HELLO, WORLD").unwrap();
        out.clear();
        f.read_into(&mut out, 0, 12).unwrap();
        assert_eq!(out, b"hello, world");
    }

    #[test]
    fn a_large_file_is_read_each_time() {
        let big = vec![b'x'; KEEP_BYTES as usize + 1];
        let (t, f) = file_with("large", &big);
        let mut out = Vec::new();
        f.read_into(&mut out, 0, 3).unwrap();
        assert_eq!(out, b"xxx");
        let mut changed = big.clone();
        changed[..3].copy_from_slice(b"abc");
        std::fs::write(&t.0, &changed).unwrap();
        out.clear();
        f.read_into(&mut out, 0, 3).unwrap();
        assert_eq!(out, b"abc");
    }
}
