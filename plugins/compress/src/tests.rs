//! The case in-process through its C ABI: what it codes and what it leaves alone, Vary,
//! sidecars, and the settings it refuses.

use super::Compress;
use plugin_api::testing::{
    FilterRecord, FilterVerdict, TempRoot, TestCase, TestRequest, TestResponse,
};
use std::io::Read;
use std::time::{Duration, SystemTime};

fn case(json: &str) -> TestCase<Compress> {
    TestCase::<Compress>::create(json).unwrap()
}

fn text(n: usize) -> String {
    "All work and no play makes a dull page. ".repeat(n / 40 + 1)[..n].to_string()
}

fn answer(ctype: &str, body: &str) -> TestResponse {
    TestResponse::new(200)
        .header("Content-Type", ctype)
        .body(body.as_bytes().to_vec())
}

fn get(ae: &str) -> TestRequest {
    TestRequest::get("/page.html").header("Accept-Encoding", ae)
}

fn gunzip(data: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(data)
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn untouched(seen: &FilterRecord, body: &str) {
    assert_eq!(seen.verdict, FilterVerdict::Pass);
    assert_eq!(seen.header("content-encoding"), None);
    assert_eq!(seen.body.as_deref(), Some(body.as_bytes()));
}

#[test]
fn text_is_coded_with_the_clients_best_coding_and_says_so() {
    let c = case("{}");
    let body = text(5000);
    let seen = c.filter(&get("gzip"), &answer("text/html; charset=utf-8", &body));
    assert_eq!(seen.verdict, FilterVerdict::Transform);
    assert_eq!(seen.header("content-encoding"), Some("gzip"));
    assert_eq!(seen.header("vary"), Some("Accept-Encoding"));
    let coded = seen.body.clone().unwrap();
    assert!(coded.len() < body.len() / 4);
    assert_eq!(gunzip(&coded), body);
    let br = c.filter(
        &get("gzip, deflate, br, zstd"),
        &answer("application/json", &body),
    );
    assert_eq!(br.header("content-encoding"), Some("br"));
    let zstd = c.filter(&get("zstd, gzip;q=0.5"), &answer("image/svg+xml", &body));
    assert_eq!(zstd.header("content-encoding"), Some("zstd"));
}

#[test]
fn accept_encoding_split_over_lines_is_read_as_one_list() {
    let c = case("{}");
    let body = text(1000);
    let req = get("*").header("Accept-Encoding", "br;q=0");
    let seen = c.filter(&req, &answer("text/css", &body));
    assert_eq!(seen.header("content-encoding"), Some("zstd"));
    let req = get("deflate").header("Accept-Encoding", "gzip");
    let seen = c.filter(&req, &answer("text/css", &body));
    assert_eq!(seen.header("content-encoding"), Some("gzip"));
}

#[test]
fn the_servers_order_breaks_ties() {
    let c = case(r#"{"codings": ["gzip", "br"]}"#);
    let seen = c.filter(&get("br, gzip, zstd"), &answer("text/css", &text(1000)));
    assert_eq!(seen.header("content-encoding"), Some("gzip"));
    let only_zstd = c.filter(&get("zstd"), &answer("text/css", &text(1000)));
    untouched(&only_zstd, &text(1000));
}

#[test]
fn refusals_ranges_and_http10_pass_but_still_vary_and_small_bodies_do_not() {
    let c = case("{}");
    let body = text(1000);
    // A whole file's answer: the host could still cut a Range from it.
    let ok = answer("text/plain", &body).header("Accept-Ranges", "bytes");
    let no_field = TestRequest::get("/a.txt");
    let ranged = get("gzip").header("Range", "bytes=0-9");
    for req in [
        no_field,
        get("gzip;q=0"),
        get("*;q=0"),
        get("gzip;q=0.5, identity"),
        ranged,
        get("gzip").version("HTTP/1.0"),
    ] {
        let seen = c.filter(&req, &ok);
        untouched(&seen, &body);
        assert_eq!(seen.header("vary"), Some("Accept-Encoding"), "{req:?}");
    }
    // No Accept-Ranges (a page made in memory, a script's output): the host answers the
    // Range with the whole, so it is coded; so is a Range in another unit.
    let made = c.filter(
        &get("gzip").header("Range", "bytes=0-9"),
        &answer("text/plain", &body),
    );
    assert_eq!(made.verdict, FilterVerdict::Transform);
    let other = c.filter(&get("gzip").header("Range", "lines=0-9"), &ok);
    assert_eq!(other.verdict, FilterVerdict::Transform);
    // Too small to code for anyone: nothing varies (nginx's gzip_min_length).
    let small = c.filter(&get("gzip"), &answer("text/plain", "tiny"));
    untouched(&small, "tiny");
    assert_eq!(small.header("vary"), None);
    let not_modified = c.filter(
        &get("gzip"),
        &TestResponse::new(304).header("Content-Type", "text/css"),
    );
    assert_eq!(not_modified.verdict, FilterVerdict::Pass);
    assert_eq!(not_modified.header("vary"), Some("Accept-Encoding"));
}

#[test]
fn compressed_and_untyped_answers_are_left_alone_without_vary() {
    let c = case("{}");
    let body = text(5000);
    for ctype in ["image/png", "application/zip", "font/woff2", "video/mp4"] {
        let seen = c.filter(&get("gzip"), &answer(ctype, &body));
        untouched(&seen, &body);
        assert_eq!(seen.header("vary"), None, "{ctype}");
    }
    let untyped = TestResponse::new(200).body(body.clone());
    untouched(&c.filter(&get("gzip"), &untyped), &body);
}

/// A root with `site.css` and the answer the host would give for it.
fn css_file(root: &TempRoot, body: &str, ae: &str) -> (TestRequest, TestResponse) {
    let path = root.file("site.css", body);
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let req = TestRequest::get("/site.css")
        .root(root.path())
        .header("Accept-Encoding", ae);
    let resp = answer("text/css", body)
        .header("Last-Modified", &httpdate::fmt_http_date(mtime))
        .header("ETag", "\"file-etag\"");
    (req, resp)
}

fn set_mtime(path: &std::path::Path, t: SystemTime) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

#[test]
fn a_fresh_sidecar_replaces_the_file_with_its_own_validators() {
    let root = TempRoot::new();
    let (req, resp) = css_file(&root, &text(3000), "gzip, br");
    let side = root.file("site.css.br", "pretend brotli");
    let seen = case("{}").filter(&req, &resp);
    assert_eq!(seen.verdict, FilterVerdict::Pass);
    assert_eq!(seen.replaced_file.as_deref(), Some(side.as_path()));
    assert_eq!(seen.body.as_deref(), Some(&b"pretend brotli"[..]));
    assert_eq!(seen.header("content-encoding"), Some("br"));
    assert_eq!(seen.header("vary"), Some("Accept-Encoding"));
    let etag = seen.header("etag").unwrap();
    assert!(etag.starts_with('"') && etag.ends_with("-br\""), "{etag}");
    // A gzip-only client gets the file coded on the fly: no .gz sidecar.
    let gzip_client = TestRequest::get("/site.css")
        .root(root.path())
        .header("Accept-Encoding", "gzip");
    let gz_only = case("{}").filter(&gzip_client, &resp);
    assert_eq!(gz_only.replaced_file, None);
    assert_eq!(gz_only.verdict, FilterVerdict::Transform);
    assert_eq!(gz_only.header("content-encoding"), Some("gzip"));
}

#[test]
fn a_stale_sidecar_or_an_answer_that_is_not_the_file_is_not_replaced() {
    let root = TempRoot::new();
    let (req, resp) = css_file(&root, &text(3000), "gzip");
    let side = root.file("site.css.gz", "old gzip");
    set_mtime(&side, SystemTime::now() - Duration::from_secs(3600));
    let stale = case("{}").filter(&req, &resp);
    assert_eq!(stale.replaced_file, None);
    assert_eq!(stale.verdict, FilterVerdict::Transform);
    assert_eq!(gunzip(stale.body.as_deref().unwrap()), text(3000));
    root.file("site.css.gz", "new gzip");
    // A script's answer at that path: no Last-Modified of the file.
    let script = answer("text/css", &text(3000));
    assert_eq!(case("{}").filter(&req, &script).replaced_file, None);
    let off = case(r#"{"precompressed": false}"#).filter(&req, &resp);
    assert_eq!(off.replaced_file, None);
    assert_eq!(case("{}").filter(&req, &resp).replaced_file, Some(side));
}

#[test]
fn bad_settings_are_refused_with_what_is_expected() {
    let cases = [
        (
            r#"{"level": {"gzip": 10}}"#,
            "level.gzip = 10: expected 1-9",
        ),
        (r#"{"level": {"br": 12}}"#, "level.br = 12: expected 0-11"),
        (r#"{"level": {"zstd": 0}}"#, "level.zstd = 0: expected 1-19"),
        (
            r#"{"codings": ["deflate"]}"#,
            "codings: \"deflate\" is not a coding",
        ),
        (
            r#"{"codings": ["br", "br"]}"#,
            "codings: \"br\" is listed twice",
        ),
        (r#"{"codings": []}"#, "codings is empty"),
        (
            r#"{"types": ["text"]}"#,
            "types: \"text\" is not a media type",
        ),
        (r#"{"types": ["Text/HTML"]}"#, "expected lower-case"),
        (r#"{"min_size": -1}"#, "invalid value"),
        (r#"{"gzip": true}"#, "unknown field `gzip`"),
    ];
    for (json, says) in cases {
        let e = match TestCase::<Compress>::create(json) {
            Ok(_) => panic!("accepted: {json}"),
            Err(e) => e,
        };
        assert!(e.contains(says), "{json}: {e}");
    }
}
