//! SIGTERM (and SIGQUIT, as in nginx): stop accepting, close idle connections, let requests
//! in flight finish, exit 0.

use crate::support::*;
use rustix::process::Signal;
use std::io::Write;
use std::time::{Duration, Instant};

fn kill(s: &Server, sig: Signal) {
    let pid = rustix::process::Pid::from_raw(s.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

fn exit_code_within(s: &mut Server, wait: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < wait {
        if let Some(st) = s.child.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_closes_idle_connections_and_exits_cleanly() {
    let mut s = Server::shipped();
    let mut idle = s.connect();
    idle.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle, false).unwrap().status, 200);
    let start = Instant::now();
    kill(&s, Signal::TERM);
    assert!(closed_within(&mut idle, Duration::from_secs(3)));
    assert_eq!(exit_code_within(&mut s, Duration::from_secs(5)), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(s.addr).is_err(),
        "no longer listening"
    );
}

#[test]
fn sigterm_to_the_whole_process_group_stops_without_starting_workers_again() {
    // systemd's KillMode=control-group, `timeout` and a terminal's Ctrl-C signal every
    // process of the group, one after the other: the workers stop on their own TERM, and
    // their exits must not be taken for deaths to repair while the master's own TERM is on
    // its way (here 50 ms behind theirs, time enough for an idle worker to exit).
    let mut s = Server::shipped_in_own_group("workers = 2\n");
    for pid in s.workers(2) {
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, Signal::TERM).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    kill(&s, Signal::TERM);
    let code = exit_code_within(&mut s, Duration::from_secs(5));
    assert_eq!(code, Some(0), "{}", s.log());
    let log = s.log();
    let started = log.matches(") started").count();
    assert_eq!(started, 2, "a worker started again during the stop:\n{log}");
}

#[test]
fn a_worker_stopped_by_a_signal_of_its_own_is_replaced() {
    let s = Server::shipped_in_own_group("workers = 2\n");
    let before = s.workers(2);
    let one = rustix::process::Pid::from_raw(before[0] as i32).unwrap();
    rustix::process::kill_process(one, Signal::TERM).unwrap();
    assert!(
        s.log_contains(&format!(
            "(pid {}) stopped, not told by the master",
            before[0]
        )),
        "{}",
        s.log()
    );
    within(Duration::from_secs(5), || {
        let now = s.workers(2);
        now.len() == 2 && !now.contains(&before[0])
    });
    let now = s.workers(2);
    assert!(
        now.len() == 2 && !now.contains(&before[0]),
        "{now:?}: {}",
        s.log()
    );
    assert_eq!(s.get("/notes.txt").status, 200);
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_with_connection_close() {
    a_request_in_flight_finishes_then_exit_0(Signal::TERM);
}

#[test]
fn sigquit_stops_as_gracefully_as_sigterm() {
    a_request_in_flight_finishes_then_exit_0(Signal::QUIT);
}

/// Does connecting to `addr` fail with "refused" within `wait`?
fn refused_within(addr: std::net::SocketAddr, wait: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < wait {
        match std::net::TcpStream::connect(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

fn a_request_in_flight_finishes_then_exit_0(sig: Signal) {
    let dir = TempDir::new("drain");
    let root = fixture_root(&dir);
    let script = dir.write(
        "www/cgi-bin/slow.sh",
        "#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\r\\n\\r\\ndone\\n'\n",
    );
    chmod(&script, 0o755);
    let mut s = Server::start_in(dir, root, &[plugins_dir()], CHAIN, "");
    // Idle after an answer: a connection that never sent is still the kernel's (deferred).
    let mut idle = s.connect();
    idle.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle, false).unwrap().status, 200);
    let mut c = s.connect();
    c.write_all(b"GET /cgi-bin/slow.sh HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    kill(&s, sig);
    assert!(closed_within(&mut idle, Duration::from_secs(3)), "{sig:?}");
    // New connections are refused from the stop on (as nginx closes its listening sockets),
    // not accepted by the kernel to wait unanswered until the exit.
    assert!(refused_within(s.addr, Duration::from_secs(1)), "{sig:?}");
    let r = read_response(&mut c, false).expect("the request in flight is answered");
    assert_eq!((r.status, r.text().as_str()), (200, "done\n"));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(exit_code_within(&mut s, Duration::from_secs(5)), Some(0));
}

/// Every request of a busy moment (clients pipelining, so an event loop answers many before
/// it goes idle) has its line in the access log, once and whole, when a graceful stop comes
/// straight after the last answer: lines an event loop holds are written before it exits.
#[test]
fn every_access_line_of_a_busy_moment_is_written_whole_before_a_graceful_exit() {
    for mode in ["", "single_process = true"] {
        let mut s = Server::start(CHAIN, &format!("access_log = \"access.log\"\n{mode}"));
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let mut conn = s.connect();
                std::thread::spawn(move || {
                    let all: String = (0..100)
                        .map(|i| format!("GET /notes.txt?c{c}r{i} HTTP/1.1\r\nHost: t\r\n\r\n"))
                        .collect();
                    conn.write_all(all.as_bytes()).unwrap();
                    for _ in 0..100 {
                        assert_eq!(read_response(&mut conn, false).unwrap().status, 200);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        kill(&s, Signal::TERM);
        assert_eq!(exit_code_within(&mut s, Duration::from_secs(5)), Some(0));
        let log = std::fs::read_to_string(s.dir.path().join("access.log")).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 400, "{mode:?}: {log}");
        for c in 0..4 {
            for i in 0..100 {
                let whole = format!("\"GET /notes.txt?c{c}r{i} HTTP/1.1\" 200 10 \"-\" \"-\"");
                let n = lines
                    .iter()
                    .filter(|l| l.starts_with("127.0.0.1 - - [") && l.ends_with(&whole))
                    .count();
                assert_eq!(n, 1, "{mode:?}: c{c}r{i}: {log}");
            }
        }
    }
}

/// A script that ignores TERM and has exited, leaving a child that ignores TERM too and
/// holds its output (so the script is not reaped while the child runs).
const STUBBORN: &str = "#!/bin/sh\ntrap '' TERM\n(sleep 300) &\necho \"$$ $!\" > \"$PIDFILE\"\n";

/// A script still at work when the shutdown timeout runs out is ended with its process
/// group (what it started too) as the server exits, in a worker and in a single process:
/// it does not run on orphaned, nor hold the exit until its own timeout. TERM first; KILL
/// a second later for a group that ignores TERM, also once its leader has exited.
#[test]
fn a_stop_ends_the_scripts_still_running_with_their_process_groups() {
    let hang = std::fs::read_to_string(workspace().join("server/tests/fixtures/cgi-bin/hang.sh"));
    for (script, text) in [("hang.sh", hang.unwrap()), ("stubborn.sh", STUBBORN.into())] {
        for mode in ["", "single_process = true"] {
            a_stop_ends(script, &text, mode);
        }
    }
}

/// Start with `script` in /cgi-bin/, ask for it, stop the server, check what it started ended.
fn a_stop_ends(script: &str, text: &str, mode: &str) {
    let dir = TempDir::new("orphans");
    let root = fixture_root(&dir);
    chmod(&dir.write(&format!("www/cgi-bin/{script}"), text), 0o755);
    let pidfile = dir.path().join("pids");
    let extra = format!(
            "workers = 1\n{mode}\n[limits]\nshutdown_timeout = 0.5\n[plugins.cgi_file]\ntimeout = 60.0\nenv = {{ PIDFILE = {:?} }}\n",
            pidfile.display().to_string()
        );
    let mut s = Server::start_in(dir, root, &[plugins_dir()], CHAIN, &extra);
    let mut c = s.connect();
    let req = format!("GET /cgi-bin/{script} HTTP/1.1\r\nHost: t\r\n\r\n");
    c.write_all(req.as_bytes()).unwrap();
    let pids = read_when_written(&pidfile, Duration::from_secs(5));
    let start = Instant::now();
    kill(&s, Signal::TERM);
    let what = format!("{script} {mode:?}");
    assert_eq!(
        exit_code_within(&mut s, Duration::from_secs(8)),
        Some(0),
        "{what}"
    );
    assert!(start.elapsed() < Duration::from_secs(3), "{what}");
    for pid in pids.split_whitespace() {
        assert!(ended_within(pid, Duration::from_secs(2)), "{what}: {pid}");
    }
}

/// A request waiting for a script's place when the stop comes: the place frees as the
/// running script is ended, and the script it then starts is ended too, at once, not left
/// running after the server (nor holding a single process's exit for its timeout).
#[test]
fn a_script_that_was_waiting_for_its_place_does_not_outlive_a_stop() {
    for mode in ["", "single_process = true"] {
        let dir = TempDir::new("queued");
        let root = fixture_root(&dir);
        let hang = "#!/bin/sh\necho $$ >> \"$PIDFILE\"\nexec sleep 300\n";
        chmod(&dir.write("www/cgi-bin/hang.sh", hang), 0o755);
        let pidfile = dir.path().join("pids");
        let extra = format!(
            "workers = 1\n{mode}\n[limits]\nshutdown_timeout = 0.5\n[plugins.cgi_file]\ntimeout = 60.0\nmax_running = 1\nqueue_timeout = 30.0\nenv = {{ PIDFILE = {:?} }}\n",
            pidfile.display().to_string()
        );
        let mut s = Server::start_in(dir, root, &[plugins_dir()], CHAIN, &extra);
        let req = b"GET /cgi-bin/hang.sh HTTP/1.1\r\nHost: t\r\n\r\n";
        let (mut running, mut waiting) = (s.connect(), s.connect());
        running.write_all(req).unwrap();
        read_when_written(&pidfile, Duration::from_secs(5));
        waiting.write_all(req).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        kill(&s, Signal::TERM);
        let code = exit_code_within(&mut s, Duration::from_secs(8));
        assert_eq!(code, Some(0), "{mode:?}");
        let pids = std::fs::read_to_string(&pidfile).unwrap_or_default();
        for pid in pids.split_whitespace() {
            assert!(ended_within(pid, Duration::from_secs(2)), "{mode:?}: {pid}");
        }
    }
}

/// The text of `path` once it has a whole line, waiting up to `wait`.
fn read_when_written(path: &std::path::Path, wait: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.ends_with('\n') || start.elapsed() > wait {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Has process `pid` ended (gone, or a zombie waiting for its new parent) within `wait`?
fn ended_within(pid: &str, wait: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < wait {
        if has_ended(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Not the test's to leave running.
    if let Some(p) = pid.parse().ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(p, Signal::KILL);
    }
    false
}
