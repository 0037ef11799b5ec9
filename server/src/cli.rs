//! Raw command-line flags (clap); validated into a `Config` by `config.rs`.

use clap::Parser;
use std::path::PathBuf;

/// An HTTP/1.1 and HTTP/2 server whose every behaviour is a case plugin named in server.toml.
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
    /// Listen address, in place of `listen` and every `[[listeners]]` table in the file, TLS
    /// ones too (e.g. 127.0.0.1:8080; port 0 picks one; https://ADDR for TLS with a
    /// certificate made in memory).
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
    /// Log level of the error log (stderr).
    #[arg(long, default_value = "info", value_name = "LEVEL", value_parser = level(), ignore_case = true)]
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
        let level = self.log_level.to_string().to_ascii_lowercase();
        args.extend(["--log-level".into(), level.into()]);
        args
    }
}

/// The levels `--log-level` takes, listed in its error, help and completions.
fn level() -> impl clap::builder::TypedValueParser<Value = log::LevelFilter> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(["off", "error", "warn", "info", "debug", "trace"])
        .map(|s| s.parse().unwrap_or(log::LevelFilter::Info))
}

/// The man page's sections after the options (roff), which clap does not make.
const MAN_MORE: &str = r#".SH SIGNALS
Sent to the master (its pid is in \fBpid_file\fR or \fB\-\-pid\-file\fR):
.TP
\fBTERM\fR, \fBINT\fR, \fBQUIT\fR
Stop: no new connections, idle ones closed, requests in flight finished (up to \fBshutdown_timeout\fR), CGI scripts still running ended (TERM to their process groups, KILL a second later), exit 0.
.TP
\fBHUP\fR
Reload: read the configuration and load the plugins again; new workers serve, the old ones finish their requests however long they take. A configuration that fails changes nothing. A HUP during a reload starts another once it is done.
.TP
\fBUSR1\fR
Reopen the access log (after moving it away, as logrotate does).
.TP
\fBUSR2\fR
Start the new binary as a second master on the same sockets.
.TP
\fBWINCH\fR
Stop the workers gracefully, as a reload's old ones: they finish their requests however long they take (after USR2, so the new master's workers serve alone; a QUIT then bounds the wait by \fBshutdown_timeout\fR); HUP starts them again. Ignored while the server runs in the foreground of a terminal, whose window sends WINCH when resized.
.TP
\fBALRM\fR, \fBIO\fR, \fBPWR\fR, \fBVTALRM\fR, \fBPROF\fR, \fBXFSZ\fR
Logged and ignored.
.SH FILES
.TP
\fIconfig/server.toml\fR
The configuration (\fB\-\-config\fR); relative paths in it are resolved against its folder.
.TP
\fIplugins/lib\fRNAME\fI.so\fR
A case plugin named in \fBcases\fR; \fBplugin_dirs\fR lists the folders searched.
.TP
\fBaccess_log\fR, \fBpid_file\fR
The access log (nginx's combined format) and the master's pid, where the configuration puts them. The error log is stderr.
.SH EXIT STATUS
0 after a stop by signal, or when \fB\-\-check\-config\fR found the configuration and every plugin good; 1 when the configuration, a certificate or a plugin is refused (the message names the file or plugin and the fix), or a listening address cannot be bound.
"#;

/// `--generate`: the man page (roff) or a completion script for `what`.
pub fn generate(what: Generate) -> Vec<u8> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut out = Vec::new();
    let shell = match what {
        Generate::Man => {
            let _ = clap_mangen::Man::new(cmd).render(&mut out);
            out.extend_from_slice(MAN_MORE.as_bytes());
            return out;
        }
        Generate::Bash => clap_complete::Shell::Bash,
        Generate::Zsh => clap_complete::Shell::Zsh,
        Generate::Fish => clap_complete::Shell::Fish,
    };
    // Hidden flags are for the master's own use (`--worker`) or for maintainers: a user's
    // shell should not offer them.
    let visible: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .cloned()
        .collect();
    let mut cmd = clap::Command::new("server")
        .version(env!("CARGO_PKG_VERSION"))
        .args(visible);
    clap_complete::generate(shell, &mut cmd, "server", &mut out);
    out
}
