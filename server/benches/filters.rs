//! What the filter stage costs: a 200 answer with a few headers passed through chains of
//! N no-op filters (N = 0, 1, 8, 32), each a real plugin loaded through the C ABI. Prints
//! nanoseconds per request and per filter. Run with `cargo bench -p server --bench filters`.

use server::config::CaseEntry;
use server::filter::{apply, Ctx};
use server::plugin::{self, Field, OwnedRequest, Plugin};
use server::reply::{Body, Reply};
use server::resolve::Root;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let dir = build_fixture();
    let root = Root::open(Path::new("/tmp"), Duration::ZERO).expect("open a root");
    let req = request();
    let base = per_request(&[], &req, &root);
    println!("filters  ns/request  ns/filter (over none)");
    println!("{:>7}  {base:>10.1}  {:>9}", 0, "-");
    for n in [1usize, 8, 32] {
        let chain = filters(n, &dir);
        let t = per_request(&chain, &req, &root);
        println!("{n:>7}  {t:>10.1}  {:>9.1}", (t - base) / n as f64);
    }
}

/// Build the fixture plugin in release mode; its folder.
fn build_fixture() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let ok = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "test-plugin-noop-filter",
        ])
        .current_dir(workspace)
        .status()
        .expect("run cargo")
        .success();
    assert!(ok, "building the no-op filter failed");
    workspace.join("target/release")
}

fn filters(n: usize, dir: &Path) -> Vec<(usize, Arc<Plugin>)> {
    let entry = CaseEntry {
        name: "noop_filter".into(),
        line: 0,
        settings: "{}".into(),
    };
    (0..n)
        .map(|i| {
            let p = plugin::load(
                &entry,
                &[dir.to_path_buf()],
                Path::new("bench"),
                Path::new("/"),
            )
            .expect("load the no-op filter");
            (i, Arc::new(p))
        })
        .collect()
}

fn request() -> OwnedRequest {
    let mut req = OwnedRequest::new();
    req.set(Field::Method, b"GET");
    req.set(Field::Target, b"/index.html");
    req.set(Field::Path, b"/index.html");
    req.set(Field::Version, b"HTTP/1.1");
    req.add_header(b"Host", b"bench");
    req.add_header(b"Accept", b"*/*");
    req.seal();
    req
}

fn reply() -> Reply {
    Reply::new(200, Body::Bytes(vec![b'x'; 1024]))
        .header("Content-Type", "text/html; charset=utf-8")
        .header("ETag", "\"5f-400\"")
        .header("Last-Modified", "Thu, 26 Nov 2026 12:00:00 GMT")
}

/// Median over 7 rounds of the mean time of one pass of a fresh reply through `chain`.
fn per_request(chain: &[(usize, Arc<Plugin>)], req: &OwnedRequest, root: &Root) -> f64 {
    let ctx = Ctx {
        req,
        root,
        path: b"/index.html",
        head_only: false,
    };
    let rounds = 200_000 / (chain.len() + 1);
    let mut results: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(apply(chain, std::hint::black_box(reply()), &ctx));
            }
            start.elapsed().as_nanos() as f64 / rounds as f64
        })
        .collect();
    results.sort_by(|a, b| a.total_cmp(b));
    results[3]
}
