//! Path safety over the wire: no request reaches outside the document root.

use crate::support::*;

#[test]
fn traversal_attempts_never_leave_the_root() {
    let s = Server::shipped();
    std::fs::write(s.dir.path().join("secret.txt"), "SECRET").unwrap();
    for p in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/listing/../../secret.txt",
        "/listing/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/secret.txt%00.html",
        "//secret.txt",
    ] {
        let r = s.raw(&format!(
            "GET {p} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        ));
        assert!([400, 403, 404].contains(&r.status), "{p} gave {}", r.status);
        assert!(!r.text().contains("SECRET"), "{p}");
    }
}

#[test]
fn symlinks_out_of_the_root_are_absent_and_inside_ones_relative_or_absolute_are_followed() {
    let s = Server::shipped();
    let outside = s.dir.path().join("outside.txt");
    std::fs::write(&outside, "OUTSIDE").unwrap();
    std::os::unix::fs::symlink(&outside, s.root.join("out.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", s.root.join("etc")).unwrap();
    std::os::unix::fs::symlink("notes.txt", s.root.join("in.txt")).unwrap();
    // An absolute link back inside is followed too, as nginx, lighttpd and Caddy follow it
    // (the kernel's RESOLVE_BENEATH alone refuses every absolute link).
    let real = s.root.canonicalize().unwrap();
    std::os::unix::fs::symlink(real.join("notes.txt"), s.root.join("abs.txt")).unwrap();
    std::os::unix::fs::symlink(real.join("subdir"), s.root.join("abs-dir")).unwrap();
    std::os::unix::fs::symlink(real.join("../outside.txt"), s.root.join("abs-out.txt")).unwrap();
    // As if absent: the same 404 a missing name gets, so nothing says the link exists.
    let r = s.get("/out.txt");
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("OUTSIDE"));
    assert_eq!(s.get("/etc/passwd").status, 404);
    assert_eq!(s.get("/etc/").status, 404);
    assert_eq!(s.get("/in.txt").text(), "just text\n");
    assert_eq!(s.get("/abs.txt").text(), "just text\n");
    assert_eq!(s.get("/abs-dir/").status, 200);
    assert_eq!(s.get("/abs-out.txt").status, 404);
}

#[test]
fn an_index_html_symlinked_out_of_the_root_is_not_served() {
    let s = Server::shipped();
    let outside = s.dir.path().join("leak.html");
    std::fs::write(&outside, "LEAK").unwrap();
    std::fs::create_dir(s.root.join("trap")).unwrap();
    std::os::unix::fs::symlink(&outside, s.root.join("trap/index.html")).unwrap();
    let r = s.get("/trap/");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("LEAK"));
}

#[test]
fn without_openat2_paths_are_still_confined_and_files_still_served() {
    // CASES_NO_OPENAT2 forces the realpath fallback used where openat2 is missing (Linux
    // before 5.6, seccomp filters, valgrind).
    let dir = TempDir::new("noopenat2");
    let root = fixture_root(&dir);
    let outside = dir.write("outside.txt", "OUTSIDE");
    std::os::unix::fs::symlink(&outside, root.join("out.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    std::os::unix::fs::symlink("notes.txt", root.join("in.txt")).unwrap();
    let s = Server::start_full(
        dir,
        root,
        &[plugins_dir()],
        CHAIN,
        "",
        &[("CASES_NO_OPENAT2", "1")],
    );
    assert!(s.log_contains("openat2 is not available"), "{}", s.log());
    assert_eq!(s.get("/notes.txt").text(), "just text\n");
    assert_eq!(s.get("/in.txt").text(), "just text\n");
    assert_eq!(s.get("/subdir/").status, 200);
    assert_eq!(s.get("/listing/").status, 200);
    assert_eq!(s.get("/nope.txt").status, 404);
    let r = s.get("/out.txt");
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("OUTSIDE"));
    assert_eq!(s.get("/etc/passwd").status, 404);
    for p in [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/listing/../../outside.txt",
    ] {
        let r = s.get(p);
        assert!([400, 403, 404].contains(&r.status), "{p}: {}", r.status);
        assert!(!r.text().contains("OUTSIDE"), "{p}");
    }
}

#[test]
fn a_hidden_name_stays_hidden_even_as_a_folder_or_a_link_out_of_the_root() {
    let s = Server::shipped();
    std::fs::create_dir_all(s.root.join(".git")).unwrap();
    std::os::unix::fs::symlink("/etc", s.root.join(".outside")).unwrap();
    for (p, twin) in [
        ("/.git", "/.absent"),
        ("/.git/", "/.absent/"),
        ("/.outside", "/.absent"),
        ("/.outside/passwd", "/.absent/passwd"),
    ] {
        let r = s.get(p);
        assert_eq!(r.status, 404, "{p}");
        assert_eq!(r.header("location"), None, "{p}");
        let first = p.split('/').nth(1).unwrap();
        let same = r.text().replace(first, ".absent");
        assert_eq!(
            same,
            s.get(twin).text(),
            "{p} must look like a missing name"
        );
    }
}

/// A last `.` or `..` segment leaves a folder (RFC 3986 §5.2.4): `/notes.txt/.` names a
/// folder that is not there (404, as nginx says), `/subdir/.` and `/subdir/x/..` the folder
/// itself, whose index is served there without a redirect (nginx too).
#[test]
fn a_last_dot_segment_names_a_folder() {
    let s = Server::shipped();
    let get = |path: &str| {
        s.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        ))
    };
    for path in ["/notes.txt/.", "/notes.txt/x/..", "/notes.txt/%2e"] {
        assert_eq!(get(path).status, 404, "{path}");
    }
    for path in ["/subdir/.", "/subdir/x/..", "/subdir/%2E"] {
        let r = get(path);
        assert_eq!(
            (r.status, r.text()),
            (200, "<p>subdir index</p>\n".into()),
            "{path}"
        );
    }
    assert_eq!(get("/notes.txt").status, 200);
}
