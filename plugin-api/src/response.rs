//! Safe wrapper over the host's `wp_response` callbacks for Rust plugins.

use crate::abi::WpResponse;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The host refused a response call (header after the body started, bad bytes, file outside
/// the root, client gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the host refused the response call")
    }
}

impl std::error::Error for Refused {}

/// The response under construction; every call goes straight to the host.
pub struct Response<'a> {
    raw: &'a WpResponse,
}

fn check(rc: i32) -> Result<(), Refused> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Refused)
    }
}

impl<'a> Response<'a> {
    /// Wrap the host's callbacks (only the export layer does, with what the host lends).
    pub(crate) fn new(raw: &'a WpResponse) -> Self {
        Response { raw }
    }
    /// Set the status code (200..=599; default 200).
    pub fn status(&mut self, code: u16) -> Result<(), Refused> {
        check((self.raw.set_status)(self.raw.ctx, code))
    }
    /// Add a header.
    pub fn header(&mut self, name: &str, value: &str) -> Result<(), Refused> {
        self.header_bytes(name.as_bytes(), value.as_bytes())
    }
    /// Add a header given as bytes.
    pub fn header_bytes(&mut self, name: &[u8], value: &[u8]) -> Result<(), Refused> {
        check((self.raw.add_header)(
            self.raw.ctx,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        ))
    }
    /// Append body bytes (copied by the host).
    pub fn write(&mut self, data: &[u8]) -> Result<(), Refused> {
        check((self.raw.write)(self.raw.ctx, data.as_ptr(), data.len()))
    }
    /// Send what was written so far to the client now (the host may otherwise hold up to
    /// 64 KiB to answer with a Content-Length).
    pub fn flush(&mut self) -> Result<(), Refused> {
        check((self.raw.write)(self.raw.ctx, std::ptr::null(), 0))
    }
    /// Send a file as the whole body; the host handles type, validators, Range and sendfile.
    pub fn send_file(&mut self, path: &Path) -> Result<(), Refused> {
        let b = path.as_os_str().as_bytes();
        check((self.raw.send_file)(self.raw.ctx, b.as_ptr(), b.len()))
    }
    /// Answer with the host's error page for `status`, showing `message`.
    pub fn error(&mut self, status: u16, message: &str) -> Result<(), Refused> {
        check((self.raw.send_error)(
            self.raw.ctx,
            status,
            message.as_ptr(),
            message.len(),
        ))
    }
    /// Answer as if the client had requested `target` (a local `/path?query`) with GET.
    pub fn redirect(&mut self, target: &str) -> Result<(), Refused> {
        check((self.raw.redirect)(
            self.raw.ctx,
            target.as_ptr(),
            target.len(),
        ))
    }
    /// Read request body bytes; `Ok(0)` at the end.
    pub fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, Refused> {
        let n = (self.raw.read_body)(self.raw.ctx, buf.as_mut_ptr(), buf.len());
        usize::try_from(n).map_err(|_| Refused)
    }
    /// (ABI 1.1) Go on with a changed request: `target` is `/path` or `/path?query`. The host
    /// decodes, confines and looks it up again; method, headers and body stay. Return
    /// [`crate::Outcome::Continue`] afterwards.
    pub fn rewrite(&mut self, target: &str) -> Result<(), Refused> {
        if self.raw.struct_size < crate::abi::RESPONSE_SIZE_1_1 {
            return Err(Refused);
        }
        check((self.raw.rewrite)(
            self.raw.ctx,
            target.as_ptr(),
            target.len(),
        ))
    }
    /// (ABI 1.1) Attach a variable (`REMOTE_USER`, ...) that later cases and CGI scripts see.
    pub fn set_var(&mut self, name: &str, value: &str) -> Result<(), Refused> {
        if self.raw.struct_size < crate::abi::RESPONSE_SIZE_1_1 {
            return Err(Refused);
        }
        check((self.raw.set_var)(
            self.raw.ctx,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        ))
    }
}
