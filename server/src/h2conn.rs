//! One HTTP/2 connection (RFC 9113), over TLS or cleartext with prior knowledge: accept streams within the limits, answer each
//! on a task of its own through the same chain, filters and host stages as HTTP/1.1, and
//! close a connection that abuses resets (RFC 9113 §10.5, CVE-2023-44487).

use crate::config::Limits;
use crate::conn::{admit, log_access, Logged, Peer, Shared, Slot};
use crate::errors::RequestError;
use crate::h2hold;
use crate::http::{Fields, Head};
use crate::reply::Reply;
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{timeout, Instant};

/// Streams a client may have open at once (nginx's `http2_max_concurrent_streams`).
pub const MAX_STREAMS: u32 = 128;
/// Streams the client resets before we accept them, beyond which h2 answers GOAWAY
/// ENHANCE_YOUR_CALM (h2's own rapid-reset guard).
const MAX_PENDING_RESETS: usize = 50;
/// Streams we reset because the client broke the protocol, beyond which the connection goes
/// (h2's default). Streams past MAX_STREAMS count too, and a client may send more than that
/// before it has seen our SETTINGS (RFC 9113 §6.5.2): 300 at once cost a connection at 128.
const MAX_ERROR_RESETS: usize = 1024;
/// Streams the client may cancel after we started answering them within `RESET_WINDOW`;
/// past it the connection is closed with GOAWAY ENHANCE_YOUR_CALM.
const MAX_RESETS: u32 = 2 * MAX_STREAMS;
const RESET_WINDOW: Duration = Duration::from_secs(10);

/// What a connection's stream tasks tell it.
#[derive(Default)]
struct Streams {
    /// Stream tasks still running.
    active: AtomicUsize,
    /// Woken when a stream task ends (the connection may have become idle).
    ended: Notify,
    /// Client resets in the current window, and when it began.
    resets: Mutex<(u32, Option<Instant>)>,
    /// Woken when the resets pass `MAX_RESETS`.
    calm: Notify,
}

impl Streams {
    /// Count a stream the client cancelled while we worked on it.
    fn client_reset(&self) {
        let mut r = self.resets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if !r.1.is_some_and(|since| now - since <= RESET_WINDOW) {
            *r = (0, Some(now));
        }
        r.0 += 1;
        if r.0 > MAX_RESETS {
            self.calm.notify_one();
        }
    }
}

/// What h2 holds of one stream's answer, unsent.
const MAX_SEND_BUFFER: usize = 64 * 1024;

/// How long an idle connection told to go away (GOAWAY and a PING) gets to answer the
/// PING and close; then it is closed (nginx closes an idle HTTP/2 connection at once).
const GOODBYE_WAIT: Duration = Duration::from_secs(2);

/// The h2 settings: stream and header limits, flow-control windows, reset guards.
fn builder(limits: &Limits) -> h2::server::Builder {
    let mut b = h2::server::Builder::new();
    b.max_concurrent_streams(MAX_STREAMS)
        // Twice ours: `head` answers a list past max_header_bytes with the host's 431; h2's
        // own, past this, is a bare status.
        .max_header_list_size(limits.max_header_bytes.saturating_mul(2).min(1 << 24) as u32)
        .initial_window_size(256 * 1024)
        .initial_connection_window_size(1 << 20)
        // What h2 holds of a stream's answer until the connection can write it (400 KiB by
        // default): a client that opens wide windows on 128 downloads and reads nothing
        // held 48 MB of a worker's memory; at this, 8 MB.
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(Some(MAX_ERROR_RESETS));
    b
}

/// Serve one HTTP/2 connection until it closes: the client's GOAWAY or EOF, ours on a stop,
/// after `keepalive_timeout` without streams, after `max_requests_per_connection` streams,
/// or on abuse.
pub async fn serve<S>(stream: S, peer: Box<Peer>, slot: &Slot)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (held, release) = h2hold::hold(stream);
    h2hold::after_each_poll(run(held, &release, peer, slot), &release).await
}

/// [`serve`] over a connection whose writes are held until each poll ends.
async fn run<S, T>(stream: S, release: &h2hold::Release<T>, peer: Box<Peer>, slot: &Slot)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let shared = Arc::clone(&slot.0);
    let limits = &shared.limits;
    let mut conn = match timeout(limits.header_timeout, builder(limits).handshake(stream)).await {
        Ok(Ok(c)) => c,
        _ => return,
    };
    let streams = Arc::new(Streams::default());
    let peer: Arc<Peer> = Arc::from(peer);
    let mut closing = false;
    // Our GOAWAY was an abrupt one (ENHANCE_YOUR_CALM): no final GOAWAY is owed after it.
    let mut abrupt = false;
    let mut accepted: u32 = 0;
    loop {
        let stop = shared.stop.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        if shared.stopping() && !closing {
            closing = true;
            conn.graceful_shutdown();
        }
        // Idle: the keep-alive wait, then a graceful GOAWAY. After any graceful GOAWAY (an
        // idle one, a stop's, the one after max_requests_per_connection), once no stream
        // is left, the client gets GOODBYE_WAIT to end its part (h2 waits for the PING it
        // sent with the GOAWAY to come back, which a client may never do), then the final
        // GOAWAY goes out and the connection is closed.
        let idle = streams.active.load(Ordering::SeqCst) == 0;
        release.set_idle(idle);
        let idle_wait = match (idle, closing) {
            (true, false) => limits.keepalive_timeout,
            (true, true) if !abrupt => GOODBYE_WAIT,
            // Busy: only to see whether the client still reads what we send.
            _ => limits.send_timeout,
        };
        let idle_wait = match release.stalled_since() {
            Some(t) => {
                idle_wait.min((t + limits.send_timeout).saturating_duration_since(Instant::now()))
            }
            None => idle_wait,
        };
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((req, mut respond))) => {
                    accepted = accepted.saturating_add(1);
                    let over = accepted.saturating_sub(limits.max_requests_per_connection.saturating_add(MAX_STREAMS));
                    if closing && over > 0 {
                        // A client that goes on after our GOAWAY, without answering its
                        // PING (which holds back the GOAWAY naming its last stream): its
                        // new streams are refused, and after as many as it may have open
                        // at once, the connection ends.
                        respond.send_reset(Reason::REFUSED_STREAM);
                        if over > MAX_STREAMS && !abrupt {
                            log::info!("{}: HTTP/2 client ignored the GOAWAY of max_requests_per_connection; closing with ENHANCE_YOUR_CALM", peer.client);
                            abrupt = true;
                            conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                        }
                        continue;
                    }
                    streams.active.fetch_add(1, Ordering::SeqCst);
                    let task = answer(req, respond, Arc::clone(&shared), Arc::clone(&peer), Arc::clone(&streams));
                    tokio::spawn(Box::pin(task));
                    // As over HTTP/1.1 (and nginx's keepalive_requests over HTTP/2): a
                    // graceful GOAWAY once the connection has had its share of requests.
                    if accepted >= limits.max_requests_per_connection && !closing {
                        closing = true;
                        conn.graceful_shutdown();
                    }
                }
                Some(Err(e)) => {
                    log::debug!("{}: HTTP/2 connection error: {e}", peer.client);
                    break;
                }
                None => break,
            },
            _ = &mut stop => {}
            _ = streams.ended.notified() => {}
            _ = streams.calm.notified() => {
                log::warn!("{}: HTTP/2 client reset more than {MAX_RESETS} streams in {}s; closing with ENHANCE_YOUR_CALM", peer.client, RESET_WINDOW.as_secs());
                closing = true;
                abrupt = true;
                conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
            }
            _ = tokio::time::sleep(idle_wait) => {
                if release.stalled_since().is_some_and(|t| t.elapsed() >= limits.send_timeout) {
                    // As over HTTP/1.1, and nginx's send_timeout: what is queued for it
                    // (h2's buffers, its streams) must not be held for good.
                    log::info!("{}: HTTP/2 client read nothing for {:?}; closing", peer.client, limits.send_timeout);
                    break;
                }
                if !idle || abrupt {
                    continue;
                }
                if !closing {
                    closing = true;
                    conn.graceful_shutdown();
                } else if !conn.has_streams() {
                    log::debug!("{}: HTTP/2 client did not end the connection after GOAWAY; closing it", peer.client);
                    conn.abrupt_shutdown(Reason::NO_ERROR);
                    let _ = timeout(Duration::from_secs(1), conn.accept()).await;
                    break;
                }
            }
        }
    }
}

/// One stream: read the request, ask the chain, send the reply; counted as a client reset
/// when the client cancels it first.
async fn answer(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    streams: Arc<Streams>,
) {
    if let Err(Cut { by_client: true }) = request(req, &mut respond, &shared, &peer).await {
        streams.client_reset();
    }
    streams.active.fetch_sub(1, Ordering::SeqCst);
    streams.ended.notify_one();
}

/// A stream that ended before its answer was complete; `by_client` when the client reset it.
pub struct Cut {
    pub by_client: bool,
}

impl From<h2::Error> for Cut {
    fn from(e: h2::Error) -> Cut {
        Cut {
            by_client: e.is_reset() && e.is_remote(),
        }
    }
}

/// Read the request and its body, answer it, log it.
async fn request(
    req: http::Request<RecvStream>,
    respond: &mut SendResponse<Bytes>,
    shared: &Shared,
    peer: &Peer,
) -> Result<(), Cut> {
    let since = Instant::now();
    let (parts, body) = req.into_parts();
    let head = match head(&parts, &shared.limits) {
        Ok(h) => h,
        Err(e) => {
            // Its fields refused: the method and target still name it in the log.
            let named = request_line(&parts);
            return refuse(respond, shared, peer, Some(&named), e, since).await;
        }
    };
    if let Err(e) = admit(&head) {
        return refuse(respond, shared, peer, Some(&head), e, since).await;
    }
    let peer = &*crate::forwarded::peer_for(&shared.trusted, peer, &head);
    match before_body(respond, &body, &head, shared, peer) {
        Early::Read => {}
        Early::TooLarge => {
            let e = RequestError::BodyTooLarge;
            return refuse(respond, shared, peer, Some(&head), e, since).await;
        }
        Early::Refused(r) => {
            if !waits_for_answer(&head) {
                let read = read_a_little(body, respond).await;
                read.map_err(|cut| left_early(shared, peer, &head, since, cut))?;
            }
            let seen = Logged::of(Some(&head), since);
            reply(respond, shared, peer, seen, r).await?;
            let_answer_go_first().await;
            return Ok(());
        }
    }
    let read = read_body(body, &shared.limits, respond).await;
    let body = match read.map_err(|cut| left_early(shared, peer, &head, since, cut))? {
        Ok(b) => b,
        Err(e) => return refuse(respond, shared, peer, Some(&head), e, since).await,
    };
    let chain = match shared.chain_for(Some(&head), peer) {
        Ok(chain) => chain,
        Err(e) => return refuse(respond, shared, peer, Some(&head), e, since).await,
    };
    let answered = respond_or_reset(
        respond,
        crate::chain::respond(&chain, shared.limits.max_ranges, &head, body, peer),
    )
    .await
    // Reset by the client, or gone with its connection, while the chain worked.
    .inspect_err(|_| log_left(shared, peer, &head, since))?;
    let seen = Logged {
        user: answered.remote_user.as_deref(),
        ..Logged::of(Some(&head), since)
    };
    reply(respond, shared, peer, seen, answered.reply).await
}

/// What to do before a request body that has not all come.
enum Early {
    /// Read it (after a 100 Continue when the client waits for one).
    Read,
    /// Its declared length is over `max_body`: 413 at once, as nginx answers.
    TooLarge,
    /// The chain's answer does not depend on it (a method the acting case does not take,
    /// one no case knows): sent without waiting for the body (after at most [`GRACE`] of
    /// it), and the rest refused by the stream's reset (RFC 9113 §8.1 allows a complete
    /// response before the whole request).
    Refused(Reply),
}

/// Decide before reading a body still to come. A client sending `Expect: 100-continue`
/// gets the answer or a 100 now; waiting for the body first is what RFC 9110 §10.1.1
/// forbids (and left a CONNECT, whose stream stays open, waiting for body_timeout).
fn before_body(
    respond: &mut SendResponse<Bytes>,
    body: &RecvStream,
    head: &Head,
    shared: &Shared,
    peer: &Peer,
) -> Early {
    if body.is_end_stream() {
        return Early::Read;
    }
    // The declared length, read as HTTP/1.1 reads it (h2 has already checked its form).
    let len = match head.framing() {
        Ok(crate::http::BodyFraming::Length(n)) => n,
        _ => 0,
    };
    if len > shared.limits.max_body {
        return Early::TooLarge;
    }
    if let Some(r) = crate::conn::decided_by_head(shared, peer, head, len) {
        return Early::Refused(r);
    }
    if head.header("expect").is_some() {
        let mut go_on = http::Response::new(());
        *go_on.status_mut() = http::StatusCode::CONTINUE;
        let _ = respond.send_informational(go_on);
    }
    Early::Read
}

/// How long and how much of a body a head-decided answer reads (and drops) first.
const GRACE: Duration = Duration::from_millis(250);
const GRACE_BYTES: usize = 64 * 1024;

/// A client that will not send its body before an answer: it asked for a 100, or its
/// request is a CONNECT (a tunnel's stream stays open).
fn waits_for_answer(head: &Head) -> bool {
    head.header("expect").is_some() || head.method == "CONNECT"
}

/// Before a head-decided answer, read what of the body comes within [`GRACE`], up to
/// [`GRACE_BYTES`], and drop it. A body that follows its head at once is then checked as
/// h2 checks any (a Content-Length the DATA does not match, trailers that do not end the
/// stream: the stream is reset with PROTOCOL_ERROR, RFC 9113 §8.1.1), whether or not its
/// first frame came with the head; one held back or longer gets the answer without it.
async fn read_a_little(mut body: RecvStream, respond: &mut SendResponse<Bytes>) -> Result<(), Cut> {
    let until = Instant::now() + GRACE;
    let mut read = 0;
    while read < GRACE_BYTES {
        let next = respond_or_reset(respond, tokio::time::timeout_at(until, body.data())).await?;
        match next {
            Err(_) | Ok(None) => break,
            Ok(Some(d)) => {
                let d = d?;
                read += d.len();
                let _ = body.flow_control().release_capacity(d.len());
            }
        }
    }
    Ok(())
}

/// Run the chain unless the client cancels the stream first (then the work is dropped).
async fn respond_or_reset<F: std::future::Future>(
    respond: &mut SendResponse<Bytes>,
    work: F,
) -> Result<F::Output, Cut> {
    tokio::select! {
        out = work => Ok(out),
        reset = std::future::poll_fn(|cx| respond.poll_reset(cx)) => Err(Cut {
            by_client: reset.is_ok(),
        }),
    }
}

/// nginx's status for a request whose client left before its answer, in the log only.
const CLIENT_CLOSED: u16 = 499;

/// A request whose client left before its answer went out: logged and counted as nginx
/// logs it (499, nothing sent), so every request read has its line.
fn log_left(shared: &Shared, peer: &Peer, head: &Head, since: Instant) {
    log_access(
        shared,
        peer,
        &Logged::of(Some(head), since),
        CLIENT_CLOSED,
        Some(0),
    );
    crate::stats::get().record(CLIENT_CLOSED, 0, since.elapsed());
}

/// The same while its body was read, when the client reset the stream (a reset of our own,
/// for a malformed body, is not the client leaving).
fn left_early(shared: &Shared, peer: &Peer, head: &Head, since: Instant, cut: Cut) -> Cut {
    if cut.by_client {
        log_left(shared, peer, head, since);
    }
    cut
}

/// A refusal before the chain ran (431, 413, 408, 400), through the filters.
async fn refuse(
    respond: &mut SendResponse<Bytes>,
    shared: &Shared,
    peer: &Peer,
    head: Option<&Head>,
    err: RequestError,
    since: Instant,
) -> Result<(), Cut> {
    let target = head.map_or(&b""[..], |h| &h.target);
    let mut r = crate::error_page::refusal(err, target);
    if let (Some(head), Ok(chain)) = (head, shared.chain_for(head, peer)) {
        r = crate::chain::filter_refusal(&chain, r, head, peer);
    }
    let seen = Logged::of(head, since);
    reply(respond, shared, peer, seen, r).await?;
    let_answer_go_first().await;
    Ok(())
}

/// After an answer sent before the request's body has all come: let the connection write
/// it out before this stream's handles are dropped, which resets the stream (NO_ERROR,
/// RFC 9113 §8.1). Written together, curl 7.88 reads the reset before the answer's head and
/// fails the transfer (error 92) instead of showing the 413 or 405.
async fn let_answer_go_first() {
    tokio::task::yield_now().await;
}

/// Send, log and count one answer, with the body bytes that went out.
async fn reply(
    respond: &mut SendResponse<Bytes>,
    shared: &Shared,
    peer: &Peer,
    seen: Logged<'_>,
    r: Reply,
) -> Result<(), Cut> {
    let head_only = seen.head.is_some_and(|h| h.method == "HEAD");
    let status = r.status;
    let mut bytes = 0;
    let wait = shared.limits.send_timeout;
    let sent = crate::h2send::send(respond, r, head_only, wait, &mut bytes).await;
    log_access(shared, peer, &seen, status, Some(bytes));
    crate::stats::get().record(status, bytes, seen.since.elapsed());
    sent
}

/// The request as the HTTP/1.1 path builds it: method, target (`:path`), and the fields,
/// with `:authority` as Host (RFC 9113 §8.3.1) and the cookie fields joined (§8.2.3). A
/// Host that names another authority, or a value with whitespace around it, makes the
/// request malformed (§8.3.1, §8.2.1): 400.
fn head(parts: &http::request::Parts, limits: &Limits) -> Result<Head, RequestError> {
    within_limits(parts, limits)?;
    let mut headers = Fields::with_capacity(parts.headers.len() + 1, 512);
    if let Some(a) = parts.uri.authority() {
        headers.push(b"host", a.as_str().as_bytes());
    }
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in &parts.headers {
        if value.len() + name.as_str().len() + 2 > limits.max_header_field {
            return Err(RequestError::HeadTooLarge);
        }
        let v = value.as_bytes();
        let padded = |b: Option<&u8>| b.is_some_and(|b| matches!(b, b' ' | b'\t'));
        if padded(v.first()) || padded(v.last()) {
            return Err(RequestError::Malformed);
        }
        match (name.as_str(), parts.uri.authority()) {
            ("cookie", _) => cookies.push(v),
            ("host", Some(a)) if same_authority(v, a.as_str(), parts.uri.scheme_str()) => {}
            ("host", Some(_)) => return Err(RequestError::Malformed),
            (n, _) => headers.push(n.as_bytes(), v),
        }
    }
    if !cookies.is_empty() {
        headers.push(b"cookie", &cookies.join(&b"; "[..]));
    }
    Ok(Head {
        headers,
        ..request_line(parts)
    })
}

/// The limits HTTP/1.1 has: a target past `max_request_line` is 414; more fields than
/// `max_header_count` (cookie crumbs count once: browsers send each cookie apart, §8.2.3),
/// or a list past `max_header_bytes` as SETTINGS_MAX_HEADER_LIST_SIZE counts it (§6.5.2),
/// is 431, the host's own: dated, logged, the site's page (h2 lets twice that through).
fn within_limits(parts: &http::request::Parts, limits: &Limits) -> Result<(), RequestError> {
    let target = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target > limits.max_request_line {
        return Err(RequestError::UriTooLong);
    }
    let (mut crumbs, mut list) = (0usize, 0usize);
    for (name, value) in &parts.headers {
        crumbs += usize::from(name == http::header::COOKIE);
        list += name.as_str().len() + value.len() + 32;
    }
    let fields = parts.headers.len() - crumbs.saturating_sub(1);
    if fields > limits.max_header_count || list > limits.max_header_bytes {
        return Err(RequestError::HeadTooLarge);
    }
    Ok(())
}

/// Do Host and `:authority` name the same authority (RFC 9113 §8.3.1)? The scheme's default
/// port may be written or not (`localhost` and `localhost:443` over https).
fn same_authority(host: &[u8], authority: &str, scheme: Option<&str>) -> bool {
    let default = match scheme {
        Some("https") => &b":443"[..],
        _ => &b":80"[..],
    };
    let host = host.strip_suffix(default).unwrap_or(host);
    let authority = authority.as_bytes();
    host.eq_ignore_ascii_case(authority.strip_suffix(default).unwrap_or(authority))
}

/// The method and target of a request, without its fields. CONNECT names its authority
/// only (§8.5): that is its target, as HTTP/1.1's authority-form, for the log and the
/// error page.
fn request_line(parts: &http::request::Parts) -> Head {
    let target = match (&parts.method, parts.uri.authority()) {
        (&http::Method::CONNECT, Some(a)) => a.as_str(),
        _ => parts.uri.path_and_query().map_or("", |p| p.as_str()),
    };
    Head {
        method: crate::http::method_text(parts.method.as_str()),
        target: target.as_bytes().to_vec(),
        minor: 1,
        h2: true,
        headers: Fields::with_capacity(0, 0),
        len: 0,
    }
}

/// The request body, whole, up to `max_body`, each DATA frame within `body_timeout`;
/// what we read is handed back to the client's flow-control window.
async fn read_body(
    mut body: RecvStream,
    limits: &Limits,
    respond: &mut SendResponse<Bytes>,
) -> Result<Result<Vec<u8>, RequestError>, Cut> {
    let mut out = Vec::new();
    loop {
        let next = respond_or_reset(respond, timeout(limits.body_timeout, body.data())).await?;
        let data = match next {
            Err(_) => return Ok(Err(RequestError::BodyTimeout)),
            Ok(None) => return Ok(Ok(out)),
            Ok(Some(d)) => d?,
        };
        let _ = body.flow_control().release_capacity(data.len());
        if (out.len() + data.len()) as u64 > limits.max_body {
            return Ok(Err(RequestError::BodyTooLarge));
        }
        out.extend_from_slice(&data);
    }
}
