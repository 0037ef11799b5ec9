//! A bad plugin or server.toml stops start-up with a message that names the file, the line
//! or the plugin, what was expected, and the fix. A panicking plugin costs one 500.

use crate::support::*;

fn check(dir: &TempDir, cases: &str, extra: &str, plugin_dirs: &[std::path::PathBuf]) -> Exit {
    let root = fixture_root(dir);
    let cfg = dir.write("server.toml", config_text(&root, plugin_dirs, cases, extra));
    run_to_exit(&["--config", cfg.to_str().unwrap()])
}

/// Compile `fixtures/plugins/<name>.c` into `dir/plugins/lib<name>.so`; returns the folder
/// and the library.
fn fixture_plugin(dir: &TempDir, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let pdir = dir.subdir("plugins");
    let src = workspace().join(format!("server/tests/fixtures/plugins/{name}.c"));
    let so = compile_c_plugin(&src, &pdir, name);
    (pdir, so)
}

#[test]
fn a_plugin_built_for_another_abi_major_is_refused_with_found_and_expected_versions() {
    let dir = TempDir::new("abi2");
    let (pdir, so) = fixture_plugin(&dir, "wrong_abi");
    let e = check(
        &dir,
        r#"["wrong_abi", "always_fail"]"#,
        "",
        &[pdir, plugins_dir()],
    );
    assert_eq!(e.code, Some(1));
    let want = format!(
        "plugin \"wrong_abi\" ({}): built for plugin ABI 2.x, this server provides 1.2\n  fix: rebuild the plugin against this server's plugin-api crate (ABI 1.x)",
        so.canonicalize().unwrap().display()
    );
    assert!(e.stderr.contains(&want), "{}", e.stderr);
}

#[test]
fn a_plugin_built_for_a_newer_abi_minor_is_refused() {
    let dir = TempDir::new("abi199");
    let (pdir, _) = fixture_plugin(&dir, "newer_minor");
    let e = check(&dir, r#"["newer_minor"]"#, "", &[pdir]);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr
            .contains("built for plugin ABI 1.99, this server provides 1.2")
            && e.stderr.contains("upgrade the server"),
        "{}",
        e.stderr
    );
}

#[test]
fn a_missing_plugin_names_the_plugin_the_folders_and_the_fix() {
    let dir = TempDir::new("missing");
    let e = check(&dir, r#"["no_file", "not_there"]"#, "", &[plugins_dir()]);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr
            .contains("plugin \"not_there\": no file libnot_there.so"),
        "{}",
        e.stderr
    );
    assert!(e.stderr.contains(&plugins_dir().display().to_string()));
    assert!(e.stderr.contains("fix:"));
    // A folder that is not there says so.
    let nowhere = dir.path().join("nowhere");
    let e = check(&dir, r#"["no_file"]"#, "", std::slice::from_ref(&nowhere));
    let want = format!("[{} (no such folder)]", nowhere.display());
    assert!(e.stderr.contains(&want), "{}", e.stderr);
}

#[test]
fn a_misspelt_case_names_its_line_and_the_plugin_it_resembles() {
    let dir = TempDir::new("misspelt");
    let e = check(&dir, r#"["no_file", "existng_file"]"#, "", &[plugins_dir()]);
    assert_eq!(e.code, Some(1));
    let text = std::fs::read_to_string(dir.path().join("server.toml")).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l.contains("existng_file"))
        .unwrap();
    assert!(
        e.stderr.contains(&format!("server.toml (line {line})"))
            && e.stderr.contains("did you mean \"existing_file\"?"),
        "{}",
        e.stderr
    );
    let e = check(
        &dir,
        r#"["hello"]"#,
        "[plugins.helo]\nprefix = \"/x\"\n",
        &[],
    );
    assert!(
        e.stderr.contains("a typo of [plugins.hello]?"),
        "{}",
        e.stderr
    );
}

#[test]
fn a_library_whose_name_differs_from_the_config_entry_is_refused() {
    let dir = TempDir::new("rename");
    let pdir = dir.subdir("plugins");
    std::fs::copy(
        plugins_dir().join("libhello.so"),
        pdir.join("libgreeter.so"),
    )
    .unwrap();
    let e = check(&dir, r#"["greeter"]"#, "", &[pdir]);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains("the library calls itself \"hello\""),
        "{}",
        e.stderr
    );
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused() {
    let dir = TempDir::new("notplugin");
    let pdir = dir.subdir("plugins");
    std::fs::write(pdir.join("libjunk.so"), b"not an ELF file").unwrap();
    let e = check(&dir, r#"["junk"]"#, "", &[pdir]);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains("plugin \"junk\"") && e.stderr.contains("cannot be loaded"),
        "{}",
        e.stderr
    );
}

#[test]
fn a_bad_server_toml_names_the_file_line_and_column() {
    let dir = TempDir::new("badtoml");
    let e = check(
        &dir,
        r#"["no_file"]"#,
        "\n[limits]\nmax_body = \"big\"\n",
        &[plugins_dir()],
    );
    assert_eq!(e.code, Some(1));
    assert!(e.stderr.contains("server.toml"), "{}", e.stderr);
    assert!(e.stderr.contains("line 7, column 12"), "{}", e.stderr);
    assert!(
        e.stderr
            .contains("invalid type: string \"big\", expected u64"),
        "{}",
        e.stderr
    );

    let dir = TempDir::new("unknownkey");
    let e = check(
        &dir,
        r#"["no_file"]"#,
        "colour = \"blue\"\n",
        &[plugins_dir()],
    );
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains("line 5, column 1") && e.stderr.contains("unknown field `colour`"),
        "{}",
        e.stderr
    );
}

#[test]
fn settings_a_plugin_refuses_stop_start_up_with_its_reason() {
    let dir = TempDir::new("refused");
    let e = check(
        &dir,
        r#"["hello", "always_fail"]"#,
        "[plugins.hello]\nprefix = \"nope\"\n",
        &[plugins_dir()],
    );
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains("plugin \"hello\"")
            && e.stderr.contains("refused its settings [plugins.hello]")
            && e.stderr.contains("prefix = \"nope\" must start with '/'"),
        "{}",
        e.stderr
    );
    let dir = TempDir::new("typo");
    let e = check(
        &dir,
        r#"["hello"]"#,
        "[plugins.hello]\nprefx = \"/x\"\n",
        &[plugins_dir()],
    );
    assert!(
        e.stderr
            .contains("unknown field `prefx`, expected `prefix`"),
        "{}",
        e.stderr
    );
}

#[test]
fn a_plugin_that_calls_exit_while_loading_fails_the_check_and_is_named() {
    let dir = TempDir::new("exit-create");
    let (pdir, _) = fixture_plugin(&dir, "faulty");
    let cfg = dir.path().join("server.toml");
    let extra = format!("[plugins.faulty]\nexit_if = {:?}\n", cfg.display());
    let root = fixture_root(&dir);
    let text = config_text(&root, &[pdir], r#"["faulty", "always_fail"]"#, &extra);
    let cfg = dir.write("server.toml", text);
    let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(e.code, Some(1), "{}", e.stderr);
    assert!(
        e.stderr.contains("case=faulty called exit()"),
        "{}",
        e.stderr
    );
}

#[test]
fn a_newer_plugin_in_a_later_folder_is_named_as_not_loaded() {
    let dir = TempDir::new("shadow");
    let root = fixture_root(&dir);
    let mine = dir.subdir("mine");
    // A fresh copy: newer than the build in the shipped folder.
    std::fs::copy(plugins_dir().join("libhello.so"), mine.join("libhello.so")).unwrap();
    let lib = |d: &std::path::Path| d.join("libhello.so").canonicalize().unwrap();
    let check_with = |dirs: [std::path::PathBuf; 2]| {
        let text = config_text(&root, &dirs, r#"["hello", "always_fail"]"#, "");
        let cfg = dir.write("server.toml", text);
        let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
        assert_eq!(e.code, Some(0), "{}", e.stderr);
        e.stderr
    };
    let stderr = check_with([plugins_dir(), mine.clone()]);
    let want = format!(
        "plugin \"hello\": loading {}, which comes first in plugin_dirs; a newer libhello.so in {} is not used",
        lib(&plugins_dir()).display(),
        mine.canonicalize().unwrap().display()
    );
    assert!(stderr.contains(&want), "{stderr}");
    // The older copy behind the one that loads (a release and a debug build) is no news.
    let stderr = check_with([mine.clone(), plugins_dir()]);
    assert!(!stderr.contains("is not used"), "{stderr}");
}

#[test]
fn check_config_prints_the_chain_and_exits_zero() {
    let dir = TempDir::new("check");
    let root = fixture_root(&dir);
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], CHAIN, ""),
    );
    let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert!(e.stdout.contains("is valid"));
    assert!(
        e.stdout
            .contains("  2. hello 0.1.0 (ABI 1.0, GET, HEAD; test/act)"),
        "{}",
        e.stdout
    );
    assert!(e.stdout.contains("  9. always_fail"), "{}", e.stdout);
}

#[test]
fn the_shipped_config_is_valid() {
    // config/server.toml as shipped, pointed at the plugins this test run built (a stale
    // target/release next to it must not decide the outcome) and at the shipped www/.
    let shipped = std::fs::read_to_string(workspace().join("config/server.toml")).unwrap();
    let dir = TempDir::new("shipped");
    let text: String = shipped
        .lines()
        .map(|l| {
            if l.starts_with("plugin_dirs = ") {
                format!("plugin_dirs = [{:?}]", plugins_dir().display().to_string())
            } else if l.starts_with("root = ") {
                format!("root = {:?}", workspace().join("www").display().to_string())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("plugin_dirs = [") && text.contains("cases = ["));
    let cfg = dir.write("server.toml", cgi_as_root(&text));
    let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert!(e.stdout.contains("cgi_file") && e.stdout.contains("always_fail"));
}

#[test]
fn a_plugin_panic_costs_its_one_request_a_500_and_the_case_keeps_answering() {
    // One worker: every request below meets the same instance.
    let mut s = Server::start(
        r#"["panicky", "no_file", "existing_file", "always_fail"]"#,
        "workers = 1",
    );
    let r = s.get("/panic");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("500 Internal Server Error"));
    assert!(s.alive());
    assert_eq!(s.get("/plain.html").status, 200);
    // Not skipped from then on: the case still claims its requests.
    assert_eq!(s.get("/panic").status, 500);
    // One line naming the case, with the panic's message and where it was raised.
    assert!(
        s.log_contains("panicked in act: \"this case panics on purpose\" at "),
        "{}",
        s.log()
    );
}

/// A server whose chain starts with the `faulty` C fixture, for its `/fault/...` paths.
fn faulty_server(name: &str) -> Server {
    let dir = TempDir::new(name);
    let root = fixture_root(&dir);
    let (pdir, _) = fixture_plugin(&dir, "faulty");
    let cases = r#"["faulty", "no_file", "existing_file", "always_fail"]"#;
    Server::start_in(dir, root, &[pdir, plugins_dir()], cases, "")
}

/// GET `path` on a connection that asks to stay open: everything until the server closes
/// it, or None when it stays open (the answer looked whole).
fn get_until_closed(s: &Server, path: &str) -> Option<String> {
    let mut c = s.connect();
    c.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut c, &mut all).ok()?;
    Some(String::from_utf8_lossy(&all).into_owned())
}

#[test]
fn a_case_that_writes_less_than_its_content_length_is_cut_off_not_sent_as_whole() {
    // RFC 9112 §8: the client must be able to tell the answer is incomplete, however soon
    // the case ended: the length it named, what it wrote, then the close.
    let s = faulty_server("short-length");
    for _ in 0..3 {
        let all = get_until_closed(&s, "/fault/short").expect("the connection closes");
        assert!(all.contains("\r\nContent-Length: 10\r\n"), "{all}");
        assert!(all.ends_with("\r\n\r\nabc"), "{all}");
    }
    assert_eq!(s.get("/plain.html").status, 200);
}

#[test]
fn a_case_that_writes_more_than_its_content_length_does_not_get_the_longer_length() {
    let s = faulty_server("long-length");
    let all = get_until_closed(&s, "/fault/long").expect("the connection closes");
    assert!(all.contains("\r\nContent-Length: 3\r\n"), "{all}");
    let body = all.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert!(body.len() <= 3, "{all}");
}

#[test]
fn a_key_check_whose_test_panics_refuses_that_request_and_still_guards_the_rest() {
    let mut s = Server::start(
        r#"["panicky", "no_file", "existing_file", "always_fail"]"#,
        "workers = 1",
    );
    std::fs::create_dir(s.root.join("guarded")).unwrap();
    std::fs::write(s.root.join("guarded/secret.txt"), "SECRET").unwrap();
    let with_key = |s: &Server, key: &str| {
        s.raw(&format!(
            "GET /guarded/secret.txt HTTP/1.1\r\nHost: t\r\nX-Key: {key}\r\nConnection: close\r\n\r\n"
        ))
    };
    assert_eq!(with_key(&s, "good").text(), "SECRET");
    assert_eq!(with_key(&s, "bad").status, 403);
    for _ in 0..2 {
        // The test panics on a missing key: that request fails closed, and so does the next.
        let r = s.get("/guarded/secret.txt");
        assert_eq!(r.status, 500);
        assert!(!r.text().contains("SECRET"));
    }
    assert_eq!(with_key(&s, "bad").status, 403, "the check still runs");
    // Before any body is read (a POST the case's methods refuse): 500 too, not its 405.
    let r = s.raw("POST /guarded/secret.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 500);
    assert!(s.alive());
    assert!(
        s.log_contains("panicked in test: \"no X-Key field\" at "),
        "{}",
        s.log()
    );
    assert!(s.log_contains("case=panicky: its test failed on /guarded/secret.txt"));
}

#[test]
fn a_descriptor_shorter_than_abi_1_0_is_refused() {
    let dir = TempDir::new("shortdesc");
    let (pdir, _) = fixture_plugin(&dir, "short_desc");
    let e = check(&dir, r#"["short_desc"]"#, "", &[pdir]);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr
            .contains("descriptor is 32 bytes, ABI 1.0 needs at least 72"),
        "{}",
        e.stderr
    );
}

#[test]
fn an_address_no_interface_has_stops_start_up_saying_so_not_that_it_is_busy() {
    let dir = TempDir::new("no-such-address");
    let root = fixture_root(&dir);
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], CHAIN, ""),
    );
    // 192.0.2.1 is documentation's address (RFC 5737): no interface here has it.
    let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--listen", "192.0.2.1:0"]);
    assert_eq!(e.code, Some(1), "{}", e.stderr);
    assert!(
        e.stderr.contains("cannot listen on 192.0.2.1:0"),
        "{}",
        e.stderr
    );
    assert!(
        e.stderr
            .contains("no interface of this machine has that address"),
        "{}",
        e.stderr
    );
    assert!(!e.stderr.contains("free"), "{}", e.stderr);
}

#[test]
fn a_second_server_on_a_port_in_use_stops_with_a_clear_message() {
    let s = Server::shipped();
    let dir = TempDir::new("second");
    let root = fixture_root(&dir);
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], CHAIN, ""),
    );
    let addr = s.addr.to_string();
    let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--listen", &addr]);
    assert_eq!(e.code, Some(1), "{}", e.stderr);
    assert!(
        e.stderr.contains(&format!("cannot listen on {addr}")),
        "{}",
        e.stderr
    );
    assert!(e.stderr.contains("already in use"), "{}", e.stderr);
    // The first server keeps all the traffic.
    for _ in 0..10 {
        assert_eq!(s.get("/notes.txt").status, 200);
    }
}
