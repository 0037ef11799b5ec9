//! A worker process: takes the listening sockets and the control socket its master passed
//! down, reads the configuration text from the master, becomes `user`, loads the plugins,
//! serves on one event loop, and stops when the master says so or goes away.

use crate::control::{self, ToMaster, ToWorker};
use crate::tls::SelfSigned;
use crate::{banner, cli, config, conn, fault, loops, privileges, server, sites};
use std::io::BufRead;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// Run worker `slot`.
pub fn run(cli: &cli::Cli, slot: usize) -> Result<(), String> {
    // A master that dies (even by SIGKILL) takes its workers along: they stop gracefully.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
    crate::plugin::quiet_shadow_warnings();
    let (listeners, control) = inherited()?;
    let mut reader = std::io::BufReader::new(
        control
            .try_clone()
            .map_err(|e| format!("control socket: {e}"))?,
    );
    let (config, ticket_key, respawned, self_signed) = configuration(cli, &mut reader)?;
    // Key files are often readable by root only: read them before becoming `user`. The
    // ticket key goes into the acceptors; this copy is zeroed when install drops it.
    let staples = match respawned {
        true => crate::tls::Staples::BestEffort,
        false => crate::tls::Staples::Required,
    };
    crate::tls::install(&config, ticket_key, staples, self_signed.as_ref())?;
    if let Some(id) = privileges::target(config.user.as_deref(), config.group.as_deref())? {
        privileges::become_(&id)?;
    }
    fault::install(&format!("worker {slot} (pid {})", std::process::id()));
    let sites = sites::Sites::load(&config)?;
    let cases = banner::described(&sites.default_chain());
    let shared = loops::shared_state(&config, sites)?;
    loops::raise_fd_limit();
    loops::watch(&shared, fault::OnStall::Abort)?;
    loops::block_on(async move {
        tokio::spawn(fault::enter_loop(0, shared.limits.stall_timeout));
        signals(&shared)?;
        let (read, write) = tokio::net::UnixStream::from_std(nonblocking(control)?)
            .map_err(|e| format!("control socket: {e}"))?
            .into_split();
        let mut write = write;
        let _ = write
            .write_all(&control::line(&ToMaster::Ready { cases }))
            .await;
        // What the blocking reader already buffered is lost: the master sends nothing
        // before our Ready, so there is nothing in it.
        drop(reader);
        tokio::spawn(obey(read, write, Arc::clone(&shared)));
        server::run(listeners, shared)
            .await
            .map_err(|e| e.to_string())
    })?
}

/// The sockets passed in LISTEN_FDS: the listeners, then the control socket (last).
fn inherited() -> Result<(Vec<std::net::TcpListener>, UnixStream), String> {
    let mut fds = listenfd::ListenFd::from_env();
    let n = fds.len();
    if n < 2 {
        return Err("a worker is started by its master (LISTEN_FDS is missing)".into());
    }
    let unix = rustix::net::AddressFamily::UNIX.as_raw() as i32;
    let stream = rustix::net::SocketType::STREAM.as_raw() as i32;
    let control = fds
        .take_custom::<UnixStream>(n - 1, unix, stream, "the control socket")
        .map_err(|e| e.to_string())?
        .ok_or("the control socket is missing")?;
    let listeners = (0..n - 1)
        .filter_map(|i| fds.take_tcp_listener(i).transpose())
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("a listening socket: {e}"))?;
    Ok((listeners, control))
}

/// The first message: the configuration text, parsed as if read from `--config`, the
/// session ticket key, and whether this worker replaces one that died.
fn configuration(
    cli: &cli::Cli,
    reader: &mut impl BufRead,
) -> Result<(config::Config, control::TicketKey, bool, Option<SelfSigned>), String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("control socket: {e}"))?;
    let first = control::parse::<ToWorker>(&line);
    // The line held the ticket key.
    zeroize::Zeroize::zeroize(&mut line);
    match first? {
        ToWorker::Config {
            text,
            ticket_key,
            respawned,
            self_signed,
        } => config::Config::from_text(
            &cli.config,
            &text,
            cli.listen.as_deref(),
            cli.root.as_deref(),
        )
        .map(|c| (c, ticket_key, respawned, self_signed)),
        other => Err(format!("expected the configuration first, got {other:?}")),
    }
}

fn nonblocking(s: UnixStream) -> Result<UnixStream, String> {
    s.set_nonblocking(true)
        .map_err(|e| format!("control socket: {e}"))?;
    Ok(s)
}

/// Do what the master says; its end-of-file (it died) is a stop too.
async fn obey(
    read: tokio::net::unix::OwnedReadHalf,
    mut write: tokio::net::unix::OwnedWriteHalf,
    shared: Arc<conn::Shared>,
) {
    let mut lines = tokio::io::BufReader::new(read).lines();
    loop {
        let msg = match lines.next_line().await {
            Ok(Some(line)) => control::parse::<ToWorker>(&line),
            _ => {
                shared.begin_stop();
                return;
            }
        };
        let reply = match msg {
            Ok(ToWorker::Stop) => {
                shared.retiring.store(false, Ordering::SeqCst);
                shared.begin_stop();
                drained(&shared).await;
                ToMaster::Draining
            }
            Ok(ToWorker::Retire) => {
                shared.retiring.store(true, Ordering::SeqCst);
                shared.begin_stop();
                drained(&shared).await;
                ToMaster::Draining
            }
            Ok(ToWorker::Reopen) => ToMaster::Reopened {
                result: reopen(&shared),
            },
            Ok(ToWorker::Config { .. }) => continue,
            Err(e) => {
                log::error!("{e}");
                continue;
            }
        };
        let _ = write.write_all(&control::line(&reply)).await;
    }
}

/// Wait (up to a second) until no accept loop runs: the master may then tell clients that
/// whatever they connect to next is served by the new workers.
async fn drained(shared: &conn::Shared) {
    for _ in 0..200 {
        if shared.accepting.load(Ordering::SeqCst) == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn reopen(shared: &conn::Shared) -> Result<Option<String>, String> {
    match shared.access_log.as_ref().map(|log| log.reopen()) {
        None => Ok(None),
        Some(Ok(path)) => Ok(path.map(|p| p.display().to_string())),
        Some(Err(e)) => Err(e),
    }
}

/// A worker's signals: TERM, INT and QUIT stop gracefully (a Ctrl-C reaches the whole
/// process group), USR1 reopens the access log; HUP, USR2 and WINCH are the master's and
/// are ignored here.
fn signals(shared: &Arc<conn::Shared>) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |k: SignalKind| signal(k).map_err(|e| format!("cannot handle a signal: {e}"));
    for kind in [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::quit(),
    ] {
        let mut s = listen(kind)?;
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            if s.recv().await.is_some() {
                shared.begin_stop();
            }
        });
    }
    let mut usr1 = listen(SignalKind::user_defined1())?;
    let for_usr1 = Arc::clone(shared);
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            if let Err(e) = reopen(&for_usr1) {
                log::error!("SIGUSR1: {e}; still writing to the old file");
            }
        }
    });
    for kind in [
        SignalKind::hangup(),
        SignalKind::user_defined2(),
        SignalKind::window_change(),
    ] {
        let mut s = listen(kind)?;
        tokio::spawn(async move { while s.recv().await.is_some() {} });
    }
    crate::signals::absorb_strays()
}
