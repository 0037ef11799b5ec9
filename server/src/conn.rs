//! One connection: wait for bytes holding no buffer, read a request head and body within the
//! limits, ask the chain, write the reply; keep-alive, pipelining and a graceful close.

use crate::chain::{respond, Answered, Chain};
use crate::config::Limits;
use crate::error_page;
use crate::errors::RequestError;
use crate::http::{parse_head, BodyFraming, Chunked, Head};
use crate::reply::{Body, Framing, Reply};
use crate::send::send;
use crate::wire::Wire;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant, Sleep};

/// What every connection shares.
pub struct Shared {
    /// Every site's chain; swapped whole on reload, so each request sees one consistent
    /// chain.
    pub sites: RwLock<Arc<crate::sites::Sites>>,
    pub limits: Limits,
    pub open: AtomicUsize,
    pub access_log: Option<Arc<crate::access_log::AccessLog>>,
    /// Set once on SIGTERM/SIGINT: stop accepting, close idle connections, finish the rest.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Wakes accept loops and idle connections when `stopping` is set.
    pub stop: tokio::sync::Notify,
    /// Accept loops still running (a worker tells its master once none is).
    pub accepting: AtomicUsize,
    /// The stop is a reload's: the new workers serve, so requests in flight finish however
    /// long they take (each still under its own timeouts), as nginx's old workers do.
    /// Cleared by a stop with `shutdown_timeout` that comes after.
    pub retiring: std::sync::atomic::AtomicBool,
    /// HTTP/2 is served: by ALPN over TLS, and to a plain connection that starts with its
    /// preface.
    pub http2: bool,
    /// The reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed.
    pub trusted: crate::forwarded::Trusted,
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

    /// Put freshly loaded sites in place; requests in flight finish on the old ones.
    pub fn swap_sites(&self, sites: crate::sites::Sites) {
        *self.sites.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(sites);
    }

    pub fn sites(&self) -> Arc<crate::sites::Sites> {
        Arc::clone(&self.sites.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The chain of the site a request is for: by its host (Host, or an absolute-form
    /// target's authority) and, on TLS, the SNI name; 421 when the two disagree. Without a
    /// head (it could not be read), the default site.
    pub fn chain_for(&self, head: Option<&Head>, peer: &Peer) -> Result<Arc<Chain>, RequestError> {
        let sites = self.sites();
        match head {
            // One site answers every name: its host is not even looked at.
            Some(head) if sites.chains().len() > 1 => {
                sites.site_for(crate::sites::request_host(head), peer.sni())
            }
            _ => Ok(sites.default_chain()),
        }
    }
}

/// Where a connection came in: the client's address and ours, and its TLS session.
#[derive(Clone)]
pub struct Peer {
    pub client: SocketAddr,
    pub local: SocketAddr,
    /// `None` on a plain connection; the TLS listener sets it. Boxed: every idle
    /// connection holds a `Peer`, and this keeps it in a smaller allocation (72 bytes).
    pub tls: Option<Box<Tls>>,
}

/// What a TLS connection tells the sites.
#[derive(Clone)]
pub struct Tls {
    /// The server name the client sent in its handshake (SNI), if any.
    pub sni: Option<String>,
}

impl Peer {
    /// A plain-TCP connection. An IPv4 client of a dual-stack socket (one inherited from a
    /// service manager) is its IPv4 address, not `::ffff:` that address, in the log and to
    /// the cases, as the access rules already see it.
    pub fn plain(client: SocketAddr, local: SocketAddr) -> Peer {
        let plain = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        Peer {
            client: plain(client),
            local: plain(local),
            tls: None,
        }
    }

    /// The SNI name of a TLS connection.
    pub fn sni(&self) -> Option<&str> {
        self.tls.as_ref()?.sni.as_deref()
    }
}

/// Decrements the open-connection count when the connection ends.
pub struct Slot(pub Arc<Shared>);

impl Slot {
    /// Count one more open connection; the count it makes.
    pub fn take(shared: &Arc<Shared>) -> (Slot, usize) {
        let open = shared.open.fetch_add(1, Ordering::Relaxed) + 1;
        let stats = crate::stats::get();
        stats.connections.fetch_add(1, Ordering::Relaxed);
        (Slot(Arc::clone(shared)), open)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        let stats = crate::stats::get();
        stats.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Next {
    /// Keep the connection; the buffer is empty.
    Idle,
    /// Every request that arrived is answered and the connection stays; the last one began
    /// at this instant.
    Answered(Instant),
    /// Close now: nothing unread is left that could turn our close into a reset.
    Close,
    /// Close after our answer, but the client may still be sending (a body we refused,
    /// pipelined requests): drain for a moment first, as nginx's lingering_close does.
    Linger,
    /// The client began with the HTTP/2 preface (prior knowledge, RFC 9113 §3.3): these
    /// bytes, read so far, go to HTTP/2 with the rest of the connection.
    Http2(Vec<u8>),
}

/// A step of reading a request: go on with the value, refuse with an error page, or close
/// without answering (the client went away, or sent nothing but blank lines).
enum Step<T> {
    Go(T),
    Refuse(RequestError),
    Close,
}

/// How long a connection accepted just before a stop gets to send its first request.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Serve one connection until it closes. While idle it holds no read buffer: the buffer is
/// allocated when bytes arrive and freed when every request in it is answered.
pub async fn serve(mut stream: impl Wire, peer: Box<Peer>, slot: Slot) {
    // What lives across the idle wait is most of what an idle connection costs: the stream,
    // `peer`, `slot`, a count and the two registrations below; no more (no copies of
    // references into `slot`, no durations).
    let mut served: u32 = 0;
    // Registered once, before the flag is first checked, so a stop in between is not missed;
    // it stays registered while the connection lives (once per request cost a lock each).
    let stop = slot.0.stop.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    let mut stop_seen = false;
    // One idle timer for the connection's life, moved on before each wait: moving a deadline
    // later is a compare-and-swap, where a new timer per request took the timer lock twice.
    let idle = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(idle);
    // A graceful close (close_notify over TLS) only when nothing failed: after a protocol
    // error it would tell the client that all was well.
    let mut graceful = true;
    // The wait starts again only after a request: bytes that brought none (a TLS record
    // without data, such as a KeyUpdate every few seconds) do not put the deadline off.
    let mut answered = true;
    while let Some(wait) = idle_wait(&slot.0, served) {
        let fresh = Instant::now() + wait;
        let deadline = if answered {
            fresh
        } else {
            idle.deadline().min(fresh)
        };
        idle.as_mut().reset(deadline);
        // In this order, without drawing a random one first: bytes that arrived are served
        // even when the idle timer or a stop fired at the same moment (a stop is seen again
        // before the next wait).
        tokio::select! {
            biased;
            r = stream.ready() => if let Err(e) = r {
                graceful = ended_by(&e);
                break;
            },
            _ = &mut idle => break,
            _ = &mut stop, if !stop_seen => {
                stop_seen = true;
                continue;
            }
        }
        let before = served;
        let burst = burst(&mut stream, &slot.0, &peer, &mut served, idle.as_mut());
        match Box::pin(burst).await {
            Ok(Next::Idle | Next::Answered(_)) => {
                answered = served != before;
                continue;
            }
            Ok(Next::Linger) => {
                // Boxed: its scratch buffer must not be part of every idle connection's state.
                // A stop ends it (nginx ends lingering on exit), so a reload's old worker
                // is not kept for it.
                tokio::select! {
                    _ = Box::pin(linger(&mut stream)) => {}
                    _ = &mut stop, if !stop_seen => {}
                }
                graceful = false;
                break;
            }
            Ok(Next::Http2(preface)) => {
                let stream = crate::wire::Rewound::new(preface, stream);
                // Boxed: HTTP/2's state must not be part of every HTTP/1.1 connection's.
                return Box::pin(crate::h2conn::serve(stream, peer, &slot)).await;
            }
            Ok(Next::Close) => break,
            Err(e) => {
                graceful = ended_by(&e);
                break;
            }
        }
    }
    crate::access_log::written_before_close().await;
    if graceful {
        Box::pin(close_notify(&mut stream)).await;
    }
    // `slot`, a parameter, is dropped after the locals borrowing it: the count goes down last.
}

/// How long a connection may wait for its next request: the header timeout for the first
/// (only a moment once a stop began: a reload or an upgrade handed the socket on, and its
/// request may be on its way), the keep-alive timeout after that. `None`: close now (idle
/// while the server stops).
fn idle_wait(shared: &Shared, served: u32) -> Option<Duration> {
    let limits = &shared.limits;
    match (served, shared.stopping()) {
        (0, false) => Some(limits.header_timeout),
        (0, true) => Some(limits.header_timeout.min(FIRST_REQUEST_GRACE)),
        (_, false) => Some(limits.keepalive_timeout),
        (_, true) => None,
    }
}

/// Log what ended a connection; `false`: it may not end gracefully (a TLS protocol error,
/// for which rustls has sent its alert when it had one).
fn ended_by(e: &io::Error) -> bool {
    log::debug!("connection ended: {e}");
    e.kind() != io::ErrorKind::InvalidData
}

/// A TLS connection ends with close_notify (RFC 8446 §6.1 MUST), so the client can tell our
/// close from a cut; at most a moment for a client that does not read. A plain one just
/// closes.
async fn close_notify(stream: &mut impl Wire) {
    if stream.plain().is_none() {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    }
}

/// Close gracefully: stop sending, then read and drop what the client still sends, so the
/// kernel does not answer it with a reset that destroys our last response (RFC 9112 §9.6):
/// a client sending a body we refused (413) reads our answer only once it has sent it all.
/// As nginx's `lingering_close`: until the client stops for 5 s, for 30 s at most.
async fn linger(stream: &mut impl Wire) {
    const QUIET: Duration = Duration::from_secs(5);
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 16 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let quiet = (Instant::now() + QUIET).min(deadline);
        match timeout_at(quiet, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
    }
}

/// The HTTP/2 connection preface (RFC 9113 §3.4): a request no HTTP/1.1 server accepts, so
/// a client may send it without asking first (§3.3). Only the whole of it starts HTTP/2:
/// a `PRI * HTTP/2.0` line followed by anything else is an HTTP/1.1 request (505).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a plain connection's first bytes turned out to be.
enum Preface {
    Http2,
    Http1,
    /// The client went away, or stopped within the preface, before it could be told.
    Gone,
}

/// Does the connection start with HTTP/2's preface? Read on while what came is a piece of
/// it (a client may send it in small writes), within the header timeout.
async fn http2_preface(
    stream: &mut impl Wire,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> io::Result<Preface> {
    let deadline = Instant::now() + limits.header_timeout;
    loop {
        if buf.starts_with(H2_PREFACE) {
            return Ok(Preface::Http2);
        }
        if !H2_PREFACE.starts_with(buf) {
            return Ok(Preface::Http1);
        }
        match timeout_at(deadline, stream.read_more(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(Err(e)) => return Err(e),
            _ => return Ok(Preface::Gone),
        }
    }
}

/// Answer requests while they keep coming: every request in the bytes that arrived
/// (pipelining included), then, for a moment, the next ones.
async fn burst(
    stream: &mut impl Wire,
    shared: &Shared,
    peer: &Peer,
    served: &mut u32,
    mut idle: Pin<&mut Sleep>,
) -> io::Result<Next> {
    // When the last request of this burst began.
    let mut last = None;
    loop {
        let mut buf = crate::pool::Buf::take(4096);
        match stream.try_read_now(&mut buf) {
            Ok(0) => return Ok(Next::Close),
            Ok(_) => match answer_all(stream, shared, peer, served, &mut buf).await? {
                Next::Answered(at) => last = Some(at),
                next => return Ok(next),
            },
            // Stale readiness: the read finds nothing (which clears it).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        // While it waits for its next request the connection holds no buffer.
        drop(buf);
        match last {
            Some(at) if next_soon(stream, shared, idle.as_mut(), at).await => {}
            _ => return Ok(Next::Idle),
        }
    }
}

/// How long a connection that just answered waits for its next request inside its burst,
/// keeping the burst's state (a busy client's next request comes within moments), before
/// it goes back to idle, which frees that state.
const NEXT_SOON: Duration = Duration::from_millis(50);

/// At most this many connections of one event loop wait for their next request inside
/// their burst at once; the others go straight back to idle. Each keeps its burst's state
/// (1.5 KB) while it waits: many connections answered in one rush (a client opening
/// thousands) would otherwise leave that much scattered through the heap, raising what
/// every idle connection costs afterwards.
const MAX_WAITING_SOON: u32 = 64;

thread_local! {
    // Per thread: each event loop is a current-thread runtime, so a connection's task
    // takes and gives back its place on the same thread.
    static WAITING_SOON: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One connection's place among those waiting soon; given back when dropped.
struct WaitingSoon;

impl WaitingSoon {
    fn take() -> Option<WaitingSoon> {
        WAITING_SOON.with(|n| {
            let now = n.get();
            (now < MAX_WAITING_SOON).then(|| {
                n.set(now + 1);
                WaitingSoon
            })
        })
    }
}

impl Drop for WaitingSoon {
    fn drop(&mut self) {
        WAITING_SOON.with(|n| n.set(n.get() - 1));
    }
}

/// Did bytes arrive within `NEXT_SOON` (or the keep-alive timeout, when shorter; at least
/// half that) of `at`, when the last request began? No clock read: an answer that took
/// longer than that goes straight back to idle. Not while the server stops (the connection
/// then goes back to idle, which closes it), nor when `MAX_WAITING_SOON` others wait.
async fn next_soon(
    stream: &mut impl Wire,
    shared: &Shared,
    mut idle: Pin<&mut Sleep>,
    at: Instant,
) -> bool {
    if shared.stopping() {
        return false;
    }
    let Some(_place) = WaitingSoon::take() else {
        return false;
    };
    // Moving the timer costs some hundred instructions: a deadline still at least half the
    // wait away (set by an earlier request of this run) is kept as it is.
    let wait = shared.limits.keepalive_timeout.min(NEXT_SOON);
    let (due, latest) = (idle.deadline(), at + wait);
    if idle.is_elapsed() || due < latest - wait / 2 || due > latest {
        idle.as_mut().reset(latest);
    }
    tokio::select! {
        biased;
        r = stream.ready() => r.is_ok(),
        _ = idle => false,
    }
}

/// Answer every request whose bytes are in `buf`, reading more when one is incomplete.
async fn answer_all(
    stream: &mut impl Wire,
    shared: &Shared,
    peer: &Peer,
    served: &mut u32,
    buf: &mut crate::pool::Buf,
) -> io::Result<Next> {
    let limits = &shared.limits;
    loop {
        // 0. HTTP/2 instead, on a plain connection that starts with its preface.
        // (Boxed, and only for a request that starts as the preface does: its wait must
        // not be part of every burst's state.)
        let maybe_h2 = *served == 0 && shared.http2 && buf.first() == Some(&b'P');
        if maybe_h2 && stream.plain().is_some() {
            match Box::pin(http2_preface(stream, buf, limits)).await? {
                Preface::Http2 => {
                    let preface = buf.to_vec();
                    buf.clear();
                    return Ok(Next::Http2(preface));
                }
                Preface::Http1 => {}
                Preface::Gone => return Ok(Next::Close),
            }
        }
        // 1. The head.
        let head = match read_head(stream, buf, limits).await? {
            Step::Go(head) => head,
            Step::Refuse(e) => {
                let line = first_line(buf);
                return Box::pin(refuse(stream, shared, peer, Err(line), e)).await;
            }
            Step::Close => return Ok(Next::Close),
        };
        *served += 1;
        let since = Instant::now();
        // 2. What every request must get right before any case runs.
        let framing = match admit(&head) {
            Ok(f) => f,
            Err(e) => return Box::pin(refuse(stream, shared, peer, Ok(&head), e)).await,
        };
        // Behind a trusted proxy, the client and scheme it names.
        let peer = &*crate::forwarded::peer_for(&shared.trusted, peer, &head);
        // 3. The body, read whole (bounded), so the next request on the connection parses;
        // unless the chain refuses the method whatever the body says (then close).
        if let Some(refused) = refused_before_body(shared, peer, &head, &framing, buf) {
            return Box::pin(close_with(stream, shared, peer, Ok(&head), refused)).await;
        }
        let body = match read_body(stream, buf, &head, &framing, limits).await? {
            Step::Go(body) => body,
            Step::Refuse(e) => return Box::pin(refuse(stream, shared, peer, Ok(&head), e)).await,
            Step::Close => {
                let seen = Logged::of(Some(&head), since);
                log_access(shared, peer, &seen, RequestError::ClientGone.status(), None);
                return Ok(Next::Close);
            }
        };
        // 4. The chain's answer.
        let mut wire = wire_framing(&head, shared, *served);
        if !answer(stream, shared, peer, (&head, since), body, &mut wire).await? {
            return Ok(Next::Close);
        }
        // 5. What the connection does next.
        match (wire.close, buf.is_empty()) {
            (true, true) => return Ok(Next::Close),
            (true, false) => return Ok(Next::Linger),
            (false, true) => return Ok(Next::Answered(since)),
            (false, false) => {}
        }
    }
}

/// The chain's refusal of a request whose body has not all come (a client waiting for 100
/// Continue, a large upload, a body trickled slowly), when the head alone decides it (a
/// method the case that would act does not take): answered at once, and the connection
/// closed, instead of waiting for a body that may come slowly or never. Nothing pipelined
/// can be in `buf` then (it holds less than this body). A body here whole is read as usual.
fn refused_before_body(
    shared: &Shared,
    peer: &Peer,
    head: &Head,
    framing: &BodyFraming,
    buf: &[u8],
) -> Option<Reply> {
    let BodyFraming::Length(len) = *framing else {
        return None;
    };
    // One over the limit is 413 first (as nginx).
    if len <= buf.len() as u64 || len > shared.limits.max_body {
        return None;
    }
    decided_by_head(shared, peer, head, len)
}

/// The answer of the chain for `head`'s site when the head alone decides it, for a body of
/// `len` bytes still to come (both protocols).
pub fn decided_by_head(shared: &Shared, peer: &Peer, head: &Head, len: u64) -> Option<Reply> {
    let chain = shared.chain_for(Some(head), peer).ok()?;
    crate::chain::refused_before_body(&chain, head, peer, len as usize)
}

/// Read until a whole head is in `buf` (within the header timeout, counted from the
/// request's first byte), then take it off the front of `buf`.
async fn read_head(
    stream: &mut impl Wire,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> io::Result<Step<Head>> {
    // Armed only when the head is not all here yet, which is rare.
    let mut deadline = None;
    loop {
        match parse_head(buf, limits) {
            Ok(Some(head)) => {
                buf.drain(..head.len);
                return Ok(Step::Go(head));
            }
            Ok(None) => {}
            Err(e) => return Ok(Step::Refuse(e)),
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        let deadline = *deadline.get_or_insert_with(|| Instant::now() + limits.header_timeout);
        match timeout_at(deadline, stream.read_more(buf)).await {
            Ok(Ok(0)) => return Ok(Step::Close),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            // Blank lines only (a keep-alive probe): close quietly, nothing was asked.
            Err(_) if buf.iter().all(u8::is_ascii_whitespace) => return Ok(Step::Close),
            Err(_) => return Ok(Step::Refuse(RequestError::HeadTimeout)),
        }
    }
}

/// Checks every request gets before any case runs: Host (RFC 9112 §3.2), body framing
/// (§6) and Expect (RFC 9110 §10.1.1).
pub fn admit(head: &Head) -> Result<BodyFraming, RequestError> {
    let mut hosts = head.all("host");
    let host = hosts.next();
    let bad_host = hosts.next().is_some()
        || (head.minor >= 1 && host.is_none())
        || host.is_some_and(|h| !crate::http::is_authority(h));
    if bad_host {
        return Err(RequestError::BadHost);
    }
    absolute_form(&head.target)?;
    let framing = head.framing()?;
    expects_continue(head)?;
    Ok(framing)
}

/// What the Expect lines ask, as one list (RFC 9110 §5.3): `Ok(true)` for 100-continue,
/// `Err` for an expectation we cannot meet (417). Empty members ask for nothing (nginx and
/// lighttpd ignore an empty Expect).
fn expects_continue(head: &Head) -> Result<bool, RequestError> {
    let members = head
        .all("expect")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|m| !m.is_empty());
    let mut wants = false;
    for m in members {
        if !m.eq_ignore_ascii_case(b"100-continue") {
            return Err(RequestError::Expectation);
        }
        wants = true;
    }
    Ok(wants)
}

/// An absolute-form target names a host, without userinfo (RFC 9110 §4.2.1, §4.2.4). A
/// fragment after its path is cut as in origin-form (nginx and lighttpd serve both); one
/// inside the authority (`http://x#f/p`) leaves no host, 400.
fn absolute_form(target: &[u8]) -> Result<(), RequestError> {
    let Some(rest) = crate::chain::after_scheme(target) else {
        return Ok(());
    };
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    if !crate::http::is_authority(&rest[..end]) {
        return Err(RequestError::BadAuthority);
    }
    Ok(())
}

/// Connection management for the reply (RFC 9112 §9.3): HTTP/1.1 persists unless told to
/// close, HTTP/1.0 only with keep-alive; a stop or the per-connection cap closes, and so
/// does a CONNECT (always refused here): its client may already be sending the tunnel's
/// bytes, which must not be read as requests (nginx and lighttpd close too).
fn wire_framing(head: &Head, shared: &Shared, served: u32) -> Framing {
    let keep_alive_10 = head.minor == 0 && head.has_token("connection", "keep-alive");
    Framing {
        minor: head.minor,
        close: shared.stopping()
            || head.has_token("connection", "close")
            || (head.minor == 0 && !keep_alive_10)
            || served >= shared.limits.max_requests_per_connection
            || head.method == "CONNECT",
        keep_alive_10,
        head_only: head.method == "HEAD",
    }
}

/// How much of a streamed answer an HTTP/1.0 client that keeps its connection may wait
/// for, and how long, before it is sent delimited by the close instead.
const WHOLE_FOR_HTTP10_BYTES: usize = 64 * 1024;
const WHOLE_FOR_HTTP10_WAIT: Duration = Duration::from_millis(500);

/// An HTTP/1.0 client keeps its connection only for an answer with a length: is this a
/// case's stream of unknown length going to one that asked to keep it?
fn streams_to_http10_keep_alive(reply: &Reply, head: &Head, wire: &Framing) -> bool {
    head.minor == 0
        && !wire.close
        && matches!(reply.body, Body::Stream(_, None))
        && !crate::reply::bodiless(reply.status)
}

/// Such a stream (a CGI script's page) that ends soon goes whole, with a length, as nginx,
/// lighttpd and Caddy send it; a longer or slower one still ends with the close.
async fn whole_for_http10(mut reply: Reply) -> Reply {
    if let Body::Stream(rx, None) = &mut reply.body {
        let gathered = rx.whole(WHOLE_FOR_HTTP10_BYTES, WHOLE_FOR_HTTP10_WAIT);
        if let Some(body) = gathered.await {
            reply.body = Body::Bytes(body);
        }
    }
    reply
}

/// Ask the chain and write its reply. Ok(false): the body could not be completed, so the
/// connection must close.
async fn answer(
    stream: &mut impl Wire,
    shared: &Shared,
    peer: &Peer,
    (head, since): (&Head, Instant),
    body: Vec<u8>,
    wire: &mut Framing,
) -> io::Result<bool> {
    let answered = match shared.chain_for(Some(head), peer) {
        Ok(chain) => respond(&chain, shared.limits.max_ranges, head, body, peer).await,
        Err(e) => Answered {
            reply: error_page::refusal(e, &head.target),
            remote_user: None,
            close: false,
        },
    };
    wire.close |= answered.close;
    let mut reply = answered.reply;
    if streams_to_http10_keep_alive(&reply, head, wire) {
        // Boxed: its state need not be in every request's.
        reply = Box::pin(whole_for_http10(reply)).await;
    }
    // An HTTP/1.0 client learns where a body of unknown length (a case's stream, a
    // filter's coding) ends from the close, as `write_head` announces; and a stop that
    // began while the case was working is announced in this reply.
    let unknown_length = reply.body.len().is_none() && !crate::reply::bodiless(reply.status);
    wire.close |= unknown_length && head.minor == 0;
    wire.close |= shared.stopping();
    let seen = Logged {
        user: answered.remote_user.as_deref(),
        ..Logged::of(Some(head), since)
    };
    write_reply(stream, shared, peer, seen, reply, wire).await
}

/// Answer a request the host refuses before any case runs (400, 408, 413, 431...), and
/// close gracefully: the client may still be sending. `head` is the request's head, or,
/// when none could be read, the first line that came (for the access log). Callers box
/// it, so its state is not part of every burst's.
async fn refuse(
    stream: &mut impl Wire,
    shared: &Shared,
    peer: &Peer,
    head: Result<&Head, &[u8]>,
    err: RequestError,
) -> io::Result<Next> {
    let target = head.map_or(&b""[..], |h| &h.target);
    let mut reply = error_page::refusal(err, target);
    if let (Ok(h), Ok(chain)) = (head, shared.chain_for(head.ok(), peer)) {
        reply = crate::chain::filter_refusal(&chain, reply, h, peer);
    }
    let next = close_with(stream, shared, peer, head, reply).await?;
    // A client too slow to send its request is not waited for again (nginx closes a timed
    // out request at once): only a refused body or pipelined requests are read and dropped.
    let timed_out = matches!(err, RequestError::HeadTimeout | RequestError::BodyTimeout);
    Ok(if timed_out { Next::Close } else { next })
}

/// Send `reply` (already through the filters) and close gracefully. `head` as `refuse`'s.
async fn close_with(
    stream: &mut impl Wire,
    shared: &Shared,
    peer: &Peer,
    head: Result<&Head, &[u8]>,
    reply: Reply,
) -> io::Result<Next> {
    let (head, raw_line) = match head {
        Ok(h) => (Some(h), &b""[..]),
        Err(line) => (None, line),
    };
    // A refused HEAD still gets no body (RFC 9110 §9.3.2), only GET's head: also when its
    // head could not be read whole (a bad field, a long target), as nginx answers it.
    let head_only = match head {
        Some(h) => h.method == "HEAD",
        None => raw_line.starts_with(b"HEAD "),
    };
    let wire = Framing {
        head_only,
        ..Framing::closing(head.map_or(1, |h| h.minor))
    };
    let seen = Logged {
        raw_line,
        ..Logged::of(head, Instant::now())
    };
    write_reply(stream, shared, peer, seen, reply, &wire).await?;
    Ok(Next::Linger)
}

/// The first line of a request that could not be read (blank lines before it skipped, at
/// most 1 KiB): what the access log shows of it, escaped, as nginx logs a bad request line.
fn first_line(buf: &[u8]) -> &[u8] {
    let line = crate::http::request_line(&buf[crate::http::blank_lines(buf)..]);
    &line[..line.len().min(1024)]
}

/// Over the connection cap: a short 503 and close, costing almost nothing.
pub async fn turn_away(mut stream: crate::wire::Plain, peer: Peer, slot: Slot) {
    let reply = error_page::reply(
        503,
        b"",
        "the server is at its connection limit; try again shortly",
    )
    .header_const("Retry-After", "1");
    let shared: &Shared = &slot.0;
    let _ = write_reply(
        &mut stream,
        shared,
        &peer,
        Logged::of(None, Instant::now()),
        reply,
        &Framing::closing(1),
    )
    .await;
    let _ = stream.shutdown().await;
}

/// What the access log and the counters need of a request besides its answer.
pub struct Logged<'a> {
    /// `None` when the head could not be read.
    pub head: Option<&'a Head>,
    pub since: Instant,
    /// `REMOTE_USER` as a case set it: the combined format's third field.
    pub user: Option<&'a [u8]>,
    /// Without a head: the first line of what the client sent, for the log.
    pub raw_line: &'a [u8],
}

impl<'a> Logged<'a> {
    pub fn of(head: Option<&'a Head>, since: Instant) -> Logged<'a> {
        Logged {
            head,
            since,
            user: None,
            raw_line: b"",
        }
    }
}

/// The one write path for every answer on a connection: send it, then log and count it
/// with the body bytes that went out (nginx logs after the send too).
async fn write_reply(
    stream: &mut impl Wire,
    shared: &Shared,
    peer: &Peer,
    seen: Logged<'_>,
    reply: Reply,
    wire: &Framing,
) -> io::Result<bool> {
    let status = reply.status;
    let mut bytes = 0;
    let sent = send(stream, reply, wire, shared.limits.send_timeout, &mut bytes).await;
    if sent
        .as_ref()
        .is_err_and(|e| e.kind() == io::ErrorKind::TimedOut)
    {
        // nginx's "client timed out ... while sending response to client", also at info.
        let target = seen.head.map(|h| String::from_utf8_lossy(&h.target));
        log::info!(
            "{}: client read nothing for {:?} (send_timeout) while sending {}; closing after {bytes} bytes",
            peer.client,
            shared.limits.send_timeout,
            target.as_deref().unwrap_or("an answer")
        );
    }
    log_access(shared, peer, &seen, status, Some(bytes));
    crate::stats::get().record(status, bytes, seen.since.elapsed());
    sent
}

/// One access log line, when the access log is on: held with the lines of the event loop's
/// other answers, and written with them (see `access_log::hold`).
pub fn log_access(shared: &Shared, peer: &Peer, seen: &Logged, status: u16, bytes: Option<u64>) {
    let head = seen.head;
    log::debug!(
        "{} {:?} {status}",
        peer.client,
        head.map(|h| String::from_utf8_lossy(&h.target))
    );
    let Some(log) = shared.access_log.as_ref() else {
        return;
    };
    let entry = crate::access_log::Entry {
        vhost: log
            .vhost
            .then(|| (head.and_then(crate::sites::request_host), peer.local.port())),
        client: peer.client.ip(),
        user: seen.user,
        request: head.map(|h| (&*h.method, &h.target[..], version(h))),
        raw_line: seen.raw_line,
        status,
        bytes,
        referer: head.and_then(|h| h.header("referer")),
        user_agent: head.and_then(|h| h.header("user-agent")),
    };
    crate::access_log::hold(log, |out| {
        crate::http::with_date_now(|_, date| crate::access_log::format(out, &entry, date))
    });
}

/// The request's protocol as the access log and CGI's SERVER_PROTOCOL name it.
pub fn version(head: &Head) -> &'static str {
    match (head.h2, head.minor) {
        (true, _) => "HTTP/2.0",
        (false, 0) => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// Read the body whole (up to `max_body`), after a `100 Continue` when the client waits
/// for one.
async fn read_body(
    stream: &mut impl Wire,
    buf: &mut Vec<u8>,
    head: &Head,
    framing: &BodyFraming,
    limits: &Limits,
) -> io::Result<Step<Vec<u8>>> {
    if let BodyFraming::Length(n) = *framing {
        if n > limits.max_body {
            return Ok(Step::Refuse(RequestError::BodyTooLarge));
        }
    }
    // 100 Continue only when the client waits for it and the body is not already here.
    let expects = *framing != BodyFraming::None
        && head.minor >= 1
        && buf.is_empty()
        && expects_continue(head) == Ok(true);
    if expects {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    match *framing {
        BodyFraming::None => Ok(Step::Go(Vec::new())),
        // Boxed: a body is the rarer case, and its reads' state need not be in every burst's.
        BodyFraming::Length(n) => {
            Box::pin(read_length(stream, buf, n as usize, &mut Pace::new(limits))).await
        }
        BodyFraming::Chunked => {
            Box::pin(read_chunked(
                stream,
                buf,
                limits.max_body,
                &mut Pace::new(limits),
            ))
            .await
        }
    }
}

/// A body of exactly `n` bytes; what follows it stays in `buf` for the next request.
async fn read_length(
    stream: &mut impl Wire,
    buf: &mut Vec<u8>,
    n: usize,
    pace: &mut Pace,
) -> io::Result<Step<Vec<u8>>> {
    while buf.len() < n {
        buf.reserve((n - buf.len()).min(1 << 16));
        if let Some(stop) = read_more(stream, buf, pace).await? {
            return Ok(stop);
        }
    }
    let rest = buf.split_off(n);
    Ok(Step::Go(std::mem::replace(buf, rest)))
}

/// A chunked body, decoded as it arrives, refused past `max` bytes.
async fn read_chunked(
    stream: &mut impl Wire,
    buf: &mut Vec<u8>,
    max: u64,
    pace: &mut Pace,
) -> io::Result<Step<Vec<u8>>> {
    let mut dec = Chunked::default();
    let mut body = Vec::new();
    loop {
        let used = match dec.feed(buf, &mut body, max) {
            Ok(used) => used,
            Err(e) => return Ok(Step::Refuse(e)),
        };
        buf.drain(..used);
        if dec.done {
            return Ok(Step::Go(body));
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(1 << 14);
        }
        if let Some(stop) = read_more(stream, buf, pace).await? {
            return Ok(stop);
        }
    }
}

/// One read of body bytes under the pace's deadline. `Some` ends the body: the client
/// closed (no answer) or was too slow (408).
async fn read_more<T>(
    stream: &mut impl Wire,
    buf: &mut Vec<u8>,
    pace: &mut Pace,
) -> io::Result<Option<Step<T>>> {
    let before = buf.len();
    match timeout_at(pace.deadline(), stream.read_more(buf)).await {
        Ok(Ok(0)) => Ok(Some(Step::Close)),
        Ok(Ok(_)) => {
            pace.got(buf.len() - before);
            Ok(None)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(Some(Step::Refuse(RequestError::BodyTimeout))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_so_many_connections_of_a_loop_wait_soon_at_once() {
        let mut places: Vec<WaitingSoon> = (0..MAX_WAITING_SOON)
            .map(|_| WaitingSoon::take().expect("a place below the cap"))
            .collect();
        assert!(WaitingSoon::take().is_none(), "the cap is full");
        places.pop();
        let again = WaitingSoon::take();
        assert!(again.is_some(), "a place given back is free again");
        assert!(WaitingSoon::take().is_none(), "and only that one");
    }
}
