//! Ends the processes a worker's plugins started and left running (a CGI script still at
//! work when the shutdown timeout ran out) before the worker exits, as Apache ends its
//! scripts: TERM to each one's process group, then KILL after a grace.

use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};
use std::time::{Duration, Instant};

/// How long what is left running gets between TERM and KILL (the master's SIGKILL of a
/// worker comes 2 s after the shutdown timeout).
pub const GRACE: Duration = Duration::from_secs(1);

/// Signal the process group of every child that leads one of its own (a script, and what
/// it started), wait up to `grace` for the groups to empty, then KILL what is left. A
/// worker calls it as its last event loop ends: the loop's pool threads wait on their
/// scripts, and the loop waits on its pool threads. The groups are remembered, so one
/// whose leader has ended (a script that left a child holding its output) is ended too.
pub fn end(grace: Duration) {
    let Some(groups) = script_groups() else {
        log::warn!(
            "cannot read /proc/self/task: scripts still running are left to end by themselves"
        );
        return;
    };
    if groups.is_empty() {
        return;
    }
    log::info!(
        "ending {} process group(s) the plugins left running (a script still at work)",
        groups.len()
    );
    signal(&groups, Signal::TERM);
    let by = Instant::now() + grace;
    while Instant::now() < by {
        if groups.iter().all(|&g| test_kill_process_group(g).is_err()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&groups, Signal::KILL);
}

/// From now until the process exits, KILL at once every script group that appears. Called
/// after [`end`], while the runtime waits for its pool threads: a request that was waiting
/// for a script's place (cgi_file's `max_running`) takes the place an ended script gave
/// back and starts its own, which nobody will read, and which would otherwise run on after
/// the worker is gone.
pub fn keep_ending() {
    let reaper = || {
        while let Some(groups) = script_groups() {
            signal(&groups, Signal::KILL);
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let started = std::thread::Builder::new()
        .name("reaper".into())
        .spawn(reaper);
    if let Err(e) = started {
        log::warn!("cannot start a thread to end scripts started during the stop: {e}");
    }
}

fn signal(groups: &[Pid], sig: Signal) {
    for &g in groups {
        let _ = kill_process_group(g, sig);
    }
}

/// The children of every thread of this process that lead a process group of their own,
/// ended or not (a zombie keeps its pid, and its group its id, until it is reaped); None
/// when /proc cannot be read. A child in our own group is not a script's (a helper the
/// process that exec'd us started).
fn script_groups() -> Option<Vec<Pid>> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let ours = rustix::process::getpgrp();
    let groups = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .filter(|&pid| group_of(pid) == Some(pid))
        .filter_map(Pid::from_raw)
        .filter(|&pid| pid != ours)
        .collect();
    Some(groups)
}

/// The process group of `pid`, from /proc (a zombie's too): the third field after the
/// name in parentheses.
fn group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit(')').next()?;
    after_name.split_whitespace().nth(2)?.parse().ok()
}
