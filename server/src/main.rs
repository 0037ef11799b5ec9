//! Entry point: flags → configuration → plugins → listener; start-up errors exit with a message.

mod access_log;
mod banner;
mod chain;
mod cli;
mod config;
mod conn;
mod error_page;
mod errors;
mod filter;
mod http;
mod plugin;
mod reply;
mod resolve;
mod send;
mod server;
mod signals;
mod static_file;
mod stats;

use clap::Parser;

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

fn main() -> ExitCode {
    // Descriptors inherited from whoever started us must not reach CGI scripts: mark them all
    // close-on-exec (ours already are). Done first, while there is only one thread.
    close_fds::set_fds_cloexec(3, &[]);
    let cli = cli::Cli::parse();
    let log_config = simplelog::ConfigBuilder::new()
        .set_target_level(simplelog::LevelFilter::Off)
        .set_thread_level(simplelog::LevelFilter::Off)
        .build();
    let _ = simplelog::WriteLogger::init(cli.log_level, log_config, std::io::stderr());

    match start(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("server: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Load, check, bind, start the event loops, handle signals, announce, serve.
fn start(cli: &cli::Cli) -> Result<(), String> {
    let config = config::Config::load(&cli.config, cli.listen.as_deref(), cli.root.as_deref())?;
    let chain = chain::Chain::load(&config)?;
    if cli.check_config {
        print!("{}", banner::check_report(&config, &chain));
        return Ok(());
    }
    let listener = bind(&config)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let banner = banner::startup(addr, &config.root, &chain, banner::colour_wanted());
    let shared = shared_state(&config, chain)?;
    raise_fd_limit();
    let first = start_event_loops(listener, config.workers, &shared)?;
    event_loop()?.block_on(async move {
        signals::install(cli, config, &shared)?;
        announce(&banner);
        let served = server::run(first, shared).await.map_err(|e| e.to_string());
        log::info!("stopped");
        served
    })
}

fn bind(config: &config::Config) -> Result<std::net::TcpListener, String> {
    server::bind(config.listen).map_err(|e| {
        format!(
            "cannot listen on {}: {e}\n  fix: choose a free address with --listen or `listen` in {}",
            config.listen,
            config.path.display()
        )
    })
}

/// What every connection shares: the chain, the limits, the access log, the stop flag.
fn shared_state(config: &config::Config, chain: chain::Chain) -> Result<Arc<conn::Shared>, String> {
    for p in &chain.cases {
        log::info!("case {}", plugin::describe(p));
    }
    let access_log = match config.access_log.as_deref() {
        None | Some("") => None,
        Some(target) => {
            let base = config.path.parent().unwrap_or(std::path::Path::new("."));
            Some(access_log::AccessLog::open(target, base)?)
        }
    };
    Ok(Arc::new(conn::Shared {
        chain: RwLock::new(Arc::new(chain)),
        limits: config.limits.clone(),
        open: Default::default(),
        access_log,
        stopping: Default::default(),
        stop: Default::default(),
    }))
}

/// `workers` single-threaded event loops (one per core by default), as nginx runs a worker
/// per core: no task ever moves between threads. They accept from one shared listening
/// socket. All but the first run on threads of their own, started here; the first is
/// returned for the main thread. Returns once every thread's loop can serve, or with the
/// reason one cannot.
fn start_event_loops(
    listener: std::net::TcpListener,
    workers: usize,
    shared: &Arc<conn::Shared>,
) -> Result<std::net::TcpListener, String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    for i in 1..workers {
        let shared_socket = listener
            .try_clone()
            .map_err(|e| format!("cannot share the listening socket: {e}"))?;
        spawn_event_loop(i, shared_socket, Arc::clone(shared), ready_tx.clone())?;
    }
    for _ in 1..workers {
        ready_rx
            .recv()
            .map_err(|_| "an event loop thread died while starting".to_string())??;
    }
    Ok(listener)
}

/// Event loop `i` on a thread of its own; it reports on `ready` once its runtime is built.
fn spawn_event_loop(
    i: usize,
    listener: std::net::TcpListener,
    shared: Arc<conn::Shared>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let run = move || {
        let rt = match event_loop() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        if let Err(e) = rt.block_on(server::run(listener, shared)) {
            log::error!("event loop stopped: {e}");
        }
    };
    std::thread::Builder::new()
        .name(format!("loop-{i}"))
        .spawn(run)
        .map(drop)
        .map_err(|e| format!("cannot start an event loop thread: {e}"))
}

/// Every loop exists and signals are handled: say where we listen. Tests and scripts read
/// the first line to learn the port when listening on port 0.
fn announce(banner: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes());
    let _ = out.flush();
}

fn event_loop() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start an event loop: {e}"))
}

/// Every connection is a descriptor: use the hard limit, as nginx's worker_rlimit_nofile does.
fn raise_fd_limit() {
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
