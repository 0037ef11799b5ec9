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

#[test]
fn directory_no_index_file_lists_sorted_escaped_entries_without_dotfiles() {
    let s = Server::shipped();
    let r = s.get("/listing/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let t = r.text();
    assert!(t.contains("<title>Index of /listing/</title>"), "{t}");
    assert!(t.contains("<a href=\"../\">../</a>"));
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
    // Folders first, then names in order.
    let pos = |n: &str| t.find(n).unwrap();
    assert!(pos("inner/") < pos("a%20file") && pos("a%20file") < pos("b.txt"));
    assert!(pos("b.txt") < pos("%C3%BC"));
    // Sizes and dates are shown.
    assert!(t.contains("<td>4 B</td>"), "{t}");
    let year = format!(
        "<td>{}-",
        1970 + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_557_600
    );
    assert!(t.contains(&year), "{t}");
}

#[test]
fn always_fail_answers_what_no_other_case_takes() {
    let s = Server::shipped();
    // A fifo is neither missing, a file nor a folder: only always_fail takes it.
    let fifo = s.root.join("pipe");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let r = s.get("/pipe");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("unknown object"));
}

#[test]
fn a_cached_listing_shows_added_and_removed_entries_at_once() {
    let s = Server::start(CHAIN, "[plugins.directory_no_index_file]\ncache = 60.0\n");
    assert!(!s.get("/listing/").text().contains("new.txt"));
    std::fs::write(s.root.join("listing/new.txt"), "n").unwrap();
    assert!(s.get("/listing/").text().contains("new.txt"));
    std::fs::remove_file(s.root.join("listing/b.txt")).unwrap();
    assert!(!s.get("/listing/").text().contains("b.txt"));
    let off = Server::start(CHAIN, "[plugins.directory_no_index_file]\ncache = 0\n");
    assert!(off.get("/listing/").text().contains("b.txt"));
}
