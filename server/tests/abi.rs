//! C plugins across ABI minors: a plugin built against the frozen 1.0 header loads and
//! answers unchanged on this 1.1 host; one that claims 1.1 must carry a 1.1 descriptor; a C
//! filter declaring 1.1 sees every response head.

use crate::support::*;
use std::path::{Path, PathBuf};

/// The ABI 1.0 header as it shipped, never edited.
fn frozen_1_0() -> PathBuf {
    workspace().join("server/tests/fixtures/abi-1.0")
}

fn fixture_src(name: &str) -> PathBuf {
    workspace().join(format!("server/tests/fixtures/plugins/{name}.c"))
}

/// `--check-config` on a chain, for the loader's verdict and its line per case.
fn check(dir: &TempDir, cases: &str, plugin_dirs: &[PathBuf]) -> Exit {
    let root = fixture_root(dir);
    let cfg = dir.write("server.toml", config_text(&root, plugin_dirs, cases, ""));
    run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"])
}

/// A server whose chain is the C plugin `name` (compiled from `src` against the header in
/// `include`), then no_file, existing_file and always_fail.
fn serve_c(src: &Path, name: &str, include: &Path, extra: &str) -> Server {
    let dir = TempDir::new(name);
    let root = fixture_root(&dir);
    let pdir = dir.subdir("plugins");
    compile_c_plugin_with(src, &pdir, name, include);
    let cases = format!(r#"["{name}", "no_file", "existing_file", "always_fail"]"#);
    Server::start_in(dir, root, &[pdir, plugins_dir()], &cases, extra)
}

/// What a client sees of hello_c compiled against the header in `include`: for each
/// request, the status, Content-Type, Allow and body.
fn hello_c_answers(include: &Path) -> Vec<(u16, Option<String>, Option<String>, String)> {
    let src = workspace().join("examples/c-plugin/hello_c.c");
    let s = serve_c(
        &src,
        "hello_c",
        include,
        "[plugins.hello_c]\npath = \"/c\"\n",
    );
    let requests = [
        "GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "HEAD /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "GET /c?x=1 HTTP/1.0\r\n\r\n",
        "GET /plain.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "GET /nothing-here HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ];
    requests
        .iter()
        .map(|req| {
            let r = s.raw(req);
            let h = |n: &str| r.header(n).map(str::to_string);
            (r.status, h("content-type"), h("allow"), r.text())
        })
        .collect()
}

#[test]
fn the_c_example_built_against_the_frozen_1_0_header_loads_and_answers_as_built_against_1_1() {
    let dir = TempDir::new("abi10-check");
    let pdir = dir.subdir("plugins");
    let src = workspace().join("examples/c-plugin/hello_c.c");
    compile_c_plugin_with(&src, &pdir, "hello_c", &frozen_1_0());
    let e = check(&dir, r#"["hello_c"]"#, &[pdir]);
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert!(
        e.stdout
            .contains("hello_c 1.0.0 (ABI 1.0, GET, HEAD; test/act)"),
        "{}",
        e.stdout
    );

    let old = hello_c_answers(&frozen_1_0());
    let new = hello_c_answers(&workspace().join("plugin-api/include"));
    assert_eq!(old, new);
    assert_eq!(old[0].0, 200);
    assert_eq!(old[0].3, "Hello from C! You asked for /c with GET.\n");
    assert_eq!((old[1].0, old[1].3.as_str()), (200, ""));
    assert_eq!(old[2].0, 405);
    assert_eq!(old[2].2.as_deref(), Some("GET, HEAD, OPTIONS"));
    assert_eq!(old[5].0, 404);
}

#[test]
fn a_plugin_claiming_minor_1_with_a_1_0_descriptor_is_refused() {
    let dir = TempDir::new("claims11");
    let pdir = dir.subdir("plugins");
    compile_c_plugin_with(
        &fixture_src("claims_1_1"),
        &pdir,
        "claims_1_1",
        &frozen_1_0(),
    );
    let e = check(&dir, r#"["claims_1_1"]"#, &[pdir]);
    assert_eq!(e.code, Some(1), "{}", e.stdout);
    assert!(
        e.stderr
            .contains("descriptor is 72 bytes, ABI 1.1 needs at least 104"),
        "{}",
        e.stderr
    );
}

#[test]
fn a_role_declared_without_its_functions_is_refused_at_load() {
    // A transform without filter_body made every answer of the server a 500.
    let dir = TempDir::new("rolefn");
    let pdir = dir.subdir("plugins");
    let include = workspace().join("plugin-api/include");
    compile_c_plugin_with(
        &fixture_src("role_without_fn"),
        &pdir,
        "role_without_fn",
        &include,
    );
    let e = check(
        &dir,
        r#"["role_without_fn", "no_file"]"#,
        &[pdir, plugins_dir()],
    );
    assert_eq!(e.code, Some(1), "{}", e.stdout);
    assert!(
        e.stderr
            .contains("declares WP_ROLE_TRANSFORM but lacks filter_body and filter_end")
            && e.stderr.contains("fix:"),
        "{}",
        e.stderr
    );
}

#[test]
fn a_transform_that_makes_no_progress_fails_its_answer_at_once() {
    // It asked to be called again with nothing taken or made: the host called it until
    // the stall watchdog aborted the worker, every request on it lost.
    let include = workspace().join("plugin-api/include");
    let s = serve_c(
        &fixture_src("stuck_transform"),
        "stuck_transform",
        &include,
        "",
    );
    let started = std::time::Instant::now();
    let r = s.raw("GET /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 500);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!s.log().contains("stuck in case"), "{}", s.log());
    // And the log names the filter (after a head that went out, only the log could).
    assert!(
        s.log_contains("case=stuck_transform: filter_body neither took input nor made output"),
        "{}",
        s.log()
    );
}

#[test]
fn a_c_filter_declaring_minor_1_stamps_every_response_head() {
    let include = workspace().join("plugin-api/include");
    let s = serve_c(&fixture_src("c_filter"), "c_filter", &include, "");
    let ok = s.get("/plain.html");
    assert_eq!(ok.status, 200, "{}", s.log());
    assert_eq!(ok.header("x-c-filter"), Some("saw 200"));
    assert_eq!(ok.text(), "<html><body><p>Test page.</p></body></html>\n");
    // The host's own answers pass the filter too: its 404 and its 405.
    let missing = s.get("/nothing-here");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-c-filter"), Some("saw 404"));
    let post = s.raw(
        "POST /plain.html HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("x-c-filter"), Some("saw 405"));
    // HEAD sees the head; a 304 keeps what the filter added (filters run before conditionals).
    let head = s.raw("HEAD /plain.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(head.header("x-c-filter"), Some("saw 200"));
    let etag = ok.header("etag").expect("an ETag on a file");
    let again = s.raw(&format!(
        "GET /plain.html HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(again.status, 304);
    assert_eq!(again.header("x-c-filter"), Some("saw 200"));
}
