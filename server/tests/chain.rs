//! The chain is data: its order and its members come from server.toml, not from the code.

use crate::support::*;

#[test]
fn reordering_the_chain_in_server_toml_changes_the_answer() {
    let first = Server::start(r#"["no_file", "existing_file", "always_fail"]"#, "");
    assert_eq!(first.get("/plain.html").status, 200);
    let reordered = Server::start(r#"["no_file", "always_fail", "existing_file"]"#, "");
    let r = reordered.get("/plain.html");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("unknown object"));
}

#[test]
fn case_settings_in_server_toml_reach_the_plugin() {
    let s = Server::start(
        r#"["no_file", "always_fail"]"#,
        "[plugins.no_file]\nstatus = 410\n",
    );
    assert_eq!(s.get("/gone").status, 410);
}

#[test]
fn a_plugin_copied_into_a_plugins_folder_is_used_without_rebuilding() {
    let dir = TempDir::new("dropin");
    let root = fixture_root(&dir);
    let drop_in = dir.subdir("plugins");
    // A built plugin, copied under the server's plugin folder: no cargo involved.
    std::fs::copy(
        plugins_dir().join("libhello.so"),
        drop_in.join("libhello.so"),
    )
    .unwrap();
    // The drop-in folder is searched first, so its copy wins over the build's (the log
    // below names the file that was loaded); the other cases come from the build.
    let dirs = [drop_in.clone(), plugins_dir()];
    let s = Server::start_in(
        dir,
        root,
        &dirs,
        r#"["hello", "no_file", "always_fail"]"#,
        "[plugins.hello]\nprefix = \"/greet\"\n",
    );
    let r = s.get("/greet");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Hello, web!"));
    assert!(
        s.log_contains(&drop_in.join("libhello.so").display().to_string()),
        "{}",
        s.log()
    );
}

#[test]
fn a_plugin_written_in_c_is_loaded_and_answers() {
    let dir = TempDir::new("cplugin");
    let root = fixture_root(&dir);
    let pdir = dir.subdir("plugins");
    compile_c_plugin(
        &workspace().join("examples/c-plugin/hello_c.c"),
        &pdir,
        "hello_c",
    );
    let dirs = [pdir, plugins_dir()];
    let s = Server::start_in(
        dir,
        root,
        &dirs,
        r#"["hello_c", "no_file", "existing_file", "always_fail"]"#,
        "[plugins.hello_c]\npath = \"/c\"\n",
    );
    let r = s.get("/c");
    assert_eq!(r.status, 200, "{}", s.log());
    assert_eq!(r.text(), "Hello from C! You asked for /c with GET.\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    // Its allow list is enforced by the host.
    let p = s.raw("POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(p.status, 405);
    assert_eq!(p.header("allow"), Some("GET, HEAD, OPTIONS"));
}
