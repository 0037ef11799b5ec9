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

/// A fallback is a new request to every case, the ones before try_files too: a rule that
/// keeps a folder from everyone still holds when a deep link falls back into it, as nginx
/// matches its locations again after try_files.
#[test]
fn a_fallback_into_a_denied_folder_is_denied_as_the_folder_itself_is() {
    let chain = CHAIN_TRY.replacen("[\"try_files\"", "[\"access\", \"try_files\"", 1);
    let rules = format!(
        "{RULES}\n[[plugins.try_files.rules]]\nprefix = \"/open/\"\nfiles = [\"$path\", \"/private/secret.txt\"]\n\
         [[plugins.access.rules]]\nprefix = \"/private/\"\ndeny = [\"all\"]\n"
    )
    .replacen(
        "[[plugins.try_files.rules]]\nfiles = [\"$path\", \"$path.html\", \"$path/index.html\"]\n",
        "",
        1,
    );
    let s = Server::start(&chain, &rules);
    std::fs::create_dir_all(s.root.join("private")).unwrap();
    std::fs::write(s.root.join("private/secret.txt"), "the hidden words\n").unwrap();
    assert_eq!(s.get("/private/secret.txt").status, 403);
    let r = s.get("/open/anything");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!r.text().contains("hidden words"));
}

/// Rules that send each other's paths back and forth end in a 500 after ten rewrites, as
/// nginx ends an internal redirection cycle, rather than going round for ever.
#[test]
fn rewrites_that_go_round_end_in_a_500() {
    let rules = "[[plugins.try_files.rules]]\nprefix = \"/a/\"\nfiles = [\"/b/x.html\"]\n\
                 [[plugins.try_files.rules]]\nprefix = \"/b/\"\nfiles = [\"/a/y.html\"]\n";
    let s = Server::start(CHAIN_TRY, rules);
    for rel in ["a/y.html", "b/x.html"] {
        std::fs::create_dir_all(s.root.join(rel).parent().unwrap()).unwrap();
        std::fs::write(s.root.join(rel), "page\n").unwrap();
    }
    assert_eq!(s.get("/a/y.html").status, 500);
    assert!(
        s.log_contains("case=try_files: more than 10 rewrites"),
        "{}",
        s.log()
    );
    assert_eq!(s.get("/notes.txt").status, 200, "the server goes on");
}

/// A `$path/` candidate that finds the folder the path names leaves it to the folder cases:
/// a 301 to the path with its slash (as nginx answers), not the folder's page at an address
/// against which its relative links resolve one level too high.
#[test]
fn a_folder_candidate_redirects_to_the_folder_with_its_slash() {
    let rules = "[[plugins.try_files.rules]]\nfiles = [\"$path\", \"$path/\", \"=404\"]\n";
    let s = Server::start(CHAIN_TRY, rules);
    let r = s.get("/subdir");
    assert_eq!(r.status, 301, "{}", r.text());
    assert!(r.header("location").unwrap().ends_with("/subdir/"));
    assert_eq!(s.get("/subdir/").text(), "<p>subdir index</p>\n");
    assert_eq!(s.get("/nowhere").status, 404);
}
