//! Safe, borrowed view of a `wp_request` for Rust plugins.

use crate::abi::{Field, WP_KIND_DIR, WP_KIND_FILE, WP_KIND_MISSING};
use crate::export::RawRequest;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What the request path is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Nothing there.
    Missing,
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Something else (fifo, socket, device).
    Other,
}

/// The request, borrowed for one `test` or `act` call. Only the export layer makes one, from
/// what the host lends (or `crate::testing` builds).
pub struct Request<'a> {
    raw: RawRequest<'a>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(raw: RawRequest<'a>) -> Self {
        Request { raw }
    }

    fn bytes(&self, f: Field) -> &'a [u8] {
        self.raw.bytes(f)
    }

    fn text(&self, f: Field) -> &'a str {
        crate::export::utf8_text(self.bytes(f)).unwrap_or("")
    }

    /// The method token (`GET`).
    pub fn method(&self) -> &str {
        self.text(Field::Method)
    }
    /// The request-target exactly as sent.
    pub fn target(&self) -> &[u8] {
        self.bytes(Field::Target)
    }
    /// The decoded, normalised path as bytes (may not be UTF-8).
    pub fn path_bytes(&self) -> &[u8] {
        self.bytes(Field::Path)
    }
    /// The decoded path when it is UTF-8, else its lossy form.
    pub fn path(&self) -> std::borrow::Cow<'_, str> {
        crate::helpers::lossy(self.path_bytes())
    }
    /// The raw query string (without `?`).
    pub fn query(&self) -> &[u8] {
        self.bytes(Field::Query)
    }
    /// `HTTP/1.1`, `HTTP/1.0`, or `HTTP/2.0` over HTTP/2.
    pub fn version(&self) -> &str {
        self.text(Field::Version)
    }
    /// All headers in arrival order, as (name, value) byte strings.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.raw.headers()
    }
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
    /// A list field (`Accept-Encoding`, `Accept`, `Cache-Control`...) as one value: every
    /// line with this name (case-insensitive), in order, joined by ", ", as RFC 9110 §5.3
    /// combines them; `None` without one. A client may split a list over several lines,
    /// and reading only the first would miss, say, a `br;q=0` on the second.
    pub fn header_list(&self, name: &str) -> Option<std::borrow::Cow<'a, [u8]>> {
        let mut lines = self
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v);
        let first = lines.next()?;
        let Some(second) = lines.next() else {
            return Some(std::borrow::Cow::Borrowed(first));
        };
        let mut all = [first, b", ", second].concat();
        for more in lines {
            all.extend_from_slice(b", ");
            all.extend_from_slice(more);
        }
        Some(std::borrow::Cow::Owned(all))
    }
    /// Client address, textual.
    pub fn client_addr(&self) -> &str {
        self.text(Field::ClientAddr)
    }
    /// Client port.
    pub fn client_port(&self) -> u16 {
        self.raw.plain().client_port
    }
    /// The local address the request arrived on.
    pub fn server_addr(&self) -> &str {
        self.text(Field::ServerAddr)
    }
    /// The local port.
    pub fn server_port(&self) -> u16 {
        self.raw.plain().server_port
    }
    /// The document root.
    pub fn root(&self) -> &Path {
        Path::new(OsStr::from_bytes(self.bytes(Field::Root)))
    }
    /// The request path on disk, already confined to the root by the host.
    pub fn fs_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(self.bytes(Field::FsPath)))
    }
    /// What `fs_path` is.
    pub fn kind(&self) -> Kind {
        match self.raw.plain().fs_kind {
            WP_KIND_MISSING => Kind::Missing,
            WP_KIND_FILE => Kind::File,
            WP_KIND_DIR => Kind::Dir,
            _ => Kind::Other,
        }
    }
    /// Length of the request body, already received by the host.
    pub fn body_len(&self) -> u64 {
        self.raw.plain().body_len
    }
    /// (ABI 1.1) Variables earlier cases attached (`REMOTE_USER`, ...), in order.
    pub fn vars(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.raw.vars()
    }
    /// (ABI 1.1) One variable by its exact name.
    pub fn var(&self, name: &str) -> Option<&'a [u8]> {
        self.vars()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }
}
