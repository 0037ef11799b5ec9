//! docs/plugins.md is run, so it cannot rot: its ```sh blocks run in order, in one bash, in
//! a temporary folder outside the repository; a ```text block right after a ```sh block is
//! that block's expected stdout; a fenced block whose info string names a file (```rust
//! templates/rust-case/src/lib.rs) must be a verbatim excerpt of that file.

use crate::support::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GUIDE: &str = "docs/plugins.md";
/// The whole guide, a cold Rust build of the template included, on a loaded 2-core machine.
const BOUND: Duration = Duration::from_secs(900);

/// One fenced block: its info string's words, its text, and the guide line it starts on.
struct Block {
    lang: String,
    file: Option<String>,
    body: String,
    line: usize,
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in md.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                let mut words = info.split_whitespace().map(str::to_string);
                open = Some(Block {
                    lang: words.next().unwrap_or_default(),
                    file: words.next(),
                    body: String::new(),
                    line: i + 1,
                });
            }
            (Some(_), Some("")) => out.push(open.take().unwrap()),
            (Some(b), _) => {
                b.body.push_str(line);
                b.body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "{GUIDE}: a fenced block is not closed");
    out
}

/// A ```sh block and the stdout the guide shows for it, if any.
struct Step<'a> {
    run: &'a Block,
    expect: Option<&'a Block>,
}

fn steps(blocks: &[Block]) -> Vec<Step<'_>> {
    blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| b.lang == "sh")
        .map(|(i, run)| Step {
            run,
            expect: blocks.get(i + 1).filter(|b| b.lang == "text"),
        })
        .collect()
}

fn marker(i: usize) -> String {
    format!("@@guide step {i}@@")
}

/// The steps as one script, each preceded by a marker line on stdout.
fn script(steps: &[Step]) -> String {
    let mut s = String::new();
    for (i, step) in steps.iter().enumerate() {
        s.push_str(&format!("printf '\\n%s\\n' '{}'\n", marker(i)));
        s.push_str(&step.run.body);
    }
    s.push_str(&format!("printf '\\n%s\\n' '{}'\n", marker(steps.len())));
    s
}

/// The stdout of each step, cut at the markers (missing for steps that never ran).
fn outputs(stdout: &str, n: usize) -> Vec<Option<String>> {
    (0..n)
        .map(|i| {
            let start = stdout.find(&format!("\n{}\n", marker(i)))?;
            let from = start + marker(i).len() + 2;
            let end = stdout[from..].find(&format!("\n{}\n", marker(i + 1)))?;
            Some(stdout[from..from + end].to_string())
        })
        .collect()
}

/// Run the guide's script with bash in `dir`, pointing it at this repository and server.
fn run_bash(dir: &Path, script: &str) -> Child {
    let cargo = PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let path = std::env::join_paths(cargo.parent().into_iter().map(Path::to_path_buf).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    use std::os::unix::process::CommandExt;
    Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("CASES_REPO", workspace())
        .env("CASES_SERVER", server_bin())
        .env("PATH", path)
        // The template's dependencies come from the local cache; a test uses no network.
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a run past the bound can be stopped whole.
        .process_group(0)
        .spawn()
        .expect("run bash")
}

/// Read a pipe to the end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = pipe.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// Wait for `child` up to `BOUND`; past it, stop its whole process group.
fn wait_bounded(child: &mut Child) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < BOUND {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
    None
}

/// Stop the servers the guide started (it writes their PIDs to `server.pid` files) that are
/// still running: only processes whose executable is our server binary.
fn stop_servers(dir: &Path) {
    let server = server_bin().canonicalize().unwrap();
    for pid_file in find_named(dir, "server.pid") {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        for pid in text
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
            if exe.is_ok_and(|e| e == server) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

/// Files called `name` under `dir`, skipping cargo's target folders.
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && e.file_name() != "target" {
            found.extend(find_named(&p, name));
        } else if e.file_name() == name {
            found.push(p);
        }
    }
    found
}

fn read_guide() -> String {
    std::fs::read_to_string(workspace().join(GUIDE)).expect("read docs/plugins.md")
}

/// What one run of the guide's script left: its exit (`None`: stopped at the bound), each
/// step's stdout, the end of its stderr, and the logs of the servers it started.
struct Ran {
    status: Option<std::process::ExitStatus>,
    outs: Vec<Option<String>>,
    stderr_tail: String,
    logs: String,
}

/// Run the steps in a fresh folder outside the repository, then stop what they started.
fn run_guide(steps: &[Step]) -> Ran {
    let dir = TempDir::new("guide");
    let mut child = run_bash(dir.path(), &script(steps));
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_bounded(&mut child);
    stop_servers(dir.path());
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let lines: Vec<&str> = err.lines().collect();
    let logs = find_named(dir.path(), "server.log").into_iter().map(|p| {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        format!("{}:\n{text}", p.display())
    });
    Ran {
        status,
        outs: outputs(&out, steps.len()),
        stderr_tail: lines[lines.len().saturating_sub(40)..].join("\n"),
        logs: logs.collect(),
    }
}

#[test]
fn every_command_in_the_plugin_guide_runs_and_prints_what_the_guide_shows() {
    let md = read_guide();
    let blocks = blocks(&md);
    let steps = steps(&blocks);
    assert!(
        steps.len() >= 4,
        "{GUIDE}: expected its walk-throughs as ```sh blocks"
    );
    let ran = run_guide(&steps);
    let why = format!("stderr:\n{}\n{}", ran.stderr_tail, ran.logs);

    let Some(status) = ran.status else {
        panic!("{GUIDE}: not done within {BOUND:?}; {why}");
    };
    if !status.success() {
        let failed = ran.outs.iter().take_while(|o| o.is_some()).count();
        let line = steps.get(failed).map_or(0, |s| s.run.line);
        panic!("{GUIDE}:{line}: this ```sh block failed ({status}); {why}");
    }
    for (step, got) in steps.iter().zip(&ran.outs) {
        let (Some(want), Some(got)) = (step.expect, got) else {
            continue;
        };
        assert_eq!(
            got.trim_end(),
            want.body.trim_end(),
            "{GUIDE}:{}: the output of this ```sh block differs from the ```text block after it; {why}",
            step.run.line
        );
    }
}

#[test]
fn every_excerpt_in_the_plugin_guide_is_in_the_file_it_names() {
    let md = read_guide();
    let excerpts: Vec<Block> = blocks(&md)
        .into_iter()
        .filter(|b| b.file.is_some())
        .collect();
    assert!(
        !excerpts.is_empty(),
        "{GUIDE}: expected excerpts of the templates"
    );
    for b in excerpts {
        let file = b.file.as_deref().unwrap();
        let text = std::fs::read_to_string(workspace().join(file))
            .unwrap_or_else(|e| panic!("{GUIDE}:{}: {file}: {e}", b.line));
        assert!(
            text.contains(&b.body),
            "{GUIDE}:{}: this ```{} block is not a verbatim part of {file}",
            b.line,
            b.lang
        );
    }
}
