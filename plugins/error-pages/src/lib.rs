//! Filter `error_pages`: an error answer with the host's page (its refusals, and a case's
//! `error`) gets the site's own page for its status or class, keeping the status and the
//! headers that tell the client what to do (Allow, Location, WWW-Authenticate,
//! Retry-After...). A body a case or script wrote itself is kept unless `intercept_errors`.

mod pages;

use pages::Pages;
use plugin_api::{Case, Filtered, Head, Host, Level, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::CStr;

/// The answer is an error with a page of the site's own.
pub struct ErrorPages {
    pages: Pages,
    internal: bool,
    intercept_errors: bool,
    host: Host,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// `"404" = "errors/404.html"`, `"5xx" = "errors/5xx.html"`: relative to the root, or
    /// absolute beneath it.
    pages: BTreeMap<String, String>,
    /// Answer 404 to a direct request for a page (nginx's `internal`); default false.
    #[serde(default)]
    internal: bool,
    /// Replace error bodies that cases and scripts wrote themselves too (nginx's
    /// `fastcgi_intercept_errors`, lighttpd's `server.error-intercept`); default false.
    #[serde(default)]
    intercept_errors: bool,
}

/// Headers that describe the body being replaced; the rest (Allow, Location,
/// WWW-Authenticate, Retry-After, Cache-Control, Set-Cookie...) stays.
const BODY_HEADERS: [&str; 6] = [
    "Content-Encoding",
    "Content-Language",
    "Content-Location",
    "Content-Disposition",
    "ETag",
    "Last-Modified",
];

impl ErrorPages {
    /// Put the page in place of the body, as HTML, without the old body's headers; a page
    /// the host cannot open (deleted since start-up) leaves the host's own page, and the
    /// status, rather than a 500.
    fn replace(&self, head: &mut Head, page: &std::path::Path) -> Filtered {
        if head.replace_body_file(page).is_err() {
            let msg = format!("{} is gone; the built-in page answers", page.display());
            self.host.log(Level::Warn, &msg);
            return Filtered::Pass;
        }
        let typed = head.set("Content-Type", "text/html; charset=utf-8");
        let cleared = BODY_HEADERS.iter().try_for_each(|h| head.remove(h));
        match typed.and(cleared) {
            Ok(()) => Filtered::Pass,
            Err(_) => Filtered::Error,
        }
    }
}

impl Case for ErrorPages {
    const NAME: &'static CStr = c"error_pages";
    // Only for `internal`: a direct request for a page is refused whatever its method.
    const ALLOW: &'static CStr = c"*";
    const FILTERS: bool = true;

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        let root = host.root().ok_or(
            "this host does not tell plugins the document root (ABI 1.1 with wp_host.root is needed) to check the pages",
        )?;
        let pages = Pages::new(root, c.pages)?;
        Ok(ErrorPages {
            pages,
            internal: c.internal,
            intercept_errors: c.intercept_errors,
            host,
        })
    }

    /// With `internal`, a request for a page file itself.
    fn test(&self, req: &Request) -> bool {
        let fs = req.fs_path();
        self.internal && self.pages.all().any(|p| p.named == fs || p.real == fs)
    }

    fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
        resp.error(404, "not found").into()
    }

    fn filter(&self, _req: &Request, head: &mut Head) -> Filtered {
        let Some(page) = self.pages.find(head.status()) else {
            return Filtered::Pass;
        };
        // A script's own 404 (JSON for its API, say) is its answer; a host that does not
        // say where the body came from gets every error replaced, as before it could.
        if !self.intercept_errors && head.host_page() == Some(false) {
            return Filtered::Pass;
        }
        self.replace(head, &page.real)
    }
}

plugin_api::export_case!(ErrorPages);

#[cfg(test)]
mod tests {
    use super::ErrorPages;
    use plugin_api::testing::{FilterVerdict, TempRoot, TestCase, TestRequest, TestResponse};
    use plugin_api::Outcome;

    const PAGES: &str = r#"{"pages": {"404": "errors/404.html", "5xx": "errors/5xx.html"}}"#;

    fn site(settings: &str) -> (TempRoot, TestCase<ErrorPages>) {
        let root = TempRoot::new();
        root.file("errors/404.html", "<h1>our 404</h1>");
        root.file("errors/5xx.html", "<h1>our 5xx</h1>");
        let case = TestCase::create_in(root.path(), settings).unwrap();
        (root, case)
    }

    #[test]
    fn an_error_gets_its_page_and_keeps_its_status_and_guidance_headers() {
        let (_root, case) = site(PAGES);
        let answer = TestResponse::new(503)
            .header("Content-Type", "text/plain")
            .header("Retry-After", "120")
            .header("ETag", "\"x\"")
            .body("built-in");
        let seen = case.filter(&TestRequest::get("/x"), &answer);
        assert_eq!(seen.verdict, FilterVerdict::Pass);
        assert_eq!(seen.status, 503);
        assert_eq!(seen.body.as_deref(), Some(&b"<h1>our 5xx</h1>"[..]));
        assert_eq!(
            seen.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(seen.header("retry-after"), Some("120"));
        assert_eq!(seen.header("etag"), None);
    }

    #[test]
    fn statuses_without_a_page_and_successes_are_left_alone() {
        let (_root, case) = site(PAGES);
        for status in [200, 301, 403] {
            let seen = case.filter(
                &TestRequest::get("/x"),
                &TestResponse::new(status).body("own"),
            );
            assert_eq!(seen.replaced_file, None, "{status}");
            assert_eq!(seen.body.as_deref(), Some(&b"own"[..]), "{status}");
        }
    }

    #[test]
    fn a_body_a_case_wrote_is_kept_unless_intercept_errors() {
        let (_root, case) = site(PAGES);
        let own = TestResponse::new(404)
            .header("Content-Type", "application/json")
            .body("{\"error\": \"no such user\"}");
        let seen = case.filter(&TestRequest::get("/api/u/9"), &own.clone().host_page(false));
        assert_eq!(seen.replaced_file, None);
        assert_eq!(seen.header("content-type"), Some("application/json"));
        // The host's own page is replaced; so is every error with intercept_errors.
        let host = TestResponse::new(404).body("built-in").host_page(true);
        let seen = case.filter(&TestRequest::get("/x"), &host);
        assert!(seen.replaced_file.is_some());
        let all = PAGES.replace("}}", "}, \"intercept_errors\": true}");
        let (_root, intercepting) = site(&all);
        let seen = intercepting.filter(&TestRequest::get("/api/u/9"), &own.host_page(false));
        assert_eq!(seen.body.as_deref(), Some(&b"<h1>our 404</h1>"[..]));
    }

    #[test]
    fn a_page_deleted_while_serving_leaves_the_built_in_one_at_once() {
        let (root, case) = site(PAGES);
        let error = || {
            case.filter(
                &TestRequest::get("/x"),
                &TestResponse::new(404).body("built-in"),
            )
        };
        assert!(error().replaced_file.is_some());
        std::fs::remove_file(root.path().join("errors/404.html")).unwrap();
        let seen = error();
        assert_eq!((seen.verdict, seen.status), (FilterVerdict::Pass, 404));
        assert_eq!(seen.replaced_file, None);
        assert_eq!(seen.body.as_deref(), Some(&b"built-in"[..]));
    }

    #[test]
    fn a_page_deleted_after_start_up_leaves_the_built_in_one() {
        let (root, case) = site(PAGES);
        std::fs::remove_file(root.path().join("errors/404.html")).unwrap();
        let seen = case.filter(
            &TestRequest::get("/x"),
            &TestResponse::new(404).body("built-in"),
        );
        assert_eq!((seen.verdict, seen.status), (FilterVerdict::Pass, 404));
        assert_eq!(seen.body.as_deref(), Some(&b"built-in"[..]));
        assert!(case.log()[0].1.contains("is gone"), "{:?}", case.log());
    }

    #[test]
    fn pages_are_ordinary_files_unless_internal() {
        let (root, open) = site(PAGES);
        let req = TestRequest::get("/errors/404.html").root(root.path());
        assert!(!open.test(&req));
        let internal = PAGES.replace("}}", "}, \"internal\": true}");
        let closed = TestCase::<ErrorPages>::create_in(root.path(), &internal).unwrap();
        assert!(closed.test(&req));
        let r = closed.act(&req);
        assert_eq!(
            (r.outcome, r.error.map(|e| e.0)),
            (Outcome::Done, Some(404))
        );
        assert!(!closed.test(&TestRequest::get("/errors/other.html").root(root.path())));
    }

    #[test]
    fn bad_settings_stop_start_up() {
        let root = TempRoot::new();
        let e = TestCase::<ErrorPages>::create_in(root.path(), PAGES)
            .err()
            .unwrap();
        assert!(e.contains("cannot be used"), "{e}");
        let e = TestCase::<ErrorPages>::create_in(root.path(), r#"{"pages": {}, "internl": true}"#)
            .err()
            .unwrap();
        assert!(e.contains("unknown field `internl`"), "{e}");
    }
}
