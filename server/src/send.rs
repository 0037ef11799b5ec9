//! Writing a reply to the socket: the head, then the body as bytes, as file ranges (read
//! inline or sent with sendfile) or as a stream from a worker thread; all under the send
//! timeout.

use crate::filter::{Source, Transformed};
use crate::reply::{write_head, Body, Delim, Framing, Msg, Reply, Seg};
use crate::shared_file::SharedFile;
use crate::wire::{Plain, Wire};
use std::future::Future;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// Write a reply. Returns Ok(false) when the body could not be completed (the connection
/// must then close). `sent` is set to the body bytes that went out (the access log's
/// figure, as nginx's `$body_bytes_sent` but without chunk framing), also when it fails.
pub async fn send(
    stream: &mut impl Wire,
    reply: Reply,
    framing: &Framing,
    wait: Duration,
    sent: &mut u64,
) -> io::Result<bool> {
    let mut out = Out {
        stream,
        wait,
        wire: 0,
        framing: 0,
    };
    let done = match out.reply(reply, framing).await {
        // TLS holds what did not fit in the socket; a plain socket has nothing to flush.
        Ok(done) => timed(wait, out.stream.flush()).await.map(|_| done),
        Err(e) => Err(e),
    };
    *sent = out.wire.saturating_sub(out.framing);
    done
}

/// A connection's write side for one reply, under the send timeout, counting what it
/// writes: every byte, and those of the head and the chunk framing among them.
struct Out<'s, W> {
    stream: &'s mut W,
    wait: Duration,
    wire: u64,
    framing: u64,
}

impl<W: Wire> Out<'_, W> {
    async fn reply(&mut self, reply: Reply, framing: &Framing) -> io::Result<bool> {
        let mut head = crate::pool::Buf::take(512 + inline_len(&reply.body));
        let delim = write_head(&mut head, &reply, framing);
        self.framing = head.len() as u64;
        // HEAD gets the same head as GET and no body, whichever case answered.
        if delim == Delim::None || framing.head_only {
            return self.all(&head).await.map(|_| true);
        }
        match reply.body {
            Body::Empty => self.all(&head).await.map(|_| true),
            Body::Bytes(b) => self.parts(&[&head, &b]).await.map(|_| true),
            Body::Shared(b) => self.parts(&[&head, &b]).await.map(|_| true),
            Body::File(file, segs) => self.file(head, &file, segs).await.map(|_| true),
            // Boxed, as the pieces of a big file are: their state need not be in every reply's.
            Body::Stream(rx, _) => {
                self.all(&head).await?;
                Box::pin(self.stream_body(rx, delim)).await
            }
            Body::Transformed(t) => Box::pin(self.transformed(*t, head, delim)).await,
        }
    }

    /// A body through its transforming filters, piece by piece, chunked (or until the close
    /// for HTTP/1.0). Ok(false) when a filter or the source failed: the connection closes.
    /// What is ready goes out with the head in as few writes as it takes: a small coded
    /// file is one writev, head, chunk and end (three writes, three segments for the
    /// client to wake up for, before). A script's stream goes out as it comes.
    async fn transformed(
        &mut self,
        mut t: Transformed,
        mut out: crate::pool::Buf,
        delim: Delim,
    ) -> io::Result<bool> {
        let streamed = matches!(t.source, Source::Stream(..));
        let mut first = true;
        loop {
            if streamed || out.len() >= HELD {
                self.all(&out).await?;
                out.clear();
            }
            let Some(piece) = next_piece(&mut t).await? else {
                break;
            };
            // Coding a piece is CPU work, and a plain socket that keeps up never makes us
            // wait: without a turn of the event loop between pieces, a 5 MiB page took
            // ~150 ms in one poll, and forty at once kept the loop from its timers for
            // the 10 s after which the watchdog replaces the worker.
            if !std::mem::take(&mut first) {
                tokio::task::yield_now().await;
            }
            let Ok(data) = t.push(&piece, false) else {
                return self.all(&out).await.map(|_| false);
            };
            self.frame(&mut out, &data, delim);
        }
        let Ok(last) = t.push(&[], true) else {
            return self.all(&out).await.map(|_| false);
        };
        self.frame(&mut out, &last, delim);
        if delim == Delim::Chunked {
            self.framing += LAST_CHUNK.len() as u64;
            out.extend_from_slice(LAST_CHUNK);
        }
        self.all(&out).await.map(|_| true)
    }

    /// One piece of body appended to `out`: a chunk, or raw bytes when the close delimits.
    fn frame(&mut self, out: &mut Vec<u8>, data: &[u8], delim: Delim) {
        if data.is_empty() {
            return;
        }
        if delim == Delim::Chunked {
            let mut size = [0u8; 18];
            out.extend_from_slice(self.chunk_line(&mut size, data.len()));
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(data);
        }
    }

    /// One piece of body on the wire: a chunk, or raw bytes when the close delimits.
    async fn piece(&mut self, data: &[u8], delim: Delim) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if delim != Delim::Chunked {
            return self.all(data).await;
        }
        let mut size = [0u8; 18];
        let size = self.chunk_line(&mut size, data.len());
        self.parts(&[size, data, b"\r\n"]).await
    }

    /// A chunk's size line, its framing counted (with the CRLF after its data).
    fn chunk_line<'b>(&mut self, buf: &'b mut [u8; 18], len: usize) -> &'b [u8] {
        let line = chunk_size(buf, len);
        self.framing += line.len() as u64 + 2;
        line
    }

    /// The chunked body's end.
    async fn last_chunk(&mut self, delim: Delim) -> io::Result<()> {
        if delim != Delim::Chunked {
            return Ok(());
        }
        self.framing += LAST_CHUNK.len() as u64;
        self.all(LAST_CHUNK).await
    }

    /// Relay what a case on a worker thread writes, chunked or within its Content-Length.
    /// Ok(false) when the case aborted or overran its length: the connection must close.
    async fn stream_body(&mut self, mut rx: crate::spool::Inbox, delim: Delim) -> io::Result<bool> {
        let mut came: u64 = 0;
        loop {
            match rx.recv().await {
                Some(Msg::Data(d)) => {
                    came += d.len() as u64;
                    if let Delim::Length(n) = delim {
                        if came > n {
                            return Ok(false);
                        }
                    }
                    self.piece(&d, delim).await?;
                }
                Some(Msg::Abort) => return Ok(false),
                Some(Msg::Head(..)) => {}
                None => break,
            }
        }
        match delim {
            Delim::Length(n) => Ok(came == n),
            _ => self.last_chunk(delim).await.map(|_| true),
        }
    }

    /// Write several buffers with writev, without first copying them into one.
    async fn parts<const N: usize>(&mut self, parts: &[&[u8]; N]) -> io::Result<()> {
        let (wait, stream, wire) = (self.wait, &mut *self.stream, &mut self.wire);
        let fut = async {
            // What is left of each part: the written front is cut off as writes complete.
            let mut left: [&[u8]; N] = *parts;
            loop {
                let slices = left.map(io::IoSlice::new);
                let first = left.iter().position(|p| !p.is_empty()).unwrap_or(N);
                if first == N {
                    return Ok(());
                }
                let mut n = match stream.plain() {
                    Some(plain) => writev(plain, &slices[first..]).await?,
                    None => stream.write_vectored(&slices[first..]).await?,
                };
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "peer closed"));
                }
                *wire += n as u64;
                for part in &mut left[first..] {
                    let cut = n.min(part.len());
                    *part = &part[cut..];
                    n -= cut;
                }
            }
        };
        timed(wait, fut).await
    }

    async fn all(&mut self, data: &[u8]) -> io::Result<()> {
        self.parts(&[data]).await
    }

    /// Write with MSG_MORE: more data (a sendfile) follows at once, so do not push a small
    /// segment out on its own.
    async fn more(&mut self, mut data: &[u8]) -> io::Result<()> {
        let Some(plain) = self.stream.plain() else {
            return self.all(data).await;
        };
        let wire = &mut self.wire;
        let fut = async {
            while !data.is_empty() {
                let more = rustix::net::SendFlags::MORE;
                let n = plain
                    .write_with(|fd| rustix::net::send(fd, data, more))
                    .await?;
                *wire += n as u64;
                data = &data[n..];
            }
            Ok(())
        };
        timed(self.wait, fut).await
    }

    async fn file(
        &mut self,
        head: crate::pool::Buf,
        file: &SharedFile,
        segs: Vec<Seg>,
    ) -> io::Result<()> {
        // A whole small file whose bytes are kept: the head and those bytes in one writev.
        if let [Seg::Range(off, len)] = segs[..] {
            if let Some(bytes) = file.kept_range(off, len as usize) {
                return self.parts(&[&head, bytes]).await;
            }
        }
        Box::pin(self.file_pieces(head, file, segs)).await
    }

    /// A file body piece by piece: ranges read into the head's buffer, big ones sent with
    /// sendfile (or copied, through TLS).
    async fn file_pieces(
        &mut self,
        mut out: crate::pool::Buf,
        file: &SharedFile,
        segs: Vec<Seg>,
    ) -> io::Result<()> {
        for seg in segs {
            match seg {
                Seg::Bytes(b) => out.extend_from_slice(&b),
                Seg::Range(off, len) if len <= INLINE_FILE => {
                    file.read_into(&mut out, off, len as usize)?
                }
                Seg::Range(off, len) => {
                    // MSG_MORE: let the kernel put the head in the same packets as the file data.
                    self.more(&out).await?;
                    out.clear();
                    self.range(file, off, len).await?;
                }
            }
        }
        if !out.is_empty() {
            self.all(&out).await?;
        }
        Ok(())
    }

    /// A file range: sendfile on a plain socket, read and written through TLS.
    async fn range(&mut self, file: &std::fs::File, off: u64, len: u64) -> io::Result<()> {
        let wait = self.wait;
        match self.stream.plain() {
            Some(plain) => sendfile(plain, file, (off, len), wait, &mut self.wire).await,
            None => self.copy(file, off, len).await,
        }
    }

    /// A file range read piece by piece and written: for streams that transform what is
    /// written (TLS), which sendfile cannot do.
    async fn copy(&mut self, file: &std::fs::File, mut off: u64, len: u64) -> io::Result<()> {
        let end = off + len;
        let mut buf = vec![0u8; FILE_PIECE.min(len as usize) + SKEW];
        let piece = &mut buf[SKEW..];
        while off < end {
            let n = piece.len().min((end - off) as usize);
            file.read_exact_at(&mut piece[..n], off)?;
            self.all(&piece[..n]).await?;
            off += n as u64;
        }
        Ok(())
    }
}

/// A file range with sendfile, in pieces of up to 2 MiB (nginx's `sendfile_max_chunk`),
/// each under the send timeout; `wire` counts what went out.
async fn sendfile(
    plain: &mut Plain,
    file: &std::fs::File,
    (mut off, len): (u64, u64),
    wait: Duration,
    wire: &mut u64,
) -> io::Result<()> {
    let end = off + len;
    while off < end {
        let chunk = (end - off).min(1 << 21) as usize;
        let call = |fd: BorrowedFd<'_>| rustix::fs::sendfile(fd, file, Some(&mut off), chunk);
        let n = timed(wait, plain.write_with(call)).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
        }
        *wire += n as u64;
    }
    Ok(())
}

/// The source's next piece; `None` at its end. A stream that aborted, or that ended short
/// of or went past the length its case named, is an error: the coded answer must not look
/// whole.
pub async fn next_piece(t: &mut Transformed) -> io::Result<Option<Vec<u8>>> {
    match &mut t.source {
        Source::Nothing => Ok(None),
        Source::File(..) => t.read_file_piece().map(|p| (!p.is_empty()).then_some(p)),
        Source::Stream(rx, left) => loop {
            match rx.recv().await {
                Some(Msg::Data(d)) if d.is_empty() => continue,
                Some(Msg::Data(d)) => return within(left, d),
                Some(Msg::Head(..)) => continue,
                Some(Msg::Abort) => {
                    return Err(io::Error::other("the case aborted its answer"));
                }
                None if left.is_some_and(|l| l > 0) => {
                    return Err(io::Error::other(
                        "the case wrote less than its Content-Length",
                    ));
                }
                None => return Ok(None),
            }
        },
    }
}

/// A stream's piece, counted against what is left of its named length.
fn within(left: &mut Option<u64>, piece: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    if let Some(l) = left {
        let n = piece.len() as u64;
        if n > *l {
            return Err(io::Error::other(
                "the case wrote more than its Content-Length",
            ));
        }
        *l -= n;
    }
    Ok(Some(piece))
}

/// A chunk's size line (`1f4\r\n`) in `buf`, without an allocation.
fn chunk_size(buf: &mut [u8; 18], len: usize) -> &[u8] {
    let mut text = [0u8; 16];
    let mut i = text.len();
    let mut n = len;
    loop {
        i -= 1;
        text[i] = b"0123456789abcdef"[n % 16];
        n /= 16;
        if n == 0 {
            break;
        }
    }
    let digits = text.len() - i;
    buf[..digits].copy_from_slice(&text[i..]);
    buf[digits..digits + 2].copy_from_slice(b"\r\n");
    &buf[..digits + 2]
}

/// The end of a chunked body: the last chunk, no trailers (RFC 9112 §7.1).
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Bytes of a transformed body held back to go out with what follows (one piece of a file).
const HELD: usize = 64 * 1024;

/// One `writev` on a plain socket.
async fn writev(plain: &mut Plain, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
    plain.write_with(|fd| rustix::io::writev(fd, slices)).await
}

/// Run a write under the send timeout. Most writes finish at once (the socket buffer has
/// room): the timer is armed only when the first poll cannot finish, which saves a timer
/// registration and removal per answer. The timer is boxed then, so it is not part of
/// every write's state.
pub async fn timed<T>(wait: Duration, fut: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(r) = first {
        return r;
    }
    match Box::pin(timeout(wait, fut)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout")),
    }
}

/// The bytes of a file body that go out in the head's buffer.
fn inline_len(body: &Body) -> usize {
    let Body::File(_, segs) = body else {
        return 0;
    };
    let inline = |s: &Seg| match s {
        Seg::Bytes(b) => b.len(),
        Seg::Range(_, len) if *len <= INLINE_FILE => *len as usize,
        Seg::Range(..) => 0,
    };
    segs.iter().map(inline).sum()
}

/// Files up to this size are read and sent with the head in one write; larger ones go out
/// with sendfile.
const INLINE_FILE: u64 = 32 * 1024;

/// Where a buffer that rustls copies into records (a file piece read for TLS, what an
/// HTTP/2 connection holds) starts in its allocation: 2 KiB in, so that the copy into each
/// record (whose payload starts 5 bytes into a fresh allocation) does not run between
/// addresses a few bytes apart modulo 4 KiB. glibc (before 2.40) copies those
/// sizes with `rep movsb`, which AMD's cores slow down for such 4K-aliased pairs: that copy
/// was 36% of a worker's CPU serving 10 MiB over TLS, against 13% for AES-GCM itself.
pub const SKEW: usize = 2048;

/// Pieces of a file read to be written through TLS (which sendfile cannot do).
pub const FILE_PIECE: usize = 64 * 1024;
