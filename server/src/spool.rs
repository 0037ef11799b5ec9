//! The way out of a case on a worker thread (a CGI script): what it writes faster than its
//! client reads is held, in memory and then in an unlinked temporary file, so the case ends
//! and gives back its place (a script slot) and its thread while a slow client is still
//! reading, as nginx buffers an upstream's answer.

use crate::reply::Msg;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::mpsc::{self, Receiver, Sender};

/// Held in memory before the rest goes to a file (nginx's proxy_buffers: 8 × 8 KiB).
const IN_MEMORY: usize = 64 * 1024;
/// Held in the file of one answer at most (nginx's proxy_max_temp_file_size); past it
/// the case waits for its client.
const IN_FILE: u64 = 1 << 30;
/// Held in the files of all answers of this process at most; past it cases wait.
const IN_FILES: u64 = 4 << 30;
/// Read back from the file this much at a time.
const PIECE: usize = 64 * 1024;

/// Bytes in this process's spool files now.
static SPOOLED: AtomicU64 = AtomicU64::new(0);
/// When a spool file last could not be made or written (a full or read-only temp folder,
/// which every answer would meet): said at most every [`WARN_EVERY`] seconds.
static WARNED: AtomicU64 = AtomicU64::new(0);
const WARN_EVERY: u64 = 60;

/// A streamed answer's two ends: the case's, and the connection's. Messages go through a
/// short channel; body bytes that find it full are held, and everything in the channel is
/// older than anything held (the case sends to the channel only while nothing is held),
/// so the connection reads the channel first, then what is held.
pub fn channel() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(8);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let out = Outbox {
        tx,
        shared: Arc::clone(&shared),
    };
    let inbox = Inbox {
        rx,
        shared,
        taken: VecDeque::new(),
    };
    (out, inbox)
}

/// An answer the case already ended, `body` its only piece: sent as a stream is, so the
/// length it named is checked the same way whenever it ended.
pub fn ended(body: Vec<u8>) -> Inbox {
    let (mut out, inbox) = channel();
    // The channel is new and has room: the piece goes in without waiting.
    out.data(body);
    inbox
}

/// What both ends share: the held bytes, and whether the case broke its answer.
#[derive(Default)]
struct Shared {
    held: Held,
    abort: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The case's end of a streamed answer.
pub struct Outbox {
    tx: Sender<Msg>,
    shared: Arc<Mutex<Shared>>,
}

impl Outbox {
    /// Send the head (the first message: the channel has room). False when the client left.
    pub fn head(&mut self, m: Msg) -> bool {
        self.tx.blocking_send(m).is_ok()
    }

    /// Send body bytes without waiting for the client: into the channel when nothing is
    /// held and it has room, else held; only a full spool waits. False when the client
    /// left.
    pub fn data(&mut self, data: Vec<u8>) -> bool {
        let mut shared = lock(&self.shared);
        if shared.held.is_empty() {
            match self.tx.try_reserve() {
                Ok(permit) => {
                    permit.send(Msg::Data(data));
                    return true;
                }
                Err(TrySendError::Closed(())) => return false,
                Err(TrySendError::Full(())) => {}
            }
        } else if self.tx.is_closed() {
            return false;
        }
        match shared.held.hold(data) {
            None => true,
            Some(data) => {
                drop(shared);
                self.send_when_nothing_held(data)
            }
        }
    }

    /// No room to hold more: wait until the connection has taken what is held, then send
    /// `data` through the channel, waiting for the client as before the spool.
    fn send_when_nothing_held(&mut self, data: Vec<u8>) -> bool {
        while !lock(&self.shared).held.is_empty() {
            if self.tx.is_closed() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.tx.blocking_send(Msg::Data(data)).is_ok()
    }

    /// The connection's end is gone (the client left).
    pub fn client_gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// The answer is broken: what is held is dropped, and the connection closes once it
    /// has sent what came before.
    pub fn abort(&mut self) {
        let mut shared = lock(&self.shared);
        shared.held = Held::default();
        shared.abort = true;
    }
}

/// The connection's end.
pub struct Inbox {
    rx: Receiver<Msg>,
    shared: Arc<Mutex<Shared>>,
    /// Messages taken by `whole` from an answer that did not end in time, handed out first.
    taken: VecDeque<Msg>,
}

impl Inbox {
    /// The next message; `None` at the end of the answer.
    pub async fn recv(&mut self) -> Option<Msg> {
        if let Some(m) = self.taken.pop_front() {
            return Some(m);
        }
        loop {
            if let Some(m) = self.now() {
                return m;
            }
            // Nothing in the channel and nothing held: the case's next message comes
            // through the channel (it holds only while the channel is full).
            if let Some(m) = self.rx.recv().await {
                return Some(m);
            }
        }
    }

    /// The whole body, when the answer ends within `limit` bytes before `wait` is over;
    /// otherwise `None`, and what came so far is still the first thing `recv` gives.
    pub async fn whole(&mut self, limit: usize, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut body = Vec::new();
        let stopped_at = loop {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Ok(None) => return Some(body),
                Ok(Some(Msg::Data(d))) if body.is_empty() && d.len() <= limit => body = d,
                Ok(Some(Msg::Data(d))) if body.len() + d.len() <= limit => {
                    body.extend_from_slice(&d)
                }
                Ok(Some(m)) => break Some(m),
                Err(_) => break None,
            }
        };
        if !body.is_empty() {
            self.taken.push_back(Msg::Data(body));
        }
        self.taken.extend(stopped_at);
        None
    }

    /// What is there now: `Some(message)`, `Some(None)` at the end, `None` to wait.
    fn now(&mut self) -> Option<Option<Msg>> {
        // Under the lock, so the case cannot hold a piece between the two looks.
        let mut shared = lock(&self.shared);
        let closed = match self.rx.try_recv() {
            Ok(m) => return Some(Some(m)),
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => true,
        };
        if let Some(piece) = shared.held.next_piece() {
            return Some(Some(Msg::Data(piece)));
        }
        if closed {
            return Some(std::mem::take(&mut shared.abort).then_some(Msg::Abort));
        }
        None
    }
}

/// What is held, in the order it was written.
#[derive(Default)]
struct Held {
    mem: VecDeque<Vec<u8>>,
    mem_bytes: usize,
    file: Option<File>,
    /// Bytes written to the file and read back from it.
    written: u64,
    read: u64,
    /// The file could not be made: the case waits for the client instead.
    no_file: bool,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.mem.is_empty() && self.read == self.written
    }

    /// Keep `data` in memory or in the file; handed back when neither has room.
    fn hold(&mut self, data: Vec<u8>) -> Option<Vec<u8>> {
        let in_file = self.written > self.read;
        if !in_file && self.mem_bytes + data.len() <= IN_MEMORY {
            self.mem_bytes += data.len();
            self.mem.push_back(data);
            return None;
        }
        let more = data.len() as u64;
        if self.written - self.read + more > IN_FILE || SPOOLED.load(Relaxed) + more > IN_FILES {
            return Some(data);
        }
        let at = self.written;
        let Some(file) = self.file() else {
            return Some(data);
        };
        match file.write_all_at(&data, at) {
            Ok(()) => {
                self.written += more;
                SPOOLED.fetch_add(more, Relaxed);
                None
            }
            Err(e) => {
                if crate::throttle::due(&WARNED, WARN_EVERY) {
                    log::warn!("spool file: {e}; the case waits for its client instead");
                }
                self.no_file = true;
                Some(data)
            }
        }
    }

    /// The spool file, made on first use: unlinked from the start (O_TMPFILE in the temp
    /// folder), so nothing is left behind whatever happens to the process.
    fn file(&mut self) -> Option<&File> {
        if self.file.is_none() && !self.no_file {
            use rustix::fs::{Mode, OFlags};
            let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
            let dir = std::env::temp_dir();
            match rustix::fs::open(&dir, flags, Mode::RUSR | Mode::WUSR) {
                Ok(fd) => self.file = Some(File::from(fd)),
                Err(e) => {
                    if crate::throttle::due(&WARNED, WARN_EVERY) {
                        log::warn!(
                            "cannot make a spool file in {}: {e}; a case writing faster than its client reads waits for it",
                            dir.display()
                        );
                    }
                    self.no_file = true;
                }
            }
        }
        self.file.as_ref()
    }

    /// The next held piece, in the order it was written: memory first (it was all written
    /// before the file was begun), then the file.
    fn next_piece(&mut self) -> Option<Vec<u8>> {
        if let Some(piece) = self.mem.pop_front() {
            self.mem_bytes -= piece.len();
            return Some(piece);
        }
        let left = self.written - self.read;
        if left == 0 {
            return None;
        }
        let mut piece = vec![0; PIECE.min(left as usize)];
        let file = self.file.as_ref()?;
        if let Err(e) = file.read_exact_at(&mut piece, self.read) {
            log::error!("spool file: {e}");
            SPOOLED.fetch_sub(left, Relaxed);
            self.read = self.written;
            return None;
        }
        self.read += piece.len() as u64;
        SPOOLED.fetch_sub(piece.len() as u64, Relaxed);
        if self.read == self.written {
            // All read back: the file starts over, and gives its disk space back.
            (self.read, self.written) = (0, 0);
            let _ = file.set_len(0);
        }
        Some(piece)
    }
}

impl Drop for Held {
    /// Bytes never read back leave the process's count (the file goes with its descriptor).
    fn drop(&mut self) {
        SPOOLED.fetch_sub(self.written - self.read, Relaxed);
    }
}
