//! Plugin loader and FFI glue: opens `lib<name>.so`, checks its ABI, and calls test/act.
//!
//! With `plugin-api`'s export layer this is the only place with `unsafe` code. Libraries are
//! opened with `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE` and never closed; each instance's
//! host table is freed once the instance is destroyed.
#![allow(unsafe_code)]

use crate::config::CaseEntry;
use plugin_api::abi::*;
use plugin_api::export::{lend_error_sink, lend_response};
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Host-side receiver of a plugin's response calls (plugin-api's, so the testing kit's
/// stand-in host and the server lend a case the same callbacks).
pub use plugin_api::export::ResponseSink as Sink;

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

/// Field order in `OwnedRequest::fields`: the request's string fields, in ABI order.
pub use plugin_api::abi::Field;

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
    // Fields drop in order, after `Drop::drop` has destroyed the instance: the host table the
    // instance may use until then, and last the library its code lives in (never really
    // closed).
    _host: HostTable,
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

/// The `wp_host` table lent to one instance, and the name its log lines carry; freed on drop.
/// Held by raw pointers (from `Box::into_raw`), so moving the `Plugin` that owns it leaves
/// the pointers the instance keeps valid.
struct HostTable(*mut WpHost);

impl HostTable {
    fn new(name: &str) -> HostTable {
        let name = Box::into_raw(Box::new(name.to_string()));
        HostTable(Box::into_raw(Box::new(WpHost {
            struct_size: std::mem::size_of::<WpHost>() as u32,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            reserved: 0,
            log: host_log,
            ctx: name as *mut c_void,
        })))
    }
}

impl Drop for HostTable {
    fn drop(&mut self) {
        // SAFETY: both boxes were made by `new` and are freed once, here; the instance that
        // used them is destroyed (or was never created) by now.
        unsafe {
            let table = Box::from_raw(self.0);
            drop(Box::from_raw(table.ctx as *mut String));
        }
    }
}

extern "C" fn host_log(host: *const WpHost, level: u32, msg: *const u8, len: usize) {
    if host.is_null() || msg.is_null() {
        return;
    }
    // SAFETY: `host` is a live `HostTable` (the instance is not destroyed yet); `msg` has
    // `len` bytes for this call.
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

/// Who is being loaded, for error messages: the case name, its file, the config file.
struct Loading<'a> {
    name: &'a str,
    shown: String,
    cfg: std::path::Display<'a>,
}

/// What the descriptor says about the case, once its prefix and name are checked.
struct Described {
    abi: (u32, u32),
    version: String,
    allow: Option<Vec<String>>,
    flags: u32,
    create: WpCreateFn,
    test: WpTestFn,
    act: WpActFn,
    destroy: Option<WpDestroyFn>,
}

/// Load, check and create one case. The error says which plugin, where, what was found, what
/// was expected and how to fix it.
pub fn load(entry: &CaseEntry, dirs: &[PathBuf], config_path: &Path) -> Result<Plugin, String> {
    let cfg = config_path.display();
    let path = find_file(&entry.name, dirs, &cfg)?;
    let at = Loading {
        name: &entry.name,
        shown: path.display().to_string(),
        cfg,
    };
    let lib = at.open_library(&path)?;
    let desc = at.entry_descriptor(&lib)?;
    let abi = at.check_prefix(desc)?;
    let d = at.read_descriptor(desc, abi)?;
    let (inst, host) = at.create_instance(&d, &entry.settings)?;
    Ok(Plugin {
        name: entry.name.clone(),
        path,
        version: d.version,
        abi: d.abi,
        may_block: d.flags & WP_MAY_BLOCK != 0,
        allow: d.allow,
        inst,
        test: d.test,
        act: d.act,
        destroy: d.destroy,
        serial: (d.flags & WP_THREAD_SAFE == 0).then(|| Mutex::new(())),
        _host: host,
        _lib: lib,
    })
}

/// `lib<name>.so` in the plugin folders, canonical.
fn find_file(name: &str, dirs: &[PathBuf], cfg: &std::path::Display) -> Result<PathBuf, String> {
    let Some(path) = find(name, dirs) else {
        let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(format!(
            "plugin {name:?}: no file lib{name}.so in the plugin folders [{}]\n  expected: a case plugin named {name:?}, as listed in `cases` in {cfg}\n  fix: build the plugins (cargo build --release --workspace), copy lib{name}.so into plugins/, or remove {name:?} from `cases`",
            list.join(", ")
        ));
    };
    Ok(path.canonicalize().unwrap_or(path))
}

impl Loading<'_> {
    fn open_library(&self, path: &Path) -> Result<libloading::os::unix::Library, String> {
        let Loading { name, shown, cfg } = self;
        // SAFETY: loading a library runs its initialisers; plugins are trusted code by design.
        unsafe { libloading::os::unix::Library::open(Some(path), libc_flags()) }
            .map_err(|e| format!("plugin {name:?} ({shown}): cannot be loaded: {e}\n  fix: rebuild the plugin for this machine, or remove {name:?} from `cases` in {cfg}"))
    }

    /// Call `wp_plugin_v1`; without it, say which ABI the library was built for, if any.
    fn entry_descriptor(
        &self,
        lib: &libloading::os::unix::Library,
    ) -> Result<*const WpPluginDesc, String> {
        let Loading { name, shown, .. } = self;
        // SAFETY: the symbol's type is fixed by the ABI (a function returning a descriptor).
        let entry_fn =
            unsafe { lib.get::<extern "C" fn() -> *const WpPluginDesc>(b"wp_plugin_v1\0") };
        let Ok(entry_fn) = entry_fn else {
            return Err(self.probe_other_majors(lib));
        };
        let desc = entry_fn();
        if desc.is_null() {
            return Err(format!(
                "plugin {name:?} ({shown}): {ENTRY_SYMBOL}() returned NULL\n  fix: the entry function must return a pointer to a static descriptor"
            ));
        }
        Ok(desc)
    }

    /// The error for a library without `wp_plugin_v1`: built for another major, or no plugin.
    fn probe_other_majors(&self, lib: &libloading::os::unix::Library) -> String {
        let Loading { name, shown, .. } = self;
        for major in [0u32, 2, 3, 4, 5, 6, 7, 8, 9] {
            let sym = format!("wp_plugin_v{major}\0");
            // SAFETY: only probing whether the symbol exists; it is never called.
            if unsafe { lib.get::<*const c_void>(sym.as_bytes()) }.is_ok() {
                return format!(
                    "plugin {name:?} ({shown}): built for plugin ABI {major}.x, this server provides {ABI_MAJOR}.{ABI_MINOR}\n  fix: rebuild the plugin against plugin-api {ABI_MAJOR}.x"
                );
            }
        }
        format!(
            "plugin {name:?} ({shown}): does not export {ENTRY_SYMBOL}, so it is not a case plugin\n  expected: a library built with plugin_api::export_case! or include/case_plugin.h\n  fix: point `cases` at a case plugin, or rebuild this one against plugin-api {ABI_MAJOR}.x"
        )
    }

    /// Read the frozen prefix before anything else: the ABI version and the descriptor size.
    fn check_prefix(&self, desc: *const WpPluginDesc) -> Result<(u32, u32), String> {
        let Loading { name, shown, .. } = self;
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
        Ok((major, minor))
    }

    /// Read the names, flags and functions of a descriptor whose prefix passed.
    fn read_descriptor(
        &self,
        desc: *const WpPluginDesc,
        abi: (u32, u32),
    ) -> Result<Described, String> {
        let Loading { name, shown, cfg } = self;
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
        if found_name.as_deref() != Some(*name) {
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
        let text = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
        Ok(Described {
            abi,
            version: version.map(text).unwrap_or_default(),
            allow: parse_allow(&allow.map(text).unwrap_or_else(|| "GET, HEAD".into())),
            flags: d.flags,
            create,
            test,
            act,
            destroy: d.destroy,
        })
    }

    /// Call `create` with the case's settings and a host table the instance then owns.
    fn create_instance(
        &self,
        d: &Described,
        settings: &str,
    ) -> Result<(*mut c_void, HostTable), String> {
        let Loading { name, shown, cfg } = self;
        let host = HostTable::new(name);
        let mut err = String::new();
        let (table, cfg_json, len) = (host.0 as *const WpHost, settings.as_ptr(), settings.len());
        // SAFETY: the sink goes to `create` only, which uses it during the call.
        let inst = unsafe { lend_error_sink(&mut err, |e| (d.create)(table, cfg_json, len, e)) };
        if inst.is_null() {
            if err.is_empty() {
                err = "create() returned NULL without a reason".into();
            }
            return Err(format!(
                "plugin {name:?} ({shown}) refused its settings [plugins.{name}] in {cfg}: {err}\n  fix: correct [plugins.{name}] (see the plugin's README for its keys)"
            ));
        }
        Ok((inst, host))
    }
}

/// An `allow` value: `None` for `*` (any method), else the listed methods.
fn parse_allow(allow: &str) -> Option<Vec<String>> {
    if allow.trim() == "*" {
        return None;
    }
    let methods = allow.split(',').map(|m| m.trim().to_string());
    Some(methods.filter(|m| !m.is_empty()).collect())
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
        // SAFETY: the table goes to the plugin's `act` only, which uses it during the call.
        unsafe {
            lend_response(sink, |resp| {
                req.with_raw(|raw| (self.act)(self.inst, raw, resp))
            })
        }
    }

    /// Does this case answer `method`?
    pub fn allows(&self, method: &str) -> bool {
        match &self.allow {
            None => true,
            Some(list) => list.iter().any(|m| m == method),
        }
    }
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
