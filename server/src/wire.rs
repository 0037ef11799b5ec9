//! What an HTTP/1.1 connection runs over: a plain TCP socket (files go out with sendfile) or
//! a TLS stream on one (files are read and encrypted), behind one trait.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A TLS connection after its handshake.
pub type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// A byte stream to a client.
pub trait Wire: AsyncRead + AsyncWrite + Unpin + Send {
    /// Wait until the client has sent something (which may turn out to be nothing for us).
    fn ready(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Read what is there now into `buf`'s spare room; `WouldBlock` when nothing is.
    fn try_read_now(&mut self, buf: &mut Vec<u8>) -> io::Result<usize>;
    /// The socket itself when what is written to it reaches the client as is (no TLS), so
    /// files can go out with sendfile.
    fn plain(&self) -> Option<&TcpStream>;
}

impl Wire for TcpStream {
    async fn ready(&mut self) -> io::Result<()> {
        self.readable().await
    }

    /// A read that leaves room in `buf` emptied the socket: its readiness is cleared here,
    /// so the next wait goes to the event loop instead of a read that finds nothing (one
    /// system call a request fewer; nginx does the same). Bytes that arrive later raise a
    /// new event; an end of stream stays ready.
    ///
    /// The `recv` is rustix's system call, not libc's wrapper: the wrapper marks each call
    /// as a cancellation point with two locked instructions, for threads this server never
    /// cancels.
    fn try_read_now(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if buf.len() == buf.capacity() {
            buf.reserve(4096);
        }
        let room = buf.capacity() - buf.len();
        let n = self.try_io(Interest::READABLE, || {
            let into = rustix::buffer::spare_capacity(buf);
            rustix::net::recv(&*self, into, rustix::net::RecvFlags::empty())
                .map(|(n, _)| n)
                .map_err(io::Error::from)
        })?;
        if n > 0 && n < room {
            forget_readable(self);
        }
        Ok(n)
    }

    fn plain(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

/// Clear the socket's read readiness without a system call; the event loop raises it again
/// when bytes arrive (or are already there: the registration reports what is pending).
fn forget_readable(tcp: &TcpStream) {
    let _ = tcp.try_io(Interest::READABLE, || {
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
}

/// A socket just accepted waits for its first bytes in the event loop, as nginx's does
/// (without `deferred`): tokio assumes it readable, and the read that assumption makes
/// right away almost always finds nothing yet, the client's request still on its way.
/// No event is lost: each event loop is a current-thread runtime, so its driver has not
/// run since the registration, and bytes already queued then raise the event at its next
/// turn.
pub fn wait_for_first_bytes(tcp: &TcpStream) {
    forget_readable(tcp);
}

impl Wire for TlsStream {
    /// Decrypted bytes already held count as ready; otherwise wait for the socket.
    async fn ready(&mut self) -> io::Result<()> {
        let (tcp, tls) = self.get_mut();
        let held = tls.process_new_packets().map_or(true, |s| {
            s.plaintext_bytes_to_read() > 0 || s.peer_has_closed()
        });
        if held {
            return Ok(());
        }
        tcp.readable().await
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

    fn plain(&self) -> Option<&TcpStream> {
        None
    }
}

/// A waker for a read that must not wait: nobody is woken.
struct Nobody;

impl Wake for Nobody {
    fn wake(self: Arc<Self>) {}
}
