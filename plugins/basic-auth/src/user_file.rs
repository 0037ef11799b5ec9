//! One htpasswd file, read at start-up and read again when it changes (looked at no more
//! than once a second); a broken new version keeps the users read before.

use crate::htpasswd::Users;
use plugin_api::{Host, Level};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long the users are trusted before the file is looked at again.
const RECHECK: Duration = Duration::from_secs(1);

/// What tells that the file changed: which file it is (device, inode), its size, and when it
/// and its metadata were last written, to the nanosecond. `None`: it could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp(Option<(u64, u64, u64, i64, i64, i64, i64)>);

impl Stamp {
    fn of(path: &Path) -> Stamp {
        Stamp(std::fs::metadata(path).ok().map(|m| {
            let (mtime, ctime) = ((m.mtime(), m.mtime_nsec()), (m.ctime(), m.ctime_nsec()));
            (
                m.dev(),
                m.ino(),
                m.size(),
                mtime.0,
                mtime.1,
                ctime.0,
                ctime.1,
            )
        }))
    }
}

/// The users of one htpasswd file, kept current.
pub struct UserFile {
    path: PathBuf,
    host: Host,
    users: RwLock<Arc<Users>>,
    /// The file as it was when last read (or found unreadable); held only by the thread
    /// that looks at the file.
    stamp: Mutex<Stamp>,
    /// Milliseconds after `born` when the file was last looked at.
    looked: AtomicU64,
    born: Instant,
}

/// Read and check the file; the error names it, and the line and user when one is refused.
fn load(path: &Path) -> Result<Users, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the htpasswd file {}: {e}\n  fix: create it with `htpasswd -c -B {} USER`, or correct the path",
            path.display(),
            path.display()
        )
    })?;
    Users::parse(path, &text)
}

impl UserFile {
    /// Read the file at start-up; a refused file stops the start. Weak hashes are logged.
    pub fn open(path: &Path, host: Host) -> Result<UserFile, String> {
        let stamp = Stamp::of(path);
        let users = load(path)?;
        warn_weak(&host, &users);
        Ok(UserFile {
            path: path.to_path_buf(),
            host,
            users: RwLock::new(Arc::new(users)),
            stamp: Mutex::new(stamp),
            looked: AtomicU64::new(0),
            born: Instant::now(),
        })
    }

    /// The current users, after reading the file again if it changed.
    pub fn users(&self) -> Arc<Users> {
        if self.due() {
            self.look_again();
        }
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&users)
    }

    /// Is it time to look at the file? Only the one thread that moves the clock says yes.
    fn due(&self) -> bool {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.looked.load(Ordering::Relaxed);
        now.saturating_sub(last) >= RECHECK.as_millis() as u64
            && self
                .looked
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The slow path: compare the stamp, and read the file again when it changed.
    fn look_again(&self) {
        let mut stamp = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        let now = Stamp::of(&self.path);
        if now == *stamp {
            return;
        }
        *stamp = now;
        match load(&self.path) {
            Ok(users) => {
                let msg = format!(
                    "{} changed: {} users read",
                    self.path.display(),
                    users.len()
                );
                self.host.log(Level::Info, &msg);
                warn_weak(&self.host, &users);
                *self.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
            }
            Err(e) => {
                let msg = format!("{e}\n  the users read before stay in use until it is fixed");
                self.host.log(Level::Error, &msg);
            }
        }
    }
}

/// Log a warning for every accepted weak hash.
fn warn_weak(host: &Host, users: &Users) {
    for line in &users.weak {
        host.log(Level::Warn, line);
    }
}
