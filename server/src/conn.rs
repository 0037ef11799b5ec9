//! One connection: wait for bytes holding no buffer, read a request head and body within the
//! limits, ask the chain, write the reply; keep-alive, pipelining and a graceful close.

use crate::chain::{error_reply, respond, Chain, Peer};
use crate::config::Limits;
use crate::http::{parse_head, Chunked, Fail, Framing, Head};
use crate::reply::{write_head, Body, Delim, Msg, Reply, Seg};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

/// What every connection shares.
pub struct Shared {
    /// The chain; swapped whole on reload, so each request sees one consistent chain.
    pub chain: RwLock<Arc<Chain>>,
    pub limits: Limits,
    pub open: AtomicUsize,
    pub access_log: Option<crate::access_log::AccessLog>,
    /// Set once on SIGTERM/SIGINT: stop accepting, close idle connections, finish the rest.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Wakes accept loops and idle connections when `stopping` is set.
    pub stop: tokio::sync::Notify,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Begin a graceful shutdown.
    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
    }

    /// Put a freshly loaded chain in place; requests in flight finish on the old one.
    pub fn swap_chain(&self, chain: Chain) {
        *self.chain.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(chain);
    }

    fn chain(&self) -> Arc<Chain> {
        Arc::clone(&self.chain.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Decrements the open-connection count when the connection ends.
pub struct Slot(pub Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Next {
    /// Keep the connection; the buffer is empty.
    Idle,
    /// Close now: nothing unread is left that could turn our close into a reset.
    Close,
    /// Close after our answer, but the client may still be sending (a body we refused,
    /// pipelined requests): drain for a moment first, as nginx's lingering_close does.
    Linger,
}

/// Serve one connection until it closes. While idle it holds no read buffer: the buffer is
/// allocated when bytes arrive and freed when every request in it is answered.
pub async fn serve(mut stream: TcpStream, peer: Box<Peer>, slot: Slot) {
    let shared: &Shared = &slot.0;
    let limits = &shared.limits;
    let mut served: u32 = 0;
    let mut first = true;
    loop {
        let wait = if first {
            limits.header_timeout
        } else {
            limits.keepalive_timeout
        };
        first = false;
        // Registered before the flag is checked, so a stop in between is not missed.
        let stop = shared.stop.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        if shared.stopping() {
            break;
        }
        tokio::select! {
            r = timeout(wait, stream.readable()) => match r {
                Ok(Ok(())) => {}
                _ => break,
            },
            _ = &mut stop => break,
        }
        let next = Box::pin(burst(&mut stream, shared, &peer, &mut served)).await;
        match next {
            Ok(Next::Idle) => continue,
            Ok(Next::Close) => break,
            Ok(Next::Linger) => {
                // Boxed: its scratch buffer must not be part of every idle connection's state.
                Box::pin(linger(&mut stream)).await;
                break;
            }
            Err(_) => break,
        }
    }
    drop(slot);
}

/// Close gracefully: stop sending, then read and drop what the client still sends for a
/// moment, so the kernel does not answer it with a reset that destroys our last response.
async fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut total = 0usize;
    while total < (1 << 20) {
        match timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => total += n,
            _ => break,
        }
    }
}

/// Answer every request that arrives in one burst of bytes (pipelining included).
async fn burst(
    stream: &mut TcpStream,
    shared: &Shared,
    peer: &Peer,
    served: &mut u32,
) -> io::Result<Next> {
    let limits = &shared.limits;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    // Readiness can be stale: if nothing is there after all, go back to idle holding nothing.
    match stream.try_read_buf(&mut buf) {
        Ok(0) => return Ok(Next::Close),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Next::Idle),
        Err(e) => return Err(e),
    }
    loop {
        // 1. The head, within the header timeout counted from now (the request's first byte).
        let deadline = Instant::now() + limits.header_timeout;
        let head = loop {
            match parse_head(&buf, limits) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(Fail(status)) => {
                    let msg = "the request could not be read";
                    return refuse(stream, shared, peer, None, status, msg).await;
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(4096);
            }
            match timeout_at(deadline, stream.read_buf(&mut buf)).await {
                Ok(Ok(0)) => return Ok(Next::Close),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    if buf.iter().all(|b| b.is_ascii_whitespace()) {
                        return Ok(Next::Close);
                    }
                    let msg = "the request head took too long";
                    return refuse(stream, shared, peer, None, 408, msg).await;
                }
            }
        };
        buf.drain(..head.len);
        *served += 1;

        // 2. Connection management (RFC 9112 §9.3).
        let keep_alive_10 = head.minor == 0 && head.has_token("connection", "keep-alive");
        let mut close = shared.stopping()
            || head.has_token("connection", "close")
            || (head.minor == 0 && !keep_alive_10)
            || *served >= limits.max_requests_per_connection;

        // 3. Checks every request gets before any case runs.
        let hosts = head.all("host").count();
        let bad_host = hosts > 1
            || (head.minor >= 1 && hosts == 0)
            || head.header("host").is_some_and(|h| {
                h.iter()
                    .any(|&b| b <= b' ' || b == b'/' || b == b'\\' || b == b'@' || b >= 0x7f)
            });
        if bad_host {
            let msg = "a valid Host header is required";
            return refuse(stream, shared, peer, Some(&head), 400, msg).await;
        }
        let framing = match head.framing() {
            Ok(f) => f,
            Err(Fail(status)) => {
                let msg = "the request body framing is invalid";
                return refuse(stream, shared, peer, Some(&head), status, msg).await;
            }
        };
        let expect = head.header("expect");
        if let Some(e) = expect {
            if !e.eq_ignore_ascii_case(b"100-continue") {
                let msg = "only 100-continue is supported";
                return refuse(stream, shared, peer, Some(&head), 417, msg).await;
            }
        }

        // 4. The body, read whole (bounded), so the next request on the connection parses.
        let body =
            match read_body(stream, &mut buf, &head, &framing, limits, expect.is_some()).await {
                Ok(b) => b,
                Err(BodyError::Fail(status)) => {
                    let msg = match status {
                        413 => "the request body is larger than this server accepts",
                        408 => "the request body took too long",
                        _ => "the request body is malformed",
                    };
                    return refuse(stream, shared, peer, Some(&head), status, msg).await;
                }
                Err(BodyError::Io(e)) => return Err(e),
            };

        // 5. The chain.
        let chain = shared.chain();
        let reply = respond(&chain, limits.max_ranges, &head, body, peer).await;
        if let Body::Stream(_, None) = reply.body {
            close |= head.minor == 0;
        }
        // A stop may have begun while the case was working: say so in this reply.
        close |= shared.stopping();
        log::debug!(
            "{} \"{} {} HTTP/1.{}\" {}",
            peer.client,
            head.method,
            String::from_utf8_lossy(&head.target),
            head.minor,
            reply.status
        );
        let bytes = if crate::reply::bodiless(reply.status) || head.method == "HEAD" {
            Some(0)
        } else {
            reply.body.len()
        };
        log_access(shared, peer, Some(&head), reply.status, bytes);
        let is_head = head.method == "HEAD";
        let ok = send(
            stream,
            reply,
            head.minor,
            close,
            keep_alive_10,
            limits,
            is_head,
        )
        .await?;
        if !ok {
            return Ok(Next::Close);
        }
        if close {
            return Ok(if buf.is_empty() {
                Next::Close
            } else {
                Next::Linger
            });
        }
        if buf.is_empty() {
            return Ok(Next::Idle);
        }
    }
}

/// Answer a request the host refuses before any case runs (400, 408, 413, 431...), log it,
/// and close gracefully: the client may still be sending.
async fn refuse(
    stream: &mut TcpStream,
    shared: &Shared,
    peer: &Peer,
    head: Option<&Head>,
    status: u16,
    msg: &str,
) -> io::Result<Next> {
    let target = head.map_or(&b""[..], |h| &h.target);
    let reply = error_reply(status, target, msg);
    log_access(shared, peer, head, status, reply.body.len());
    let minor = head.map_or(1, |h| h.minor);
    send(stream, reply, minor, true, false, &shared.limits, false).await?;
    Ok(Next::Linger)
}

/// One access log line, when the access log is on.
fn log_access(shared: &Shared, peer: &Peer, head: Option<&Head>, status: u16, bytes: Option<u64>) {
    let Some(log) = &shared.access_log else {
        return;
    };
    let mut date = Vec::with_capacity(32);
    crate::http::date_now(&mut date);
    let entry = crate::access_log::Entry {
        client: peer.client.ip(),
        request: head.map(|h| (h.method.as_str(), &h.target[..], h.minor)),
        status,
        bytes,
        referer: head.and_then(|h| h.header("referer")),
        user_agent: head.and_then(|h| h.header("user-agent")),
    };
    log.write(&crate::access_log::format(
        &entry,
        &String::from_utf8_lossy(&date),
    ));
}

enum BodyError {
    Fail(u16),
    Io(io::Error),
}

async fn read_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: &Head,
    framing: &Framing,
    limits: &Limits,
    expect_continue: bool,
) -> Result<Vec<u8>, BodyError> {
    // 100 Continue only when the client waits for it and the body is not already here.
    let send_continue = expect_continue && head.minor >= 1 && buf.is_empty();
    if send_continue && *framing != Framing::None {
        if let Framing::Length(n) = *framing {
            if n > limits.max_body {
                return Err(BodyError::Fail(413));
            }
        }
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(BodyError::Io)?;
    }
    let mut pace = Pace::new(limits);
    match *framing {
        Framing::None => Ok(Vec::new()),
        Framing::Length(n) => {
            if n > limits.max_body {
                return Err(BodyError::Fail(413));
            }
            let n = n as usize;
            while buf.len() < n {
                buf.reserve((n - buf.len()).min(1 << 16));
                let before = buf.len();
                match timeout_at(pace.deadline(), stream.read_buf(buf)).await {
                    Ok(Ok(0)) => return Err(BodyError::Fail(400)),
                    Ok(Ok(_)) => pace.got(buf.len() - before),
                    Ok(Err(e)) => return Err(BodyError::Io(e)),
                    Err(_) => return Err(BodyError::Fail(408)),
                }
            }
            let rest = buf.split_off(n);
            Ok(std::mem::replace(buf, rest))
        }
        Framing::Chunked => {
            let mut dec = Chunked::default();
            let mut body = Vec::new();
            loop {
                let used = dec
                    .feed(buf, &mut body, limits.max_body)
                    .map_err(|Fail(s)| BodyError::Fail(s))?;
                buf.drain(..used);
                if dec.done {
                    return Ok(body);
                }
                if buf.capacity() - buf.len() < 1024 {
                    buf.reserve(1 << 14);
                }
                let before = buf.len();
                match timeout_at(pace.deadline(), stream.read_buf(buf)).await {
                    Ok(Ok(0)) => return Err(BodyError::Fail(400)),
                    Ok(Ok(_)) => pace.got(buf.len() - before),
                    Ok(Err(e)) => return Err(BodyError::Io(e)),
                    Err(_) => return Err(BodyError::Fail(408)),
                }
            }
        }
    }
}

/// Body read deadlines: `body_timeout` between reads, and after the first `body_timeout` an
/// average of at least `body_min_rate` bytes per second, so a trickle cannot hold a
/// connection forever.
struct Pace {
    start: Instant,
    received: usize,
    between: Duration,
    min_rate: f64,
}

impl Pace {
    fn new(limits: &Limits) -> Pace {
        Pace {
            start: Instant::now(),
            received: 0,
            between: limits.body_timeout,
            min_rate: limits.body_min_rate,
        }
    }

    fn got(&mut self, n: usize) {
        self.received += n;
    }

    fn deadline(&self) -> Instant {
        let next_read = Instant::now() + self.between;
        if self.min_rate <= 0.0 {
            return next_read;
        }
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate);
        next_read.min(self.start + self.between + earned)
    }
}

/// Write a reply. Returns Ok(false) when the body could not be completed (the connection
/// must then close).
async fn send(
    stream: &mut TcpStream,
    reply: Reply,
    minor: u8,
    close: bool,
    keep_alive_10: bool,
    limits: &Limits,
    head_only: bool,
) -> io::Result<bool> {
    let wait = limits.send_timeout;
    let mut out = Vec::with_capacity(512);
    let delim = write_head(&mut out, &reply, minor, close, keep_alive_10);
    // HEAD gets the same head as GET and no body, whichever case answered.
    let with_body = delim != Delim::None && !head_only;
    match reply.body {
        Body::Empty => write_all(stream, &out, wait).await.map(|_| true),
        Body::Bytes(b) => {
            let body: &[u8] = if with_body { &b } else { &[] };
            write_parts(stream, &[&out, body], wait).await.map(|_| true)
        }
        Body::File(file, segs) => {
            if !with_body {
                return write_all(stream, &out, wait).await.map(|_| true);
            }
            send_file(stream, out, &file, segs, wait)
                .await
                .map(|_| true)
        }
        Body::Stream(mut rx, _) => {
            write_all(stream, &out, wait).await?;
            if !with_body {
                return Ok(true);
            }
            let mut sent: u64 = 0;
            loop {
                match rx.recv().await {
                    Some(Msg::Data(d)) => {
                        sent += d.len() as u64;
                        if delim == Delim::Chunked {
                            let size = format!("{:x}\r\n", d.len());
                            write_parts(stream, &[size.as_bytes(), &d, b"\r\n"], wait).await?;
                        } else {
                            if let Delim::Length(n) = delim {
                                if sent > n {
                                    return Ok(false);
                                }
                            }
                            write_all(stream, &d, wait).await?;
                        }
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
    }
}

/// Write several buffers with writev, without first copying them into one.
async fn write_parts(stream: &mut TcpStream, parts: &[&[u8]], wait: Duration) -> io::Result<()> {
    let fut = async {
        let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
        while !parts.is_empty() {
            let slices: Vec<io::IoSlice> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
            let mut n = stream.write_vectored(&slices).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "peer closed"));
            }
            while n > 0 {
                if n >= parts[0].len() {
                    n -= parts[0].len();
                    parts.remove(0);
                } else {
                    parts[0] = &parts[0][n..];
                    n = 0;
                }
            }
        }
        Ok(())
    };
    match timeout(wait, fut).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout")),
    }
}

/// Write with MSG_MORE: more data (a sendfile) follows at once, so do not push a small
/// segment out on its own.
async fn write_more(stream: &mut TcpStream, mut data: &[u8], wait: Duration) -> io::Result<()> {
    let fut = async {
        while !data.is_empty() {
            stream.writable().await?;
            let r = stream.try_io(Interest::WRITABLE, || {
                rustix::net::send(&*stream, data, rustix::net::SendFlags::MORE)
                    .map_err(io::Error::from)
            });
            match r {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    match timeout(wait, fut).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout")),
    }
}

async fn write_all(stream: &mut TcpStream, data: &[u8], wait: Duration) -> io::Result<()> {
    match timeout(wait, stream.write_all(data)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout")),
    }
}

/// Files up to this size are read and sent with the head in one write; larger ones go out
/// with sendfile.
const INLINE_FILE: u64 = 32 * 1024;

async fn send_file(
    stream: &mut TcpStream,
    mut out: Vec<u8>,
    file: &std::fs::File,
    segs: Vec<Seg>,
    wait: Duration,
) -> io::Result<()> {
    for seg in segs {
        match seg {
            Seg::Bytes(b) => out.extend_from_slice(&b),
            Seg::Range(off, len) if len <= INLINE_FILE => {
                let start = out.len();
                out.resize(start + len as usize, 0);
                file.read_exact_at(&mut out[start..], off)?;
            }
            Seg::Range(off, len) => {
                // MSG_MORE: let the kernel put the head in the same packets as the file data.
                write_more(stream, &out, wait).await?;
                out.clear();
                sendfile_range(stream, file, off, len, wait).await?;
            }
        }
    }
    if !out.is_empty() {
        write_all(stream, &out, wait).await?;
    }
    Ok(())
}

async fn sendfile_range(
    stream: &mut TcpStream,
    file: &std::fs::File,
    mut off: u64,
    len: u64,
    wait: Duration,
) -> io::Result<()> {
    let end = off + len;
    while off < end {
        let chunk = (end - off).min(1 << 21) as usize;
        let fut = async {
            loop {
                stream.writable().await?;
                let r = stream.try_io(Interest::WRITABLE, || {
                    rustix::fs::sendfile(&*stream, file, Some(&mut off), chunk)
                        .map_err(io::Error::from)
                });
                match r {
                    Ok(0) => {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"))
                    }
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        match timeout(wait, fut).await {
            Ok(r) => {
                r?;
            }
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout")),
        }
    }
    Ok(())
}
