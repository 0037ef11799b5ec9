//! The case in-process through its C ABI: the preset, cache lifetimes, CORS and rules on
//! answers, the preflight's answer, and the settings it refuses.

use super::Headers;
use plugin_api::testing::{FilterVerdict, TestCase, TestRequest, TestResponse};
use plugin_api::Outcome;

fn case(json: &str) -> TestCase<Headers> {
    TestCase::<Headers>::create(json).unwrap()
}

fn refused(json: &str) -> String {
    match TestCase::<Headers>::create(json) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e,
    }
}

#[test]
fn the_security_preset_reaches_every_status_but_keeps_an_answers_own_policy() {
    let c = case(r#"{"security": true}"#);
    for status in [200, 301, 404, 500] {
        let seen = c.filter(&TestRequest::get("/x"), &TestResponse::new(status));
        assert_eq!(seen.verdict, FilterVerdict::Pass);
        assert_eq!(seen.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            seen.header("referrer-policy"),
            Some("strict-origin-when-cross-origin")
        );
        assert_eq!(
            seen.header("content-security-policy"),
            Some("frame-ancestors 'self'")
        );
        assert_eq!(seen.header("x-frame-options"), Some("SAMEORIGIN"));
    }
    let own = TestResponse::new(200).header("X-Frame-Options", "DENY");
    let seen = c.filter(&TestRequest::get("/x"), &own);
    assert_eq!(seen.all("x-frame-options"), vec!["DENY"]);
    // Browsers follow frame-ancestors over X-Frame-Options: ours would undo the DENY.
    assert_eq!(seen.header("content-security-policy"), None);
    let own_csp = TestResponse::new(200).header("Content-Security-Policy", "script-src 'self'");
    let seen = c.filter(&TestRequest::get("/x"), &own_csp);
    assert_eq!(
        seen.all("content-security-policy"),
        vec!["script-src 'self'"]
    );
    assert_eq!(seen.header("x-frame-options"), Some("SAMEORIGIN"));
    let off = case("{}").filter(&TestRequest::get("/x"), &TestResponse::new(200));
    assert_eq!(off.header("x-content-type-options"), None);
}

#[test]
fn cache_lifetimes_go_on_successful_fetches_without_their_own() {
    let c = case(
        r#"{"cache": {"max_age": {".css": 3600, ".html": 0},
            "immutable": ["*.[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f].*"]}}"#,
    );
    let ok = TestResponse::new(200);
    let cc = |req: TestRequest, resp: &TestResponse| {
        c.filter(&req, resp)
            .header("cache-control")
            .map(str::to_string)
    };
    assert_eq!(
        cc(TestRequest::get("/a/site.css"), &ok).as_deref(),
        Some("max-age=3600")
    );
    assert_eq!(
        cc(TestRequest::new("HEAD", "/a/site.css"), &ok).as_deref(),
        Some("max-age=3600")
    );
    assert_eq!(
        cc(TestRequest::get("/app.4f3a2b1c.js"), &ok).as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(cc(TestRequest::get("/"), &ok).as_deref(), Some("no-cache"));
    assert_eq!(
        cc(TestRequest::get("/a.css"), &TestResponse::new(404)),
        None
    );
    assert_eq!(cc(TestRequest::new("POST", "/a.css"), &ok), None);
    let own = TestResponse::new(200).header("Cache-Control", "no-store");
    assert_eq!(
        cc(TestRequest::get("/a.css"), &own).as_deref(),
        Some("no-store")
    );
}

#[test]
fn rules_match_by_prefix_glob_extension_and_status_and_run_in_order() {
    let c = case(
        r#"{"security": true, "rules": [
            {"match": "/embed/", "remove": ["X-Frame-Options", "Content-Security-Policy"]},
            {"glob": "/assets/**/*.js", "set": {"X-Asset": "js"}},
            {"ext": [".txt", ".md"], "status": "2xx", "append": {"Link": "</s.css>; rel=preload"}},
            {"status": ["4xx", "500"], "set": {"Cache-Control": "no-store"}}
        ]}"#,
    );
    let ok = TestResponse::new(200).header("Link", "</a>; rel=x");
    let embed = c.filter(&TestRequest::get("/embed/w.html"), &ok);
    assert_eq!(embed.header("x-frame-options"), None);
    assert_eq!(embed.header("content-security-policy"), None);
    assert_eq!(embed.header("x-content-type-options"), Some("nosniff"));
    let js = c.filter(&TestRequest::get("/assets/v1/app.js"), &ok);
    assert_eq!(js.header("x-asset"), Some("js"));
    assert_eq!(js.header("x-frame-options"), Some("SAMEORIGIN"));
    let txt = c.filter(&TestRequest::get("/notes.TXT"), &ok);
    assert_eq!(
        txt.all("link"),
        vec!["</a>; rel=x", "</s.css>; rel=preload"]
    );
    let missing_txt = c.filter(&TestRequest::get("/gone.txt"), &TestResponse::new(404));
    assert_eq!(missing_txt.all("link"), Vec::<&str>::new());
    assert_eq!(missing_txt.header("cache-control"), Some("no-store"));
    let fine = c.filter(&TestRequest::get("/x.html"), &TestResponse::new(200));
    assert_eq!(fine.header("cache-control"), None);
}

const CORS: &str = r#"{"cors": {"origins": ["https://app.example"], "methods": ["GET", "PUT"],
    "headers": ["Content-Type", "X-Token"], "expose": ["X-Total"], "credentials": true,
    "max_age": 600, "paths": ["/api/"]}}"#;

fn preflight(path: &str, origin: &str) -> TestRequest {
    TestRequest::new("OPTIONS", path)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "PUT")
}

#[test]
fn a_preflight_is_answered_204_with_what_the_origin_may_do() {
    let c = case(CORS);
    let req = preflight("/api/items", "https://app.example");
    assert!(c.test(&req));
    let r = c.act(&req);
    assert_eq!((r.outcome, r.status), (Outcome::Done, 204));
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Content-Type, X-Token")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));
    assert!(r.refused.is_empty(), "{:?}", r.refused);
}

#[test]
fn a_preflight_from_an_unknown_origin_gets_no_permission() {
    let c = case(CORS);
    let r = c.act(&preflight("/api/items", "https://evil.example"));
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-methods"), None);
}

#[test]
fn only_real_preflights_under_the_cors_paths_are_taken() {
    let c = case(CORS);
    assert!(!c.test(&preflight("/other", "https://app.example")));
    let plain_options =
        TestRequest::new("OPTIONS", "/api/x").header("Origin", "https://app.example");
    assert!(!c.test(&plain_options));
    let get = TestRequest::get("/api/x")
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "PUT");
    assert!(!c.test(&get));
    assert!(!case("{}").test(&preflight("/api/x", "https://app.example")));
}

#[test]
fn answers_under_the_cors_paths_carry_the_origin_and_vary_on_it() {
    let c = case(CORS);
    let req = TestRequest::get("/api/x").header("Origin", "https://app.example");
    let seen = c.filter(&req, &TestResponse::new(200));
    assert_eq!(
        seen.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        seen.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        seen.header("access-control-expose-headers"),
        Some("X-Total")
    );
    assert_eq!(seen.header("vary"), Some("Origin"));
    // No Origin: nothing to allow, but a cache must still keep the answers apart.
    let plain = c.filter(&TestRequest::get("/api/x"), &TestResponse::new(200));
    assert_eq!(plain.header("access-control-allow-origin"), None);
    assert_eq!(plain.header("vary"), Some("Origin"));
    let elsewhere = c.filter(&req_at("/site.css"), &TestResponse::new(200));
    assert_eq!(elsewhere.header("access-control-allow-origin"), None);
    assert_eq!(elsewhere.header("vary"), None);
}

fn req_at(path: &str) -> TestRequest {
    TestRequest::get(path).header("Origin", "https://app.example")
}

#[test]
fn any_origin_is_a_star_and_varies_on_nothing() {
    let c = case(r#"{"cors": {"origins": ["*"]}}"#);
    let seen = c.filter(&req_at("/font.woff2"), &TestResponse::new(200));
    assert_eq!(seen.header("access-control-allow-origin"), Some("*"));
    assert_eq!(seen.header("vary"), None);
    let r = c.act(&preflight("/x", "https://any.example"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, HEAD, POST")
    );
}

#[test]
fn bad_settings_are_refused_with_what_is_expected() {
    let cases = [
        (r#"{"securty": true}"#, "unknown field `securty`"),
        (
            r#"{"rules": [{"match": "/a/"}]}"#,
            "rules[1]: the rule changes nothing",
        ),
        (
            r#"{"rules": [{"match": "a", "set": {"X": "1"}}]}"#,
            "rules[1].match: prefix = \"a\" must start with '/'",
        ),
        (
            r#"{"rules": [{"ext": "css", "set": {"X": "1"}}]}"#,
            "rules[1].ext: \"css\" is not an extension",
        ),
        (
            r#"{"rules": [{"status": "304", "set": {"X": "1"}}]}"#,
            "rules[1].status: 304 is made by the server",
        ),
        (
            r#"{"rules": [{"glob": "[x", "set": {"X": "1"}}]}"#,
            "rules[1].glob: \"[x\" is not a glob",
        ),
        (
            r#"{"rules": [{"remove": ["Server"]}]}"#,
            "rules[1].remove: \"Server\" is written by the server itself",
        ),
        (
            r#"{"rules": [{"set": {"X": "a\r\nB: c"}}]}"#,
            "rules[1].set: the value for \"X\" must be one line",
        ),
        (
            r#"{"cache": {"max_age": {"css": 1}}}"#,
            "cache.max_age: \"css\" is not an extension",
        ),
        (
            r#"{"cors": {"origins": ["https://a.example/"]}}"#,
            "cors.origins: \"https://a.example/\" is not an origin",
        ),
        (
            r#"{"cors": {"origins": ["*"], "credentials": true}}"#,
            "browsers refuse a wildcard with credentials",
        ),
        (
            r#"{"cors": {"origins": ["*"], "max_age": 100000}}"#,
            "cors.max_age = 100000",
        ),
    ];
    for (json, says) in cases {
        let e = refused(json);
        assert!(e.contains(says), "{json}: {e}");
    }
}

#[test]
fn hsts_goes_on_answers_over_https_only_and_keeps_an_answers_own() {
    let c = case(r#"{"hsts": "max-age=63072000; includeSubDomains"}"#);
    let https = TestRequest::get("/x").var("HTTPS", "on");
    for status in [200, 404] {
        let seen = c.filter(&https, &TestResponse::new(status));
        assert_eq!(
            seen.header("strict-transport-security"),
            Some("max-age=63072000; includeSubDomains")
        );
        let plain = c.filter(&TestRequest::get("/x"), &TestResponse::new(status));
        assert_eq!(plain.header("strict-transport-security"), None);
    }
    let own = TestResponse::new(200).header("Strict-Transport-Security", "max-age=60");
    assert_eq!(
        c.filter(&https, &own).all("strict-transport-security"),
        vec!["max-age=60"]
    );
}

#[test]
fn a_rule_adds_strict_transport_security_over_https_only() {
    let c = case(
        r#"{"rules": [{"set": {"Strict-Transport-Security": "max-age=60", "X-Rule": "yes"}}]}"#,
    );
    let https = c.filter(
        &TestRequest::get("/x").var("HTTPS", "on"),
        &TestResponse::new(200),
    );
    assert_eq!(
        https.header("strict-transport-security"),
        Some("max-age=60")
    );
    let plain = c.filter(&TestRequest::get("/x"), &TestResponse::new(200));
    assert_eq!(plain.header("strict-transport-security"), None);
    assert_eq!(plain.header("x-rule"), Some("yes"));
}

#[test]
fn an_hsts_policy_without_one_numeric_max_age_is_refused() {
    let bad = [
        "",
        "includeSubDomains",
        "max-age=",
        "max-age=soon",
        r#"max-age=\"\""#,
        r#"max-age=\"1"#,
        "max-age=1; max-age=2",
        "max-age=1; preload; preload",
        r"max-age=1;\tx",
    ];
    for policy in bad {
        let json = format!(r#"{{"hsts": "{policy}"}}"#);
        assert!(refused(&json).contains("hsts"), "{policy:?}");
    }
    case(r#"{"hsts": "max-age=31536000"}"#);
    case(r#"{"hsts": "Max-Age=\"600\"; preload"}"#);
}
