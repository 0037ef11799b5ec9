//! Raw command-line flags (clap); validated into a `Config` by `config.rs`.

use clap::Parser;
use std::path::PathBuf;

/// An HTTP/1.1 server whose every behaviour is a case plugin named in server.toml.
///
/// A master process reads the configuration, binds the listening sockets and starts worker
/// processes that load the plugins and serve; signals go to the master: HUP reloads (new
/// workers on the new configuration and plugins), TERM, INT and QUIT stop gracefully, USR1
/// reopens the access log, USR2 starts a new binary beside the old one, WINCH stops the
/// workers (for the upgrade).
#[derive(Parser, Debug, Clone)]
#[command(name = "server", version, about, long_about)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, default_value = "config/server.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Listen address, overriding `listen` in the file (e.g. 127.0.0.1:8080; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Document root, overriding `root` in the file.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Load and validate the configuration and every plugin, print the chain, and exit 0 or 1.
    #[arg(long)]
    pub check_config: bool,
    /// Serve from this one process, without a master or worker processes (for debugging).
    #[arg(long)]
    pub single_process: bool,
    /// Write the master's process id to this file (overrides `pid_file`).
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: log::LevelFilter,
    /// Internal: run as worker process N of a master (the master starts these).
    #[arg(long, hide = true, value_name = "N")]
    pub worker: Option<usize>,
    /// Internal: with --check-config, read the configuration text from standard input.
    #[arg(long, hide = true)]
    pub config_on_stdin: bool,
    /// Print a man page or shell completions generated from these flags, and exit.
    #[arg(long, hide = true, value_name = "WHAT")]
    pub generate: Option<Generate>,
}

/// What `--generate` prints.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum Generate {
    Man,
    Bash,
    Zsh,
    Fish,
}

impl Cli {
    /// The flags a child process (worker, check, new binary) gets to read the same
    /// configuration with the same overrides.
    pub fn config_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec!["--config".into(), self.config.clone().into()];
        if let Some(l) = &self.listen {
            args.extend(["--listen".into(), l.into()]);
        }
        if let Some(r) = &self.root {
            args.extend(["--root".into(), r.clone().into()]);
        }
        args.extend(["--log-level".into(), self.log_level.to_string().into()]);
        args
    }
}

/// `--generate`: the man page (roff) or a completion script for `what`.
pub fn generate(what: Generate) -> Vec<u8> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let shell = match what {
        Generate::Man => {
            let _ = clap_mangen::Man::new(cmd).render(&mut out);
            return out;
        }
        Generate::Bash => clap_complete::Shell::Bash,
        Generate::Zsh => clap_complete::Shell::Zsh,
        Generate::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "server", &mut out);
    out
}
