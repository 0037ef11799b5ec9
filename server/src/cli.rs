//! Raw command-line flags (clap); validated into a `Config` by `config.rs`.

use clap::Parser;
use std::path::PathBuf;

/// An HTTP/1.1 server whose every behaviour is a case plugin named in server.toml.
#[derive(Parser, Debug, Clone)]
#[command(name = "server", version, about)]
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
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: log::LevelFilter,
}
