//! The `extern "C"` shims behind `export_case!`: null checks, `catch_unwind`, poisoning.
//!
//! This module and the server's plugin loader are the only places with `unsafe` code.
#![allow(unsafe_code)]

use crate::abi::*;
use crate::{Case, Outcome, Request, Response, Settings};
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Services the host lends the plugin for its lifetime (logging). Cheap to copy.
#[derive(Clone, Copy)]
pub struct Host {
    raw: *const WpHost,
}

// SAFETY: the host table is immutable and outlives every instance; the host's `log` is
// thread-safe.
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

impl Host {
    /// Write one line to the server log, tagged with this plugin's name.
    pub fn log(&self, level: crate::Level, msg: &str) {
        host_log(self.raw, level as u32, msg.as_bytes());
    }
}

/// A descriptor that can live in a `static` (it holds only pointers to static data).
pub struct Descriptor(WpPluginDesc);

// SAFETY: every pointer in the descriptor points at immutable `'static` data or code.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// The descriptor for case type `T`.
    pub const fn of<T: Case>() -> Self {
        let flags = WP_THREAD_SAFE | if T::MAY_BLOCK { WP_MAY_BLOCK } else { 0 };
        Descriptor(WpPluginDesc {
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            struct_size: std::mem::size_of::<WpPluginDesc>() as u32,
            flags,
            name: T::NAME.as_ptr(),
            plugin_version: T::VERSION.as_ptr(),
            allow: T::ALLOW.as_ptr(),
            create: Some(create::<T>),
            destroy: Some(destroy::<T>),
            test: Some(test::<T>),
            act: Some(act::<T>),
        })
    }

    /// Pointer handed to the host.
    pub fn as_ptr(&'static self) -> *const WpPluginDesc {
        &self.0
    }
}

struct Instance<T> {
    case: T,
    poisoned: AtomicBool,
    name: &'static CStr,
}

impl<T> Instance<T> {
    fn poison(&self, host_log: Option<Host>, what: &str) {
        self.poisoned.store(true, Ordering::SeqCst);
        if let Some(h) = host_log {
            h.log(
                crate::Level::Error,
                &format!(
                    "plugin {:?} panicked in {what}; its test() is false from now on",
                    self.name
                ),
            );
        }
    }
}

struct Boxed<T> {
    inst: Instance<T>,
    host: Host,
}

/// Borrow a `WpStr` as bytes (the host guarantees `ptr` is valid for `len` bytes).
pub fn str_bytes(s: &WpStr) -> &[u8] {
    if s.ptr.is_null() || s.len == 0 {
        return &[];
    }
    // SAFETY: the host passes `len` readable bytes at `ptr`, valid for the call.
    unsafe { std::slice::from_raw_parts(s.ptr, s.len) }
}

/// Borrow the header array of a request.
pub fn header_slice(r: &WpRequest) -> &[WpHeader] {
    if r.headers.is_null() || r.header_count == 0 {
        return &[];
    }
    // SAFETY: the host passes `header_count` headers at `headers`, valid for the call.
    unsafe { std::slice::from_raw_parts(r.headers, r.header_count) }
}

/// Call the host's log function.
fn host_log(host: *const WpHost, level: u32, msg: &[u8]) {
    if host.is_null() {
        return;
    }
    // SAFETY: the host table outlives every instance (the host never frees it).
    let h = unsafe { &*host };
    (h.log)(host, level, msg.as_ptr(), msg.len());
}

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
    let result = catch_unwind(AssertUnwindSafe(|| {
        let bytes = if cfg.is_null() {
            &b"{}"[..]
        } else {
            // SAFETY: the host passes `cfg_len` bytes of JSON, valid for this call.
            unsafe { std::slice::from_raw_parts(cfg, cfg_len) }
        };
        let json = std::str::from_utf8(bytes).map_err(|_| "settings are not UTF-8".to_string())?;
        let host = Host { raw: host };
        T::create(host, Settings::new(json)).map(|case| Boxed {
            inst: Instance {
                case,
                poisoned: AtomicBool::new(false),
                name: T::NAME,
            },
            host,
        })
    }));
    match result {
        Ok(Ok(b)) => Box::into_raw(Box::new(b)) as *mut c_void,
        Ok(Err(msg)) => {
            report(&msg);
            std::ptr::null_mut()
        }
        Err(_) => {
            report("the plugin panicked while reading its settings");
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
    let _ = catch_unwind(AssertUnwindSafe(move || drop(b)));
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
    if req.is_null() || b.inst.poisoned.load(Ordering::Relaxed) {
        return 0;
    }
    // SAFETY: the request is valid for the duration of the call.
    let req = Request::from_raw(unsafe { &*req });
    match catch_unwind(AssertUnwindSafe(|| b.inst.case.test(&req))) {
        Ok(yes) => yes as u8,
        Err(_) => {
            b.inst.poison(Some(b.host), "test");
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
    // SAFETY: both are valid for the duration of the call.
    let (req, resp) = unsafe { (Request::from_raw(&*req), &*resp) };
    let mut resp = Response::from_raw(resp);
    match catch_unwind(AssertUnwindSafe(|| b.inst.case.act(&req, &mut resp))) {
        Ok(Outcome::Done) => WP_DONE,
        Ok(Outcome::Declined) => WP_DECLINED,
        Ok(Outcome::Error) => WP_ERROR,
        Err(_) => {
            b.inst.poison(Some(b.host), "act");
            WP_ERROR
        }
    }
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
