//! SIGHUP: server.toml is read again and its chain swapped in whole; a bad one keeps the old.

use crate::support::*;

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
