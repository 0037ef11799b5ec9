//! The threads that blocking cases (scripts, password checks) act on: an idle one takes the
//! next act, or a new one starts, and one idle for `KEEP` ends. A thread that cannot be
//! started is an error for the caller to answer, where tokio's pool panicked and kept the
//! act queued to run whenever a thread came free.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a thread waits for another act before it ends (tokio's blocking pool: 10 s).
const KEEP: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// Acts waiting for a thread, and how many threads wait for an act.
struct Waiting {
    jobs: VecDeque<Job>,
    idle: usize,
}

static WAITING: Mutex<Waiting> = Mutex::new(Waiting {
    jobs: VecDeque::new(),
    idle: 0,
});
static READY: Condvar = Condvar::new();

fn waiting() -> MutexGuard<'static, Waiting> {
    WAITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `job` on an idle thread, or on a new one; the error when none could be started
/// (the job is then dropped, never run).
pub fn run(job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let mut w = waiting();
    if w.idle > w.jobs.len() {
        w.jobs.push_back(Box::new(job));
        READY.notify_one();
        return Ok(());
    }
    drop(w);
    std::thread::Builder::new()
        .name("case".into())
        .spawn(move || {
            job();
            serve();
        })
        .map(drop)
}

/// Take the acts that come while this thread is idle, until none comes for `KEEP`.
fn serve() {
    let mut w = waiting();
    loop {
        w.idle += 1;
        w = READY
            .wait_timeout_while(w, KEEP, |w| w.jobs.is_empty())
            .unwrap_or_else(|e| e.into_inner())
            .0;
        w.idle -= 1;
        let Some(job) = w.jobs.pop_front() else {
            return;
        };
        drop(w);
        job();
        w = waiting();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn each_act_gets_a_thread_at_once_and_idle_threads_take_later_ones() {
        // Eight acts that each wait to be let go: all eight must be running at once.
        let (started, starts) = mpsc::channel();
        let mut gates = Vec::new();
        for n in 0..8 {
            let (open, gate) = mpsc::channel::<()>();
            gates.push(open);
            let started = started.clone();
            super::run(move || {
                started.send(n).unwrap();
                let _ = gate.recv();
            })
            .unwrap();
        }
        for _ in 0..8 {
            starts.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        drop(gates);
        // Later acts run too, on the threads now idle or new ones.
        for n in 0..20 {
            let started = started.clone();
            super::run(move || started.send(100 + n).unwrap()).unwrap();
            assert_eq!(starts.recv_timeout(Duration::from_secs(5)), Ok(100 + n));
        }
    }
}
