//! What an HTTP/1.1 connection runs over: a plain TCP socket (files go out with sendfile) or
//! a TLS stream on one (files are read and encrypted), behind one trait.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A TLS connection after its handshake.
pub type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// A byte stream to a client.
pub trait Wire: AsyncRead + AsyncWrite + Unpin + Send {
    /// Wait until the client has sent something (which may turn out to be nothing for us).
    fn ready(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Read more into `buf`, first sending what the connection's own protocol queued while
    /// reading (over TLS: an alert refusing a renegotiation, the answer to a KeyUpdate), which
    /// a client may wait for before it sends the rest of its request.
    fn read_more<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        self.read_buf(buf)
    }
    /// Read what is there now into `buf`'s spare room; `WouldBlock` when nothing is.
    fn try_read_now(&mut self, buf: &mut Vec<u8>) -> io::Result<usize>;
    /// The socket itself when what is written to it reaches the client as is (no TLS), so
    /// files can go out with sendfile.
    fn plain(&mut self) -> Option<&mut Plain>;
}

/// A plain TCP connection. It joins the event loop only when it first has to wait: a
/// request that came with its connection (see `defer_accept`) and was answered in one
/// write never registers the socket, whose two `epoll_ctl` calls (add, and delete before
/// the close) were about 9% of such a connection's CPU. tokio's own accept registers every
/// socket it returns; the accept loop calls `accept4` itself for this.
pub struct Plain(State);

/// Four states in the size of tokio's stream alone (the two unregistered ones fit beside
/// its niche), so an idle connection costs no more than before.
enum State {
    /// Not registered yet; bytes may be waiting (nothing said otherwise yet).
    Fresh(std::net::TcpStream),
    /// Not registered yet; the last read emptied it.
    Alone(std::net::TcpStream),
    Joined(TcpStream),
    /// Registering failed: every call fails.
    Lost,
}

impl Plain {
    /// A socket just accepted (nonblocking); `request_there` when the kernel handed it
    /// over only once its first bytes had arrived.
    pub fn new(socket: std::net::TcpStream, request_there: bool) -> Plain {
        Plain(match request_there {
            true => State::Fresh(socket),
            false => State::Alone(socket),
        })
    }

    /// The socket, registered with the event loop from now on.
    fn joined(&mut self) -> io::Result<&mut TcpStream> {
        if let State::Fresh(_) | State::Alone(_) = self.0 {
            if let State::Fresh(socket) | State::Alone(socket) =
                std::mem::replace(&mut self.0, State::Lost)
            {
                self.0 = State::Joined(TcpStream::from_std(socket)?);
            }
        }
        match &mut self.0 {
            State::Joined(tcp) => Ok(tcp),
            _ => Err(lost()),
        }
    }

    /// A fresh socket's last read emptied it.
    fn quiet(&mut self) {
        if let State::Fresh(_) = self.0 {
            if let State::Fresh(socket) = std::mem::replace(&mut self.0, State::Lost) {
                self.0 = State::Alone(socket);
            }
        }
    }

    /// One write system call (`writev`, `send`, `sendfile`) made by `call` on the socket,
    /// waiting while its buffer is full and again after EINTR. rustix's system calls, not
    /// libc's wrappers, which mark each call as a cancellation point with two locked
    /// instructions, for threads this server never cancels.
    pub async fn write_with(
        &mut self,
        mut call: impl FnMut(BorrowedFd<'_>) -> rustix::io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            let r = match &self.0 {
                State::Fresh(socket) | State::Alone(socket) => {
                    call(socket.as_fd()).map_err(io::Error::from)
                }
                State::Joined(tcp) => tcp.try_io(Interest::WRITABLE, || {
                    call(tcp.as_fd()).map_err(io::Error::from)
                }),
                State::Lost => Err(lost()),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.joined()?.writable().await?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}

fn lost() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket could not join the event loop",
    )
}

impl Wire for Plain {
    fn ready(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        match self.0 {
            State::Fresh(_) => Ready::Now,
            _ => match self.joined() {
                Ok(tcp) => Ready::Wait(tcp),
                Err(e) => Ready::Failed(Some(e)),
            },
        }
    }

    fn try_read_now(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match &mut self.0 {
            State::Fresh(socket) | State::Alone(socket) => {
                let r = recv_into(&*socket, buf);
                // Emptied (a short read) or found empty: the next wait joins the event loop.
                if r.as_ref()
                    .map_or_else(|e| e.kind() == io::ErrorKind::WouldBlock, |s| s.1)
                {
                    self.quiet();
                }
                r.map(|(n, _)| n)
            }
            State::Joined(tcp) => read_joined(tcp, buf),
            State::Lost => Err(lost()),
        }
    }

    fn plain(&mut self) -> Option<&mut Plain> {
        Some(self)
    }
}

/// `Plain::ready`: a future of 16 bytes where tokio's `readable()` takes some 60, and every
/// idle connection holds one.
enum Ready<'a> {
    Now,
    Wait(&'a TcpStream),
    Failed(Option<io::Error>),
}

impl Future for Ready<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Ready::Now => Poll::Ready(Ok(())),
            Ready::Wait(tcp) => tcp.poll_read_ready(cx),
            Ready::Failed(e) => Poll::Ready(Err(e.take().unwrap_or_else(lost))),
        }
    }
}

/// One `recv` into `buf`'s spare room (made when there is none): the count, and whether
/// it emptied the socket (it left room). The `recv` is rustix's system call, not libc's
/// wrapper (see `Plain::write_with`).
fn recv_into(socket: impl AsFd, buf: &mut Vec<u8>) -> io::Result<(usize, bool)> {
    if buf.len() == buf.capacity() {
        buf.reserve(4096);
    }
    let room = buf.capacity() - buf.len();
    let into = rustix::buffer::spare_capacity(buf);
    let (n, _) = rustix::net::recv(socket, into, rustix::net::RecvFlags::empty())?;
    Ok((n, n > 0 && n < room))
}

/// A read on a registered socket. One that leaves room in `buf` emptied the socket: its
/// readiness is cleared here, so the next wait goes to the event loop instead of a read
/// that finds nothing (one system call a request fewer; nginx does the same). Bytes that
/// arrive later raise a new event; an end of stream stays ready.
fn read_joined(tcp: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let (n, emptied) = tcp.try_io(Interest::READABLE, || recv_into(tcp, buf))?;
    if emptied {
        forget_readable(tcp);
    }
    Ok(n)
}

/// Reads join the event loop (a read that must wait needs it; the first read of a
/// connection is `try_read_now`). Writes go straight to the socket until one must wait.
impl AsyncRead for Plain {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().joined() {
            Ok(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Plain {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if let State::Fresh(socket) | State::Alone(socket) = &me.0 {
            match rustix::net::send(socket, data, rustix::net::SendFlags::empty()) {
                Err(e) if e == rustix::io::Errno::AGAIN => {}
                r => return Poll::Ready(r.map_err(io::Error::from)),
            }
        }
        match me.joined() {
            Ok(tcp) => Pin::new(tcp).poll_write(cx, data),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Several buffers in one `writev`: h2 hands a frame's head and its payload apart, and
    /// without this each went out in a system call (and a TCP segment) of its own.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if let State::Fresh(socket) | State::Alone(socket) = &me.0 {
            match rustix::io::writev(socket, bufs) {
                Err(e) if e == rustix::io::Errno::AGAIN => {}
                r => return Poll::Ready(r.map_err(io::Error::from)),
            }
        }
        match me.joined() {
            Ok(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            State::Joined(tcp) => Pin::new(tcp).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            State::Fresh(socket) | State::Alone(socket) => {
                let how = rustix::net::Shutdown::Write;
                Poll::Ready(rustix::net::shutdown(&*socket, how).map_err(io::Error::from))
            }
            State::Joined(tcp) => Pin::new(tcp).poll_shutdown(cx),
            State::Lost => Poll::Ready(Err(lost())),
        }
    }
}

/// Clear the socket's read readiness without a system call; the event loop raises it again
/// when bytes arrive (or are already there: the registration reports what is pending).
fn forget_readable(tcp: &TcpStream) {
    let _ = tcp.try_io(Interest::READABLE, || {
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
}

impl Wire for TlsStream {
    /// Decrypted bytes already held count as ready; otherwise wait for the socket, after
    /// sending what the last records asked for (an alert refusing a renegotiation, a
    /// KeyUpdate), which would otherwise wait until our next answer.
    async fn ready(&mut self) -> io::Result<()> {
        send_pending(self).await?;
        let (tcp, tls) = self.get_mut();
        let held = tls.process_new_packets().map_or(true, |s| {
            s.plaintext_bytes_to_read() > 0 || s.peer_has_closed()
        });
        if held {
            return Ok(());
        }
        tcp.readable().await
    }

    /// One read into `buf`, sending what TLS queues meanwhile: the records that come may
    /// ask for an answer (an alert refusing a renegotiation, a KeyUpdate's) and bring no
    /// plaintext, and the client may wait for that answer before it sends the rest.
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        std::future::poll_fn(|cx| loop {
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut *self), cx, buf);
            if read.is_ready() || !self.get_ref().1.wants_write() {
                return read;
            }
            std::task::ready!(Pin::new(&mut *self).poll_flush(cx))?;
        })
        .await
    }

    fn try_read_now(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let waker = Waker::from(Arc::new(Nobody));
        let mut cx = Context::from_waker(&waker);
        let start = buf.len();
        buf.resize(buf.capacity().max(start + 1024), 0);
        let mut rb = ReadBuf::new(&mut buf[start..]);
        let polled = Pin::new(&mut *self).poll_read(&mut cx, &mut rb);
        let n = rb.filled().len();
        buf.truncate(start + n);
        match polled {
            Poll::Ready(Ok(())) => Ok(n),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn plain(&mut self) -> Option<&mut Plain> {
        None
    }
}

/// Send the records TLS has queued, if any.
async fn send_pending(stream: &mut TlsStream) -> io::Result<()> {
    if stream.get_ref().1.wants_write() {
        stream.flush().await?;
    }
    Ok(())
}

/// A connection whose first bytes were already read (the HTTP/2 preface, found where an
/// HTTP/1.1 request was expected): they are read again first, then the stream itself.
pub struct Rewound<W> {
    first: Vec<u8>,
    at: usize,
    inner: W,
}

impl<W> Rewound<W> {
    pub fn new(first: Vec<u8>, inner: W) -> Rewound<W> {
        Rewound {
            first,
            at: 0,
            inner,
        }
    }
}

impl<W: AsyncRead + Unpin> AsyncRead for Rewound<W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let left = &me.first[me.at..];
        if left.is_empty() {
            return Pin::new(&mut me.inner).poll_read(cx, buf);
        }
        let n = left.len().min(buf.remaining());
        buf.put_slice(&left[..n]);
        me.at += n;
        if me.at == me.first.len() {
            me.first = Vec::new();
            me.at = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Rewound<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A waker for a read that must not wait: nobody is woken.
struct Nobody;

impl Wake for Nobody {
    fn wake(self: Arc<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_connection_is_no_bigger_than_tokios_stream() {
        // Every idle connection holds one: its states must not cost a word more.
        assert!(
            std::mem::size_of::<Plain>() <= std::mem::size_of::<TcpStream>(),
            "{} > {}",
            std::mem::size_of::<Plain>(),
            std::mem::size_of::<TcpStream>()
        );
    }
}
