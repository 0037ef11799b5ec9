//! try_files: clean URLs and single-page-app fallback over the wire; real files are served
//! as themselves, a missing asset can answer 404, other methods are not rewritten, and a
//! candidate that could leave the root stops start-up.

use crate::support::*;

const CHAIN_TRY: &str = r#"["try_files", "cgi_file", "no_file", "existing_file", "directory_index_file", "directory_no_index_file", "always_fail"]"#;

/// Missing assets under /app/assets/ are 404; other paths under /app/ are the app's; the
/// rest of the site has clean URLs.
const RULES: &str = r#"
[[plugins.try_files.rules]]
prefix = "/app/assets/"
files = ["$path", "=404"]

[[plugins.try_files.rules]]
prefix = "/app/"
files = ["$path", "/app/index.html"]

[[plugins.try_files.rules]]
files = ["$path", "$path.html", "$path/index.html"]
"#;

fn start() -> Server {
    let s = Server::start(CHAIN_TRY, RULES);
    let put = |rel: &str, data: &str| {
        let p = s.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    put("about.html", "<p>about page</p>\n");
    put("app/index.html", "<p>the app</p>\n");
    put("app/assets/app.js", "console.log(1);\n");
    s
}

#[test]
fn a_clean_url_answers_with_its_html_file() {
    let s = start();
    let r = s.get("/about");
    assert_eq!((r.status, r.text().as_str()), (200, "<p>about page</p>\n"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let head = s.raw("HEAD /about HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("18"));
    assert!(head.body.is_empty());
}

#[test]
fn a_deep_link_under_the_app_answers_200_with_the_apps_index() {
    let s = start();
    let r = s.get("/app/deep/link?tab=2");
    assert_eq!((r.status, r.text().as_str()), (200, "<p>the app</p>\n"));
}

#[test]
fn a_real_asset_is_served_as_itself() {
    let s = start();
    let r = s.get("/app/assets/app.js");
    assert_eq!((r.status, r.text().as_str()), (200, "console.log(1);\n"));
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(s.get("/plain.html").status, 200);
}

#[test]
fn a_missing_asset_under_the_app_answers_404_not_the_app() {
    let s = start();
    let r = s.get("/app/assets/gone.js");
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("the app"));
}

#[test]
fn a_post_is_not_rewritten() {
    let s = start();
    // Rewritten, it would reach existing_file as /about.html and be refused with 405.
    let r = s
        .raw("POST /about HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nx=");
    assert_eq!(r.status, 404);
    let r = s.raw(
        "POST /app/deep HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nx=",
    );
    assert_eq!(r.status, 404);
}

#[test]
fn a_candidate_that_could_leave_the_root_stops_start_up() {
    let bad = "[[plugins.try_files.rules]]\nfiles = [\"$path\", \"/../outside.html\"]\n";
    let e = start_refused("try-escape", CHAIN_TRY, bad);
    assert_eq!(e.code, Some(1));
    assert!(
        e.stderr.contains("refused its settings [plugins.try_files]")
            && e.stderr.contains("rules[0]: files[1] = \"/../outside.html\": '.' and '..' segments could lead outside the root"),
        "{}",
        e.stderr
    );
}
