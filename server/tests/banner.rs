//! The start-up banner on stdout: the listening line first, then the root and one line per
//! case; plain through a pipe, coloured on a terminal.

use crate::support::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CASES: &str = r#"["no_file", "existing_file", "always_fail"]"#;

/// A config for `CASES` in `dir`; returns it and the canonical root.
fn config(dir: &TempDir) -> (PathBuf, PathBuf) {
    let root = fixture_root(dir);
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], CASES, ""),
    );
    (cfg, root.canonicalize().unwrap())
}

/// The banner: the lines `out` gives until the last case's, or panic after 10 s.
fn banner_lines(out: impl std::io::Read + Send + 'static) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines: Vec<String> = Vec::new();
    while !lines.last().is_some_and(|l| l.contains("always_fail")) {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => lines.push(line.trim_end_matches('\r').to_string()),
            Err(_) => panic!("no whole banner; stdout so far: {lines:#?}"),
        }
    }
    lines
}

/// The banner's lines after the listening line, for a root and with the given escapes
/// around labels and case names (empty for plain).
fn expected(root: &Path, bold: &str, green: &str, end: &str) -> Vec<String> {
    vec![
        format!("  {bold}root{end}   {}", root.display()),
        format!("  {bold}chain{end}  first case whose test() is true acts:"),
        format!("    1. {green}no_file{end} 0.1.0 (ABI 1.0, any method; test/act) "),
        format!("    2. {green}existing_file{end} 0.1.0 (ABI 1.0, GET, HEAD; test/act) "),
        format!("    3. {green}always_fail{end} 0.1.0 (ABI 1.0, any method; test/act) "),
    ]
}

fn assert_banner(lines: &[String], root: &Path, escapes: [&str; 3]) {
    let [bold, green, end] = escapes;
    let listening = lines[0].strip_prefix("listening on http://127.0.0.1:");
    assert!(listening.is_some_and(|l| l.ends_with('/')), "{lines:#?}");
    let rest = &lines[1..];
    let want = expected(root, bold, green, end);
    assert_eq!(rest.len(), want.len(), "{lines:#?}");
    for (got, want) in rest.iter().zip(&want) {
        assert!(
            got.starts_with(want.as_str()),
            "{got:?} should start {want:?}"
        );
    }
}

/// Stops the process on drop.
struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn through_a_pipe_the_banner_is_plain_and_names_the_address_root_and_each_case() {
    let dir = TempDir::new("banner");
    let (cfg, root) = config(&dir);
    let mut child = Command::new(server_bin())
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let _stop = Stop(child);
    let lines = banner_lines(out);
    assert!(!lines.concat().contains('\x1b'), "{lines:#?}");
    assert_banner(&lines, &root, ["", "", ""]);
}

#[test]
fn on_a_terminal_the_banner_is_coloured_and_the_listening_line_stays_plain() {
    // util-linux `script` gives the server a terminal for stdout.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let dir = TempDir::new("banner-tty");
    let (cfg, root) = config(&dir);
    // The server runs in the background so its pid can be printed and signalled; if the
    // test fails first, the terminal's hangup makes the shell stop it.
    let inner = format!(
        "'{}' --config '{}' --log-level off & p=$!; trap 'kill $p' HUP; echo \"pid $p\"; wait",
        server_bin().display(),
        cfg.display()
    );
    let mut script = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = script.stdout.take().unwrap();
    let _stop = Stop(script);
    let mut lines = banner_lines(out);
    let pid = lines.remove(0);
    let pid: i32 = pid.strip_prefix("pid ").unwrap().parse().unwrap();
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    assert!(!lines[0].contains('\x1b'), "{lines:#?}");
    assert_banner(&lines, &root, ["\x1b[1m", "\x1b[32m", "\x1b[0m"]);
}

/// Every error log line starts with the date, the time and the pid of the process that
/// wrote it (the master or a worker), as nginx's `2026/11/27 10:00:00 [error] 1234#0:`.
#[test]
fn error_log_lines_carry_the_date_and_the_writers_pid() {
    let s = Server::start_on("https://127.0.0.1:0", CASES, "workers = 2");
    let master = s.child.id().to_string();
    assert!(
        s.log_contains(&format!(
            "pid {master} [INFO] master (pid {master}) serving"
        )),
        "{}",
        s.log()
    );
    let workers: Vec<String> = s.workers(2).iter().map(u32::to_string).collect();
    let stamped = |line: &str, pid: &str| {
        let f: Vec<&str> = line.split(' ').collect();
        let date = f[0].as_bytes();
        f.len() > 4
            && date.len() == 10
            && (date[4], date[7]) == (b'/', b'/')
            && f[1].len() == 8
            && (f[2], f[3]) == ("pid", pid)
    };
    let log = s.log();
    let master_line = log.lines().find(|l| l.contains("] master (pid")).unwrap();
    assert!(stamped(master_line, &master), "{master_line}");
    // Each worker warns about the self-signed certificate it made.
    let each_worker_said_it = || {
        let log = s.log();
        let said: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("a self-signed certificate"))
            .collect();
        workers.iter().all(|w| said.iter().any(|l| stamped(l, w)))
    };
    assert!(
        within(Duration::from_secs(5), each_worker_said_it),
        "workers {workers:?}: {}",
        s.log()
    );
}
