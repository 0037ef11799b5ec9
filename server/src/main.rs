//! Entry point: flags → configuration → plugins → listener; start-up errors exit with a message.

mod access_log;
mod chain;
mod cli;
mod config;
mod conn;
mod error_page;
mod errors;
mod http;
mod plugin;
mod reply;
mod resolve;
mod send;
mod server;
mod static_file;

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

fn start(cli: &cli::Cli) -> Result<(), String> {
    let config = config::Config::load(&cli.config, cli.listen.as_deref(), cli.root.as_deref())?;
    let chain = chain::Chain::load(&config)?;
    if cli.check_config {
        println!("configuration {} is valid", config.path.display());
        println!("listen {}", config.listen);
        println!("root {}", config.root.display());
        println!("workers {}", config.workers);
        println!("chain (first case whose test() is true acts):");
        for (i, p) in chain.cases.iter().enumerate() {
            println!("  {}. {}", i + 1, plugin::describe(p));
        }
        return Ok(());
    }
    let listener = server::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}\n  fix: choose a free address with --listen or `listen` in {}", config.listen, config.path.display()))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    for p in &chain.cases {
        log::info!("case {}", plugin::describe(p));
    }
    let shared = Arc::new(conn::Shared {
        chain: RwLock::new(Arc::new(chain)),
        limits: config.limits.clone(),
        open: Default::default(),
        access_log: match config.access_log.as_deref() {
            None | Some("") => None,
            Some(target) => Some(access_log::AccessLog::open(
                target,
                config.path.parent().unwrap_or(std::path::Path::new(".")),
            )?),
        },
        stopping: Default::default(),
        stop: Default::default(),
    });
    raise_fd_limit();
    // `workers` single-threaded event loops (one per core by default), as nginx runs a
    // worker per core: no task ever moves between threads. They accept from one shared
    // listening socket.
    let loops = config.workers;
    let mut listeners = vec![listener];
    for _ in 1..loops {
        let shared_socket = listeners[0]
            .try_clone()
            .map_err(|e| format!("cannot share the listener on {addr}: {e}"))?;
        listeners.push(shared_socket);
    }
    let first = listeners.remove(0);
    // Each loop reports once its runtime is built, so "listening" is printed only when every
    // loop can serve, and a loop that cannot start stops the server with its reason.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let others = listeners.len();
    for (i, l) in listeners.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let ready = ready_tx.clone();
        std::thread::Builder::new()
            .name(format!("loop-{}", i + 1))
            .spawn(move || {
                let rt = match event_loop() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                if let Err(e) = rt.block_on(server::run(l, shared)) {
                    log::error!("event loop stopped: {e}");
                }
            })
            .map_err(|e| format!("cannot start an event loop thread: {e}"))?;
    }
    for _ in 0..others {
        ready_rx
            .recv()
            .map_err(|_| "an event loop thread died while starting".to_string())??;
    }
    let rt = event_loop()?;
    rt.block_on(async move {
        // Signal handlers first: a SIGHUP or SIGTERM that comes after "listening" must never
        // meet the default action (which ends the process).
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
        let int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
        let hup = signal(SignalKind::hangup()).map_err(|e| format!("SIGHUP: {e}"))?;
        let on_signal = Arc::clone(&shared);
        tokio::spawn(async move {
            shutdown_signal(term, int).await;
            log::info!("stopping: no new connections; finishing the requests in flight");
            on_signal.begin_stop();
        });
        tokio::spawn(reload_on_hangup(
            hup,
            cli.clone(),
            config,
            Arc::clone(&shared),
        ));
        // Every loop exists and signals are handled. Tests and scripts read this line to
        // learn the port when listening on port 0.
        println!("listening on http://{addr}/");
        let _ = std::io::stdout().flush();
        let r = server::run(first, shared).await.map_err(|e| e.to_string());
        log::info!("stopped");
        r
    })
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

/// SIGHUP: read server.toml again, load its chain (new plugins, new settings, new order,
/// new root) and swap it in whole. Requests in flight finish on the old chain, whose
/// instances are destroyed when the last of them is done; libraries stay loaded. Any error
/// keeps the old chain, as nginx keeps its old configuration.
async fn reload_on_hangup(
    mut hup: tokio::signal::unix::Signal,
    cli: cli::Cli,
    mut running: config::Config,
    shared: Arc<conn::Shared>,
) {
    while hup.recv().await.is_some() {
        let loaded = config::Config::load(&cli.config, cli.listen.as_deref(), cli.root.as_deref())
            .and_then(|c| chain::Chain::load(&c).map(|chain| (c, chain)));
        match loaded {
            Ok((config, chain)) => {
                if config.listen != running.listen || config.workers != running.workers {
                    log::warn!(
                        "reload: listen and workers changes take effect only after a restart"
                    );
                }
                if config.limits != running.limits || config.access_log != running.access_log {
                    log::warn!(
                        "reload: [limits] and access_log changes take effect only after a restart"
                    );
                }
                let names: Vec<&str> = chain.cases.iter().map(|p| p.name.as_str()).collect();
                log::info!(
                    "reloaded {}: chain {}",
                    config.path.display(),
                    names.join(", ")
                );
                shared.swap_chain(chain);
                running = config;
            }
            Err(e) => log::error!("reload failed, keeping the running configuration: {e}"),
        }
    }
}

async fn shutdown_signal(
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
