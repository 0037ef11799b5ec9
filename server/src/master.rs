//! The master process, as nginx's: it reads and checks the configuration, binds the
//! listening sockets, starts worker processes (our own binary again, `--worker N`) that
//! inherit them, respawns a worker that dies, and turns signals into reloads (new workers),
//! log reopens, binary upgrades and graceful stops. It never loads a plugin itself.

use crate::control::{self, ToMaster, ToWorker};
use crate::listeners::{self, Bound};
use crate::{access_log, banner, cli, config::Config, notify, privileges};
use command_fds::{CommandFdExt, FdMapping};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use zeroize::Zeroize;

/// Deaths in a row (each before ready, within `QUICK` of its start) respawned at once;
/// past it, back off.
const BURST: u32 = 5;
/// A worker that dies before it is ready, sooner than this after its start, counts toward
/// the streak.
const QUICK: Duration = Duration::from_secs(2);
/// The longest back-off between respawns.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a worker that stopped cleanly, told by someone else, waits to be replaced: a
/// service manager stopping the whole group (systemd's KillMode=control-group, `timeout`,
/// a Ctrl-C) signals the master at the same moment, and its stop must win.
const CLEAN_EXIT_GRACE: Duration = Duration::from_millis(250);
/// How long new workers get to load their plugins and report ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long old workers get to stop accepting after a reload before it is logged anyway.
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// How often the master moves its ticket key on with the clock (a period is six hours).
const TICKET_KEY_CHECK: Duration = Duration::from_secs(600);

/// Run the master until a stop; `config` has been read from `--config`.
pub fn run(cli: &cli::Cli, config: Config) -> Result<(), String> {
    let text = std::fs::read_to_string(&cli.config)
        .map_err(|e| format!("cannot read {}: {e}", cli.config.display()))?;
    let config = match Config::from_text(
        &cli.config,
        &text,
        cli.listen.as_deref(),
        cli.root.as_deref(),
    ) {
        Ok(c) => c,
        Err(_) => config,
    };
    crate::loops::runtime()?.block_on(async move {
        let mut master = Master::new(cli, text, config)?;
        master.start().await?;
        master.serve().await;
        Ok(())
    })
}

/// One worker process as the master sees it.
struct Worker {
    slot: usize,
    generation: u64,
    pid: u32,
    to: tokio::net::unix::OwnedWriteHalf,
    started: Instant,
    ready: bool,
    /// Told to stop: its exit is expected, not a crash.
    stopping: bool,
    /// Told to stop by a reload, without a deadline (a later stop sets one).
    retiring: bool,
}

/// What happens to the master, one at a time.
enum Event {
    Said(u64, ToMaster),
    Exited(u64, ExitStatus),
    Respawn(usize, u64),
    Checked(Result<(), String>),
    /// A stopping worker's time is up.
    Overdue(u64),
    /// New workers of a reload took too long.
    StartTimeout(u64),
    DrainTimeout(u64),
    NewBinaryExited(ExitStatus),
    Signal(Sig),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sig {
    Stop(&'static str),
    Hup,
    Usr1,
    Usr2,
    Winch,
}

/// A reload under way.
struct Reload {
    /// When the HUP came.
    started: Instant,
    text: String,
    config: Config,
    phase: Phase,
}

enum Phase {
    /// The `--check-config` child runs.
    Checking,
    /// New workers are starting on `bound`.
    Starting {
        generation: u64,
        bound: Vec<Bound>,
        cases: Vec<(String, String)>,
    },
    /// New workers serve; old ones are asked to stop accepting.
    Draining {
        waiting: BTreeSet<u64>,
        cases: Vec<(String, String)>,
    },
}

struct Master {
    cli: cli::Cli,
    /// The binary on disk when we started, for USR2 (the running one may be replaced).
    exe: PathBuf,
    text: String,
    config: Config,
    bound: Vec<Bound>,
    identity: Option<privileges::Identity>,
    generation: u64,
    next_id: u64,
    workers: BTreeMap<u64, Worker>,
    /// Per slot: deaths in a row, each soon after its start.
    streak: HashMap<usize, u32>,
    /// Per slot: when its worker died, until the next one is ready.
    died: HashMap<usize, Instant>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    reload: Option<Reload>,
    /// A HUP came while a reload was under way: another follows it, so the file as it is
    /// now is what ends up running (nginx applies every HUP).
    hup_again: bool,
    /// Workers that have not yet answered a USR1.
    reopening: BTreeSet<u64>,
    stopping: bool,
    /// After WINCH: no workers until a HUP.
    winched: bool,
    pid_file: Option<PathBuf>,
    /// The new master a USR2 started, while it runs.
    upgrade: Option<u32>,
    /// Seals TLS session tickets in every worker, of every generation (so a session
    /// survives a reload too); made at start, kept one period behind the clock (a new
    /// worker derives the current key and still opens the period before's tickets), never
    /// written anywhere but to a new worker.
    ticket_key: control::TicketKey,
    /// What a `self-signed` listener shows in every worker, made at start (also when no
    /// listener asks for it yet: a reload may add one) and kept until the master ends.
    self_signed: crate::tls::SelfSigned,
}

impl Master {
    fn new(cli: &cli::Cli, text: String, config: Config) -> Result<Master, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find our own binary: {e}"))?;
        let pid_file = pid_file(cli, &config);
        Ok(Master {
            cli: cli.clone(),
            exe,
            text,
            config,
            bound: Vec::new(),
            identity: None,
            generation: 1,
            next_id: 0,
            workers: BTreeMap::new(),
            streak: HashMap::new(),
            died: HashMap::new(),
            tx,
            rx,
            reload: None,
            hup_again: false,
            reopening: BTreeSet::new(),
            stopping: false,
            winched: false,
            pid_file,
            ticket_key: crate::tickets::TicketKey::new()?,
            self_signed: crate::tls::SelfSigned::new()?,
            upgrade: None,
        })
    }

    /// Check, bind, start every worker and wait until each serves; then announce.
    async fn start(&mut self) -> Result<(), String> {
        check(&self.cli, &self.text).await?;
        self.identity =
            privileges::target(self.config.user.as_deref(), self.config.group.as_deref())?;
        privileges::explain(self.config.user.as_deref());
        self.bound = listeners::open(&self.config, &[], listeners::inherited()?)?;
        self.hand_over_log()?;
        signals(&self.tx)?;
        // Before any worker starts, so a path that cannot be written stops start-up (and
        // whoever reads the banner finds it).
        self.write_pid_file()?;
        for slot in 1..=self.config.workers {
            self.spawn(slot, self.generation, false).await?;
        }
        let cases = self.until_ready().await?;
        let urls: Vec<_> = self
            .bound
            .iter()
            .map(|b| listeners::url(b, &self.config))
            .collect();
        crate::banner::announce(
            &(banner::startup(&urls, &self.config.root, &cases, banner::colour_wanted())
                + &banner::sites(&self.config.sites, banner::colour_wanted())),
        );
        log::info!(
            "master (pid {}) serving with {} worker processes",
            std::process::id(),
            self.config.workers
        );
        notify::ready();
        Ok(())
    }

    /// Handle events until the first generation is ready; a worker that dies first fails
    /// the start.
    async fn until_ready(&mut self) -> Result<Vec<(String, String)>, String> {
        let deadline = tokio::time::sleep(START_TIMEOUT);
        tokio::pin!(deadline);
        let mut cases = Vec::new();
        while self.workers.values().any(|w| !w.ready) {
            let event = tokio::select! {
                e = self.rx.recv() => e,
                _ = &mut deadline => return Err(format!("workers did not start within {}s", START_TIMEOUT.as_secs())),
            };
            match event {
                Some(Event::Said(id, ToMaster::Ready { cases: c })) => {
                    if let Some(w) = self.workers.get_mut(&id) {
                        w.ready = true;
                    }
                    cases = c;
                }
                Some(Event::Exited(id, status)) => {
                    let slot = self.workers.remove(&id).map_or(0, |w| w.slot);
                    self.stop_all().await;
                    return Err(format!("worker {slot} {} while starting", describe(status)));
                }
                Some(Event::Signal(Sig::Stop(name))) => {
                    self.stop_all().await;
                    return Err(format!("{name} while starting"));
                }
                _ => {}
            }
        }
        Ok(cases)
    }

    /// The main loop: events until a stop has let every worker finish. The ticket key moves
    /// on with the clock meanwhile, so the master holds no older key than its workers need.
    async fn serve(&mut self) {
        let mut tick = tokio::time::interval(TICKET_KEY_CHECK);
        loop {
            let event = tokio::select! {
                e = self.rx.recv() => e,
                _ = tick.tick() => {
                    self.ticket_key.for_workers();
                    continue;
                }
            };
            let Some(event) = event else { break };
            self.on(event).await;
            if self.stopping && self.workers.is_empty() {
                break;
            }
        }
        self.remove_pid_file();
        log::info!("stopped");
    }

    async fn on(&mut self, event: Event) {
        match event {
            Event::Signal(sig) => self.on_signal(sig).await,
            Event::Said(id, msg) => self.on_message(id, msg).await,
            Event::Exited(id, status) => self.on_exit(id, status).await,
            Event::Respawn(slot, generation) => {
                if generation == self.generation && !self.stopping && !self.winched {
                    if let Err(e) = self.spawn(slot, generation, true).await {
                        log::error!("cannot start worker {slot}: {e}");
                        self.schedule_respawn(slot, 0);
                    }
                }
            }
            Event::Checked(result) => self.on_checked(result).await,
            Event::Overdue(id) => {
                if let Some(w) = self.workers.get(&id) {
                    log::warn!(
                        "worker {} (pid {}) did not stop in time; killing it",
                        w.slot,
                        w.pid
                    );
                    kill(w.pid, rustix::process::Signal::KILL);
                }
            }
            Event::StartTimeout(generation) => {
                if matches!(&self.reload, Some(Reload { phase: Phase::Starting { generation: g, .. }, .. }) if *g == generation)
                {
                    self.reload_failed(format!(
                        "new workers did not start within {}s",
                        START_TIMEOUT.as_secs()
                    ))
                    .await;
                }
            }
            Event::DrainTimeout(generation) => {
                if generation == self.generation {
                    self.reload_done();
                }
            }
            Event::NewBinaryExited(status) => self.on_new_binary_exit(status),
        }
    }

    async fn on_signal(&mut self, sig: Sig) {
        match sig {
            Sig::Stop(name) => {
                log::info!(
                    "{name}: stopping: no new connections; finishing the requests in flight"
                );
                notify::stopping();
                self.stopping = true;
                // The workers close theirs as they stop accepting; with ours closed too, a
                // new connection is refused at once instead of waiting in the kernel's
                // queue for the exit (nginx closes its listening sockets the same way).
                self.bound.clear();
                self.stop_all().await;
            }
            Sig::Hup if self.stopping => {}
            Sig::Hup => self.begin_reload(),
            Sig::Usr1 => self.reopen_logs().await,
            Sig::Usr2 => self.upgrade(),
            Sig::Winch if has_terminal() => {
                log::info!("SIGWINCH: ignored: a terminal's window changed size (WINCH stops the workers only when the server runs without a terminal, as nginx honours it only when daemonized)");
            }
            Sig::Winch => {
                log::info!("SIGWINCH: stopping the workers gracefully; the listening sockets stay open (HUP starts workers again)");
                self.winched = true;
                // As a reload's old workers, and nginx's after WINCH: what is in flight
                // finishes however long it takes (a QUIT to this master then bounds it).
                let ids: Vec<u64> = self.workers.keys().copied().collect();
                self.retire(&ids).await;
            }
        }
    }

    async fn on_message(&mut self, id: u64, msg: ToMaster) {
        match msg {
            ToMaster::Ready { cases } => {
                let Some(w) = self.workers.get_mut(&id) else {
                    return;
                };
                w.ready = true;
                log::debug!(
                    "worker {} (pid {}) ready in {:?}",
                    w.slot,
                    w.pid,
                    w.started.elapsed()
                );
                if let Some(died) = self.died.remove(&w.slot) {
                    log::info!(
                        "worker {} (pid {}) serves again {:.1} ms after its predecessor died",
                        w.slot,
                        w.pid,
                        died.elapsed().as_secs_f64() * 1000.0
                    );
                }
                self.reload_progress(cases).await;
            }
            ToMaster::Draining => self.drained(id),
            ToMaster::Reopened { result } => {
                if let Err(e) = result {
                    log::error!("SIGUSR1: a worker could not reopen the access log: {e}; it still writes to the old file");
                }
                self.reopening.remove(&id);
                if self.reopening.is_empty() {
                    self.say_reopened();
                }
            }
        }
    }

    /// A worker process ended: expected (told to stop), or a crash to report and repair.
    async fn on_exit(&mut self, id: u64, status: ExitStatus) {
        let Some(w) = self.workers.remove(&id) else {
            return;
        };
        if self.reopening.remove(&id) && self.reopening.is_empty() {
            self.say_reopened();
        }
        self.drained(id);
        if w.stopping {
            log::debug!("worker {} (pid {}) {}", w.slot, w.pid, describe(status));
            return;
        }
        match status.success() {
            // A signal sent to the worker itself (or to the whole group, the master's own
            // still on its way): not a fault.
            true => log::warn!(
                "worker {} (pid {}) stopped, not told by the master",
                w.slot,
                w.pid
            ),
            false => log::error!("worker {} (pid {}) {}", w.slot, w.pid, describe(status)),
        }
        if let Some(Reload {
            phase: Phase::Starting { generation, .. },
            ..
        }) = &self.reload
        {
            if *generation == w.generation {
                let why = format!("a new worker {} while starting", describe(status));
                self.reload_failed(why).await;
                return;
            }
        }
        if w.generation == self.generation && !self.stopping && !self.winched {
            // Only a worker that cannot start (a plugin failing in create, a resource
            // missing) makes the master wait: one that was serving and crashed (a plugin's
            // fault on a request) is replaced at once, however often a client asks for the
            // page that crashes it, as nginx replaces its workers.
            let young = !w.ready && w.started.elapsed() < QUICK;
            let streak = self.streak.entry(w.slot).or_insert(0);
            *streak = if young { *streak + 1 } else { 1 };
            let streak = *streak;
            self.died.insert(w.slot, Instant::now());
            if status.success() && streak <= BURST {
                self.respawn_after(w.slot, CLEAN_EXIT_GRACE);
            } else {
                self.schedule_respawn(w.slot, streak);
            }
        }
    }

    /// Start slot's worker again: at once, or after a back-off when it keeps dying young.
    fn schedule_respawn(&mut self, slot: usize, streak: u32) {
        let generation = self.generation;
        if streak <= BURST {
            let _ = self.tx.send(Event::Respawn(slot, generation));
            return;
        }
        let delay =
            (Duration::from_millis(100) * 2u32.saturating_pow(streak - BURST - 1)).min(MAX_BACKOFF);
        log::warn!(
            "worker {slot} died {streak} times in a row, each within {}s of its start; next start in {:.1}s",
            QUICK.as_secs(),
            delay.as_secs_f64()
        );
        self.respawn_after(slot, delay);
    }

    /// Start slot's worker again after `delay`, unless the server stops meanwhile.
    fn respawn_after(&self, slot: usize, delay: Duration) {
        let (tx, generation) = (self.tx.clone(), self.generation);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Event::Respawn(slot, generation));
        });
    }

    /// Start worker `slot` of `generation` on the current (or a reload's) sockets;
    /// `respawned` when it replaces one that died.
    async fn spawn(&mut self, slot: usize, generation: u64, respawned: bool) -> Result<(), String> {
        let (bound, text) = match &self.reload {
            Some(Reload {
                text,
                phase:
                    Phase::Starting {
                        generation: g,
                        bound,
                        ..
                    },
                ..
            }) if *g == generation => (bound, text),
            _ => (&self.bound, &self.text),
        };
        let (ours, theirs) =
            std::os::unix::net::UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
        // `/proc/self/exe`: the very file this master runs, even if replaced on disk since.
        let mut cmd = self.child("/proc/self/exe".as_ref(), bound, Some(theirs.into()))?;
        cmd.args(self.cli.config_args())
            .arg("--worker")
            .arg(slot.to_string())
            .stdin(Stdio::null());
        // glibc (the plugins' allocator) gives each thread that allocates an arena of 64 MiB
        // of address space: under an address-space limit (ulimit -v, LimitAS=) ten scripts
        // at once cost a worker its life. Two arenas serve a worker's few threads; an
        // operator's own setting wins. Scripts get an environment of their own.
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            cmd.env("MALLOC_ARENA_MAX", "2");
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start a worker process: {e}"))?;
        let pid = child.id().unwrap_or(0);
        ours.set_nonblocking(true).map_err(|e| e.to_string())?;
        let (read, mut to) = tokio::net::UnixStream::from_std(ours)
            .map_err(|e| e.to_string())?
            .into_split();
        let mut first = control::line(&ToWorker::Config {
            text: text.clone(),
            ticket_key: self.ticket_key.for_workers().clone(),
            respawned,
            self_signed: Some(self.self_signed.clone()),
        });
        let sent = to.write_all(&first).await;
        first.zeroize();
        if let Err(e) = sent {
            let _ = child.start_kill();
            return Err(format!("cannot talk to a new worker: {e}"));
        }
        let id = self.next_id;
        self.next_id += 1;
        tokio::spawn(watch(id, read, child, self.tx.clone()));
        log::debug!("worker {slot} (pid {pid}) started");
        self.workers.insert(
            id,
            Worker {
                slot,
                generation,
                pid,
                to,
                started: Instant::now(),
                ready: false,
                stopping: false,
                retiring: false,
            },
        );
        Ok(())
    }

    /// `program` with the sockets in `bound` (and `control`, last) as LISTEN_FDS.
    fn child(
        &self,
        program: &std::path::Path,
        bound: &[Bound],
        control: Option<std::os::fd::OwnedFd>,
    ) -> Result<tokio::process::Command, String> {
        let mut cmd = tokio::process::Command::new(program);
        if let Some(name) = std::env::args_os().next() {
            cmd.arg0(name);
        }
        let mut fds = Vec::new();
        for (i, b) in bound.iter().enumerate() {
            let fd = b
                .socket
                .try_clone()
                .map_err(|e| format!("cannot share a listening socket: {e}"))?;
            fds.push(FdMapping {
                parent_fd: fd.into(),
                child_fd: 3 + i as i32,
            });
        }
        if let Some(c) = control {
            fds.push(FdMapping {
                parent_fd: c,
                child_fd: 3 + bound.len() as i32,
            });
        }
        cmd.env("LISTEN_FDS", fds.len().to_string())
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            .env_remove("NOTIFY_SOCKET");
        cmd.fd_mappings(fds).map_err(|e| e.to_string())?;
        Ok(cmd)
    }

    /// Tell workers to stop; each gets `shutdown_timeout` (and a little) before a SIGKILL.
    async fn stop_all(&mut self) {
        let ids: Vec<u64> = self.workers.keys().copied().collect();
        self.stop(&ids).await;
    }

    async fn stop(&mut self, ids: &[u64]) {
        let grace = self.config.limits.shutdown_timeout + Duration::from_secs(2);
        for id in ids {
            let Some(w) = self.workers.get_mut(id) else {
                continue;
            };
            if w.stopping && !w.retiring {
                continue;
            }
            w.stopping = true;
            w.retiring = false;
            let _ = w.to.write_all(&control::line(&ToWorker::Stop)).await;
            let tx = self.tx.clone();
            let id = *id;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let _ = tx.send(Event::Overdue(id));
            });
        }
    }

    /// A reload's old workers: they stop accepting and finish what is in flight however long
    /// it takes (a download is not cut), as nginx's old workers do; no SIGKILL follows.
    async fn retire(&mut self, ids: &[u64]) {
        for id in ids {
            let Some(w) = self.workers.get_mut(id) else {
                continue;
            };
            if w.stopping {
                continue;
            }
            w.stopping = true;
            w.retiring = true;
            let _ = w.to.write_all(&control::line(&ToWorker::Retire)).await;
        }
    }

    /// SIGHUP: read the file, check it in a child, then (in `on_checked`) start new workers.
    fn begin_reload(&mut self) {
        if self.reload.is_some() {
            log::info!("SIGHUP: a reload is under way; another follows it");
            self.hup_again = true;
            return;
        }
        notify::reloading();
        let read = std::fs::read_to_string(&self.cli.config)
            .map_err(|e| {
                format!(
                    "cannot read the configuration file {}: {e}",
                    self.cli.config.display()
                )
            })
            .and_then(|text| {
                Config::from_text(
                    &self.cli.config,
                    &text,
                    self.cli.listen.as_deref(),
                    self.cli.root.as_deref(),
                )
                .map(|c| (text, c))
            });
        let (text, config) = match read {
            Ok(x) => x,
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                notify::ready();
                return;
            }
        };
        let (cli, tx, checked) = (self.cli.clone(), self.tx.clone(), text.clone());
        tokio::spawn(async move {
            let _ = tx.send(Event::Checked(check(&cli, &checked).await));
        });
        self.reload = Some(Reload {
            started: Instant::now(),
            text,
            config,
            phase: Phase::Checking,
        });
    }

    /// The check passed: bind what is new and start the new generation.
    async fn on_checked(&mut self, result: Result<(), String>) {
        if let Err(e) = result {
            return self.reload_failed(e).await;
        }
        let Some(reload) = &self.reload else {
            return;
        };
        let config = &reload.config;
        let opened =
            privileges::target(config.user.as_deref(), config.group.as_deref()).and_then(|id| {
                let bound = listeners::open(config, &self.bound, Vec::new())?;
                Ok((id, bound))
            });
        let (identity, bound) = match opened {
            Ok(x) => x,
            Err(e) => return self.reload_failed(e).await,
        };
        let generation = self.generation + 1;
        let workers = config.workers;
        if let Some(r) = &mut self.reload {
            r.phase = Phase::Starting {
                generation,
                bound,
                cases: Vec::new(),
            };
        }
        let log_file = self
            .reload
            .as_ref()
            .and_then(|r| access_log::file_path(&r.config));
        if let Some(path) = log_file {
            if let Err(e) = privileges::hand_over(&path, identity.as_ref()) {
                return self.reload_failed(e).await;
            }
        }
        for slot in 1..=workers {
            if let Err(e) = self.spawn(slot, generation, false).await {
                return self.reload_failed(e).await;
            }
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(START_TIMEOUT).await;
            let _ = tx.send(Event::StartTimeout(generation));
        });
        self.identity = identity;
    }

    /// A new worker is ready: once all are, the new generation takes over and the old one
    /// is told to stop accepting and finish.
    async fn reload_progress(&mut self, ready_cases: Vec<(String, String)>) {
        let Some(Reload {
            phase: Phase::Starting {
                generation, cases, ..
            },
            ..
        }) = &mut self.reload
        else {
            return;
        };
        let generation = *generation;
        *cases = ready_cases;
        let all_ready = self
            .workers
            .values()
            .filter(|w| w.generation == generation)
            .all(|w| w.ready);
        if !all_ready {
            return;
        }
        let Some(reload) = self.reload.take() else {
            return;
        };
        let Phase::Starting { bound, cases, .. } = reload.phase else {
            return;
        };
        let old: Vec<u64> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation < generation)
            .map(|(id, _)| *id)
            .collect();
        // Those already stopping (the last reload's, or all after WINCH) have stopped
        // accepting: not waited for again.
        let waiting: BTreeSet<u64> = old
            .iter()
            .copied()
            .filter(|id| self.workers.get(id).is_some_and(|w| !w.stopping))
            .collect();
        self.retire(&old).await;
        let added: Vec<_> = bound
            .iter()
            .filter(|b| !self.bound.iter().any(|o| o.wanted == b.wanted))
            .map(|b| listeners::url(b, &reload.config))
            .collect();
        for url in added {
            log::info!("listening on {url}");
        }
        // The master's copies of removed sockets close here; the old workers close theirs
        // as they stop accepting.
        self.bound = bound;
        self.text = reload.text;
        self.config = reload.config;
        self.generation = generation;
        self.winched = false;
        self.streak.clear();
        notify::ready();
        self.reload = Some(Reload {
            started: reload.started,
            text: String::new(),
            config: self.config.clone(),
            phase: Phase::Draining { waiting, cases },
        });
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DRAIN_WAIT).await;
            let _ = tx.send(Event::DrainTimeout(generation));
        });
        self.drained(u64::MAX);
    }

    /// An old worker stopped accepting (or ended).
    fn drained(&mut self, id: u64) {
        if let Some(Reload {
            phase: Phase::Draining { waiting, .. },
            ..
        }) = &mut self.reload
        {
            waiting.remove(&id);
            if waiting.is_empty() {
                self.reload_done();
            }
        }
    }

    /// Every old worker has stopped accepting: what clients connect to now is the new
    /// configuration. Say so.
    fn reload_done(&mut self) {
        // Only a draining reload is done: a drain timer of the last one may fire while the
        // reload a second HUP started is still checking or starting.
        if !matches!(
            self.reload,
            Some(Reload {
                phase: Phase::Draining { .. },
                ..
            })
        ) {
            return;
        }
        let Some(Reload {
            started,
            phase: Phase::Draining { cases, .. },
            ..
        }) = self.reload.take()
        else {
            return;
        };
        let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
        log::info!(
            "reloaded {}: chain {}; {} new worker processes, in {:.1} ms",
            self.config.path.display(),
            names.join(", "),
            self.config.workers,
            started.elapsed().as_secs_f64() * 1000.0
        );
        self.reload_again();
    }

    /// Start the reload a HUP asked for while the last one was under way.
    fn reload_again(&mut self) {
        if std::mem::take(&mut self.hup_again) && !self.stopping {
            self.begin_reload();
        }
    }

    /// Undo a reload that cannot complete: stop its new workers, keep everything else.
    async fn reload_failed(&mut self, why: String) {
        let Some(reload) = self.reload.take() else {
            return;
        };
        if let Phase::Starting { generation, .. } = reload.phase {
            let new: Vec<u64> = self
                .workers
                .iter()
                .filter(|(_, w)| w.generation == generation)
                .map(|(id, _)| *id)
                .collect();
            for id in &new {
                if let Some(w) = self.workers.get(id) {
                    kill(w.pid, rustix::process::Signal::KILL);
                }
            }
            self.stop(&new).await;
        }
        log::error!("reload failed, keeping the running configuration: {why}");
        notify::ready();
        self.reload_again();
    }

    /// SIGUSR1: open the access log anew here (created for the workers' user), then in
    /// every worker; logged once all have.
    async fn reopen_logs(&mut self) {
        let Some(path) = access_log::file_path(&self.config) else {
            log::info!("SIGUSR1: there is no access log file to reopen");
            return;
        };
        if let Err(e) = privileges::hand_over(&path, self.identity.as_ref()) {
            log::error!("SIGUSR1: {e}; still writing to the old file");
            return;
        }
        for (id, w) in self.workers.iter_mut().filter(|(_, w)| !w.stopping) {
            if w.to
                .write_all(&control::line(&ToWorker::Reopen))
                .await
                .is_ok()
            {
                self.reopening.insert(*id);
            }
        }
        if self.reopening.is_empty() {
            self.say_reopened();
        }
    }

    fn say_reopened(&self) {
        if let Some(path) = access_log::file_path(&self.config) {
            log::info!("SIGUSR1: reopened the access log {}", path.display());
        }
    }

    /// The log file exists and belongs to the workers' user before they open it.
    fn hand_over_log(&self) -> Result<(), String> {
        match access_log::file_path(&self.config) {
            Some(path) => privileges::hand_over(&path, self.identity.as_ref()),
            None => Ok(()),
        }
    }

    /// SIGUSR2: start the binary on disk as a new master beside this one, handing it the
    /// listening sockets, as nginx does. The pid file becomes `<pid file>.oldbin`.
    fn upgrade(&mut self) {
        if self.upgrade.is_some() {
            log::warn!("SIGUSR2: a new binary is already running; ignored");
            return;
        }
        if let Some(p) = &self.pid_file {
            let _ = std::fs::rename(p, oldbin(p));
        }
        let started = self
            .child(&self.exe, &self.bound, None)
            .and_then(|mut cmd| {
                cmd.args(std::env::args_os().skip(1)).stdin(Stdio::null());
                cmd.spawn()
                    .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))
            });
        match started {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                log::info!(
                    "SIGUSR2: started the new binary {} (pid {pid}); once it serves, send WINCH then QUIT to this master (pid {})",
                    self.exe.display(),
                    std::process::id()
                );
                self.upgrade = Some(pid);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if let Ok(status) = child.wait().await {
                        let _ = tx.send(Event::NewBinaryExited(status));
                    }
                });
            }
            Err(e) => {
                log::error!("SIGUSR2: {e}; this master goes on serving");
                self.restore_pid_file();
            }
        }
    }

    fn on_new_binary_exit(&mut self, status: ExitStatus) {
        let pid = self.upgrade.take().unwrap_or(0);
        log::error!(
            "the new binary (pid {pid}) {}: upgrade abandoned; this master goes on",
            describe(status)
        );
        self.restore_pid_file();
    }

    fn write_pid_file(&self) -> Result<(), String> {
        match &self.pid_file {
            Some(p) => write_pid_file(p),
            None => Ok(()),
        }
    }

    fn restore_pid_file(&self) {
        if let Some(p) = &self.pid_file {
            let _ = std::fs::rename(oldbin(p), p);
        }
    }

    /// Remove our pid file (or our `.oldbin`), only if it still names us.
    fn remove_pid_file(&self) {
        if let Some(p) = &self.pid_file {
            remove_pid_file(p);
        }
    }
}

/// Where the pid file goes: `--pid-file`, else server.toml's `pid_file`, else nowhere.
pub fn pid_file(cli: &cli::Cli, config: &Config) -> Option<PathBuf> {
    cli.pid_file.clone().or_else(|| config.pid_file.clone())
}

/// Write this process's id to `path` (the master's, or `--single-process`'s). At start-up
/// a failure is fatal, as nginx's: a service manager waiting for the file would wait in
/// vain, and nothing could signal the server by it.
pub fn write_pid_file(path: &Path) -> Result<(), String> {
    std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| {
        format!(
            "cannot write the pid file {}: {e}\n  fix: create its folder, or point pid_file (or --pid-file) at a place this user can write",
            path.display()
        )
    })
}

/// Remove `path` (or its `.oldbin`), only if it still names this process.
pub fn remove_pid_file(path: &Path) {
    let ours = format!("{}\n", std::process::id());
    for path in [path.to_path_buf(), oldbin(path)] {
        if std::fs::read_to_string(&path).is_ok_and(|t| t == ours) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn oldbin(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".oldbin");
    PathBuf::from(s)
}

/// Forward a worker's messages, then its exit.
async fn watch(
    id: u64,
    read: tokio::net::unix::OwnedReadHalf,
    mut child: tokio::process::Child,
    tx: mpsc::UnboundedSender<Event>,
) {
    let mut lines = tokio::io::BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match control::parse::<ToMaster>(&line) {
            Ok(msg) => {
                let _ = tx.send(Event::Said(id, msg));
            }
            Err(e) => log::error!("{e}"),
        }
    }
    if let Ok(status) = child.wait().await {
        let _ = tx.send(Event::Exited(id, status));
    }
}

/// Run `--check-config` on `text` in a child process (as the workers' user): the master
/// never loads a plugin itself. The error is the child's message.
async fn check(cli: &cli::Cli, text: &str) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("/proc/self/exe");
    if let Some(name) = std::env::args_os().next() {
        cmd.arg0(name);
    }
    cmd.args(cli.config_args())
        .args(["--check-config", "--config-on-stdin"])
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the configuration check: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("the check has no stdin")?;
    let mut stderr = child.stderr.take().ok_or("the check has no stderr")?;
    let _ = stdin.write_all(text.as_bytes()).await;
    drop(stdin);
    let mut said = String::new();
    let _ = stderr.read_to_string(&mut said).await;
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if status.success() {
        return Ok(());
    }
    let said = said.trim_end();
    let msg = said.rsplit_once("server: ").map_or(said, |(_, m)| m);
    Err(if msg.is_empty() {
        format!("the configuration check {}", describe(status))
    } else {
        msg.to_string()
    })
}

/// `killed by signal 11 (SIGSEGV)` or `exited with status 1`.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(0), _) => "exited".to_string(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig).map_or("?", |s| s.as_str());
            let core = if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            };
            format!("killed by signal {sig} ({name}{core})")
        }
        _ => format!("ended ({status})"),
    }
}

/// Is this process in the foreground of a terminal, whose window sends it WINCH when
/// resized? (A service manager's, or one started in a group of its own, is not.)
fn has_terminal() -> bool {
    use rustix::fs::{open, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    open("/dev/tty", flags, Mode::empty())
        .and_then(|tty| rustix::termios::tcgetpgrp(&tty))
        .is_ok_and(|fg| fg == rustix::process::getpgrp())
}

fn kill(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// The master's signals become events: TERM, INT and QUIT stop gracefully, HUP reloads,
/// USR1 reopens logs, USR2 upgrades the binary, WINCH stops the workers (but for a
/// terminal's resize); stray ones are ignored.
fn signals(tx: &mpsc::UnboundedSender<Event>) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let all = [
        (SignalKind::terminate(), Sig::Stop("SIGTERM")),
        (SignalKind::interrupt(), Sig::Stop("SIGINT")),
        (SignalKind::quit(), Sig::Stop("SIGQUIT")),
        (SignalKind::hangup(), Sig::Hup),
        (SignalKind::user_defined1(), Sig::Usr1),
        (SignalKind::user_defined2(), Sig::Usr2),
        (SignalKind::window_change(), Sig::Winch),
    ];
    for (kind, sig) in all {
        let mut s = signal(kind).map_err(|e| format!("cannot handle {sig:?}: {e}"))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(Event::Signal(sig)).is_err() {
                    return;
                }
            }
        });
    }
    crate::signals::absorb_strays()
}
