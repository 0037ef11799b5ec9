//! How fast each coding runs at its level, through the plugin's own encoder: MB/s on a few
//! MiB of this repository's text, and the CPU one answer costs at a few sizes.
//!
//! `cargo run --release -p case-compress --example throughput [MiB]`
//!
//! Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other work on the machine
//! slows the wall clock but not the figures.

use compress::coding::{Coding, Encoder, Levels};
use plugin_api::Transform;
use rustix::time::{clock_gettime, ClockId};
use std::path::Path;
use std::time::Duration;

/// The levels the plugin ships with, and two alternatives for comparison.
const RUNS: [(Coding, u32); 5] = [
    (Coding::Gzip, 6),
    (Coding::Gzip, 1),
    (Coding::Br, 4),
    (Coding::Br, 5),
    (Coding::Zstd, 3),
];

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4);
    let text = corpus(mib << 20);
    println!(
        "corpus: {:.1} MiB of .rs/.md/.toml files (this workspace, then its dependencies)",
        mb(text.len())
    );
    println!("\n| coding | level | ratio | MB/s (input per CPU second) |");
    println!("|---|---|---|---|");
    for (coding, level) in RUNS {
        let reps = if level >= 10 { 1 } else { 3 };
        let input = if level >= 10 {
            &text[..text.len().min(1 << 20)]
        } else {
            &text[..]
        };
        let (out, cpu) = timed(reps, || encode(coding, level, input, 64 << 10));
        let secs = cpu.as_secs_f64() / reps as f64;
        println!(
            "| {} | {level} | {:.3} | {:.1} |",
            coding.token(),
            out as f64 / input.len() as f64,
            mb(input.len()) / secs
        );
    }
    println!("\n| coding | level | body | µs CPU per answer (encoder set-up included) |");
    println!("|---|---|---|---|");
    for (coding, level) in RUNS.into_iter().filter(|(_, l)| *l < 10) {
        for size in [1 << 10, 16 << 10, 128 << 10] {
            let reps = (64 << 20) / size / 4;
            let (_, cpu) = timed(reps, || encode(coding, level, &text[..size], size));
            let us = cpu.as_secs_f64() * 1e6 / reps as f64;
            println!(
                "| {} | {level} | {} KiB | {us:.1} |",
                coding.token(),
                size >> 10
            );
        }
    }
}

fn mb(n: usize) -> f64 {
    n as f64 / (1 << 20) as f64
}

/// Encode `input` as the host feeds a file (pieces of `piece` bytes, known length);
/// returns the coded size.
fn encode(coding: Coding, level: u32, input: &[u8], piece: usize) -> usize {
    let levels = Levels {
        gzip: if coding == Coding::Gzip { level } else { 6 },
        br: if coding == Coding::Br { level } else { 4 },
        zstd: if coding == Coding::Zstd {
            level as i32
        } else {
            3
        },
    };
    let mut e = Encoder::new(coding, levels, Some(input.len() as u64));
    let (mut out, mut total) = (Vec::new(), 0);
    for p in input.chunks(piece) {
        e.transform(p, &mut out).expect("encode");
        total += out.len();
        out.clear();
    }
    e.finish(&mut out).expect("finish");
    total + out.len()
}

/// Run `f` `reps` times; its last result and the thread's CPU time for all of them.
fn timed(reps: usize, mut f: impl FnMut() -> usize) -> (usize, Duration) {
    let cpu = || {
        let t = clock_gettime(ClockId::ThreadCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    let start = cpu();
    let mut last = 0;
    for _ in 0..reps {
        last = std::hint::black_box(f());
    }
    (last, cpu() - start)
}

/// `want` bytes of real source text, never repeated (a repeat would flatter the codings
/// with large windows): this workspace's files, then the dependencies' sources cargo
/// unpacked (`$CARGO_HOME/registry/src`).
fn corpus(want: usize) -> Vec<u8> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_default();
    let mut text = Vec::new();
    for root in [workspace, cargo_home.join("registry/src")] {
        let mut files = Vec::new();
        collect(&root, &mut files);
        files.sort();
        for f in files {
            if text.len() >= want {
                break;
            }
            text.extend(std::fs::read(f).unwrap_or_default());
        }
    }
    assert!(
        text.len() >= want,
        "only {} bytes of text found",
        text.len()
    );
    text.truncate(want);
    text
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') || name == "target" {
            continue;
        }
        if p.is_dir() {
            collect(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| x == "rs" || x == "md" || x == "toml")
        {
            out.push(p);
        }
    }
}
