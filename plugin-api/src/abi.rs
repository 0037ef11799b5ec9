//! The `#[repr(C)]` types of plugin ABI 1.x, mirrored one to one by `include/case_plugin.h`.
//!
//! Rules (see `plugin-api/README.md`): the descriptor prefix up to `plugin_version` is frozen
//! forever; every struct starts with (or is reached through) a `struct_size`, and growth is
//! append-only within a major version. A host accepts a plugin iff the majors are equal and the
//! plugin's minor is not newer than the host's.

use std::ffi::{c_char, c_void};

/// Major version of the ABI. Part of the exported symbol's name (`wp_plugin_v1`).
pub const ABI_MAJOR: u32 = 1;
/// Minor version: bumped when fields or meanings are appended; older plugins keep loading.
pub const ABI_MINOR: u32 = 2;
/// The one symbol every plugin exports for ABI major 1.
pub const ENTRY_SYMBOL: &str = "wp_plugin_v1";
/// `sizeof(wp_plugin_desc)` in ABI 1.0: the least any 1.x plugin's descriptor may be. A later
/// 1.x host appends fields and must still load 1.0 plugins, treating the fields past their
/// `struct_size` as absent; so the host compares against this, never its own size.
pub const DESC_SIZE_1_0: u32 = 72;
/// `sizeof(wp_plugin_desc)` in ABI 1.1: a plugin declaring minor 1 or later has at least this.
pub const DESC_SIZE_1_1: u32 = 104;
/// `sizeof(wp_response)` in ABI 1.1: a host's table this large has `rewrite` and `set_var`.
pub const RESPONSE_SIZE_1_1: u32 = 88;
/// `sizeof(wp_request)` in ABI 1.1: a host's request this large has `vars`.
pub const REQUEST_SIZE_1_1: u32 = 200;
/// `sizeof(wp_host)` from ABI 1.1 on (with `stats` and `root`); a 1.0 host's table is 32
/// bytes.
pub const HOST_SIZE_1_1: u32 = 56;

/// `act` handled the request; the response is complete.
pub const WP_DONE: i32 = 0;
/// `act` declined before writing anything; the host tries the next case.
pub const WP_DECLINED: i32 = 1;
/// `act` failed; the host answers 500 if nothing was sent yet, else closes the connection.
pub const WP_ERROR: i32 = 2;
/// (1.1) `act` changed the request (`rewrite`, `set_var`) without answering: the chain goes
/// on at the next case, or after a `rewrite` from the first case again (at most 10 times).
/// From a plugin declaring minor 0 it counts as `WP_ERROR`.
pub const WP_CONTINUE: i32 = 3;

/// (1.1) The response headers the host owns: it frames the message and manages the
/// connection with them, so a filter's set, append and remove refuse them.
pub const HOST_OWNED_HEADERS: [&str; 12] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "date",
    "server",
    "content-range",
    "accept-ranges",
    "proxy-connection",
];

/// Is `name` one of [`HOST_OWNED_HEADERS`] (case-insensitive)?
pub fn host_owned_header(name: &[u8]) -> bool {
    HOST_OWNED_HEADERS
        .iter()
        .any(|o| name.eq_ignore_ascii_case(o.as_bytes()))
}

/// (1.1) `filter_head`: done with this response; no body calls follow.
pub const WP_PASS: i32 = 0;
/// (1.1) `filter_head`: the body goes through `filter_body` with the state stored in
/// `*state`; `filter_end` follows exactly once.
pub const WP_TRANSFORM: i32 = 1;
/// (1.1) `filter_head` failed: the host answers 500 instead (once through the filters).
pub const WP_FILTER_ERROR: i32 = 2;

/// (1.1) `filter_body`: all input consumed; output is in `out[..out_len]`.
pub const WP_BODY_OK: i32 = 0;
/// (1.1) `filter_body`: the output window is full; the host drains it and calls again with
/// the input not yet used (`in[in_used..]`) and the same flags.
pub const WP_BODY_MORE: i32 = 1;
/// (1.1) `filter_body` failed: the response is cut short (the connection closes).
pub const WP_BODY_ERROR: i32 = 2;

/// (1.1) `wp_body_io.flags`: push out what is held (the source paused).
pub const WP_IO_FLUSH: u32 = 1;
/// (1.1) `wp_body_io.flags`: the last input; finish the stream (return `WP_BODY_MORE` while
/// output remains, `WP_BODY_OK` once all of it is out).
pub const WP_IO_END: u32 = 2;

/// (1.1) Role: `test`/`act` answer requests (every 1.0 plugin).
pub const WP_ROLE_CASE: u32 = 1;
/// (1.1) Role: `act` may rewrite the request or set variables and return `WP_CONTINUE`.
pub const WP_ROLE_REWRITE: u32 = 2;
/// (1.1) Role: `filter_head` sees every response's head.
pub const WP_ROLE_FILTER: u32 = 4;
/// (1.1) Role: `filter_body` transforms bodies.
pub const WP_ROLE_TRANSFORM: u32 = 8;

/// (1.1) Filter flag: the transform is a content coding (compression). The host does not
/// call the filter for answers that already have a Content-Encoding, carry
/// `Cache-Control: no-transform`, or are partial (206) or a 205 (whose content the host
/// drops).
pub const WP_F_CONTENT_CODING: u32 = 1;

/// (1.1, from hosts of November 2026) `wp_head.flags`: the host says where the body came
/// from (the bit below means something). Earlier hosts leave `flags` zero.
pub const WP_HEAD_ORIGIN_KNOWN: u32 = 1;
/// `wp_head.flags`: the body is the host's own page for the status (a refusal of the host's,
/// or a case's `send_error`), not one a case or a script wrote itself; as it was when the
/// filter was called.
pub const WP_HEAD_HOST_PAGE: u32 = 2;

/// Flag: `test` and `act` may be called from several threads at once on one instance.
pub const WP_THREAD_SAFE: u32 = 1;
/// Flag: `act` may block for long (runs processes, talks to the network); the host runs it on
/// a worker thread off the event loop and streams what it writes.
pub const WP_MAY_BLOCK: u32 = 2;
/// Flag (1.2): `test` may return [`WP_TEST_FAULT`]. Hosts before 1.2 ignore the flag and
/// would take 2 as true, so a plugin returns it only when `wp_host.abi_minor >= 2`.
pub const WP_TEST_FAULTS: u32 = 4;

/// (1.2) `test` result: the test failed (a panic, an allocation that failed) and could not
/// say; the host answers that request 500 rather than let it go on past a case that may
/// have been guarding it. Only from a plugin that sets [`WP_TEST_FAULTS`].
pub const WP_TEST_FAULT: u8 = 2;

/// What the request's path is on disk (`wp_request.fs_kind`).
pub const WP_KIND_MISSING: u32 = 0;
/// A regular file.
pub const WP_KIND_FILE: u32 = 1;
/// A directory.
pub const WP_KIND_DIR: u32 = 2;
/// Anything else (socket, fifo, device).
pub const WP_KIND_OTHER: u32 = 3;

/// Log levels for `wp_host.log`.
pub const WP_LOG_ERROR: u32 = 1;
/// Warning.
pub const WP_LOG_WARN: u32 = 2;
/// Informational.
pub const WP_LOG_INFO: u32 = 3;
/// Debugging detail.
pub const WP_LOG_DEBUG: u32 = 4;

/// A borrowed byte string: `len` is authoritative; the host also puts a NUL at `ptr[len]`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WpStr {
    /// First byte (never NULL; an empty string points at a NUL).
    pub ptr: *const u8,
    /// Length in bytes, not counting the trailing NUL.
    pub len: usize,
}

/// One request header, as sent (names keep their case).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WpHeader {
    /// Field name.
    pub name: WpStr,
    /// Field value, with surrounding white space removed.
    pub value: WpStr,
}

/// The string fields of a [`WpRequest`], numbered in declaration order (hosts and the
/// testing kit keep one buffer per field, indexed by this).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `method`.
    Method = 0,
    /// `target`.
    Target,
    /// `path`.
    Path,
    /// `query`.
    Query,
    /// `version`.
    Version,
    /// `client_addr`.
    ClientAddr,
    /// `server_addr`.
    ServerAddr,
    /// `root`.
    Root,
    /// `fs_path`.
    FsPath,
}

/// The request, borrowed for the duration of one `test` or `act` call.
#[repr(C)]
pub struct WpRequest {
    /// `sizeof(wp_request)` as the host built it; fields past it are absent.
    pub struct_size: u32,
    /// What `fs_path` is: one of the `WP_KIND_*` values.
    pub fs_kind: u32,
    /// Method token, e.g. `GET`.
    pub method: WpStr,
    /// The request-target exactly as sent.
    pub target: WpStr,
    /// The path, percent-decoded and normalised (`.`/`..` removed); always starts with `/`.
    pub path: WpStr,
    /// The query string as sent, without the `?`; empty when there is none.
    pub query: WpStr,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: WpStr,
    /// Request headers in arrival order.
    pub headers: *const WpHeader,
    /// Number of entries in `headers`.
    pub header_count: usize,
    /// Client address, textual (`127.0.0.1`).
    pub client_addr: WpStr,
    /// Address the connection arrived on, textual.
    pub server_addr: WpStr,
    /// The document root (absolute, canonical).
    pub root: WpStr,
    /// `root` + `path`, confined to the root; no symlink in it leads outside the root.
    pub fs_path: WpStr,
    /// Size of the request body in bytes (already received by the host; read with `read_body`).
    pub body_len: u64,
    /// Client port.
    pub client_port: u16,
    /// Server port.
    pub server_port: u16,
    /// Reserved, zero.
    pub reserved: u32,
    /// (1.1) Variables earlier cases attached (`set_var`), as name/value pairs.
    pub vars: *const WpHeader,
    /// (1.1) Number of entries in `vars`.
    pub var_count: usize,
}

/// The response: host callbacks with a context pointer. Every call returns 0 on success and
/// -1 when refused (for example a header after the body started). The host copies whatever it
/// is given before returning, so no memory changes hands.
#[repr(C)]
pub struct WpResponse {
    /// `sizeof(wp_response)` as the host built it.
    pub struct_size: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Host context; pass it back unchanged.
    pub ctx: *mut c_void,
    /// Set the status code (200..=599: a final status HTTP defines a class for; 1xx are
    /// interim answers only the host sends). Default 200.
    pub set_status: extern "C" fn(ctx: *mut c_void, status: u16) -> i32,
    /// Add a response header, its value trimmed of whitespace at both ends. The host refuses
    /// names or values with CR, LF or NUL, the headers it owns (Transfer-Encoding,
    /// Connection, Keep-Alive, TE, Trailer, Upgrade, Date, Server, Proxy-Connection), and
    /// fields past 64 KiB in all. A Content-Length is accepted (digits only) as a
    /// promise: the host sends the answer with that length, without chunking, and an
    /// answer that writes less or more than it is broken off (the connection closes, or
    /// the HTTP/2 stream is reset), so the client sees it is incomplete.
    pub add_header: extern "C" fn(
        ctx: *mut c_void,
        name: *const u8,
        name_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> i32,
    /// Append body bytes (copied). The host may hold up to 64 KiB before sending status,
    /// headers and body, so a short answer gets a Content-Length. `len == 0` flushes: what
    /// was written goes to the client now (for output that trickles, like a slow script).
    /// After the first byte leaves, status and headers can no longer change.
    pub write: extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize) -> i32,
    /// Send a file as the whole body. The host opens it (refusing paths outside the root),
    /// adds Content-Type, Last-Modified and ETag, answers conditional and Range requests, and
    /// streams the bytes with sendfile. Must be the only body call.
    pub send_file: extern "C" fn(ctx: *mut c_void, path: *const u8, path_len: usize) -> i32,
    /// Answer with the host's error page for `status`; `message` (may be empty) is shown,
    /// HTML-escaped, under the escaped request path. Must come before anything is written.
    pub send_error:
        extern "C" fn(ctx: *mut c_void, status: u16, message: *const u8, len: usize) -> i32,
    /// Read up to `cap` bytes of the request body into `buf`; returns the count, 0 at the end.
    pub read_body: extern "C" fn(ctx: *mut c_void, buf: *mut u8, cap: usize) -> isize,
    /// Answer as if the client had asked for this local path (`/...`, may carry `?query`)
    /// with GET: the host runs the chain again (RFC 3875 local redirect). Must come before
    /// anything is written.
    pub redirect: extern "C" fn(ctx: *mut c_void, target: *const u8, len: usize) -> i32,
    /// (1.1) Go on with a changed request: `target` is `/path` or `/path?query`; the host
    /// decodes, normalises, confines and looks it up again, keeping method, headers and body.
    /// Only before anything is written, and `act` must then return `WP_CONTINUE`.
    pub rewrite: extern "C" fn(ctx: *mut c_void, target: *const u8, len: usize) -> i32,
    /// (1.1) Attach a variable for later cases (and CGI scripts): name `[A-Z][A-Z0-9_]*`, at
    /// most 64 bytes, not PATH, LD_*, HTTP_* or a CGI meta-variable other than REMOTE_USER
    /// and AUTH_TYPE; value without CR, LF or NUL. Setting a name again replaces it.
    pub set_var: extern "C" fn(
        ctx: *mut c_void,
        name: *const u8,
        name_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> i32,
}

/// (1.1) A response head under a filter's hands, with host callbacks (0 on success, -1 when
/// refused). The framing headers (Content-Length, Transfer-Encoding, Connection, Keep-Alive,
/// Upgrade, TE, Trailer, Date, Server, Content-Range, Accept-Ranges, Proxy-Connection) are the
/// host's: set, append and remove refuse them. Values set are trimmed of whitespace at both
/// ends; the strings lent by `header_at` and `get_header` are not NUL-terminated.
#[repr(C)]
pub struct WpHead {
    /// `sizeof(wp_head)` as the host built it.
    pub struct_size: u32,
    /// `WP_HEAD_*` bits (zero from hosts that do not set them: it was reserved).
    pub flags: u32,
    /// Host context; pass it back unchanged.
    pub ctx: *mut c_void,
    /// The status code.
    pub status: extern "C" fn(ctx: *mut c_void) -> u16,
    /// Change the status (200..=599, not 206 or 304). Without a new body the host sends its
    /// own page for the new status.
    pub set_status: extern "C" fn(ctx: *mut c_void, status: u16) -> i32,
    /// Number of headers.
    pub header_count: extern "C" fn(ctx: *mut c_void) -> usize,
    /// Header `i` (valid until the next edit); -1 past the end.
    pub header_at:
        extern "C" fn(ctx: *mut c_void, i: usize, name: *mut WpStr, value: *mut WpStr) -> i32,
    /// The first value of a header (case-insensitive name); -1 when absent.
    pub get_header:
        extern "C" fn(ctx: *mut c_void, name: *const u8, len: usize, value: *mut WpStr) -> i32,
    /// Replace every header of this name by one with this value.
    pub set_header: extern "C" fn(
        ctx: *mut c_void,
        name: *const u8,
        name_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> i32,
    /// Add a header, keeping others of the same name.
    pub append_header: extern "C" fn(
        ctx: *mut c_void,
        name: *const u8,
        name_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> i32,
    /// Remove every header of this name (0 also when there was none).
    pub remove_header: extern "C" fn(ctx: *mut c_void, name: *const u8, len: usize) -> i32,
    /// Add a token to Vary, merged case-insensitively. Call it whenever the decision read a
    /// request header, also when the filter then passes.
    pub vary_add: extern "C" fn(ctx: *mut c_void, token: *const u8, len: usize) -> i32,
    /// Replace the body with these bytes (copied).
    pub replace_body_bytes: extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize) -> i32,
    /// Replace the body with a file beneath the root (an absolute path), opened now;
    /// refused (-1, nothing replaced) for another path or a file that cannot be opened.
    pub replace_body_file: extern "C" fn(ctx: *mut c_void, path: *const u8, len: usize) -> i32,
    /// The body's length in bytes, or -1 when unknown (a stream).
    pub body_length: extern "C" fn(ctx: *mut c_void) -> i64,
}

/// (1.1) The windows of one `filter_body` call, both lent by the host for the call only.
#[repr(C)]
pub struct WpBodyIo {
    /// Input bytes.
    pub input: *const u8,
    /// Number of input bytes.
    pub in_len: usize,
    /// Set by the filter: input bytes consumed.
    pub in_used: usize,
    /// The output window.
    pub out: *mut u8,
    /// Its size.
    pub out_cap: usize,
    /// Set by the filter: output bytes written.
    pub out_len: usize,
    /// `WP_IO_FLUSH`, `WP_IO_END`.
    pub flags: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Where `create` reports why it refused its settings (host-owned).
#[repr(C)]
pub struct WpErrorSink {
    /// Host context.
    pub ctx: *mut c_void,
    /// Record the message (copied).
    pub set: extern "C" fn(ctx: *mut c_void, msg: *const u8, len: usize),
}

/// Services the host lends an instance (passed to `create`): valid until that instance's
/// `destroy` returns (or `create` refuses), then freed. Keep no pointer to it past that.
#[repr(C)]
pub struct WpHost {
    /// `sizeof(wp_host)` as the host built it.
    pub struct_size: u32,
    /// The host's ABI major.
    pub abi_major: u32,
    /// The host's ABI minor.
    pub abi_minor: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Write a line to the server log, tagged with the plugin's name.
    pub log: extern "C" fn(host: *const WpHost, level: u32, msg: *const u8, len: usize),
    /// Host context.
    pub ctx: *mut c_void,
    /// (1.1) The host's counters as JSON text (requests by status and by case, bytes, a
    /// latency histogram, connections, uptime, the chain...): writes up to `cap` bytes at
    /// `out` and returns the full length (call again with a larger buffer when it is more).
    pub stats: Option<extern "C" fn(host: *const WpHost, out: *mut u8, cap: usize) -> usize>,
    /// (1.1) The document root, canonical, so `create` can check paths in its settings;
    /// valid as long as the table. Present when `struct_size >= HOST_SIZE_1_1`.
    pub root: WpStr,
}

/// Create an instance from the plugin's settings (JSON text of its `[plugins.NAME]` table,
/// `{}` when absent). NULL means refused; the reason goes to `err`.
pub type WpCreateFn = extern "C" fn(
    host: *const WpHost,
    cfg: *const u8,
    cfg_len: usize,
    err: *const WpErrorSink,
) -> *mut c_void;
/// Destroy an instance made by `create`.
pub type WpDestroyFn = extern "C" fn(inst: *mut c_void);
/// The chapter's `test`: a pure predicate, non-zero when this case handles the request.
pub type WpTestFn = extern "C" fn(inst: *mut c_void, req: *const WpRequest) -> u8;
/// The chapter's `act`: answers through `resp`; returns `WP_DONE`, `WP_DECLINED`, `WP_ERROR`,
/// or (1.1) `WP_CONTINUE`.
pub type WpActFn =
    extern "C" fn(inst: *mut c_void, req: *const WpRequest, resp: *const WpResponse) -> i32;
/// (1.1) See a response's head before it is written: edit it through `head`; return
/// `WP_PASS`, `WP_TRANSFORM` (after storing a state in `*state`) or `WP_FILTER_ERROR`.
pub type WpFilterHeadFn = extern "C" fn(
    inst: *mut c_void,
    req: *const WpRequest,
    head: *const WpHead,
    state: *mut *mut c_void,
) -> i32;
/// (1.1) Transform one window of body: `WP_BODY_OK`, `WP_BODY_MORE` or `WP_BODY_ERROR`.
pub type WpFilterBodyFn =
    extern "C" fn(inst: *mut c_void, state: *mut c_void, io: *mut WpBodyIo) -> i32;
/// (1.1) Free a transform's state; `aborted` is 1 when the body did not reach its end.
pub type WpFilterEndFn = extern "C" fn(inst: *mut c_void, state: *mut c_void, aborted: u8);

/// The static descriptor returned by `wp_plugin_v1()`. The prefix up to `plugin_version` is
/// frozen forever: a host reads it before calling anything else.
#[repr(C)]
pub struct WpPluginDesc {
    /// ABI major the plugin was built for.
    pub abi_major: u32,
    /// ABI minor the plugin was built for.
    pub abi_minor: u32,
    /// `sizeof(wp_plugin_desc)` in the plugin's header.
    pub struct_size: u32,
    /// `WP_THREAD_SAFE`, `WP_MAY_BLOCK`.
    pub flags: u32,
    /// The case name; must equal the name in `server.toml`. `[a-z0-9_]+`, NUL-terminated.
    pub name: *const c_char,
    /// The plugin's own version, free text, NUL-terminated.
    pub plugin_version: *const c_char,
    /// Methods the case answers, as for an `Allow` header (`GET, HEAD`); `*` for any method.
    /// A request whose method is not listed gets 405 from the host.
    pub allow: *const c_char,
    /// See [`WpCreateFn`].
    pub create: Option<WpCreateFn>,
    /// See [`WpDestroyFn`].
    pub destroy: Option<WpDestroyFn>,
    /// See [`WpTestFn`].
    pub test: Option<WpTestFn>,
    /// See [`WpActFn`]. (1.1: may be NULL, with `test`, for a filter-only plugin.)
    pub act: Option<WpActFn>,
    /// (1.1) `WP_ROLE_*` bits: what the plugin takes part in.
    pub roles: u32,
    /// (1.1) `WP_F_*` bits for its filter.
    pub filter_flags: u32,
    /// (1.1) See [`WpFilterHeadFn`]; NULL without `WP_ROLE_FILTER`.
    pub filter_head: Option<WpFilterHeadFn>,
    /// (1.1) See [`WpFilterBodyFn`]; NULL without `WP_ROLE_TRANSFORM`.
    pub filter_body: Option<WpFilterBodyFn>,
    /// (1.1) See [`WpFilterEndFn`]; required with `filter_body`.
    pub filter_end: Option<WpFilterEndFn>,
}

// Both sides assert the layout: these numbers are also checked by `include/case_plugin.h`
// (`_Static_assert`) on 64-bit targets.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<WpStr>() == 16);
    assert!(std::mem::size_of::<WpHeader>() == 32);
    assert!(std::mem::size_of::<WpRequest>() == 200);
    assert!(std::mem::size_of::<WpResponse>() == 88);
    assert!(std::mem::size_of::<WpHead>() == 112);
    assert!(std::mem::size_of::<WpBodyIo>() == 56);
    assert!(std::mem::size_of::<WpErrorSink>() == 16);
    assert!(std::mem::size_of::<WpHost>() == HOST_SIZE_1_1 as usize);
    assert!(std::mem::size_of::<WpPluginDesc>() == 104);
    assert!(std::mem::size_of::<WpPluginDesc>() == DESC_SIZE_1_1 as usize);
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_crate_version_is_the_abi_version() {
        let abi = format!("{}.{}.", super::ABI_MAJOR, super::ABI_MINOR);
        assert!(
            env!("CARGO_PKG_VERSION").starts_with(&abi),
            "bump one with the other"
        );
    }
}
