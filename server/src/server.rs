//! The listeners: bind with a real backlog (and deferred accept), accept, cap open
//! connections, spawn a task each (after a TLS handshake on TLS listeners).

use crate::conn::{serve, turn_away, Peer, Shared, Slot};
use crate::wire::Plain;
use libc::c_int;
use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// Bind `addr` with a listen backlog of 1024 (std's 128 drops bursts of new connections).
/// The event loops share this one socket (each gets a duplicate descriptor). No
/// SO_REUSEPORT: with it a second server started on the same port by mistake would bind
/// without an error and silently take a share of the connections. An IPv6 address takes
/// IPv6 only (nginx's and lighttpd's `ipv6only`), so `[::]:80` and `0.0.0.0:80` can both
/// be listed, and no client shows as `::ffff:` an IPv4 address.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    Ok(sock.into())
}

/// The options every connection of `listener` gets, bound here or inherited (systemd, a
/// binary upgrade): accepted sockets inherit them on Linux, one setsockopt each here
/// instead of per connection. TCP_NODELAY, and at most `NOTSENT_LOWAT` bytes held unsent.
pub fn tune(listener: &std::net::TcpListener) -> std::io::Result<()> {
    socket2::SockRef::from(listener).set_nodelay(true)?;
    nix::sys::socket::setsockopt(listener, NotsentLowat, &NOTSENT_LOWAT).map_err(Into::into)
}

// TCP_DEFER_ACCEPT, which nix does not name, through nix's own safe setter.
sockopt_impl!(
    DeferAccept,
    Both,
    libc::IPPROTO_TCP,
    libc::TCP_DEFER_ACCEPT,
    libc::c_int
);

// TCP_NOTSENT_LOWAT, which nix does not name either.
sockopt_impl!(
    NotsentLowat,
    Both,
    libc::IPPROTO_TCP,
    libc::TCP_NOTSENT_LOWAT,
    u32
);

/// Bytes of a response the kernel may hold unsent in a socket (accepted sockets inherit it
/// from the listener). Without a cap a large file's sendfile fills the autotuned send
/// buffer, up to 4 MiB a connection (`net.ipv4.tcp_wmem`), and whoever's ACK frees room
/// then pays for sending it; with 256 KiB (lighttpd's sendfile piece) each piece goes out
/// in the call that queued it. Data in flight is not capped, so a long fat path still gets
/// its full window.
const NOTSENT_LOWAT: u32 = 256 * 1024;

/// Let the kernel hold a new connection until its first bytes arrive, for at most about a
/// second (one SYN-ACK retransmission; a client that stays silent is accepted then), as
/// h2o does: one wake-up accepts the connection with its request already readable.
pub fn defer_accept(socket: &std::net::TcpListener, on: bool) -> std::io::Result<()> {
    nix::sys::socket::setsockopt(socket, DeferAccept, &c_int::from(on)).map_err(Into::into)
}

/// Does the kernel hold this socket's new connections until they send (see `defer_accept`)?
fn defers_accept(socket: &std::net::TcpListener) -> bool {
    nix::sys::socket::getsockopt(socket, DeferAccept).is_ok_and(|secs| secs > 0)
}

/// Accept on every listener until a stop, then keep driving this loop until every
/// connection (on every loop) has finished, or the shutdown timeout passes (none for a
/// reload's stop).
pub async fn run(
    listeners: Vec<std::net::TcpListener>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    tokio::spawn(crate::resolve::close_expired_files());
    let mut accepting = Vec::with_capacity(listeners.len());
    for (i, l) in listeners.into_iter().enumerate() {
        let l = register(l)?;
        shared.accepting.fetch_add(1, Ordering::SeqCst);
        let tls = crate::tls::acceptor(i);
        accepting.push(tokio::spawn(accept_loop(l, tls, Arc::clone(&shared))));
    }
    for a in accepting {
        let _ = a.await;
    }
    // A reload's stop has no deadline until a stop with one comes (the timeout runs from then).
    let mut deadline = None;
    while shared.open.load(Ordering::SeqCst) > 0 {
        let now = tokio::time::Instant::now();
        if !shared.retiring.load(Ordering::SeqCst) {
            let by = *deadline.get_or_insert(now + shared.limits.shutdown_timeout);
            if now >= by {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Accept connections on one listener until a stop; then close it.
async fn accept_loop(listener: Listener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let local = match listener.get_ref().local_addr() {
        Ok(a) => a,
        Err(e) => {
            log::error!("a listening socket has no address: {e}");
            shared.accepting.fetch_sub(1, Ordering::SeqCst);
            return;
        }
    };
    // Registered once, before the flag is checked, so a stop in between is not missed.
    let stop = shared.stop.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    // A connection accepted after its first bytes arrived is read at once; otherwise it
    // waits in the event loop for them.
    let deferred = defers_accept(listener.get_ref());
    loop {
        if shared.stopping() {
            break;
        }
        let accepted = tokio::select! {
            biased;
            _ = &mut stop => break,
            a = accept(&listener) => a,
        };
        let (stream, client) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: back off a little and keep serving.
                log::error!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let (slot, open) = Slot::take(&shared);
        // Bound to one address, every connection arrives on it: no getsockname needed.
        let local = if local.ip().is_unspecified() {
            stream.local_addr().unwrap_or(local)
        } else {
            local
        };
        let peer = Box::new(Peer::plain(client, local));
        if let Some(tls) = &tls {
            // Over the cap a TLS client gets no plain-text 503: the connection closes.
            if open > shared.limits.max_connections {
                warn_at_the_cap(shared.limits.max_connections);
            } else {
                match TcpStream::from_std(stream) {
                    Ok(s) => {
                        tokio::spawn(Box::pin(secure(s, tls.clone(), peer, slot)));
                    }
                    Err(e) => log::error!("a connection could not join the event loop: {e}"),
                }
            }
            continue;
        }
        let stream = Plain::new(stream, deferred);
        if open > shared.limits.max_connections {
            warn_at_the_cap(shared.limits.max_connections);
            tokio::spawn(turn_away(stream, *peer, slot));
            continue;
        }
        // Boxed: two socket addresses are 64 bytes of every idle connection's state otherwise.
        let task = serve(stream, peer, slot);
        log::trace!("connection future: {} bytes", std::mem::size_of_val(&task));
        tokio::spawn(task);
    }
    // No more accepts here: the socket closes (other processes may still hold it).
    drop(listener);
    shared.accepting.fetch_sub(1, Ordering::SeqCst);
}

/// A listening socket, registered with the event loop.
type Listener = AsyncFd<std::net::TcpListener>;

/// Register a listening socket with the event loop, readable only. tokio deprecates the safe
/// constructor because an `AsRawFd` type might not own its descriptor, which could then be
/// closed while registered (its replacement is the same call marked `unsafe`); a
/// `TcpListener` owns its descriptor and keeps it open until the registration is dropped.
#[allow(deprecated)]
fn register(listener: std::net::TcpListener) -> std::io::Result<Listener> {
    AsyncFd::with_interest(listener, Interest::READABLE)
}

/// The next connection, not registered with the event loop (see `Plain`), and its client.
async fn accept(listener: &Listener) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
    use rustix::net::SocketFlags;
    listener
        .async_io(Interest::READABLE, |l| {
            let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
            let (fd, client) = rustix::net::acceptfrom_with(l, flags)?;
            // A TCP connection always has one; a placeholder rather than a lost connection.
            let client = client.and_then(|a| SocketAddr::try_from(a).ok());
            let client = client.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
            Ok((std::net::TcpStream::from(fd), client))
        })
        .await
}

/// Say in the error log that connections are being turned away, at most every 10 s per
/// event loop (nginx: "worker_connections are not enough").
fn warn_at_the_cap(limit: usize) {
    use std::time::{Duration, Instant};
    thread_local! {
        static LAST: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = Instant::now();
    let due = !matches!(LAST.get(), Some(t) if now - t < Duration::from_secs(10));
    if due {
        LAST.set(Some(now));
        log::warn!("max_connections ({limit}) reached: new connections get 503 and are closed until some end\n  fix: raise max_connections in [limits] (an idle connection costs about 1 KB)");
    }
}

/// The body of the answer to plain HTTP on a TLS port.
const PLAIN_ON_TLS: &str = "This port speaks HTTPS: ask for https:// and not http://.\n";

/// A client that speaks plain HTTP to a TLS port (its first byte not a TLS handshake
/// record's 0x16, nor an SSLv2 hello's high bit: nginx's test) gets a 400 in plain HTTP
/// saying so, as nginx and Go's server answer, instead of a TLS alert it cannot read. Its
/// request is read first, so that our close does not reset the answer away.
async fn plain_http_on_tls(stream: &mut TcpStream) -> bool {
    use tokio::io::AsyncWriteExt;
    let mut first = [0u8; 1];
    if !matches!(stream.peek(&mut first).await, Ok(1)) || first[0] == 0x16 || first[0] >= 0x80 {
        return false;
    }
    let _ = stream.try_read(&mut [0u8; 8192]);
    let mut answer = b"HTTP/1.1 400 Bad Request\r\nDate: ".to_vec();
    crate::http::date_now(&mut answer);
    answer.extend_from_slice(
        format!(
            "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_ON_TLS}",
            PLAIN_ON_TLS.len()
        )
        .as_bytes(),
    );
    let _ = stream.write_all(&answer).await;
    let _ = stream.shutdown().await;
    true
}

/// A TLS connection: the handshake (within the header timeout), then HTTP/2 when the client
/// chose it by ALPN, else HTTP/1.1.
async fn secure(mut stream: TcpStream, tls: TlsAcceptor, mut peer: Box<Peer>, slot: Slot) {
    let deadline = tokio::time::Instant::now() + slot.0.limits.header_timeout;
    if let Ok(true) = tokio::time::timeout_at(deadline, plain_http_on_tls(&mut stream)).await {
        return log::debug!("{}: plain HTTP on a TLS port: 400", peer.client);
    }
    let stream = match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return log::debug!("{}: TLS handshake failed: {e}", peer.client),
        Err(_) => return log::debug!("{}: TLS handshake timed out", peer.client),
    };
    // The sites check the SNI name against the Host (421 when they disagree).
    let sni = stream.get_ref().1.server_name().map(str::to_string);
    peer.tls = Some(Box::new(crate::conn::Tls { sni }));
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        crate::h2conn::serve(stream, peer, &slot).await
    } else {
        serve(stream, peer, slot).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_ipv6_listener_takes_ipv6_only_so_an_ipv4_one_may_share_its_port() {
        // On [::1] so the test listens on loopback only; `[::]:80` beside `0.0.0.0:80`
        // starts because of this option (without it the second bind finds the port taken).
        let Ok(l) = super::bind("[::1]:0".parse().unwrap()) else {
            eprintln!("SKIPPED: this machine cannot listen on [::1]");
            return;
        };
        assert!(socket2::SockRef::from(&l).only_v6().unwrap());
    }
}
