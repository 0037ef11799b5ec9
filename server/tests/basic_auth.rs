//! basic_auth: protected prefixes ask for a user name and password from an htpasswd file,
//! tested with curl -u as a real client, and the raw helpers for what curl will not send.

use crate::support::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// alice / "wonder land" (htpasswd -B -C 4) and bob / "b0b:pass" (htpasswd -2).
const USERS: &str = "# staff\n\
alice:$2y$04$B/GRR97FQeSBDSIPiuOWdeALcE94ImqSBVrJQRMd0e1Hp9NOQxZTa\n\
\n\
bob:$5$lngwOHfpvMNLEIS7$WtU3LW2w7iQKD1rgFBlqJoGi/lhZmSlZRFhaimJ9xG7\n";

/// carol / "carol-π" (htpasswd -5).
const CAROL: &str =
    "carol:$6$XKWH8zi9lwMbqg6x$s3YGsCvVXDPOTgRQEBNBoa2TowK108lTpXnApF8qkTkiseqnyYpZ9VYHxU6iJtqMRDS1.7tVrVYF685CxpC6l.\n";

/// The shipped chain with basic_auth after hidden_files.
fn chain() -> String {
    CHAIN.replacen(
        "\"hidden_files\", ",
        "\"hidden_files\", \"basic_auth\", ",
        1,
    )
}

/// A server whose /private/, /cgi-bin/ and /info are protected by `users`, with the access
/// log on stderr.
fn protected(users: &str) -> Server {
    let dir = TempDir::new("auth");
    let root = fixture_root(&dir);
    dir.write("www/private/page.html", "<p>members only</p>\n");
    let script = dir.write(
        "www/cgi-bin/whoami.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf '%s|%s|%s\\n' \"$REMOTE_USER\" \"$AUTH_TYPE\" \"$HTTP_AUTHORIZATION\"\n",
    );
    chmod(&script, 0o755);
    let file = dir.write("htpasswd", users);
    let extra = format!(
        "access_log = \"-\"\n\
         [[plugins.basic_auth.areas]]\nprefix = \"/private/\"\nrealm = \"Members \\\"only\\\"\"\nhtpasswd = {file:?}\n\
         [[plugins.basic_auth.areas]]\nprefix = \"/cgi-bin/\"\nrealm = \"Scripts\"\nhtpasswd = {file:?}\n\
         [[plugins.basic_auth.areas]]\nprefix = \"/info\"\nrealm = \"Info\"\nhtpasswd = {file:?}\n"
    );
    Server::start_in(dir, root, &[plugins_dir()], &chain(), &extra)
}

/// What curl got: the status, the head and the body.
struct Got {
    status: u16,
    head: String,
    body: String,
}

/// Run curl on `path` with extra arguments (`-u user:pass`, `-X OPTIONS`...).
fn curl(s: &Server, path: &str, args: &[&str]) -> Got {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-"])
        .args(args)
        .arg(format!("http://{}{path}", s.addr))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "curl got no answer: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    Got {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// Poll (up to 5 s) until `user:password` gets `want` on /private/page.html.
fn until_status(s: &Server, user_pass: &str, want: u16) -> u16 {
    let start = Instant::now();
    loop {
        let got = curl(s, "/private/page.html", &["-u", user_pass]).status;
        if got == want || start.elapsed() > Duration::from_secs(5) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_right_password_gets_the_page() {
    let s = protected(USERS);
    let r = curl(&s, "/private/page.html", &["-u", "alice:wonder land"]);
    assert_eq!((r.status, r.body.as_str()), (200, "<p>members only</p>\n"));
    let r = curl(&s, "/private/page.html", &["-u", "bob:b0b:pass"]);
    assert_eq!(r.status, 200, "a colon in the password");
    // Outside the protected prefixes nothing is asked.
    assert_eq!(curl(&s, "/notes.txt", &[]).status, 200);
}

#[test]
fn no_or_wrong_credentials_get_401_with_a_challenge_and_an_html_page() {
    let s = protected(USERS);
    for args in [
        &[][..],
        &["-u", "alice:wrong"][..],
        &["-u", "mallory:wonder land"][..],
        &["-u", "Alice:wonder land"][..],
    ] {
        let r = curl(&s, "/private/page.html", args);
        assert_eq!(r.status, 401, "{args:?}");
        assert!(
            r.head.contains(
                "\r\nWWW-Authenticate: Basic realm=\"Members \\\"only\\\"\", charset=\"UTF-8\""
            ),
            "{args:?}: {}",
            r.head
        );
        assert!(r.head.contains("Content-Type: text/html"), "{}", r.head);
        assert!(r.body.contains("401 Unauthorized"), "{}", r.body);
        assert!(!r.body.contains("members only"), "{}", r.body);
        assert!(!r.body.contains("alice") && !r.body.contains("mallory"));
    }
}

#[test]
fn malformed_authorization_fields_get_401() {
    let s = protected(USERS);
    for value in [
        "Bearer YWxpY2U6d29uZGVyIGxhbmQ=",
        "Basic YWxpY2U6d29uZGVyIGxhbmQ",
        "Basic YWxpY2U6d29uZGVy IGxhbmQ=",
        "Basic YWxpY2Ugd29uZGVyIGxhbmQ=",
        "Basic !!!!",
    ] {
        let r = s.raw(&format!(
            "GET /private/page.html HTTP/1.1\r\nHost: t\r\nAuthorization: {value}\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(r.status, 401, "{value}");
    }
    // The same credentials, well-formed, with the scheme in another case.
    let r = s.raw("GET /private/page.html HTTP/1.1\r\nHost: t\r\nAuthorization: bAsIc YWxpY2U6d29uZGVyIGxhbmQ=\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn every_method_is_challenged_options_included() {
    let s = protected(USERS);
    for args in [
        ["-X", "OPTIONS"],
        ["-X", "POST"],
        ["-X", "DELETE"],
        ["-I", "-s"],
    ] {
        let r = curl(&s, "/private/page.html", &args);
        assert_eq!(r.status, 401, "{args:?}");
    }
    let r = curl(
        &s,
        "/private/page.html",
        &["-X", "OPTIONS", "-u", "alice:wonder land"],
    );
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.head.contains("Allow: "), "{}", r.head);
}

#[test]
fn a_cgi_script_under_a_protected_prefix_sees_remote_user_and_auth_type() {
    let s = protected(USERS);
    let r = curl(&s, "/cgi-bin/whoami.sh", &["-u", "alice:wonder land"]);
    assert_eq!(r.status, 200, "{}", r.body);
    // The credentials themselves are not passed on (RFC 3875 §4.1.18).
    assert_eq!(r.body, "alice|Basic|\n");
    assert_eq!(curl(&s, "/cgi-bin/whoami.sh", &[]).status, 401);
}

#[test]
fn credentials_reach_neither_the_logs_nor_the_request_info_page() {
    let s = protected(USERS);
    assert_eq!(
        curl(&s, "/private/page.html", &["-u", "alice:wonder land"]).status,
        200
    );
    assert_eq!(
        curl(&s, "/private/page.html", &["-u", "alice:s3cr3t-typo"]).status,
        401
    );
    let r = curl(&s, "/info", &["-u", "alice:wonder land"]);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("<td>Authorization</td><td>(hidden)</td>"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("YWxpY2U6d29uZGVyIGxhbmQ="), "{}", r.body);
    assert!(s.log_contains("\"GET /info HTTP/1.1\" 200"));
    let log = s.log();
    for secret in [
        "wonder land",
        "s3cr3t-typo",
        "YWxpY2U6d29uZGVyIGxhbmQ=",
        "YWxpY2U6czNjcjN0LXR5cG8=",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(
        log.contains("refused for /private/page.html: wrong password"),
        "{log}"
    );
}

#[test]
fn a_changed_file_is_read_again_without_a_restart() {
    let s = protected(USERS);
    assert_eq!(
        curl(&s, "/private/page.html", &["-u", "carol:carol-π"]).status,
        401
    );
    // Replaced as editors and htpasswd do: a new file renamed over the old one.
    s.dir.write("htpasswd.new", CAROL);
    std::fs::rename(
        s.dir.path().join("htpasswd.new"),
        s.dir.path().join("htpasswd"),
    )
    .unwrap();
    assert_eq!(until_status(&s, "carol:carol-π", 200), 200, "{}", s.log());
    assert_eq!(
        curl(&s, "/private/page.html", &["-u", "alice:wonder land"]).status,
        401
    );
    assert!(s.log_contains("changed: 1 users read"), "{}", s.log());
}

#[test]
fn a_broken_new_file_keeps_the_old_users_and_says_why() {
    let s = protected(USERS);
    s.dir.write(
        "htpasswd",
        format!("{USERS}eve:$apr1$2xlLsUS4$dNYVt8ND6MXS12JYJbp9M0\n"),
    );
    // The file is looked at again on a request, at most once a second.
    let start = Instant::now();
    while !s.log().contains(":5: user \"eve\": its hash is Apache MD5") {
        assert!(start.elapsed() < Duration::from_secs(5), "{}", s.log());
        assert_eq!(
            curl(&s, "/private/page.html", &["-u", "alice:wonder land"]).status,
            200
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        s.log_contains("the users read before stay in use"),
        "{}",
        s.log()
    );
    assert_eq!(
        curl(&s, "/private/page.html", &["-u", "alice:wonder land"]).status,
        200
    );
}

#[test]
fn a_refused_file_stops_start_up_naming_file_line_user_and_fix() {
    let dir = TempDir::new("auth-bad");
    let root = fixture_root(&dir);
    let file = dir.write(
        "htpasswd",
        format!("{USERS}eve:$apr1$2xlLsUS4$dNYVt8ND6MXS12JYJbp9M0\n"),
    );
    let extra = format!(
        "[[plugins.basic_auth.areas]]\nprefix = \"/private/\"\nrealm = \"r\"\nhtpasswd = {file:?}\n"
    );
    let cfg = dir.write(
        "server.toml",
        config_text(&root, &[plugins_dir()], &chain(), &extra),
    );
    let e = run_to_exit(&["--config", cfg.to_str().unwrap()]);
    assert_ne!(e.code, Some(0));
    let at = format!("{}:5: user \"eve\": its hash is Apache MD5", file.display());
    assert!(e.stderr.contains(&at), "{}", e.stderr);
    assert!(
        e.stderr.contains("expected: a bcrypt ($2y$)"),
        "{}",
        e.stderr
    );
    assert!(
        e.stderr
            .contains(&format!("htpasswd -B {} eve", file.display())),
        "{}",
        e.stderr
    );
}

#[test]
fn a_sha1_user_is_accepted_with_a_warning_at_start_up() {
    // dave / "dave" (htpasswd -s)
    let s = protected("dave:{SHA}v83z5sps70VUO/u1dQnJKuyaOfs=\n");
    assert!(s.log_contains("user \"dave\" has a {SHA} hash (unsalted SHA-1): accepted, but weak"));
    assert_eq!(
        curl(&s, "/private/page.html", &["-u", "dave:dave"]).status,
        200
    );
}

#[test]
fn the_access_log_names_the_user_only_once_the_password_is_verified() {
    let s = protected(USERS);
    assert_eq!(
        curl(&s, "/private/page.html?ok", &["-u", "alice:wonder land"]).status,
        200
    );
    assert_eq!(
        curl(&s, "/private/page.html?typo", &["-u", "alice:wrong"]).status,
        401
    );
    assert!(s.log_contains("\"GET /private/page.html?typo HTTP/1.1\" 401"));
    let log = s.log();
    let line = |q: &str| {
        let needle = format!("\"GET /private/page.html?{q} HTTP/1.1\"");
        log.lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("ok").starts_with("127.0.0.1 - alice ["),
        "{}",
        line("ok")
    );
    assert!(
        line("typo").starts_with("127.0.0.1 - - ["),
        "{}",
        line("typo")
    );
}
