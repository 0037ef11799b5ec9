//! The event loops of a serving process (a worker, or the single process): what their
//! connections share, one single-threaded loop per thread, all accepting on the same sockets.

use crate::{access_log, children, config, conn, fault, plugin, server, sites};
use std::net::TcpListener;
use std::sync::{Arc, RwLock};

/// What every connection shares: the sites' chains, the limits, the access log, the stop flag.
pub fn shared_state(
    config: &config::Config,
    sites: sites::Sites,
) -> Result<Arc<conn::Shared>, String> {
    for chain in sites.chains() {
        for p in &chain.cases {
            log::debug!("site {}: case {}", chain.site.label, plugin::describe(p));
        }
    }
    let access_log = match config.access_log.as_deref() {
        None | Some("") => None,
        Some(target) => Some(Arc::new(access_log::AccessLog::open(
            target,
            &config_dir(config),
            config.access_log_format == config::LogFormat::VhostCombined,
        )?)),
    };
    crate::http::show_version(config.server_tokens);
    Ok(Arc::new(conn::Shared {
        sites: RwLock::new(Arc::new(sites)),
        limits: within_descriptors(config.limits.clone()),
        open: Default::default(),
        access_log,
        stopping: Default::default(),
        stop: Default::default(),
        accepting: Default::default(),
        retiring: Default::default(),
        http2: config.http2,
        trusted: config.trusted_proxies.clone(),
    }))
}

/// The folder relative paths in the configuration are resolved against.
pub fn config_dir(config: &config::Config) -> std::path::PathBuf {
    config
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf()
}

/// `loops` single-threaded event loops, as nginx runs one loop per worker: no task ever
/// moves between threads. They accept from the same listening sockets. All but the first
/// run on threads of their own, started here; the first loop's sockets are returned for
/// the calling thread. Returns once every thread's loop can serve, or with the reason one
/// cannot.
pub fn start(
    listeners: &[TcpListener],
    loops: usize,
    shared: &Arc<conn::Shared>,
) -> Result<Vec<TcpListener>, String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    for i in 1..loops {
        spawn(i, copies(listeners)?, Arc::clone(shared), ready_tx.clone())?;
    }
    for _ in 1..loops {
        ready_rx
            .recv()
            .map_err(|_| "an event loop thread died while starting".to_string())??;
    }
    copies(listeners)
}

fn copies(listeners: &[TcpListener]) -> Result<Vec<TcpListener>, String> {
    listeners
        .iter()
        .map(TcpListener::try_clone)
        .collect::<std::io::Result<_>>()
        .map_err(|e| format!("cannot share a listening socket: {e}"))
}

/// Event loop `i` on a thread of its own; it reports on `ready` once its runtime is built.
fn spawn(
    i: usize,
    listeners: Vec<TcpListener>,
    shared: Arc<conn::Shared>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let stall = shared.limits.stall_timeout;
    let run = move || {
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let served = rt.block_on(async move {
            tokio::spawn(fault::enter_loop(i, stall));
            server::run(listeners, shared).await
        });
        access_log::write_held();
        if let Err(e) = served {
            log::error!("event loop stopped: {e}");
        }
    };
    std::thread::Builder::new()
        .name(format!("loop-{i}"))
        .spawn(run)
        .map(drop)
        .map_err(|e| format!("cannot start an event loop thread: {e}"))
}

/// Run `work` on an event loop on this thread, then write the access lines it still holds
/// and end what the plugins left running, before the runtime waits for its pool threads
/// (which wait on those scripts), and what they start while it waits. For a worker or a
/// single-process server only, at its end: it ends every child process of this process
/// that leads a process group of its own.
pub fn block_on<F: std::future::Future>(work: F) -> Result<F::Output, String> {
    let rt = runtime()?;
    let out = rt.block_on(work);
    access_log::write_held();
    children::end(children::GRACE);
    children::keep_ending();
    drop(rt);
    Ok(out)
}

/// One single-threaded runtime: an event loop. Whenever it has nothing left to run it
/// writes the access lines it holds.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(access_log::write_held)
        .build()
        .map_err(|e| format!("cannot start an event loop: {e}"))
}

/// Every connection is a descriptor: use the hard limit, as nginx's worker_rlimit_nofile does.
/// Descriptors kept aside for what is not a connection: listeners, files, scripts' pipes.
const FD_RESERVE: usize = 256;

/// `max_connections`, lowered to what the open-file limit allows (after raising it), so a
/// connection past the cap can still be accepted and told 503 instead of failing in accept.
fn within_descriptors(mut limits: config::Limits) -> config::Limits {
    raise_fd_limit();
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .and_then(|n| usize::try_from(n).ok());
    let budget = nofile.map(|n| n.saturating_sub(FD_RESERVE).max(16));
    if let Some(budget) = budget.filter(|&b| b < limits.max_connections) {
        log::warn!(
            "max_connections = {} is more than an open-file limit of {} allows ({FD_RESERVE} are kept for files and scripts): using {budget}; raise `ulimit -n` (LimitNOFILE= in systemd) for more",
            limits.max_connections,
            nofile.unwrap_or(0)
        );
        limits.max_connections = budget;
    }
    limits
}

pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            },
        );
    }
}

/// The watchdog over this process's loops, naming cases from the current sites' chains.
pub fn watch(shared: &Arc<conn::Shared>, on_stall: fault::OnStall) -> Result<(), String> {
    let weak = Arc::downgrade(shared);
    fault::watch(shared.limits.stall_timeout, on_stall, move |i| {
        weak.upgrade()
            .and_then(|s| s.sites().case_name(i))
            .unwrap_or_else(|| format!("#{i}"))
    })
}
