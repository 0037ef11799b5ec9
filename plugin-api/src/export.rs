//! The unsafe edge of plugin-api: the `extern "C"` shims behind `export_case!` (null checks,
//! `catch_unwind`, the panic's note), the views of what the host lends, and the in-process host
//! that `crate::testing` drives.
//!
//! This module and the server's plugin loader are the only places with `unsafe` code. No
//! safe public function here reads through a pointer a caller could forge: the views are
//! crate-private with `unsafe` constructors, and the shims are reachable only through the
//! descriptor's raw pointer.
#![allow(unsafe_code)]

use crate::abi::*;
use crate::{Case, Filtered, Head, Outcome, Request, Response, Settings, Transform};
use std::ffi::{c_char, c_void, CStr};
use std::sync::{Arc, Mutex, RwLock};

/// Export a [`Case`] type as this library's `wp_plugin_v1` entry symbol.
#[macro_export]
macro_rules! export_case {
    ($ty:ty) => {
        #[no_mangle]
        #[allow(unsafe_code)]
        pub extern "C" fn wp_plugin_v1() -> *const $crate::abi::WpPluginDesc {
            static DESC: $crate::export::Descriptor = $crate::export::Descriptor::of::<$ty>();
            DESC.as_ptr()
        }
    };
}

/// Services the host lends the plugin (logging), valid while the instance lives. Cheap to
/// clone; a clone kept past the instance (in a thread, a static) logs nothing, because the
/// host frees its table once `destroy` has run.
#[derive(Clone)]
pub struct Host {
    cell: Arc<HostCell>,
    root: Option<Arc<std::path::Path>>,
    minor: u32,
}

/// The host's table, until the instance it was lent to is destroyed.
struct HostCell {
    raw: RwLock<*const WpHost>,
}

// SAFETY: the table behind the pointer is immutable and the host's `log` is thread-safe; the
// pointer is read only under the lock that `revoke` takes before the host frees the table.
unsafe impl Send for HostCell {}
unsafe impl Sync for HostCell {}

impl Host {
    fn new(raw: *const WpHost) -> Host {
        Host {
            cell: Arc::new(HostCell {
                raw: RwLock::new(raw),
            }),
            root: host_root(raw),
            // SAFETY: a non-NULL table is valid for the `create` call this runs in, and
            // `abi_minor` is in every 1.x table's frozen prefix.
            minor: if raw.is_null() {
                0
            } else {
                unsafe { (*raw).abi_minor }
            },
        }
    }

    /// The host's ABI minor: what it understands beyond the plugin's own declared minor.
    pub(crate) fn abi_minor(&self) -> u32 {
        self.minor
    }

    /// (ABI 1.1) The document root, canonical: check paths in the settings against it in
    /// `create`. `None` from a 1.0 host.
    pub fn root(&self) -> Option<&std::path::Path> {
        self.root.as_deref()
    }

    /// Write one line to the server log, tagged with this plugin's name.
    pub fn log(&self, level: crate::Level, msg: &str) {
        let raw = self.cell.raw.read().unwrap_or_else(|e| e.into_inner());
        if raw.is_null() {
            return;
        }
        // SAFETY: a non-NULL pointer is the table the host passed to `create`, which it frees
        // only after `destroy` returns; `destroy` revokes it (under the write lock) first.
        let h = unsafe { &**raw };
        (h.log)(*raw, level as u32, msg.as_ptr(), msg.len());
    }

    /// (ABI 1.1) The host's counters as JSON text; `None` from a 1.0 host.
    pub fn stats(&self) -> Option<String> {
        let raw = self.cell.raw.read().unwrap_or_else(|e| e.into_inner());
        if raw.is_null() {
            return None;
        }
        // SAFETY: as in `log`: the table is live while the pointer is not revoked.
        let h = unsafe { &**raw };
        if h.struct_size < HOST_SIZE_1_1 {
            return None;
        }
        let stats = h.stats?;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = stats(*raw, buf.as_mut_ptr(), buf.len());
            if n <= buf.len() {
                buf.truncate(n);
                return String::from_utf8(buf).ok();
            }
            buf.resize(n, 0);
        }
    }

    /// Forget the table: every clone logs nothing from now on.
    fn revoke(&self) {
        *self.cell.raw.write().unwrap_or_else(|e| e.into_inner()) = std::ptr::null();
    }
}

/// The root a 1.1 host lends in its table, copied.
fn host_root(raw: *const WpHost) -> Option<Arc<std::path::Path>> {
    use std::os::unix::ffi::OsStrExt;
    if raw.is_null() {
        return None;
    }
    // SAFETY: the host passes a table valid for the `create` call this runs in; fields past
    // `struct_size` are not read, and `root` holds `len` readable bytes when present.
    let bytes = unsafe {
        let h = &*raw;
        if h.struct_size < HOST_SIZE_1_1 {
            return None;
        }
        str_bytes(&h.root)
    };
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(bytes));
    Some(Arc::from(path))
}

/// A descriptor that can live in a `static` (it holds only pointers to static data).
pub struct Descriptor(WpPluginDesc);

// SAFETY: every pointer in the descriptor points at immutable `'static` data or code.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// The descriptor for case type `T`. It declares ABI minor 1 only when `T` uses a 1.1
    /// role (rewrites, filters, filter-only), so a 1.0-style case still loads on a 1.0 host.
    pub const fn of<T: Case>() -> Self {
        let flags = WP_THREAD_SAFE | WP_TEST_FAULTS | if T::MAY_BLOCK { WP_MAY_BLOCK } else { 0 };
        let roles = roles::<T>();
        let uses_1_1 = T::REWRITES || T::FILTERS || !T::ACTS;
        Descriptor(WpPluginDesc {
            abi_major: ABI_MAJOR,
            abi_minor: if uses_1_1 { 1 } else { 0 },
            struct_size: std::mem::size_of::<WpPluginDesc>() as u32,
            flags,
            name: T::NAME.as_ptr(),
            plugin_version: T::VERSION.as_ptr(),
            allow: T::ALLOW.as_ptr(),
            create: Some(create::<T>),
            destroy: Some(destroy::<T>),
            test: if T::ACTS { Some(test::<T>) } else { None },
            act: if T::ACTS { Some(act::<T>) } else { None },
            roles,
            filter_flags: if T::CONTENT_CODING {
                WP_F_CONTENT_CODING
            } else {
                0
            },
            filter_head: if T::FILTERS {
                Some(filter_head::<T>)
            } else {
                None
            },
            filter_body: if T::FILTERS && T::TRANSFORMS {
                Some(filter_body::<T>)
            } else {
                None
            },
            filter_end: if T::FILTERS && T::TRANSFORMS {
                Some(filter_end)
            } else {
                None
            },
        })
    }

    /// Pointer handed to the host.
    pub fn as_ptr(&'static self) -> *const WpPluginDesc {
        &self.0
    }
}

/// The `WP_ROLE_*` bits of case type `T`.
const fn roles<T: Case>() -> u32 {
    let mut r = 0;
    if T::ACTS {
        r |= WP_ROLE_CASE;
    }
    if T::REWRITES {
        r |= WP_ROLE_REWRITE;
    }
    if T::FILTERS {
        r |= WP_ROLE_FILTER;
    }
    if T::FILTERS && T::TRANSFORMS {
        r |= WP_ROLE_TRANSFORM;
    }
    r
}

struct Instance<T> {
    case: T,
    /// The host takes `WP_TEST_FAULT` (ABI 1.2 on): a panicking test fails its request.
    test_faults: bool,
}

/// A panic costs the one call it happened in, never the instance: the next request calls
/// the case again, so a check that panics on one request (an empty key) still refuses
/// the others, where skipping it from then on would let every request past it.
fn panicked(host: &Host, what: &str, note: String, cost: &str) {
    host.log(
        crate::Level::Error,
        &format!("panicked in {what}: {note}; {cost}"),
    );
}

struct Boxed<T> {
    inst: Instance<T>,
    host: Host,
}

// ---------------------------------------------------------------------------------------
// Borrowed views of what the host lends for one call.

/// A `wp_request` whose strings and headers were promised readable for `'a`. Its only
/// constructor is `unsafe`, so safe code cannot aim it at forged pointers.
#[derive(Clone, Copy)]
pub(crate) struct RawRequest<'a>(&'a WpRequest);

impl<'a> RawRequest<'a> {
    /// # Safety
    /// Every `WpStr` in `raw` must be NULL or point at `len` readable bytes, and `headers`
    /// must be NULL or point at `header_count` such headers, all unchanged for `'a`.
    pub(crate) unsafe fn new(raw: &'a WpRequest) -> Self {
        RawRequest(raw)
    }

    /// The plain (non-pointer) fields.
    pub(crate) fn plain(&self) -> &'a WpRequest {
        self.0
    }

    /// One string field, as bytes.
    pub(crate) fn bytes(&self, f: Field) -> &'a [u8] {
        let r = self.0;
        let s = match f {
            Field::Method => &r.method,
            Field::Target => &r.target,
            Field::Path => &r.path,
            Field::Query => &r.query,
            Field::Version => &r.version,
            Field::ClientAddr => &r.client_addr,
            Field::ServerAddr => &r.server_addr,
            Field::Root => &r.root,
            Field::FsPath => &r.fs_path,
        };
        // SAFETY: `new`'s contract covers every string of the request.
        unsafe { str_bytes(s) }
    }

    /// The headers in arrival order, as (name, value).
    pub(crate) fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        // SAFETY: `new`'s contract: `header_count` headers at `headers`, valid for 'a.
        unsafe { pairs(self.0.headers, self.0.header_count) }
    }

    /// (1.1) The variables earlier cases set, as (name, value); none from a 1.0 host.
    pub(crate) fn vars(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let r = self.0;
        let n = if r.struct_size >= REQUEST_SIZE_1_1 {
            r.var_count
        } else {
            0
        };
        // SAFETY: a 1.1 request's `vars` is covered by `new`'s contract like `headers`.
        unsafe { pairs(if n == 0 { std::ptr::null() } else { r.vars }, n) }
    }
}

/// A lent array of name/value pairs, as byte strings.
///
/// # Safety
/// `list` must be NULL or point at `n` `WpHeader`s whose strings are readable, all for `'a`.
unsafe fn pairs<'a>(list: *const WpHeader, n: usize) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    let list: &'a [WpHeader] = if list.is_null() || n == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(list, n)
    };
    // SAFETY: the caller's contract covers the pairs' strings.
    list.iter()
        .map(|h| unsafe { (str_bytes(&h.name), str_bytes(&h.value)) })
}

/// Borrow a `WpStr` as bytes.
///
/// # Safety
/// `s.ptr` must be NULL or point at `s.len` bytes readable for `'a`.
unsafe fn str_bytes<'a>(s: &WpStr) -> &'a [u8] {
    if s.ptr.is_null() || s.len == 0 {
        return &[];
    }
    std::slice::from_raw_parts(s.ptr, s.len)
}

// ---------------------------------------------------------------------------------------
// The entry points behind the descriptor.

extern "C" fn create<T: Case>(
    host: *const WpHost,
    cfg: *const u8,
    cfg_len: usize,
    err: *const WpErrorSink,
) -> *mut c_void {
    let report = |msg: &str| {
        if !err.is_null() {
            // SAFETY: the sink is host-owned and valid for this call.
            let e = unsafe { &*err };
            (e.set)(e.ctx, msg.as_ptr(), msg.len());
        }
    };
    crate::panic_note::install();
    let host = Host::new(host);
    let result = crate::panic_note::guard(|| {
        let bytes = if cfg.is_null() {
            &b"{}"[..]
        } else {
            // SAFETY: the host passes `cfg_len` bytes of JSON, valid for this call.
            unsafe { std::slice::from_raw_parts(cfg, cfg_len) }
        };
        let json = std::str::from_utf8(bytes).map_err(|_| "settings are not UTF-8".to_string())?;
        T::create(host.clone(), Settings::new(json)).map(|case| Boxed {
            inst: Instance {
                case,
                test_faults: host.abi_minor() >= 2,
            },
            host: host.clone(),
        })
    });
    match result {
        Ok(Ok(b)) => Box::into_raw(Box::new(b)) as *mut c_void,
        Ok(Err(msg)) => {
            host.revoke();
            report(&msg);
            std::ptr::null_mut()
        }
        Err(note) => {
            host.revoke();
            report(&format!(
                "the plugin panicked while reading its settings: {note}"
            ));
            std::ptr::null_mut()
        }
    }
}

extern "C" fn destroy<T: Case>(inst: *mut c_void) {
    if inst.is_null() {
        return;
    }
    // SAFETY: `inst` came from `create::<T>` and the host destroys it once.
    let b = unsafe { Box::from_raw(inst as *mut Boxed<T>) };
    let host = b.host.clone();
    let _ = crate::panic_note::guard(move || drop(b));
    // The host frees its table when this returns; clones the case kept must not reach it.
    host.revoke();
}

fn instance<'a, T>(inst: *mut c_void) -> Option<&'a Boxed<T>> {
    if inst.is_null() {
        None
    } else {
        // SAFETY: `inst` came from `create::<T>` and lives until `destroy`.
        Some(unsafe { &*(inst as *const Boxed<T>) })
    }
}

extern "C" fn test<T: Case>(inst: *mut c_void, req: *const WpRequest) -> u8 {
    let Some(b) = instance::<T>(inst) else {
        return 0;
    };
    if req.is_null() {
        return 0;
    }
    // SAFETY: the host lends a valid request for the duration of the call.
    let req = Request::new(unsafe { RawRequest::new(&*req) });
    match crate::panic_note::guard(|| b.inst.case.test(&req)) {
        Ok(yes) => yes as u8,
        Err(note) if b.inst.test_faults => {
            panicked(&b.host, "test", note, "that request got a 500");
            WP_TEST_FAULT
        }
        Err(note) => {
            panicked(
                &b.host,
                "test",
                note,
                "that request went on to the next case",
            );
            0
        }
    }
}

extern "C" fn act<T: Case>(
    inst: *mut c_void,
    req: *const WpRequest,
    resp: *const WpResponse,
) -> i32 {
    let Some(b) = instance::<T>(inst) else {
        return WP_ERROR;
    };
    if req.is_null() || resp.is_null() {
        return WP_ERROR;
    }
    // SAFETY: the host lends both, valid, for the duration of the call.
    let (req, resp) = unsafe { (Request::new(RawRequest::new(&*req)), &*resp) };
    let mut resp = Response::new(resp);
    match crate::panic_note::guard(|| b.inst.case.act(&req, &mut resp)) {
        Ok(Outcome::Done) => WP_DONE,
        Ok(Outcome::Declined) => WP_DECLINED,
        Ok(Outcome::Error) => WP_ERROR,
        Ok(Outcome::Continue) if T::REWRITES => WP_CONTINUE,
        Ok(Outcome::Continue) => {
            b.host.log(
                crate::Level::Error,
                "act returned Continue, but the case does not declare REWRITES",
            );
            WP_ERROR
        }
        Err(note) => {
            panicked(&b.host, "act", note, "that request got a 500");
            WP_ERROR
        }
    }
}

// ---------------------------------------------------------------------------------------
// (1.1) Filters.

extern "C" fn filter_head<T: Case>(
    inst: *mut c_void,
    req: *const WpRequest,
    head: *const WpHead,
    state: *mut *mut c_void,
) -> i32 {
    let Some(b) = instance::<T>(inst) else {
        return WP_FILTER_ERROR;
    };
    if req.is_null() || head.is_null() || state.is_null() {
        return WP_FILTER_ERROR;
    }
    // SAFETY: the host lends the request and head, valid, for the duration of the call.
    let (req, head) = unsafe { (Request::new(RawRequest::new(&*req)), &*head) };
    let mut head = Head::new(head);
    match crate::panic_note::guard(|| b.inst.case.filter(&req, &mut head)) {
        Ok(Filtered::Pass) => WP_PASS,
        Ok(Filtered::Error) => WP_FILTER_ERROR,
        Ok(Filtered::Transform(_)) if !T::TRANSFORMS => {
            b.host.log(
                crate::Level::Error,
                "filter returned Transform, but the case does not declare TRANSFORMS",
            );
            WP_FILTER_ERROR
        }
        Ok(Filtered::Transform(t)) => {
            let stream = Box::new(BodyStream::new(t));
            // SAFETY: `state` is the host's out-parameter for this call, checked non-NULL.
            unsafe { *state = Box::into_raw(stream) as *mut c_void };
            WP_TRANSFORM
        }
        Err(note) => {
            panicked(&b.host, "filter", note, "that answer became a 500");
            WP_FILTER_ERROR
        }
    }
}

extern "C" fn filter_body<T: Case>(
    inst: *mut c_void,
    state: *mut c_void,
    io: *mut WpBodyIo,
) -> i32 {
    let Some(b) = instance::<T>(inst) else {
        return WP_BODY_ERROR;
    };
    if state.is_null() || io.is_null() {
        return WP_BODY_ERROR;
    }
    // SAFETY: `state` came from `filter_head` (a boxed BodyStream) and lives until
    // `filter_end`; the host calls one response's body calls one at a time. `io` and its
    // windows are lent for this call.
    let (stream, io) = unsafe { (&mut *(state as *mut BodyStream), &mut *io) };
    let input = if io.input.is_null() || io.in_len == 0 {
        &[][..]
    } else {
        // SAFETY: the host lends `in_len` readable bytes at `input` for this call.
        unsafe { std::slice::from_raw_parts(io.input, io.in_len) }
    };
    let out = if io.out.is_null() || io.out_cap == 0 {
        &mut [][..]
    } else {
        // SAFETY: the host lends `out_cap` writable bytes at `out` for this call.
        unsafe { std::slice::from_raw_parts_mut(io.out, io.out_cap) }
    };
    match crate::panic_note::guard(|| stream.step(input, out, io.flags)) {
        Ok(Ok((rc, used, made))) => {
            io.in_used = used;
            io.out_len = made;
            rc
        }
        Ok(Err(why)) => {
            b.host
                .log(crate::Level::Error, &format!("transform failed: {why}"));
            WP_BODY_ERROR
        }
        Err(note) => {
            panicked(
                &b.host,
                "a body transform",
                note,
                "that answer was cut short",
            );
            WP_BODY_ERROR
        }
    }
}

extern "C" fn filter_end(_inst: *mut c_void, state: *mut c_void, _aborted: u8) {
    if state.is_null() {
        return;
    }
    // SAFETY: `state` came from `filter_head` as a boxed BodyStream; the host ends it once.
    let stream = unsafe { Box::from_raw(state as *mut BodyStream) };
    let _ = crate::panic_note::guard(move || drop(stream));
}

/// A transform between the host's windows: what it produced but the window could not take
/// waits in `pending`.
pub(crate) struct BodyStream {
    t: Box<dyn Transform>,
    pending: Vec<u8>,
    pos: usize,
    finished: bool,
}

impl BodyStream {
    pub(crate) fn new(t: Box<dyn Transform>) -> BodyStream {
        BodyStream {
            t,
            pending: Vec::new(),
            pos: 0,
            finished: false,
        }
    }

    /// One `filter_body` call: drain what waits, take the input, flush or finish as the
    /// flags say; `WP_BODY_MORE` while output is left over.
    pub(crate) fn step(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        flags: u32,
    ) -> Result<(i32, usize, usize), String> {
        let (mut used, mut made, mut flushed) = (0, 0, false);
        loop {
            let n = (self.pending.len() - self.pos).min(out.len() - made);
            out[made..made + n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            (made, self.pos) = (made + n, self.pos + n);
            if self.pos < self.pending.len() {
                return Ok((WP_BODY_MORE, used, made));
            }
            self.pending.clear();
            self.pos = 0;
            if used < input.len() {
                self.t.transform(&input[used..], &mut self.pending)?;
                used = input.len();
            } else if flags & WP_IO_END != 0 && !self.finished {
                self.t.finish(&mut self.pending)?;
                self.finished = true;
            } else if flags & WP_IO_FLUSH != 0 && !flushed {
                self.t.flush(&mut self.pending)?;
                flushed = true;
            } else {
                return Ok((WP_BODY_OK, used, made));
            }
        }
    }
}

/// (1.1) Call a plugin's `filter_body` with `input` and `out` lent as its windows: (result,
/// input used, output made), both clamped to the windows (for hosts and `crate::testing`).
pub fn call_filter_body(
    fb: WpFilterBodyFn,
    inst: *mut c_void,
    state: *mut c_void,
    (input, out, flags): (&[u8], &mut [u8], u32),
) -> (i32, usize, usize) {
    let mut io = WpBodyIo {
        input: input.as_ptr(),
        in_len: input.len(),
        in_used: 0,
        out: out.as_mut_ptr(),
        out_cap: out.len(),
        out_len: 0,
        flags,
        reserved: 0,
    };
    let rc = fb(inst, state, &mut io);
    (rc, io.in_used.min(input.len()), io.out_len.min(out.len()))
}

/// A string the host lends from `head`'s table, borrowed for as long as `head` is: the
/// table is only edited through `&mut Head`, so it stays valid while the borrow lasts.
pub(crate) fn head_ref<'h>(
    _head: &'h Head<'_>,
    f: impl FnOnce(*mut WpStr) -> i32,
) -> Option<&'h [u8]> {
    let mut s = WpStr {
        ptr: std::ptr::null(),
        len: 0,
    };
    if f(&mut s) != 0 {
        return None;
    }
    // SAFETY: the host fills `s` with a string valid until the head's next edit, which
    // needs `&mut Head` and so waits for the end of `'h`.
    Some(unsafe { str_bytes(&s) })
}

/// Header `i` of a head table, copied.
pub(crate) fn head_pair(raw: &WpHead, i: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut n = WpStr {
        ptr: std::ptr::null(),
        len: 0,
    };
    let mut v = n;
    if (raw.header_at)(raw.ctx, i, &mut n, &mut v) != 0 {
        return None;
    }
    // SAFETY: as in `head_ref`: valid until the next edit, copied at once.
    Some(unsafe { (str_bytes(&n).to_vec(), str_bytes(&v).to_vec()) })
}

/// Read a NUL-terminated string from a descriptor (for hosts and tests).
///
/// # Safety
/// `p` must be NULL or point at a NUL-terminated string that outlives `'a`.
pub unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a CStr> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p))
    }
}

// ---------------------------------------------------------------------------------------
// An in-process host for `crate::testing`: it calls a case through its descriptor, exactly
// as the server does, with a request and a response built here.

/// The host's side of a `wp_response`: it receives a case's response calls (`false` or a
/// negative count: refused). The server and `crate::testing` implement it, and
/// [`lend_response`] turns it into the C table a case calls.
pub trait ResponseSink {
    /// `set_status`.
    fn set_status(&mut self, status: u16) -> bool;
    /// `add_header`.
    fn add_header(&mut self, name: &[u8], value: &[u8]) -> bool;
    /// `write`; empty `data` asks for a flush.
    fn write(&mut self, data: &[u8]) -> bool;
    /// `send_file`.
    fn send_file(&mut self, path: &[u8]) -> bool;
    /// `send_error`.
    fn send_error(&mut self, status: u16, message: &[u8]) -> bool;
    /// `read_body`: bytes copied into `buf`, 0 at the end, -1 on failure.
    fn read_body(&mut self, buf: &mut [u8]) -> isize;
    /// `redirect`.
    fn redirect(&mut self, target: &[u8]) -> bool;
    /// (1.1) `rewrite`.
    fn rewrite(&mut self, _target: &[u8]) -> bool {
        false
    }
    /// (1.1) `set_var`.
    fn set_var(&mut self, _name: &[u8], _value: &[u8]) -> bool {
        false
    }
}

/// (1.1) The host's side of a `wp_head`: the response head a filter edits. The server and
/// `crate::testing` implement it; [`lend_head`] turns it into the C table.
pub trait HeadSink {
    /// `status`.
    fn status(&self) -> u16;
    /// `set_status`.
    fn set_status(&mut self, status: u16) -> bool;
    /// How many headers there are.
    fn header_count(&self) -> usize;
    /// Header `i` (in order) as name and value.
    fn header_at(&self, i: usize) -> Option<(&[u8], &[u8])>;
    /// The first value of the header `name` (any case).
    fn find_header(&self, name: &[u8]) -> Option<&[u8]> {
        (0..self.header_count())
            .filter_map(|i| self.header_at(i))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
    /// `set_header`.
    fn set_header(&mut self, name: &[u8], value: &[u8]) -> bool;
    /// `append_header`.
    fn append_header(&mut self, name: &[u8], value: &[u8]) -> bool;
    /// `remove_header`.
    fn remove_header(&mut self, name: &[u8]) -> bool;
    /// `vary_add`.
    fn vary_add(&mut self, token: &[u8]) -> bool;
    /// `replace_body_bytes`.
    fn replace_body_bytes(&mut self, data: &[u8]) -> bool;
    /// `replace_body_file`.
    fn replace_body_file(&mut self, path: &[u8]) -> bool;
    /// `body_length`: `None` when unknown.
    fn body_length(&self) -> Option<u64>;
    /// Is the body the host's own page for the status (`WP_HEAD_HOST_PAGE`)? `None`: the
    /// host does not say.
    fn host_page(&self) -> Option<bool> {
        None
    }
}

/// Lend `sink` to a filter as a `wp_head` table for the duration of `f`.
///
/// # Safety
/// As [`lend_response`]: `f` must not keep the table, its `ctx` or its callbacks past its
/// return (pass it to the plugin's `filter_head` and nothing else).
pub unsafe fn lend_head<R>(sink: &mut dyn HeadSink, f: impl FnOnce(&WpHead) -> R) -> R {
    let flags = match sink.host_page() {
        Some(true) => WP_HEAD_ORIGIN_KNOWN | WP_HEAD_HOST_PAGE,
        Some(false) => WP_HEAD_ORIGIN_KNOWN,
        None => 0,
    };
    let mut fat: &mut dyn HeadSink = sink;
    let head = WpHead {
        struct_size: std::mem::size_of::<WpHead>() as u32,
        flags,
        ctx: &mut fat as *mut &mut dyn HeadSink as *mut c_void,
        status: hd_status,
        set_status: hd_set_status,
        header_count: hd_count,
        header_at: hd_at,
        get_header: hd_get,
        set_header: hd_set,
        append_header: hd_append,
        remove_header: hd_remove,
        vary_add: hd_vary,
        replace_body_bytes: hd_body_bytes,
        replace_body_file: hd_body_file,
        body_length: hd_length,
    };
    f(&head)
}

fn head_sink<'a>(ctx: *mut c_void) -> Option<&'a mut dyn HeadSink> {
    if ctx.is_null() {
        return None;
    }
    // SAFETY: `ctx` is the `&mut dyn HeadSink` in `lend_head`'s frame, alive while the
    // filter's `filter_head` runs (its contract).
    Some(unsafe { *(ctx as *mut &mut dyn HeadSink) })
}

fn as_wp_str(b: &[u8]) -> WpStr {
    WpStr {
        ptr: b.as_ptr(),
        len: b.len(),
    }
}

extern "C" fn hd_status(ctx: *mut c_void) -> u16 {
    head_sink(ctx).map_or(0, |h| h.status())
}

extern "C" fn hd_set_status(ctx: *mut c_void, status: u16) -> i32 {
    rc(head_sink(ctx).is_some_and(|h| h.set_status(status)))
}

extern "C" fn hd_count(ctx: *mut c_void) -> usize {
    head_sink(ctx).map_or(0, |h| h.header_count())
}

extern "C" fn hd_at(ctx: *mut c_void, i: usize, name: *mut WpStr, value: *mut WpStr) -> i32 {
    let Some(h) = head_sink(ctx) else { return -1 };
    let Some((n, v)) = h.header_at(i) else {
        return -1;
    };
    if name.is_null() || value.is_null() {
        return -1;
    }
    // SAFETY: the filter passes two writable `WpStr`s for this call.
    unsafe {
        *name = as_wp_str(n);
        *value = as_wp_str(v);
    }
    0
}

extern "C" fn hd_get(ctx: *mut c_void, n: *const u8, nl: usize, value: *mut WpStr) -> i32 {
    let (Some(h), Some(name)) = (head_sink(ctx), lent(n, nl)) else {
        return -1;
    };
    match h.find_header(name) {
        Some(v) if !value.is_null() => {
            // SAFETY: the filter passes a writable `WpStr` for this call.
            unsafe { *value = as_wp_str(v) };
            0
        }
        _ => -1,
    }
}

/// One head callback taking a name and a value.
fn head_pair_call(
    ctx: *mut c_void,
    (n, nl): (*const u8, usize),
    (v, vl): (*const u8, usize),
    f: impl FnOnce(&mut dyn HeadSink, &[u8], &[u8]) -> bool,
) -> i32 {
    match (head_sink(ctx), lent(n, nl), lent(v, vl)) {
        (Some(h), Some(n), Some(v)) => rc(f(h, n, v)),
        _ => -1,
    }
}

extern "C" fn hd_set(ctx: *mut c_void, n: *const u8, nl: usize, v: *const u8, vl: usize) -> i32 {
    head_pair_call(ctx, (n, nl), (v, vl), |h, n, v| h.set_header(n, v))
}

extern "C" fn hd_append(ctx: *mut c_void, n: *const u8, nl: usize, v: *const u8, vl: usize) -> i32 {
    head_pair_call(ctx, (n, nl), (v, vl), |h, n, v| h.append_header(n, v))
}

/// One head callback taking a byte string.
fn head_bytes_call(
    ctx: *mut c_void,
    p: *const u8,
    len: usize,
    f: impl FnOnce(&mut dyn HeadSink, &[u8]) -> bool,
) -> i32 {
    match (head_sink(ctx), lent(p, len)) {
        (Some(h), Some(d)) => rc(f(h, d)),
        _ => -1,
    }
}

extern "C" fn hd_remove(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    head_bytes_call(ctx, p, len, |h, d| h.remove_header(d))
}

extern "C" fn hd_vary(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    head_bytes_call(ctx, p, len, |h, d| h.vary_add(d))
}

extern "C" fn hd_body_bytes(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    head_bytes_call(ctx, p, len, |h, d| h.replace_body_bytes(d))
}

extern "C" fn hd_body_file(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    head_bytes_call(ctx, p, len, |h, d| h.replace_body_file(d))
}

extern "C" fn hd_length(ctx: *mut c_void) -> i64 {
    head_sink(ctx)
        .and_then(|h| h.body_length())
        .and_then(|n| i64::try_from(n).ok())
        .unwrap_or(-1)
}

/// Lend `sink` to a case as a `wp_response` table for the duration of `f`.
///
/// # Safety
/// The table's `ctx` points into this call's frame and its callbacks dereference it: `f`
/// must not keep the table, its `ctx` or its callbacks past its return (pass it to the
/// case's `act` and nothing else).
pub unsafe fn lend_response<R>(sink: &mut dyn ResponseSink, f: impl FnOnce(&WpResponse) -> R) -> R {
    let mut fat: &mut dyn ResponseSink = sink;
    let resp = WpResponse {
        struct_size: std::mem::size_of::<WpResponse>() as u32,
        reserved: 0,
        ctx: &mut fat as *mut &mut dyn ResponseSink as *mut c_void,
        set_status: cb_status,
        add_header: cb_header,
        write: cb_write,
        send_file: cb_send_file,
        send_error: cb_error,
        read_body: cb_read_body,
        redirect: cb_redirect,
        rewrite: cb_rewrite,
        set_var: cb_set_var,
    };
    f(&resp)
}

fn sink<'a>(ctx: *mut c_void) -> Option<&'a mut dyn ResponseSink> {
    if ctx.is_null() {
        return None;
    }
    // SAFETY: `ctx` is the `&mut dyn ResponseSink` in `lend_response`'s frame, alive while
    // the case's `act` runs (its contract).
    Some(unsafe { *(ctx as *mut &mut dyn ResponseSink) })
}

fn lent<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    if p.is_null() {
        return (len == 0).then_some(&[][..]);
    }
    // No object is that long (a C case's SIZE_MAX): refused, never a slice.
    if len > isize::MAX as usize {
        return None;
    }
    // SAFETY: the case passes `len` readable bytes at `p` for the duration of the call.
    Some(unsafe { std::slice::from_raw_parts(p, len) })
}

fn rc(ok: bool) -> i32 {
    if ok {
        0
    } else {
        -1
    }
}

extern "C" fn cb_status(ctx: *mut c_void, status: u16) -> i32 {
    rc(sink(ctx).is_some_and(|s| s.set_status(status)))
}

extern "C" fn cb_header(ctx: *mut c_void, n: *const u8, nl: usize, v: *const u8, vl: usize) -> i32 {
    match (sink(ctx), lent(n, nl), lent(v, vl)) {
        (Some(s), Some(n), Some(v)) => rc(s.add_header(n, v)),
        _ => -1,
    }
}

/// One callback taking a sink and a lent byte string.
fn with_bytes(
    ctx: *mut c_void,
    p: *const u8,
    len: usize,
    f: impl FnOnce(&mut dyn ResponseSink, &[u8]) -> bool,
) -> i32 {
    match (sink(ctx), lent(p, len)) {
        (Some(s), Some(d)) => rc(f(s, d)),
        _ => -1,
    }
}

extern "C" fn cb_write(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    with_bytes(ctx, p, len, |s, d| s.write(d))
}

extern "C" fn cb_send_file(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    with_bytes(ctx, p, len, |s, d| s.send_file(d))
}

extern "C" fn cb_error(ctx: *mut c_void, status: u16, p: *const u8, len: usize) -> i32 {
    with_bytes(ctx, p, len, |s, d| s.send_error(status, d))
}

extern "C" fn cb_redirect(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    with_bytes(ctx, p, len, |s, d| s.redirect(d))
}

extern "C" fn cb_rewrite(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    with_bytes(ctx, p, len, |s, d| s.rewrite(d))
}

extern "C" fn cb_set_var(
    ctx: *mut c_void,
    n: *const u8,
    nl: usize,
    v: *const u8,
    vl: usize,
) -> i32 {
    match (sink(ctx), lent(n, nl), lent(v, vl)) {
        (Some(s), Some(n), Some(v)) => rc(s.set_var(n, v)),
        _ => -1,
    }
}

extern "C" fn cb_read_body(ctx: *mut c_void, p: *mut u8, cap: usize) -> isize {
    let Some(s) = sink(ctx) else { return -1 };
    if p.is_null() || cap > isize::MAX as usize {
        return if cap == 0 { 0 } else { -1 };
    }
    // SAFETY: the case passes a writable buffer of `cap` bytes for the duration of the call.
    let buf = unsafe { std::slice::from_raw_parts_mut(p, cap) };
    s.read_body(buf)
}

/// A request's fields for `Loaded::test`/`act`, laid out by `CRequest`.
pub(crate) struct RequestParts<'a> {
    /// Indexed by `Field`.
    pub strings: [&'a [u8]; 9],
    pub headers: &'a [(Vec<u8>, Vec<u8>)],
    /// (1.1) Variables set by earlier cases.
    pub vars: &'a [(Vec<u8>, Vec<u8>)],
    pub fs_kind: u32,
    pub body_len: u64,
    pub client_port: u16,
    pub server_port: u16,
}

/// A `wp_request` and the buffers it points into: every string NUL-terminated, as the host
/// lends them.
struct CRequest {
    raw: WpRequest,
    _arena: Vec<u8>,
    _headers: Vec<WpHeader>,
    _vars: Vec<WpHeader>,
}

impl CRequest {
    fn new(p: &RequestParts) -> CRequest {
        let mut arena = Vec::new();
        let mut spans = Vec::new();
        let mut push = |b: &[u8]| {
            spans.push((arena.len(), b.len()));
            arena.extend_from_slice(b);
            arena.push(0);
        };
        for s in &p.strings {
            push(s);
        }
        for (n, v) in p.headers.iter().chain(p.vars) {
            push(n);
            push(v);
        }
        // The arena is complete: pointers into it stay valid while it is not touched.
        let at = |i: usize| WpStr {
            ptr: arena.as_ptr().wrapping_add(spans[i].0),
            len: spans[i].1,
        };
        let pair = |h: usize| WpHeader {
            name: at(9 + 2 * h),
            value: at(10 + 2 * h),
        };
        let headers: Vec<WpHeader> = (0..p.headers.len()).map(pair).collect();
        let vars: Vec<WpHeader> = (p.headers.len()..p.headers.len() + p.vars.len())
            .map(pair)
            .collect();
        let field = |f: Field| at(f as usize);
        let raw = WpRequest {
            struct_size: std::mem::size_of::<WpRequest>() as u32,
            fs_kind: p.fs_kind,
            method: field(Field::Method),
            target: field(Field::Target),
            path: field(Field::Path),
            query: field(Field::Query),
            version: field(Field::Version),
            headers: headers.as_ptr(),
            header_count: headers.len(),
            client_addr: field(Field::ClientAddr),
            server_addr: field(Field::ServerAddr),
            root: field(Field::Root),
            fs_path: field(Field::FsPath),
            body_len: p.body_len,
            client_port: p.client_port,
            server_port: p.server_port,
            reserved: 0,
            vars: vars.as_ptr(),
            var_count: vars.len(),
        };
        CRequest {
            raw,
            _arena: arena,
            _headers: headers,
            _vars: vars,
        }
    }
}

/// The host table lent to a case under test; its `ctx` is the log it records into.
struct TestHost {
    raw: WpHost,
    log: Mutex<Vec<(u32, String)>>,
    /// The root bytes the table's `root` points into, NUL-terminated; only kept alive here.
    _root: Vec<u8>,
}

extern "C" fn test_log(host: *const WpHost, level: u32, msg: *const u8, len: usize) {
    if host.is_null() || msg.is_null() {
        return;
    }
    // SAFETY: `host` is the `raw` of a live boxed `TestHost` (its first field, `ctx` points
    // at its `log`); `msg` has `len` bytes for this call.
    let (log, text) = unsafe {
        let log = &*((*host).ctx as *const Mutex<Vec<(u32, String)>>);
        (log, std::slice::from_raw_parts(msg, len))
    };
    let line = (level, String::from_utf8_lossy(text).into_owned());
    log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
}

/// Lend `out` to a plugin's `create` as a `wp_error_sink` for the duration of `f`: the
/// message `create` reports lands in `out`.
///
/// # Safety
/// The sink's `ctx` points at `out` and its `set` dereferences it: `f` must not keep the
/// sink, its `ctx` or `set` past its return (pass it to `create` and nothing else).
pub unsafe fn lend_error_sink<R>(out: &mut String, f: impl FnOnce(&WpErrorSink) -> R) -> R {
    let sink = WpErrorSink {
        ctx: out as *mut String as *mut c_void,
        set: err_set,
    };
    f(&sink)
}

extern "C" fn err_set(ctx: *mut c_void, msg: *const u8, len: usize) {
    if ctx.is_null() || msg.is_null() {
        return;
    }
    // SAFETY: `ctx` is the `String` lent by `lend_error_sink`, alive during `create`;
    // `msg` has `len` bytes for this call.
    unsafe {
        let s = &mut *(ctx as *mut String);
        *s = String::from_utf8_lossy(std::slice::from_raw_parts(msg, len)).into_owned();
    }
}

/// A `TestHost` on the heap, held by raw pointer so that moving its owner leaves the
/// pointers the instance keeps valid; freed on drop.
struct HostAlloc(*mut TestHost);

impl HostAlloc {
    fn new(root: &[u8]) -> HostAlloc {
        let mut root = root.to_vec();
        root.push(0);
        let raw = Box::into_raw(Box::new(TestHost {
            raw: WpHost {
                struct_size: std::mem::size_of::<WpHost>() as u32,
                abi_major: ABI_MAJOR,
                abi_minor: ABI_MINOR,
                reserved: 0,
                log: test_log,
                ctx: std::ptr::null_mut(),
                stats: None,
                root: WpStr {
                    ptr: root.as_ptr(),
                    len: root.len() - 1,
                },
            },
            log: Mutex::new(Vec::new()),
            _root: root,
        }));
        // SAFETY: `raw` was just allocated; `ctx` points at its own `log`, freed with it (the
        // `root` bytes moved into it without moving their heap buffer).
        unsafe { (*raw).raw.ctx = std::ptr::addr_of_mut!((*raw).log) as *mut c_void };
        HostAlloc(raw)
    }

    fn table(&self) -> *const WpHost {
        // SAFETY: `self.0` is live until drop; no reference is made.
        unsafe { std::ptr::addr_of!((*self.0).raw) }
    }

    fn get(&self) -> &TestHost {
        // SAFETY: `self.0` is live until drop and only read through shared references.
        unsafe { &*self.0 }
    }
}

impl Drop for HostAlloc {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw` in `new`, freed once, here.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// One case created through its descriptor, as the server loads it; destroyed on drop,
/// before its host table is freed (field order).
pub(crate) struct Loaded {
    desc: Descriptor,
    inst: *mut c_void,
    host: HostAlloc,
}

impl Loaded {
    /// Call the descriptor's `create` with `settings` (JSON); `Err` is the refusal message.
    pub(crate) fn create<T: Case>(root: &[u8], settings: &str) -> Result<Loaded, String> {
        let desc = Descriptor::of::<T>();
        let host = HostAlloc::new(root);
        let mut err = String::new();
        let create = desc.0.create.ok_or("the descriptor has no create")?;
        let (cfg, len) = (settings.as_ptr(), settings.len());
        // SAFETY: the sink goes to `create` only, which uses it during the call.
        let inst = unsafe { lend_error_sink(&mut err, |e| create(host.table(), cfg, len, e)) };
        if inst.is_null() {
            return Err(err);
        }
        Ok(Loaded { desc, inst, host })
    }

    /// The descriptor's `test`: its raw answer (0, 1, or `WP_TEST_FAULT`).
    pub(crate) fn test(&self, req: &RequestParts) -> u8 {
        let c = CRequest::new(req);
        self.desc.0.test.map_or(0, |t| t(self.inst, &c.raw))
    }

    /// The descriptor's `act`, with response calls going to `sink`; the `WP_*` result.
    pub(crate) fn act(&self, req: &RequestParts, sink: &mut dyn ResponseSink) -> i32 {
        let c = CRequest::new(req);
        let Some(act) = self.desc.0.act else {
            return WP_ERROR;
        };
        // SAFETY: the table goes to `act` only, which uses it during the call.
        unsafe { lend_response(sink, |resp| act(self.inst, &c.raw, resp)) }
    }

    /// (1.1) The descriptor's `filter_head`, with head calls going to `sink`: the `WP_*`
    /// result and the transform state it stored (NULL if none).
    pub(crate) fn filter_head(
        &self,
        req: &RequestParts,
        sink: &mut dyn HeadSink,
    ) -> (i32, *mut c_void) {
        let c = CRequest::new(req);
        let Some(fh) = self.desc.0.filter_head else {
            return (WP_PASS, std::ptr::null_mut());
        };
        let mut state: *mut c_void = std::ptr::null_mut();
        // SAFETY: the table goes to `filter_head` only, which uses it during the call.
        let rc = unsafe { lend_head(sink, |head| fh(self.inst, &c.raw, head, &mut state)) };
        (rc, state)
    }

    /// (1.1) The descriptor's `filter_body` on one window: (result, input used, output made).
    pub(crate) fn filter_body(
        &self,
        state: *mut c_void,
        input: &[u8],
        out: &mut [u8],
        flags: u32,
    ) -> (i32, usize, usize) {
        let Some(fb) = self.desc.0.filter_body else {
            return (WP_BODY_ERROR, 0, 0);
        };
        call_filter_body(fb, self.inst, state, (input, out, flags))
    }

    /// (1.1) The descriptor's `filter_end`.
    pub(crate) fn filter_end(&self, state: *mut c_void, aborted: bool) {
        if let Some(fe) = self.desc.0.filter_end {
            fe(self.inst, state, aborted as u8);
        }
    }

    /// What the case logged so far, as (level, line).
    pub(crate) fn log(&self) -> Vec<(u32, String)> {
        self.host
            .get()
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        if let Some(d) = self.desc.0.destroy {
            d(self.inst);
        }
        // `host` is freed after this, as the server frees its table after `destroy`.
    }
}

/// Bytes as text when they are UTF-8: ASCII (nearly every method, path and address) is
/// recognised a word at a time and borrowed as it is; anything else takes the full check.
/// Here, not in `helpers`, because the borrow needs `unsafe`, which only this module has.
pub(crate) fn utf8_text(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(b) });
    }
    std::str::from_utf8(b).ok()
}
