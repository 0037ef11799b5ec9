//! hidden_files: dotfiles and everything in a dot-folder answer 404 as if absent, for every
//! method, however the path is spelled; `/.well-known/` stays served; the listing agrees.

use crate::support::*;

/// A server on the fixture root plus secrets in dotfiles, a dot-folder and `.well-known`.
fn start() -> Server {
    let s = Server::start(CHAIN, "");
    write_secrets(&s.root);
    s
}

fn write_secrets(root: &std::path::Path) {
    let put = |rel: &str, data: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    put(".env", "SECRET=env\n");
    put(".git/config", "SECRET=git\n");
    put("a/.secret", "SECRET=a\n");
    put("a/visible.txt", "visible\n");
    put(".well-known/x", "well known\n");
    put(".well-known/.y", "SECRET=y\n");
    let script = root.join("cgi-bin/.hook.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nSECRET=ran\\n'\n",
    )
    .unwrap();
    chmod(&script, 0o755);
}

/// `r` is exactly what the same name answers when nothing is there (`/.git/config` and
/// `/.git/config-absent`, with the name swapped back): nothing tells that it exists.
fn assert_absent(s: &Server, r: &Response, shown: &str, method: &str) {
    assert_eq!(r.status, 404, "{method} {shown}: {}", r.text());
    assert!(!r.text().contains("SECRET"), "{method} {shown}");
    let absent = match shown.strip_suffix('/') {
        Some(folder) => format!("{folder}-absent/"),
        None => format!("{shown}-absent"),
    };
    let missing = s.get(&absent);
    assert_eq!(missing.status, 404);
    assert_eq!(
        r.text(),
        missing.text().replace(&absent, shown),
        "{method} {shown} differs from an absent name"
    );
}

fn request(s: &Server, method: &str, path: &str) -> Response {
    s.raw(&format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nx="
    ))
}

#[test]
fn dotfiles_and_dot_folders_answer_404_as_if_absent() {
    let s = start();
    // (what is sent, the decoded and normalised path the page shows)
    for (sent, shown) in [
        ("/.env", "/.env"),
        ("/.git/config", "/.git/config"),
        ("/.git/", "/.git/"),
        ("/%2egit/config", "/.git/config"),
        ("/%2Eenv", "/.env"),
        ("//.env", "/.env"),
        ("/a/../.git/config", "/.git/config"),
        ("/a/.secret", "/a/.secret"),
        ("/a/./.secret", "/a/.secret"),
        ("/.well-known/.y", "/.well-known/.y"),
    ] {
        assert_absent(&s, &s.get(sent), shown, "GET");
    }
}

#[test]
fn every_method_to_a_dotfile_is_404_not_405_and_no_hidden_script_runs() {
    let s = start();
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "HEAD"] {
        let r = if method == "HEAD" {
            s.raw("HEAD /.env HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        } else {
            request(&s, method, "/.env")
        };
        assert_eq!(r.status, 404, "{method} /.env");
    }
    let r = request(&s, "POST", "/.env");
    assert_absent(&s, &r, "/.env", "POST");
    let r = request(&s, "POST", "/cgi-bin/.hook.sh");
    assert_absent(&s, &r, "/cgi-bin/.hook.sh", "POST");
}

#[test]
fn well_known_is_still_served() {
    let s = start();
    let r = s.get("/.well-known/x");
    assert_eq!((r.status, r.text().as_str()), (200, "well known\n"));
    assert_eq!(s.get("/%2ewell-known/x").status, 200);
}

#[test]
fn the_listing_shows_only_what_can_be_fetched_and_never_a_hidden_name() {
    let s = start();
    let listing = s.get("/a/").text();
    assert!(listing.contains("href=\"visible.txt\""), "{listing}");
    assert!(!listing.contains(".secret"), "{listing}");
    assert_eq!(s.get("/a/visible.txt").status, 200);
    assert_eq!(s.get("/a/.secret").status, 404);
    let well_known = s.get("/.well-known/").text();
    assert!(well_known.contains("href=\"x\""), "{well_known}");
    assert!(!well_known.contains(".y"), "{well_known}");
}

#[test]
fn the_shipped_config_puts_hidden_files_first_and_hides_dotfiles() {
    let shipped: toml::Table = std::fs::read_to_string(workspace().join("config/server.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let cases = shipped["cases"].as_array().unwrap();
    assert_eq!(cases[0].as_str(), Some("hidden_files"));
    let settings = &shipped["plugins"]["hidden_files"];
    let extra = format!(
        "[plugins.hidden_files]\n{}",
        toml::to_string(settings).unwrap()
    );
    // The chapter's cases behind it (the shipped chain's other plugins need the shipped
    // site's files; the browser test runs that whole).
    let s = Server::start(CHAIN, &extra);
    write_secrets(&s.root);
    assert_absent(&s, &s.get("/.git/config"), "/.git/config", "GET");
    assert_eq!(s.get("/.well-known/x").status, 200);
    // And the shipped demo site has a harmless .env to prove it.
    assert!(workspace().join("www/.env").is_file());
}

#[test]
fn bad_settings_are_refused_at_start_up_saying_what_is_expected() {
    for (extra, says) in [
        (
            "allow = [\".well-known/\"]",
            "expected a decoded path starting with '/'",
        ),
        ("allow = [\"/%2egit/\"]", "write '.' and not '%2e'"),
        ("allow = [\"/public/\"]", "nothing in it is hidden"),
        ("hide = true", "unknown field `hide`"),
    ] {
        let dir = TempDir::new("hidden-bad");
        let root = fixture_root(&dir);
        let text = config_text(
            &root,
            &[plugins_dir()],
            CHAIN,
            &format!("[plugins.hidden_files]\n{extra}\n"),
        );
        let cfg = dir.write("server.toml", text);
        let e = run_to_exit(&["--config", cfg.to_str().unwrap(), "--check-config"]);
        assert_eq!(e.code, Some(1), "{extra}: {}", e.stderr);
        assert!(e.stderr.contains("hidden_files"), "{extra}: {}", e.stderr);
        assert!(e.stderr.contains(says), "{extra}: {}", e.stderr);
    }
}
