//! Signals a service manager or logrotate sends: USR1 reopens the access log in every worker;
//! without a master, USR2, WINCH and PIPE are survived; stray ones (ALRM...) by every
//! process; a terminal's resize stops no worker. (TERM and QUIT are in shutdown.rs, HUP in
//! reload.rs, USR2 and WINCH with a master in upgrade.rs.)

use crate::support::*;
use rustix::process::Signal;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn kill(s: &Server, sig: Signal) {
    let pid = rustix::process::Pid::from_raw(s.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// Before the log file is moved away, between the move and the reopen, after the reopen.
const MOVED: usize = 1;
const REOPENED: usize = 2;

/// One request a client made: its id, the phase when it was sent and when it was answered.
struct Made {
    id: String,
    sent: usize,
    answered: usize,
}

/// Clients that request `/notes.txt?id=…` in a loop until `stop` (at most 3000 each),
/// noting the phase around each request.
fn clients(
    addr: SocketAddr,
    phase: &Arc<AtomicUsize>,
    stop: &Arc<AtomicBool>,
    made: &Arc<Mutex<Vec<Made>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..2)
        .map(|t| {
            let (phase, stop, made) = (Arc::clone(phase), Arc::clone(stop), Arc::clone(made));
            std::thread::spawn(move || {
                for n in 0..3000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let id = format!("{t}-{n}");
                    let sent = phase.load(Ordering::SeqCst);
                    let mut c = TcpStream::connect(addr).unwrap();
                    let req = format!(
                        "GET /notes.txt?id={id} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    );
                    std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
                    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
                    let answered = phase.load(Ordering::SeqCst);
                    made.lock().unwrap().push(Made { id, sent, answered });
                }
            })
        })
        .collect()
}

/// Wait (up to 10 s) until the clients have made `n` more requests than now.
fn wait_for_more(made: &Mutex<Vec<Made>>, n: usize) {
    let want = made.lock().unwrap().len() + n;
    let start = Instant::now();
    while made.lock().unwrap().len() < want {
        assert!(start.elapsed() < Duration::from_secs(10), "clients stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Each line of an access log file by request id; every line must be whole.
fn lines_by_id(path: &std::path::Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a partial last line"
    );
    let mut ids = BTreeMap::new();
    for line in text.lines() {
        let id = line
            .strip_prefix("127.0.0.1 - - [")
            .and_then(|l| l.split_once("] \"GET /notes.txt?id="))
            .and_then(|(_, rest)| rest.split_once(" HTTP/1.1\" 200 10 \"-\" \"-\""))
            .filter(|(_, end)| end.is_empty())
            .map(|(id, _)| id.to_string());
        let id = id.unwrap_or_else(|| panic!("not one whole line: {line:?}"));
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

#[test]
fn sigusr1_reopens_the_access_log_and_no_line_is_lost_or_torn() {
    let s = Server::start(CHAIN, "access_log = \"access.log\"");
    let log = s.dir.path().join("access.log");
    let moved = s.dir.path().join("access.log.1");
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(Mutex::new(Vec::new()));
    let threads = clients(s.addr, &phase, &stop, &made);

    wait_for_more(&made, 50);
    std::fs::rename(&log, &moved).unwrap();
    phase.store(MOVED, Ordering::SeqCst);
    wait_for_more(&made, 50);
    kill(&s, Signal::USR1);
    assert!(
        s.log_contains("SIGUSR1: reopened the access log"),
        "{}",
        s.log()
    );
    phase.store(REOPENED, Ordering::SeqCst);
    wait_for_more(&made, 50);
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    // A line is written just after its answer is sent: give the last ones a moment.
    let count = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let total = made.lock().unwrap().len();
    within(Duration::from_secs(3), || {
        count(&moved) + count(&log) >= total
    });

    let (old, new) = (lines_by_id(&moved), lines_by_id(&log));
    let made = made.lock().unwrap();
    for m in made.iter() {
        let (in_old, in_new) = (old.get(&m.id), new.get(&m.id));
        let place = match (in_old, in_new) {
            (Some(1), None) => "old",
            (None, Some(1)) => "new",
            other => panic!("request {} is logged {other:?} times (old, new)", m.id),
        };
        if m.answered < MOVED {
            assert_eq!(place, "old", "{} was answered before the move", m.id);
        }
        if m.sent >= REOPENED {
            assert_eq!(place, "new", "{} was sent after the reopen", m.id);
        }
    }
    assert_eq!(
        old.len() + new.len(),
        made.len(),
        "no line without a request"
    );
    assert!(made.iter().any(|m| m.sent >= REOPENED));
}

#[test]
fn without_a_master_sigusr2_sigwinch_and_sigpipe_are_survived() {
    let mut s = Server::shipped_with("single_process = true");
    for (sig, said) in [
        (Signal::USR2, Some("SIGUSR2: ignored")),
        (Signal::WINCH, Some("SIGWINCH: ignored")),
        (Signal::PIPE, None),
    ] {
        kill(&s, sig);
        if let Some(said) = said {
            assert!(s.log_contains(said), "{sig:?}: {}", s.log());
        }
        assert_eq!(s.get("/notes.txt").status, 200, "{sig:?}");
        assert!(s.alive(), "{sig:?}");
    }
}

#[test]
fn workers_ignore_the_masters_signals_and_serve_on() {
    let s = Server::shipped_with("workers = 2");
    let workers = s.workers(2);
    assert_eq!(workers.len(), 2);
    for sig in [Signal::HUP, Signal::USR2, Signal::WINCH] {
        for &w in &workers {
            signal_pid(w, sig);
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(workers.iter().all(|&w| !gone(w)), "{}", s.log());
    for _ in 0..4 {
        assert_eq!(s.get("/notes.txt").status, 200);
    }
    assert!(!s.log().contains("] reloaded "), "{}", s.log());
}

/// Signals whose default action ends a process, sent by no one on purpose: each process
/// (the master, a worker, a single process) logs and survives them, as nginx and lighttpd.
#[test]
fn stray_signals_are_survived_by_the_master_the_workers_and_a_single_process() {
    let strays = [
        Signal::ALARM,
        Signal::IO,
        Signal::POWER,
        Signal::VTALARM,
        Signal::PROF,
        Signal::XFSZ,
    ];
    let mut with_master = Server::shipped_with("workers = 1");
    let workers = with_master.workers(1);
    let mut single = Server::shipped_with("single_process = true");
    for sig in strays {
        kill(&with_master, sig);
        signal_pid(workers[0], sig);
        kill(&single, sig);
    }
    for s in [&mut with_master, &mut single] {
        assert!(
            within(Duration::from_secs(5), || s
                .log_contains("SIGVTALRM: ignored")),
            "{}",
            s.log()
        );
        assert_eq!(s.get("/notes.txt").status, 200);
        assert!(s.alive(), "{}", s.log());
    }
    assert!(!gone(workers[0]), "{}", with_master.log());
}

/// The kernel sends WINCH to a terminal's foreground processes when its window is resized
/// (a terminal, tmux, `docker run -it`): a server started there must not take it as the
/// binary upgrade's "stop the workers" (nginx honours WINCH only when daemonized).
#[test]
fn a_terminal_window_resize_stops_no_worker() {
    use rustix::fs::{open, Mode, OFlags};
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let pty = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&pty).unwrap();
    unlockpt(&pty).unwrap();
    let name = ptsname(&pty, Vec::new()).unwrap();
    let terminal = open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY,
        Mode::empty(),
    )
    .unwrap();
    let dir = TempDir::new("tty");
    let root = fixture_root(&dir);
    dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], CHAIN, "workers = 1"),
    );
    // setsid --ctty: a new session whose controlling terminal is stdin, the pty.
    let child = std::process::Command::new("setsid")
        .arg("--ctty")
        .arg(server_bin())
        .arg("--config")
        .arg(dir.path().join("server.toml"))
        .args(["--log-level", "debug"])
        .stdin(std::fs::File::from(terminal))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("setsid");
    let s = Server::adopt(child, dir, root);
    let workers = s.workers(1);
    let size = rustix::termios::Winsize {
        ws_row: 40,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&pty, size).unwrap();
    assert!(
        within(Duration::from_secs(5), || s
            .log_contains("SIGWINCH: ignored")),
        "{}",
        s.log()
    );
    assert_eq!(s.get("/notes.txt").status, 200);
    assert!(!gone(workers[0]), "{}", s.log());
}
