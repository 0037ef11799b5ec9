//! (ABI 1.1) The safe side of response filters: the [`Head`] a filter edits, what it decides
//! ([`Filtered`]), and the [`Transform`] a body goes through.

use crate::abi::{WpHead, WpStr, WP_HEAD_HOST_PAGE, WP_HEAD_ORIGIN_KNOWN};
use crate::export::head_ref;
use crate::Refused;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What a filter decided about one response.
pub enum Filtered {
    /// Done with this response (its head may have been edited).
    Pass,
    /// Send the body through this transform, piece by piece. The host drops the length,
    /// turns Range off and weakens a strong ETag.
    Transform(Box<dyn Transform>),
    /// Something failed: the host answers 500 instead.
    Error,
}

/// A body transform (compression, for example). The host feeds it the bytes it would have
/// sent, in order, and sends what comes out.
pub trait Transform: Send {
    /// Transform `input`, appending what is ready to `out`.
    fn transform(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String>;
    /// The source paused: append what is held back, so the client gets it now.
    fn flush(&mut self, _out: &mut Vec<u8>) -> Result<(), String> {
        Ok(())
    }
    /// The body ended: append the rest (a trailer, a checksum).
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String>;
}

/// A response head under a filter's hands. Framing headers (Content-Length,
/// Transfer-Encoding, Connection, Date, Content-Range, Accept-Ranges...) are the host's:
/// editing them is refused.
pub struct Head<'a> {
    raw: &'a WpHead,
}

fn check(rc: i32) -> Result<(), Refused> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Refused)
    }
}

impl<'a> Head<'a> {
    /// Wrap the host's head table (only the export layer does, with what the host lends).
    pub(crate) fn new(raw: &'a WpHead) -> Self {
        Head { raw }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        (self.raw.status)(self.raw.ctx)
    }
    /// Change the status (200..=599, not 206 or 304). Unless the body is replaced too, the
    /// host sends its own page for the new status.
    pub fn set_status(&mut self, status: u16) -> Result<(), Refused> {
        check((self.raw.set_status)(self.raw.ctx, status))
    }
    /// The first value of a header (case-insensitive), copied.
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.header_ref(name).map(<[u8]>::to_vec)
    }
    /// The first value of a header (case-insensitive), borrowed until the head's next edit
    /// (the borrow of `self` sees to that): no copy, for a filter that reads a header of
    /// every answer.
    pub fn header_ref(&self, name: &str) -> Option<&[u8]> {
        head_ref(self, |out| {
            (self.raw.get_header)(self.raw.ctx, name.as_ptr(), name.len(), out)
        })
    }
    /// Whether the response has a header of this name (case-insensitive), without copying
    /// its value: cheaper than `header(name).is_some()` in a filter that runs for every
    /// answer.
    pub fn has(&self, name: &str) -> bool {
        let mut out = WpStr {
            ptr: std::ptr::null(),
            len: 0,
        };
        (self.raw.get_header)(self.raw.ctx, name.as_ptr(), name.len(), &mut out) == 0
    }
    /// Every header, in order, copied.
    pub fn headers(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let n = (self.raw.header_count)(self.raw.ctx);
        (0..n)
            .filter_map(|i| crate::export::head_pair(self.raw, i))
            .collect()
    }
    /// Replace every header of this name by one with `value`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Refused> {
        check((self.raw.set_header)(
            self.raw.ctx,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        ))
    }
    /// Add a header, keeping others of the same name.
    pub fn append(&mut self, name: &str, value: &str) -> Result<(), Refused> {
        check((self.raw.append_header)(
            self.raw.ctx,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        ))
    }
    /// Remove every header of this name.
    pub fn remove(&mut self, name: &str) -> Result<(), Refused> {
        check((self.raw.remove_header)(
            self.raw.ctx,
            name.as_ptr(),
            name.len(),
        ))
    }
    /// Add a token to `Vary` (merged). Call it whenever the decision read a request header,
    /// also when the filter then passes, so caches keep the variants apart.
    pub fn vary(&mut self, token: &str) -> Result<(), Refused> {
        check((self.raw.vary_add)(
            self.raw.ctx,
            token.as_ptr(),
            token.len(),
        ))
    }
    /// Replace the body with these bytes.
    pub fn replace_body(&mut self, data: &[u8]) -> Result<(), Refused> {
        check((self.raw.replace_body_bytes)(
            self.raw.ctx,
            data.as_ptr(),
            data.len(),
        ))
    }
    /// Replace the body with a file beneath the root; the host opens it now, and types and
    /// sends it. `Err` (nothing replaced) for a path elsewhere or a file it cannot open.
    pub fn replace_body_file(&mut self, path: &Path) -> Result<(), Refused> {
        let b = path.as_os_str().as_bytes();
        check((self.raw.replace_body_file)(
            self.raw.ctx,
            b.as_ptr(),
            b.len(),
        ))
    }
    /// Is the body the host's own page for the status (a refusal of the host's, or a case's
    /// `error`), rather than one a case or a script wrote? `None` from hosts that do not
    /// say. An error-page filter replaces only the host's pages by default, as nginx leaves
    /// a backend's own error pages alone unless `*_intercept_errors` is on.
    pub fn host_page(&self) -> Option<bool> {
        let flags = self.raw.flags;
        (flags & WP_HEAD_ORIGIN_KNOWN != 0).then_some(flags & WP_HEAD_HOST_PAGE != 0)
    }
    /// The body's length, when known (`None` for a stream).
    pub fn body_length(&self) -> Option<u64> {
        u64::try_from((self.raw.body_length)(self.raw.ctx)).ok()
    }
}
