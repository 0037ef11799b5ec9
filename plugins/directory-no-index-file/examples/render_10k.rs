//! Benchmark: how long a listing of a folder with 10,000 entries takes (read the folder, sort,
//! render), as a page by name and by size, and as JSON. Not a test: a figure to watch.
//!
//!     cargo run --release -p case-directory-no-index-file --example render_10k
//!
//! On the shared 2-core development machine (2026-11): about 25 ms for each form (2.8 MiB of
//! HTML), most of it the 10,000 stat calls; the server then keeps the result for `cache`
//! seconds while the folder is unchanged.

use directory_no_index_file::listing;
use directory_no_index_file::view::View;
use std::time::{Duration, Instant};

const ENTRIES: usize = 10_000;
const ROUNDS: u32 = 20;

fn main() -> std::io::Result<()> {
    let root = std::env::temp_dir().join(format!("listing-bench-{}", std::process::id()));
    let dir = root.join("big");
    std::fs::create_dir_all(&dir)?;
    for i in 0..ENTRIES {
        let name = if i % 10 == 0 {
            format!("Folder {i}")
        } else {
            format!("file-{i} with a rather long name, to wrap on phones.txt")
        };
        if i % 10 == 0 {
            std::fs::create_dir(dir.join(name))?;
        } else {
            std::fs::write(dir.join(name), vec![b'x'; i % 5000])?;
        }
    }
    for (what, query, accept) in [
        ("HTML by name", &b""[..], None),
        ("HTML by size, descending", b"sort=size&order=desc", None),
        ("JSON", b"", Some(&b"application/json"[..])),
    ] {
        let view = View::from_request(query, accept);
        let mut best = Duration::MAX;
        let mut bytes = 0;
        for _ in 0..ROUNDS {
            let start = Instant::now();
            bytes = listing(&dir, &root, b"/big/", &view)?.len();
            best = best.min(start.elapsed());
        }
        println!(
            "{what:>26}: {:>6.2} ms for {ENTRIES} entries ({} KiB), best of {ROUNDS}",
            best.as_secs_f64() * 1000.0,
            bytes / 1024
        );
    }
    std::fs::remove_dir_all(&root)
}
