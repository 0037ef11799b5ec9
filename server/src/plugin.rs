//! Plugin loader and FFI glue: opens `lib<name>.so`, checks its ABI, and calls test/act.
//!
//! With `plugin-api`'s export layer this is the only place with `unsafe` code. Libraries are
//! opened with `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE` and never closed.
#![allow(unsafe_code)]

use crate::config::CaseEntry;
use plugin_api::abi::*;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Host-side receiver of a plugin's response calls.
pub trait Sink {
    fn set_status(&mut self, status: u16) -> bool;
    fn add_header(&mut self, name: &[u8], value: &[u8]) -> bool;
    fn write(&mut self, data: &[u8]) -> bool;
    fn send_file(&mut self, path: &[u8]) -> bool;
    fn send_error(&mut self, status: u16, message: &[u8]) -> bool;
    fn read_body(&mut self, buf: &mut [u8]) -> isize;
    fn redirect(&mut self, target: &[u8]) -> bool;
}

/// A request in a form that can move between threads: one byte arena plus offsets.
pub struct OwnedRequest {
    arena: Vec<u8>,
    headers: Vec<(Span, Span)>,
    fields: [Span; 9],
    pub fs_kind: u32,
    pub body_len: u64,
    pub client_port: u16,
    pub server_port: u16,
    /// The C view, built once by `seal` for every test and act of the request.
    sealed: Option<Sealed>,
}

/// A `WpRequest` and its header array, pointing into the owner's `arena`.
struct Sealed {
    raw: WpRequest,
    _headers: Vec<WpHeader>,
}

// SAFETY: the raw pointers in `sealed` point only into this request's own heap buffers
// (`arena` and the header Vec), which move with it and are never written while sealed;
// they are only read, through `&self`.
unsafe impl Send for OwnedRequest {}

#[derive(Clone, Copy, Default)]
struct Span(usize, usize);

/// Field order in `OwnedRequest::fields`.
#[derive(Clone, Copy)]
pub enum Field {
    Method = 0,
    Target,
    Path,
    Query,
    Version,
    ClientAddr,
    ServerAddr,
    Root,
    FsPath,
}

impl OwnedRequest {
    pub fn new() -> Self {
        OwnedRequest {
            arena: Vec::with_capacity(512),
            headers: Vec::new(),
            fields: [Span::default(); 9],
            fs_kind: WP_KIND_MISSING,
            body_len: 0,
            client_port: 0,
            server_port: 0,
            sealed: None,
        }
    }

    fn push(&mut self, s: &[u8]) -> Span {
        let start = self.arena.len();
        self.arena.extend_from_slice(s);
        self.arena.push(0);
        Span(start, s.len())
    }

    pub fn set(&mut self, f: Field, value: &[u8]) {
        self.sealed = None;
        self.fields[f as usize] = self.push(value);
    }

    pub fn add_header(&mut self, name: &[u8], value: &[u8]) {
        self.sealed = None;
        let n = self.push(name);
        let v = self.push(value);
        self.headers.push((n, v));
    }

    /// Build the C view once, after every field is set, so the cases' test and act calls
    /// share it instead of rebuilding the header array each time.
    pub fn seal(&mut self) {
        let headers = self.wp_headers();
        let raw = self.wp_request(&headers);
        self.sealed = Some(Sealed {
            raw,
            _headers: headers,
        });
    }

    fn str_at(&self, sp: Span) -> WpStr {
        WpStr {
            ptr: self.arena.as_ptr().wrapping_add(sp.0),
            len: sp.1,
        }
    }

    fn wp_headers(&self) -> Vec<WpHeader> {
        self.headers
            .iter()
            .map(|(n, v)| WpHeader {
                name: self.str_at(*n),
                value: self.str_at(*v),
            })
            .collect()
    }

    fn wp_request(&self, headers: &[WpHeader]) -> WpRequest {
        let f = |field: Field| self.str_at(self.fields[field as usize]);
        WpRequest {
            struct_size: std::mem::size_of::<WpRequest>() as u32,
            fs_kind: self.fs_kind,
            method: f(Field::Method),
            target: f(Field::Target),
            path: f(Field::Path),
            query: f(Field::Query),
            version: f(Field::Version),
            headers: headers.as_ptr(),
            header_count: headers.len(),
            client_addr: f(Field::ClientAddr),
            server_addr: f(Field::ServerAddr),
            root: f(Field::Root),
            fs_path: f(Field::FsPath),
            body_len: self.body_len,
            client_port: self.client_port,
            server_port: self.server_port,
            reserved: 0,
        }
    }

    /// Hand the borrowed C view to `f` (the sealed one, or one built for this call).
    fn with_raw<R>(&self, f: impl FnOnce(&WpRequest) -> R) -> R {
        match &self.sealed {
            Some(s) => f(&s.raw),
            None => {
                let headers = self.wp_headers();
                f(&self.wp_request(&headers))
            }
        }
    }
}

impl Default for OwnedRequest {
    fn default() -> Self {
        Self::new()
    }
}

/// One loaded case: the library, its descriptor's functions and the instance.
pub struct Plugin {
    pub name: String,
    pub path: PathBuf,
    pub version: String,
    pub abi: (u32, u32),
    pub may_block: bool,
    /// `None` means any method (`*`).
    pub allow: Option<Vec<String>>,
    inst: *mut c_void,
    test: WpTestFn,
    act: WpActFn,
    destroy: Option<WpDestroyFn>,
    /// Held around calls when the plugin is not thread-safe.
    serial: Option<Mutex<()>>,
    // Last field: dropped after everything that points into it (and never really closed).
    _lib: libloading::os::unix::Library,
}

// SAFETY: the instance is only used through `test`/`act`, which are either declared
// thread-safe by the plugin (WP_THREAD_SAFE) or serialised by `serial`.
unsafe impl Send for Plugin {}
unsafe impl Sync for Plugin {}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(d) = self.destroy {
            d(self.inst);
        }
    }
}

/// Find `lib<name>.so` in the plugin folders, in order.
pub fn find(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(format!("lib{name}.so")))
        .find(|p| p.is_file())
}

extern "C" fn host_log(host: *const WpHost, level: u32, msg: *const u8, len: usize) {
    if host.is_null() || msg.is_null() {
        return;
    }
    // SAFETY: `host` is one of our leaked tables; `msg` has `len` bytes for this call.
    let (name, text) = unsafe {
        let h = &*host;
        let name = &*(h.ctx as *const String);
        (name, std::slice::from_raw_parts(msg, len))
    };
    let text = String::from_utf8_lossy(text);
    let lvl = match level {
        WP_LOG_ERROR => log::Level::Error,
        WP_LOG_WARN => log::Level::Warn,
        WP_LOG_INFO => log::Level::Info,
        _ => log::Level::Debug,
    };
    log::log!(lvl, "case={name}: {text}");
}

extern "C" fn err_set(ctx: *mut c_void, msg: *const u8, len: usize) {
    if ctx.is_null() || msg.is_null() {
        return;
    }
    // SAFETY: `ctx` is the `String` in `load`'s frame; `msg` has `len` bytes.
    unsafe {
        let s = &mut *(ctx as *mut String);
        *s = String::from_utf8_lossy(std::slice::from_raw_parts(msg, len)).into_owned();
    }
}

/// Load, check and create one case. The error says which plugin, where, what was found, what
/// was expected and how to fix it.
pub fn load(entry: &CaseEntry, dirs: &[PathBuf], config_path: &Path) -> Result<Plugin, String> {
    let name = &entry.name;
    let cfg = config_path.display();
    let Some(path) = find(name, dirs) else {
        let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(format!(
            "plugin {name:?}: no file lib{name}.so in the plugin folders [{}]\n  expected: a case plugin named {name:?}, as listed in `cases` in {cfg}\n  fix: build the plugins (cargo build --release --workspace), copy lib{name}.so into plugins/, or remove {name:?} from `cases`",
            list.join(", ")
        ));
    };
    let path = path.canonicalize().unwrap_or(path);
    let shown = path.display().to_string();
    let flags = libc_flags();
    // SAFETY: loading a library runs its initialisers; plugins are trusted code by design.
    let lib = unsafe { libloading::os::unix::Library::open(Some(&path), flags) }
        .map_err(|e| format!("plugin {name:?} ({shown}): cannot be loaded: {e}\n  fix: rebuild the plugin for this machine, or remove {name:?} from `cases` in {cfg}"))?;

    // SAFETY: the symbol's type is fixed by the ABI (a function returning a descriptor).
    let entry_fn = unsafe { lib.get::<extern "C" fn() -> *const WpPluginDesc>(b"wp_plugin_v1\0") };
    let entry_fn = match entry_fn {
        Ok(f) => *f,
        Err(_) => {
            for major in [0u32, 2, 3, 4, 5, 6, 7, 8, 9] {
                let sym = format!("wp_plugin_v{major}\0");
                // SAFETY: only probing whether the symbol exists; it is never called.
                if unsafe { lib.get::<*const c_void>(sym.as_bytes()) }.is_ok() {
                    return Err(format!(
                        "plugin {name:?} ({shown}): built for plugin ABI {major}.x, this server provides {ABI_MAJOR}.{ABI_MINOR}\n  fix: rebuild the plugin against plugin-api {ABI_MAJOR}.x"
                    ));
                }
            }
            return Err(format!(
                "plugin {name:?} ({shown}): does not export {ENTRY_SYMBOL}, so it is not a case plugin\n  expected: a library built with plugin_api::export_case! or include/case_plugin.h\n  fix: point `cases` at a case plugin, or rebuild this one against plugin-api {ABI_MAJOR}.x"
            ));
        }
    };
    let desc = entry_fn();
    if desc.is_null() {
        return Err(format!(
            "plugin {name:?} ({shown}): {ENTRY_SYMBOL}() returned NULL\n  fix: the entry function must return a pointer to a static descriptor"
        ));
    }
    // Read the frozen prefix before anything else.
    // SAFETY: every ABI's descriptor starts with three u32s; we read only those first.
    let (major, minor, size) = unsafe {
        let p = desc as *const u32;
        (*p, *p.add(1), *p.add(2))
    };
    if major != ABI_MAJOR || minor > ABI_MINOR {
        let fix = if major == ABI_MAJOR {
            format!("upgrade the server, or rebuild the plugin against plugin-api {ABI_MAJOR}.{ABI_MINOR}")
        } else {
            format!("rebuild the plugin against plugin-api {ABI_MAJOR}.x")
        };
        return Err(format!(
            "plugin {name:?} ({shown}): built for plugin ABI {major}.{minor}, this server provides {ABI_MAJOR}.{ABI_MINOR}\n  fix: {fix}"
        ));
    }
    // Against the 1.0 size, not ours: a 1.0 plugin must keep loading under a later 1.x host.
    let need = DESC_SIZE_1_0;
    if size < need {
        return Err(format!(
            "plugin {name:?} ({shown}): descriptor is {size} bytes, ABI {ABI_MAJOR}.0 needs at least {need}\n  fix: rebuild the plugin against plugin-api {ABI_MAJOR}.x"
        ));
    }
    // SAFETY: the version and size checks passed, so the full 1.0 layout is there. (A later
    // 1.x host must read its appended fields only when `size` covers them.)
    let d = unsafe { &*desc };
    // SAFETY: descriptor strings are static and NUL-terminated per the ABI.
    let (found_name, version, allow) = unsafe {
        (
            plugin_api::export::cstr(d.name),
            plugin_api::export::cstr(d.plugin_version),
            plugin_api::export::cstr(d.allow),
        )
    };
    let found_name = found_name.map(|c| c.to_string_lossy().into_owned());
    if found_name.as_deref() != Some(name.as_str()) {
        return Err(format!(
            "plugin {name:?} ({shown}): the library calls itself {:?}\n  expected: name {name:?}, as in `cases` in {cfg}\n  fix: use the plugin's own name in `cases`, or rename lib{name}.so to lib<its name>.so",
            found_name.unwrap_or_default()
        ));
    }
    let (Some(create), Some(test), Some(act)) = (d.create, d.test, d.act) else {
        return Err(format!(
            "plugin {name:?} ({shown}): descriptor lacks create, test or act\n  fix: fill every function pointer of wp_plugin_desc"
        ));
    };
    let allow = allow
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|| "GET, HEAD".into());
    let allow = if allow.trim() == "*" {
        None
    } else {
        Some(
            allow
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect(),
        )
    };

    let host: &'static WpHost = Box::leak(Box::new(WpHost {
        struct_size: std::mem::size_of::<WpHost>() as u32,
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        reserved: 0,
        log: host_log,
        ctx: Box::leak(Box::new(name.clone())) as *mut String as *mut c_void,
    }));
    let mut err = String::new();
    let sink = WpErrorSink {
        ctx: &mut err as *mut String as *mut c_void,
        set: err_set,
    };
    let inst = create(host, entry.settings.as_ptr(), entry.settings.len(), &sink);
    if inst.is_null() {
        if err.is_empty() {
            err = "create() returned NULL without a reason".into();
        }
        return Err(format!(
            "plugin {name:?} ({shown}) refused its settings [plugins.{name}] in {cfg}: {err}\n  fix: correct [plugins.{name}] (see the plugin's README for its keys)"
        ));
    }
    Ok(Plugin {
        name: name.clone(),
        path,
        version: version
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default(),
        abi: (major, minor),
        may_block: d.flags & WP_MAY_BLOCK != 0,
        allow,
        inst,
        test,
        act,
        destroy: d.destroy,
        serial: (d.flags & WP_THREAD_SAFE == 0).then(|| Mutex::new(())),
        _lib: lib,
    })
}

fn libc_flags() -> std::os::raw::c_int {
    use libloading::os::unix::{RTLD_LOCAL, RTLD_NOW};
    // RTLD_NODELETE (0x1000 on Linux/glibc and musl): keep the code mapped for the process
    // lifetime, so thread-local destructors never run into an unmapped library.
    const RTLD_NODELETE: std::os::raw::c_int = 0x1000;
    RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE
}

impl Plugin {
    fn lock(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        self.serial
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The chapter's `test`.
    pub fn test(&self, req: &OwnedRequest) -> bool {
        let _g = self.lock();
        req.with_raw(|raw| (self.test)(self.inst, raw) != 0)
    }

    /// The chapter's `act`; response calls go to `sink`.
    pub fn act(&self, req: &OwnedRequest, sink: &mut dyn Sink) -> i32 {
        let _g = self.lock();
        let mut fat: &mut dyn Sink = sink;
        let resp = WpResponse {
            struct_size: std::mem::size_of::<WpResponse>() as u32,
            reserved: 0,
            ctx: &mut fat as *mut &mut dyn Sink as *mut c_void,
            set_status: cb_status,
            add_header: cb_header,
            write: cb_write,
            send_file: cb_send_file,
            send_error: cb_error,
            read_body: cb_read_body,
            redirect: cb_redirect,
        };
        req.with_raw(|raw| (self.act)(self.inst, raw, &resp))
    }

    /// Does this case answer `method`?
    pub fn allows(&self, method: &str) -> bool {
        match &self.allow {
            None => true,
            Some(list) => list.iter().any(|m| m == method),
        }
    }
}

fn sink<'a>(ctx: *mut c_void) -> Option<&'a mut dyn Sink> {
    if ctx.is_null() {
        return None;
    }
    // SAFETY: `ctx` is the `&mut dyn Sink` in `Plugin::act`'s frame, alive during `act`.
    Some(unsafe { *(ctx as *mut &mut dyn Sink) })
}

fn bytes<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    if p.is_null() {
        return (len == 0).then_some(&[][..]);
    }
    // SAFETY: the plugin passes `len` readable bytes at `p` for the duration of the call.
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
    match (sink(ctx), bytes(n, nl), bytes(v, vl)) {
        (Some(s), Some(n), Some(v)) => rc(s.add_header(n, v)),
        _ => -1,
    }
}

extern "C" fn cb_write(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    match (sink(ctx), bytes(p, len)) {
        (Some(s), Some(d)) => rc(s.write(d)),
        _ => -1,
    }
}

extern "C" fn cb_send_file(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    match (sink(ctx), bytes(p, len)) {
        (Some(s), Some(d)) => rc(s.send_file(d)),
        _ => -1,
    }
}

extern "C" fn cb_error(ctx: *mut c_void, status: u16, p: *const u8, len: usize) -> i32 {
    match (sink(ctx), bytes(p, len)) {
        (Some(s), Some(d)) => rc(s.send_error(status, d)),
        _ => -1,
    }
}

extern "C" fn cb_redirect(ctx: *mut c_void, p: *const u8, len: usize) -> i32 {
    match (sink(ctx), bytes(p, len)) {
        (Some(s), Some(d)) => rc(s.redirect(d)),
        _ => -1,
    }
}

extern "C" fn cb_read_body(ctx: *mut c_void, p: *mut u8, cap: usize) -> isize {
    let Some(s) = sink(ctx) else { return -1 };
    if p.is_null() {
        return if cap == 0 { 0 } else { -1 };
    }
    // SAFETY: the plugin passes a writable buffer of `cap` bytes for the duration of the call.
    let buf = unsafe { std::slice::from_raw_parts_mut(p, cap) };
    s.read_body(buf)
}

/// For `--check-config` and logs: one line per loaded case.
pub fn describe(p: &Plugin) -> String {
    format!(
        "{} {} (ABI {}.{}, {}{}) {}",
        p.name,
        p.version,
        p.abi.0,
        p.abi.1,
        p.allow
            .as_ref()
            .map(|a| a.join(", "))
            .unwrap_or_else(|| "any method".into()),
        if p.may_block {
            ", off the event loop"
        } else {
            ""
        },
        p.path.display()
    )
}
