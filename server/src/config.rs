//! `server.toml`: serde structs, defaults, and validation into a ready-to-use `Config`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod limits;
pub use limits::Limits;
mod sites;
pub use sites::{ServerName, Site};
pub mod listeners;
use listeners::Listen;

/// The file as written (relative paths unresolved).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    listen: Option<Listen>,
    /// `[[listeners]]`: addresses with optional TLS, after those of `listen`.
    #[serde(default)]
    listeners: Vec<listeners::Written>,
    /// Accept a connection once its first bytes are there (TCP_DEFER_ACCEPT).
    #[serde(default = "yes")]
    defer_accept: bool,
    /// Serve HTTP/2: by ALPN over TLS, and with prior knowledge over plain TCP.
    #[serde(default = "yes")]
    http2: bool,
    /// Name the version in the `Server` header and on the host's pages.
    #[serde(default = "yes")]
    server_tokens: bool,
    /// The default site's (or, with `[[sites]]`, what a site without its own uses).
    root: Option<PathBuf>,
    #[serde(default = "default_plugin_dirs")]
    plugin_dirs: Vec<PathBuf>,
    cases: Option<Vec<toml::Spanned<String>>>,
    /// Worker processes (event loop threads with `single_process`); 0 means one per core.
    workers: Option<toml::Spanned<u64>>,
    /// Access log: a file (relative to this file's folder), "-" for stderr, "" for none.
    #[serde(default)]
    access_log: Option<String>,
    /// Its lines: nginx's "combined", or Apache's "vhost_combined" (the host first).
    #[serde(default)]
    access_log_format: LogFormat,
    /// Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed.
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    limits: limits::Written,
    #[serde(default)]
    plugins: BTreeMap<String, toml::Table>,
    /// Serve from this one process (no master, no worker processes), for debugging.
    #[serde(default)]
    single_process: bool,
    /// Started as root: the user (and group) worker processes run as.
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    group: Option<String>,
    /// A file the master writes its process id to.
    #[serde(default)]
    pid_file: Option<PathBuf>,
    // ----- sites (config/sites.rs) -----
    /// Sites by Host name, each its own root and chain.
    #[serde(default)]
    sites: Vec<sites::Written>,
}

fn yes() -> bool {
    true
}

fn default_plugin_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("plugins")]
}

/// The access log's line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// nginx's (and Apache's) `combined`.
    #[default]
    Combined,
    /// Apache's `vhost_combined`: `host:port ` before the combined line, the host the
    /// request named (lower-case, without its port) and the port it came in on, so one
    /// file tells the sites apart (goaccess's VCOMBINED reads it).
    VhostCombined,
}

/// One case of the chain, ready to load.
#[derive(Debug, Clone)]
pub struct CaseEntry {
    pub name: String,
    /// The line of its name in the configuration file, for messages (0: not from a file).
    pub line: usize,
    /// JSON text of `[plugins.NAME]` (`{}` when absent).
    pub settings: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// Addresses to listen on, at least one, no duplicates.
    pub listen: Vec<SocketAddr>,
    /// TLS for each address of `listen` (same order; `None`: plain HTTP).
    pub tls: Vec<Option<listeners::Tls>>,
    /// The kernel holds a new connection until its first bytes arrive (or about a second
    /// passes), so accepting it and reading its request take one wake-up, not two, and a
    /// connection that never sends takes no place under `max_connections` (TCP_DEFER_ACCEPT,
    /// nginx's `deferred`, h2o's default).
    pub defer_accept: bool,
    /// HTTP/2 is offered by ALPN over TLS and taken with prior knowledge (a client that
    /// starts with its preface, RFC 9113 §3.3) over plain TCP, as lighttpd and h2o do;
    /// false leaves HTTP/1.1 only (nginx's `http2 off`).
    pub http2: bool,
    /// The `Server` header and the host's pages say `cases/VERSION`; false: `cases` (nginx's
    /// `server_tokens off`).
    pub server_tokens: bool,
    /// The default site's root (the only site's without `[[sites]]`).
    pub root: PathBuf,
    pub plugin_dirs: Vec<PathBuf>,
    /// Worker processes, or event loops in single-process mode (resolved: at least 1).
    pub workers: usize,
    /// Access log target ("-" for stderr), if any.
    pub access_log: Option<String>,
    pub access_log_format: LogFormat,
    pub trusted_proxies: crate::forwarded::Trusted,
    pub limits: Limits,
    /// Serve from one process (`single_process = true` or `--single-process`).
    pub single_process: bool,
    /// The user and group worker processes run as, when started as root.
    pub user: Option<String>,
    pub group: Option<String>,
    /// Where the master writes its process id (resolved against the config's folder).
    pub pid_file: Option<PathBuf>,
    // ----- sites (config/sites.rs) -----
    /// Every site, the default one first; one site (the top level) without `[[sites]]`.
    pub sites: Vec<Site>,
}

/// Is this a valid case name (`[a-z0-9_]+`)?
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Config {
    /// Read, parse and validate `path`; `listen`/`root` override the file.
    pub fn load(path: &Path, listen: Option<&str>, root: Option<&Path>) -> Result<Config, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("cannot read the configuration file {shown}: {e}\n  fix: pass --config PATH to a server.toml (the shipped one is config/server.toml)")
        })?;
        Self::parse(path, &text, listen, root)
    }

    /// Parse and validate `text` as if read from `path` (the master hands workers the text it
    /// validated, so a file changed in between cannot split a generation).
    pub fn from_text(
        path: &Path,
        text: &str,
        listen: Option<&str>,
        root: Option<&Path>,
    ) -> Result<Config, String> {
        Self::parse(path, text, listen, root)
    }

    fn parse(
        path: &Path,
        text: &str,
        listen: Option<&str>,
        root: Option<&Path>,
    ) -> Result<Config, String> {
        let shown = path.display();
        let file: File = toml::from_str(text).map_err(|e| format!("{shown}: {e}"))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        let (listen, tls) = listeners::addresses(
            &shown.to_string(),
            listen,
            file.listen.as_ref(),
            &file.listeners,
            base,
        )?
        .into_iter()
        .unzip();

        let top = sites::Top {
            root: root
                .map(Path::to_path_buf)
                .or(file.root.as_deref().map(resolve)),
            cases: file.cases.as_deref(),
            plugins: &file.plugins,
            text,
        };
        let sites = sites::check(&shown.to_string(), top, &file.sites, &resolve)?;
        let default = &sites[0];
        Ok(Config {
            path: path.to_path_buf(),
            listen,
            tls,
            defer_accept: file.defer_accept,
            http2: file.http2,
            server_tokens: file.server_tokens,
            root: default.root.clone(),
            plugin_dirs: file.plugin_dirs.iter().map(|p| resolve(p)).collect(),
            workers: workers(&shown.to_string(), text, file.workers.as_ref())?,
            access_log: file.access_log,
            access_log_format: file.access_log_format,
            trusted_proxies: crate::forwarded::Trusted::parse(
                &shown.to_string(),
                &file.trusted_proxies,
            )?,
            limits: file.limits.check(&shown.to_string(), text)?,
            single_process: file.single_process,
            user: file.user.filter(|u| !u.is_empty()),
            group: file.group.filter(|g| !g.is_empty()),
            pid_file: file.pid_file.as_deref().map(resolve),
            sites,
        })
    }
}

/// The name among `known` that `name` is most likely a typo of: at most a third of its
/// letters apart (two for a short name), for "did you mean" in messages.
pub fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let most = (name.chars().count() / 3).max(2);
    known
        .filter(|k| *k != name)
        .map(|k| (strsim::levenshtein(name, k), k))
        .filter(|(d, _)| *d <= most)
        .min()
        .map(|(_, k)| k)
}

/// The line (from 1) of `text` where the byte at `at` is, for messages about a value.
fn line_at(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// The most workers (processes, or event loops in one process), as nginx's 1024.
const MAX_WORKERS: u64 = 1024;

/// `workers`: 0 (or absent) is one per core; more than `MAX_WORKERS` is refused before
/// the master forks them (a typo's 100000 forked until the open-file limit).
fn workers(file: &str, text: &str, written: Option<&toml::Spanned<u64>>) -> Result<usize, String> {
    match written.map(|w| (*w.get_ref(), w.span())) {
        None | Some((0, _)) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Some((n, _)) if n <= MAX_WORKERS => Ok(n as usize),
        Some((n, span)) => {
            let line = line_at(text, span.start);
            Err(format!(
                "{file}: line {line}: workers = {n} is too many\n  expected: a number of worker processes from 1 to {MAX_WORKERS}, or 0 for one per core\n  fix: set workers = 0 (one per core) or the number of cores"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(
            Path::new("/tmp/x/server.toml"),
            text,
            None,
            Some(Path::new("/")),
        )
    }

    #[test]
    fn unknown_key_names_the_file_line_and_column() {
        let e = parse("listen = \"127.0.0.1:0\"\nroot = \"/\"\ncases = [\"a\"]\nbogus = 1\n")
            .unwrap_err();
        assert!(e.contains("/tmp/x/server.toml"), "{e}");
        assert!(e.contains("line 4, column 1"), "{e}");
        assert!(e.contains("unknown field `bogus`"), "{e}");
    }

    #[test]
    fn workers_past_1024_are_refused_with_their_line_and_0_is_one_per_core() {
        let base = "listen = \"127.0.0.1:0\"\nroot = \"/\"\ncases = [\"a\"]\n";
        let e = parse(&format!("{base}workers = 100000\n")).unwrap_err();
        assert!(e.contains("line 4: workers = 100000 is too many"), "{e}");
        assert!(e.contains("fix:"), "{e}");
        assert_eq!(
            parse(&format!("{base}workers = 1024\n")).unwrap().workers,
            1024
        );
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            parse(&format!("{base}workers = 0\n")).unwrap().workers,
            cores
        );
        assert_eq!(parse(base).unwrap().workers, cores);
    }

    #[test]
    fn a_listen_or_tls_of_the_wrong_shape_says_what_is_expected() {
        let e = parse("listen = 8080\nroot = \"/\"\ncases = [\"a\"]\n").unwrap_err();
        assert!(
            e.contains("line 1") && e.contains("expected an address in quotes"),
            "{e}"
        );
        let e = parse(
            "root = \"/\"\ncases = [\"a\"]\n[[listeners]]\naddress = \"127.0.0.1:0\"\ntls = { cert = \"a.pem\" }\n",
        )
        .unwrap_err();
        assert!(
            e.contains("line 5") && e.contains("key = \"site.key\" } with both"),
            "{e}"
        );
    }

    #[test]
    fn relative_plugin_dirs_resolve_against_the_config_folder() {
        let c = parse(
            "listen = \"127.0.0.1:0\"\nroot = \"/\"\ncases = [\"a\"]\nplugin_dirs = [\"p\"]\n",
        )
        .unwrap();
        assert_eq!(c.plugin_dirs, vec![PathBuf::from("/tmp/x/p")]);
    }

    #[test]
    fn plugin_settings_become_json_for_that_case_only() {
        let c = parse(
            "listen = \"127.0.0.1:0\"\nroot = \"/\"\ncases = [\"a\", \"b\"]\n[plugins.a]\nx = 1\n",
        )
        .unwrap();
        assert_eq!(c.sites[0].cases[0].settings, r#"{"x":1}"#);
        assert_eq!(c.sites[0].cases[1].settings, "{}");
    }

    #[test]
    fn duplicate_and_invalid_names_and_orphan_tables_are_refused() {
        let base = "listen = \"127.0.0.1:0\"\nroot = \"/\"\n";
        assert!(parse(&format!("{base}cases = [\"a\", \"a\"]"))
            .unwrap_err()
            .contains("twice"));
        assert!(parse(&format!("{base}cases = [\"A-b\"]"))
            .unwrap_err()
            .contains("not valid"));
        assert!(parse(&format!("{base}cases = [\"a\"]\n[plugins.b]\n"))
            .unwrap_err()
            .contains("not in `cases`"));
    }
}
