//! Signals in single-process mode, as nginx reads them without a master: TERM, INT and QUIT
//! stop gracefully, HUP reloads server.toml's chain in place, USR1 reopens the access log,
//! USR2 and WINCH (which need a master) are logged and ignored; none of them is fatal. Also
//! the stray signals every process (master, worker, single) survives.

use crate::{cli, config, conn, sites};
use std::sync::Arc;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Handle every signal a service manager or logrotate may send. Call it on the main event
/// loop before announcing that we listen: from then on no such signal meets its default
/// action, which ends the process (all but WINCH). SIGPIPE needs nothing here: Rust's
/// runtime ignores it before `main`, so a write to a closed socket is an EPIPE error.
pub fn install(
    cli: &cli::Cli,
    config: config::Config,
    shared: &Arc<conn::Shared>,
) -> Result<(), String> {
    let stop = [
        listen(SignalKind::terminate(), "SIGTERM")?,
        listen(SignalKind::interrupt(), "SIGINT")?,
        listen(SignalKind::quit(), "SIGQUIT")?,
    ];
    let hup = listen(SignalKind::hangup(), "SIGHUP")?;
    let usr1 = listen(SignalKind::user_defined1(), "SIGUSR1")?;
    let usr2 = listen(SignalKind::user_defined2(), "SIGUSR2")?;
    let winch = listen(SignalKind::window_change(), "SIGWINCH")?;
    tokio::spawn(stop_on(stop, Arc::clone(shared)));
    tokio::spawn(reload_on(hup, cli.clone(), config, Arc::clone(shared)));
    tokio::spawn(reopen_log_on(usr1, Arc::clone(shared)));
    tokio::spawn(ignore(usr2, "a binary upgrade needs the master process"));
    tokio::spawn(ignore(winch, "there are no worker processes to stop"));
    absorb_strays()
}

/// Signals no one sends this server on purpose but whose default action ends a process:
/// a stray `kill -ALRM` or an I/O or profiling timer. Each is logged and ignored (nginx
/// and lighttpd survive them too). A handler, not SIG_IGN, so scripts started later begin
/// with the default action again. XFSZ then makes an over-long write fail with EFBIG.
pub fn absorb_strays() -> Result<(), String> {
    use rustix::process::Signal as S;
    for (sig, name) in [
        (S::ALARM, "SIGALRM"),
        (S::IO, "SIGIO"),
        (S::POWER, "SIGPWR"),
        (S::VTALARM, "SIGVTALRM"),
        (S::PROF, "SIGPROF"),
        (S::XFSZ, "SIGXFSZ"),
    ] {
        let named = listen(SignalKind::from_raw(sig.as_raw()), name)?;
        tokio::spawn(ignore(named, "not a signal this server acts on"));
    }
    Ok(())
}

/// A named signal stream.
struct Named(Signal, &'static str);

fn listen(kind: SignalKind, name: &'static str) -> Result<Named, String> {
    signal(kind)
        .map(|s| Named(s, name))
        .map_err(|e| format!("cannot handle {name}: {e}"))
}

/// TERM, INT or QUIT: stop accepting, finish the requests in flight, exit 0.
async fn stop_on([mut term, mut int, mut quit]: [Named; 3], shared: Arc<conn::Shared>) {
    let name = tokio::select! {
        _ = term.0.recv() => term.1,
        _ = int.0.recv() => int.1,
        _ = quit.0.recv() => quit.1,
    };
    log::info!("{name}: stopping: no new connections; finishing the requests in flight");
    shared.begin_stop();
}

/// SIGHUP: read server.toml again, load every site's chain (new plugins, new settings, new
/// order, new roots, new sites) and swap them in whole. Requests in flight finish on the old chain, whose
/// instances are destroyed when the last of them is done; libraries stay loaded. Any error
/// keeps the old chain, as nginx keeps its old configuration.
async fn reload_on(
    mut hup: Named,
    cli: cli::Cli,
    mut running: config::Config,
    shared: Arc<conn::Shared>,
) {
    while hup.0.recv().await.is_some() {
        let loaded = config::Config::load(&cli.config, cli.listen.as_deref(), cli.root.as_deref())
            .and_then(|c| sites::Sites::load(&c).map(|sites| (c, sites)));
        match loaded {
            Ok((config, sites)) => {
                warn_restart_only(&running, &config);
                let chain = sites.default_chain();
                let names: Vec<&str> = chain.cases.iter().map(|p| p.name.as_str()).collect();
                let line = format!(
                    "reloaded {}: chain {}{}",
                    config.path.display(),
                    names.join(", "),
                    other_sites(&config)
                );
                // Swapped before it is said: a client that reads the line gets the new chain.
                shared.swap_sites(sites);
                log::info!("{line}");
                running = config;
            }
            Err(e) => log::error!("reload failed, keeping the running configuration: {e}"),
        }
    }
}

/// `; 2 more sites` in the reload line, when there are sites besides the default.
pub fn other_sites(config: &config::Config) -> String {
    match config.sites.len() {
        0 | 1 => String::new(),
        n => format!("; {} more sites", n - 1),
    }
}

/// Settings a single-process reload reads but cannot apply (with a master, it does).
fn warn_restart_only(running: &config::Config, new: &config::Config) {
    if new.listen != running.listen || new.workers != running.workers {
        log::warn!("reload: in single-process mode, listen and workers changes take effect only after a restart");
    }
    if new.limits != running.limits || new.access_log != running.access_log {
        log::warn!("reload: in single-process mode, [limits] and access_log changes take effect only after a restart");
    }
    if new.trusted_proxies != running.trusted_proxies
        || new.access_log_format != running.access_log_format
    {
        log::warn!("reload: in single-process mode, trusted_proxies and access_log_format changes take effect only after a restart");
    }
}

/// SIGUSR1: open the access log's path anew (logrotate has moved the old file away).
async fn reopen_log_on(mut usr1: Named, shared: Arc<conn::Shared>) {
    while usr1.0.recv().await.is_some() {
        match shared.access_log.as_ref().map(|log| log.reopen()) {
            Some(Ok(Some(path))) => {
                log::info!("SIGUSR1: reopened the access log {}", path.display())
            }
            Some(Ok(None)) => log::info!("SIGUSR1: the access log is stderr; nothing to reopen"),
            None => log::info!("SIGUSR1: there is no access log to reopen"),
            Some(Err(e)) => log::error!("SIGUSR1: {e}; still writing to the old file"),
        }
    }
}

/// A signal that means something to nginx but nothing (yet) to us: say so and go on.
async fn ignore(mut sig: Named, why: &'static str) {
    while sig.0.recv().await.is_some() {
        log::info!("{}: ignored ({why})", sig.1);
    }
}
