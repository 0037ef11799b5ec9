//! The process's counters for the status plugin: requests by status, bytes sent, a latency
//! histogram, connections and blocking cases in flight, uptime. No lock and no locked
//! instruction on the request path: each thread counts its requests in its own block.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// Upper bounds of the latency buckets, in seconds (Prometheus' usual shape).
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every counter of this process.
pub struct Stats {
    started: Instant,
    /// When the running configuration was loaded (start-up or the last reload).
    pub loaded: std::sync::Mutex<SystemTime>,
    /// The request counters of every thread that has answered a request.
    counts: std::sync::Mutex<Vec<&'static Counts>>,
    /// Cases acting on a worker thread right now (scripts and other blocking cases).
    pub blocking: AtomicU64,
    /// Open connections.
    pub connections: AtomicU64,
    /// The running chain's case names and how often each acted.
    chain: std::sync::Mutex<Option<Acted>>,
}

/// One thread's request counters. Only that thread writes them, so an increment is a load
/// and a store (plain moves), not a locked read-modify-write; readers add every thread's.
struct Counts {
    requests: AtomicU64,
    /// Indexed by status - 100 (100..=599).
    by_status: [AtomicU64; 500],
    bytes: AtomicU64,
    /// Counts per bucket of BUCKETS, then the overflow (+Inf).
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_micros: AtomicU64,
}

thread_local! {
    /// This thread's block, made (and kept for the process's life) at its first request:
    /// the threads that answer requests are the event loops, a few that live as long.
    static MINE: std::cell::Cell<Option<&'static Counts>> = const { std::cell::Cell::new(None) };
}

/// Add `n` to a counter only the calling thread writes.
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// The request counters of every thread, added up.
struct Added {
    requests: u64,
    /// Indexed by status - 100.
    by_status: Vec<u64>,
    bytes: u64,
    latency: Vec<u64>,
    latency_micros: u64,
}

/// Case names and their act counters, shared with the chain that counts.
pub type Acted = (Vec<String>, std::sync::Arc<[AtomicU64]>);

/// This process's counters.
pub fn get() -> &'static Stats {
    static STATS: OnceLock<Stats> = OnceLock::new();
    STATS.get_or_init(|| Stats {
        started: Instant::now(),
        loaded: std::sync::Mutex::new(SystemTime::now()),
        counts: std::sync::Mutex::new(Vec::new()),
        blocking: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        chain: std::sync::Mutex::new(None),
    })
}

impl Stats {
    /// One answered request: its status, body bytes and time from its first byte.
    pub fn record(&self, status: u16, bytes: u64, took: Duration) {
        let mine = self.mine();
        bump(&mine.requests, 1);
        if let Some(c) = mine.by_status.get(usize::from(status).wrapping_sub(100)) {
            bump(c, 1);
        }
        bump(&mine.bytes, bytes);
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        bump(&mine.latency[bucket], 1);
        bump(&mine.latency_micros, took.as_micros() as u64);
    }

    /// The calling thread's counters.
    fn mine(&self) -> &'static Counts {
        MINE.with(|m| {
            m.get().unwrap_or_else(|| {
                let c: &'static Counts = Box::leak(Box::new(Counts {
                    requests: AtomicU64::new(0),
                    by_status: [const { AtomicU64::new(0) }; 500],
                    bytes: AtomicU64::new(0),
                    latency: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
                    latency_micros: AtomicU64::new(0),
                }));
                self.counts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(c);
                m.set(Some(c));
                c
            })
        })
    }

    /// Every thread's request counters added up, under one lock.
    fn added(&self) -> Added {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let sum = |counter: &dyn Fn(&Counts) -> &AtomicU64| -> u64 {
            counts.iter().map(|c| counter(c).load(Relaxed)).sum()
        };
        Added {
            requests: sum(&|c| &c.requests),
            by_status: (0..500).map(|i| sum(&|c| &c.by_status[i])).collect(),
            bytes: sum(&|c| &c.bytes),
            latency: (0..=BUCKETS.len())
                .map(|i| sum(&|c| &c.latency[i]))
                .collect(),
            latency_micros: sum(&|c| &c.latency_micros),
        }
    }

    /// The chain now serving, and the counters it keeps of which case acted (a reload
    /// starts them at zero, with the new chain).
    pub fn use_chain(&self, acted: Acted) {
        *self.chain.lock().unwrap_or_else(|e| e.into_inner()) = Some(acted);
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
    }

    /// A consistent-enough copy for a status page (each counter read once).
    pub fn snapshot(&self) -> Snapshot {
        let chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
        let by_case = chain.as_ref().map_or_else(Vec::new, |(names, counts)| {
            names
                .iter()
                .cloned()
                .zip(counts.iter().map(|c| c.load(Relaxed)))
                .collect()
        });
        let added = self.added();
        let by_status = (100u16..600)
            .zip(added.by_status)
            .filter(|(_, n)| *n > 0)
            .collect();
        Snapshot {
            pid: std::process::id(),
            uptime: self.started.elapsed().as_secs_f64(),
            loaded: *self.loaded.lock().unwrap_or_else(|e| e.into_inner()),
            requests: added.requests,
            by_status,
            bytes: added.bytes,
            latency: added.latency,
            latency_sum: added.latency_micros as f64 / 1e6,
            open: self.connections.load(Relaxed),
            blocking: self.blocking.load(Relaxed),
            by_case,
        }
    }
}

/// The snapshot as the JSON text the status plugin receives (`wp_host.stats`).
pub fn json() -> String {
    let s = get().snapshot();
    let loaded = s
        .loaded
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let by_status: serde_json::Map<String, serde_json::Value> = s
        .by_status
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    let buckets: Vec<serde_json::Value> = BUCKETS
        .iter()
        .map(|b| serde_json::Value::from(*b))
        .chain([serde_json::Value::from("+Inf")])
        .zip(&s.latency)
        .map(|(le, n)| serde_json::json!({ "le": le, "count": n }))
        .collect();
    let chain: Vec<serde_json::Value> = s
        .by_case
        .iter()
        .map(|(name, n)| serde_json::json!({ "case": name, "acted": n }))
        .collect();
    serde_json::json!({
        "server": crate::http::SERVER,
        "pid": s.pid,
        "uptime_seconds": s.uptime,
        "config_loaded_unix": loaded.as_secs_f64(),
        "connections_open": s.open,
        "blocking_running": s.blocking,
        "requests_total": s.requests,
        "requests_by_status": by_status,
        "bytes_sent": s.bytes,
        "latency_seconds": { "buckets": buckets, "sum": s.latency_sum, "count": s.requests },
        "chain": chain,
    })
    .to_string()
}

/// The counters at one moment.
pub struct Snapshot {
    pub pid: u32,
    pub uptime: f64,
    pub loaded: SystemTime,
    pub requests: u64,
    pub by_status: Vec<(u16, u64)>,
    pub bytes: u64,
    /// Per bucket of BUCKETS, then +Inf (not cumulative).
    pub latency: Vec<u64>,
    pub latency_sum: f64,
    pub open: u64,
    pub blocking: u64,
    /// Each case of the running chain and how often it acted.
    pub by_case: Vec<(String, u64)>,
}

/// Counts a blocking case while it runs.
pub struct Running;

impl Running {
    pub fn start() -> Running {
        get().blocking.fetch_add(1, Relaxed);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        get().blocking.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_counted_on_many_threads_add_up() {
        let status = |s: &Snapshot| {
            s.by_status
                .iter()
                .find(|(code, _)| *code == 299)
                .map_or(0, |(_, n)| *n)
        };
        let before = get().snapshot();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        get().record(299, 3, Duration::from_micros(200));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let after = get().snapshot();
        assert_eq!(status(&after) - status(&before), 4000);
        assert!(after.requests - before.requests >= 4000);
        assert!(after.bytes - before.bytes >= 12_000);
        assert!(
            after.latency[0] - before.latency[0] >= 4000,
            "0.2 ms is in the first bucket"
        );
    }
}
