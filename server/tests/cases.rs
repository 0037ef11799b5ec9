//! One test per case of the shipped chain, in chain order.

use crate::support::*;

#[test]
fn hello_answers_the_chapters_first_page_under_its_prefix() {
    let s = Server::shipped();
    let r = s.get("/hello");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<p>Hello, web!</p>"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    // Outside its prefix it does not answer.
    assert_eq!(s.get("/helloworld").status, 404);
}

#[test]
fn request_info_shows_client_method_path_and_headers_escaped() {
    let s = Server::shipped();
    let r = s.raw(
        "GET /info/x?y=1 HTTP/1.1\r\nHost: test\r\nX-Probe: <b>&\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let t = r.text();
    assert!(t.contains("<td>Client host</td><td>127.0.0.1</td>"), "{t}");
    assert!(t.contains("<td>Command</td><td>GET</td>"), "{t}");
    assert!(t.contains("<td>Path</td><td>/info/x?y=1</td>"), "{t}");
    assert!(t.contains("<td>X-Probe</td><td>&lt;b&gt;&amp;</td>"), "{t}");
    assert!(t.contains("Date and time"));
}

#[test]
fn the_pages_the_server_draws_have_a_language_a_main_landmark_and_visible_links() {
    // From an audit with the Nu HTML Checker and axe-core (WCAG 2.1 AA): links in muted
    // text differed only by colour (1.24:1), no page had a <main>, /info had no lang.
    let s = Server::shipped();
    let listing = s.get("/listing/").text();
    let missing = s.get("/listing/nope.txt").text();
    for page in [&listing, &missing] {
        assert!(page.contains("<html lang=\"en\">"), "{page}");
        assert!(
            page.contains("<main>\n<h1>") && page.contains("</main>\n"),
            "{page}"
        );
        assert!(
            page.contains("nav a,footer a,p a{text-decoration:underline}"),
            "{page}"
        );
    }
    assert!(listing.contains(">../ <span class=\"muted\">(parent folder)</span></a>"));
    let info = s.get("/info").text();
    assert!(
        info.contains("<html lang=\"en\">") && info.contains("<h1>Request</h1>"),
        "{info}"
    );
    assert!(info.contains("<th scope=\"col\">Name</th>"), "{info}");
    assert!(
        info.contains("<main>\n<h1>") && info.contains("</main>\n"),
        "{info}"
    );
}

#[test]
fn request_info_hides_credentials() {
    let s = Server::shipped();
    let r = s.raw("GET /info HTTP/1.1\r\nHost: t\r\nCookie: session=s3cr3t\r\nAuthorization: Basic eDp5\r\nConnection: close\r\n\r\n");
    let t = r.text();
    assert!(t.contains("<td>Cookie</td><td>(hidden)</td>"), "{t}");
    assert!(!t.contains("s3cr3t") && !t.contains("eDp5"), "{t}");
}

#[test]
fn cgi_file_runs_a_script_under_cgi_bin_with_its_query_string() {
    let s = Server::shipped();
    let r = s.get("/cgi-bin/hello.sh?a=1&b=%20");
    assert_eq!(r.status, 200, "{}", s.log());
    assert_eq!(r.text(), "cgi says hi, query=a=1&b=%20\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
}

#[test]
fn cgi_file_does_not_run_scripts_outside_cgi_bin() {
    let s = Server::shipped();
    let script = s.root.join("run-me.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    chmod(&script, 0o755);
    let r = s.get("/run-me.sh");
    assert_eq!(r.status, 200);
    // Served as a file, never run.
    assert_eq!(r.text(), "#!/bin/sh\necho ran\n");
}

#[test]
fn no_file_answers_404_with_the_path_escaped() {
    let s = Server::shipped();
    let r = s.get("/nope/%3Cscript%3E.html");
    assert_eq!(r.status, 404);
    let t = r.text();
    assert!(t.contains("<h1>404 Not Found</h1>"));
    assert!(t.contains("/nope/&lt;script&gt;.html"), "{t}");
    assert!(!t.contains("<script>"));
}

#[test]
fn existing_file_is_sent_with_type_length_and_validators() {
    let s = Server::shipped();
    let r = s.get("/plain.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "<html><body><p>Test page.</p></body></html>\n");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some("44"));
    assert!(r.header("etag").is_some() && r.header("last-modified").is_some());
    let t = s.get("/notes.txt");
    assert_eq!(t.header("content-type"), Some("text/plain; charset=utf-8"));
}

#[test]
fn directory_index_file_serves_index_html_for_a_folder() {
    let s = Server::shipped();
    let r = s.get("/subdir/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "<p>subdir index</p>\n");
    let root = s.get("/");
    assert_eq!(root.text(), "<html><body>home</body></html>\n");
}

/// `index` names the index pages, tried in order (nginx's `index`, lighttpd's
/// `index-file.names`); a folder holding none of them is listed, even one with an
/// `index.html` that is not named; a name that is not one file stops start-up.
#[test]
fn index_names_are_tried_in_order_and_a_folder_with_none_of_them_is_listed() {
    let names = "index = [\"index.htm\", \"default.html\"]\n";
    let s = Server::shipped_with(&format!(
        "[plugins.directory_index_file]\n{names}[plugins.directory_no_index_file]\n{names}"
    ));
    std::fs::write(s.root.join("subdir/index.htm"), "<p>htm</p>\n").unwrap();
    std::fs::create_dir(s.root.join("other")).unwrap();
    std::fs::write(s.root.join("other/default.html"), "<p>default</p>\n").unwrap();
    std::fs::write(s.root.join("other/index.html"), "<p>html</p>\n").unwrap();
    assert_eq!(s.get("/subdir/").text(), "<p>htm</p>\n");
    assert_eq!(s.get("/other/").text(), "<p>default</p>\n");
    let listed = s.get("/");
    assert_eq!(listed.status, 200, "the root's index.html is not named");
    assert!(
        listed.text().contains("href=\"plain.html\""),
        "{}",
        listed.text()
    );
    let bad = start_refused(
        "index-bad",
        CHAIN,
        "[plugins.directory_index_file]\nindex = [\"index.html\", \"a/b.html\"]\n",
    );
    assert_ne!(bad.code, Some(0));
    assert!(
        bad.stderr.contains("directory_index_file") && bad.stderr.contains("`index` entry 2"),
        "{}",
        bad.stderr
    );
}

/// 2001-09-09 01:46:40 UTC: a fixed modification time, so the page's stamp is known.
const FIXED: u64 = 1_000_000_000;

fn set_mtime(path: &std::path::Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

/// Every relative `href="..."` of a page (its entries and the parent), in order.
fn hrefs(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .filter(|h| !h.starts_with('/') && !h.starts_with('?'))
        .collect()
}

#[test]
fn directory_no_index_file_lists_escaped_entries_folders_first_in_natural_order() {
    let s = Server::shipped();
    std::fs::write(s.root.join("listing/file9.txt"), "9").unwrap();
    std::fs::write(s.root.join("listing/File10.txt"), "10").unwrap();
    set_mtime(&s.root.join("listing/b.txt"), FIXED);
    set_mtime(&s.root.join("listing/inner"), FIXED + 86_400);
    let r = s.get("/listing/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let t = r.text();
    assert!(t.contains("<title>Index of /listing/</title>"), "{t}");
    assert!(t.contains("name=\"viewport\""), "{t}");
    assert!(t.contains("<a href=\"/\">Home</a> /"), "{t}");
    assert!(
        t.contains("<a href=\"../\">../ <span class=\"muted\">(parent folder)</span></a>"),
        "{t}"
    );
    assert!(t.contains("<a href=\"inner/\">inner/</a>"), "{t}");
    assert!(
        t.contains("<a href=\"a%20file%20%26%20%3Cmore%3E.txt\">a file &amp; &lt;more&gt;.txt</a>"),
        "{t}"
    );
    assert!(
        t.contains("href=\"%C3%BCn%C3%AFc%C3%B6d%C3%A9.txt\""),
        "{t}"
    );
    assert!(!t.contains(".hidden"));
    // Folders first, then names as people read them: 9 before 10, case does not split them.
    let pos = |n: &str| t.find(&format!("href=\"{n}")).unwrap();
    let order = ["inner/", "a%20file", "b.txt", "file9", "File10", "%C3%BC"];
    for w in order.windows(2) {
        assert!(pos(w[0]) < pos(w[1]), "{} before {}: {t}", w[0], w[1]);
    }
    // Sizes for people with the bytes on hover; dates in UTC, said so.
    assert!(t.contains("title=\"4 bytes\">4 B</td>"), "{t}");
    assert!(t.contains("Modified (UTC)"), "{t}");
    assert!(
        t.contains("<time datetime=\"2001-09-09T01:46:40Z\">2001-09-09 01:46</time>"),
        "{t}"
    );
    assert!(
        t.contains("<time datetime=\"2001-09-10T01:46:40Z\">2001-09-10 01:46</time>"),
        "{t}"
    );
}

#[test]
fn a_listing_sorts_by_the_column_the_query_string_names() {
    let s = Server::shipped();
    std::fs::write(s.root.join("listing/big.txt"), [b'x'; 3000]).unwrap();
    set_mtime(&s.root.join("listing/b.txt"), FIXED);
    set_mtime(&s.root.join("listing/big.txt"), FIXED + 60);
    let t = s.get("/listing/?sort=size&order=desc").text();
    let pos = |n: &str| t.find(&format!("href=\"{n}")).unwrap();
    // Folders still first; then 3000, 4 and 2 bytes (equal sizes by name).
    let order = ["inner/", "big.txt", "b.txt", "a%20file", "%C3%BC"];
    for w in order.windows(2) {
        assert!(pos(w[0]) < pos(w[1]), "{} before {}: {t}", w[0], w[1]);
    }
    // The Size heading now reverses it; the others start their own order.
    assert!(
        t.contains(
            "<a href=\"?sort=size&amp;order=asc\">Size</a> <span aria-hidden=\"true\">▼</span>"
        ),
        "{t}"
    );
    assert!(
        t.contains("<a href=\"?sort=name&amp;order=asc\">Name</a>"),
        "{t}"
    );
    let t = s.get("/listing/?sort=date&order=asc").text();
    assert!(t.find("href=\"b.txt").unwrap() < t.find("href=\"big.txt").unwrap());
}

#[test]
fn a_listing_comes_as_json_for_format_json_or_accept() {
    let s = Server::shipped();
    set_mtime(&s.root.join("listing/b.txt"), FIXED);
    let r = s.get("/listing/?format=json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("vary"), Some("Accept"));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(list[0]["name"], "inner");
    assert_eq!(list[0]["type"], "directory");
    let b = list.iter().find(|e| e["name"] == "b.txt").unwrap();
    assert_eq!(
        b,
        &serde_json::json!({"name": "b.txt", "type": "file",
            "mtime": "Sun, 09 Sep 2001 01:46:40 GMT", "size": 4, "url": "b.txt"})
    );
    assert_eq!(list[0]["url"], "inner/");
    assert!(!r.text().contains(".hidden"));
    let by_accept = s.raw(
        "GET /listing/ HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(by_accept.header("content-type"), Some("application/json"));
    assert_eq!(by_accept.body, r.body);
    let html = s.get("/listing/");
    assert_eq!(html.header("vary"), Some("Accept"));
}

#[test]
fn a_json_listing_links_a_name_that_is_not_utf8_to_its_file() {
    use std::os::unix::ffi::OsStrExt;
    let s = Server::shipped();
    std::fs::create_dir(s.root.join("raw")).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname.txt");
    std::fs::write(s.root.join("raw").join(name), "the file\n").unwrap();
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&s.get("/raw/?format=json").body).unwrap();
    // `name` can only show the byte as U+FFFD; `url` is the link the HTML page has.
    assert_eq!(list[0]["name"], "bad\u{fffd}name.txt");
    assert_eq!(list[0]["url"], "bad%FFname.txt");
    let url = list[0]["url"].as_str().unwrap();
    assert_eq!(s.get(&format!("/raw/{url}")).text(), "the file\n");
}

#[test]
fn the_listing_cache_keeps_each_form_and_order_apart() {
    let s = Server::start(CHAIN, "workers = 1  # one process: the cache is per worker\n[plugins.directory_no_index_file]\ncache = 60.0\n");
    let html = s.get("/listing/");
    assert!(html.text().starts_with("<!DOCTYPE html>"));
    let json = s.raw(
        "GET /listing/ HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
    );
    assert!(
        json.text().starts_with("[\n{ \"name\":\"inner\""),
        "{}",
        json.text()
    );
    let desc = s.get("/listing/?sort=name&order=desc").text();
    assert!(desc.find("href=\"b.txt").unwrap() < desc.find("href=\"a%20file").unwrap());
    // And each is reused: a changed size does not show within the 60 s.
    grow(&s);
    assert_eq!(s.get("/listing/").body, html.body);
}

#[test]
fn a_listing_leaves_out_links_that_lead_outside_the_root_or_nowhere() {
    let s = Server::shipped();
    let outside = s.dir.path().join("outside.txt");
    std::fs::write(&outside, "OUTSIDE").unwrap();
    let dir = s.root.join("listing");
    std::os::unix::fs::symlink(&outside, dir.join("out.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    std::os::unix::fs::symlink("nowhere.txt", dir.join("dangling.txt")).unwrap();
    std::os::unix::fs::symlink("../notes.txt", dir.join("rel-in.txt")).unwrap();
    std::os::unix::fs::symlink("../subdir", dir.join("rel-dir")).unwrap();
    let real = s.root.canonicalize().unwrap();
    std::os::unix::fs::symlink(real.join("notes.txt"), dir.join("abs-in.txt")).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(dir.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    let t = s.get("/listing/").text();
    for gone in ["out.txt", "etc", "dangling.txt", "pipe"] {
        assert!(!t.contains(gone), "{gone} is listed: {t}");
    }
    assert!(t.contains("href=\"rel-in.txt\""), "{t}");
    assert!(t.contains("href=\"rel-dir/\""), "{t}");
    assert!(t.contains("href=\"abs-in.txt\""), "{t}");
    // Every link the page shows answers.
    for href in hrefs(&t) {
        let r = s.get(&format!("/listing/{href}"));
        assert_eq!(r.status, 200, "{href} is listed but answers {}", r.status);
    }
}

#[test]
fn a_listed_name_that_is_not_utf8_links_to_its_real_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let s = Server::shipped();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9 \xff.txt");
    std::fs::write(s.root.join("listing").join(name), "latin-1\n").unwrap();
    let t = s.get("/listing/").text();
    let href = hrefs(&t)
        .into_iter()
        .find(|h| h.starts_with("caf"))
        .unwrap_or_else(|| panic!("no link for the file: {t}"));
    assert_eq!(href, "caf%E9%20%FF.txt");
    let r = s.get(&format!("/listing/{href}"));
    assert_eq!((r.status, r.text().as_str()), (200, "latin-1\n"));
}

#[test]
fn a_pipe_or_a_socket_in_the_root_is_403_not_500() {
    // Neither missing, a file nor a folder: existing_file refuses it (lighttpd's 403),
    // where the chapter left it to always_fail's 500.
    let s = Server::shipped();
    let st = std::process::Command::new("mkfifo")
        .arg(s.root.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    let _socket = std::os::unix::net::UnixListener::bind(s.root.join("sock")).unwrap();
    for path in ["/pipe", "/sock"] {
        let r = s.get(path);
        assert_eq!(r.status, 403, "{path}");
        assert!(r.text().contains("not a regular file"), "{path}");
    }
}

#[test]
fn always_fail_answers_what_no_other_case_takes() {
    let s = Server::start(r#"["hello", "always_fail"]"#, "");
    let r = s.get("/notes.txt");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("unknown object"));
    assert_eq!(s.get("/hello").status, 200);
}

#[test]
fn a_cached_listing_shows_added_and_removed_entries_at_once() {
    let s = Server::start(CHAIN, "workers = 1  # one process: the cache is per worker\n[plugins.directory_no_index_file]\ncache = 60.0\n");
    assert!(!s.get("/listing/").text().contains("new.txt"));
    std::fs::write(s.root.join("listing/new.txt"), "n").unwrap();
    assert!(s.get("/listing/").text().contains("new.txt"));
    std::fs::remove_file(s.root.join("listing/b.txt")).unwrap();
    assert!(!s.get("/listing/").text().contains("b.txt"));
}

/// Rewrite a file in place with 2,000 bytes: its size changes, its folder does not.
fn grow(s: &Server) {
    std::fs::write(s.root.join("listing/b.txt"), [b'x'; 2000]).unwrap();
}

#[test]
fn a_listing_is_reused_while_its_folder_is_unchanged() {
    let s = Server::start(CHAIN, "workers = 1  # one process: the cache is per worker\n[plugins.directory_no_index_file]\ncache = 60.0\n");
    assert!(s.get("/listing/").text().contains(">4 B</td>"));
    grow(&s);
    // Within the 60 s the page rendered before is sent again, with the old size.
    let t = s.get("/listing/").text();
    assert!(t.contains(">4 B</td>") && !t.contains("2.0 KiB"), "{t}");
}

#[test]
fn with_the_listing_cache_off_a_changed_size_shows_at_once() {
    let s = Server::start(CHAIN, "[plugins.directory_no_index_file]\ncache = 0\n");
    assert!(s.get("/listing/").text().contains(">4 B</td>"));
    grow(&s);
    let t = s.get("/listing/").text();
    assert!(t.contains("2.0 KiB") && !t.contains(">4 B</td>"), "{t}");
}
