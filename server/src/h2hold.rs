//! Holds what an HTTP/2 connection writes until its task has nothing more to do, so the
//! answers of many streams leave in one write instead of one each.
//!
//! h2 flushes its transport after every DATA frame of 256 bytes or more (it keeps only one
//! such payload aside at a time), so ten 1 KiB answers ready together took ten system calls,
//! ten TCP segments and, over TLS, ten records. Here a write is copied into a buffer of up to
//! [`HOLD`] bytes and h2's flush does nothing; [`after_each_poll`] writes the buffer out
//! whenever the connection's future has been polled, which is when h2 has written all it
//! could. A write that does not fit goes out gathered with what is held (a 16 KiB DATA
//! frame of a download: one writev of its head and payload, as h2 wrote it).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::send::SKEW;

/// The most held at once: room for a dozen small answers and one TLS record's worth.
pub const HOLD: usize = 16 * 1024;

/// The connection as h2 sees it: reads pass through, writes are held.
pub struct Held<S>(Arc<Mutex<Inner<S>>>);

/// The other handle on the same connection, for writing out what is held.
pub struct Release<S>(Arc<Mutex<Inner<S>>>);

struct Inner<S> {
    io: S,
    /// What is held, after [`SKEW`] bytes of slack once allocated.
    out: Vec<u8>,
    /// Where in `out` what is still to write starts.
    at: usize,
    /// A write of what was held failed: every later read and write fails the same way.
    broken: Option<io::ErrorKind>,
    /// The connection has no stream open: give the buffer back once it is written out.
    idle: bool,
    /// Since when the connection could write nothing (the client reads nothing); `None`
    /// once a write goes through.
    stalled: Option<Instant>,
    /// The stall is a flush's (TLS records waiting): a flush that completes ends it.
    flushing: bool,
}

/// Split `io` into the handle h2 writes to and the one that releases what it wrote.
pub fn hold<S>(io: S) -> (Held<S>, Release<S>) {
    let inner = Arc::new(Mutex::new(Inner {
        io,
        out: Vec::new(),
        at: 0,
        broken: None,
        idle: false,
        stalled: None,
        flushing: false,
    }));
    (Held(Arc::clone(&inner)), Release(inner))
}

/// Run `work`, writing out what it left held after each time it is polled.
pub async fn after_each_poll<F, S>(work: F, release: &Release<S>) -> F::Output
where
    F: Future,
    S: AsyncWrite + Unpin,
{
    tokio::pin!(work);
    std::future::poll_fn(|cx| {
        let out = work.as_mut().poll(cx);
        release.poll_release(cx);
        out
    })
    .await
}

impl<S> Release<S> {
    /// Whether the connection has streams open; while it has none, its buffer is given
    /// back once written out (a busy connection keeps it: allocating it for every write
    /// cost more than the copies it saves).
    pub fn set_idle(&self, idle: bool) {
        lock(&self.0).idle = idle;
    }

    /// Since when the connection has been unable to write anything, if it is.
    pub fn stalled_since(&self) -> Option<Instant> {
        lock(&self.0).stalled
    }
}

impl<S: AsyncWrite + Unpin> Release<S> {
    /// Write out what is held; a failure is kept for the connection's next read or write,
    /// and its task is woken to meet it.
    fn poll_release(&self, cx: &mut Context<'_>) {
        let mut inner = lock(&self.0);
        if let Poll::Ready(Err(e)) = inner.poll_drain(cx) {
            inner.broken = Some(e.kind());
            inner.out = Vec::new();
            inner.at = 0;
            cx.waker().wake_by_ref();
        }
    }
}

fn lock<S>(inner: &Mutex<Inner<S>>) -> MutexGuard<'_, Inner<S>> {
    // Only the connection's own task takes it, so it is never held by a thread that died.
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: AsyncWrite + Unpin> Inner<S> {
    fn check(&self) -> io::Result<()> {
        match self.broken {
            Some(kind) => Err(kind.into()),
            None => Ok(()),
        }
    }

    /// Write everything held, then flush the connection itself (a TLS stream's records).
    /// The buffer is given back once empty: an idle connection holds none.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        while self.at < self.out.len() {
            let wrote = Pin::new(&mut self.io).poll_write(cx, &self.out[self.at..]);
            let n = ready!(self.note(wrote))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.at += n;
        }
        self.emptied();
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        match flushed {
            Poll::Pending => {
                self.stalled.get_or_insert_with(Instant::now);
                self.flushing = true;
            }
            Poll::Ready(_) if self.flushing => {
                self.stalled = None;
                self.flushing = false;
            }
            Poll::Ready(_) => {}
        }
        flushed
    }

    /// Keep track of whether writes go through: a pending one starts a stall (unless one
    /// is on), bytes written end it.
    fn note(&mut self, wrote: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match wrote {
            Poll::Pending => {
                self.stalled.get_or_insert_with(Instant::now);
                self.flushing = false;
            }
            Poll::Ready(Ok(n)) if n > 0 => self.stalled = None,
            Poll::Ready(_) => {}
        }
        wrote
    }

    fn emptied(&mut self) {
        if self.idle {
            self.out = Vec::new();
            self.at = 0;
        } else {
            self.out.truncate(SKEW);
            self.at = self.out.len();
        }
    }

    /// Hold `bufs` if they fit beside what is held; when they do not, write what is held
    /// and them in one gathered write, or them alone once nothing is held.
    fn poll_hold(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.out.len().saturating_sub(SKEW) + total > HOLD {
            return self.poll_through(cx, bufs);
        }
        if self.out.capacity() == 0 {
            // Written out through TLS, what is held is copied into records: see SKEW.
            self.out.reserve_exact(SKEW + HOLD);
            self.out.resize(SKEW, 0);
            self.at = SKEW;
        }
        for b in bufs {
            self.out.extend_from_slice(b);
        }
        Poll::Ready(Ok(total))
    }

    /// Write what is held followed by `bufs` (h2 passes a frame's head and its payload);
    /// only what is written of `bufs` counts as written.
    fn poll_through(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        while self.at < self.out.len() {
            let held = &self.out[self.at..];
            let held_len = held.len();
            let mut all = [io::IoSlice::new(&[]); 4];
            all[0] = io::IoSlice::new(held);
            let gathered = bufs.len() < all.len();
            if gathered {
                all[1..=bufs.len()].copy_from_slice(bufs);
            }
            let count = if gathered { 1 + bufs.len() } else { 1 };
            let wrote = Pin::new(&mut self.io).poll_write_vectored(cx, &all[..count]);
            let n = ready!(self.note(wrote))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n > held_len {
                let of_bufs = n - held_len;
                self.emptied();
                return Poll::Ready(Ok(of_bufs));
            }
            self.at += n;
        }
        self.emptied();
        let wrote = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.note(wrote)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut inner = lock(&self.0);
        if let Some(kind) = inner.broken {
            return Poll::Ready(Err(kind.into()));
        }
        Pin::new(&mut inner.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        lock(&self.0).poll_hold(cx, &[io::IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        lock(&self.0).poll_hold(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Nothing to do until the task's poll ends, when [`after_each_poll`] writes it all.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(lock(&self.0).check())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = lock(&self.0);
        ready!(inner.poll_drain(cx))?;
        Pin::new(&mut inner.io).poll_shutdown(cx)
    }
}
