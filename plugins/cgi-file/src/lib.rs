//! Case `cgi_file`: run a CGI/1.1 script (RFC 3875) under the configured folders and stream its
//! output back (the chapter's `case_cgi_file`, made safe: only where configured).

mod cgi;

use plugin_api::helpers::{seconds, Seconds};
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Settings (`[plugins.cgi_file]`).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// URL folders whose files are scripts (default `["/cgi-bin/"]`).
    #[serde(default = "default_dirs")]
    dirs: Vec<String>,
    /// Extensions run as scripts wherever they are, outside `dirs` too: the chapter's "any
    /// .py file is a script" (default: none; it is unsafe where users can upload files).
    #[serde(default)]
    anywhere: Vec<String>,
    /// Extension → interpreter (default `.py` → `python3`).
    #[serde(default = "default_interpreters")]
    interpreters: BTreeMap<String, String>,
    /// Seconds a script may go without writing to stdout before it is killed with its
    /// process group (504, or the answer cut off once under way).
    #[serde(default = "default_timeout")]
    timeout: f64,
    /// Scripts running at once; beyond it a request waits for a slot.
    #[serde(default = "default_max")]
    max_running: usize,
    /// Seconds a request waits for a free slot before it gets 503.
    #[serde(default = "default_queue_timeout")]
    queue_timeout: f64,
    /// Extra environment variables given to every script.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// PATH given to scripts.
    #[serde(default = "default_path")]
    path: String,
    /// Run scripts even when the server runs as root (off: refuse to start, so scripts are
    /// never root by accident; set `user` in server.toml instead).
    #[serde(default)]
    run_as_root: bool,
}

fn default_dirs() -> Vec<String> {
    vec!["/cgi-bin/".into()]
}
fn default_interpreters() -> BTreeMap<String, String> {
    BTreeMap::from([(".py".to_string(), "python3".to_string())])
}
fn default_timeout() -> f64 {
    30.0
}
fn default_max() -> usize {
    32
}
fn default_queue_timeout() -> f64 {
    10.0
}
fn default_path() -> String {
    "/usr/local/bin:/usr/bin:/bin".into()
}

/// Run CGI scripts.
pub struct CgiFile {
    dirs: Vec<String>,
    anywhere: Vec<String>,
    timeout: Duration,
    max_running: usize,
    queue_timeout: Duration,
    /// Scripts running now, guarded for the wait on a free slot.
    running: Mutex<usize>,
    freed: Condvar,
    /// When the log last said that requests found every place taken.
    warned: Mutex<Option<std::time::Instant>>,
    env: BTreeMap<String, String>,
    path: String,
    host: Host,
    interp_paths: BTreeMap<String, PathBuf>,
}

impl Case for CgiFile {
    const NAME: &'static CStr = c"cgi_file";
    const ALLOW: &'static CStr = c"*";
    const MAY_BLOCK: bool = true;

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        for d in &c.dirs {
            if !d.starts_with('/') {
                return Err(format!("dirs: {d:?} must start with '/'"));
            }
        }
        let timeout = seconds("timeout", c.timeout, Seconds::Positive)?;
        let queue_timeout = seconds("queue_timeout", c.queue_timeout, Seconds::ZeroOrMore)?;
        for ext in &c.anywhere {
            if !ext.starts_with('.') || ext.len() < 2 {
                return Err(format!(
                    "anywhere: extension {ext:?} must look like \".py\""
                ));
            }
        }
        let mut interp_paths = BTreeMap::new();
        for (ext, prog) in &c.interpreters {
            if !ext.starts_with('.') {
                return Err(format!(
                    "interpreters: extension {ext:?} must start with '.'"
                ));
            }
            let found = cgi::which(prog, &c.path).ok_or_else(|| {
                format!(
                    "interpreters: {prog:?} for {ext:?} is not found on PATH {:?}",
                    c.path
                )
            })?;
            interp_paths.insert(ext.clone(), found);
        }
        // Last, so a settings mistake is reported first.
        if rustix::process::geteuid().is_root() && !c.run_as_root {
            return Err("the server runs as root, so every script would too\n  fix: set user = \"nobody\" (or a user made for this server) in server.toml, or run_as_root = true in [plugins.cgi_file] if you mean it".into());
        }
        Ok(CgiFile {
            dirs: c
                .dirs
                .into_iter()
                .map(|d| if d.ends_with('/') { d } else { format!("{d}/") })
                .collect(),
            anywhere: c.anywhere,
            timeout,
            max_running: c.max_running.max(1),
            queue_timeout,
            running: Mutex::new(0),
            freed: Condvar::new(),
            warned: Mutex::new(None),
            env: c.env,
            path: c.path,
            host,
            interp_paths,
        })
    }

    fn test(&self, req: &Request) -> bool {
        // Anything under a CGI folder is ours: scripts run, everything else is 403, never
        // served as source. Elsewhere, only files with an `anywhere` extension.
        // Bytes, not `path()`: every request passes this test, and most are not ours.
        let path = req.path_bytes();
        match req.kind() {
            // A CGI folder is never listed: its folders are "anything else" (403).
            Kind::Dir => self.under_dirs(path),
            Kind::File if !self.anywhere.is_empty() => {
                self.under_dirs(path) || self.anywhere.iter().any(|e| path.ends_with(e.as_bytes()))
            }
            // `/app.py/users/7` names no file, but `/app.py` may be an `anywhere` script.
            Kind::Missing if !self.anywhere.is_empty() => {
                self.under_dirs(path) || cgi::anywhere_with_info(&self.anywhere, req).is_some()
            }
            _ => self.under_dirs(path),
        }
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        cgi::run(self, req, resp)
    }
}

impl CgiFile {
    fn under_dirs(&self, path: &[u8]) -> bool {
        self.dirs.iter().any(|d| path.starts_with(d.as_bytes()))
    }
}

plugin_api::export_case!(CgiFile);

#[cfg(test)]
mod tests {
    use super::CgiFile;
    use plugin_api::testing::{TempRoot, TestCase, TestRequest};
    use plugin_api::{Kind, Outcome};

    /// The case with these settings; allowed to run scripts as root, since these tests may
    /// run as root (the refusal itself is tested over the wire).
    fn cgi(settings: &str) -> TestCase<CgiFile> {
        let mut v: serde_json::Value = serde_json::from_str(settings).unwrap();
        v["run_as_root"] = true.into();
        TestCase::create(&v.to_string()).unwrap()
    }

    #[test]
    fn test_matches_only_under_the_cgi_folders() {
        let case = cgi(r#"{"dirs": ["/scripts"]}"#);
        assert!(case.test(&TestRequest::get("/scripts/run.py").kind(Kind::File)));
        assert!(case.test(&TestRequest::get("/scripts/").kind(Kind::Dir)));
        assert!(case.test(&TestRequest::get("/scripts/gone.py")));
        assert!(!case.test(&TestRequest::get("/run.py").kind(Kind::File)));
        assert!(!case.test(&TestRequest::get("/scriptsx/run.py").kind(Kind::File)));
    }

    #[test]
    fn anywhere_extensions_match_files_outside_the_folders() {
        let case = cgi(r#"{"anywhere": [".py"]}"#);
        assert!(case.test(&TestRequest::get("/app/run.py").kind(Kind::File)));
        assert!(!case.test(&TestRequest::get("/app/run.py")));
        assert!(!case.test(&TestRequest::get("/app/run.txt").kind(Kind::File)));
    }

    #[test]
    fn an_anywhere_script_takes_the_path_after_it() {
        let root = TempRoot::new();
        root.file("app/run.py", "print()\n");
        let case = cgi(r#"{"anywhere": [".py"]}"#);
        let get = |p: &str| TestRequest::get(p).root(root.path());
        assert!(case.test(&get("/app/run.py/users/7")));
        assert!(case.test(&get("/app/run.py/")));
        assert!(!case.test(&get("/app/gone.py/users/7")), "no such script");
        assert!(!case.test(&get("/app/run.pyx/7")));
        assert!(!case.test(&get("/app/other/7")));
        // The first file on the way is the script: a folder named like one is walked on.
        root.file("x.py/y.py", "print()\n");
        assert!(case.test(&get("/x.py/y.py/z")));
        root.file("plain/notes.txt", "x");
        assert!(
            !case.test(&get("/plain/notes.txt/a.py/b")),
            "a file first, not a script"
        );
    }

    #[test]
    fn settings_refuse_unknown_keys_and_bad_values() {
        let refused = |s: &str| TestCase::<CgiFile>::create(s).err().unwrap_or_default();
        assert!(refused(r#"{"dir": ["/cgi-bin/"]}"#).contains("unknown field `dir`"));
        assert_eq!(
            refused(r#"{"dirs": ["cgi-bin"]}"#),
            "dirs: \"cgi-bin\" must start with '/'"
        );
        assert_eq!(
            refused(r#"{"timeout": 0}"#),
            "timeout = 0 must be a positive number of seconds"
        );
        assert!(refused(r#"{"anywhere": ["py"]}"#).contains("must look like"));
        assert!(refused(r#"{"interpreters": {".py": "no-such-python"}}"#).contains("not found"));
    }

    #[test]
    fn a_cgi_folder_is_never_listed() {
        let root = TempRoot::new();
        root.dir("cgi-bin");
        let answer = cgi("{}").act(&TestRequest::get("/cgi-bin/").root(root.path()));
        assert_eq!(answer.error.map(|e| e.0), Some(403));
    }

    #[test]
    fn act_runs_the_script_and_relays_its_output() {
        let root = TempRoot::new();
        root.file(
            "cgi-bin/hi.py",
            "import os\nprint('Content-Type: text/plain')\nprint()\nprint('hi', os.environ['REQUEST_METHOD'], os.environ['QUERY_STRING'])\n",
        );
        let req = TestRequest::get("/cgi-bin/hi.py")
            .query("x=1")
            .root(root.path());
        let answer = cgi("{}").act(&req);
        assert_eq!(answer.outcome, Outcome::Done, "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("text/plain"));
        assert_eq!(answer.text(), "hi GET x=1\n");
    }
}
