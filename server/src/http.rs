//! HTTP/1.1 wire format: request heads (httparse + limits), body framing, chunked decoding,
//! response heads, reason phrases and the cached `Date`.

use crate::config::Limits;
use crate::errors::RequestError;
use std::borrow::Cow;

/// A parsed request head, owned.
#[derive(Debug, Clone)]
pub struct Head {
    /// A method we know is a constant; another is copied.
    pub method: Cow<'static, str>,
    pub target: Vec<u8>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1 and HTTP/2.
    pub minor: u8,
    /// The request came over HTTP/2.
    pub h2: bool,
    pub headers: Fields,
    /// Bytes of the buffer the head occupied.
    pub len: usize,
}

/// A request's header fields in order, held in one buffer (two allocations for the whole
/// head, however many fields it has).
#[derive(Debug, Clone, Default)]
pub struct Fields {
    text: Vec<u8>,
    /// Per field: where its name starts, where its value starts, where the value ends.
    at: Vec<[u32; 3]>,
}

impl Fields {
    /// Room for `fields` fields of `bytes` bytes of names and values in all.
    pub fn with_capacity(fields: usize, bytes: usize) -> Fields {
        Fields {
            text: Vec::with_capacity(bytes),
            at: Vec::with_capacity(fields),
        }
    }

    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let start = self.text.len() as u32;
        self.text.extend_from_slice(name);
        let mid = self.text.len() as u32;
        self.text.extend_from_slice(value);
        self.at.push([start, mid, self.text.len() as u32]);
    }

    /// The value of the first field named `name` (any case).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        let at = self.at.iter().find(|at| self.is_named(at, name))?;
        Some(self.value(at))
    }

    /// The values of the fields named `name` (any case), in order.
    pub fn all<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let named = self.at.iter().filter(move |at| self.is_named(at, name));
        named.map(|at| self.value(at))
    }

    /// Is this field named `name`? Lengths are compared first: most fields are not.
    fn is_named(&self, &[s, m, _]: &[u32; 3], name: &[u8]) -> bool {
        (m - s) as usize == name.len()
            && self.text[s as usize..m as usize].eq_ignore_ascii_case(name)
    }

    fn value(&self, &[_, m, e]: &[u32; 3]) -> &[u8] {
        &self.text[m as usize..e as usize]
    }

    /// Every field as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.at.iter().map(|&[s, m, e]| {
            let t = &self.text;
            (&t[s as usize..m as usize], &t[m as usize..e as usize])
        })
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(N, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Fields {
        let mut f = Fields::default();
        for (n, v) in iter {
            f.push(n.as_ref(), v.as_ref());
        }
        f
    }
}

/// A method as a constant when it is one we know (no allocation for nearly every request).
pub fn method_text(m: &str) -> Cow<'static, str> {
    match METHODS.iter().find(|k| **k == m) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(m.to_string()),
    }
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name.as_bytes())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.all(name.as_bytes())
    }

    /// Does a comma-separated header (e.g. Connection) contain `token`?
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.all(name).any(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// Body framing per RFC 9112 §6; refuses everything that could smuggle a request.
    pub fn framing(&self) -> Result<BodyFraming, RequestError> {
        // Most requests have neither field.
        if self.header("transfer-encoding").is_none() && self.header("content-length").is_none() {
            return Ok(BodyFraming::None);
        }
        let te: Vec<&[u8]> = self.all("transfer-encoding").collect();
        let cl: Vec<&[u8]> = self.all("content-length").collect();
        if !te.is_empty() {
            if !cl.is_empty() || self.minor == 0 {
                return Err(RequestError::BadFraming);
            }
            return transfer_codings(&te);
        }
        Ok(match content_length(&cl)? {
            Some(0) | None => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
        })
    }
}

/// Only `chunked` alone is ours. Chunked twice, or not last, is 400 (RFC 9112 §6.3: the
/// length cannot be known); a coding we do not decode, alone or before a final chunked, is
/// 501 (§6.1), as nginx, lighttpd and Go answer.
fn transfer_codings(fields: &[&[u8]]) -> Result<BodyFraming, RequestError> {
    let codings: Vec<&[u8]> = fields
        .iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
        .collect();
    let chunked = |t: &&[u8]| t.eq_ignore_ascii_case(b"chunked");
    match codings.as_slice() {
        [only] if chunked(only) => Ok(BodyFraming::Chunked),
        [before @ .., last] if chunked(last) && !before.iter().any(chunked) => {
            Err(RequestError::UnknownCoding)
        }
        list if list.iter().any(chunked) => Err(RequestError::BadFraming),
        [] => Err(RequestError::BadFraming),
        _ => Err(RequestError::UnknownCoding),
    }
}

/// The Content-Length of a request: `Ok(None)` without one. RFC 9110 §8.6 lets a recipient
/// either refuse a repeated value (several fields, or a comma list) or take it when every
/// member is the same; we refuse it, as nginx and lighttpd do (and Go's server, under
/// Caddy, for a list), since a peer that reads the first member and one that reads the
/// whole field must agree. Leading zeros in the one value are allowed: the grammar is
/// `1*DIGIT`, as nginx reads it.
fn content_length(fields: &[&[u8]]) -> Result<Option<u64>, RequestError> {
    let value = match fields {
        [] => return Ok(None),
        [one] => one.trim_ascii(),
        _ => return Err(RequestError::BadFraming),
    };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::BadFraming);
    }
    // All digits: only a value beyond u64 fails to parse.
    let n = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
    n.map(Some).ok_or(RequestError::BadFraming)
}

/// Try to parse a request head from `buf`. `Ok(None)` means "need more bytes".
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, RequestError> {
    let skip = blank_lines(buf);
    let data = &buf[skip..];
    let line_end = data.iter().position(|&b| b == b'\n');
    // Measured as a field line is, without its line end: the CR before the LF (or, not
    // yet followed by its LF, at the end of what came) does not count.
    let line = &data[..line_end.unwrap_or(data.len())];
    if line.strip_suffix(b"\r").unwrap_or(line).len() > limits.max_request_line {
        return Err(RequestError::UriTooLong);
    }
    // Header slots on the stack (no allocation, no zeroing) for the usual limits.
    let mut stack = [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; 128];
    let mut heap = Vec::new();
    let want = limits.max_header_count + 1;
    let slots = if want <= stack.len() {
        &mut stack[..want]
    } else {
        heap.resize_with(want, std::mem::MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(data, slots) {
        Ok(httparse::Status::Partial) => partial(buf, line_end.map(|i| skip + i), limits),
        Ok(httparse::Status::Complete(n)) => owned(&req, &data[..n], skip + n, limits).map(Some),
        Err(httparse::Error::TooManyHeaders) => Err(RequestError::HeadTooLarge),
        // `HTTP/0.` may yet become `HTTP/0.9` (505) or `HTTP/0.x` (400): decided on the
        // whole line, so the answer does not depend on where the reads cut it.
        Err(httparse::Error::Version) if line_end.is_none() && version_to_come(data) => {
            partial(buf, None, limits)
        }
        Err(httparse::Error::Version) => match as_http_1_1(buf, skip) {
            Some(patched) => parse_head(&patched, limits),
            // "HTTP/2.0" and the like are well-formed but not ours; junk is a 400.
            None if looks_like_version(data) => Err(RequestError::Version),
            None => Err(RequestError::Malformed),
        },
        Err(_) => Err(RequestError::Malformed),
    }
}

/// An incomplete head: wait for more, unless it is already too large (as a whole, or the
/// field line being read). The blank lines before the request line count: they are ignored,
/// but held until it comes, so without a bound a client could send them forever.
fn partial(
    data: &[u8],
    line_end: Option<usize>,
    limits: &Limits,
) -> Result<Option<Head>, RequestError> {
    if data.len() > limits.max_header_bytes {
        return Err(RequestError::HeadTooLarge);
    }
    if let Some(i) = line_end {
        let rest = &data[i + 1..];
        let cur = rest.rsplit(|&b| b == b'\n').next().unwrap_or(rest);
        let cur = cur.strip_suffix(b"\r").unwrap_or(cur);
        if cur.len() > limits.max_header_field {
            return Err(RequestError::HeadTooLarge);
        }
    }
    Ok(None)
}

/// Could the last word of a request line that has not ended yet still become a version,
/// `HTTP/x.y` and its CR?
fn version_to_come(data: &[u8]) -> bool {
    const SHAPE: &[u8] = b"HTTP/0.0\r";
    let v = data.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    v.len() <= SHAPE.len()
        && v.iter().zip(SHAPE).all(|(&b, &s)| match s {
            b'0' => b.is_ascii_digit(),
            _ => b == s,
        })
}

/// A whole head, `head` (`len` bytes with the blank lines before it), within the limits,
/// copied out of the read buffer.
fn owned(
    req: &httparse::Request,
    head: &[u8],
    len: usize,
    limits: &Limits,
) -> Result<Head, RequestError> {
    if len > limits.max_header_bytes || req.headers.len() > limits.max_header_count {
        return Err(RequestError::HeadTooLarge);
    }
    let bytes = req
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len())
        .sum();
    let mut fields = Fields::with_capacity(req.headers.len(), bytes);
    // No line is longer than the head: most heads need no line measured.
    let max = limits.max_header_field;
    if head.len() > max && field_line_lens(head, req.headers).any(|line| line > max) {
        return Err(RequestError::HeadTooLarge);
    }
    for h in req.headers.iter() {
        fields.push(h.name.as_bytes(), h.value.trim_ascii());
    }
    Ok(Head {
        method: method_text(req.method.unwrap_or("")),
        target: req.path.unwrap_or("").as_bytes().to_vec(),
        minor: req.version.unwrap_or(1),
        h2: false,
        headers: fields,
        len,
    })
}

/// The lengths of the field lines of `head` as they came, without their line ends: the
/// measure an unfinished line is held to in `partial`, so a line is refused or taken
/// whatever the reads that brought it. A line runs to where the next begins (the next
/// field's name, or the blank line that ends the head).
fn field_line_lens<'a>(
    head: &'a [u8],
    fields: &'a [httparse::Header<'a>],
) -> impl Iterator<Item = usize> + 'a {
    let offset = |s: &str| {
        (s.as_ptr() as usize)
            .checked_sub(head.as_ptr() as usize)
            .filter(|&o| o < head.len())
    };
    let blank = match head {
        [.., b'\n', b'\r', b'\n'] => Some(head.len() - 2),
        _ => head.len().checked_sub(1),
    };
    fields.iter().enumerate().map(move |(i, h)| {
        let next = fields.get(i + 1).map_or(blank, |n| offset(n.name));
        match (offset(h.name), next) {
            (Some(start), Some(next)) if next > start => {
                let cr = next.checked_sub(2).and_then(|i| head.get(i)) == Some(&b'\r');
                next - start - 1 - usize::from(cr)
            }
            // Not where httparse puts them: the field's own bytes, as a floor.
            _ => h.name.len() + h.value.len() + 2,
        }
    })
}

/// Bytes of the empty lines before a request line, which a server ignores (RFC 9112 §2.2).
pub fn blank_lines(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// The request line `data` starts with: up to its LF, without the CR before it (all of
/// `data` while no LF has come).
pub fn request_line(data: &[u8]) -> &[u8] {
    let line = data.split(|&b| b == b'\n').next().unwrap_or(data);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A request line ending in "HTTP/1.2" to "HTTP/1.9", copied with "HTTP/1.1": a later
/// minor version of HTTP/1 is read as the highest one we implement (RFC 9110 §2.5), as
/// nginx and Go's server do. The copy is as long as `buf`, so the head's length holds.
fn as_http_1_1(buf: &[u8], skip: usize) -> Option<Vec<u8>> {
    let line = request_line(&buf[skip..]);
    let digit = line.len().checked_sub(1)?;
    let later = line[..digit].ends_with(b" HTTP/1.") && (b'2'..=b'9').contains(&line[digit]);
    later.then(|| {
        let mut patched = buf.to_vec();
        patched[skip + digit] = b'1';
        patched
    })
}

fn looks_like_version(data: &[u8]) -> bool {
    let line = request_line(data);
    // Three parts: `GET /a b HTTP/1.1` is a malformed line (400), not a version (505).
    let parts = line.iter().filter(|&&b| b == b' ').count() + 1;
    let v = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    parts == 3
        && v.len() == 8
        && v.starts_with(b"HTTP/")
        && v[5].is_ascii_digit()
        && v[6] == b'.'
        && v[7].is_ascii_digit()
}

/// Incremental decoder for a chunked request body.
#[derive(Default)]
pub struct Chunked {
    state: ChunkState,
    remaining: u64,
    /// Bytes of trailer lines so far (bounded by `MAX_TRAILERS`).
    trailers: usize,
    pub done: bool,
}

/// The most bytes of trailer fields a chunked body may end with (431 beyond).
const MAX_TRAILERS: usize = 8192;
/// The longest chunk-size line, extensions included, before its LF (400 beyond).
const MAX_CHUNK_LINE: usize = 1024;

/// A chunk-size line without its CRLF: hex digits (leading zeros as many as sent), then
/// extensions as RFC 9112 §7.1.1 writes them, or 400: `5;`, `5;a[b`, `5 ` (whitespace
/// only before a `;` or around `=`), a CR, NUL or other control in them.
fn chunk_size(line: &[u8]) -> Result<u64, RequestError> {
    let hex = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (size_part, ext) = line.split_at(hex);
    let zeros = size_part.iter().take_while(|&&b| b == b'0').count();
    let digits = &size_part[zeros.min(size_part.len().saturating_sub(1))..];
    if size_part.is_empty() || digits.len() > 15 || !chunk_ext(ext) {
        return Err(RequestError::BadChunk);
    }
    let mut n: u64 = 0;
    for &b in digits {
        let d = (b as char).to_digit(16).ok_or(RequestError::BadChunk)?;
        n = n * 16 + d as u64;
    }
    Ok(n)
}

/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`, names and values
/// read and dropped (§7.1.1: unrecognised extensions are ignored).
fn chunk_ext(mut s: &[u8]) -> bool {
    while !s.is_empty() {
        let Some(rest) = bws(s).strip_prefix(b";") else {
            return false;
        };
        let (name, rest) = token_prefix(bws(rest));
        if name.is_empty() {
            return false;
        }
        s = match bws(rest).strip_prefix(b"=") {
            Some(value) => match ext_value(bws(value)) {
                Some(rest) => rest,
                None => return false,
            },
            None => rest,
        };
    }
    true
}

/// Skip optional spaces and tabs.
fn bws(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

/// The token at the start of `s`, and what follows it.
fn token_prefix(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|&&b| is_token(&[b])).count();
    s.split_at(n)
}

/// What follows a token or a quoted-string at the start of `s` (RFC 9110 §5.6.4), or None.
fn ext_value(s: &[u8]) -> Option<&[u8]> {
    let Some(mut q) = s.strip_prefix(b"\"") else {
        let (value, rest) = token_prefix(s);
        return (!value.is_empty()).then_some(rest);
    };
    let text = |b: u8| b == b'\t' || (b >= 0x20 && b != 0x7f);
    loop {
        match *q {
            [b'"', ref rest @ ..] => return Some(rest),
            [b'\\', c, ref rest @ ..] if text(c) => q = rest,
            [c, ref rest @ ..] if text(c) && c != b'\\' => q = rest,
            _ => return None,
        }
    }
}

/// One trailer line (CR stripped): a field line as in the head, no obs-fold (RFC 9112 §7.1.2).
fn trailer_line(line: &[u8]) -> Result<(), RequestError> {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(RequestError::BadChunk);
    };
    if !is_token(&line[..colon]) || !is_field_value(&line[colon + 1..]) {
        return Err(RequestError::BadChunk);
    }
    Ok(())
}

#[derive(Default, PartialEq, Eq, Debug)]
enum ChunkState {
    #[default]
    Size,
    Data,
    DataEnd,
    Trailers,
}

impl Chunked {
    /// Consume what it can from `input`, appending body bytes to `out`. Returns bytes used.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: u64,
    ) -> Result<usize, RequestError> {
        let mut i = 0;
        while !self.done && i < input.len() {
            match self.state {
                ChunkState::Size => {
                    let Some(nl) = input[i..].iter().position(|&b| b == b'\n') else {
                        if input.len() - i > MAX_CHUNK_LINE {
                            return Err(RequestError::BadChunk);
                        }
                        return Ok(i);
                    };
                    // The same bound whole as in pieces: the answer does not depend on
                    // where the reads cut the body.
                    if nl > MAX_CHUNK_LINE {
                        return Err(RequestError::BadChunk);
                    }
                    let line = &input[i..i + nl];
                    let line = line.strip_suffix(b"\r").ok_or(RequestError::BadChunk)?;
                    let n = chunk_size(line)?;
                    i += nl + 1;
                    if n == 0 {
                        self.state = ChunkState::Trailers;
                    } else {
                        if out.len() as u64 + n > max {
                            return Err(RequestError::BodyTooLarge);
                        }
                        self.remaining = n;
                        self.state = ChunkState::Data;
                    }
                }
                ChunkState::Data => {
                    let take = (self.remaining as usize).min(input.len() - i);
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    self.remaining -= take as u64;
                    if self.remaining == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                }
                ChunkState::DataEnd => {
                    let rest = &input[i..];
                    if rest.len() < 2 {
                        if rest == b"\r" {
                            return Ok(i);
                        }
                        return Err(RequestError::BadChunk);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(RequestError::BadChunk);
                    }
                    i += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(nl) = input[i..].iter().position(|&b| b == b'\n') else {
                        if self.trailers + input.len() - i > MAX_TRAILERS {
                            return Err(RequestError::TrailersTooLarge);
                        }
                        return Ok(i);
                    };
                    self.trailers += nl + 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(RequestError::TrailersTooLarge);
                    }
                    let line = &input[i..i + nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    i += nl + 1;
                    if line.is_empty() {
                        self.done = true;
                    } else {
                        trailer_line(line)?;
                    }
                }
            }
        }
        Ok(i)
    }
}

/// The reason phrases of the IANA status code registry (RFC 9110 §15 and the RFCs that
/// added codes since: WebDAV's, RFC 6585, 7725, 8297, 8470); a code not in it gets its
/// class's name.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        511 => "Network Authentication Required",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// Methods this server knows (RFC 9110 §9 plus PATCH); anything else is 501.
pub fn known_method(m: &str) -> bool {
    METHODS.contains(&m)
}

/// The methods of RFC 9110 and PATCH (RFC 5789).
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The server's name and version, as the status page reports it.
pub const SERVER: &str = concat!("cases/", env!("CARGO_PKG_VERSION"));

/// Is the version shown in the `Server` header and on the host's pages (`server_tokens`)?
static TOKENS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Show the version, or only the name (`server_tokens = false`, as nginx's `server_tokens off`).
pub fn show_version(on: bool) {
    TOKENS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The `Server` header's value, and the signature of the host's pages.
pub fn server() -> &'static str {
    match TOKENS.load(std::sync::atomic::Ordering::Relaxed) {
        true => SERVER,
        false => "cases",
    }
}

thread_local! {
    static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
}

/// The current time as an IMF-fixdate, recomputed at most once a second per thread.
pub fn date_now(out: &mut Vec<u8>) {
    with_date_now(|_, d| out.extend_from_slice(d.as_bytes()));
}

/// Lend the current second (since the epoch) and its IMF-fixdate to `f`, without copying.
/// The second comes from the coarse real-time clock (a read of the kernel's last tick, a
/// few milliseconds behind at most, where the precise clock reads the hardware counter):
/// a Date header and an access log line name only the second.
pub fn with_date_now<R>(f: impl FnOnce(u64, &str) -> R) -> R {
    use nix::time::{clock_gettime, ClockId};
    let secs = match clock_gettime(ClockId::CLOCK_REALTIME_COARSE) {
        Ok(t) => u64::try_from(t.tv_sec()).unwrap_or(0),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs || d.1.is_empty() {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            *d = (secs, httpdate::fmt_http_date(at));
        }
        f(secs, &d.1)
    })
}

/// Is this byte string allowed in a header name (token)?
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| TCHAR[usize::from(b)])
}

/// `tchar` (RFC 9110 §5.6.2) by byte value.
const TCHAR: [bool; 256] = alnum_and(b"!#$%&'*+-.^_`|~");

/// A byte class by value: letters, digits and `extra`.
const fn alnum_and(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2): a valid Host value, and the
/// authority of an absolute-form target once it has no userinfo. Not empty: an http URI's
/// host never is (RFC 9110 §4.2.1). No empty label (`a..b`): no DNS name has one (RFC 1034
/// §3.1), nginx refuses it, and a wildcard site must not answer `x..example.com`.
pub fn is_authority(a: &[u8]) -> bool {
    // Most are a name or an IPv4 address, and a port: one scan to the colon.
    let mut end = a.len();
    // A leading dot is an empty label too.
    let mut after_dot = true;
    for (i, &b) in a.iter().enumerate() {
        if !REG_NAME[usize::from(b)] {
            end = i;
            break;
        }
        if b == b'.' && after_dot {
            return false;
        }
        after_dot = b == b'.';
    }
    match a.get(end) {
        None => end > 0,
        Some(b':') if end > 0 => a[end + 1..].iter().all(u8::is_ascii_digit),
        _ => is_any_authority(a),
    }
}

/// `is_authority` for an IP literal in brackets, with or without a port. A reg-name with
/// percent-escapes is valid by RFC 3986's grammar, but no name a client resolved has one,
/// and nginx, lighttpd and Caddy answer 400 (`http://a%2fb/` reached scripts as
/// SERVER_NAME `a%2fb`): the plain scan above has refused it.
fn is_any_authority(a: &[u8]) -> bool {
    let Some(end) = a.iter().position(|&b| b == b']').filter(|_| a[0] == b'[') else {
        return false;
    };
    let port = &a[end + 1..];
    let port_ok = port.is_empty() || (port[0] == b':' && port[1..].iter().all(u8::is_ascii_digit));
    port_ok && is_ip_literal(&a[1..end])
}

/// What brackets hold (RFC 3986 §3.2.2): an IPv6 address, or `v` HEX `.` and then
/// unreserved, sub-delims or `:` (IPvFuture). `[zz]` is no host at all.
fn is_ip_literal(inside: &[u8]) -> bool {
    if let Some(future) = inside.strip_prefix(b"v").or(inside.strip_prefix(b"V")) {
        let Some(dot) = future.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, rest) = (&future[..dot], &future[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !rest.is_empty()
            && rest.iter().all(|&b| REG_NAME[usize::from(b)] || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// `unreserved / sub-delims` (RFC 3986 §2.2, §2.3): a reg-name's bytes but `%`, by value.
const REG_NAME: [bool; 256] = alnum_and(b"-._~!$&'()*+,;=");

/// Is this byte string allowed in a header value (no CR, LF, NUL or other controls but tab)?
pub fn is_field_value(s: &[u8]) -> bool {
    // No early exit: the loop compiles to a vector scan.
    let bad = |b: u8| (b < 0x20 && b != b'\t') | (b == 0x7f);
    !s.iter().fold(false, |any, &b| any | bad(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses_the_host_sends_have_their_rfc_9110_reason_phrases() {
        for (status, phrase) in [
            (421, "Misdirected Request"),
            (413, "Content Too Large"),
            (505, "HTTP Version Not Supported"),
        ] {
            assert_eq!(reason(status), phrase);
        }
    }

    #[test]
    fn authorities_follow_the_uri_host_grammar() {
        for ok in [
            "example.com",
            "a.test:8080",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:443",
            "x_y",
            "h:",
        ] {
            assert!(is_authority(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "::1",
            "[::1",
            "[]",
            "localhost:abc",
            "x<y",
            "a\"b",
            "a{b",
            "a|b",
            "a#b",
            "a?b",
            "u@h",
            "a/b",
            "a b",
            "[::1]x",
            "a%4g",
            "a%41b",
            "a%2fb:80",
            "..a.test",
            "x..a.test:80",
            "a%41..b",
            ".a.test",
            ".",
            ".%41",
        ] {
            assert!(!is_authority(bad.as_bytes()), "{bad}");
        }
    }

    fn head(raw: &str) -> Result<Option<Head>, u16> {
        parse_head(raw.as_bytes(), &Limits::default()).map_err(RequestError::status)
    }

    #[test]
    fn field_values_take_tabs_and_visible_bytes_but_no_controls() {
        assert!(is_field_value(b"max-age=3600, public\t\x80\xff"));
        assert!(is_field_value(b""));
        for bad in [&b"a\r\nb"[..], b"a\nb", b"\0", b"a\x7fb", b"\x1b[0m"] {
            assert!(!is_field_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn parses_a_simple_request_and_skips_leading_blank_lines() {
        let h = head("\r\nGET /a?b HTTP/1.1\r\nHost: x\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, b"/a?b");
        assert_eq!(h.minor, 1);
        assert_eq!(h.header("host"), Some(&b"x"[..]));
        assert_eq!(h.len, "\r\nGET /a?b HTTP/1.1\r\nHost: x\r\n\r\n".len());
    }

    #[test]
    fn blank_lines_before_the_request_line_count_against_the_head_limit() {
        // Ignored (RFC 9112 §2.2), but held until the request line comes: a flood of them
        // is refused at max_header_bytes instead of growing the buffer without end.
        assert_eq!(head(&"\r\n".repeat(20_000)).unwrap_err(), 431);
        assert!(head(&"\r\n".repeat(100)).unwrap().is_none());
    }

    #[test]
    fn a_later_http_1_minor_version_is_read_as_1_1() {
        let h = head("\r\nGET /a HTTP/1.2\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.minor, &h.target[..]), (1, &b"/a"[..]));
        assert_eq!(h.len, "\r\nGET /a HTTP/1.2\r\nHost: x\r\n\r\n".len());
        assert_eq!(
            head("GET / HTTP/1.9\nHost: x\n\n").unwrap().unwrap().minor,
            1
        );
        assert!(head("GET / HTTP/1.2").unwrap().is_none());
        assert_eq!(head("GET / HTTP/1.10\r\n\r\n").unwrap_err(), 400);
        assert_eq!(head("GET / HTTP/3.1\r\n\r\n").unwrap_err(), 505);
    }

    #[test]
    fn partial_heads_ask_for_more() {
        assert!(head("GET / HTTP/1.1\r\nHost").unwrap().is_none());
    }

    #[test]
    fn limits_give_414_and_431() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000));
        assert_eq!(head(&long).unwrap_err(), 414);
        let field = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
        assert_eq!(head(&field).unwrap_err(), 431);
        let many: String = (0..101).map(|i| format!("X{i}: y\r\n")).collect();
        assert_eq!(
            head(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err(),
            431
        );
    }

    #[test]
    fn bad_version_is_505_and_junk_is_400() {
        assert_eq!(head("GET / HTTP/2.0\r\n\r\n").unwrap_err(), 505);
        assert_eq!(head("GET / FOO\r\n\r\n").unwrap_err(), 400);
        assert_eq!(head("G@T / HTTP/1.1\r\n\r\n").unwrap_err(), 400);
        // A space in the target makes four parts: malformed, whatever the last one says.
        assert_eq!(head("GET /a b HTTP/1.1\r\n\r\n").unwrap_err(), 400);
        assert_eq!(head("GET /plain.html x HTTP/1.1\r\n\r\n").unwrap_err(), 400);
    }

    fn framing(hs: &str) -> Result<BodyFraming, u16> {
        head(&format!("POST / HTTP/1.1\r\nHost: x\r\n{hs}\r\n"))
            .unwrap()
            .unwrap()
            .framing()
            .map_err(RequestError::status)
    }

    #[test]
    fn framing_refuses_smuggling() {
        assert_eq!(framing("Content-Length: 5\r\n"), Ok(BodyFraming::Length(5)));
        assert_eq!(
            framing("Content-Length:  5 \r\n"),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(framing("Content-Length: -1\r\n"), Err(400));
        // A repeated value is refused, identical or not, as a list or as fields.
        for shape in [
            "5 , 5", "5, 5", "0, 0", "0005 ,5", "5, 05", "5,", ",5", "5,,5", "5, 6",
        ] {
            let h = format!("Content-Length: {shape}\r\n");
            assert_eq!(framing(&h), Err(400), "{shape}");
        }
        for (a, b) in [("5", "5"), ("0", "0"), ("5", "6"), ("5", "05")] {
            let h = format!("Content-Length: {a}\r\nContent-Length: {b}\r\n");
            assert_eq!(framing(&h), Err(400), "{a} then {b}");
        }
        // One value with leading zeros is 1*DIGIT (RFC 9110 §8.6).
        assert_eq!(
            framing("Content-Length: 005\r\n"),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            framing("Content-Length: 18446744073709551616\r\n"),
            Err(400)
        );
        assert_eq!(framing("Content-Length: 1e3\r\n"), Err(400));
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
            Err(400)
        );
        assert_eq!(framing("Transfer-Encoding: gzip\r\n"), Err(501));
        assert_eq!(framing("Transfer-Encoding: chunked, gzip\r\n"), Err(400));
        assert_eq!(framing("Transfer-Encoding: chunked, chunked\r\n"), Err(400));
        assert_eq!(framing("Transfer-Encoding: gzip, chunked\r\n"), Err(501));
        assert_eq!(
            framing("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
            Err(501)
        );
        assert_eq!(
            framing("Transfer-Encoding: chunked, gzip, chunked\r\n"),
            Err(400)
        );
    }

    #[test]
    fn chunked_decodes_across_splits_and_refuses_bad_sizes() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for split in 0..body.len() {
            let mut c = Chunked::default();
            let mut out = Vec::new();
            let mut buf = body[..split].to_vec();
            let used = c.feed(&buf, &mut out, 1 << 20).unwrap();
            buf.drain(..used);
            buf.extend_from_slice(&body[split..]);
            let used = c.feed(&buf, &mut out, 1 << 20).unwrap();
            assert!(c.done);
            assert_eq!(out, b"Wikipedia");
            assert_eq!(&buf[used..], b"NEXT");
        }
        for bad in [
            &b"zz\r\n"[..],
            b"4\r\nWikiXX",
            b"-1\r\n",
            b"ffffffffffffffffff\r\n",
        ] {
            let mut c = Chunked::default();
            assert_eq!(
                c.feed(bad, &mut Vec::new(), 1 << 20)
                    .map_err(RequestError::status),
                Err(400),
                "{bad:?}"
            );
        }
        let mut c = Chunked::default();
        assert_eq!(
            c.feed(b"ff\r\n", &mut Vec::new(), 10)
                .map_err(RequestError::status),
            Err(413)
        );
    }

    /// A chunk line or a trailer is held to the head's rules (RFC 9112 §2.2, §7.1): no bare
    /// CR, NUL or obs-fold, a field line with a name; trailers are bounded; leading zeros
    /// of a size are as many as sent (nginx, lighttpd).
    #[test]
    fn chunk_extensions_and_trailers_are_checked_and_bounded() {
        let status = |body: &[u8]| {
            let mut c = Chunked::default();
            let mut out = Vec::new();
            c.feed(body, &mut out, 1 << 20)
                .map(|_| (c.done, out))
                .map_err(RequestError::status)
        };
        for bad in [
            &b"5;a=x\ry\r\nhello\r\n0\r\n\r\n"[..],
            b"5;x\0\r\nhello\r\n0\r\n\r\n",
            // Http11Probe's SMUG-CHUNK-BARE-SEMICOLON, -EXT-INVALID-TOKEN, -SIZE-TRAILING-OWS.
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"5;bad[=x\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"open\r\nhello\r\n0\r\n\r\n",
            b"5;a=b \r\nhello\r\n0\r\n\r\n",
            b"0\r\nno colon\r\n\r\n",
            b"0\r\nX-A: 1\r\n folded\r\n\r\n",
            b"0\r\nX-A: a\rb\r\n\r\n",
            b"0\r\nX A: 1\r\n\r\n",
        ] {
            assert_eq!(status(bad), Err(400), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut many = b"0\r\n".to_vec();
        for i in 0..1000 {
            many.extend_from_slice(format!("X-Trailer-{i}: value\r\n").as_bytes());
        }
        assert_eq!(status(&many), Err(431));
        let long = b"00000000000000000005\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(status(long), Ok((true, b"hello".to_vec())));
        let ext = b"5 ; a ; b = 1 ;c=\"x \\\" y\";d=e\r\nhello\r\n0;last\r\n\r\n";
        assert_eq!(status(ext), Ok((true, b"hello".to_vec())));
    }

    /// Every prefix of `raw` that the parser refuses is refused as the whole is: a head's
    /// answer does not depend on where the reads cut it (found by fuzzing: 431 or 505 for a
    /// piece, 200 or 400 for the whole).
    fn every_cut_agrees(raw: &[u8]) -> Result<Option<Head>, u16> {
        let whole = parse_head(raw, &Limits::default()).map_err(RequestError::status);
        let cuts = (1..raw.len())
            .step_by(61)
            .chain(raw.len().saturating_sub(40)..raw.len());
        for cut in cuts {
            if let Err(e) = parse_head(&raw[..cut], &Limits::default()) {
                let e = e.status();
                assert_eq!(
                    whole.as_ref().err(),
                    Some(&e),
                    "cut at {cut} of {}",
                    raw.len()
                );
            }
        }
        whole
    }

    #[test]
    fn a_request_line_is_measured_as_a_field_line_is_without_its_line_end() {
        // "GET /" and " HTTP/1.1" around a path of `n` bytes: 8192 in all is taken (as a
        // field line of 8192 is), one more is 414, however the reads cut it.
        let line =
            |n: usize, end: &str| format!("GET /{} HTTP/1.1{end}Host: a{end}{end}", "a".repeat(n));
        let exact = 8192 - "GET / HTTP/1.1".len();
        for end in ["\r\n", "\n"] {
            let taken = line(exact, end);
            assert!(
                every_cut_agrees(taken.as_bytes()).unwrap().is_some(),
                "{end:?}"
            );
            let longer = line(exact + 1, end);
            assert_eq!(every_cut_agrees(longer.as_bytes()).unwrap_err(), 414);
        }
    }

    #[test]
    fn a_heads_answer_does_not_depend_on_where_the_reads_cut_it() {
        // Spaces around a value count toward max_header_field, whole or in pieces.
        let spaced = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX:{}v\r\n\r\n",
            " ".repeat(8200)
        );
        assert_eq!(every_cut_agrees(spaced.as_bytes()).unwrap_err(), 431);
        // A line of exactly max_header_field bytes is taken, its CR not counted.
        let exact = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(8189)
        );
        assert!(every_cut_agrees(exact.as_bytes()).unwrap().is_some());
        let longer = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(8190)
        );
        assert_eq!(every_cut_agrees(longer.as_bytes()).unwrap_err(), 431);
        // Bare LF line ends (RFC 9112 §2.2 MAY): the same measure, a last field too.
        let lf = |n: usize| format!("GET / HTTP/1.1\nX: {}\nHost: a\n\n", "v".repeat(n));
        assert!(every_cut_agrees(lf(8189).as_bytes()).unwrap().is_some());
        assert_eq!(every_cut_agrees(lf(8190).as_bytes()).unwrap_err(), 431);
        let last = |n: usize| format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\n", "v".repeat(n));
        assert!(every_cut_agrees(last(8189).as_bytes()).unwrap().is_some());
        assert_eq!(every_cut_agrees(last(8190).as_bytes()).unwrap_err(), 431);
        assert_eq!(
            every_cut_agrees(b"GET /a?d HTTP/0.1\r\nHost: a\r\n\r\n").unwrap_err(),
            505
        );
        assert_eq!(
            every_cut_agrees(b"GET /a HTTP/0.1\r\xf5\r\n\r\n").unwrap_err(),
            400
        );
        assert_eq!(every_cut_agrees(b"GET / FOO\r\n\r\n").unwrap_err(), 400);
    }

    #[test]
    fn a_chunk_line_of_1024_bytes_is_taken_whole_and_in_pieces() {
        let mut body = b"5;".to_vec();
        body.extend(std::iter::repeat_n(b'a', 1021));
        body.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        for split in [0, 100, 1000, 1023, 1024, 1025, body.len()] {
            let mut c = Chunked::default();
            let mut out = Vec::new();
            let used = c.feed(&body[..split], &mut out, 1 << 20).unwrap();
            c.feed(&body[used..], &mut out, 1 << 20).unwrap();
            assert!(c.done, "split {split}");
            assert_eq!(out, b"hello", "split {split}");
        }
    }

    #[test]
    fn a_chunk_lines_bound_holds_whole_as_in_pieces() {
        let mut body = b"5;".to_vec();
        body.extend(std::iter::repeat_n(b'a', 1023));
        body.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        for split in [0, 100, 1000, 1025, body.len()] {
            let mut c = Chunked::default();
            let mut out = Vec::new();
            let first = c.feed(&body[..split], &mut out, 1 << 20);
            let verdict = first.and_then(|used| c.feed(&body[used..], &mut out, 1 << 20));
            assert_eq!(
                verdict.map_err(RequestError::status),
                Err(400),
                "split {split}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_head_parser_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_head(&raw, &Limits::default());
        }

        #[test]
        fn the_chunk_decoder_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut c = Chunked::default();
            let _ = c.feed(&raw, &mut Vec::new(), 1 << 20);
        }
    }
}
