//! Plugin loader and FFI glue: opens `lib<name>.so`, checks its ABI, and calls test/act.
//!
//! With `plugin-api`'s export layer this is the only place with `unsafe` code. Libraries are
//! opened with `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE` and never closed; each instance's
//! host table is freed once the instance is destroyed.
#![allow(unsafe_code)]

use crate::config::CaseEntry;
use plugin_api::abi::*;
use plugin_api::export::{lend_error_sink, lend_head, lend_response};
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Host-side receiver of a plugin's response calls (plugin-api's, so the testing kit's
/// stand-in host and the server lend a case the same callbacks).
pub use plugin_api::export::ResponseSink as Sink;

/// Host-side receiver of a filter's head calls (ABI 1.1).
pub use plugin_api::export::HeadSink;

/// A request in a form that can move between threads: one byte arena plus offsets. It lives
/// in a box that goes back to the thread's pool when dropped, so moving it copies a pointer
/// and its arena and arrays keep their room from one request to the next.
pub struct OwnedRequest(Option<Box<Parts>>);

struct Parts {
    arena: Vec<u8>,
    headers: Vec<(Span, Span)>,
    vars: Vec<(Span, Span)>,
    fields: [Span; 9],
    fs_kind: u32,
    body_len: u64,
    client_port: u16,
    server_port: u16,
    /// The C view, built once by `seal` for every test and act of the request; it points
    /// into `arena`, `wp_headers` and `wp_vars`.
    sealed: Option<WpRequest>,
    wp_headers: Vec<WpHeader>,
    wp_vars: Vec<WpHeader>,
}

// SAFETY: the raw pointers in `sealed` and the `wp_*` arrays point only into this request's
// own heap buffers (`arena` and the `wp_*` Vecs), which move with it and are never written
// while sealed; they are only read, through `&self`.
unsafe impl Send for Parts {}

#[derive(Clone, Copy, Default)]
/// Start and length in the arena (a request's text is far below 4 GiB: heads are bounded).
struct Span(u32, u32);

/// Field order in `OwnedRequest::fields`: the request's string fields, in ABI order.
pub use plugin_api::abi::Field;

/// Requests each thread keeps for reuse, at most, and the arena room a kept one may have.
const KEEP: usize = 8;
const MAX_KEPT_ARENA: usize = 16 * 1024;

/// The boxes themselves are kept: a request holds its parts by a box, so that moving it
/// between the chain's stages copies a pointer.
#[allow(clippy::vec_box)]
type Kept = std::cell::RefCell<Vec<Box<Parts>>>;

thread_local! {
    static FREE: Kept = const { std::cell::RefCell::new(Vec::new()) };
}

impl OwnedRequest {
    pub fn new() -> Self {
        let parts = FREE.with_borrow_mut(Vec::pop).unwrap_or_else(|| {
            Box::new(Parts {
                arena: Vec::with_capacity(512),
                headers: Vec::new(),
                vars: Vec::new(),
                fields: [Span::default(); 9],
                fs_kind: WP_KIND_MISSING,
                body_len: 0,
                client_port: 0,
                server_port: 0,
                sealed: None,
                wp_headers: Vec::new(),
                wp_vars: Vec::new(),
            })
        });
        OwnedRequest(Some(parts))
    }

    fn parts(&self) -> &Parts {
        self.0.as_deref().expect("taken only by drop")
    }

    fn parts_mut(&mut self) -> &mut Parts {
        self.0.as_deref_mut().expect("taken only by drop")
    }

    fn push(&mut self, s: &[u8]) -> Span {
        let arena = &mut self.parts_mut().arena;
        let start = arena.len();
        arena.reserve(s.len() + 1);
        arena.extend_from_slice(s);
        arena.push(0);
        Span(start as u32, s.len() as u32)
    }

    pub fn set(&mut self, f: Field, value: &[u8]) {
        let span = self.push(value);
        let p = self.parts_mut();
        p.sealed = None;
        p.fields[f as usize] = span;
    }

    pub fn add_header(&mut self, name: &[u8], value: &[u8]) {
        let (n, v) = (self.push(name), self.push(value));
        let p = self.parts_mut();
        p.sealed = None;
        p.headers.push((n, v));
    }

    /// (1.1) A variable a case set, for the cases after it.
    pub fn add_var(&mut self, name: &[u8], value: &[u8]) {
        let (n, v) = (self.push(name), self.push(value));
        let p = self.parts_mut();
        p.sealed = None;
        p.vars.push((n, v));
    }

    /// What the path names (`WP_KIND_*`).
    pub fn set_kind(&mut self, kind: u32) {
        let p = self.parts_mut();
        p.sealed = None;
        p.fs_kind = kind;
    }

    /// The body's length and the client's and our port.
    pub fn set_numbers(&mut self, body_len: u64, client_port: u16, server_port: u16) {
        let p = self.parts_mut();
        p.sealed = None;
        (p.body_len, p.client_port, p.server_port) = (body_len, client_port, server_port);
    }

    /// The value of a variable, for tests of the view the host builds.
    #[cfg(test)]
    pub fn var(&self, name: &[u8]) -> Option<&[u8]> {
        let p = self.parts();
        let at = |sp: Span| &p.arena[sp.0 as usize..(sp.0 + sp.1) as usize];
        let found = p.vars.iter().find(|(n, _)| at(*n) == name);
        found.map(|(_, v)| at(*v))
    }

    /// Build the C view once, after every field is set, so the cases' test and act calls
    /// share it instead of rebuilding the header array each time.
    pub fn seal(&mut self) {
        let p = self.parts_mut();
        fill_pairs(&mut p.wp_headers, &p.arena, &p.headers);
        fill_pairs(&mut p.wp_vars, &p.arena, &p.vars);
        p.sealed = Some(p.wp_request(&p.wp_headers, &p.wp_vars));
    }

    /// Hand the borrowed C view to `f` (the sealed one, or one built for this call).
    fn with_raw<R>(&self, f: impl FnOnce(&WpRequest) -> R) -> R {
        let p = self.parts();
        if let Some(raw) = &p.sealed {
            return f(raw);
        }
        let (mut headers, mut vars) = (Vec::new(), Vec::new());
        fill_pairs(&mut headers, &p.arena, &p.headers);
        fill_pairs(&mut vars, &p.arena, &p.vars);
        f(&p.wp_request(&headers, &vars))
    }
}

impl Drop for OwnedRequest {
    /// Back to the thread's pool, emptied, unless it grew too big to keep.
    fn drop(&mut self) {
        let Some(mut parts) = self.0.take() else {
            return;
        };
        if parts.arena.capacity() > MAX_KEPT_ARENA {
            return;
        }
        parts.clear();
        let _ = FREE.try_with(|f| {
            let mut f = f.borrow_mut();
            if f.len() < KEEP {
                f.push(parts);
            }
        });
    }
}

impl Default for OwnedRequest {
    fn default() -> Self {
        Self::new()
    }
}

impl Parts {
    fn clear(&mut self) {
        self.sealed = None;
        self.arena.clear();
        self.headers.clear();
        self.vars.clear();
        self.wp_headers.clear();
        self.wp_vars.clear();
        self.fields = [Span::default(); 9];
        self.fs_kind = WP_KIND_MISSING;
        (self.body_len, self.client_port, self.server_port) = (0, 0, 0);
    }

    fn str_at(&self, sp: Span) -> WpStr {
        str_at(&self.arena, sp)
    }

    fn wp_request(&self, headers: &[WpHeader], vars: &[WpHeader]) -> WpRequest {
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
            vars: vars.as_ptr(),
            var_count: vars.len(),
        }
    }
}

fn str_at(arena: &[u8], sp: Span) -> WpStr {
    WpStr {
        ptr: arena.as_ptr().wrapping_add(sp.0 as usize),
        len: sp.1 as usize,
    }
}

/// `pairs` as the ABI's name/value array over `arena`, in `out` (emptied first).
fn fill_pairs(out: &mut Vec<WpHeader>, arena: &[u8], pairs: &[(Span, Span)]) {
    out.clear();
    out.extend(pairs.iter().map(|(n, v)| WpHeader {
        name: str_at(arena, *n),
        value: str_at(arena, *v),
    }));
}

/// One loaded case: the library, its descriptor's functions and the instance.
pub struct Plugin {
    pub name: String,
    pub path: PathBuf,
    pub version: String,
    pub abi: (u32, u32),
    pub may_block: bool,
    /// (1.2) Its `test` may answer `WP_TEST_FAULT`: the request gets a 500.
    test_faults: bool,
    /// `None` means any method (`*`).
    pub allow: Option<Vec<String>>,
    /// (1.1) `WP_ROLE_*`: declared, or inferred from the functions present.
    pub roles: u32,
    /// (1.1) `WP_F_*` bits of its filter.
    pub filter_flags: u32,
    inst: *mut c_void,
    test: Option<WpTestFn>,
    act: Option<WpActFn>,
    filter: Option<FilterFns>,
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

/// What the table's `ctx` points at: the name log lines carry, and the root bytes (with
/// their NUL) that `root` lends.
struct HostCtx {
    name: String,
    root: Vec<u8>,
}

impl HostTable {
    fn new(name: &str, root: &Path) -> HostTable {
        use std::os::unix::ffi::OsStrExt;
        let mut root = root.as_os_str().as_bytes().to_vec();
        root.push(0);
        let ctx = Box::into_raw(Box::new(HostCtx {
            name: name.to_string(),
            root,
        }));
        // SAFETY: `ctx` was just allocated and lives as long as the table (freed in drop).
        let root = unsafe { &(*ctx).root };
        HostTable(Box::into_raw(Box::new(WpHost {
            struct_size: std::mem::size_of::<WpHost>() as u32,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            reserved: 0,
            log: host_log,
            ctx: ctx as *mut c_void,
            stats: Some(host_stats),
            root: WpStr {
                ptr: root.as_ptr(),
                len: root.len() - 1,
            },
        })))
    }
}

impl Drop for HostTable {
    fn drop(&mut self) {
        // SAFETY: both boxes were made by `new` and are freed once, here; the instance that
        // used them is destroyed (or was never created) by now.
        unsafe {
            let table = Box::from_raw(self.0);
            drop(Box::from_raw(table.ctx as *mut HostCtx));
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
        let name = &(*(h.ctx as *const HostCtx)).name;
        (name, std::slice::from_raw_parts(msg, len))
    };
    let text = escaped(text, false);
    let lvl = match level {
        WP_LOG_ERROR => log::Level::Error,
        WP_LOG_WARN => log::Level::Warn,
        WP_LOG_INFO => log::Level::Info,
        _ => log::Level::Debug,
    };
    log::log!(lvl, "case={name}: {text}");
}

/// The most of one plugin message the error log shows (nginx's line is 2 KiB).
const MESSAGE_MAX: usize = 4096;

/// A plugin's message as the error log may show it: cut at `MESSAGE_MAX` bytes, its control
/// characters escaped, so that one logging what a client sent cannot forge log lines or
/// send a terminal escape. `lines`: a line break stays one, but the next line is indented
/// (`\n  fix: …`, as the host's own messages), never a line of its own.
fn escaped(text: &[u8], lines: bool) -> String {
    let cut = &text[..text.len().min(MESSAGE_MAX)];
    let mut out = String::with_capacity(cut.len());
    for c in String::from_utf8_lossy(cut).chars() {
        match c {
            '\n' if lines => out.push_str("\n  "),
            c if c.is_control() && c != '\t' => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    if text.len() > MESSAGE_MAX {
        out.push_str(&format!("… ({} bytes more)", text.len() - MESSAGE_MAX));
    }
    out.replace("\n    ", "\n  ")
}

/// Who is being loaded, for error messages: the case name, its file, the config file.
struct Loading<'a> {
    name: &'a str,
    shown: String,
    /// The configuration file, and the line of the case's name when known.
    cfg: String,
    /// The configuration file alone, for its `[plugins.NAME]` table.
    file: std::path::Display<'a>,
}

/// What the descriptor says about the case, once its prefix and name are checked.
struct Described {
    abi: (u32, u32),
    version: String,
    allow: Option<Vec<String>>,
    flags: u32,
    roles: u32,
    filter_flags: u32,
    create: WpCreateFn,
    test: Option<WpTestFn>,
    act: Option<WpActFn>,
    filter: Option<FilterFns>,
    destroy: Option<WpDestroyFn>,
}

/// (1.1) A filter's three functions.
#[derive(Clone, Copy)]
struct FilterFns {
    head: WpFilterHeadFn,
    body: Option<WpFilterBodyFn>,
    end: Option<WpFilterEndFn>,
}

/// What a case's test said about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    /// Not this case's: on to the next.
    Pass,
    /// This case acts.
    Take,
    /// (1.2) The test failed (a Rust plugin's panic): the request gets a 500, never the
    /// cases after it, which it may have been guarding.
    Failed,
}

/// What a filter decided about one response's head.
pub enum Verdict {
    Pass,
    /// Body calls follow with this state; `filter_end` must run once.
    Transform(TransformState),
    Error,
}

/// A transform's state, owned by the plugin, ended once by `Plugin::filter_end`.
pub struct TransformState(*mut c_void);

// SAFETY: the state belongs to one response; the host uses it from one task at a time and
// hands it back to the plugin's own functions only.
unsafe impl Send for TransformState {}

extern "C" fn host_stats(_host: *const WpHost, out: *mut u8, cap: usize) -> usize {
    let json = crate::stats::json();
    if !out.is_null() && json.len() <= cap {
        // SAFETY: the plugin passes `cap` writable bytes at `out` for this call.
        unsafe { std::ptr::copy_nonoverlapping(json.as_ptr(), out, json.len()) };
    }
    json.len()
}

/// Load, check and create one case. The error says which plugin, where, what was found, what
/// was expected and how to fix it.
pub fn load(
    entry: &CaseEntry,
    dirs: &[PathBuf],
    config_path: &Path,
    root: &Path,
) -> Result<Plugin, String> {
    let cfg = match entry.line {
        0 => config_path.display().to_string(),
        line => format!("{} (line {line})", config_path.display()),
    };
    let path = find_file(&entry.name, dirs, &cfg)?;
    // A crash in the library's initialisers or its create names it.
    let _loading = crate::fault::loading(&entry.name);
    let at = Loading {
        name: &entry.name,
        shown: path.display().to_string(),
        cfg,
        file: config_path.display(),
    };
    let lib = at.open_library(&path)?;
    let desc = at.entry_descriptor(&lib)?;
    let abi = at.check_prefix(desc)?;
    let d = at.read_descriptor(desc, abi)?;
    let (inst, host) = at.create_instance(&d, &entry.settings, root)?;
    Ok(Plugin {
        name: entry.name.clone(),
        path,
        version: d.version,
        abi: d.abi,
        may_block: d.flags & WP_MAY_BLOCK != 0,
        test_faults: d.flags & WP_TEST_FAULTS != 0,
        allow: d.allow,
        roles: d.roles,
        filter_flags: d.filter_flags,
        inst,
        test: d.test,
        act: d.act,
        filter: d.filter,
        destroy: d.destroy,
        serial: (d.flags & WP_THREAD_SAFE == 0).then(|| Mutex::new(())),
        _host: host,
        _lib: lib,
    })
}

/// `lib<name>.so` in the plugin folders, canonical.
fn find_file(name: &str, dirs: &[PathBuf], cfg: &str) -> Result<PathBuf, String> {
    let Some(path) = find(name, dirs) else {
        let shown = |d: &PathBuf| match d.is_dir() {
            true => d.display().to_string(),
            false => format!("{} (no such folder)", d.display()),
        };
        let list: Vec<String> = dirs.iter().map(shown).collect();
        let present = in_folders(dirs);
        let fix = match crate::config::closest(name, present.iter().map(String::as_str)) {
            Some(meant) => format!("did you mean {meant:?}? There is a lib{meant}.so; correct the name in `cases`"),
            None => format!("build the plugins (cargo build --release --workspace), copy lib{name}.so into plugins/, or remove {name:?} from `cases`"),
        };
        return Err(format!(
            "plugin {name:?}: no file lib{name}.so in the plugin folders [{}]\n  expected: a case plugin named {name:?}, as listed in `cases` in {cfg}\n  fix: {fix}",
            list.join(", ")
        ));
    };
    let path = path.canonicalize().unwrap_or(path);
    warn_if_shadowing(name, &path, dirs);
    Ok(path)
}

/// Set in worker processes: the master has said it already.
static SHADOWS_SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Leave shadowed plugins to the master's warning (a worker loads the same files).
pub fn quiet_shadow_warnings() {
    SHADOWS_SAID.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Say so, once a folder, when a later plugin folder holds a *newer* `lib<name>.so` than
/// the one that loads: an author who rebuilt their plugin into a folder listed after
/// another holding that name (the shipped one also holds the test fixtures) would
/// otherwise never learn why it does not behave. An older copy there (the release and
/// debug builds of the same tree) is no news.
fn warn_if_shadowing(name: &str, used: &Path, dirs: &[PathBuf]) {
    use std::sync::atomic::Ordering::Relaxed;
    static SAID: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let file = format!("lib{name}.so");
    let newer = dirs
        .iter()
        .filter_map(|d| d.join(&file).canonicalize().ok())
        .find(|p| p != used && modified(p) > modified(used));
    let Some(dir) = newer.as_deref().and_then(Path::parent) else {
        return;
    };
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if SHADOWS_SAID.load(Relaxed) || said.iter().any(|d| d == dir) {
        return;
    }
    said.push(dir.to_path_buf());
    log::warn!(
        "plugin {name:?}: loading {}, which comes first in plugin_dirs; a newer {file} in {} is not used (nor, perhaps, other plugins newer there)\n  fix: put the folder of the build you mean first in plugin_dirs",
        used.display(),
        dir.display()
    );
}

/// The case names the plugin folders hold a `lib<name>.so` for.
fn in_folders(dirs: &[PathBuf]) -> Vec<String> {
    let files = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten();
    let names = files.filter_map(|f| f.ok()?.file_name().into_string().ok());
    let cases = names.filter_map(|n| Some(n.strip_prefix("lib")?.strip_suffix(".so")?.to_string()));
    cases.filter(|n| crate::config::valid_name(n)).collect()
}

/// The fix for a library the loader refused: memory it could not map is the process's
/// limit (ulimit -v, LimitAS=) or the machine's, not the plugin.
fn load_fix(error: &str, name: &str, cfg: &str) -> String {
    if error.contains("failed to map segment") || error.contains("Cannot allocate memory") {
        "the server ran out of address space or memory loading it: raise the address-space limit (ulimit -v, LimitAS= in systemd) or free memory".into()
    } else {
        format!("rebuild the plugin for this machine, or remove {name:?} from `cases` in {cfg}")
    }
}

impl Loading<'_> {
    fn open_library(&self, path: &Path) -> Result<libloading::os::unix::Library, String> {
        let Loading {
            name, shown, cfg, ..
        } = self;
        // SAFETY: loading a library runs its initialisers; plugins are trusted code by design.
        unsafe { libloading::os::unix::Library::open(Some(path), libc_flags()) }.map_err(|e| {
            let fix = load_fix(&e.to_string(), name, cfg);
            format!("plugin {name:?} ({shown}): cannot be loaded: {e}\n  fix: {fix}")
        })
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
                    "plugin {name:?} ({shown}): built for plugin ABI {major}.x, this server provides {ABI_MAJOR}.{ABI_MINOR}\n  fix: rebuild the plugin against this server's plugin-api crate (ABI {ABI_MAJOR}.x)"
                );
            }
        }
        format!(
            "plugin {name:?} ({shown}): does not export {ENTRY_SYMBOL}, so it is not a case plugin\n  expected: a library built with plugin_api::export_case! or include/case_plugin.h\n  fix: point `cases` at a case plugin, or rebuild this one against this server's plugin-api crate (ABI {ABI_MAJOR}.x)"
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
                format!("upgrade the server, or rebuild the plugin against this server's plugin-api crate (ABI {ABI_MAJOR}.{ABI_MINOR})")
            } else {
                format!(
                    "rebuild the plugin against this server's plugin-api crate (ABI {ABI_MAJOR}.x)"
                )
            };
            return Err(format!(
                "plugin {name:?} ({shown}): built for plugin ABI {major}.{minor}, this server provides {ABI_MAJOR}.{ABI_MINOR}\n  fix: {fix}"
            ));
        }
        // Against the size of the minor the plugin declares, not ours: a 1.0 plugin must keep
        // loading under a later 1.x host, and a 1.1 plugin must carry the fields it claims.
        let need = if minor >= 1 {
            DESC_SIZE_1_1
        } else {
            DESC_SIZE_1_0
        };
        if size < need {
            return Err(format!(
                "plugin {name:?} ({shown}): descriptor is {size} bytes, ABI {ABI_MAJOR}.{} needs at least {need}\n  fix: rebuild the plugin against this server's plugin-api crate (ABI {ABI_MAJOR}.x)",
                minor.min(1)
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
        let Loading {
            name, shown, cfg, ..
        } = self;
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
        let filter = self.filter_fns(d, abi.1)?;
        let acts = d.test.is_some() && d.act.is_some();
        let (Some(create), true) = (d.create, acts || filter.is_some()) else {
            return Err(format!(
                "plugin {name:?} ({shown}): descriptor lacks create, test or act\n  fix: fill every function pointer of wp_plugin_desc"
            ));
        };
        let declared = if abi.1 >= 1 { d.roles } else { 0 };
        let inferred = if acts { WP_ROLE_CASE } else { 0 }
            | filter.map_or(0, |f| {
                WP_ROLE_FILTER
                    | if f.body.is_some() {
                        WP_ROLE_TRANSFORM
                    } else {
                        0
                    }
            });
        self.roles_have_functions(declared, inferred)?;
        self.warn_blocking_serialised(d.flags);
        let text = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
        Ok(Described {
            abi,
            version: version.map(text).unwrap_or_default(),
            allow: parse_allow(&allow.map(text).unwrap_or_else(|| "GET, HEAD".into())),
            flags: d.flags,
            roles: declared | inferred,
            filter_flags: if abi.1 >= 1 { d.filter_flags } else { 0 },
            create,
            test: d.test.filter(|_| acts),
            act: d.act.filter(|_| acts),
            filter,
            destroy: d.destroy,
        })
    }

    /// A role declared without its function would fail every answer (a transform without
    /// filter_body) or never run (a filter without filter_head): refused at load.
    fn roles_have_functions(&self, declared: u32, inferred: u32) -> Result<(), String> {
        let Loading { name, shown, .. } = self;
        let missing = declared & !inferred;
        let lacks = if missing & WP_ROLE_FILTER != 0 {
            ("WP_ROLE_FILTER", "filter_head")
        } else if missing & WP_ROLE_TRANSFORM != 0 {
            ("WP_ROLE_TRANSFORM", "filter_body and filter_end")
        } else if missing & WP_ROLE_CASE != 0 {
            ("WP_ROLE_CASE", "test and act")
        } else {
            return Ok(());
        };
        Err(format!(
            "plugin {name:?} ({shown}): descriptor declares {} but lacks {}\n  fix: fill {}, or drop {} from roles",
            lacks.0, lacks.1, lacks.1, lacks.0
        ))
    }

    /// WP_MAY_BLOCK without WP_THREAD_SAFE: its calls are serialised, so while its act
    /// blocks on a pool thread the event loop waits to call its test. Allowed (the ABI has
    /// always allowed it), but said at load.
    fn warn_blocking_serialised(&self, flags: u32) {
        if flags & WP_MAY_BLOCK != 0 && flags & WP_THREAD_SAFE == 0 {
            log::warn!(
                "plugin {:?} ({}): WP_MAY_BLOCK without WP_THREAD_SAFE: its calls are serialised, so while act blocks, the event loop waits for it to call test and every request on this worker waits too\n  fix: make it thread-safe and set WP_THREAD_SAFE",
                self.name, self.shown
            );
        }
    }

    /// (1.1) The filter functions of a descriptor that declares minor 1 or later (fields a
    /// 1.0 descriptor does not have are never read). A body transform needs `filter_end`.
    fn filter_fns(&self, d: &WpPluginDesc, minor: u32) -> Result<Option<FilterFns>, String> {
        let Loading { name, shown, .. } = self;
        if minor < 1 {
            return Ok(None);
        }
        let Some(head) = d.filter_head else {
            return Ok(None);
        };
        if d.filter_body.is_some() && d.filter_end.is_none() {
            return Err(format!(
                "plugin {name:?} ({shown}): descriptor has filter_body but no filter_end\n  fix: a transform's state must be freed: fill filter_end"
            ));
        }
        Ok(Some(FilterFns {
            head,
            body: d.filter_body,
            end: d.filter_end,
        }))
    }

    /// Call `create` with the case's settings and a host table the instance then owns.
    fn create_instance(
        &self,
        d: &Described,
        settings: &str,
        root: &Path,
    ) -> Result<(*mut c_void, HostTable), String> {
        let Loading {
            name, shown, file, ..
        } = self;
        let host = HostTable::new(name, root);
        let mut err = String::new();
        let (table, cfg_json, len) = (host.0 as *const WpHost, settings.as_ptr(), settings.len());
        // SAFETY: the sink goes to `create` only, which uses it during the call.
        let inst = unsafe { lend_error_sink(&mut err, |e| (d.create)(table, cfg_json, len, e)) };
        if inst.is_null() {
            err = match err.is_empty() {
                true => "create() returned NULL without a reason".into(),
                false => escaped(err.as_bytes(), true),
            };
            let docs = format!(
                "docs/plugins/{name}.md for a shipped plugin, else the plugin's own documentation"
            );
            let fix = match settings {
                _ if err.contains("\n  fix:") => String::new(),
                "{}" => format!("\n  fix: add a [plugins.{name}] table to {file} with the keys the plugin needs ({docs})"),
                _ => format!("\n  fix: correct [plugins.{name}] ({docs} lists its keys)"),
            };
            return Err(format!(
                "plugin {name:?} ({shown}) refused its settings [plugins.{name}] in {file}: {err}{fix}"
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

    /// Does the case answer requests (test/act), as every 1.0 plugin does?
    pub fn acts(&self) -> bool {
        self.test.is_some()
    }

    /// (1.1) Does it filter responses?
    pub fn filters(&self) -> bool {
        self.filter.is_some()
    }

    /// The chapter's `test`.
    pub fn test(&self, req: &OwnedRequest) -> Test {
        let Some(test) = self.test else {
            return Test::Pass;
        };
        let _g = self.lock();
        match req.with_raw(|raw| test(self.inst, raw)) {
            0 => Test::Pass,
            WP_TEST_FAULT if self.test_faults => Test::Failed,
            _ => Test::Take,
        }
    }

    /// The chapter's `act`; response calls go to `sink`. A `WP_CONTINUE` from a plugin that
    /// does not declare `WP_ROLE_REWRITE` (every 1.0 plugin) counts as `WP_ERROR`.
    pub fn act(&self, req: &OwnedRequest, sink: &mut dyn Sink) -> i32 {
        let Some(act) = self.act else {
            return WP_ERROR;
        };
        let _g = self.lock();
        // SAFETY: the table goes to the plugin's `act` only, which uses it during the call.
        let rc =
            unsafe { lend_response(sink, |resp| req.with_raw(|raw| act(self.inst, raw, resp))) };
        if rc == WP_CONTINUE && self.roles & WP_ROLE_REWRITE == 0 {
            log::error!(
                "case={}: act returned WP_CONTINUE without declaring WP_ROLE_REWRITE",
                self.name
            );
            return WP_ERROR;
        }
        rc
    }

    /// (1.1) The filter's look at a response head; head calls go to `sink`.
    pub fn filter_head(&self, req: &OwnedRequest, sink: &mut dyn HeadSink) -> Verdict {
        let Some(f) = self.filter else {
            return Verdict::Pass;
        };
        let _g = self.lock();
        let mut state: *mut c_void = std::ptr::null_mut();
        // SAFETY: the table goes to the plugin's `filter_head` only, used during the call.
        let rc = unsafe {
            lend_head(sink, |head| {
                req.with_raw(|raw| (f.head)(self.inst, raw, head, &mut state))
            })
        };
        match rc {
            WP_PASS => Verdict::Pass,
            WP_TRANSFORM if f.body.is_some() => Verdict::Transform(TransformState(state)),
            _ => {
                if !state.is_null() {
                    self.filter_end(TransformState(state), true);
                }
                Verdict::Error
            }
        }
    }

    /// (1.1) One window of a body transform: (result, input used, output made).
    pub fn filter_body(
        &self,
        state: &TransformState,
        input: &[u8],
        out: &mut [u8],
        flags: u32,
    ) -> (i32, usize, usize) {
        let Some(body) = self.filter.and_then(|f| f.body) else {
            return (WP_BODY_ERROR, 0, 0);
        };
        let _g = self.lock();
        plugin_api::export::call_filter_body(body, self.inst, state.0, (input, out, flags))
    }

    /// (1.1) End a transform (exactly once per state).
    pub fn filter_end(&self, state: TransformState, aborted: bool) {
        if let Some(end) = self.filter.and_then(|f| f.end) {
            let _g = self.lock();
            end(self.inst, state.0, aborted as u8);
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

/// What a plugin takes part in, for `--check-config` and logs.
pub fn roles(p: &Plugin) -> String {
    let names = [
        (WP_ROLE_CASE, "test/act"),
        (WP_ROLE_REWRITE, "rewrite"),
        (WP_ROLE_FILTER, "filter"),
        (WP_ROLE_TRANSFORM, "transform"),
    ];
    let on: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| p.roles & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    on.join(" + ")
}

/// For `--check-config` and logs: one line per loaded case.
pub fn describe(p: &Plugin) -> String {
    // Methods mean something only to a case that acts; a filter sees every answer.
    let methods = match (&p.allow, p.acts()) {
        (_, false) => String::new(),
        (Some(a), true) => format!(", {}", a.join(", ")),
        (None, true) => ", any method".into(),
    };
    format!(
        "{} {} (ABI {}.{}{methods}{}; {}) {}",
        p.name,
        p.version,
        p.abi.0,
        p.abi.1,
        if p.may_block {
            ", off the event loop"
        } else {
            ""
        },
        roles(p),
        p.path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_that_could_not_be_mapped_is_put_down_to_memory_not_the_plugin() {
        // What glibc's loader says under `prlimit --as=32M`, and for a file that is no library.
        let mapped = "libhello.so: failed to map segment from shared object";
        assert!(load_fix(mapped, "hello", "s.toml").contains("address-space limit"));
        let garbage = "libhello.so: invalid ELF header";
        assert!(load_fix(garbage, "hello", "s.toml").starts_with("rebuild the plugin"));
    }

    #[test]
    fn a_plugin_message_cannot_forge_a_line_or_send_an_escape() {
        let forged = b"bad key\r\n2026-11-28 [ERROR] forged\x1b[31m";
        assert_eq!(
            escaped(forged, false),
            "bad key\\r\\n2026-11-28 [ERROR] forged\\u{1b}[31m"
        );
        assert_eq!(
            escaped(b"bad key\n  fix: this\nX-Inj: 1", true),
            "bad key\n  fix: this\n  X-Inj: 1"
        );
        let long = escaped(&[b'a'; MESSAGE_MAX + 10], false);
        assert!(long.ends_with("… (10 bytes more)"), "{long}");
    }

    #[test]
    fn a_dropped_request_comes_back_empty_with_its_room() {
        let mut a = OwnedRequest::new();
        a.set(Field::Method, b"GET");
        a.add_header(b"Host", b"example.org");
        a.add_var(b"REMOTE_USER", b"ann");
        a.set_numbers(5, 1, 2);
        a.seal();
        let arena = a.parts().arena.as_ptr();
        drop(a);
        let b = OwnedRequest::new();
        assert_eq!(b.parts().arena.as_ptr(), arena, "the same arena is reused");
        assert_eq!(b.var(b"REMOTE_USER"), None);
        b.with_raw(|raw| {
            assert_eq!((raw.header_count, raw.var_count), (0, 0));
            assert_eq!((raw.method.len, raw.body_len, raw.client_port), (0, 0, 0));
        });
    }

    #[test]
    fn a_field_set_after_sealing_is_in_the_view() {
        let mut a = OwnedRequest::new();
        a.set(Field::Path, b"/a");
        a.seal();
        a.set(Field::Path, b"/longer/path");
        a.with_raw(|raw| assert_eq!(raw.path.len, b"/longer/path".len()));
    }
}
