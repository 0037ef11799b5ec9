//! The access log: one line per request in nginx's "combined" format, to a file or stderr.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Where access lines go, and in which format.
pub struct AccessLog {
    to: Target,
    /// Lines start with the host and port (`access_log_format = "vhost_combined"`).
    pub vhost: bool,
}

/// Each `write` holds whole lines (O_APPEND for files), so lines from different event loops
/// never interleave; writers share the lock, a reopen takes it alone.
enum Target {
    File {
        /// The configured path, opened anew on SIGUSR1.
        path: PathBuf,
        file: RwLock<std::fs::File>,
    },
    Stderr,
}

impl AccessLog {
    /// `"-"` is stderr; anything else is a file opened for appending (created if missing).
    pub fn open(target: &str, base: &Path, vhost: bool) -> Result<AccessLog, String> {
        let to = match target {
            "-" => Target::Stderr,
            _ => {
                let path = base.join(target);
                let file = RwLock::new(append(&path)?);
                Target::File { path, file }
            }
        };
        Ok(AccessLog { to, vhost })
    }

    /// Write whole lines (each ending with a newline) now. A file that refuses them (a full
    /// disk) is reported in the error log, at most once a minute, as nginx does.
    pub fn write(&self, line: &[u8]) {
        match &self.to {
            Target::File { file, path } => {
                let file = file.read().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = (&*file).write_all(line) {
                    lost(path, &e);
                }
            }
            Target::Stderr => {
                let _ = std::io::stderr().lock().write_all(line);
            }
        }
    }

    /// Open the configured path anew and send the lines that follow there, as nginx does on
    /// SIGUSR1 after logrotate moved the file away. A line is written wholly before or wholly
    /// after the swap. On failure the old file stays in use. Returns the path reopened.
    pub fn reopen(&self) -> Result<Option<&Path>, String> {
        let Target::File { path, file } = &self.to else {
            return Ok(None);
        };
        let fresh = append(path)?;
        let old = std::mem::replace(&mut *file.write().unwrap_or_else(|e| e.into_inner()), fresh);
        // Closed here, after the lock is released: a slow close delays no writer.
        drop(old);
        Ok(Some(path))
    }
}

/// Count a write the access log file refused, and say so when the last report is a minute
/// old (the first at once): serving goes on, and writing resumes when the disk has room.
fn lost(path: &Path, e: &std::io::Error) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static LOST: AtomicU64 = AtomicU64::new(0);
    static REPORTED: AtomicU64 = AtomicU64::new(0);
    LOST.fetch_add(1, Relaxed);
    if crate::throttle::due(&REPORTED, 60) {
        let writes = LOST.swap(0, Relaxed);
        log::error!(
            "cannot write the access log {}: {e}; {writes} write(s) of access lines lost since the last report",
            path.display()
        );
    }
}

/// The most an event loop holds before writing: a pipe takes a write of at most this much
/// (PIPE_BUF) whole, so lines of workers sharing a stderr pipe never interleave.
const HOLD: usize = 4096;

/// The lines an event loop's connections logged and have not yet written.
struct Held {
    log: Option<Arc<AccessLog>>,
    lines: Vec<u8>,
}

impl Held {
    fn write(&mut self) {
        if let Some(log) = self.log.take() {
            log.write(&self.lines);
        }
        self.lines.clear();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.write();
    }
}

thread_local! {
    static HELD: RefCell<Held> = const {
        RefCell::new(Held { log: None, lines: Vec::new() })
    };
}

/// Hold the line `fill` formats for `log`, after its answer was sent (with the body bytes
/// that went out). The event loop writes what it holds whenever it has nothing else to run
/// (`write_held`), and at once past `HOLD` bytes: under load one write carries dozens of
/// lines instead of one each (lighttpd buffers its log too; nginx with `buffer=`), and no
/// connection waits for the write.
pub fn hold(log: &Arc<AccessLog>, fill: impl FnOnce(&mut Vec<u8>)) {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.log.as_ref().is_some_and(|l| !Arc::ptr_eq(l, log)) {
            held.write();
        }
        held.log = Some(Arc::clone(log));
        let start = held.lines.len();
        fill(&mut held.lines);
        if held.lines.len() > HOLD && start > 0 {
            log.write(&held.lines[..start]);
            held.lines.drain(..start);
        }
    })
}

/// Before a connection closes: the lines this event loop holds are written, after one turn
/// (so the connections answered in it add theirs: one write for all), so a client that
/// reads until our close finds its line in the file, as nginx writes its line before it
/// closes. A kept-alive answer's line is written when the loop next runs out of work.
pub async fn written_before_close() {
    if HELD.with(|held| held.borrow().lines.is_empty()) {
        return;
    }
    YieldOnce(false).await;
    write_held();
}

/// Pending once, waking itself: the task goes to the back of the event loop's queue, after
/// the tasks already ready. (tokio's `yield_now` defers the wake until the loop has polled
/// its driver, which costs an extra `epoll_wait` each turn.)
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Write what this thread holds. Each event loop calls it whenever it goes idle (before it
/// waits for events) and once more when it ends.
pub fn write_held() {
    HELD.with(|held| held.borrow_mut().write())
}

/// The access log's file, when it is a file (not stderr, not off).
pub fn file_path(config: &crate::config::Config) -> Option<PathBuf> {
    match config.access_log.as_deref() {
        None | Some("") | Some("-") => None,
        Some(target) => Some(crate::loops::config_dir(config).join(target)),
    }
}

/// What `--check-config` can tell of the access log without writing anything: its folder
/// exists, and the path is not a folder or the like (start-up opens it, as root when
/// started as root, and creates it).
pub fn check(config: &crate::config::Config) -> Result<(), String> {
    let Some(path) = file_path(config) else {
        return Ok(());
    };
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    if folder.is_some_and(|f| !f.is_dir()) {
        return Err(cannot_open(&path, "its folder does not exist"));
    }
    if path.exists() && !path.is_file() {
        return Err(cannot_open(&path, "it is not a regular file"));
    }
    Ok(())
}

/// Open `path` with O_APPEND|O_CREAT.
fn append(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| cannot_open(path, &e.to_string()))
}

fn cannot_open(path: &Path, why: &str) -> String {
    format!(
        "cannot open the access log {}: {why}\n  fix: create its folder (writable by the server), or set access_log to \"-\" (stderr) or \"\" (none) in server.toml",
        path.display()
    )
}

/// What one line records.
pub struct Entry<'a> {
    /// For `vhost_combined`: the host the request named (as sites are looked up by it) and
    /// the port it came in on.
    pub vhost: Option<(Option<&'a [u8]>, u16)>,
    pub client: std::net::IpAddr,
    /// `REMOTE_USER` as a case set it after checking credentials (nginx's `$remote_user`).
    pub user: Option<&'a [u8]>,
    /// Method, target and protocol ("HTTP/1.1", "HTTP/2.0"); `None` when the request line could
    /// not be read.
    pub request: Option<(&'a str, &'a [u8], &'a str)>,
    /// Without a request: the first line as it came (what a bad client sent, as nginx logs
    /// it), or empty.
    pub raw_line: &'a [u8],
    pub status: u16,
    /// Body bytes, when known up front.
    pub bytes: Option<u64>,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
}

/// Format a combined-log line: `addr - user [24/Nov/2026:00:53:06 +0000] "GET / HTTP/1.1" 200
/// 829 "referer" "agent"`, `-` for no user. Quotes, backslashes and control bytes in
/// client-sent fields are escaped as `\xHH` (and spaces in the unquoted user), so a request
/// cannot forge log lines or shift their fields.
pub fn format(out: &mut Vec<u8>, e: &Entry, imf_date: &str) {
    if let Some((host, port)) = e.vhost {
        vhost(out, host, port);
    }
    crate::digits::with_ip_text(e.client, |t| out.extend_from_slice(t));
    out.extend_from_slice(b" - ");
    match e.user.filter(|u| !u.is_empty()) {
        Some(user) => user_field(out, user),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" [");
    clf_date(out, imf_date);
    out.extend_from_slice(b"] \"");
    match e.request {
        Some((method, target, version)) => {
            escaped(out, method.as_bytes());
            out.push(b' ');
            escaped(out, target);
            out.push(b' ');
            out.extend_from_slice(version.as_bytes());
        }
        None if !e.raw_line.is_empty() => escaped(out, e.raw_line),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b"\" ");
    crate::digits::push_decimal(out, e.status.into());
    out.push(b' ');
    match e.bytes {
        Some(n) => crate::digits::push_decimal(out, n),
        None => out.push(b'-'),
    }
    for field in [e.referer, e.user_agent] {
        out.extend_from_slice(b" \"");
        match field {
            Some(v) => escaped(out, v),
            None => out.push(b'-'),
        }
        out.push(b'"');
    }
    out.push(b'\n');
}

/// `example.com:443 `: the host lower-case without its port and trailing dot (`-` for a
/// request without one), escaped as the other fields are; then the local port.
fn vhost(out: &mut Vec<u8>, host: Option<&[u8]>, port: u16) {
    match host.map(crate::sites::normalise) {
        Some(h) if !h.is_empty() => user_field(out, h.as_bytes()),
        _ => out.push(b'-'),
    }
    out.push(b':');
    crate::digits::push_decimal(out, port.into());
    out.push(b' ');
}

/// The user: unquoted in the combined format, so a space is escaped too.
fn user_field(out: &mut Vec<u8>, user: &[u8]) {
    for &b in user {
        match b {
            b' ' => out.extend_from_slice(b"\\x20"),
            b => escaped(out, &[b]),
        }
    }
}

/// Client-sent bytes, with quotes, backslashes and control bytes as `\xHH`; a field with
/// none of them (nearly all) is copied at once.
fn escaped(out: &mut Vec<u8>, v: &[u8]) {
    let plain = |b: &u8| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\';
    if v.iter().all(plain) {
        out.extend_from_slice(v);
        return;
    }
    for &b in v {
        if plain(&b) {
            out.push(b);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        }
    }
}

/// `Tue, 24 Nov 2026 00:53:06 GMT` → `24/Nov/2026:00:53:06 +0000`.
fn clf_date(out: &mut Vec<u8>, imf: &str) {
    match (
        imf.get(5..7),
        imf.get(8..11),
        imf.get(12..16),
        imf.get(17..25),
    ) {
        (Some(d), Some(m), Some(y), Some(t)) => {
            for (part, sep) in [(d, "/"), (m, "/"), (y, ":"), (t, " +0000")] {
                out.extend_from_slice(part.as_bytes());
                out.extend_from_slice(sep.as_bytes());
            }
        }
        _ => out.extend_from_slice(imf.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(e: &Entry) -> Vec<u8> {
        let mut out = Vec::new();
        format(&mut out, e, "Tue, 24 Nov 2026 00:53:06 GMT");
        out
    }

    #[test]
    fn vhost_combined_puts_the_host_and_port_first() {
        let e = |host: Option<&'static [u8]>| Entry {
            vhost: Some((host, 8443)),
            client: "10.0.0.1".parse().unwrap(),
            user: None,
            request: Some(("GET", b"/", "HTTP/1.1")),
            raw_line: b"",
            status: 200,
            bytes: Some(5),
            referer: None,
            user_agent: None,
        };
        let l = String::from_utf8(line(&e(Some(b"WWW.Example.COM.:8443")))).unwrap();
        assert!(l.starts_with("www.example.com:8443 10.0.0.1 - - ["), "{l}");
        let l = String::from_utf8(line(&e(None))).unwrap();
        assert!(l.starts_with("-:8443 10.0.0.1 - - ["), "{l}");
        // A host that was not checked (none here is) could not shift the fields.
        let l = String::from_utf8(line(&e(Some(b"a b\"\n")))).unwrap();
        assert!(l.starts_with("a\\x20b\\x22\\x0A:8443 10.0.0.1 "), "{l}");
    }

    #[test]
    fn combined_format_with_escaping() {
        let e = Entry {
            vhost: None,
            client: "127.0.0.1".parse().unwrap(),
            user: None,
            request: Some(("GET", b"/a\"b\n", "HTTP/1.1")),
            raw_line: b"",
            status: 404,
            bytes: Some(12),
            referer: None,
            user_agent: Some(b"curl/8"),
        };
        assert_eq!(
            String::from_utf8(line(&e)).unwrap(),
            "127.0.0.1 - - [24/Nov/2026:00:53:06 +0000] \"GET /a\\x22b\\x0A HTTP/1.1\" 404 12 \"-\" \"curl/8\"\n"
        );
    }

    #[test]
    fn a_request_line_that_could_not_be_read_is_logged_as_it_came_escaped() {
        let e = Entry {
            vhost: None,
            client: "127.0.0.1".parse().unwrap(),
            user: None,
            request: None,
            raw_line: b"\x16\x03\x01 \"GET\"",
            status: 400,
            bytes: Some(0),
            referer: None,
            user_agent: None,
        };
        assert_eq!(
            String::from_utf8(line(&e)).unwrap(),
            "127.0.0.1 - - [24/Nov/2026:00:53:06 +0000] \"\\x16\\x03\\x01 \\x22GET\\x22\" 400 0 \"-\" \"-\"\n"
        );
    }

    #[test]
    fn the_user_is_the_third_field_with_spaces_and_quotes_escaped() {
        let e = Entry {
            vhost: None,
            client: "::1".parse().unwrap(),
            user: Some(b"ann \"o\" b"),
            request: None,
            raw_line: b"",
            status: 200,
            bytes: None,
            referer: None,
            user_agent: None,
        };
        assert_eq!(
            String::from_utf8(line(&e)).unwrap(),
            "::1 - ann\\x20\\x22o\\x22\\x20b [24/Nov/2026:00:53:06 +0000] \"-\" 200 - \"-\" \"-\"\n"
        );
        let none = line(&Entry {
            vhost: None,
            user: Some(b""),
            ..e
        });
        assert!(none.starts_with(b"::1 - - ["));
    }
}
