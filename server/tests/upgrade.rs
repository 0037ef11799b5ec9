//! Binary upgrade, as nginx's: USR2 starts the binary on disk as a new master that inherits
//! the listening sockets; WINCH stops the old master's workers, QUIT the old master. The
//! listening socket never refuses a connection during the dance.

use crate::support::*;
use rustix::process::Signal;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The pid in `path`, once the file is there and names a process other than `not`.
fn pid_in(path: &std::path::Path, not: u32) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    (pid != not).then_some(pid)
}

/// Stops the new master when the test ends, however it ends.
struct Reaper(u32);

impl Drop for Reaper {
    fn drop(&mut self) {
        signal_pid(self.0, Signal::KILL);
    }
}

#[test]
fn usr2_winch_quit_hand_the_socket_to_a_new_master_without_refusing_a_connection() {
    let mut s = Server::shipped_in_own_group("pid_file = \"server.pid\"");
    let old = s.child.id();
    let pid_file = s.dir.path().join("server.pid");
    assert!(within(Duration::from_secs(5), || pid_in(&pid_file, 0) == Some(old)));

    // Clients for the whole dance: every connection must be accepted and answered.
    let (stop, served, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, served, failed, addr) = (
                Arc::clone(&stop),
                Arc::clone(&served),
                Arc::clone(&failed),
                s.addr,
            );
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match get_once(addr) {
                        Ok(()) => served.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            failed.lock().unwrap().push(e);
                            0
                        }
                    };
                }
            })
        })
        .collect();

    s.signal(Signal::USR2);
    assert!(
        within(Duration::from_secs(10), || pid_in(&pid_file, old).is_some()),
        "{}",
        s.log()
    );
    let new = pid_in(&pid_file, old).unwrap();
    let _reaper = Reaper(new);
    let oldbin = s.dir.path().join("server.pid.oldbin");
    assert_eq!(pid_in(&oldbin, 0), Some(old));
    std::thread::sleep(Duration::from_millis(200));
    s.signal(Signal::WINCH);
    assert!(
        s.log_contains("SIGWINCH: stopping the workers"),
        "{}",
        s.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    s.signal(Signal::QUIT);
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let after = served.load(Ordering::SeqCst);
    assert!(within(Duration::from_secs(5), || served
        .load(Ordering::SeqCst)
        > after + 20));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    assert!(
        failed.lock().unwrap().is_empty(),
        "{:?}\n{}",
        failed.lock().unwrap(),
        s.log()
    );
    assert!(!oldbin.exists(), "the old master removed its .oldbin");

    // The new master serves on, and stops as any master does.
    assert_eq!(s.get("/notes.txt").status, 200);
    signal_pid(new, Signal::TERM);
    assert!(within(Duration::from_secs(5), || gone(new)));
}

/// One request on a new connection; the error says which step failed.
fn get_once(addr: std::net::SocketAddr) -> Result<(), String> {
    let mut c = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    match read_response(&mut c, false) {
        Some(r) if r.status == 200 => Ok(()),
        Some(r) => Err(format!("status {}", r.status)),
        None => Err("no answer".into()),
    }
}

#[test]
fn a_new_binary_that_fails_leaves_the_old_master_serving() {
    // The new master reads the same (now broken) configuration and exits 1.
    let s = Server::shipped_with("pid_file = \"server.pid\"");
    let pid_file = s.dir.path().join("server.pid");
    assert!(within(Duration::from_secs(5), || pid_file.exists()));
    std::fs::write(s.dir.path().join("server.toml"), "cases = [").unwrap();
    s.signal(Signal::USR2);
    assert!(s.log_contains("upgrade abandoned"), "{}", s.log());
    assert_eq!(
        pid_in(&pid_file, 0),
        Some(s.child.id()),
        "pid file restored"
    );
    assert_eq!(s.get("/notes.txt").status, 200);
}
