//! Running as a service: workers (and so CGI scripts) as `user` when started as root,
//! cgi_file's refusal to run scripts as root, sd_notify, socket activation, the pid file, and
//! the committed man page and completions matching the flags.

use crate::support::*;
use rustix::process::Signal;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Not started as root: the test says it is skipped (the root-only ones start workers as
/// another user).
fn not_root() -> bool {
    let not = !rustix::process::geteuid().is_root();
    if not {
        eprintln!("skipped: needs root");
    }
    not
}

/// A dir whose plugins folder holds copies of the libraries (readable by any user, wherever
/// the checkout is) and whose root has a script printing who runs it.
fn as_user_dir() -> (TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = TempDir::new("user");
    let www = fixture_root(&dir);
    let pdir = dir.subdir("plugins");
    for name in [
        "cgi_file",
        "compress",
        "no_file",
        "existing_file",
        "always_fail",
    ] {
        let lib = format!("lib{name}.so");
        std::fs::copy(plugins_dir().join(&lib), pdir.join(&lib)).unwrap();
    }
    let script = dir.write(
        "www/cgi-bin/id.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nid -u\n",
    );
    chmod(&script, 0o755);
    // Whatever the umask, the workers' user can reach all of it.
    for d in [dir.path(), &www, &www.join("cgi-bin"), &pdir] {
        chmod(d, 0o755);
    }
    for e in std::fs::read_dir(&pdir).unwrap() {
        chmod(&e.unwrap().path(), 0o755);
    }
    (dir, www, pdir)
}

const CGI_CHAIN: &str = r#"["cgi_file", "no_file", "existing_file", "always_fail"]"#;

#[test]
fn started_as_root_with_user_scripts_and_workers_do_not_run_as_root() {
    if not_root() {
        return;
    }
    let (dir, www, pdir) = as_user_dir();
    // No run_as_root here: the chain has cgi_file, but the workers are not root.
    let extra = "user = \"nobody\"\naccess_log = \"access.log\"\n";
    let text = config_text(&www, &[pdir], CGI_CHAIN, extra).replace("run_as_root = true\n", "");
    assert!(!text.contains("run_as_root"));
    std::fs::write(dir.path().join("server.toml"), &text).unwrap();
    let s = Server::start_config(dir, www, &[]);
    let uid = s.get("/cgi-bin/id.sh").text();
    assert_ne!(uid.trim(), "0", "a script ran as root");
    assert!(!uid.trim().is_empty());
    for w in s.workers(2) {
        let status = std::fs::read_to_string(format!("/proc/{w}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            line.split_whitespace().skip(1).all(|u| u == uid.trim()),
            "{line}"
        );
    }
    // The master made the access log the workers' own, so they write (and reopen) it.
    let log = s.dir.path().join("access.log");
    assert!(within(Duration::from_secs(3), || std::fs::read_to_string(
        &log
    )
    .is_ok_and(|l| l.contains("GET /cgi-bin/id.sh"))));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&log).unwrap().uid().to_string(),
        uid.trim()
    );
}

#[test]
fn a_file_the_workers_cannot_read_is_403_whatever_the_request_asks() {
    if not_root() {
        return;
    }
    let (dir, www, pdir) = as_user_dir();
    let secret = dir.write("www/secret.txt", "only root reads this\n");
    chmod(&secret, 0o600);
    let text = config_text(&www, &[pdir], CGI_CHAIN, "user = \"nobody\"\n");
    std::fs::write(dir.path().join("server.toml"), text).unwrap();
    let s = Server::start_config(dir, www, &[]);
    let get = "GET /secret.txt HTTP/1.1\r\nHost: x\r\n";
    for extra in ["", "If-None-Match: *\r\n", "Range: bytes=0-3\r\n"] {
        let r = s.raw(&format!("{get}{extra}Connection: close\r\n\r\n"));
        assert_eq!(r.status, 403, "{extra}: {}", r.raw_head);
        assert!(r.header("etag").is_none(), "{}", r.raw_head);
    }
    let head = s.raw("HEAD /secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(head.status, 403, "{}", head.raw_head);
    assert_eq!(s.get("/plain.html").status, 200);
}

#[test]
fn a_file_in_a_folder_the_workers_cannot_search_is_403_and_logged_not_a_silent_404() {
    if not_root() {
        return;
    }
    let (dir, www, pdir) = as_user_dir();
    dir.write("www/locked/in.txt", "behind a folder nobody may enter\n");
    chmod(&www.join("locked"), 0o700);
    let text = config_text(&www, &[pdir], CGI_CHAIN, "user = \"nobody\"\n");
    std::fs::write(dir.path().join("server.toml"), text).unwrap();
    let s = Server::start_config(dir, www, &[]);
    // As nginx and lighttpd answer: a wrong owner is not made to look like a missing file.
    assert_eq!(s.get("/locked/in.txt").status, 403);
    assert_eq!(s.get("/locked/none.txt").status, 403);
    assert!(
        s.log_contains("locked/in.txt: Permission denied"),
        "{}",
        s.log()
    );
    for _ in 0..10 {
        assert_eq!(s.get("/locked/in.txt").status, 403);
    }
    let said = s.log().matches("Permission denied").count();
    assert!(said <= 3, "said once a second at most: {said}\n{}", s.log());
    assert_eq!(s.get("/plain.html").status, 200);
    assert_eq!(s.get("/missing.txt").status, 404);
}

#[test]
fn a_root_the_workers_cannot_enter_stops_start_up_with_a_fix() {
    // Otherwise every file in it was a silent 404 (nginx logs each 403).
    if not_root() {
        return;
    }
    let (dir, www, pdir) = as_user_dir();
    chmod(&www, 0o700);
    let text = config_text(&www, &[pdir], CGI_CHAIN, "user = \"nobody\"\n");
    let cfg = dir.write("server.toml", &text);
    let refused = |args: Vec<&str>| {
        let mut all = args.clone();
        all.extend(["--config", cfg.to_str().unwrap()]);
        let e = run_to_exit(&all);
        assert_eq!(e.code, Some(1), "{args:?}: {}", e.stderr);
        assert!(
            e.stderr.contains("user \"nobody\"")
                && e.stderr.contains("cannot enter it")
                && e.stderr.contains("fix:"),
            "{args:?}: {}",
            e.stderr
        );
    };
    refused(vec!["--check-config"]);
    refused(vec![]);
    // A private folder above the root (a checkout in /root) is the same refusal, not a
    // bare "Permission denied".
    chmod(&www, 0o755);
    chmod(dir.path(), 0o700);
    refused(vec!["--check-config"]);
    chmod(dir.path(), 0o755);
}

#[test]
fn a_sidecar_the_workers_cannot_read_is_passed_over_and_the_file_still_served() {
    if not_root() {
        return;
    }
    let (dir, www, pdir) = as_user_dir();
    let text = "a page long enough to be worth compressing, ".repeat(20);
    let page = dir.write("www/page.txt", &text);
    chmod(&page, 0o644);
    let side = dir.write("www/page.txt.zst", "not readable by the workers");
    chmod(&side, 0o000);
    let chain = r#"["compress", "no_file", "existing_file"]"#;
    let extra = "user = \"nobody\"\n[plugins.compress]\nprecompressed = true\n";
    let cfg = config_text(&www, &[pdir], chain, extra);
    std::fs::write(dir.path().join("server.toml"), cfg).unwrap();
    let s = Server::start_config(dir, www, &[]);
    // The sidecar is passed over (it was a 500) and the file coded on the fly.
    let ask = "GET /page.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: zstd\r\n";
    let r = s.raw(&format!("{ask}Connection: close\r\n\r\n"));
    assert_eq!(r.status, 200, "{}", s.log());
    assert_eq!(r.header("content-encoding"), Some("zstd"), "{}", r.raw_head);
    assert_eq!(
        r.header("transfer-encoding"),
        Some("chunked"),
        "{}",
        r.raw_head
    );
}

#[test]
fn cgi_file_refuses_to_start_as_root_unless_told_to() {
    if not_root() {
        return;
    }
    let (dir, www, pdir) = as_user_dir();
    let text = config_text(&www, &[pdir], CGI_CHAIN, "").replace("run_as_root = true\n", "");
    let cfg = dir.write("server.toml", &text);
    let e = run_to_exit(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(e.code, Some(1), "{}", e.stderr);
    assert!(
        e.stderr
            .contains("the server runs as root, so every script would too"),
        "{}",
        e.stderr
    );
    assert!(e.stderr.contains("set user = "), "{}", e.stderr);
}

/// A datagram socket standing in for systemd's notify socket.
fn notify_socket(dir: &TempDir) -> (UnixDatagram, String) {
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (sock, path.display().to_string())
}

fn next(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_service_manager_hears_ready_reloading_and_stopping() {
    let dir = TempDir::new("notify");
    let (sock, path) = notify_socket(&dir);
    let root = fixture_root(&dir);
    let mut s = Server::start_full(
        dir,
        root,
        &[plugins_dir()],
        CHAIN,
        "",
        &[("NOTIFY_SOCKET", &path)],
    );
    let ready = next(&sock);
    assert!(ready.contains("READY=1"), "{ready}");
    assert!(
        ready.contains(&format!("MAINPID={}", s.child.id())),
        "{ready}"
    );
    s.signal(Signal::HUP);
    let reloading = next(&sock);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert!(next(&sock).contains("READY=1"));
    s.signal(Signal::TERM);
    assert_eq!(next(&sock), "STOPPING=1");
    assert!(within(Duration::from_secs(5), || !s.alive()));
}

/// The server with the usual chain, `extra` settings and `listen` naming `listener`'s
/// address, handed `listener` as systemd does: the socket at descriptor 3, LISTEN_FDS=1,
/// LISTEN_PID = the server's pid (the shell's, which exec keeps).
fn activated(listener: std::net::TcpListener, tag: &str, extra: &str) -> Server {
    use command_fds::{CommandFdExt, FdMapping};
    let addr = listener.local_addr().unwrap();
    let dir = TempDir::new(tag);
    let root = fixture_root(&dir);
    let text = config_text(&root, &[plugins_dir()], CHAIN, extra)
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\""));
    let cfg = dir.write("server.toml", text);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --config \"$1\"")
        .arg(server_bin())
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: listener.into(),
        child_fd: 3,
    }])
    .unwrap();
    Server::adopt(cmd.spawn().unwrap(), dir, root)
}

#[test]
fn a_socket_passed_by_the_service_manager_is_served() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The same socket, to see the options the server sets on it.
    let probe = listener.try_clone().unwrap();
    let s = activated(listener, "activation", "");
    assert_eq!(s.addr, addr, "the inherited socket, not a new one");
    assert_eq!(s.get("/notes.txt").status, 200);
    // Tuned like a socket of its own: its connections inherit these.
    assert!(socket2::SockRef::from(&probe).nodelay().unwrap());
    let lowat = nix::sys::socket::getsockopt(&probe, NotsentLowat).unwrap();
    assert_eq!(lowat, 256 * 1024);
}

#[test]
fn ipv4_clients_of_a_dual_stack_socket_from_the_service_manager_are_their_ipv4_address() {
    // systemd's `ListenStream=80` is a dual-stack [::]:80; a mapped loopback address is
    // the same kind of socket, reachable from this machine only.
    let Ok(listener) = std::net::TcpListener::bind("[::ffff:127.0.0.1]:0") else {
        eprintln!("SKIPPED: this machine has no dual-stack IPv6 sockets");
        return;
    };
    let s = activated(listener, "dual-stack", "access_log = \"-\"\n");
    assert_eq!(s.get("/notes.txt").status, 200);
    // As the access rules see it, and as nginx and Caddy log it: not ::ffff:127.0.0.1.
    assert!(s.log_contains("\n127.0.0.1 - - ["), "{}", s.log());
    assert!(!s.log().contains("::ffff:"), "{}", s.log());
}

use nix::{getsockopt_impl, sockopt_impl};
sockopt_impl!(
    NotsentLowat,
    GetOnly,
    libc::IPPROTO_TCP,
    libc::TCP_NOTSENT_LOWAT,
    u32
);

/// With workers the pid file names the master; with `single_process` the one process (it
/// was not written at all).
#[test]
fn the_pid_file_names_the_master_and_goes_away_with_it() {
    for mode in ["", "single_process = true\n"] {
        let dir = TempDir::new("pidfile");
        let root = fixture_root(&dir);
        dir.subdir("run");
        let extra = format!("pid_file = \"run/server.pid\"\n{mode}");
        let mut s = Server::start_in(dir, root, &[plugins_dir()], CHAIN, &extra);
        let pid_file = s.dir.path().join("run/server.pid");
        assert_eq!(
            std::fs::read_to_string(&pid_file).unwrap_or_default(),
            format!("{}\n", s.child.id()),
            "{mode:?}"
        );
        s.signal(Signal::TERM);
        assert!(within(Duration::from_secs(5), || !s.alive()));
        assert!(!pid_file.exists(), "{mode:?}");
    }
}

/// A service manager waits for the pid file (systemd's PIDFile=): one that cannot be
/// written stops start-up, naming it, as nginx's does (it was logged and the server ran).
#[test]
fn a_pid_file_that_cannot_be_written_stops_start_up() {
    for mode in ["", "single_process = true\n"] {
        let extra = format!("pid_file = \"no/such/folder/server.pid\"\n{mode}");
        let e = start_refused("pidfile", CHAIN, &extra);
        assert_eq!(e.code, Some(1), "{mode:?}: {}", e.stderr);
        assert!(
            e.stderr.contains("cannot write the pid file")
                && e.stderr.contains("no/such/folder/server.pid")
                && e.stderr.contains("fix:"),
            "{mode:?}: {}",
            e.stderr
        );
    }
}

#[test]
fn a_wrong_log_level_is_refused_with_the_levels_listed() {
    let e = run_to_exit(&["--log-level", "loud"]);
    assert_eq!(e.code, Some(2), "{}", e.stderr);
    assert!(
        e.stderr
            .contains("possible values: off, error, warn, info, debug, trace"),
        "{}",
        e.stderr
    );
}

#[test]
fn the_man_page_says_what_signals_do_where_files_are_and_what_exit_codes_mean() {
    let man = run_to_exit(&["--generate", "man"]).stdout;
    for section in [".SH SIGNALS", ".SH FILES", ".SH EXIT STATUS"] {
        assert!(man.contains(section), "{section} missing:\n{man}");
    }
    for signal in ["HUP", "USR1", "USR2", "WINCH", "QUIT"] {
        assert!(man.contains(&format!("\\fB{signal}\\fR")), "{signal}");
    }
}

#[test]
fn the_committed_man_page_and_completions_match_the_flags() {
    for (what, file) in [
        ("man", "docs/server.1"),
        ("bash", "docs/completions/server.bash"),
        ("zsh", "docs/completions/_server"),
        ("fish", "docs/completions/server.fish"),
    ] {
        let e = run_to_exit(&["--generate", what]);
        assert_eq!(e.code, Some(0), "{what}: {}", e.stderr);
        let committed = std::fs::read_to_string(workspace().join(file)).unwrap_or_default();
        assert!(
            committed == e.stdout,
            "{file} is stale: regenerate it with `target/debug/server --generate {what} > {file}`"
        );
        // A user's shell offers no flag `--help` does not show (the master's `--worker`).
        if what != "man" {
            for hidden in ["--worker", "--config-on-stdin", "--generate"] {
                assert!(!committed.contains(hidden), "{file} offers {hidden}");
            }
        }
    }
}
