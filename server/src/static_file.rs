//! Files a case sends with `send_file`: opened beneath the root, typed and validated
//! (Content-Type, Last-Modified, ETag); then, for every file answer alike, conditional
//! requests (RFC 9110 §13) and Range requests (RFC 9110 §14).

use crate::error_page;
use crate::http::Head;
use crate::reply::{Body, Reply, Seg};
use crate::resolve::{self, Kind, OpenError, OpenFile, Root};
use crate::shared_file::SharedFile;
use rustix::fs::OFlags;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::reply::{Headers, Text};

/// Answer with the file at `abs`, which a case chose: reuse the file the lookup opened when it
/// is the same path, else open it beneath the root. `url` names it in error pages.
pub fn answer(
    root: &Root,
    abs: &[u8],
    reused: Option<OpenFile>,
    status: u16,
    headers: Headers,
    url: &[u8],
) -> Reply {
    let abs = Path::new(OsStr::from_bytes(abs));
    let opened = match reused {
        Some(f) => Ok(f),
        None => open(root, abs),
    };
    match opened {
        Ok(f) => file_reply(f.file, abs, status, headers),
        Err((status, message)) => error_page::reply(status, url, message),
    }
}

/// The body for a filter's `replace_body_file`: a regular file beneath the root, whole.
/// `None` refuses the call; the filter says what that means for its answer.
pub fn open_for_filter(root: &Root, abs: &[u8]) -> Option<Body> {
    let abs = Path::new(OsStr::from_bytes(abs));
    match kept(root, abs).map_or_else(|| open(root, abs), Ok) {
        Ok(f) => {
            let size = f.file.meta().size;
            Some(Body::File(f.file, vec![Seg::Range(0, size)]))
        }
        Err((status, why)) => {
            log::debug!(
                "a filter's replacement body {}: {status} {why}",
                abs.display()
            );
            None
        }
    }
}

/// The file at `abs` from the open-file cache (opened and kept when it was not there): a
/// site's error page, or a precompressed sidecar, is sent again and again, and then costs
/// no open and stat each time. `None` when it is not a readable regular file beneath the
/// root; `open` then says why.
fn kept(root: &Root, abs: &Path) -> Option<OpenFile> {
    let rel = root.relative(abs)?;
    root.lookup(rel.as_os_str().as_bytes()).ok()?.file
}

/// Open a regular file beneath the root; the error is the status and sentence to answer.
fn open(root: &Root, abs: &Path) -> Result<OpenFile, (u16, &'static str)> {
    let Some(rel) = root.relative(abs) else {
        log::warn!("send_file outside the root refused: {}", abs.display());
        return Err((403, "the file is outside the document root"));
    };
    let flags = OFlags::RDONLY | OFlags::NONBLOCK;
    let fd = root
        .open_beneath(rel.as_os_str().as_bytes(), flags)
        .map_err(|e| match e {
            OpenError::Outside => (403, "the file leads outside the document root"),
            OpenError::Missing => (404, "not found"),
            OpenError::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                (403, "the file cannot be read")
            }
            OpenError::Io(e) => {
                log::error!("cannot open {}: {e}", abs.display());
                (500, "the file cannot be opened")
            }
        })?;
    match rustix::fs::fstat(&fd) {
        Ok(stat) if resolve::kind_of_mode(stat.st_mode) == Kind::File => {
            Ok(OpenFile::new(fd, &stat))
        }
        Ok(_) => Err((403, "not a regular file")),
        Err(_) => Err((500, "the file cannot be read")),
    }
}

/// The whole file with its type; a 200 also gets its validators and `Accept-Ranges`, which
/// the conditional stage ([`conditional`]) reads.
fn file_reply(file: Arc<SharedFile>, path: &Path, status: u16, mut headers: Headers) -> Reply {
    headers.reserve(crate::reply::HEADER_ROOM);
    if !has(&headers, b"content-type") {
        headers.push((Text::Borrowed(b"Content-Type"), content_type_of(path)));
    }
    if status == 200 {
        let [modified, etag] = file.validators();
        headers.push((Text::Borrowed(b"Last-Modified"), Text::Shared(modified)));
        headers.push((Text::Borrowed(b"ETag"), Text::Shared(etag)));
        headers.push((Text::Borrowed(b"Accept-Ranges"), Text::Borrowed(b"bytes")));
    }
    let size = file.meta().size;
    Reply {
        status,
        headers,
        body: Body::File(file, vec![Seg::Range(0, size)]),
    }
}

fn has(headers: &Headers, name: &[u8]) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

fn get<'a>(headers: &'a Headers, name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| &v[..])
}

/// The host stage after the chain and its filters: a 200 answer (transformed or not)
/// answers If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since (RFC 9110
/// §13.2.2) from its own validators; an untransformed whole file then answers Range and
/// If-Range. Answers that are not files (a listing, a case's page, a script's output) do
/// so for GET and HEAD, as Apache does for CGI output: for other methods the case has
/// already acted, so a precondition could no longer stop it.
pub fn conditional(mut reply: Reply, head: &Head, max_ranges: usize) -> Reply {
    if max_ranges == 0 && reply.status == 200 && has_file_body(&reply) {
        // Ranges are off (nginx's `max_ranges 0`): no promise of them either.
        reply
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(b"accept-ranges"));
    }
    if reply.status != 200 || !asks_conditionally(head) {
        return reply;
    }
    if !has_file_body(&reply) && head.method != "GET" && head.method != "HEAD" {
        return reply;
    }
    let etag = get(&reply.headers, b"etag").unwrap_or_default().to_vec();
    let plain = plain_etag(&reply);
    let mtime = get(&reply.headers, b"last-modified").and_then(http_date);
    let tags = [&etag[..], plain.as_deref().unwrap_or_default()];
    match preconditions(head, tags, mtime) {
        Some(412) => precondition_failed(reply, head),
        Some(_) => not_modified(with_the_tag_asked_for(reply, head, &etag, plain)),
        None => match whole_file(&reply) {
            Some(size) => ranges(reply, head, &etag, mtime, size, max_ranges),
            None => reply,
        },
    }
}

/// Does the request carry a precondition or a Range? Most do not, and then nothing here
/// needs the answer's validators parsed.
fn asks_conditionally(head: &Head) -> bool {
    const ASKS: [&str; 6] = [
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "range",
        "if-range",
    ];
    head.headers
        .iter()
        .any(|(n, _)| ASKS.iter().any(|a| n.eq_ignore_ascii_case(a.as_bytes())))
}

/// A file answer, sent as it is or through transforming filters.
fn has_file_body(reply: &Reply) -> bool {
    match &reply.body {
        Body::File(..) => true,
        Body::Transformed(t) => matches!(t.source, crate::filter::Source::File(..)),
        _ => false,
    }
}

/// The size of a reply that is a whole file answered 200, untransformed: the only kind
/// Range applies to.
fn whole_file(reply: &Reply) -> Option<u64> {
    match &reply.body {
        Body::File(_, segs) if reply.status == 200 => match segs.as_slice() {
            [Seg::Range(0, size)] => Some(*size),
            _ => None,
        },
        _ => None,
    }
}

/// The plain answer's tag of an answer a filter content-coded as it streams.
fn plain_etag(reply: &Reply) -> Option<Vec<u8>> {
    match &reply.body {
        Body::Transformed(t) => t.plain_etag.clone(),
        _ => None,
    }
}

/// A 304 that the plain answer's tag earned names that tag: the copy it confirms is the
/// plain one, and a cache updates the response it holds under the tag the 304 names
/// (RFC 9111 §4.3.4).
fn with_the_tag_asked_for(
    mut reply: Reply,
    head: &Head,
    etag: &[u8],
    plain: Option<Vec<u8>>,
) -> Reply {
    let Some(plain) = plain else {
        return reply;
    };
    let asked = |tag: &[u8]| {
        head.all("if-none-match")
            .any(|v| etag_list_matches(v, tag, true))
    };
    if asked(etag) || !asked(&plain) {
        return reply;
    }
    for (n, v) in reply.headers.iter_mut() {
        if n.eq_ignore_ascii_case(b"etag") {
            *v = Text::Owned(plain.clone());
        }
    }
    reply
}

/// RFC 9110 §13.2.2's order: `Some(412)` or `Some(304)` when a precondition decides. A
/// content-coded answer has two tags: its own, and the plain answer's (empty when none).
fn preconditions(head: &Head, tags: [&[u8]; 2], mtime: Option<SystemTime>) -> Option<u16> {
    let safe = head.method == "GET" || head.method == "HEAD";
    // Field lines of one name are one list (RFC 9110 §5.3): any line may hold the match.
    let any_line = |name: &str, weak: bool| {
        let mut lines = head.all(name).peekable();
        lines.peek()?;
        Some(lines.any(|v| tags.iter().any(|t| etag_list_matches(v, t, weak))))
    };
    if let Some(matched) = any_line("if-match", false) {
        if !matched {
            return Some(412);
        }
    } else if let (Some(d), Some(m)) = (one_date(head, "if-unmodified-since"), mtime) {
        if m > d {
            return Some(412);
        }
    }
    if let Some(matched) = any_line("if-none-match", true) {
        if matched {
            return Some(if safe { 304 } else { 412 });
        }
    } else if let (true, Some(d), Some(m)) = (safe, one_date(head, "if-modified-since"), mtime) {
        // A date later than our clock counts too: RFC 9110 §13.1.3 dropped RFC 2616's rule
        // that made it invalid (lighttpd, Caddy and static-web-server answer 304 as well).
        if m <= d {
            return Some(304);
        }
    }
    None
}

/// A GET with a satisfiable Range gets 206 (one part, or multipart/byteranges); an
/// unsatisfiable one 416; an If-Range that no longer matches, the whole file. So do an
/// empty file (no part of it can be named) and parts that add up to more than the file
/// (overlaps that would send it many times over, RFC 9110 §14.3, §17.15), as nginx does.
fn ranges(
    reply: Reply,
    head: &Head,
    etag: &[u8],
    mtime: Option<SystemTime>,
    size: u64,
    max_ranges: usize,
) -> Reply {
    if head.method != "GET" || size == 0 || max_ranges == 0 {
        return reply;
    }
    let Some(range) = head.header("range") else {
        return reply;
    };
    if let Some(ir) = head.header("if-range") {
        if !if_range_holds(ir, etag, mtime) {
            return reply;
        }
    }
    match parse_ranges(range, size) {
        RangeSpec::Ignore => reply,
        RangeSpec::Unsatisfiable => unsatisfiable(reply, head, size),
        RangeSpec::Ranges(rs) if rs.len() > max_ranges || parts_length(&rs) > size => reply,
        RangeSpec::Ranges(rs) if rs.len() == 1 => single_range(reply, rs[0], size),
        RangeSpec::Ranges(rs) => multipart(reply, &rs, size),
    }
}

/// Does an If-Range validator still name the file? An entity tag is compared strongly
/// (RFC 9110 §13.1.5: a weak one never matches), a date exactly.
fn if_range_holds(ir: &[u8], etag: &[u8], mtime: Option<SystemTime>) -> bool {
    if ir.starts_with(b"\"") || ir.starts_with(b"W/") {
        ir.starts_with(b"\"") && ir == etag
    } else {
        http_date(ir).is_some_and(|d| Some(d) == mtime)
    }
}

/// The bytes the parts name, overlaps counted each time.
fn parts_length(rs: &[(u64, u64)]) -> u64 {
    rs.iter()
        .map(|(s, e)| e - s + 1)
        .fold(0, u64::saturating_add)
}

fn single_range(mut reply: Reply, (s, e): (u64, u64), size: u64) -> Reply {
    let Body::File(file, _) = reply.body else {
        return reply;
    };
    reply.headers.push((
        Text::Borrowed(b"Content-Range"),
        format!("bytes {s}-{e}/{size}").into_bytes().into(),
    ));
    Reply {
        status: 206,
        headers: reply.headers,
        body: Body::File(file, vec![Seg::Range(s, e - s + 1)]),
    }
}

fn multipart(mut reply: Reply, rs: &[(u64, u64)], size: u64) -> Reply {
    let Body::File(file, _) = reply.body else {
        return reply;
    };
    let boundary = boundary();
    let ctype = reply
        .headers
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(b"content-type"))
        .map(|i| reply.headers.remove(i).1)
        .unwrap_or_default();
    let mut segs = Vec::with_capacity(rs.len() * 2 + 1);
    for (i, (s, e)) in rs.iter().enumerate() {
        let mut part = Vec::new();
        if i > 0 {
            part.extend_from_slice(b"\r\n");
        }
        part.extend_from_slice(format!("--{boundary}\r\nContent-Type: ").as_bytes());
        part.extend_from_slice(&ctype);
        part.extend_from_slice(
            format!("\r\nContent-Range: bytes {s}-{e}/{size}\r\n\r\n").as_bytes(),
        );
        segs.push(Seg::Bytes(part));
        segs.push(Seg::Range(*s, e - s + 1));
    }
    segs.push(Seg::Bytes(format!("\r\n--{boundary}--\r\n").into_bytes()));
    reply.headers.push((
        Text::Borrowed(b"Content-Type"),
        format!("multipart/byteranges; boundary={boundary}")
            .into_bytes()
            .into(),
    ));
    Reply {
        status: 206,
        headers: reply.headers,
        body: Body::File(file, segs),
    }
}

/// 416 with `Content-Range: bytes */size`, keeping the validators.
fn unsatisfiable(reply: Reply, head: &Head, size: u64) -> Reply {
    let mut r = error_page::reply(416, &head.target, "no part of the requested range exists");
    r.headers.extend(validators(reply.headers));
    r.headers.push((
        Text::Borrowed(b"Content-Range"),
        format!("bytes */{size}").into_bytes().into(),
    ));
    r
}

/// 304: the validators and caching fields of the 200, not the fields that describe its
/// content (RFC 9110 §15.4.5): no Content-Type, and no Content-Encoding of a coded copy
/// a cache holding the plain one could take for its own.
fn not_modified(mut reply: Reply) -> Reply {
    const CONTENT: [&[u8]; 3] = [b"content-type", b"content-encoding", b"accept-ranges"];
    reply
        .headers
        .retain(|(n, _)| !CONTENT.iter().any(|c| n.eq_ignore_ascii_case(c)));
    Reply {
        status: 304,
        headers: reply.headers,
        body: Body::Empty,
    }
}

fn precondition_failed(reply: Reply, head: &Head) -> Reply {
    let mut r = error_page::reply(412, &head.target, "a precondition in the request failed");
    r.headers.extend(validators(reply.headers));
    r
}

/// The file answer's headers for an answer about it that does not send it (412, 416): the
/// validators and what filters added (Vary, security headers, the Content-Security-Policy
/// among them), without the ones that described the file's body, nor its lifetime
/// (Cache-Control, Expires): a cache must not keep the error and give it for a plain GET
/// of the file (RFC 9111 §3, §4), as nginx's `expires` and `add_header` skip these statuses.
fn validators(headers: Headers) -> impl Iterator<Item = (Text, Text)> {
    const DROPPED: [&[u8]; 3] = [b"accept-ranges", b"cache-control", b"expires"];
    headers.into_iter().filter(|(n, _)| {
        let about_body = n.len() > 8 && n[..8].eq_ignore_ascii_case(b"content-");
        let policy = n.len() >= 23 && n[..23].eq_ignore_ascii_case(b"content-security-policy");
        (!about_body || policy) && !DROPPED.iter().any(|d| n.eq_ignore_ascii_case(d))
    })
}

thread_local! {
    static TYPES: std::cell::RefCell<crate::recent::Recent<Vec<u8>, &'static [u8]>> = const { std::cell::RefCell::new(crate::recent::Recent::new()) };
}

/// The Content-Type header value for a path, remembered per extension.
fn content_type_of(path: &Path) -> Text {
    let ext = extension(path.as_os_str().as_bytes());
    let value = TYPES.with_borrow_mut(|c| {
        c.get_or(
            |k| k.eq_ignore_ascii_case(ext),
            || (ext.to_ascii_lowercase(), interned(content_type(path))),
        )
    });
    Text::Borrowed(value)
}

/// What `Path::extension` finds in a file's path (after the last dot of its name, not a
/// leading one), read from the bytes: the file answer's path has no trailing slash or `.`
/// segment for `Path`'s component parsing to settle, and this runs for every file sent.
fn extension(path: &[u8]) -> &[u8] {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    match name.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => &name[dot + 1..],
        _ => b"",
    }
}

/// One lasting copy of each Content-Type value, so answers borrow it: the values come from
/// a fixed table (mime_guess's types, with or without a charset), so the set is bounded.
fn interned(value: String) -> &'static [u8] {
    static VALUES: std::sync::Mutex<Vec<&'static [u8]>> = std::sync::Mutex::new(Vec::new());
    let mut values = VALUES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = values.iter().find(|v| **v == value.as_bytes()) {
        return v;
    }
    let v: &'static [u8] = Box::leak(value.into_bytes().into_boxed_slice());
    values.push(v);
    v
}

/// Content-Type for a path from its extension; text (and legacy JavaScript) gets
/// `charset=utf-8`. JSON has no charset parameter (RFC 8259 §11) and SVG declares its own
/// encoding, so they go without one, as nginx, lighttpd and Caddy send them.
pub fn content_type(path: &Path) -> String {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mime = current_type(ext).or_else(|| mime_guess::from_path(path).first_raw());
    match mime {
        Some(m) if m.starts_with("text/") || m == "application/javascript" => {
            format!("{m}; charset=utf-8")
        }
        Some(m) => m.to_string(),
        None => "application/octet-stream".to_string(),
    }
}

/// Types registered since mime_guess's table was made, where it still has the old ones
/// (application/javascript for .mjs, application/font-woff, text/plain for .map, an
/// unregistered audio/m4a, text/x-yaml and text/x-toml), or a Windows one (.manifest: an
/// application cache manifest on the web, as lighttpd and Debian's mime.types say; .ts:
/// an HLS segment, as nginx says, not DLNA's name for it; .rpm: a package, not a
/// RealAudio plug-in).
fn current_type(ext: &str) -> Option<&'static str> {
    const CURRENT: [(&str, &str); 18] = [
        ("js", "text/javascript"), // RFC 9239
        ("mjs", "text/javascript"),
        ("cjs", "text/javascript"),
        ("woff", "font/woff"), // RFC 8081
        ("woff2", "font/woff2"),
        ("otf", "font/otf"),
        ("ttf", "font/ttf"),
        ("map", "application/json"), // source maps
        ("m4a", "audio/mp4"),        // RFC 4337; mime_guess says audio/m4a, never registered
        ("manifest", "text/cache-manifest"),
        ("yaml", "application/yaml"), // RFC 9512; mime_guess says text/x-yaml
        ("yml", "application/yaml"),
        ("toml", "application/toml"), // registered 2024; mime_guess says text/x-toml
        ("ts", "video/mp2t"),         // as nginx; mime_guess says video/vnd.dlna.mpeg-tts
        ("rpm", "application/x-redhat-package-manager"), // as nginx and Debian's mime.types
        ("tgz", "application/gzip"),  // its bytes, as .gz; mime_guess: application/x-compressed
        ("vcf", "text/vcard"),        // RFC 6350; mime_guess says text/x-vcard
        ("m3u8", "application/vnd.apple.mpegurl"), // RFC 8216 §4, as nginx and lighttpd
    ];
    CURRENT
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map(|(_, t)| *t)
}

/// Does a list of entity tags (If-Match, If-None-Match) name `etag`, by the weak or the
/// strong comparison (RFC 9110 §8.8.3.2)? `*` names any answer.
fn etag_list_matches(list: &[u8], etag: &[u8], weak: bool) -> bool {
    let (etag_weak, opaque) = match etag.strip_prefix(b"W/") {
        Some(o) => (true, o),
        None => (false, etag),
    };
    let mut rest = list;
    loop {
        rest = rest.trim_ascii_start();
        if let Some(r) = rest.strip_prefix(b",") {
            rest = r;
            continue;
        }
        if rest.is_empty() {
            return false;
        }
        let (member, after) = next_entity_tag(rest);
        if member == b"*" {
            return true;
        }
        // An answer without an ETag matches nothing but `*`.
        let (tag_weak, tag_opaque) = match member.strip_prefix(b"W/") {
            Some(o) => (true, o),
            None => (false, member),
        };
        if !etag.is_empty() && tag_opaque == opaque && (weak || !(tag_weak || etag_weak)) {
            return true;
        }
        rest = after;
    }
}

/// The list member `list` starts with, and what follows it: an entity tag read to its
/// closing quote (so `"a,b"` is one tag, RFC 9110 §8.8.3); anything else (`*`, or a bare
/// tag as some scripts send and browsers echo, `5d8c72a5`) up to the next comma, as nginx
/// compares such tags byte for byte.
fn next_entity_tag(list: &[u8]) -> (&[u8], &[u8]) {
    let quoted = list.strip_prefix(b"W/").unwrap_or(list);
    let at = list.len() - quoted.len();
    let closing = quoted
        .strip_prefix(b"\"")
        .and_then(|q| q.iter().position(|&b| b == b'"'))
        .map(|e| at + e + 2);
    let ends_member = |e: usize| {
        let after = list[e..].trim_ascii_start();
        after.is_empty() || after.starts_with(b",")
    };
    match closing {
        Some(e) if ends_member(e) => (&list[..e], &list[e..]),
        _ => {
            let end = list.iter().position(|&b| b == b',').unwrap_or(list.len());
            (list[..end].trim_ascii_end(), &list[end..])
        }
    }
}

/// The date of a field that holds one (If-Modified-Since, If-Unmodified-Since): none when
/// it is not a valid HTTP-date or comes on more than one line, a list of two members
/// (RFC 9110 §13.1.3, §13.1.4: then the field is ignored).
fn one_date(head: &Head, name: &str) -> Option<SystemTime> {
    let mut lines = head.all(name);
    let first = lines.next()?;
    lines.next().is_none().then(|| http_date(first)).flatten()
}

fn http_date(v: &[u8]) -> Option<SystemTime> {
    httpdate::parse_http_date(std::str::from_utf8(v).ok()?.trim()).ok()
}

/// A multipart boundary no one can predict, so a file cannot contain it on purpose: std's
/// per-process random hash keys, mixed with a counter.
fn boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static KEYS: std::collections::hash_map::RandomState = Default::default();
    }
    KEYS.with(|keys| {
        let mut h = keys.build_hasher();
        h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
        let a = h.finish();
        h.write_u64(a);
        format!("{a:016x}{:016x}", h.finish())
    })
}

/// A parsed Range header.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// Not a bytes range (another unit, RFC 9110 §14.2: ignored): serve the whole file.
    Ignore,
    /// No range overlaps the file, or the bytes ranges cannot be read: 416.
    Unsatisfiable,
    /// Inclusive (first, last) pairs, all within the file.
    Ranges(Vec<(u64, u64)>),
}

/// Parse `bytes=a-b, -n, c-` against a file of `size` bytes (RFC 9110 §14.1.2). A bytes
/// Range that does not parse (`bytes=5-2`, `bytes=a-b`, `bytes=`) is rejected with 416,
/// which §14.2 allows, as nginx, lighttpd and Caddy answer it.
pub fn parse_ranges(v: &[u8], size: u64) -> RangeSpec {
    // The unit is case-insensitive (RFC 9110 §14.1), as nginx and lighttpd read it.
    let v = v.trim_ascii();
    let Some(set) = v
        .get(6..)
        .filter(|_| v[..6].eq_ignore_ascii_case(b"bytes="))
    else {
        return RangeSpec::Ignore;
    };
    let Ok(set) = std::str::from_utf8(set) else {
        return RangeSpec::Unsatisfiable;
    };
    let specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    if specs.clone().next().is_none() {
        return RangeSpec::Unsatisfiable;
    }
    let mut out = Vec::new();
    for spec in specs {
        let Some((a, b)) = spec.split_once('-') else {
            return RangeSpec::Unsatisfiable;
        };
        let (a, b) = (a.trim(), b.trim());
        // Digits past u64 name a position beyond any file: as large as it gets.
        let num = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                None
            } else {
                Some(s.parse().unwrap_or(u64::MAX))
            }
        };
        if a.is_empty() {
            let Some(n) = num(b) else {
                return RangeSpec::Unsatisfiable;
            };
            if n > 0 && size > 0 {
                out.push((size.saturating_sub(n), size - 1));
            }
        } else {
            let Some(first) = num(a) else {
                return RangeSpec::Unsatisfiable;
            };
            let last = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(l) if l >= first => l,
                    _ => return RangeSpec::Unsatisfiable,
                }
            };
            if first < size {
                out.push((first, last.min(size - 1)));
            }
        }
    }
    if out.is_empty() {
        RangeSpec::Unsatisfiable
    } else {
        RangeSpec::Ranges(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeSpec::*;
        assert_eq!(parse_ranges(b"bytes=0-4", 10), Ranges(vec![(0, 4)]));
        assert_eq!(parse_ranges(b"bytes=5-", 10), Ranges(vec![(5, 9)]));
        assert_eq!(parse_ranges(b"bytes=-3", 10), Ranges(vec![(7, 9)]));
        assert_eq!(parse_ranges(b"bytes=-30", 10), Ranges(vec![(0, 9)]));
        assert_eq!(parse_ranges(b"bytes=8-100", 10), Ranges(vec![(8, 9)]));
        assert_eq!(
            parse_ranges(b"bytes=0-0, 2-3", 10),
            Ranges(vec![(0, 0), (2, 3)])
        );
        assert_eq!(parse_ranges(b"bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_ranges(b"bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_ranges(b"bytes=5-2", 10), Unsatisfiable);
        assert_eq!(parse_ranges(b"items=0-1", 10), Ignore);
        assert_eq!(parse_ranges(b"bytes=a-b", 10), Unsatisfiable);
        // The unit in any case; an empty set is a bad Range (416); a huge end is the file's end.
        assert_eq!(parse_ranges(b"Bytes=0-1", 10), Ranges(vec![(0, 1)]));
        assert_eq!(parse_ranges(b"BYTES=-2", 10), Ranges(vec![(8, 9)]));
        assert_eq!(parse_ranges(b"bytes=", 10), Unsatisfiable);
        assert_eq!(parse_ranges(b"bytes= , ", 10), Unsatisfiable);
        assert_eq!(
            parse_ranges(b"bytes=0-99999999999999999999999", 10),
            Ranges(vec![(0, 9)])
        );
        assert_eq!(
            parse_ranges(b"bytes=99999999999999999999999-", 10),
            Unsatisfiable
        );
    }

    #[test]
    fn types_mime_guess_has_old_or_wrong_get_their_current_ones() {
        for (name, want) in [
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.MJS", "text/javascript; charset=utf-8"),
            ("a.woff", "font/woff"),
            ("a.woff2", "font/woff2"),
            ("a.otf", "font/otf"),
            ("a.js.map", "application/json"),
            ("data.json", "application/json"),
            ("logo.svg", "image/svg+xml"),
            ("app.manifest", "text/cache-manifest; charset=utf-8"),
            ("a.html", "text/html; charset=utf-8"),
            ("a.png", "image/png"),
            ("song.m4a", "audio/mp4"),
            ("site.yaml", "application/yaml"),
            ("site.yml", "application/yaml"),
            ("server.toml", "application/toml"),
            ("segment0.ts", "video/mp2t"),
            (
                "tool-1.0.x86_64.rpm",
                "application/x-redhat-package-manager",
            ),
            ("src.tgz", "application/gzip"),
            ("me.vcf", "text/vcard; charset=utf-8"),
            ("index.m3u8", "application/vnd.apple.mpegurl"),
        ] {
            assert_eq!(content_type(Path::new(name)), want, "{name}");
        }
    }

    #[test]
    fn a_file_names_extension_is_what_path_finds() {
        for p in [
            "/srv/www/a.html",
            "/srv/www/a.tar.gz",
            "/srv/www/.bashrc",
            "/srv/www/noext",
            "/srv/www/file.",
            "/srv/v1.2/readme",
            "/srv/www/..",
            "a.CSS",
            "",
        ] {
            let want = Path::new(p).extension().map_or(&b""[..], |e| e.as_bytes());
            assert_eq!(extension(p.as_bytes()), want, "{p}");
        }
    }

    #[test]
    fn text_types_carry_a_charset() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type(Path::new("a.unknownext")),
            "application/octet-stream"
        );
    }

    #[test]
    fn multipart_boundaries_differ_every_time() {
        let (a, b) = (boundary(), boundary());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn if_range_compares_tags_strongly_and_dates_exactly() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert!(if_range_holds(b"\"a\"", b"\"a\"", None));
        assert!(!if_range_holds(b"W/\"a\"", b"W/\"a\"", None));
        assert!(!if_range_holds(b"\"a\"", b"W/\"a\"", None));
        assert!(if_range_holds(
            b"Tue, 14 Nov 2023 22:13:20 GMT",
            b"",
            Some(t)
        ));
        assert!(!if_range_holds(
            b"Tue, 14 Nov 2023 22:13:21 GMT",
            b"",
            Some(t)
        ));
    }

    #[test]
    fn parts_that_add_up_past_u64_are_more_than_any_file_not_a_wrapped_sum() {
        assert_eq!(
            parts_length(&[(0, u64::MAX - 1), (0, u64::MAX - 1)]),
            u64::MAX
        );
    }

    #[test]
    fn weak_and_strong_etag_comparison() {
        assert!(etag_list_matches(b"W/\"a\", \"b\"", b"\"a\"", true));
        assert!(!etag_list_matches(b"W/\"a\"", b"\"a\"", false));
        assert!(etag_list_matches(b"*", b"\"a\"", false));
        assert!(etag_list_matches(b" *", b"", true));
        // Strong comparison fails when either tag is weak.
        assert!(!etag_list_matches(b"\"a\"", b"W/\"a\"", false));
        assert!(etag_list_matches(b"\"a\"", b"W/\"a\"", true));
        // A comma inside a tag is part of it (RFC 9110 §8.8.3: etagc takes it).
        assert!(etag_list_matches(b"\"x\", \"a,b\"", b"\"a,b\"", false));
        assert!(!etag_list_matches(b"\"a,b\"", b"\"a\"", true));
        // Members that are no entity tag are not read into the next one.
        assert!(etag_list_matches(
            b"junk, W/x\"y\", ,\"a\"",
            b"\"a\"",
            false
        ));
        assert!(!etag_list_matches(b"\"a\"x, b", b"\"a\"", true));
        // A bare tag (a script's `ETag: 5d8c72a5`, echoed by a browser) is compared as sent.
        assert!(etag_list_matches(b"5d8c72a5", b"5d8c72a5", true));
        assert!(etag_list_matches(b"\"b\", 5d8c72a5 ", b"5d8c72a5", false));
        assert!(!etag_list_matches(b"5d8c72a5", b"\"5d8c72a5\"", true));
        assert!(!etag_list_matches(b"\"a\"", b"", true));
        assert!(!etag_list_matches(b"", b"\"a\"", true));
    }
}
