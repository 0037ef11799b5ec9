//! Ends the processes a worker's plugins started and left running (a CGI script still at
//! work when the shutdown timeout ran out) before the worker exits, as Apache ends its
//! scripts: TERM to each one's process group, then KILL after a grace.

use rustix::process::{kill_process, kill_process_group, Pid, Signal};
use std::time::{Duration, Instant};

/// How long what is left running gets between TERM and KILL (the master's SIGKILL of a
/// worker comes 2 s after the shutdown timeout).
pub const GRACE: Duration = Duration::from_secs(1);

/// Signal every living child of this process and its process group, wait up to `grace` for
/// them to end, then KILL what is left. A worker calls it as its last event loop ends: the
/// loop's pool threads wait on their scripts, and the loop waits on its pool threads.
pub fn end(grace: Duration) {
    let left = living();
    if left.is_empty() {
        return;
    }
    log::info!(
        "ending {} process(es) the plugins left running (a script still at work)",
        left.len()
    );
    signal(&left, Signal::TERM);
    let by = Instant::now() + grace;
    while Instant::now() < by {
        if living().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&living(), Signal::KILL);
}

/// A script leads its own process group (with what it started): end the group, or the
/// one process when it leads none.
fn signal(pids: &[Pid], sig: Signal) {
    for &pid in pids {
        if kill_process_group(pid, sig).is_err() {
            let _ = kill_process(pid, sig);
        }
    }
}

/// The children of every thread of this process that have not ended (one that ended and
/// waits to be reaped by its thread is left alone).
fn living() -> Vec<Pid> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .filter(|&pid| !ended(pid))
        .filter_map(Pid::from_raw)
        .collect()
}

/// Is `pid` a zombie (or gone)? Its state is the field after the name in parentheses.
fn ended(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    matches!(state, None | Some("Z") | Some("X"))
}
