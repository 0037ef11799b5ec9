//! A test kit for cases: build a request, run a case in-process, and read what it answered.
//!
//! The case is called through its C-ABI descriptor, the same `create`/`test`/`act`/`destroy`
//! entry points that `export_case!` hands the server, so a unit test also covers the export
//! layer: settings arriving as JSON text, `catch_unwind` and the panic's log line, the `Outcome` mapping,
//! strings lent as `{ptr, len}`. The response calls are recorded by a stand-in host that
//! refuses what the server refuses (a header after the body started, a second body, an error
//! status outside 400-599, a redirect that is not a local path).
//!
//! ```
//! use plugin_api::testing::{TestCase, TestRequest};
//! use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
//!
//! struct Hello;
//! impl Case for Hello {
//!     const NAME: &'static std::ffi::CStr = c"hello";
//!     fn create(_host: Host, _settings: Settings) -> Result<Self, String> { Ok(Hello) }
//!     fn test(&self, req: &Request) -> bool { req.path() == "/hello" }
//!     fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
//!         resp.header("Content-Type", "text/plain").ok();
//!         resp.write(b"Hello, web!\n").into()
//!     }
//! }
//!
//! let case = TestCase::<Hello>::create("{}").unwrap();
//! assert!(!case.test(&TestRequest::get("/elsewhere")));
//! let req = TestRequest::get("/hello").header("Accept", "text/plain");
//! assert!(case.test(&req));
//! let answer = case.act(&req);
//! assert_eq!(answer.outcome, Outcome::Done);
//! assert_eq!(answer.status, 200);
//! assert_eq!(answer.header("content-type"), Some("text/plain"));
//! assert_eq!(answer.text(), "Hello, web!\n");
//! ```
//!
//! ABI 1.1 is covered too: a rewriting case's [`Recorded::rewrite`] and [`Recorded::vars`]
//! (with `Outcome::Continue`), variables set by earlier cases ([`TestRequest::var`]), and
//! filters run on a [`TestResponse`] with [`TestCase::filter`], their transform included.
//!
//! ```
//! use plugin_api::testing::{TestCase, TestRequest, TestResponse};
//! use plugin_api::{Case, Filtered, Head, Host, Outcome, Request, Response, Settings};
//!
//! struct Stamp;
//! impl Case for Stamp {
//!     const NAME: &'static std::ffi::CStr = c"stamp";
//!     const ACTS: bool = false;
//!     const FILTERS: bool = true;
//!     fn create(_host: Host, _settings: Settings) -> Result<Self, String> { Ok(Stamp) }
//!     fn test(&self, _req: &Request) -> bool { false }
//!     fn act(&self, _req: &Request, _resp: &mut Response) -> Outcome { Outcome::Declined }
//!     fn filter(&self, _req: &Request, head: &mut Head) -> Filtered {
//!         head.set("X-Stamp", "yes").ok();
//!         Filtered::Pass
//!     }
//! }
//!
//! let case = TestCase::<Stamp>::create("{}").unwrap();
//! let seen = case.filter(&TestRequest::get("/"), &TestResponse::new(404));
//! assert_eq!(seen.header("x-stamp"), Some("yes"));
//! assert_eq!(seen.status, 404);
//! ```

use crate::abi::{Field, WP_BODY_MORE, WP_BODY_OK, WP_IO_END, WP_PASS, WP_TRANSFORM};
use crate::export::{HeadSink, Loaded, RequestParts, ResponseSink};
use crate::{Case, Kind, Level, Outcome};
use std::marker::PhantomData;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A request to hand a case, built step by step. Defaults: `GET`, `HTTP/1.1`, no query,
/// headers or body, client `127.0.0.1:40000`, server `127.0.0.1:8080`, root `/nonexistent`,
/// `fs_path` = root + path, and a kind read from the disk at `fs_path` (as the server does)
/// unless [`TestRequest::kind`] sets one.
#[derive(Clone, Debug)]
pub struct TestRequest {
    method: String,
    path: String,
    query: String,
    version: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    root: PathBuf,
    fs_path: Option<PathBuf>,
    kind: Option<Kind>,
    client: (String, u16),
    server: (String, u16),
    vars: Vec<(Vec<u8>, Vec<u8>)>,
}

impl TestRequest {
    /// A request with this method for this (decoded, normalised) path.
    pub fn new(method: &str, path: &str) -> Self {
        TestRequest {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            version: "HTTP/1.1".into(),
            headers: Vec::new(),
            body: Vec::new(),
            root: PathBuf::from("/nonexistent"),
            fs_path: None,
            kind: None,
            client: ("127.0.0.1".into(), 40000),
            server: ("127.0.0.1".into(), 8080),
            vars: Vec::new(),
        }
    }

    /// (1.1) A variable an earlier case set (`REMOTE_USER`, ...).
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    /// A `GET` for this path.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// The query string, without `?`.
    pub fn query(mut self, query: &str) -> Self {
        self.query = query.into();
        self
    }

    /// Add a header (repeat for more, in arrival order).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request body, which the case reads with `Response::read_body`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The protocol version (`HTTP/1.0` or `HTTP/1.1`).
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.into();
        self
    }

    /// The document root; `fs_path` becomes root + path unless set.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    /// The path on disk, when it is not root + path.
    pub fn fs_path(mut self, fs_path: impl Into<PathBuf>) -> Self {
        self.fs_path = Some(fs_path.into());
        self
    }

    /// What `fs_path` is, instead of what the disk says.
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The client's address and port.
    pub fn client(mut self, addr: &str, port: u16) -> Self {
        self.client = (addr.into(), port);
        self
    }

    /// The local address and port the request arrived on.
    pub fn server(mut self, addr: &str, port: u16) -> Self {
        self.server = (addr.into(), port);
        self
    }

    /// The request-target as a client would send it: path, then `?query` if any.
    fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    fn resolved_fs_path(&self) -> PathBuf {
        match &self.fs_path {
            Some(p) => p.clone(),
            None => self.root.join(self.path.trim_start_matches('/')),
        }
    }

    fn resolved_kind(&self, fs_path: &Path) -> Kind {
        self.kind
            .unwrap_or_else(|| match std::fs::metadata(fs_path) {
                Ok(m) if m.is_file() => Kind::File,
                Ok(m) if m.is_dir() => Kind::Dir,
                Ok(_) => Kind::Other,
                Err(_) => Kind::Missing,
            })
    }

    /// Hand the request's fields, in the export layer's terms, to `f`.
    fn with_parts<R>(&self, f: impl FnOnce(&RequestParts) -> R) -> R {
        let target = self.target();
        let fs_path = self.resolved_fs_path();
        let mut strings: [&[u8]; 9] = [&[]; 9];
        for (field, value) in [
            (Field::Method, self.method.as_bytes()),
            (Field::Target, target.as_bytes()),
            (Field::Path, self.path.as_bytes()),
            (Field::Query, self.query.as_bytes()),
            (Field::Version, self.version.as_bytes()),
            (Field::ClientAddr, self.client.0.as_bytes()),
            (Field::ServerAddr, self.server.0.as_bytes()),
            (Field::Root, self.root.as_os_str().as_bytes()),
            (Field::FsPath, fs_path.as_os_str().as_bytes()),
        ] {
            strings[field as usize] = value;
        }
        f(&RequestParts {
            strings,
            headers: &self.headers,
            vars: &self.vars,
            fs_kind: kind_code(self.resolved_kind(&fs_path)),
            body_len: self.body.len() as u64,
            client_port: self.client.1,
            server_port: self.server.1,
        })
    }
}

fn kind_code(kind: Kind) -> u32 {
    use crate::abi::{WP_KIND_DIR, WP_KIND_FILE, WP_KIND_MISSING, WP_KIND_OTHER};
    match kind {
        Kind::Missing => WP_KIND_MISSING,
        Kind::File => WP_KIND_FILE,
        Kind::Dir => WP_KIND_DIR,
        Kind::Other => WP_KIND_OTHER,
    }
}

/// What a case answered to one `act`. Fields are added as the ABI grows, so build none
/// yourself; read them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recorded {
    /// What `act` returned (a panic shows as `Error`).
    pub outcome: Outcome,
    /// The status set with `Response::status` (200 unless set).
    pub status: u16,
    /// Headers added, in order (bytes that are not UTF-8 shown lossily).
    pub headers: Vec<(String, String)>,
    /// Body bytes written.
    pub body: Vec<u8>,
    /// Times the case asked to flush (`Response::flush`).
    pub flushes: usize,
    /// The file given to `Response::send_file`.
    pub sent_file: Option<PathBuf>,
    /// The status and message given to `Response::error`.
    pub error: Option<(u16, String)>,
    /// The local target given to `Response::redirect`.
    pub redirect: Option<String>,
    /// (1.1) The target given to `Response::rewrite`.
    pub rewrite: Option<String>,
    /// (1.1) Variables given to `Response::set_var`, in order (a repeat replaces).
    pub vars: Vec<(String, String)>,
    /// Each response call the stand-in host refused, named, in order.
    pub refused: Vec<&'static str>,
}

impl Recorded {
    fn new() -> Recorded {
        Recorded {
            outcome: Outcome::Done,
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
            flushes: 0,
            sent_file: None,
            error: None,
            redirect: None,
            rewrite: None,
            vars: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Did anything body-like happen (write, file, error page, redirect)?
    fn started(&self) -> bool {
        !self.body.is_empty()
            || self.flushes > 0
            || self.sent_file.is_some()
            || self.error.is_some()
            || self.redirect.is_some()
    }

    fn refuse(&mut self, call: &'static str) -> bool {
        self.refused.push(call);
        false
    }
}

/// Headers the server sets itself and refuses from a case.
const HOST_OWNED: [&str; 9] = [
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "date",
    "server",
    "upgrade",
    "proxy-connection",
];

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_field_value(s: &[u8]) -> bool {
    s.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// The stand-in host's side of one `act`: the record, and the request body to read.
struct Recording<'a> {
    rec: Recorded,
    body: &'a [u8],
}

impl ResponseSink for Recording<'_> {
    fn set_status(&mut self, status: u16) -> bool {
        if self.rec.started() || !(200..=599).contains(&status) {
            return self.rec.refuse("set_status");
        }
        self.rec.status = status;
        true
    }

    fn add_header(&mut self, name: &[u8], value: &[u8]) -> bool {
        let value = value.trim_ascii();
        let owned = HOST_OWNED
            .iter()
            .any(|o| name.eq_ignore_ascii_case(o.as_bytes()));
        if self.rec.started() || !is_token(name) || !is_field_value(value) || owned {
            return self.rec.refuse("add_header");
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        self.rec.headers.push((text(name), text(value)));
        true
    }

    fn write(&mut self, data: &[u8]) -> bool {
        let r = &mut self.rec;
        if r.sent_file.is_some() || r.error.is_some() || r.redirect.is_some() {
            return r.refuse("write");
        }
        if data.is_empty() {
            r.flushes += 1;
        }
        r.body.extend_from_slice(data);
        true
    }

    fn send_file(&mut self, path: &[u8]) -> bool {
        if self.rec.started() {
            return self.rec.refuse("send_file");
        }
        let path = Path::new(std::ffi::OsStr::from_bytes(path));
        self.rec.sent_file = Some(path.to_path_buf());
        true
    }

    fn send_error(&mut self, status: u16, message: &[u8]) -> bool {
        if self.rec.started() || !(400..=599).contains(&status) {
            return self.rec.refuse("send_error");
        }
        let message = String::from_utf8_lossy(message).into_owned();
        self.rec.error = Some((status, message));
        true
    }

    fn read_body(&mut self, buf: &mut [u8]) -> isize {
        let n = self.body.len().min(buf.len());
        buf[..n].copy_from_slice(&self.body[..n]);
        self.body = &self.body[n..];
        n as isize
    }

    fn redirect(&mut self, target: &[u8]) -> bool {
        if self.rec.started() || !target.starts_with(b"/") || !is_field_value(target) {
            return self.rec.refuse("redirect");
        }
        self.rec.redirect = Some(String::from_utf8_lossy(target).into_owned());
        true
    }

    fn rewrite(&mut self, target: &[u8]) -> bool {
        if self.rec.started() || !target.starts_with(b"/") || !is_field_value(target) {
            return self.rec.refuse("rewrite");
        }
        self.rec.rewrite = Some(String::from_utf8_lossy(target).into_owned());
        true
    }

    fn set_var(&mut self, name: &[u8], value: &[u8]) -> bool {
        let shape = name.first().is_some_and(u8::is_ascii_uppercase)
            && name.len() <= 64
            && name
                .iter()
                .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !shape || !is_field_value(value) {
            return self.rec.refuse("set_var");
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let name = text(name);
        self.rec.vars.retain(|(n, _)| *n != name);
        self.rec.vars.push((name, text(value)));
        true
    }
}

/// (1.1) A response for a filter to see: status, headers and body.
#[derive(Clone, Debug)]
pub struct TestResponse {
    status: u16,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    host_page: Option<bool>,
}

impl TestResponse {
    /// A response with this status, no headers and an empty body; the stand-in host does
    /// not say where the body came from (`Head::host_page` is `None`) unless told.
    pub fn new(status: u16) -> Self {
        TestResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            host_page: None,
        }
    }

    /// Say whether the body is the host's own page for the status (`true`) or one the case
    /// or script wrote (`false`), as the server does (`Head::host_page`).
    pub fn host_page(mut self, host_page: bool) -> Self {
        self.host_page = Some(host_page);
        self
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// (1.1) What a filter decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterVerdict {
    /// `Filtered::Pass`.
    Pass,
    /// `Filtered::Transform`: the body went through the transform.
    Transform,
    /// `Filtered::Error` (or a panic).
    Error,
}

/// (1.1) A response after one filter: read its fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FilterRecord {
    /// What the filter returned.
    pub verdict: FilterVerdict,
    /// The status after the filter.
    pub status: u16,
    /// The headers after the filter, as bytes.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body after a replacement and the transform (`None`: the transform failed).
    pub body: Option<Vec<u8>>,
    /// The file given to `Head::replace_body_file`.
    pub replaced_file: Option<PathBuf>,
    /// Each head call the stand-in host refused, named, in order.
    pub refused: Vec<&'static str>,
    /// Where the body came from, as the response said (`TestResponse::host_page`).
    host_page: Option<bool>,
}

impl FilterRecord {
    /// The first header with this name (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every value of a header, as text.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .collect()
    }
}

/// Headers that frame a response: a filter may not touch them (as in the host).
fn framing(name: &[u8]) -> bool {
    crate::abi::host_owned_header(name)
}

impl HeadSink for FilterRecord {
    fn status(&self) -> u16 {
        self.status
    }

    fn set_status(&mut self, status: u16) -> bool {
        if !(200..=599).contains(&status) || status == 206 || status == 304 {
            self.refused.push("set_status");
            return false;
        }
        self.status = status;
        true
    }

    fn header_count(&self) -> usize {
        self.headers.len()
    }

    fn header_at(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.headers.get(i).map(|(n, v)| (&n[..], &v[..]))
    }

    fn set_header(&mut self, name: &[u8], value: &[u8]) -> bool {
        let value = value.trim_ascii();
        if framing(name) || !is_token(name) || !is_field_value(value) {
            self.refused.push("set_header");
            return false;
        }
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_vec(), value.to_vec()));
        true
    }

    fn append_header(&mut self, name: &[u8], value: &[u8]) -> bool {
        let value = value.trim_ascii();
        if framing(name) || !is_token(name) || !is_field_value(value) {
            self.refused.push("append_header");
            return false;
        }
        self.headers.push((name.to_vec(), value.to_vec()));
        true
    }

    fn remove_header(&mut self, name: &[u8]) -> bool {
        if framing(name) {
            self.refused.push("remove_header");
            return false;
        }
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        true
    }

    fn vary_add(&mut self, token: &[u8]) -> bool {
        if !is_token(token) {
            self.refused.push("vary_add");
            return false;
        }
        let vary = self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"vary"));
        match vary {
            Some((_, v)) => {
                let has = v
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token));
                if !has {
                    v.extend_from_slice(b", ");
                    v.extend_from_slice(token);
                }
            }
            None => self.headers.push((b"Vary".to_vec(), token.to_vec())),
        }
        true
    }

    fn replace_body_bytes(&mut self, data: &[u8]) -> bool {
        self.body = Some(data.to_vec());
        true
    }

    fn replace_body_file(&mut self, path: &[u8]) -> bool {
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(path));
        match std::fs::read(&path) {
            Ok(b) => {
                self.body = Some(b);
                self.replaced_file = Some(path);
                true
            }
            Err(_) => {
                self.refused.push("replace_body_file");
                false
            }
        }
    }

    fn body_length(&self) -> Option<u64> {
        self.body.as_ref().map(|b| b.len() as u64)
    }

    fn host_page(&self) -> Option<bool> {
        self.host_page
    }
}

/// One instance of case `T`, created through its descriptor as the server creates it, and
/// destroyed on drop.
pub struct TestCase<T: Case> {
    loaded: Loaded,
    case: PhantomData<T>,
}

impl<T: Case> TestCase<T> {
    /// Create the case with its settings as JSON text (the `[plugins.NAME]` table, `{}` for
    /// none), under the root `/nonexistent`. `Err` is the message the server would print when
    /// refusing to start.
    pub fn create(settings_json: &str) -> Result<Self, String> {
        Self::create_in(Path::new("/nonexistent"), settings_json)
    }

    /// (1.1) [`TestCase::create`] under this document root, which the case reads with
    /// `Host::root` to check paths in its settings.
    pub fn create_in(root: &Path, settings_json: &str) -> Result<Self, String> {
        Ok(TestCase {
            loaded: Loaded::create::<T>(root.as_os_str().as_bytes(), settings_json)?,
            case: PhantomData,
        })
    }

    /// The case's `test`.
    ///
    /// # Panics
    ///
    /// When the case's `test` panicked (the server answers that request 500), with the
    /// panic's note: a unit test fails there, or asserts it with `#[should_panic]`.
    pub fn test(&self, req: &TestRequest) -> bool {
        match req.with_parts(|parts| self.loaded.test(parts)) {
            0 => false,
            crate::abi::WP_TEST_FAULT => panic!(
                "the case's test panicked, so the server answers this request 500: {:?}",
                self.log().last().map(|l| &l.1)
            ),
            _ => true,
        }
    }

    /// The case's `act`, and what it answered.
    pub fn act(&self, req: &TestRequest) -> Recorded {
        let mut recording = Recording {
            rec: Recorded::new(),
            body: &req.body,
        };
        let code = req.with_parts(|parts| self.loaded.act(parts, &mut recording));
        recording.rec.outcome = match code {
            crate::abi::WP_DONE => Outcome::Done,
            crate::abi::WP_DECLINED => Outcome::Declined,
            crate::abi::WP_CONTINUE => Outcome::Continue,
            _ => Outcome::Error,
        };
        recording.rec
    }

    /// (1.1) The case's filter on `resp`: what it did to the head, and the body it ends up
    /// with (a replacement, or the body run through its transform in small windows).
    pub fn filter(&self, req: &TestRequest, resp: &TestResponse) -> FilterRecord {
        let mut head = FilterRecord {
            verdict: FilterVerdict::Pass,
            status: resp.status,
            headers: resp.headers.clone(),
            body: Some(resp.body.clone()),
            replaced_file: None,
            refused: Vec::new(),
            host_page: resp.host_page,
        };
        let (code, state) = req.with_parts(|parts| self.loaded.filter_head(parts, &mut head));
        head.verdict = match code {
            WP_PASS => FilterVerdict::Pass,
            WP_TRANSFORM => FilterVerdict::Transform,
            _ => FilterVerdict::Error,
        };
        if head.verdict == FilterVerdict::Transform {
            let body = head.body.take().unwrap_or_default();
            head.body = self.transform(state, &body);
        }
        head
    }

    /// Run `body` through a transform state in 100-byte pieces and 64-byte windows (so the
    /// `WP_BODY_MORE` path is used), then end it; `None` in the body means it failed.
    fn transform(&self, state: *mut std::ffi::c_void, body: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut window = [0u8; 64];
        let mut pieces: Vec<&[u8]> = body.chunks(100).collect();
        pieces.push(&[]);
        let last = pieces.len() - 1;
        let mut ok = true;
        for (i, mut piece) in pieces.into_iter().enumerate() {
            let flags = if i == last { WP_IO_END } else { 0 };
            loop {
                let (rc, used, made) = self.loaded.filter_body(state, piece, &mut window, flags);
                out.extend_from_slice(&window[..made]);
                piece = &piece[used..];
                match rc {
                    WP_BODY_OK if piece.is_empty() => break,
                    WP_BODY_OK | WP_BODY_MORE => continue,
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                break;
            }
        }
        self.loaded.filter_end(state, !ok);
        ok.then_some(out)
    }

    /// What the case logged through its `Host` so far.
    pub fn log(&self) -> Vec<(Level, String)> {
        let level = |l: u32| match l {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            _ => Level::Debug,
        };
        let lines = self.loaded.log().into_iter();
        lines.map(|(l, text)| (level(l), text)).collect()
    }
}

/// A fresh folder to serve as a document root, removed on drop. Its path is canonical, as
/// the server's root is.
pub struct TempRoot {
    path: PathBuf,
}

impl TempRoot {
    /// Create an empty folder under the system's temporary folder.
    pub fn new() -> TempRoot {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("case-test-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary root");
        let path = path
            .canonicalize()
            .expect("canonicalize the temporary root");
        TempRoot { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write a file at `rel` (parents created) and return its full path.
    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create the file's folder");
        }
        std::fs::write(&p, contents).expect("write the file");
        p
    }

    /// Create a folder at `rel` (parents too) and return its full path.
    pub fn dir(&self, rel: &str) -> PathBuf {
        let p = self.path.join(rel);
        std::fs::create_dir_all(&p).expect("create the folder");
        p
    }
}

impl Default for TempRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Host, Request, Response, Settings};

    /// A case that does whatever the request's path says, to exercise the kit itself.
    struct Echo {
        host: Host,
    }

    impl Case for Echo {
        const NAME: &'static std::ffi::CStr = c"echo";

        fn create(host: Host, settings: Settings) -> Result<Self, String> {
            if settings.json() != "{}" {
                return Err("no settings, please".into());
            }
            Ok(Echo { host })
        }

        fn test(&self, req: &Request) -> bool {
            if req.path() == "/panic" {
                panic!("on purpose");
            }
            req.path() != "/no"
        }

        fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
            match &*req.path() {
                "/decline" => Outcome::Declined,
                "/act-panic" => panic!("in act"),
                "/file" => resp.send_file(req.fs_path()).into(),
                "/error" => resp.error(410, "gone").into(),
                "/redirect" => resp.redirect("/elsewhere?x=1").into(),
                "/late-header" => {
                    let _ = resp.write(b"body");
                    resp.header("X-Late", "1").into()
                }
                "/log" => {
                    self.host.log(Level::Warn, "careful");
                    Outcome::Done
                }
                _ => self.echo(req, resp),
            }
        }
    }

    impl Echo {
        fn echo(&self, req: &Request, resp: &mut Response) -> Outcome {
            let mut body = vec![0; 64];
            let n = resp.read_body(&mut body).unwrap_or(0);
            let line = format!(
                "{} {} {} q={} kind={:?} from={}:{} accept={} body={}",
                req.method(),
                String::from_utf8_lossy(req.target()),
                req.fs_path().display(),
                String::from_utf8_lossy(req.query()),
                req.kind(),
                req.client_addr(),
                req.client_port(),
                String::from_utf8_lossy(req.header("accept").unwrap_or_default()),
                String::from_utf8_lossy(&body[..n]),
            );
            resp.status(201)
                .and_then(|_| resp.header("X-Echo", "yes"))
                .and_then(|_| resp.write(line.as_bytes()))
                .into()
        }
    }

    fn echo() -> TestCase<Echo> {
        TestCase::create("{}").unwrap()
    }

    #[test]
    fn create_reports_the_refusal_message() {
        let err = TestCase::<Echo>::create(r#"{"x": 1}"#).err();
        assert_eq!(err.as_deref(), Some("no settings, please"));
    }

    #[test]
    fn every_request_field_reaches_the_case() {
        let req = TestRequest::new("POST", "/a b")
            .query("x=1")
            .header("Accept", "text/plain")
            .body("hi")
            .root("/srv")
            .kind(Kind::File)
            .client("10.0.0.9", 5555);
        let r = echo().act(&req);
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(r.status, 201);
        assert_eq!(r.header("x-echo"), Some("yes"));
        assert_eq!(
            r.text(),
            "POST /a b?x=1 /srv/a b q=x=1 kind=File from=10.0.0.9:5555 accept=text/plain body=hi"
        );
    }

    #[test]
    fn the_kind_is_read_from_disk_unless_set() {
        let root = TempRoot::new();
        root.file("f.txt", "x");
        root.dir("d");
        let case = echo();
        let kind_of = |req: TestRequest| case.act(&req.root(root.path())).text();
        assert!(kind_of(TestRequest::get("/f.txt")).contains("kind=File"));
        assert!(kind_of(TestRequest::get("/d/")).contains("kind=Dir"));
        assert!(kind_of(TestRequest::get("/nope")).contains("kind=Missing"));
        assert!(kind_of(TestRequest::get("/nope").kind(Kind::Dir)).contains("kind=Dir"));
    }

    #[test]
    fn file_error_redirect_and_declined_are_recorded() {
        let case = echo();
        let file = case.act(&TestRequest::get("/file").fs_path("/srv/f.txt"));
        assert_eq!(file.sent_file.as_deref(), Some(Path::new("/srv/f.txt")));
        let error = case.act(&TestRequest::get("/error"));
        assert_eq!(error.error, Some((410, "gone".to_string())));
        let redirect = case.act(&TestRequest::get("/redirect"));
        assert_eq!(redirect.redirect.as_deref(), Some("/elsewhere?x=1"));
        let declined = case.act(&TestRequest::get("/decline"));
        assert_eq!(declined.outcome, Outcome::Declined);
    }

    #[test]
    fn a_header_after_the_body_is_refused_as_the_server_refuses_it() {
        let r = echo().act(&TestRequest::get("/late-header"));
        assert_eq!(r.outcome, Outcome::Error);
        assert_eq!(r.refused, ["add_header"]);
        assert_eq!(r.header("x-late"), None);
    }

    #[test]
    fn a_panic_costs_its_one_request_and_the_case_goes_on() {
        let case = echo();
        assert!(case.test(&TestRequest::get("/ok")));
        let fault = std::panic::catch_unwind(|| case.test(&TestRequest::get("/panic")));
        assert!(fault.is_err(), "a panicking test is not a plain false");
        assert!(
            case.test(&TestRequest::get("/ok")),
            "the case still answers"
        );
        let line = &case.log()[0].1;
        assert!(
            line.contains("panicked in test: \"on purpose\" at "),
            "{line}"
        );
        assert!(line.contains("that request got a 500"), "{line}");
        assert_eq!(
            case.act(&TestRequest::get("/act-panic")).outcome,
            Outcome::Error
        );
        assert_eq!(case.act(&TestRequest::get("/ok")).outcome, Outcome::Done);
        assert!(
            case.log()[1].1.contains("panicked in act: \"in act\""),
            "{:?}",
            case.log()
        );
    }

    #[test]
    fn host_log_lines_are_kept() {
        let case = echo();
        case.act(&TestRequest::get("/log"));
        assert_eq!(case.log(), [(Level::Warn, "careful".to_string())]);
    }
}
