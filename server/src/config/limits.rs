//! `[limits]`: read as written, each key checked against its range, kept as `Duration`s.

use serde::Deserialize;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// Limits and timeouts (`[limits]`), checked; defaults follow nginx and Apache (docs: limits.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest request line in bytes (414 beyond).
    pub max_request_line: usize,
    /// Longest single header field in bytes (431 beyond).
    pub max_header_field: usize,
    /// Largest request head in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// Most header fields (431 beyond).
    pub max_header_count: usize,
    /// Largest request body in bytes (413 beyond).
    pub max_body: u64,
    /// Time to receive a whole request head (408 beyond).
    pub header_timeout: Duration,
    /// Time to wait between body reads (408 beyond).
    pub body_timeout: Duration,
    /// After the first `body_timeout`, the body must keep arriving at this many bytes per
    /// second on average (408 beyond; 0 turns it off), like Apache's MinRate.
    pub body_min_rate: f64,
    /// Time to wait while the client does not read what we send.
    pub send_timeout: Duration,
    /// Time an idle keep-alive connection is kept.
    pub keepalive_timeout: Duration,
    /// Requests served on one connection before it is closed.
    pub max_requests_per_connection: u32,
    /// Open connections; beyond it new ones get a 503 and are closed.
    pub max_connections: usize,
    /// Ranges accepted in one Range header (the whole file beyond it; 0 answers every
    /// Range request with the whole file, as nginx's `max_ranges 0`).
    pub max_ranges: usize,
    /// How long an opened file is kept open for later requests, each of which checks that it
    /// is unchanged and not deleted (zero turns the cache off).
    pub open_file_cache: Duration,
    /// Time requests in flight get to finish after SIGTERM/SIGINT/SIGQUIT before exiting.
    pub shutdown_timeout: Duration,
    /// An event loop that makes no progress this long (a case spinning in `test` or `act`)
    /// is reported, and its worker process replaced (zero turns the watchdog off).
    pub stall_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8192,
            max_header_field: 8192,
            max_header_bytes: 32768,
            max_header_count: 100,
            max_body: 1 << 20,
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(20),
            body_min_rate: 500.0,
            send_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(5),
            max_requests_per_connection: 1000,
            max_connections: 8192,
            max_ranges: 100,
            open_file_cache: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
        }
    }
}

/// `[limits]` as written: a key left out keeps its default. Spans give the line of a bad value.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Written {
    max_request_line: Option<Spanned<u64>>,
    max_header_field: Option<Spanned<u64>>,
    max_header_bytes: Option<Spanned<u64>>,
    max_header_count: Option<Spanned<u64>>,
    max_body: Option<Spanned<u64>>,
    header_timeout: Option<Spanned<f64>>,
    body_timeout: Option<Spanned<f64>>,
    body_min_rate: Option<Spanned<f64>>,
    send_timeout: Option<Spanned<f64>>,
    keepalive_timeout: Option<Spanned<f64>>,
    max_requests_per_connection: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u64>>,
    max_ranges: Option<Spanned<u64>>,
    open_file_cache: Option<Spanned<f64>>,
    shutdown_timeout: Option<Spanned<f64>>,
    stall_timeout: Option<Spanned<f64>>,
}

/// The longest any time limit may be: one day. Longer is a typo (and far longer overflows
/// the clock arithmetic of a deadline).
const MAX_SECONDS: f64 = 86_400.0;
/// The shortest time limit that is not zero: one millisecond.
const MIN_SECONDS: f64 = 0.001;
/// Most header fields: Apache's ceiling for LimitRequestFields (the parser holds a slot each).
const MAX_HEADER_COUNT: u64 = 32_767;

impl Written {
    /// Check every key; the first bad one is the error, naming the file, line and key.
    pub(super) fn check(&self, file: &str, text: &str) -> Result<Limits, String> {
        let c = Checker { file, text };
        let d = Limits::default();
        // `key!(name, how, arg)`: check `self.name` with `Checker::how`, defaulting to `d.name`.
        macro_rules! key {
            ($key:ident, $how:ident $(, $arg:expr)?) => {
                c.$how(stringify!($key), &self.$key, d.$key $(, $arg)?)?
            };
        }
        let any = u64::MAX;
        Ok(Limits {
            max_request_line: key!(max_request_line, count, 1..any),
            max_header_field: key!(max_header_field, count, 1..any),
            max_header_bytes: key!(max_header_bytes, count, 1..any),
            max_header_count: key!(max_header_count, count, 1..MAX_HEADER_COUNT + 1),
            max_body: key!(max_body, count, 0..any),
            header_timeout: key!(header_timeout, time, Zero::Meaningless),
            body_timeout: key!(body_timeout, time, Zero::Meaningless),
            body_min_rate: key!(body_min_rate, rate),
            send_timeout: key!(send_timeout, time, Zero::Meaningless),
            keepalive_timeout: key!(keepalive_timeout, time, Zero::Meaningless),
            max_requests_per_connection: key!(max_requests_per_connection, count, 1..1 << 32),
            max_connections: key!(max_connections, count, 1..any),
            max_ranges: key!(max_ranges, count, 0..any),
            open_file_cache: key!(open_file_cache, time, Zero::Off),
            shutdown_timeout: key!(shutdown_timeout, time, Zero::Off),
            stall_timeout: key!(stall_timeout, time, Zero::Off),
        })
    }
}

/// What a time limit of zero means.
enum Zero {
    /// Nothing useful: refused.
    Meaningless,
    /// The feature is off (no cache, no waiting).
    Off,
}

/// Checks one key at a time and words the refusal.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    /// A whole number in `range` (toml has already refused negatives and fractions).
    fn count<T: TryFrom<u64> + std::fmt::Display>(
        &self,
        key: &str,
        written: &Option<Spanned<u64>>,
        default: T,
        range: Range<u64>,
    ) -> Result<T, String> {
        let Some(v) = written else {
            return Ok(default);
        };
        let n = *v.get_ref();
        let fits = T::try_from(n).ok().filter(|_| range.contains(&n));
        fits.ok_or_else(|| {
            let expected = match (range.start, range.end) {
                (lo, u64::MAX) => format!("a whole number of at least {lo}"),
                (lo, end) => format!("a whole number from {lo} to {}", end - 1),
            };
            self.refuse(key, v.span(), &expected, default)
        })
    }

    /// Seconds, finite and at most a day; zero only where it turns the feature off.
    fn time(
        &self,
        key: &str,
        written: &Option<Spanned<f64>>,
        default: Duration,
        zero: Zero,
    ) -> Result<Duration, String> {
        let Some(v) = written else {
            return Ok(default);
        };
        let s = *v.get_ref();
        let range = MIN_SECONDS..=MAX_SECONDS;
        match zero {
            _ if range.contains(&s) => return Ok(Duration::from_secs_f64(s)),
            Zero::Off if s == 0.0 => return Ok(Duration::ZERO),
            _ => {}
        }
        let expected = match zero {
            Zero::Off => {
                format!("seconds: 0 (off), or from {MIN_SECONDS} to {MAX_SECONDS} (a day)")
            }
            Zero::Meaningless => format!("seconds, from {MIN_SECONDS} to {MAX_SECONDS} (a day)"),
        };
        Err(self.refuse(key, v.span(), &expected, default.as_secs_f64()))
    }

    /// Bytes per second: 0 (off) or a finite number of at least 1.
    fn rate(&self, key: &str, written: &Option<Spanned<f64>>, default: f64) -> Result<f64, String> {
        let Some(v) = written else {
            return Ok(default);
        };
        let r = *v.get_ref();
        if r == 0.0 || (r >= 1.0 && r.is_finite()) {
            return Ok(r);
        }
        let expected = "bytes per second: 0 (off), or a finite number of at least 1";
        Err(self.refuse(key, v.span(), expected, default))
    }

    /// `server.toml: line 7: [limits] header_timeout = inf is out of range`, then what is
    /// expected and the fix.
    fn refuse(
        &self,
        key: &str,
        span: Range<usize>,
        expected: &str,
        default: impl std::fmt::Display,
    ) -> String {
        let line = super::line_at(self.text, span.start);
        let written = &self.text[span];
        format!(
            "{}: line {line}: [limits] {key} = {written} is out of range\n  expected: {expected}\n  fix: correct the value, or remove the line for the default ({default})",
            self.file
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Limits, String> {
        let w: Written = toml::from_str(text).map_err(|e| e.to_string())?;
        w.check("server.toml", text)
    }

    #[test]
    fn absent_keys_keep_their_defaults_and_times_become_durations() {
        let l = check("header_timeout = 1.5\nopen_file_cache = 0\n").unwrap();
        assert_eq!(l.header_timeout, Duration::from_millis(1500));
        assert_eq!(l.open_file_cache, Duration::ZERO);
        assert_eq!(l.body_timeout, Limits::default().body_timeout);
    }

    #[test]
    fn out_of_range_values_name_the_line_key_range_and_default() {
        let e = check("\nheader_timeout = inf\n").unwrap_err();
        assert_eq!(
            e,
            "server.toml: line 2: [limits] header_timeout = inf is out of range\n  expected: seconds, from 0.001 to 86400 (a day)\n  fix: correct the value, or remove the line for the default (20)"
        );
        for bad in [
            "header_timeout = nan",
            "body_timeout = -1",
            "send_timeout = 0",
            "keepalive_timeout = 86401",
            "open_file_cache = inf",
            "shutdown_timeout = -0.5",
            "stall_timeout = -1",
            "body_min_rate = 0.5",
            "body_min_rate = inf",
            "max_header_count = 0",
            "max_header_count = 40000",
            "max_connections = 0",
            "max_requests_per_connection = 4294967296",
            "max_request_line = 0",
        ] {
            let key = bad.split(' ').next().unwrap();
            let e = check(bad).unwrap_err();
            assert!(
                e.contains(&format!("line 1: [limits] {key} = ")),
                "{bad}: {e}"
            );
        }
    }
}
