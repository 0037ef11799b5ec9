//! The way out of a case on a worker thread (a CGI script): what it writes faster than its
//! client reads is held, in memory and then in an unlinked temporary file, so the case ends
//! and gives back its place (a script slot) while a slow client is still reading, as
//! nginx buffers an upstream's answer.

use crate::reply::Msg;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use tokio::sync::mpsc::{error::TrySendError, Sender};

/// Held in memory before the rest goes to a file (nginx's proxy_buffers: 8 × 8 KiB).
const IN_MEMORY: usize = 64 * 1024;
/// Held in the file at most (nginx's proxy_max_temp_file_size); past it the case waits for
/// the client.
const IN_FILE: u64 = 1 << 30;
/// Read back from the file this much at a time.
const PIECE: usize = 64 * 1024;

/// The sending side of a streamed answer, with its spool.
pub struct Outbox {
    tx: Sender<Msg>,
    held: Held,
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

impl Outbox {
    pub fn new(tx: Sender<Msg>) -> Outbox {
        Outbox {
            tx,
            held: Held::default(),
        }
    }

    /// Send the head (the first message: the channel has room). False when the client left.
    pub fn head(&mut self, m: Msg) -> bool {
        self.tx.blocking_send(m).is_ok()
    }

    /// Send body bytes without waiting for the client: into the channel when nothing is
    /// held before them and it has room, else into the spool; only a full spool waits.
    /// False when the client left.
    pub fn data(&mut self, data: Vec<u8>) -> bool {
        if !self.pump() {
            return false;
        }
        if self.held.is_empty() {
            match self.tx.try_reserve() {
                Ok(permit) => {
                    permit.send(Msg::Data(data));
                    return true;
                }
                Err(TrySendError::Closed(())) => return false,
                Err(TrySendError::Full(())) => {}
            }
        }
        match self.held.hold(data) {
            None => true,
            // No room left to hold it: wait for the client to take what is held, then this.
            Some(data) => self.drain() && self.tx.blocking_send(Msg::Data(data)).is_ok(),
        }
    }

    /// Everything held, into the channel, waiting for the client as long as it reads (the
    /// connection gives up on one that stops, and the channel then closes).
    pub fn drain(&mut self) -> bool {
        while let Some(piece) = self.held.next_piece() {
            if self.tx.blocking_send(Msg::Data(piece)).is_err() {
                return false;
            }
        }
        true
    }

    /// The answer is broken: what is held is dropped, and the connection told to close.
    pub fn abort(&mut self) {
        self.held = Held::default();
        let _ = self.tx.blocking_send(Msg::Abort);
    }

    /// Move what is held into the channel while it has room. False when the client left.
    fn pump(&mut self) -> bool {
        while !self.held.is_empty() {
            let permit = match self.tx.try_reserve() {
                Ok(p) => p,
                Err(TrySendError::Full(())) => return true,
                Err(TrySendError::Closed(())) => return false,
            };
            match self.held.next_piece() {
                Some(piece) => permit.send(Msg::Data(piece)),
                None => return true,
            }
        }
        true
    }
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
        if self.written - self.read + data.len() as u64 > IN_FILE {
            return Some(data);
        }
        let at = self.written;
        let Some(file) = self.file() else {
            return Some(data);
        };
        match file.write_all_at(&data, at) {
            Ok(()) => {
                self.written += data.len() as u64;
                None
            }
            Err(e) => {
                log::warn!("spool file: {e}; the case waits for its client instead");
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
                    log::warn!(
                        "cannot make a spool file in {}: {e}; a case writing faster than its client reads waits for it",
                        dir.display()
                    );
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
            self.read = self.written;
            return None;
        }
        self.read += piece.len() as u64;
        if self.read == self.written {
            // All read back: the file starts over, and gives its disk space back.
            (self.read, self.written) = (0, 0);
            let _ = file.set_len(0);
        }
        Some(piece)
    }
}
