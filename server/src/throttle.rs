//! Log lines that a client or a full disk could repeat on every request, let through at
//! most once per interval.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Whether a line whose last one went out at `last` (seconds since the epoch, 0: never)
/// may go out now, `every` seconds on; if so, `last` becomes now. The first goes at once.
pub fn due(last: &AtomicU64, every: u64) -> bool {
    let now = std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_secs());
    let was = last.load(Relaxed);
    now >= was.saturating_add(every) && last.compare_exchange(was, now, Relaxed, Relaxed).is_ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    #[test]
    fn the_first_line_goes_and_the_next_waits_for_its_interval() {
        let last = AtomicU64::new(0);
        assert!(super::due(&last, 60));
        assert!(!super::due(&last, 60));
    }
}
