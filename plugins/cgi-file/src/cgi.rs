//! The CGI/1.1 engine: find the script and PATH_INFO, build the meta-variables, run it with a
//! timeout in its own process group, parse its header block, stream its body.

use crate::CgiFile;
use plugin_api::{Kind, Level, Outcome, Request, Response};
use rustix::process::{Pid, PidfdFlags};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Largest CGI header block accepted.
const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// Once the script itself has exited, what its children still write is passed on while it
/// keeps coming; this long a silence ends the answer. A background child that keeps stdout
/// open (`sleep 60 &`, a job started without redirecting it) is not waited for, and its
/// script's answer is not cut off at `timeout`.
const AFTER_EXIT: Duration = Duration::from_secs(1);

/// Find `prog` (a bare name) on `path`, or take it as given when it contains a '/'.
pub fn which(prog: &str, path: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return p.is_file().then_some(p);
    }
    path.split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}

/// Walk the URL path to the first segment that is a regular file: that is the script; the
/// rest is PATH_INFO. Returns (script URL path, script file, PATH_INFO).
fn locate(req: &Request, dir: &str) -> Option<(String, PathBuf, String)> {
    let path = req.path();
    let root = req.root();
    let rest = path.strip_prefix(dir)?;
    let mut url = dir.trim_end_matches('/').to_string();
    let mut fs = root.join(dir.trim_start_matches('/'));
    let segs: Vec<&str> = rest.split('/').collect();
    for seg in segs {
        if seg.is_empty() {
            return None;
        }
        url.push('/');
        url.push_str(seg);
        fs.push(seg);
        let meta = std::fs::metadata(&fs).ok()?;
        if meta.is_file() {
            // The rest of the path, as it came: "/a/" for script/a/, "/" for script/.
            let info = path[url.len()..].to_string();
            return Some((url, fs, info));
        }
        if !meta.is_dir() {
            return None;
        }
    }
    None
}

/// An `anywhere` script with more path after it, as Apache and lighttpd run `/app.py/users/7`:
/// the path walked as in a CGI folder to its first regular file, which must end in one of
/// `exts`; the rest is `PATH_INFO`. Only paths holding `<ext>/` cost a look at the disk.
pub fn anywhere_with_info(exts: &[String], req: &Request) -> Option<(String, PathBuf, String)> {
    let path = req.path_bytes();
    let named = exts.iter().any(|e| {
        let e = e.as_bytes();
        path.windows(e.len() + 1)
            .any(|w| w[..e.len()] == *e && w[e.len()] == b'/')
    });
    let (name, script, info) = if named {
        locate(req, "/")?
    } else {
        return None;
    };
    exts.iter()
        .any(|e| name.ends_with(e.as_str()))
        .then_some((name, script, info))
}

/// A slot among `max_running`; given back on drop.
struct Running<'a>(&'a CgiFile);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut n = self.0.running.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        self.0.freed.notify_one();
    }
}

/// Wait up to `queue_timeout` for a free slot.
fn acquire(cfg: &CgiFile) -> Option<Running<'_>> {
    let n = cfg.running.lock().unwrap_or_else(|e| e.into_inner());
    let (mut n, _) = cfg
        .freed
        .wait_timeout_while(n, cfg.queue_timeout, |n| *n >= cfg.max_running)
        .unwrap_or_else(|e| e.into_inner());
    if *n >= cfg.max_running {
        return None;
    }
    *n += 1;
    Some(Running(cfg))
}

/// Say in the log that requests find every place taken, at most every 10 s (the access
/// log shows each 503).
fn warn_full(cfg: &CgiFile) {
    let mut last = cfg.warned.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    if last.is_some_and(|t| now - t < Duration::from_secs(10)) {
        return;
    }
    *last = Some(now);
    let msg = format!(
        "all {} script places stayed taken for queue_timeout ({:?}): answering 503\n  fix: raise max_running in [plugins.cgi_file] if the machine has room, or look for scripts that take long (timeout)",
        cfg.max_running, cfg.queue_timeout
    );
    cfg.host.log(Level::Warn, &msg);
}

/// Answer the request by running the script.
pub fn run(cfg: &CgiFile, req: &Request, resp: &mut Response) -> Outcome {
    if plugin_api::helpers::needs_slash(req) {
        return plugin_api::helpers::redirect_to_folder(req, resp);
    }
    if req.kind() == Kind::Dir {
        return resp.error(403, "a CGI folder is not listed").into();
    }
    // PATH_INFO and SCRIPT_NAME are text to the script; bytes that are not UTF-8 would
    // reach it changed, so they are refused (RFC 3875 §4.1.5 allows it; lighttpd 1.4.69
    // passes the raw bytes instead).
    if std::str::from_utf8(req.path_bytes()).is_err() {
        return resp.error(400, "the path is not UTF-8 text").into();
    }
    let path = req.path().into_owned();
    let located = match cfg.dirs.iter().find(|d| path.starts_with(d.as_str())) {
        Some(dir) => locate(req, dir),
        // An `anywhere` script: the request path is the script itself, no PATH_INFO.
        None if req.kind() == Kind::File => {
            Some((path.clone(), req.fs_path().to_path_buf(), String::new()))
        }
        // Or one with more path after it (`/app.py/users/7`).
        None => anywhere_with_info(&cfg.anywhere, req),
    };
    let Some((script_name, script, path_info)) = located else {
        return resp.error(404, "no such script").into();
    };
    // The host confines the request path; the script's own path is checked here too, since
    // it is a prefix of it found by our own walk.
    let root = req.root();
    match script.canonicalize() {
        Ok(c) if c.starts_with(root) => {}
        // As the host answers a link out of the root: as if absent, so nothing says
        // the link is there.
        _ => return resp.error(404, "no such script").into(),
    }
    let ext = script
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()));
    let interpreter = ext.as_ref().and_then(|e| cfg.interp_paths.get(e));
    let executable = std::fs::metadata(&script)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if interpreter.is_none() && !executable {
        return resp
            .error(
                403,
                "this file is in a CGI folder but is not a runnable script",
            )
            .into();
    }
    let Some(_slot) = acquire(cfg) else {
        warn_full(cfg);
        let _ = resp.header("Retry-After", "1");
        return resp
            .error(503, "too many scripts are running; try again shortly")
            .into();
    };

    // The request body, already received by the host.
    let mut body = Vec::with_capacity(req.body_len() as usize);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match resp.read_body(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(_) => return Outcome::Error,
        }
    }

    let mut cmd = match interpreter {
        Some(prog) => {
            let mut c = Command::new(prog);
            c.arg(&script);
            c
        }
        None => Command::new(&script),
    };
    cmd.env_clear()
        .envs(meta_variables(cfg, req, &script_name, &script, &path_info))
        .current_dir(script.parent().unwrap_or(root))
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = script_name.clone();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            cfg.host
                .log(Level::Error, &format!("{shown}: cannot start: {e}"));
            return resp.error(502, "the script could not be started").into();
        }
    };
    let pid = child.id();

    // stdin: the body, from its own thread so a script that writes before reading cannot
    // deadlock with us.
    let stdin = child.stdin.take();
    let writer = (!body.is_empty()).then(|| {
        std::thread::spawn(move || {
            if let Some(mut s) = stdin {
                let _ = s.write_all(&body);
            }
        })
    });
    // stdout and stderr are read by one poll loop with the deadline as its timeout: no
    // watchdog or logger thread per request.
    let mut pipes = Pipes {
        out: child.stdout.take().expect("stdout is piped"),
        err: child.stderr.take(),
        line: Vec::new(),
        deadline: Instant::now() + cfg.timeout,
        idle: cfg.timeout,
        tag: &shown,
        host: &cfg.host,
        timed_out: false,
        eof: false,
        exit: Pid::from_raw(pid as i32)
            .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok()),
        exited: false,
    };
    let outcome = relay(&mut pipes, req, resp, &shown, cfg);
    // Stopped early (error, timeout, a client that went away, HEAD): the script must not
    // run on unread, nor block us in wait().
    let stopped = outcome != Outcome::Done || pipes.timed_out || !pipes.eof;
    if stopped {
        kill_group(pid);
    }
    let status = child.wait();
    pipes.drain_stderr();
    if let Some(w) = writer {
        let _ = w.join();
    }
    if let Ok(st) = status {
        // A script we stopped ends by our signal: nothing to report about it.
        if !st.success() && !stopped {
            cfg.host
                .log(Level::Warn, &format!("{shown}: exited with {st}"));
        }
    }
    outcome
}

fn kill_group(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// A running script's output pipes, read by one poll loop with a deadline.
struct Pipes<'a> {
    out: std::process::ChildStdout,
    err: Option<std::process::ChildStderr>,
    /// A stderr line still being received.
    line: Vec<u8>,
    /// When the script is stopped unless stdout gives more.
    deadline: Instant,
    /// How long stdout may stay silent: each read moves the deadline this far on, so a
    /// script that streams runs as long as it streams (nginx's `fastcgi_read_timeout`,
    /// lighttpd's read timeout).
    idle: Duration,
    tag: &'a str,
    host: &'a plugin_api::Host,
    timed_out: bool,
    /// stdout was read to its end, or went silent after the script exited.
    eof: bool,
    /// Readable once the script exits (a pidfd); `None` after that, or where the kernel
    /// has none (before Linux 5.3), where only the end of stdout ends the answer.
    exit: Option<rustix::fd::OwnedFd>,
    /// The script has exited: silence for `AFTER_EXIT` is the end of its answer.
    exited: bool,
}

fn timespec(d: Duration) -> rustix::event::Timespec {
    rustix::event::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    }
}

impl Pipes<'_> {
    /// Does stdout have bytes (or EOF) to read without waiting?
    fn readable_now(&self) -> bool {
        use rustix::event::{poll, PollFd, PollFlags};
        let mut fds = [PollFd::new(&self.out, PollFlags::IN)];
        poll(&mut fds, Some(&timespec(Duration::ZERO))).is_ok_and(|n| n > 0)
    }

    /// Read stdout, logging stderr as it comes; `TimedOut` once the deadline passes.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use rustix::event::{poll, PollFd, PollFlags};
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() && self.exited {
                self.host.log(
                    Level::Info,
                    &format!(
                        "{}: exited; a child of it holds stdout open, not waited for",
                        self.tag
                    ),
                );
                self.eof = true;
                return Ok(0);
            }
            if left.is_zero() {
                self.timed_out = true;
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let ready = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
            let (out_ready, err_ready, exited) = {
                let mut fds = vec![PollFd::new(&self.out, PollFlags::IN)];
                let err_at = fds.len();
                if let Some(e) = &self.err {
                    fds.push(PollFd::new(e, PollFlags::IN));
                }
                let exit_at = fds.len();
                if let Some(x) = &self.exit {
                    fds.push(PollFd::new(x, PollFlags::IN));
                }
                match poll(&mut fds, Some(&timespec(left))) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
                let is_ready = |i: usize| fds.get(i).is_some_and(|f| f.revents().intersects(ready));
                (
                    fds[0].revents().intersects(ready),
                    self.err.is_some() && is_ready(err_at),
                    self.exit.is_some() && is_ready(exit_at),
                )
            };
            if err_ready {
                self.read_stderr();
            }
            if exited {
                self.exit = None;
                self.exited = true;
                self.idle = AFTER_EXIT.min(self.idle);
                self.deadline = self.deadline.min(Instant::now() + self.idle);
            }
            if out_ready {
                let n = self.out.read(buf)?;
                self.eof |= n == 0;
                self.deadline = Instant::now() + self.idle;
                return Ok(n);
            }
        }
    }

    /// Read what stderr has and log every complete line, tagged with the script.
    fn read_stderr(&mut self) {
        let Some(e) = self.err.as_mut() else { return };
        let mut chunk = [0u8; 4096];
        match e.read(&mut chunk) {
            Ok(0) | Err(_) => {
                self.err = None;
                self.flush_line();
            }
            Ok(n) => {
                self.line.extend_from_slice(&chunk[..n]);
                while let Some(i) = self.line.iter().position(|&b| b == b'\n') {
                    let rest = self.line.split_off(i + 1);
                    self.flush_line();
                    self.line = rest;
                }
                if self.line.len() > 1 << 16 {
                    self.flush_line();
                }
            }
        }
    }

    fn flush_line(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        self.host
            .log(Level::Warn, &format!("{}: {}", self.tag, text.trim_end()));
        self.line.clear();
    }

    /// Read stdout to its end (or the deadline) and drop it, so the script runs to its end.
    fn discard_rest(&mut self, chunk: &mut [u8]) {
        while self.read(chunk).is_ok_and(|n| n > 0) {}
    }

    /// After the script exited: log what is left on stderr, waiting briefly for its end (a
    /// background child may hold the pipe open; it is not waited for).
    fn drain_stderr(&mut self) {
        use rustix::event::{poll, PollFd, PollFlags};
        let until = Instant::now() + Duration::from_millis(200);
        while let Some(e) = &self.err {
            let left = until.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(e, PollFlags::IN)];
            if left.is_zero() || !poll(&mut fds, Some(&timespec(left))).is_ok_and(|n| n > 0) {
                break;
            }
            self.read_stderr();
        }
        self.flush_line();
    }
}

/// Read the header block, answer with it, then stream the body.
fn relay(
    out: &mut Pipes,
    req: &Request,
    resp: &mut Response,
    shown: &str,
    cfg: &CgiFile,
) -> Outcome {
    let log = |msg: &str| cfg.host.log(Level::Error, &format!("{shown}: {msg}"));
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 64 * 1024];
    let (head_end, body_start) = loop {
        if let Some(x) = find_blank_line(&buf) {
            break x;
        }
        if buf.len() > MAX_HEADER_BLOCK {
            log("header block is larger than 64 KiB");
            return resp.error(502, "the script's answer is malformed").into();
        }
        match out.read(&mut chunk) {
            Ok(0) | Err(_) => {
                if out.timed_out {
                    log(&format!("killed after {:?} without output", cfg.timeout));
                    return resp.error(504, "the script took too long").into();
                }
                if buf.is_empty() {
                    log("wrote nothing");
                } else {
                    log("output ended before its header block did");
                }
                return resp.error(502, "the script gave no valid answer").into();
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let headers = match parse_headers(&buf[..head_end]).and_then(one_length) {
        Ok(h) => h,
        Err(why) => {
            log(&why);
            return resp.error(502, "the script's answer is malformed").into();
        }
    };
    let mut status: Option<u16> = None;
    let mut location: Option<String> = None;
    let mut has_type = false;
    for (n, v) in &headers {
        if n.eq_ignore_ascii_case("status") {
            let v = String::from_utf8_lossy(v);
            let code = v
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok());
            match code {
                // A final answer: 1xx cannot be one, and codes end at 599 (RFC 9110 §15).
                Some(c) if (200..=599).contains(&c) && v.len() >= 3 => status = Some(c),
                _ => {
                    log(&format!("bad Status line {v:?}"));
                    return resp.error(502, "the script's answer is malformed").into();
                }
            }
        } else if n.eq_ignore_ascii_case("location") {
            location = Some(String::from_utf8_lossy(v).into_owned());
        } else if n.eq_ignore_ascii_case("content-type") {
            has_type = true;
        }
    }
    if let (Some(loc), None) = (&location, status) {
        if loc.starts_with('/') {
            // RFC 3875 §6.2.2: a local redirect is answered by the server as a new GET,
            // once the script has finished (its output is read and dropped, as Apache does).
            out.discard_rest(&mut chunk);
            return resp.redirect(loc).into();
        }
    }
    let status = status.unwrap_or(if location.is_some() { 302 } else { 200 });
    if !has_type && location.is_none() && status != 204 && status != 304 {
        log("no Content-Type in the header block");
    }
    if resp.status(status).is_err() {
        return Outcome::Error;
    }
    let hop = connection_options(&headers);
    for (n, v) in &headers {
        if n.eq_ignore_ascii_case("status") || hop.iter().any(|h| h.eq_ignore_ascii_case(n)) {
            continue;
        }
        // Hop-by-hop and framing headers belong to the server; drop them quietly.
        let _ = resp.header_bytes(n.as_bytes(), v);
    }
    // HEAD runs the script like GET, so its headers are the same; the host sends no body,
    // nor for 204 and 304, and refuses one: that refusal is no failure.
    let no_body = req.method() == "HEAD" || status == 204 || status == 304;
    let declared = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok());
    if stream_body(out, resp, &buf[body_start..], &mut chunk, declared).is_err() {
        // The client went away (or takes no body): the script is stopped.
        return if no_body {
            Outcome::Done
        } else {
            Outcome::Error
        };
    }
    if out.timed_out {
        log(&format!(
            "killed after {:?} without output, while sending its body",
            cfg.timeout
        ));
        return Outcome::Error;
    }
    Outcome::Done
}

/// Send the body: `first` (read with the header block), then the rest as it comes. Output
/// past the script's own Content-Length is read and dropped, as nginx and lighttpd cut it.
/// `Err` when the host takes no more (the client went away, or the answer has no body).
fn stream_body(
    out: &mut Pipes,
    resp: &mut Response,
    first: &[u8],
    chunk: &mut [u8],
    mut left: Option<u64>,
) -> Result<(), ()> {
    let mut send = |resp: &mut Response, data: &[u8]| {
        let n = left.map_or(data.len(), |l| data.len().min(l as usize));
        if let Some(l) = left.as_mut() {
            *l -= n as u64;
        }
        match n {
            0 => Ok(()),
            n => resp.write(&data[..n]).map_err(drop),
        }
    };
    send(resp, first)?;
    loop {
        // Nothing more to read right now: let what is held reach the client. A script that
        // finishes quickly is answered whole, with a Content-Length.
        if !out.readable_now() {
            resp.flush().map_err(drop)?;
        }
        match out.read(chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => send(resp, &chunk[..n])?,
        }
    }
    if let Some(short) = left.filter(|&l| l > 0 && out.eof) {
        let why = format!(
            "{}: wrote {short} bytes fewer than its Content-Length",
            out.tag
        );
        out.host.log(Level::Warn, &why);
    }
    Ok(())
}

/// Where the header block ends and the body starts (LF or CRLF line ends).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        let next = &buf[nl + 1..];
        if next.starts_with(b"\n") {
            return Some((nl + 1, nl + 2));
        }
        if next.starts_with(b"\r\n") {
            return Some((nl + 1, nl + 3));
        }
        if nl == 0 || (nl == 1 && buf[0] == b'\r') {
            // An empty first line: no headers at all.
            return Some((0, nl + 1));
        }
        i = nl + 1;
    }
    None
}

/// The fields a script's `Connection` names: hop-by-hop, as Connection itself (which the
/// host owns), so they go with it (RFC 9110 §7.6.1), as a proxy drops them. Never the
/// CGI fields the answer is made of (Status, Location, Content-Type): those the script
/// meant for the server.
fn connection_options(headers: &[(String, Vec<u8>)]) -> Vec<String> {
    let lines = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"));
    let tokens = lines.flat_map(|(_, v)| v.split(|&b| b == b','));
    let names = tokens.map(|t| String::from_utf8_lossy(t.trim_ascii()).into_owned());
    let cgi = |t: &String| {
        ["status", "location", "content-type"]
            .iter()
            .any(|c| t.eq_ignore_ascii_case(c))
    };
    names.filter(|t| !t.is_empty() && !cgi(t)).collect()
}

/// Parse `Name: value` lines strictly: no obs-fold, no bare CR, no NUL, no control bytes.
fn parse_headers(block: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for raw in block.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err("folded header line (obs-fold) in the header block".into());
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(format!(
                "header line without ':': {:?}",
                String::from_utf8_lossy(line)
            ));
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
        if name.is_empty() || !name.iter().all(token) {
            return Err(format!(
                "bad header name {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(format!(
                "control character (CR, NUL...) in header {:?}: possible header injection",
                String::from_utf8_lossy(name)
            ));
        }
        // The value's bytes as they are: obs-text (bytes over 0x7f) is opaque (RFC 9110
        // §5.5), not text to repair. The name is a token, so ASCII.
        out.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Ok(out)
}

/// A script's Content-Length lines must name one length in digits: `3` and `5`, or `x`,
/// leave the body's end unknown, and a gateway answers 502 (RFC 9112 §6.3; nginx refuses a
/// duplicate Content-Length from upstream). Equal repeats (`5, 5`) are one length.
fn one_length(headers: Vec<(String, Vec<u8>)>) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut lengths = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii);
    let Some(first) = lengths.next() else {
        return Ok(headers);
    };
    let digits = !first.is_empty() && first.iter().all(u8::is_ascii_digit);
    if !digits || lengths.any(|l| l != first) {
        let all: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        return Err(format!("Content-Length {all:?} names no one length"));
    }
    // One line with the one length, where the first stood.
    let one = first.to_vec();
    let mut seen = false;
    Ok(headers
        .into_iter()
        .filter_map(|(n, v)| match n.eq_ignore_ascii_case("content-length") {
            true if seen => None,
            true => {
                seen = true;
                Some((n, one.clone()))
            }
            false => Some((n, v)),
        })
        .collect())
}

/// The request target without the scheme and authority of an absolute-form one
/// (`http://host/p?q` is `/p?q`), as REQUEST_URI is in nginx and lighttpd.
fn origin_form(target: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let scheme_end = target.windows(3).position(|w| w == b"://");
    let Some(at) = scheme_end.filter(|&at| !target[..at].contains(&b'/')) else {
        return target.into();
    };
    let rest = &target[at + 3..];
    match rest.iter().position(|&b| b == b'/' || b == b'?') {
        Some(i) if rest[i] == b'/' => rest[i..].into(),
        Some(i) => [&b"/"[..], &rest[i..]].concat().into(),
        None => (&b"/"[..]).into(),
    }
}

/// SERVER_NAME (RFC 3875 §4.1.14): the Host's name without its port, in one spelling
/// (lower case, no trailing dot, as lighttpd and nginx's $host give), or without a Host
/// our own address, an IPv6 one in brackets as a URL needs it.
fn server_name(req: &Request) -> String {
    let host = req.header("host").map(String::from_utf8_lossy);
    let name = host.as_deref().map_or("", |h| match h.find(']') {
        Some(end) if h.starts_with('[') => &h[..=end],
        _ => h.split(':').next().unwrap_or(""),
    });
    let name = name.strip_suffix('.').unwrap_or(name);
    if !name.is_empty() {
        return name.to_ascii_lowercase();
    }
    match req.server_addr() {
        a if a.contains(':') => format!("[{a}]"),
        a => a.to_string(),
    }
}

/// RFC 3875 §4.1 meta-variables, plus the common extras scripts expect.
fn meta_variables(
    cfg: &CgiFile,
    req: &Request,
    script_name: &str,
    script: &Path,
    path_info: &str,
) -> Vec<(String, OsString)> {
    let mut env: Vec<(String, OsString)> = Vec::new();
    let mut set = |k: &str, v: OsString| env.push((k.to_string(), v));
    set("GATEWAY_INTERFACE", "CGI/1.1".into());
    set(
        "SERVER_SOFTWARE",
        concat!("cases/", env!("CARGO_PKG_VERSION")).into(),
    );
    set("SERVER_NAME", server_name(req).into());
    set("SERVER_PORT", req.server_port().to_string().into());
    set("SERVER_ADDR", req.server_addr().into());
    set("SERVER_PROTOCOL", req.version().into());
    set("REQUEST_METHOD", req.method().into());
    set("SCRIPT_NAME", script_name.into());
    set("SCRIPT_FILENAME", script.into());
    set("DOCUMENT_ROOT", req.root().into());
    // What the client sent, byte for byte (obs-text included, RFC 9110 §5.5).
    set("REQUEST_URI", bytes(&origin_form(req.target())));
    if !path_info.is_empty() {
        set("PATH_INFO", path_info.into());
        let translated = req.root().join(path_info.trim_start_matches('/'));
        set("PATH_TRANSLATED", translated.into());
    }
    set("QUERY_STRING", bytes(req.query()));
    set("REMOTE_ADDR", req.client_addr().into());
    set("REMOTE_HOST", req.client_addr().into());
    set("REMOTE_PORT", req.client_port().to_string().into());
    // A body came (RFC 9112 §6: Content-Length or Transfer-Encoding says so), empty or not.
    let framed = ["content-length", "transfer-encoding"]
        .iter()
        .any(|h| req.header(h).is_some());
    if req.body_len() > 0 || framed {
        set("CONTENT_LENGTH", req.body_len().to_string().into());
    }
    if let Some(t) = req.header("content-type") {
        set("CONTENT_TYPE", bytes(t));
    }
    set("REDIRECT_STATUS", "200".into());
    // As nginx's fastcgi_params and lighttpd set it; HTTPS=on comes with the host's variables.
    let tls = req.var("HTTPS") == Some(b"on");
    set("REQUEST_SCHEME", if tls { "https" } else { "http" }.into());
    set("PATH", cfg.path.clone().into());
    // Variables earlier cases attached (ABI 1.1): REMOTE_USER and AUTH_TYPE from a case
    // that authenticated the request, and the like. The host refuses names that would
    // clash with the meta-variables above (PATH, LD_*, HTTP_*, SCRIPT_NAME...).
    for (n, v) in req.vars() {
        set(&String::from_utf8_lossy(n), bytes(v));
    }
    // Every request header as HTTP_*, except the ones RFC 3875 §4.1.18 says to leave out
    // (credentials, the body's framing) and `Proxy` (httpoxy: HTTP_PROXY would steer the
    // script's own outgoing requests).
    let mut http: Vec<(String, Vec<u8>)> = Vec::new();
    for (n, v) in req.headers() {
        let name = String::from_utf8_lossy(n);
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "proxy"
                | "authorization"
                | "proxy-authorization"
                | "content-length"
                | "content-type"
                | "transfer-encoding"
        ) || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            continue;
        }
        let key = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        match http.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => {
                // Cookie pairs are separated by "; " (RFC 6265 §4.2.1, RFC 9113 §8.2.3).
                old.extend_from_slice(if key == "HTTP_COOKIE" { b"; " } else { b", " });
                old.extend_from_slice(v);
            }
            None => http.push((key, v.to_vec())),
        }
    }
    env.extend(http.into_iter().map(|(k, v)| (k, OsString::from_vec(v))));
    for (k, v) in &cfg.env {
        env.push((k.clone(), v.into()));
    }
    env
}

/// Bytes as an environment value, unchanged (a Unix environment holds bytes, not text).
fn bytes(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_uri_is_the_origin_form_of_the_target() {
        let of = |t: &str| String::from_utf8(origin_form(t.as_bytes()).into_owned()).unwrap();
        assert_eq!(of("/cgi-bin/a.py/p?q=1"), "/cgi-bin/a.py/p?q=1");
        assert_eq!(
            of("http://Example.COM:9999/cgi-bin/a.py?q"),
            "/cgi-bin/a.py?q"
        );
        assert_eq!(of("https://h?q=1"), "/?q=1");
        assert_eq!(of("http://h"), "/");
        assert_eq!(of("/x?next=http://h/y"), "/x?next=http://h/y");
    }

    #[test]
    fn header_blocks_end_at_the_first_blank_line() {
        assert_eq!(find_blank_line(b"A: b\n\nbody"), Some((5, 6)));
        assert_eq!(find_blank_line(b"A: b\r\n\r\nbody"), Some((6, 8)));
        assert_eq!(find_blank_line(b"A: b\r\n"), None);
    }

    #[test]
    fn injection_and_folding_are_refused() {
        assert!(parse_headers(b"X: a\rInjected: b\n").is_err());
        assert!(parse_headers(b"X: a\n continued\n").is_err());
        assert!(parse_headers(b"X: a\0b\n").is_err());
        assert!(parse_headers(b"no colon\n").is_err());
        assert_eq!(
            parse_headers(b"Status: 404 Nope\r\nContent-Type: text/plain\r\n").unwrap(),
            vec![
                ("Status".into(), b"404 Nope".to_vec()),
                ("Content-Type".into(), b"text/plain".to_vec())
            ]
        );
    }

    #[test]
    fn bytes_past_ascii_in_a_value_are_kept_as_sent() {
        let parsed = parse_headers(b"X-Latin: caf\xe9\r\n").unwrap();
        assert_eq!(parsed, vec![("X-Latin".into(), b"caf\xe9".to_vec())]);
    }
}
