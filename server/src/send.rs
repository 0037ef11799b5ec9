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
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Write a reply. Returns Ok(false) when the body could not be completed (the connection
/// must then close).
pub async fn send(
    stream: &mut impl Wire,
    reply: Reply,
    framing: &Framing,
    wait: Duration,
) -> io::Result<bool> {
    let done = write(stream, reply, framing, wait).await?;
    // TLS holds what did not fit in the socket; a plain socket has nothing to flush.
    timed(wait, stream.flush()).await.map(|_| done)
}

async fn write(
    stream: &mut impl Wire,
    reply: Reply,
    framing: &Framing,
    wait: Duration,
) -> io::Result<bool> {
    let mut out = crate::pool::Buf::take(512 + inline_len(&reply.body));
    let delim = write_head(&mut out, &reply, framing);
    // HEAD gets the same head as GET and no body, whichever case answered.
    if delim == Delim::None || framing.head_only {
        return write_all(stream, &out, wait).await.map(|_| true);
    }
    match reply.body {
        Body::Empty => write_all(stream, &out, wait).await.map(|_| true),
        Body::Bytes(b) => write_parts(stream, &[&out, &b], wait).await.map(|_| true),
        Body::Shared(b) => write_parts(stream, &[&out, &b], wait).await.map(|_| true),
        Body::File(file, segs) => file_body(stream, out, &file, segs, wait)
            .await
            .map(|_| true),
        // Boxed, as the pieces of a big file are: their state need not be in every reply's.
        Body::Stream(rx, _) => {
            write_all(stream, &out, wait).await?;
            Box::pin(stream_body(stream, rx, delim, wait)).await
        }
        Body::Transformed(t) => {
            write_all(stream, &out, wait).await?;
            Box::pin(transformed_body(stream, *t, delim, wait)).await
        }
    }
}

/// Send a body through its transforming filters, piece by piece, chunked (or until the
/// close for HTTP/1.0). Ok(false) when a filter or the source failed: the connection closes.
async fn transformed_body(
    stream: &mut impl Wire,
    mut t: Transformed,
    delim: Delim,
    wait: Duration,
) -> io::Result<bool> {
    loop {
        let Some(piece) = next_piece(&mut t).await? else {
            break;
        };
        let Ok(out) = t.push(&piece, false) else {
            return Ok(false);
        };
        write_piece(stream, &out, delim, wait).await?;
    }
    let Ok(last) = t.push(&[], true) else {
        return Ok(false);
    };
    write_piece(stream, &last, delim, wait).await?;
    if delim == Delim::Chunked {
        write_all(stream, b"0\r\n\r\n", wait).await?;
    }
    Ok(true)
}

/// The source's next piece; `None` at its end. A stream that aborted is an error.
pub async fn next_piece(t: &mut Transformed) -> io::Result<Option<Vec<u8>>> {
    match &mut t.source {
        Source::Nothing => Ok(None),
        Source::File(..) => t.read_file_piece().map(|p| (!p.is_empty()).then_some(p)),
        Source::Stream(rx) => loop {
            match rx.recv().await {
                Some(Msg::Data(d)) if d.is_empty() => continue,
                Some(Msg::Data(d)) => return Ok(Some(d)),
                Some(Msg::Head(..)) => continue,
                Some(Msg::Abort) => {
                    return Err(io::Error::other("the case aborted its answer"));
                }
                None => return Ok(None),
            }
        },
    }
}

/// One piece of body on the wire: a chunk, or raw bytes when the close delimits.
async fn write_piece(
    stream: &mut impl Wire,
    data: &[u8],
    delim: Delim,
    wait: Duration,
) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    if delim == Delim::Chunked {
        let size = format!("{:x}\r\n", data.len());
        write_parts(stream, &[size.as_bytes(), data, b"\r\n"], wait).await
    } else {
        write_all(stream, data, wait).await
    }
}

/// Relay what a case on a worker thread writes, chunked or within its Content-Length.
/// Ok(false) when the case aborted or overran its length: the connection must close.
async fn stream_body(
    stream: &mut impl Wire,
    mut rx: mpsc::Receiver<Msg>,
    delim: Delim,
    wait: Duration,
) -> io::Result<bool> {
    let mut sent: u64 = 0;
    loop {
        match rx.recv().await {
            Some(Msg::Data(d)) => {
                sent += d.len() as u64;
                if let Delim::Length(n) = delim {
                    if sent > n {
                        return Ok(false);
                    }
                }
                write_piece(stream, &d, delim, wait).await?;
            }
            Some(Msg::Abort) => return Ok(false),
            Some(Msg::Head(..)) => {}
            None => break,
        }
    }
    match delim {
        Delim::Chunked => write_all(stream, b"0\r\n\r\n", wait).await.map(|_| true),
        Delim::Length(n) => Ok(sent == n),
        _ => Ok(true),
    }
}

/// Write several buffers with writev, without first copying them into one.
async fn write_parts<const N: usize>(
    stream: &mut impl Wire,
    parts: &[&[u8]; N],
    wait: Duration,
) -> io::Result<()> {
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
            for part in &mut left[first..] {
                let cut = n.min(part.len());
                *part = &part[cut..];
                n -= cut;
            }
        }
    };
    timed(wait, fut).await
}

/// One `writev` on a plain socket.
async fn writev(plain: &mut Plain, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
    plain.write_with(|fd| rustix::io::writev(fd, slices)).await
}

/// Write with MSG_MORE: more data (a sendfile) follows at once, so do not push a small
/// segment out on its own.
async fn write_more(plain: &mut Plain, mut data: &[u8], wait: Duration) -> io::Result<()> {
    let fut = async {
        while !data.is_empty() {
            let more = rustix::net::SendFlags::MORE;
            let n = plain
                .write_with(|fd| rustix::net::send(fd, data, more))
                .await?;
            data = &data[n..];
        }
        Ok(())
    };
    timed(wait, fut).await
}

async fn write_all(stream: &mut impl Wire, data: &[u8], wait: Duration) -> io::Result<()> {
    timed(wait, stream.write_all(data)).await
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

async fn file_body(
    stream: &mut impl Wire,
    out: crate::pool::Buf,
    file: &SharedFile,
    segs: Vec<Seg>,
    wait: Duration,
) -> io::Result<()> {
    // A whole small file whose bytes are kept: the head and those bytes in one writev.
    if let [Seg::Range(off, len)] = segs[..] {
        if let Some(bytes) = file.kept_range(off, len as usize) {
            return write_parts(stream, &[&out, bytes], wait).await;
        }
    }
    Box::pin(file_pieces(stream, out, file, segs, wait)).await
}

/// A file body piece by piece: ranges read into the head's buffer, big ones sent with
/// sendfile (or copied, through TLS).
async fn file_pieces(
    stream: &mut impl Wire,
    mut out: crate::pool::Buf,
    file: &SharedFile,
    segs: Vec<Seg>,
    wait: Duration,
) -> io::Result<()> {
    for seg in segs {
        match seg {
            Seg::Bytes(b) => out.extend_from_slice(&b),
            Seg::Range(off, len) if len <= INLINE_FILE => {
                file.read_into(&mut out, off, len as usize)?
            }
            Seg::Range(off, len) => match stream.plain() {
                Some(plain) => {
                    // MSG_MORE: let the kernel put the head in the same packets as the file data.
                    write_more(plain, &out, wait).await?;
                    out.clear();
                    sendfile_range(plain, file, off, len, wait).await?;
                }
                None => {
                    write_all(stream, &out, wait).await?;
                    out.clear();
                    copy_range(stream, file, (off, len), wait).await?;
                }
            },
        }
    }
    if !out.is_empty() {
        write_all(stream, &out, wait).await?;
    }
    Ok(())
}

/// Pieces of a file read to be written through TLS (which sendfile cannot do).
pub const FILE_PIECE: usize = 64 * 1024;

/// A file range read piece by piece and written: for streams that transform what is written.
async fn copy_range(
    stream: &mut impl Wire,
    file: &std::fs::File,
    (mut off, len): (u64, u64),
    wait: Duration,
) -> io::Result<()> {
    let end = off + len;
    let mut piece = vec![0u8; FILE_PIECE.min(len as usize)];
    while off < end {
        let n = piece.len().min((end - off) as usize);
        file.read_exact_at(&mut piece[..n], off)?;
        write_all(stream, &piece[..n], wait).await?;
        off += n as u64;
    }
    Ok(())
}

async fn sendfile_range(
    plain: &mut Plain,
    file: &std::fs::File,
    mut off: u64,
    len: u64,
    wait: Duration,
) -> io::Result<()> {
    let end = off + len;
    while off < end {
        let chunk = (end - off).min(1 << 21) as usize;
        let call = |fd: BorrowedFd<'_>| rustix::fs::sendfile(fd, file, Some(&mut off), chunk);
        if timed(wait, plain.write_with(call)).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
        }
    }
    Ok(())
}
