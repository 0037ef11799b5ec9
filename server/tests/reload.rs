//! SIGHUP: server.toml is read again and checked, new workers start on it (loading the
//! plugins afresh) and the old ones finish their requests; a bad one keeps everything.

use crate::support::*;
use std::io::{Read, Write};
use std::time::Duration;

fn sighup(s: &Server) {
    let pid = rustix::process::Pid::from_raw(s.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
}

fn rewrite(s: &Server, dirs: &[std::path::PathBuf], cases: &str, extra: &str) {
    // Write aside and rename, as configuration should be replaced under a running server.
    let tmp = s.dir.path().join("server.toml.new");
    std::fs::write(&tmp, config_text(&s.root, dirs, cases, extra)).unwrap();
    std::fs::rename(&tmp, s.dir.path().join("server.toml")).unwrap();
}

#[test]
fn sighup_reorders_the_chain_without_a_restart() {
    let mut s = Server::start(r#"["no_file", "existing_file", "always_fail"]"#, "");
    assert_eq!(s.get("/plain.html").status, 200);
    rewrite(
        &s,
        &[plugins_dir()],
        r#"["no_file", "always_fail", "existing_file"]"#,
        "",
    );
    sighup(&s);
    assert!(s.log_contains("reloaded"), "{}", s.log());
    assert_eq!(s.get("/plain.html").status, 500);
    assert!(s.alive());
}

#[test]
fn sighup_picks_up_a_newly_dropped_plugin_and_new_settings() {
    let s = Server::start(r#"["no_file", "always_fail"]"#, "");
    assert_eq!(s.get("/greet").status, 404);
    let drop_in = s.dir.subdir("plugins");
    std::fs::copy(
        plugins_dir().join("libhello.so"),
        drop_in.join("libhello.so"),
    )
    .unwrap();
    rewrite(
        &s,
        &[drop_in, plugins_dir()],
        r#"["hello", "no_file", "always_fail"]"#,
        "[plugins.hello]\nprefix = \"/greet\"\n",
    );
    sighup(&s);
    assert!(s.log_contains("reloaded"), "{}", s.log());
    assert!(s.get("/greet").text().contains("Hello, web!"));
}

#[test]
fn a_bad_configuration_on_sighup_keeps_the_running_chain() {
    let s = Server::start(r#"["no_file", "existing_file", "always_fail"]"#, "");
    rewrite(&s, &[plugins_dir()], r#"["no_file", "not_a_plugin"]"#, "");
    sighup(&s);
    assert!(
        s.log_contains("reload failed, keeping the running configuration"),
        "{}",
        s.log()
    );
    assert!(s.log_contains("no file libnot_a_plugin.so"), "{}", s.log());
    assert_eq!(s.get("/plain.html").status, 200);
    std::fs::write(s.dir.path().join("server.toml"), "cases = [").unwrap();
    sighup(&s);
    assert!(s.log_contains("TOML parse error"), "{}", s.log());
    assert_eq!(s.get("/plain.html").status, 200);
}

/// A C case answering `word` on /version, built into `dir/lib<name>.so` through a temporary
/// name and a rename, as a plugin should be replaced under a running server.
fn build_versioned(dir: &TempDir, word: &str) {
    let src = dir.write(
        "versioned.c",
        format!(
            r#"#include "case_plugin.h"
#include <string.h>
static void *create(const wp_host *h, const uint8_t *c, size_t n, const wp_error_sink *e) {{
    (void)h; (void)c; (void)n; (void)e; static int i; return &i;
}}
static void destroy(void *i) {{ (void)i; }}
static uint8_t test(void *i, const wp_request *r) {{
    (void)i; return r->path.len == 8 && memcmp(r->path.ptr, "/version", 8) == 0;
}}
static int32_t act(void *i, const wp_request *r, const wp_response *w) {{
    (void)i; (void)r; w->write(w->ctx, (const uint8_t *)"{word}", strlen("{word}")); return WP_DONE;
}}
static const wp_plugin_desc D = {{
    .abi_major = WP_ABI_MAJOR, .abi_minor = WP_ABI_MINOR, .struct_size = sizeof(wp_plugin_desc),
    .flags = WP_THREAD_SAFE, .name = "versioned", .plugin_version = "1", .allow = "GET",
    .create = create, .destroy = destroy, .test = test, .act = act,
}};
const wp_plugin_desc *wp_plugin_v1(void) {{ return &D; }}
"#
        ),
    );
    let staging = dir.subdir("staging");
    let built = compile_c_plugin(&src, &staging, "versioned");
    std::fs::rename(built, dir.subdir("plugins").join("libversioned.so")).unwrap();
}

/// Wait for the `n`th "reloaded" line (the new workers serve, the old ones stopped
/// accepting).
fn reloaded(s: &Server, n: usize) {
    assert!(
        within(Duration::from_secs(10), || s
            .log()
            .matches("] reloaded ")
            .count()
            >= n),
        "{}",
        s.log()
    );
}

#[test]
fn sighup_loads_new_code_from_a_library_replaced_at_the_same_path() {
    let dir = TempDir::new("newcode");
    let root = fixture_root(&dir);
    let cases = r#"["versioned", "no_file", "always_fail"]"#;
    build_versioned(&dir, "one");
    let dirs = [dir.subdir("plugins"), plugins_dir()];
    let s = Server::start_in(dir, root, &dirs, cases, "");
    assert_eq!(s.get("/version").text(), "one");
    build_versioned(&s.dir, "two");
    sighup(&s);
    reloaded(&s, 1);
    assert_eq!(s.get("/version").text(), "two");
    assert_eq!(s.get("/version").text(), "two");
}

/// The text of a config like the running one, with `listen` replaced.
fn with_listen(s: &Server, listen: &str, extra: &str) -> String {
    config_text(&s.root, &[plugins_dir()], CHAIN, extra)
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = {listen}"))
}

fn replace_config(s: &Server, text: &str) {
    let tmp = s.dir.path().join("server.toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, s.dir.path().join("server.toml")).unwrap();
}

/// The port of the last `listening on http://IP:PORT/` line for `ip` in the log.
fn logged_port(s: &Server, ip: &str) -> Option<u16> {
    let log = s.log();
    let at = log.rfind(&format!("listening on http://{ip}:"))?;
    let rest = &log[at + format!("listening on http://{ip}:").len()..];
    rest.split('/').next()?.parse().ok()
}

#[test]
fn sighup_binds_a_new_listen_address_and_closes_the_removed_one() {
    let s = Server::shipped();
    let old = s.addr;
    replace_config(&s, &with_listen(&s, "[\"127.0.0.2:0\"]", ""));
    sighup(&s);
    reloaded(&s, 1);
    let port = logged_port(&s, "127.0.0.2").expect("the new address is logged");
    let mut c = std::net::TcpStream::connect(("127.0.0.2", port)).unwrap();
    c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
    assert!(
        within(Duration::from_secs(5), || std::net::TcpStream::connect(old)
            .is_err()),
        "the old address still accepts"
    );
}

#[test]
fn a_listen_address_in_use_fails_the_reload_and_keeps_serving() {
    let s = Server::shipped();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    replace_config(&s, &with_listen(&s, &format!("\"{busy}\""), ""));
    sighup(&s);
    assert!(
        s.log_contains(&format!(
            "reload failed, keeping the running configuration: cannot listen on {busy}"
        )),
        "{}",
        s.log()
    );
    assert_eq!(s.get("/notes.txt").status, 200);
}

#[test]
fn sighup_applies_new_limits_and_a_new_access_log() {
    let s = Server::shipped();
    let post = "POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nConnection: close\r\n\r\n";
    let body = "x".repeat(100);
    assert_eq!(s.raw(&format!("{post}{body}")).status, 200);
    let extra = "access_log = \"after.log\"\n[limits]\nmax_body = 10\n";
    replace_config(&s, &config_text(&s.root, &[plugins_dir()], CHAIN, extra));
    sighup(&s);
    reloaded(&s, 1);
    assert_eq!(s.raw(&format!("{post}{body}")).status, 413);
    s.get("/notes.txt?after");
    let log = s.access_log("after.log", 2);
    assert!(log.contains("GET /notes.txt?after HTTP/1.1\" 200"), "{log}");
}

/// A download of `mib` MiB under way (its first 64 KiB read): the connection, those bytes,
/// and the whole file.
fn download_started(s: &Server, mib: u32) -> (std::net::TcpStream, Vec<u8>, Vec<u8>) {
    let data: Vec<u8> = (0..mib << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(s.root.join("big.bin"), &data).unwrap();
    let mut c = s.connect();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 64 << 10];
    c.read_exact(&mut first).unwrap();
    (c, first, data)
}

/// Read the rest of the download and check that the body is the whole file.
fn download_completes(mut c: std::net::TcpStream, mut got: Vec<u8>, data: &[u8]) {
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    got.extend_from_slice(&rest);
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(got.len() - head_end, data.len());
    assert!(got[head_end..] == data[..], "the body differs");
}

#[test]
fn a_download_in_flight_across_a_reload_completes_intact() {
    let s = Server::shipped();
    let (c, first, data) = download_started(&s, 24);
    rewrite(&s, &[plugins_dir()], r#"["no_file", "always_fail"]"#, "");
    sighup(&s);
    reloaded(&s, 1);
    // New connections get the new chain...
    assert_eq!(s.get("/notes.txt").status, 500);
    // ...while the download goes on on the old worker, to its last byte.
    download_completes(c, first, &data);
}

/// A reload's old workers have no deadline (nginx sets none for its old workers): a
/// download slower than `shutdown_timeout` still completes, where a stop would cut it.
#[test]
fn a_slow_download_outlives_shutdown_timeout_across_a_reload() {
    let s = Server::start(CHAIN, "[limits]\nshutdown_timeout = 1.0\n");
    let (c, first, data) = download_started(&s, 48);
    sighup(&s);
    reloaded(&s, 1);
    // Well past shutdown_timeout (and the 2 s the master adds before a SIGKILL).
    std::thread::sleep(std::time::Duration::from_secs(4));
    download_completes(c, first, &data);
}

/// WINCH (a binary upgrade's "stop the old workers") lets what is in flight finish as a
/// reload does, as nginx's workers after WINCH: no `shutdown_timeout`.
#[test]
fn a_slow_download_outlives_shutdown_timeout_after_winch() {
    let s = Server::start(CHAIN, "[limits]\nshutdown_timeout = 1.0\n");
    let (c, first, data) = download_started(&s, 48);
    s.signal(rustix::process::Signal::WINCH);
    assert!(
        s.log_contains("SIGWINCH: stopping the workers"),
        "{}",
        s.log()
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    download_completes(c, first, &data);
}

/// A HUP that comes while a reload is under way is not lost: the file as it is after the
/// last HUP is what runs (nginx applies every HUP).
#[test]
fn a_second_sighup_during_a_reload_applies_the_file_as_it_is_then() {
    let s = Server::start(r#"["no_file", "existing_file", "always_fail"]"#, "");
    rewrite_with(&s, r#"["no_file", "always_fail", "existing_file"]"#, "");
    sighup(&s);
    rewrite_with(
        &s,
        r#"["hello", "no_file", "existing_file", "always_fail"]"#,
        "",
    );
    sighup(&s);
    // One reload or two (the HUPs may both come before the first is taken up): either
    // way the last one's file is what runs.
    let last = "chain hello, no_file, existing_file, always_fail";
    assert!(
        within(Duration::from_secs(10), || s.log().contains(last)),
        "{}",
        s.log()
    );
    assert_eq!(s.get("/plain.html").status, 200, "{}", s.log());
    assert!(s.get("/hello").text().contains("Hello"), "{}", s.log());
}

#[test]
fn single_process_mode_reloads_the_chain_in_place() {
    let s = Server::start(
        r#"["no_file", "existing_file", "always_fail"]"#,
        "single_process = true",
    );
    rewrite_with(
        &s,
        r#"["no_file", "always_fail", "existing_file"]"#,
        "single_process = true",
    );
    sighup(&s);
    assert!(s.log_contains("] reloaded "), "{}", s.log());
    assert_eq!(s.get("/plain.html").status, 500);
    assert!(s.workers(0).is_empty(), "no worker processes");
}

fn rewrite_with(s: &Server, cases: &str, extra: &str) {
    rewrite(s, &[plugins_dir()], cases, extra);
}
