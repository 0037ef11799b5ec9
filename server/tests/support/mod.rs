//! Test support: builds the workspace's plugins once, starts the real `server` binary on
//! 127.0.0.1:0 with a config of the test's own, and talks to it over real sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where cargo puts this build's artifacts (target/debug).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/tests-xxxx -> target/debug
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Build every plugin of the workspace once per test run (`cargo test` alone does not make
/// the cdylib files), so `cargo test --workspace` is the whole test command.
pub fn plugins_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--workspace", "--lib", "--bins", "--quiet"])
                .current_dir(workspace())
                .status()
                .expect("run cargo build for the plugins");
            assert!(status.success(), "building the plugins failed");
            target_dir()
        })
        .clone()
}

pub fn server_bin() -> PathBuf {
    plugins_dir();
    target_dir().join("server")
}

/// A fresh folder for one test, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "cases-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// A folder inside this one, created.
    pub fn subdir(&self, rel: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The demo web root every test starts from: files, a folder with index.html, one without,
/// hidden files, awkward names, a CGI script.
pub fn fixture_root(dir: &TempDir) -> PathBuf {
    let root = dir.path().join("www");
    dir.write("www/index.html", "<html><body>home</body></html>\n");
    dir.write(
        "www/plain.html",
        "<html><body><p>Test page.</p></body></html>\n",
    );
    dir.write("www/notes.txt", "just text\n");
    dir.write("www/subdir/index.html", "<p>subdir index</p>\n");
    dir.write("www/listing/b.txt", "bee\n");
    dir.write("www/listing/a file & <more>.txt", "a\n");
    dir.write("www/listing/ünïcödé.txt", "u\n");
    dir.write("www/listing/.hidden", "secret\n");
    dir.write("www/listing/inner/x.txt", "x\n");
    let script = dir.write(
        "www/cgi-bin/hello.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf 'cgi says hi, query=%s\\n' \"$QUERY_STRING\"\n",
    );
    chmod(&script, 0o755);
    root
}

pub fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The shipped chain order.
pub const CHAIN: &str = r#"["hidden_files", "hello", "request_info", "cgi_file", "no_file", "existing_file", "directory_index_file", "directory_no_index_file", "always_fail"]"#;

/// The shipped chain with these cases in front (filters run in chain order too).
pub fn chain_with(front: &[&str]) -> String {
    let front: Vec<String> = front.iter().map(|c| format!("{c:?}, ")).collect();
    CHAIN.replacen('[', &format!("[{}", front.concat()), 1)
}

/// A config file text with the given chain and extra TOML appended.
pub fn config_text(root: &Path, plugin_dirs: &[PathBuf], cases: &str, extra: &str) -> String {
    let dirs: Vec<String> = plugin_dirs
        .iter()
        .map(|d| format!("{:?}", d.display().to_string()))
        .collect();
    let text = format!(
        "listen = \"127.0.0.1:0\"\nroot = {:?}\nplugin_dirs = [{}]\ncases = {cases}\n{extra}\n",
        root.display().to_string(),
        dirs.join(", ")
    );
    cgi_as_root(&text)
}

/// The tests run as root in CI, and cgi_file refuses to run scripts as root unless told to:
/// tell it, in a configuration whose chain has it (tests of the refusal write their own).
pub fn cgi_as_root(text: &str) -> String {
    let chained = text.contains("\"cgi_file\"");
    if !rustix::process::geteuid().is_root() || !chained {
        return text.to_string();
    }
    let table = "[plugins.cgi_file]\n";
    match text.find(table) {
        Some(at) => {
            let at = at + table.len();
            format!("{}run_as_root = true\n{}", &text[..at], &text[at..])
        }
        None => format!("{text}\n{table}run_as_root = true\n"),
    }
}

/// Start the server on `cfg` under `prlimit LIMIT` (util-linux): a process limit as a
/// service manager sets one (`--nofile=48:48`, `--as=536870912`).
pub fn start_limited(dir: TempDir, root: PathBuf, cfg: &Path, limit: &str) -> Server {
    let child = Command::new("prlimit")
        .args([limit, "--"])
        .arg(server_bin())
        .arg("--config")
        .arg(cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux)");
    Server::adopt(child, dir, root)
}

/// A running server process; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
    pub dir: TempDir,
    pub root: PathBuf,
}

/// What a start-up attempt gave.
pub struct Exit {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run the server with `args` and wait for it to exit (for start-up failures and
/// --check-config).
pub fn run_to_exit(args: &[&str]) -> Exit {
    let out = Command::new(server_bin())
        .args(args)
        .output()
        .expect("run server");
    Exit {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Try to start on the fixture root with this chain and extra TOML, for a configuration that
/// must be refused: what the process said and its exit code.
pub fn start_refused(tag: &str, cases: &str, extra: &str) -> Exit {
    let dir = TempDir::new(tag);
    let root = fixture_root(&dir);
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], cases, extra),
    );
    run_to_exit(&["--config", cfg.to_str().unwrap()])
}

impl Server {
    /// Start with the fixture root, the given chain and extra config.
    pub fn start(cases: &str, extra: &str) -> Server {
        let dir = TempDir::new("srv");
        let root = fixture_root(&dir);
        Self::start_in(dir, root, &[plugins_dir()], cases, extra)
    }

    /// Start with the shipped chain.
    pub fn shipped() -> Server {
        Self::start(CHAIN, "")
    }

    /// The shipped chain plus extra TOML (e.g. a `[limits]` table).
    pub fn shipped_with(extra: &str) -> Server {
        Self::start(CHAIN, extra)
    }

    pub fn start_in(
        dir: TempDir,
        root: PathBuf,
        plugin_dirs: &[PathBuf],
        cases: &str,
        extra: &str,
    ) -> Server {
        Self::start_full(dir, root, plugin_dirs, cases, extra, &[])
    }

    /// Start with everything given, including environment variables for the server process.
    pub fn start_full(
        dir: TempDir,
        root: PathBuf,
        plugin_dirs: &[PathBuf],
        cases: &str,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Server {
        dir.write("server.toml", config_text(&root, plugin_dirs, cases, extra));
        Self::start_config(dir, root, env)
    }

    /// Start with the fixture root listening on `listen` (`--listen`), e.g. `[::1]:0`.
    pub fn start_on(listen: &str, cases: &str, extra: &str) -> Server {
        let dir = TempDir::new("srv");
        let root = fixture_root(&dir);
        dir.write(
            "server.toml",
            config_text(&root, &[plugins_dir()], cases, extra),
        );
        Self::start_args(dir, root, &[], &["--listen", listen])
    }

    /// Start with the `server.toml` already in `dir`.
    pub fn start_config(dir: TempDir, root: PathBuf, env: &[(&str, &str)]) -> Server {
        Self::start_args(dir, root, env, &[])
    }

    /// Start with the `server.toml` already in `dir`, environment variables and extra
    /// command-line arguments.
    fn start_args(dir: TempDir, root: PathBuf, env: &[(&str, &str)], args: &[&str]) -> Server {
        let child = Self::command(&dir, env, args)
            .spawn()
            .expect("start server");
        Self::adopt(child, dir, root)
    }

    fn command(dir: &TempDir, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut c = Command::new(server_bin());
        c.envs(env.iter().copied())
            .args(args)
            .arg("--config")
            .arg(dir.path().join("server.toml"))
            .arg("--log-level")
            .arg("debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The shipped chain in a process group of its own, as a service manager starts it:
    /// never a terminal's foreground group (whose WINCH is a window resize) when the tests
    /// run in one.
    pub fn shipped_in_own_group(extra: &str) -> Server {
        let dir = TempDir::new("srv");
        let root = fixture_root(&dir);
        dir.write(
            "server.toml",
            config_text(&root, &[plugins_dir()], CHAIN, extra),
        );
        let child = Self::command(&dir, &[], &[])
            .process_group(0)
            .spawn()
            .expect("start server");
        Self::adopt(child, dir, root)
    }

    /// Wait for a started server (stdout and stderr piped) to announce its address.
    pub fn adopt(mut child: Child, dir: TempDir, root: PathBuf) -> Server {
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = Arc::clone(&stderr);
            let pipe = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let Some(addr) = line
            .trim()
            .strip_prefix("listening on http://")
            .or_else(|| line.trim().strip_prefix("listening on https://"))
            .and_then(|a| a.trim_end_matches('/').parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "server did not start: stdout {line:?}, stderr:\n{}",
                stderr.lock().unwrap()
            );
        };
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = out.read_to_string(&mut sink);
        });
        Server {
            child,
            addr,
            stderr,
            dir,
            root,
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Send raw bytes on a new connection and read one response.
    pub fn raw(&self, req: &str) -> Response {
        let mut s = self.connect();
        s.write_all(req.as_bytes()).unwrap();
        read_response(&mut s, req.starts_with("HEAD ")).expect("a response")
    }

    /// Send a request line and headers (without the blank line) on a new connection, with
    /// `Host: t` and `Connection: close` added; read the response.
    pub fn request(&self, head: &str) -> Response {
        self.raw(&format!("{head}\r\nHost: t\r\nConnection: close\r\n\r\n"))
    }

    /// GET a path with HTTP/1.1 and `Connection: close`.
    pub fn get(&self, path: &str) -> Response {
        self.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        ))
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait up to 3 s for the server log to contain `needle` (it is read by another thread).
    pub fn log_contains(&self, needle: &str) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The access log file `name` (in the server's folder) once it has `lines` lines, or
    /// as it is after 3 s: a line is written just after its answer is sent, as nginx does.
    pub fn access_log(&self, name: &str, lines: usize) -> String {
        let path = self.dir.path().join(name);
        let read = || std::fs::read_to_string(&path).unwrap_or_default();
        within(Duration::from_secs(3), || read().lines().count() >= lines);
        read()
    }

    /// Is the process still running?
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw_head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Read one response from `s` (Content-Length, chunked or until close). `head_only` for HEAD.
pub fn read_response(s: &mut TcpStream, head_only: bool) -> Option<Response> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let raw_head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = raw_head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
        raw_head,
    };
    if status == 100 {
        return read_response(s, head_only);
    }
    if head_only || status == 204 || status == 304 || status < 200 {
        return Some(r);
    }
    if let Some(len) = r.header("content-length") {
        let len: usize = len.parse().ok()?;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).ok()?;
        r.body = body;
    } else if r
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        let mut reader = BufReader::new(s.try_clone().ok()?);
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                let mut end = String::new();
                reader.read_line(&mut end).ok()?;
                break;
            }
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            r.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        s.read_to_end(&mut r.body).ok()?;
    }
    Some(r)
}

/// Is the connection closed by the server (EOF) within `wait`?
pub fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            // Timed out: still open.
            Err(_) => return false,
        }
    }
}

/// Compile a C plugin from `src` into `out_dir/lib<name>.so` against the committed header.
pub fn compile_c_plugin(src: &Path, out_dir: &Path, name: &str) -> PathBuf {
    let include = workspace().join("plugin-api/include");
    compile_c_plugin_with(src, out_dir, name, &include)
}

/// Compile a C plugin against the `case_plugin.h` in `include` (e.g. the frozen ABI 1.0 one).
pub fn compile_c_plugin_with(src: &Path, out_dir: &Path, name: &str, include: &Path) -> PathBuf {
    let out = out_dir.join(format!("lib{name}.so"));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-std=c11", "-I",
        ])
        .arg(include)
        .arg("-o")
        .arg(&out)
        .arg(src)
        .status()
        .expect("run the C compiler (cc)");
    assert!(status.success(), "compiling {} failed", src.display());
    out
}

/// Send `sig` to process `pid`.
pub fn signal_pid(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, sig);
}

/// The child processes of `pid` (for a master: its workers, and a check while one runs).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Is `pid` gone (or a zombie no one has reaped yet)?
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Wait up to `limit` for `cond`, polling every 20 ms.
pub fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

impl Server {
    /// Send `sig` to the server (the master, unless started with `single_process`).
    pub fn signal(&self, sig: rustix::process::Signal) {
        signal_pid(self.child.id(), sig);
    }

    /// The worker processes serving now (the master's children with `--worker` in their
    /// command line), waiting up to 5 s for `n` of them.
    pub fn workers(&self, n: usize) -> Vec<u32> {
        let mut found = Vec::new();
        within(Duration::from_secs(5), || {
            found = children(self.child.id())
                .into_iter()
                .filter(|p| {
                    std::fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"--worker"))
                })
                .collect();
            found.len() == n
        });
        found
    }
}

/// Has process `pid` ended: gone, or dead and waiting to be reaped (its state, the field
/// after its name in /proc/PID/stat, is Z or X)?
pub fn has_ended(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    matches!(state, None | Some("Z") | Some("X"))
}

/// A 64 KiB tmpfs at `dir`, filled up: a full disk. Unmounted (lazily) on drop.
pub struct FullDisk(pub std::path::PathBuf);

impl FullDisk {
    /// None, saying SKIPPED, where no tmpfs can be mounted (not root).
    pub fn at(dir: std::path::PathBuf) -> Option<FullDisk> {
        std::fs::create_dir_all(&dir).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        let disk = FullDisk(dir);
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (root is needed)");
            return None;
        }
        // The log file first (an empty file takes no blocks), then everything else.
        std::fs::write(disk.0.join("access.log"), "").ok()?;
        let _ = std::fs::write(disk.0.join("filler"), vec![b'x'; 1 << 20]);
        Some(disk)
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
