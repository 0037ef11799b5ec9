//! Worker processes: a case that crashes (SIGSEGV, SIGABRT, a stack overflow) or spins on
//! its event loop costs its own request; the master logs the death with its signal and the
//! case, starts a fresh worker, and the server goes on serving. Respawns back off.

use crate::support::*;
use rustix::process::Signal;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A server whose chain starts with the `faulty` fixture (see fixtures/plugins/faulty.c).
fn faulty(extra: &str) -> Server {
    let dir = TempDir::new("faulty");
    let root = fixture_root(&dir);
    let pdir = dir.subdir("plugins");
    let src = workspace().join("server/tests/fixtures/plugins/faulty.c");
    compile_c_plugin(&src, &pdir, "faulty");
    let cases = r#"["faulty", "no_file", "existing_file", "always_fail"]"#;
    Server::start_in(dir, root, &[pdir, plugins_dir()], cases, extra)
}

/// GET `path` on a new connection: the answer, or None if the connection died first.
fn try_get(addr: SocketAddr, path: &str) -> Option<Response> {
    let mut c = std::net::TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).ok()?;
    read_response(&mut c, false)
}

fn serves(s: &Server) {
    for _ in 0..5 {
        let r = try_get(s.addr, "/plain.html").expect("an answer");
        assert_eq!(r.status, 200);
    }
}

/// The bad request gets no answer, the master names the signal, the worker named the case,
/// and requests before and after are served.
fn crash_costs_one_request(how: &str, signal_line: &str, fatal_line: &str) {
    let s = faulty("");
    serves(&s);
    assert!(try_get(s.addr, &format!("/fault/{how}")).is_none(), "{how}");
    assert!(s.log_contains(signal_line), "{how}: {}", s.log());
    assert!(s.log_contains(fatal_line), "{how}: {}", s.log());
    assert!(s.log_contains("serves again"), "{how}: {}", s.log());
    serves(&s);
    assert_eq!(s.workers(2).len(), 2, "{}", s.log());
}

#[test]
fn a_case_that_calls_exit_is_named_and_the_worker_replaced() {
    crash_costs_one_request(
        "exit",
        "exited with status 1",
        "case=faulty called exit(); the process ends with it",
    );
}

#[test]
fn a_segfault_in_a_case_costs_its_request_and_the_worker_is_replaced() {
    crash_costs_one_request(
        "segv",
        "killed by signal 11 (SIGSEGV",
        "fatal signal SIGSEGV in case=faulty",
    );
}

#[test]
fn an_abort_in_a_case_costs_its_request_and_the_worker_is_replaced() {
    crash_costs_one_request(
        "abort",
        "killed by signal 6 (SIGABRT",
        "fatal signal SIGABRT in case=faulty",
    );
}

#[test]
fn a_stack_overflow_in_a_case_costs_its_request_and_the_worker_is_replaced() {
    crash_costs_one_request(
        "overflow",
        "killed by signal 11 (SIGSEGV",
        "fatal signal SIGSEGV in case=faulty",
    );
}

/// Requests made while a worker is about to crash (it sleeps 400 ms on its loop first) are
/// all served by the other worker.
#[test]
fn requests_during_a_crash_on_another_worker_are_served() {
    let s = faulty("workers = 2");
    serves(&s);
    let addr = s.addr;
    let bad = std::thread::spawn(move || try_get(addr, "/fault/slow-segv"));
    std::thread::sleep(Duration::from_millis(100));
    let mut during = 0;
    while !bad.is_finished() && during < 500 {
        let r = try_get(addr, "/notes.txt").expect("served during the crash");
        assert_eq!(r.status, 200);
        during += 1;
    }
    assert!(bad.join().unwrap().is_none());
    assert!(during > 0);
    assert!(
        s.log_contains("killed by signal 11 (SIGSEGV"),
        "{}",
        s.log()
    );
    serves(&s);
}

#[test]
fn a_case_spinning_on_the_event_loop_is_reported_and_its_worker_replaced() {
    let s = faulty("workers = 2\n[limits]\nstall_timeout = 0.5\n");
    let addr = s.addr;
    let bad = std::thread::spawn(move || try_get(addr, "/fault/spin"));
    std::thread::sleep(Duration::from_millis(100));
    // The other worker serves while this one is stuck.
    serves(&s);
    assert!(bad.join().unwrap().is_none());
    assert!(
        s.log_contains("event loop 0 stuck in case=faulty for"),
        "{}",
        s.log()
    );
    assert!(s.log_contains("killed by signal 6 (SIGABRT"), "{}", s.log());
    serves(&s);
    assert_eq!(s.workers(2).len(), 2);
}

/// Times the threads of process `pid` have gone to sleep and woken so far (voluntary
/// context switches).
fn wakeups(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the worker's threads");
    let switches = |status: String| {
        let line = status
            .lines()
            .find(|l| l.starts_with("voluntary_ctxt_switches"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter_map(switches)
        .sum()
}

#[test]
fn an_idle_worker_wakes_about_once_a_second_for_its_watchdog() {
    // The default stall_timeout (10 s): the loop proves it is alive every second (tokio's
    // timer wheel adds a wake-up or so around each tick), the watchdog thread looks every
    // second, the open-file sweep runs every 2 s: 10 to 12 in 3 s. A 100 ms tick woke an
    // idle worker about 20 times a second (63 in 3 s).
    let s = Server::start(r#"["no_file", "existing_file"]"#, "workers = 1");
    serves(&s);
    let worker = s.workers(1)[0];
    std::thread::sleep(Duration::from_millis(500));
    let before = wakeups(worker);
    std::thread::sleep(Duration::from_secs(3));
    let woke = wakeups(worker) - before;
    assert!(woke <= 18, "an idle worker woke {woke} times in 3 s");
}

#[test]
fn a_worker_killed_from_outside_is_replaced_as_after_an_oom_kill() {
    let s = faulty("workers = 2");
    let before = s.workers(2);
    assert_eq!(before.len(), 2);
    signal_pid(before[0], Signal::KILL);
    assert!(
        s.log_contains("killed by signal 9 (SIGKILL)"),
        "{}",
        s.log()
    );
    assert!(within(Duration::from_secs(5), || {
        let now = s.workers(2);
        now.len() == 2 && !now.contains(&before[0])
    }));
    serves(&s);
}

#[test]
fn a_page_that_crashes_its_worker_every_time_never_makes_the_master_wait() {
    // One client asking for it again and again must not keep the site down: a worker that
    // was serving is replaced at once, however often (as nginx replaces its workers).
    let s = faulty("workers = 1");
    for _ in 0..8 {
        assert!(try_get(s.addr, "/fault/segv").is_none());
        let started = std::time::Instant::now();
        let r = try_get(s.addr, "/fault/ok").expect("a new worker answers");
        assert_eq!(r.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(!s.log_contains("in a row"), "{}", s.log());
}

#[test]
fn a_case_cannot_answer_with_an_interim_status_or_one_past_599() {
    // A 1xx is an interim answer the host alone sends (a final 100 left the client waiting
    // for the real one); 600 and up have no class (RFC 9110 §15).
    let s = faulty("workers = 1");
    for n in [100, 101, 199, 600, 999] {
        let r = try_get(s.addr, &format!("/fault/status-{n}")).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "refused\n"), "{n}");
    }
    for n in [200, 418, 599] {
        let r = try_get(s.addr, &format!("/fault/status-{n}")).unwrap();
        assert_eq!((r.status, r.text().as_str()), (n, "taken\n"), "{n}");
    }
}

#[test]
fn a_length_no_buffer_can_have_is_refused_not_a_crash() {
    // write(ctx, p, SIZE_MAX) from C: the host made a slice that long and panicked
    // copying it, which ended the worker.
    let s = faulty("workers = 1");
    let before = s.workers(1);
    let r = try_get(s.addr, "/fault/huge").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "refused\n"));
    assert_eq!(s.workers(1), before, "{}", s.log());
}

#[test]
fn a_plugin_that_crashes_as_it_loads_stops_start_up_and_is_named() {
    let dir = TempDir::new("crashy");
    let root = fixture_root(&dir);
    let pdir = dir.subdir("plugins");
    compile_c_plugin(
        &workspace().join("server/tests/fixtures/plugins/faulty.c"),
        &pdir,
        "faulty",
    );
    let flag = dir.write("crash", "");
    let extra = format!("[plugins.faulty]\ncrash_if = \"{}\"\n", flag.display());
    let cases = r#"["faulty", "no_file", "existing_file"]"#;
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[pdir, plugins_dir()], cases, &extra),
    );
    for check in [true, false] {
        let mut args = vec!["--config", cfg.to_str().unwrap()];
        if check {
            args.push("--check-config");
        }
        let e = run_to_exit(&args);
        assert_ne!(e.code, Some(0), "{check}: {}", e.stderr);
        assert!(
            e.stderr.contains("fatal signal SIGSEGV in case=faulty"),
            "{check}: {}",
            e.stderr
        );
    }
}

#[test]
fn a_case_cannot_make_a_head_no_client_would_read() {
    // 100,000 fields (3.3 MB of head): clients give up past about 100 KiB; the host takes
    // fields up to 64 KiB and refuses the rest.
    let s = faulty("workers = 1");
    let r = try_get(s.addr, "/fault/fields").expect("an answer a client can read");
    assert_eq!(r.status, 200);
    let taken: usize = r.text().trim().parse().unwrap();
    assert!((1000..3000).contains(&taken), "{taken}");
    assert!(r.raw_head.len() < 70 * 1024, "{}", r.raw_head.len());
}

#[test]
fn a_cases_field_value_loses_its_outer_whitespace_and_its_log_line_cannot_forge_another() {
    // HTTP/2 peers refuse a value with whitespace at either end (RFC 9113 §8.2.1); a log
    // line with a newline in it would let a client that reaches a plugin's log forge one.
    let s = faulty("workers = 1");
    let r = try_get(s.addr, "/fault/ws").unwrap();
    assert!(
        r.raw_head.contains("\r\nX-Ws: padded\r\n"),
        "{}",
        r.raw_head
    );
    // Hop-by-hop fields are the host's: refused.
    assert!(
        r.header("trailer").is_none() && r.header("te").is_none(),
        "{}",
        r.raw_head
    );
    assert!(
        within(Duration::from_secs(5), || s.log_contains("forged\\n2026")),
        "{}",
        s.log()
    );
    assert!(
        !s.log().lines().any(|l| l.starts_with("2026/01/01")),
        "{}",
        s.log()
    );
    assert!(!s.log().contains('\x1b'), "{}", s.log());
}

#[test]
fn workers_that_die_before_they_are_ready_make_the_master_back_off() {
    let dir = TempDir::new("flag");
    let flag = dir.path().join("crash");
    let s = faulty(&format!(
        "workers = 1\n[plugins.faulty]\ncrash_if = \"{}\"\n",
        flag.display()
    ));
    serves(&s);
    // From now on every new worker dies in create, before it is ready.
    std::fs::write(&flag, "").unwrap();
    assert!(try_get(s.addr, "/fault/segv").is_none());
    assert!(
        within(Duration::from_secs(10), || s
            .log_contains("next start in 0.2s")),
        "{}",
        s.log()
    );
    assert!(s.log_contains("died 6 times in a row"), "{}", s.log());
    std::fs::remove_file(&flag).unwrap();
    serves(&s);
}

#[test]
fn workers_stop_when_their_master_is_killed() {
    let mut s = faulty("workers = 2");
    let workers = s.workers(2);
    assert_eq!(workers.len(), 2);
    s.signal(Signal::KILL);
    let _ = s.child.wait();
    assert!(within(Duration::from_secs(5), || workers
        .iter()
        .all(|&p| gone(p))));
}

#[test]
fn connections_keep_being_served_while_workers_crash() {
    // A client hammering the server while another crashes workers: every answer it gets is
    // right, and it gets answers before, between and after the crashes.
    let s = faulty("workers = 2");
    let addr = s.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let client = std::thread::spawn(move || {
        let (mut ok, mut lost) = (0, 0);
        for _ in 0..5000 {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            match try_get(addr, "/notes.txt") {
                Some(r) => {
                    assert_eq!(r.text(), "just text\n");
                    ok += 1
                }
                None => lost += 1,
            }
        }
        (ok, lost)
    });
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        assert!(try_get(addr, "/fault/segv").is_none());
    }
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, Ordering::SeqCst);
    let (ok, lost) = client.join().unwrap();
    assert!(ok > 0);
    // A request accepted by the crashing worker in the instant before its crash may be lost;
    // most are not.
    assert!(lost <= 3, "{lost} lost, {ok} served");
    serves(&s);
}

#[test]
fn the_master_never_loads_a_plugin_its_workers_do() {
    let s = faulty("workers = 2");
    let maps = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(!maps(s.child.id()).contains("libfaulty.so"));
    for w in s.workers(2) {
        assert!(maps(w).contains("libfaulty.so"), "worker {w}");
    }
}
