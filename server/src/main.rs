//! Entry point: flags → which process this is (master, worker, single process, a check) →
//! its start-up; start-up errors exit with a message.

use server::{
    access_log, banner, cli, config, fault, listeners, loops, master, notify, privileges, signals,
    sites, tickets, tls, worker,
};

use clap::Parser;

use std::io::{Read, Write};
use std::process::ExitCode;

/// mimalloc: a request makes a few dozen small, short-lived allocations, and glibc's malloc
/// and free were a fifth of the instructions an answer cost (callgrind); mimalloc's
/// per-thread free lists make them a few instructions each.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Descriptors inherited from whoever started us must not reach CGI scripts: mark them all
    // close-on-exec (ours already are). Done first, while there is only one thread.
    close_fds::set_fds_cloexec(3, &[]);
    let cli = cli::Cli::parse();
    let mut log_config = simplelog::ConfigBuilder::new();
    log_config
        .set_target_level(simplelog::LevelFilter::Off)
        .set_thread_level(simplelog::LevelFilter::Off);
    if let Some(stamp) = log_stamp() {
        log_config.set_time_format_custom(stamp);
    }
    // rustls warns about what clients send (an IP address as SNI, a renegotiation), echoing
    // it without saying who: a client could fill the log. Our own line for a failed
    // handshake is at debug, with the address; so are rustls' then.
    if cli.log_level < simplelog::LevelFilter::Debug {
        log_config.add_filter_ignore_str("rustls");
    }
    let log_config = log_config.build();
    let _ = simplelog::WriteLogger::init(cli.log_level, log_config, WholeLines::default());

    match start(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("server: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// stderr, a line at a time: the logger writes a record in pieces (time, level, message),
/// and the master and its workers share stderr, so pieces of their lines interleaved. A
/// line goes out in one `write` (whole on a pipe up to PIPE_BUF), as nginx writes each
/// error log line.
#[derive(Default)]
struct WholeLines(Vec<u8>);

impl std::io::Write for WholeLines {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(data);
        if let Some(end) = self.0.iter().rposition(|&b| b == b'\n') {
            let result = std::io::stderr().lock().write_all(&self.0[..=end]);
            self.0.drain(..=end);
            result?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What starts every error log line: the date and time, and which process wrote it (the
/// master or one of the workers), as nginx's `2026/11/27 10:00:00 [error] 1234#0:`.
fn log_stamp() -> Option<&'static [time::format_description::FormatItem<'static>]> {
    let text = format!(
        "[year]/[month]/[day] [hour]:[minute]:[second] pid {}",
        std::process::id()
    );
    let text: &'static str = Box::leak(text.into_boxed_str());
    let items = time::format_description::parse_borrowed::<1>(text).ok()?;
    Some(Box::leak(items.into_boxed_slice()))
}

/// Which process this is decides what it does.
fn start(cli: &cli::Cli) -> Result<(), String> {
    if let Some(what) = cli.generate {
        let _ = std::io::stdout().write_all(&cli::generate(what));
        return Ok(());
    }
    if cli.check_config {
        return check_config(cli);
    }
    if let Some(n) = cli.worker {
        return worker::run(cli, n);
    }
    let config = load(cli)?;
    if cli.single_process || config.single_process {
        single_process(cli, config)
    } else {
        master::run(cli, config)
    }
}

fn load(cli: &cli::Cli) -> Result<config::Config, String> {
    config::Config::load(&cli.config, cli.listen.as_deref(), cli.root.as_deref())
}

/// `--check-config`: load and check everything, as a worker would (as `user` when started
/// as root), and print the chain. The master runs it as a child before it starts workers.
fn check_config(cli: &cli::Cli) -> Result<(), String> {
    // A plugin that crashes as it loads is named (the master passes the line on).
    fault::install("configuration check");
    let config = if cli.config_on_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the configuration from stdin: {e}"))?;
        config::Config::from_text(
            &cli.config,
            &text,
            cli.listen.as_deref(),
            cli.root.as_deref(),
        )?
    } else {
        load(cli)?
    };
    tls::check(&config)?;
    access_log::check(&config)?;
    if let Some(id) = privileges::target(config.user.as_deref(), config.group.as_deref())? {
        privileges::become_(&id)?;
    }
    let sites = sites::Sites::load(&config)?;
    print!("{}", banner::check_report(&config, &sites));
    Ok(())
}

/// `--single-process`: bind, (as root) become `user`, load, start the event loops, handle
/// signals, announce, serve — all in this process, as before there were workers.
fn single_process(cli: &cli::Cli, config: config::Config) -> Result<(), String> {
    let bound = listeners::open(&config, &[], listeners::inherited()?)?;
    // Written before becoming `user`: pid files live where only root writes (/run).
    let pid_file = master::pid_file(cli, &config);
    if let Some(p) = &pid_file {
        master::write_pid_file(p)?;
    }
    let id = privileges::target(config.user.as_deref(), config.group.as_deref())?;
    privileges::explain(config.user.as_deref());
    if let Some(log) = access_log::file_path(&config) {
        privileges::hand_over(&log, id.as_ref())?;
    }
    tls::install(
        &config,
        tickets::TicketKey::new()?,
        tls::Staples::Required,
        None,
    )?;
    if let Some(id) = &id {
        privileges::become_(id)?;
    }
    fault::install(&format!("pid {}", std::process::id()));
    let sites = sites::Sites::load(&config)?;
    let urls: Vec<_> = bound.iter().map(|b| listeners::url(b, &config)).collect();
    let sockets: Vec<_> = bound.into_iter().map(|b| b.socket).collect();
    let banner = banner::startup(
        &urls,
        &config.root,
        &banner::described(&sites.default_chain()),
        banner::colour_wanted(),
    ) + &banner::sites(&config.sites, banner::colour_wanted());
    let shared = loops::shared_state(&config, sites)?;
    loops::raise_fd_limit();
    let first = loops::start(&sockets, config.workers, &shared)?;
    drop(sockets);
    loops::watch(&shared, fault::OnStall::Report)?;
    loops::block_on(async move {
        tokio::spawn(fault::enter_loop(0, shared.limits.stall_timeout));
        signals::install(cli, config, &shared)?;
        banner::announce(&banner);
        notify::ready();
        let served = server::server::run(first, shared)
            .await
            .map_err(|e| e.to_string());
        notify::stopping();
        if let Some(p) = &pid_file {
            master::remove_pid_file(p);
        }
        log::info!("stopped");
        served
    })?
}
