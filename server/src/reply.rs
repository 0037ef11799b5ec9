//! What goes back to the client: the `Reply` model, the sinks that receive a plugin's
//! response calls (buffered, or streamed from a worker thread), and serialisation of heads.

use crate::http::{is_field_value, is_token, reason};
use crate::plugin::Sink;

/// One piece of a body.
pub enum Seg {
    Bytes(Vec<u8>),
    /// A byte range of `Body::File`'s file.
    Range(u64, u64),
}

/// A response body.
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// Bytes kept for more answers than this one (an error page's last renderings). Only the
    /// host's own error pages are made so, and filters are told a Shared body is one.
    Shared(std::sync::Arc<[u8]>),
    /// A file sent in pieces (whole file, one range, or multipart ranges).
    File(std::sync::Arc<crate::shared_file::SharedFile>, Vec<Seg>),
    /// Written by a plugin on a worker thread as it goes; length unknown unless the plugin
    /// gave a Content-Length.
    Stream(crate::spool::Inbox, Option<u64>),
    /// A file or stream on its way through transforming filters; length unknown.
    Transformed(Box<crate::filter::Transformed>),
}

impl Body {
    /// No bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The exact length, when known up front.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Shared(b) => Some(b.len() as u64),
            Body::File(_, segs) => Some(
                segs.iter()
                    .map(|s| match s {
                        Seg::Bytes(b) => b.len() as u64,
                        Seg::Range(_, l) => *l,
                    })
                    .sum(),
            ),
            Body::Stream(_, len) => *len,
            Body::Transformed(_) => None,
        }
    }
}

/// A header name or value: a constant, bytes shared with a cache (a file's validators), or
/// bytes made for this answer. Only the last costs an allocation.
#[derive(Clone, Debug)]
pub enum Text {
    Borrowed(&'static [u8]),
    Shared(std::sync::Arc<[u8]>),
    Owned(Vec<u8>),
}

impl Text {
    /// The bytes, to change in place (copied first unless they are this answer's own).
    pub fn to_mut(&mut self) -> &mut Vec<u8> {
        if !matches!(self, Text::Owned(_)) {
            *self = Text::Owned(self.to_vec());
        }
        match self {
            Text::Owned(v) => v,
            _ => unreachable!("made owned just above"),
        }
    }
}

impl std::ops::Deref for Text {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Text::Borrowed(b) => b,
            Text::Shared(b) => b,
            Text::Owned(b) => b,
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        **self == **other
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::Borrowed(b"")
    }
}

impl From<Vec<u8>> for Text {
    fn from(v: Vec<u8>) -> Text {
        Text::Owned(v)
    }
}

/// An answer's headers, in order.
pub type Headers = Vec<(Text, Text)>;

/// Room a host-made answer's header list starts with: its own few fields and what filters
/// commonly add (security headers, Cache-Control, Vary), so the list is allocated once.
pub const HEADER_ROOM: usize = 12;

/// A response ready to write.
pub struct Reply {
    pub status: u16,
    pub headers: Headers,
    pub body: Body,
}

impl Reply {
    pub fn new(status: u16, body: Body) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Reply {
        self.headers
            .push((Text::Borrowed(name.as_bytes()), Text::Owned(value.into())));
        self
    }

    /// A header whose value is a constant too (no copy).
    pub fn header_const(mut self, name: &'static str, value: &'static str) -> Reply {
        self.headers.push((
            Text::Borrowed(name.as_bytes()),
            Text::Borrowed(value.as_bytes()),
        ));
        self
    }
}

/// Does a status forbid a body (RFC 9110 §6.4.1)?
pub fn bodiless(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// A 205 carries no content (RFC 9110 §15.3.6): what a case or script wrote is dropped (a
/// script is stopped as when its client goes away), and the head says `Content-Length: 0`.
pub fn reset_content(mut reply: Reply) -> Reply {
    if reply.status == 205 {
        reply.body = Body::Empty;
    }
    reply
}

/// How the body is delimited on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Delim {
    Length(u64),
    Chunked,
    /// Until the connection closes (HTTP/1.0 client, unknown length).
    Close,
    None,
}

/// How one reply goes on the wire: the client's version and what the connection does next.
#[derive(Clone, Copy, Debug)]
pub struct Framing {
    /// 0 for an HTTP/1.0 client, 1 for HTTP/1.1.
    pub minor: u8,
    /// The connection closes after this reply (`Connection: close` is sent).
    pub close: bool,
    /// An HTTP/1.0 client asked for keep-alive (`Connection: keep-alive` is echoed).
    pub keep_alive_10: bool,
    /// A HEAD request: the head GET would get, and no body.
    pub head_only: bool,
}

impl Framing {
    /// For an answer sent before (or instead of) reading a request: HTTP/1.1, then close.
    pub fn closing(minor: u8) -> Framing {
        Framing {
            minor,
            close: true,
            keep_alive_10: false,
            head_only: false,
        }
    }
}

/// Serialise the status line and headers. Returns how the body must be delimited.
pub fn write_head(out: &mut Vec<u8>, r: &Reply, f: &Framing) -> Delim {
    status_line(out, r.status);
    for (n, v) in &r.headers {
        if n.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    let delim = delimit(r, f.minor);
    match delim {
        Delim::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            crate::digits::push_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Delim::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    if f.close || delim == Delim::Close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if f.minor == 0 && f.keep_alive_10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    delim
}

/// The second the starts below were made in, and each status's start.
type Starts = (u64, Vec<(u16, Vec<u8>)>);

/// `HTTP/1.1 200 OK`, then the Date and Server every response carries: made once per status
/// per second on each event loop thread, then copied whole.
fn status_line(out: &mut Vec<u8>, status: u16) {
    thread_local! {
        static STARTS: std::cell::RefCell<Starts> = const { std::cell::RefCell::new((0, Vec::new())) };
    }
    crate::http::with_date_now(|secs, date| {
        STARTS.with_borrow_mut(|(at, made)| {
            if *at != secs {
                *at = secs;
                made.clear();
            }
            if let Some((_, start)) = made.iter().find(|(s, _)| *s == status) {
                return out.extend_from_slice(start);
            }
            let mut start = Vec::with_capacity(96);
            write_status_line(&mut start, status, date);
            out.extend_from_slice(&start);
            made.push((status, start));
        })
    })
}

fn write_status_line(out: &mut Vec<u8>, status: u16, date: &str) {
    out.extend_from_slice(b"HTTP/1.1 ");
    crate::digits::push_decimal(out, status.into());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date.as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(crate::http::server().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The one framing a reply gets: none for bodiless statuses, else its length, else chunked
/// (HTTP/1.1) or the close (HTTP/1.0).
fn delimit(r: &Reply, minor: u8) -> Delim {
    if bodiless(r.status) {
        return Delim::None;
    }
    match r.body.len() {
        Some(n) => Delim::Length(n),
        None if minor >= 1 => Delim::Chunked,
        None => Delim::Close,
    }
}

/// Headers a plugin may not set: the host owns framing and connection management.
fn host_owned(name: &[u8]) -> bool {
    const OWNED: [&[u8]; 9] = [
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"date",
        b"server",
        b"upgrade",
        b"proxy-connection",
    ];
    OWNED.iter().any(|o| name.eq_ignore_ascii_case(o))
}

/// A variable name a case may set: `[A-Z][A-Z0-9_]*`, at most 64 bytes, and never one that
/// would change how a script runs or what the host tells it (PATH, LD_*, the CGI
/// meta-variables other than REMOTE_USER and AUTH_TYPE).
fn var_name_ok(name: &[u8]) -> bool {
    const RESERVED: [&[u8]; 21] = [
        b"PATH",
        b"HTTPS",
        b"IFS",
        b"GATEWAY_INTERFACE",
        b"SERVER_SOFTWARE",
        b"SERVER_NAME",
        b"SERVER_PORT",
        b"SERVER_ADDR",
        b"SERVER_PROTOCOL",
        b"REQUEST_METHOD",
        b"REQUEST_URI",
        b"QUERY_STRING",
        b"SCRIPT_NAME",
        b"SCRIPT_FILENAME",
        b"PATH_INFO",
        b"PATH_TRANSLATED",
        b"REMOTE_ADDR",
        b"REMOTE_PORT",
        b"CONTENT_TYPE",
        b"CONTENT_LENGTH",
        b"DOCUMENT_ROOT",
    ];
    let shape = name.first().is_some_and(u8::is_ascii_uppercase)
        && name.len() <= 64
        && name
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    shape && !name.starts_with(b"LD_") && !name.starts_with(b"HTTP_") && !RESERVED.contains(&name)
}

/// Bytes a case on a worker thread may write before the head must go out.
const HOLD: usize = 64 * 1024;

/// Messages from a plugin running on a worker thread.
pub enum Msg {
    /// Status and headers are final; body chunks follow.
    Head(u16, Headers),
    Data(Vec<u8>),
    /// The plugin failed mid-answer: close without completing the body.
    Abort,
}

/// What a plugin asked for, collected during `act`.
pub struct Collect {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub file: Option<Vec<u8>>,
    pub error: Option<(u16, String)>,
    /// A local redirect target (RFC 3875 §6.2.2).
    pub redirect: Option<Vec<u8>>,
    /// The target the case rewrote the request to, to go on with (ABI 1.1).
    pub rewrite: Option<Vec<u8>>,
    /// Variables the case attached to the request (ABI 1.1).
    pub vars: Vec<(Vec<u8>, Vec<u8>)>,
    /// Anything body-like was produced (write, send_file, send_error).
    pub started: bool,
    req_body: Vec<u8>,
    body_pos: usize,
    /// Boxed: most answers stream nothing, and `Collect` travels by value.
    stream: Option<Box<crate::spool::Outbox>>,
    committed: bool,
    /// Bytes of the header fields the case added, bounded by `MAX_CASE_HEAD`.
    head_bytes: usize,
}

/// The most header bytes a case may add to its answer: clients give up on heads much
/// larger (curl at 100 KiB), and nginx answers 502 to an upstream's head past its buffer.
const MAX_CASE_HEAD: usize = 64 * 1024;

impl Collect {
    pub fn new(req_body: Vec<u8>, stream: Option<crate::spool::Outbox>) -> Collect {
        Collect {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
            file: None,
            error: None,
            redirect: None,
            rewrite: None,
            vars: Vec::new(),
            started: false,
            req_body,
            body_pos: 0,
            head_bytes: 0,
            stream: stream.map(Box::new),
            committed: false,
        }
    }

    /// Close the stream (if any): the connection sees the end once it has sent what came
    /// and what is still held, which it reads itself (this thread does not wait).
    pub fn end_stream(&mut self) {
        self.stream = None;
    }

    /// Tell the connection the streamed answer is broken (it closes without finishing it).
    pub fn abort_stream(&mut self) {
        if let Some(out) = &mut self.stream {
            out.abort();
        }
    }

    /// Did the client go away while the case was answering (its connection closed)?
    pub fn client_gone(&self) -> bool {
        self.stream.as_ref().is_some_and(|out| out.client_gone())
    }

    /// Take back the request body (when a case declined).
    pub fn into_body(self) -> Vec<u8> {
        self.req_body
    }

    pub fn committed(&self) -> bool {
        self.committed
    }

    /// Send body bytes on the stream; false when the client went away.
    fn send(&mut self, data: Vec<u8>) -> bool {
        self.stream.as_mut().is_some_and(|out| out.data(data))
    }

    /// Send the head (once) and whatever is held, now.
    fn flush(&mut self) -> bool {
        if !self.committed {
            self.committed = true;
            let head = Msg::Head(self.status, std::mem::take(&mut self.headers));
            if !self.stream.as_mut().is_some_and(|out| out.head(head)) {
                return false;
            }
        }
        if self.body.is_empty() {
            return true;
        }
        let held = std::mem::take(&mut self.body);
        self.send(held)
    }

    fn can_add(&self) -> bool {
        !self.started
    }
}

impl Sink for Collect {
    fn set_status(&mut self, status: u16) -> bool {
        if !self.can_add() || !(200..=599).contains(&status) {
            return false;
        }
        self.status = status;
        true
    }

    fn add_header(&mut self, name: &[u8], value: &[u8]) -> bool {
        // No whitespace at either end (RFC 9110 §5.5): HTTP/2 peers refuse a value with it.
        let value = value.trim_ascii();
        if !self.can_add() || !is_token(name) || !is_field_value(value) || host_owned(name) {
            return false;
        }
        if name.eq_ignore_ascii_case(b"content-length")
            && (value.is_empty() || !value.iter().all(u8::is_ascii_digit) || value.len() > 19)
        {
            return false;
        }
        let bytes = self.head_bytes + name.len() + value.len() + 4;
        if bytes > MAX_CASE_HEAD {
            return false;
        }
        self.head_bytes = bytes;
        self.headers
            .push((Text::Owned(name.to_vec()), Text::Owned(value.to_vec())));
        true
    }

    fn write(&mut self, data: &[u8]) -> bool {
        if self.file.is_some() || self.error.is_some() || self.redirect.is_some() {
            return false;
        }
        self.started = true;
        if self.stream.is_none() {
            self.body.extend_from_slice(data);
            return true;
        }
        // A case on a worker thread: hold up to HOLD bytes, so a short answer still goes out
        // whole with a Content-Length; an empty write means "flush now".
        if data.is_empty() {
            return self.flush();
        }
        if self.committed {
            return self.send(data.to_vec());
        }
        self.body.extend_from_slice(data);
        self.body.len() < HOLD || self.flush()
    }

    fn send_file(&mut self, path: &[u8]) -> bool {
        if self.started {
            return false;
        }
        self.started = true;
        self.file = Some(path.to_vec());
        true
    }

    fn send_error(&mut self, status: u16, message: &[u8]) -> bool {
        if self.started || !(400..=599).contains(&status) {
            return false;
        }
        self.started = true;
        self.error = Some((status, plugin_api::helpers::lossy(message).into_owned()));
        true
    }

    fn redirect(&mut self, target: &[u8]) -> bool {
        if self.started || !target.starts_with(b"/") || !is_field_value(target) {
            return false;
        }
        self.started = true;
        self.redirect = Some(target.to_vec());
        true
    }

    fn rewrite(&mut self, target: &[u8]) -> bool {
        if self.started || !target.starts_with(b"/") || !is_field_value(target) {
            return false;
        }
        self.rewrite = Some(target.to_vec());
        true
    }

    fn set_var(&mut self, name: &[u8], value: &[u8]) -> bool {
        if !var_name_ok(name) || !is_field_value(value) {
            return false;
        }
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_vec(), value.to_vec()));
        true
    }

    fn read_body(&mut self, buf: &mut [u8]) -> isize {
        let rest = &self.req_body[self.body_pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.body_pos += n;
        n as isize
    }
}
