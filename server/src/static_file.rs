//! Files sent with `send_file`: Content-Type, Last-Modified, ETag, conditional requests
//! (RFC 9110 §13) and Range requests (RFC 9110 §14), for every plugin alike.

use crate::http::Head;
use crate::reply::{Body, Reply, Seg};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Facts about the file that validators come from.
pub struct Meta {
    pub size: u64,
    pub mtime: SystemTime,
}

impl Meta {
    pub fn etag(&self) -> String {
        let secs = self
            .mtime
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("\"{secs:x}-{:x}\"", self.size)
    }

    /// Modification time truncated to whole seconds (HTTP dates have no fractions).
    fn mtime_secs(&self) -> SystemTime {
        let secs = self
            .mtime
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UNIX_EPOCH + Duration::from_secs(secs)
    }
}

/// Content-Type for a path from its extension; text gets `charset=utf-8`.
pub fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_raw();
    match mime {
        Some(m)
            if m.starts_with("text/")
                || m == "application/javascript"
                || m == "application/json"
                || m == "image/svg+xml" =>
        {
            format!("{m}; charset=utf-8")
        }
        Some(m) => m.to_string(),
        None => "application/octet-stream".to_string(),
    }
}

fn etag_list_matches(list: &[u8], etag: &str, weak: bool) -> bool {
    let list = String::from_utf8_lossy(list);
    list.split(',').map(str::trim).any(|t| {
        if t == "*" {
            return true;
        }
        let (tw, tv) = match t.strip_prefix("W/") {
            Some(v) => (true, v),
            None => (false, t),
        };
        if weak {
            tv == etag.trim_start_matches("W/")
        } else {
            !tw && tv == etag
        }
    })
}

fn http_date(v: &[u8]) -> Option<SystemTime> {
    httpdate::parse_http_date(std::str::from_utf8(v).ok()?.trim()).ok()
}

/// Build the reply for a file whose status is `status` (200 unless the plugin chose another).
pub fn reply(
    file: Arc<std::fs::File>,
    meta: &Meta,
    path: &Path,
    head: &Head,
    status: u16,
    mut headers: Vec<(Vec<u8>, Vec<u8>)>,
    max_ranges: usize,
) -> Reply {
    let etag = meta.etag();
    let last_mod = httpdate::fmt_http_date(meta.mtime_secs());
    let has = |hs: &Vec<(Vec<u8>, Vec<u8>)>, n: &str| {
        hs.iter().any(|(k, _)| k.eq_ignore_ascii_case(n.as_bytes()))
    };
    if !has(&headers, "content-type") {
        headers.push((b"Content-Type".to_vec(), content_type(path).into_bytes()));
    }
    if status != 200 {
        let segs = vec![Seg::Range(0, meta.size)];
        return Reply {
            status,
            headers,
            body: Body::File(file, segs),
        };
    }
    headers.push((b"Last-Modified".to_vec(), last_mod.clone().into_bytes()));
    headers.push((b"ETag".to_vec(), etag.clone().into_bytes()));
    headers.push((b"Accept-Ranges".to_vec(), b"bytes".to_vec()));
    let safe = head.method == "GET" || head.method == "HEAD";

    // RFC 9110 §13.2.2: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since.
    if let Some(im) = head.header("if-match") {
        if !etag_list_matches(im, &etag, false) {
            return precondition_failed(headers);
        }
    } else if let Some(d) = head.header("if-unmodified-since").and_then(http_date) {
        if meta.mtime_secs() > d {
            return precondition_failed(headers);
        }
    }
    if let Some(inm) = head.header("if-none-match") {
        if etag_list_matches(inm, &etag, true) {
            return if safe {
                not_modified(headers)
            } else {
                precondition_failed(headers)
            };
        }
    } else if safe {
        if let Some(d) = head.header("if-modified-since").and_then(http_date) {
            if meta.mtime_secs() <= d {
                return not_modified(headers);
            }
        }
    }

    let size = meta.size;
    let whole = |file, headers| Reply {
        status: 200,
        headers,
        body: Body::File(file, vec![Seg::Range(0, size)]),
    };
    if head.method != "GET" {
        return whole(file, headers);
    }
    let Some(range) = head.header("range") else {
        return whole(file, headers);
    };
    if let Some(ir) = head.header("if-range") {
        let ok = if ir.starts_with(b"\"") || ir.starts_with(b"W/") {
            ir == etag.as_bytes()
        } else {
            http_date(ir).is_some_and(|d| d == meta.mtime_secs())
        };
        if !ok {
            return whole(file, headers);
        }
    }
    match parse_ranges(range, meta.size) {
        RangeSpec::Ignore => whole(file, headers),
        RangeSpec::Unsatisfiable => {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(b"content-type"));
            headers.push((
                b"Content-Range".to_vec(),
                format!("bytes */{}", meta.size).into_bytes(),
            ));
            headers.push((
                b"Content-Type".to_vec(),
                b"text/plain; charset=utf-8".to_vec(),
            ));
            Reply {
                status: 416,
                headers,
                body: Body::Bytes(b"Range Not Satisfiable\n".to_vec()),
            }
        }
        RangeSpec::Ranges(rs) if rs.len() > max_ranges => whole(file, headers),
        RangeSpec::Ranges(rs) if rs.len() == 1 => {
            let (s, e) = rs[0];
            headers.push((
                b"Content-Range".to_vec(),
                format!("bytes {s}-{e}/{}", meta.size).into_bytes(),
            ));
            Reply {
                status: 206,
                headers,
                body: Body::File(file, vec![Seg::Range(s, e - s + 1)]),
            }
        }
        RangeSpec::Ranges(rs) => {
            let boundary = boundary();
            let ctype = headers
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(b"content-type"))
                .map(|i| headers.remove(i).1)
                .unwrap_or_default();
            let mut segs = Vec::with_capacity(rs.len() * 2 + 1);
            for (i, (s, e)) in rs.iter().enumerate() {
                let mut part = Vec::new();
                if i > 0 {
                    part.extend_from_slice(b"\r\n");
                }
                part.extend_from_slice(format!("--{boundary}\r\nContent-Type: ").as_bytes());
                part.extend_from_slice(&ctype);
                part.extend_from_slice(
                    format!("\r\nContent-Range: bytes {s}-{e}/{}\r\n\r\n", meta.size).as_bytes(),
                );
                segs.push(Seg::Bytes(part));
                segs.push(Seg::Range(*s, e - s + 1));
            }
            segs.push(Seg::Bytes(format!("\r\n--{boundary}--\r\n").into_bytes()));
            headers.push((
                b"Content-Type".to_vec(),
                format!("multipart/byteranges; boundary={boundary}").into_bytes(),
            ));
            Reply {
                status: 206,
                headers,
                body: Body::File(file, segs),
            }
        }
    }
}

/// A multipart boundary no one can predict, so a file cannot contain it on purpose: std's
/// per-process random hash keys, mixed with a counter.
fn boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static KEYS: std::collections::hash_map::RandomState = Default::default();
    }
    KEYS.with(|keys| {
        let mut h = keys.build_hasher();
        h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
        let a = h.finish();
        h.write_u64(a);
        format!("{a:016x}{:016x}", h.finish())
    })
}

fn not_modified(mut headers: Vec<(Vec<u8>, Vec<u8>)>) -> Reply {
    headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case(b"content-type") && !n.eq_ignore_ascii_case(b"accept-ranges")
    });
    Reply {
        status: 304,
        headers,
        body: Body::Empty,
    }
}

fn precondition_failed(headers: Vec<(Vec<u8>, Vec<u8>)>) -> Reply {
    let mut r = Reply::new(412, Body::Bytes(b"Precondition Failed\n".to_vec()));
    r.headers = headers
        .into_iter()
        .filter(|(n, _)| {
            n.eq_ignore_ascii_case(b"etag") || n.eq_ignore_ascii_case(b"last-modified")
        })
        .collect();
    r.headers.push((
        b"Content-Type".to_vec(),
        b"text/plain; charset=utf-8".to_vec(),
    ));
    r
}

/// A parsed Range header.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// Not a bytes range we understand: serve the whole file.
    Ignore,
    /// Syntactically fine, but no range overlaps the file: 416.
    Unsatisfiable,
    /// Inclusive (first, last) pairs, all within the file.
    Ranges(Vec<(u64, u64)>),
}

/// Parse `bytes=a-b, -n, c-` against a file of `size` bytes (RFC 9110 §14.1.2).
pub fn parse_ranges(v: &[u8], size: u64) -> RangeSpec {
    let Ok(v) = std::str::from_utf8(v) else {
        return RangeSpec::Ignore;
    };
    let Some(set) = v.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    let mut out = Vec::new();
    for spec in set.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((a, b)) = spec.split_once('-') else {
            return RangeSpec::Ignore;
        };
        let (a, b) = (a.trim(), b.trim());
        let num = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                None
            } else {
                s.parse().ok()
            }
        };
        if a.is_empty() {
            let Some(n) = num(b) else {
                return RangeSpec::Ignore;
            };
            if n > 0 && size > 0 {
                out.push((size.saturating_sub(n), size - 1));
            }
        } else {
            let Some(first) = num(a) else {
                return RangeSpec::Ignore;
            };
            let last = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(l) if l >= first => l,
                    _ => return RangeSpec::Ignore,
                }
            };
            if first < size {
                out.push((first, last.min(size - 1)));
            }
        }
    }
    if out.is_empty() {
        RangeSpec::Unsatisfiable
    } else {
        RangeSpec::Ranges(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeSpec::*;
        assert_eq!(parse_ranges(b"bytes=0-4", 10), Ranges(vec![(0, 4)]));
        assert_eq!(parse_ranges(b"bytes=5-", 10), Ranges(vec![(5, 9)]));
        assert_eq!(parse_ranges(b"bytes=-3", 10), Ranges(vec![(7, 9)]));
        assert_eq!(parse_ranges(b"bytes=-30", 10), Ranges(vec![(0, 9)]));
        assert_eq!(parse_ranges(b"bytes=8-100", 10), Ranges(vec![(8, 9)]));
        assert_eq!(
            parse_ranges(b"bytes=0-0, 2-3", 10),
            Ranges(vec![(0, 0), (2, 3)])
        );
        assert_eq!(parse_ranges(b"bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_ranges(b"bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_ranges(b"bytes=5-2", 10), Ignore);
        assert_eq!(parse_ranges(b"items=0-1", 10), Ignore);
        assert_eq!(parse_ranges(b"bytes=a-b", 10), Ignore);
    }

    #[test]
    fn text_types_carry_a_charset() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type(Path::new("a.unknownext")),
            "application/octet-stream"
        );
    }

    #[test]
    fn multipart_boundaries_differ_every_time() {
        let (a, b) = (boundary(), boundary());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn weak_and_strong_etag_comparison() {
        assert!(etag_list_matches(b"W/\"a\", \"b\"", "\"a\"", true));
        assert!(!etag_list_matches(b"W/\"a\"", "\"a\"", false));
        assert!(etag_list_matches(b"*", "\"a\"", false));
    }
}
