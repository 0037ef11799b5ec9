//! Naming the case at fault: which case each thread is running, a crash line written from
//! the fatal signal's handler, and a watchdog for event loops that stop making progress.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

thread_local! {
    /// The name of the case this thread is in (`test` or `act`), as (pointer, length); null
    /// when none. Const-initialised and without a destructor, so reading it needs no lazy
    /// set-up and is safe from a signal handler.
    static RUNNING: Cell<(*const u8, usize)> = const { Cell::new((std::ptr::null(), 0)) };
    /// The event loop this thread drives, if it drives one.
    static LOOP: Cell<Option<&'static LoopState>> = const { Cell::new(None) };
}

/// What the watchdog reads of one event loop.
pub struct LoopState {
    pub index: usize,
    /// Bumped by a task on the loop every `tick`: stuck when the loop is stuck.
    ticks: AtomicU64,
    /// 1 + the index in the chain of the case the loop is in; 0 when none.
    case: AtomicUsize,
}

/// Every event loop of this process.
static LOOPS: Mutex<Vec<&'static LoopState>> = Mutex::new(Vec::new());

/// How often a loop proves it is alive: a tenth of `stall_timeout`, at least every second
/// (so an idle loop wakes once a second for it, as lighttpd's does, where a fixed 100 ms
/// woke it ten times), and at most every 10 ms.
fn tick(stall: Duration) -> Duration {
    (stall / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Marks this thread as in case `index` (named `name`) until the guard drops.
pub struct Running {
    before: (*const u8, usize),
    case_before: usize,
}

/// Call around a case's `test` and `act`: a crash or a stall while the guard lives names
/// this case.
pub fn running(index: usize, name: &str) -> Running {
    let before = RUNNING.with(|r| r.replace((name.as_ptr(), name.len())));
    let case_before = LOOP.with(Cell::get).map_or(0, |l| {
        // Only this thread writes its loop's case: a load and a store, not a locked swap.
        let before = l.case.load(Ordering::Relaxed);
        l.case.store(index + 1, Ordering::Relaxed);
        before
    });
    Running {
        before,
        case_before,
    }
}

/// Call around loading a plugin (its library's initialisers, its `create`): a crash names
/// it. No event loop's case changes.
pub fn loading(name: &str) -> Running {
    let before = RUNNING.with(|r| r.replace((name.as_ptr(), name.len())));
    let case_before = LOOP
        .with(Cell::get)
        .map_or(0, |l| l.case.load(Ordering::Relaxed));
    Running {
        before,
        case_before,
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(self.before));
        if let Some(l) = LOOP.with(Cell::get) {
            l.case.store(self.case_before, Ordering::Relaxed);
        }
    }
}

/// Register the calling thread as event loop `index` and return the future that keeps
/// proving it alive to a watchdog of `stall` (none when zero); spawn that future on the
/// loop.
pub fn enter_loop(index: usize, stall: Duration) -> impl std::future::Future<Output = ()> {
    let state: &'static LoopState = Box::leak(Box::new(LoopState {
        index,
        ticks: AtomicU64::new(0),
        case: AtomicUsize::new(0),
    }));
    LOOP.with(|l| l.set(Some(state)));
    LOOPS.lock().unwrap_or_else(|e| e.into_inner()).push(state);
    async move {
        if stall.is_zero() {
            return;
        }
        let mut every = tokio::time::interval(tick(stall));
        loop {
            every.tick().await;
            state.ticks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the watchdog does about a stuck loop.
#[derive(Clone, Copy, PartialEq)]
pub enum OnStall {
    /// Say so (single-process mode: nothing could take over).
    Report,
    /// Say so and abort, so the master starts a fresh worker.
    Abort,
}

/// Start the watchdog thread: a loop whose ticks stop for `stall` is reported as
/// "event loop N stuck in case=X for Ns". `case_name` turns a chain index into a name.
pub fn watch(
    stall: Duration,
    on_stall: OnStall,
    case_name: impl Fn(usize) -> String + Send + 'static,
) -> Result<(), String> {
    if stall.is_zero() {
        return Ok(());
    }
    let period = (stall / 5).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let run = move || {
        let mut seen: Vec<(u64, Instant, bool)> = Vec::new();
        loop {
            std::thread::sleep(period);
            let loops = LOOPS.lock().unwrap_or_else(|e| e.into_inner()).clone();
            seen.resize(loops.len(), (u64::MAX, Instant::now(), false));
            for (l, (ticks, since, told)) in loops.iter().zip(seen.iter_mut()) {
                let now = l.ticks.load(Ordering::Relaxed);
                if now != *ticks {
                    (*ticks, *since, *told) = (now, Instant::now(), false);
                    continue;
                }
                if *told || since.elapsed() < stall {
                    continue;
                }
                *told = true;
                stuck(l, since.elapsed(), on_stall, &case_name);
            }
        }
    };
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(run)
        .map(drop)
        .map_err(|e| format!("cannot start the watchdog thread: {e}"))
}

/// Report one stuck loop; abort when told to.
fn stuck(l: &LoopState, for_: Duration, on_stall: OnStall, case_name: &dyn Fn(usize) -> String) {
    let case = match l.case.load(Ordering::Relaxed) {
        0 => "none (the host itself)".to_string(),
        n => case_name(n - 1),
    };
    let secs = for_.as_secs_f64();
    match on_stall {
        OnStall::Report => {
            log::error!("event loop {} stuck in case={case} for {secs:.1}s", l.index)
        }
        OnStall::Abort => {
            log::error!(
                "event loop {} stuck in case={case} for {secs:.1}s; aborting this worker so the master starts a fresh one",
                l.index
            );
            // Our own abort: the line above said why, the handler need not.
            QUIET.store(true, Ordering::SeqCst);
            std::process::abort();
        }
    }
}

/// The signals that mean this process has failed.
const FATAL: [(libc::c_int, &str); 5] = [
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGFPE, "SIGFPE"),
];

/// Set before the watchdog's own abort, which needs no crash line.
static QUIET: AtomicBool = AtomicBool::new(false);

/// The start of the crash line (`server: worker 2 (pid 1234)`), leaked, set once before the
/// handlers are installed: its address and length.
static PREFIX_PTR: AtomicUsize = AtomicUsize::new(0);
static PREFIX_LEN: AtomicUsize = AtomicUsize::new(0);

/// Install the fatal-signal handler: it writes one line naming the signal and the case this
/// thread was running, then lets the signal kill the process as it would have. It runs on
/// the thread's alternate signal stack (Rust's runtime gives every thread one), so a stack
/// overflow is reported too.
pub fn install(who: &str) {
    let prefix: &'static [u8] = Box::leak(format!("server: {who}").into_bytes().into_boxed_slice());
    PREFIX_PTR.store(prefix.as_ptr() as usize, Ordering::SeqCst);
    PREFIX_LEN.store(prefix.len(), Ordering::SeqCst);
    for (sig, name) in FATAL {
        // SAFETY: `on_fatal` only calls async-signal-safe functions (write, sigaction, raise)
        // and reads memory that outlives it (a leaked prefix, static names, a thread-local
        // Cell that needs no initialisation); the sigaction struct is fully initialised.
        let rc = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_fatal as *const () as libc::sighandler_t;
            act.sa_flags = libc::SA_ONSTACK;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut())
        };
        if rc != 0 {
            log::warn!("cannot handle {name}: a crash will not name its case");
        }
    }
    // SAFETY: `on_exit` has the signature atexit wants and only calls write and _exit.
    if unsafe { libc::atexit(on_exit) } != 0 {
        log::warn!("cannot watch exit(): a case that calls it will not be named");
    }
}

/// Run by exit(3): a case (or a plugin being loaded) that calls it ends the process, and
/// would do so without a word and, in `create`, with the status it chose (`exit(0)` made
/// `--check-config` pass). Name the case and end with status 1; the host's own exits, made
/// outside any case, pass.
extern "C" fn on_exit() {
    let (ptr, len) = RUNNING.with(Cell::get);
    if ptr.is_null() {
        return;
    }
    let mut line = Line::new();
    line.push(prefix());
    line.push(b": case=");
    // SAFETY: as in `on_fatal`, a non-null RUNNING names a case whose guard is alive.
    line.push(unsafe { std::slice::from_raw_parts(ptr, len) });
    line.push(b" called exit(); the process ends with it\n");
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `line` is a valid buffer.
    unsafe {
        libc::write(2, line.buf.as_ptr().cast(), line.len);
        libc::_exit(1);
    }
}

/// The start of every line this module writes itself: `server: worker 2 (pid 1234)`.
fn prefix() -> &'static [u8] {
    // SAFETY: PREFIX_PTR/LEN describe a leaked, never-freed byte slice set before any
    // handler was installed (empty before then).
    unsafe {
        std::slice::from_raw_parts(
            PREFIX_PTR.load(Ordering::SeqCst) as *const u8,
            PREFIX_LEN.load(Ordering::SeqCst),
        )
    }
}

/// The handler. Writes `server: worker 2 (pid 1234): fatal signal SIGSEGV in case=crashy`,
/// restores the default action and raises the signal again, so the process ends as the
/// signal would have ended it (and the master sees which signal).
extern "C" fn on_fatal(sig: libc::c_int) {
    let mut line = Line::new();
    line.push(prefix());
    line.push(b": fatal signal ");
    let name = FATAL
        .iter()
        .find(|(s, _)| *s == sig)
        .map_or("?", |(_, n)| n);
    line.push(name.as_bytes());
    let (ptr, len) = RUNNING.with(Cell::get);
    if !ptr.is_null() {
        line.push(b" in case=");
        // SAFETY: a non-null RUNNING points at the name of a case whose `Running` guard is
        // still alive on this thread (the guard resets it on drop), so the bytes are live.
        line.push(unsafe { std::slice::from_raw_parts(ptr, len) });
    } else {
        line.push(b" (no case was running on this thread)");
    }
    line.push(b"\n");
    // SAFETY: write(2), sigaction(2) and raise(3) are async-signal-safe; `line` is a valid
    // buffer; the sigaction struct is fully initialised.
    unsafe {
        if !QUIET.load(Ordering::SeqCst) {
            libc::write(2, line.buf.as_ptr().cast(), line.len);
        }
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
        libc::raise(sig);
    }
}

/// A fixed buffer: the handler may not allocate.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }
}
