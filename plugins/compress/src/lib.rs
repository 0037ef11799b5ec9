//! Case `compress`: text answers go out smaller. The client's `Accept-Encoding` picks br,
//! zstd or gzip; a precompressed sidecar (`file.br`...) is sent by sendfile when there is a
//! fresh one, else the body is coded as it streams. Every answer that could have been coded
//! says `Vary: Accept-Encoding`.

pub mod accept;
mod cache;
pub mod coding;
mod conf;
mod sidecar;

use cache::Cache;
use coding::Encoder;
use conf::{Conf, Settings};
use plugin_api::{Case, Filtered, Head, Host, Outcome, Request, Response};
use sidecar::Sidecar;
use std::ffi::CStr;

/// Content coding.
pub struct Compress {
    s: Settings,
    /// Coded copies of small files (`cache_size`), this worker's.
    cache: Option<std::sync::Arc<Cache>>,
    /// Files found without sidecars in the last second.
    misses: sidecar::Misses,
}

impl Compress {
    /// Is the answer's media type one we compress?
    fn compressible(&self, head: &Head) -> bool {
        let Some(ct) = head.header_ref("content-type") else {
            return false;
        };
        // Bytes, compared without case: this runs for every answer.
        let media = ct
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let top = media.split(|&b| b == b'/').next().unwrap_or_default();
        self.s.types.iter().any(|t| match t.strip_suffix("/*") {
            Some(ty) => top.eq_ignore_ascii_case(ty.as_bytes()),
            None => media.eq_ignore_ascii_case(t.as_bytes()),
        })
    }

    /// Too small to gain from coding (a known length under `min_size`).
    fn too_small(&self, head: &Head) -> bool {
        head.body_length().is_some_and(|n| n < self.s.min_size)
    }
}

/// Could the host still answer this request's Range with a 206 of the plain bytes? Then
/// it is sent as it is (coding it would turn Range off). The host cuts ranges after the
/// filters, and only from a whole file (the answers with `Accept-Ranges`), in bytes, and
/// when an If-Range still names the file; a Range it will ignore (another unit, a
/// validator from another version: a 200 of the whole) leaves the answer to be coded, as
/// nginx and static-web-server code it.
fn range_may_apply(req: &Request, head: &Head) -> bool {
    let Some(range) = req.header("range") else {
        return false;
    };
    let unit = range.trim_ascii_start().get(..6);
    let bytes = unit.is_some_and(|u| u.eq_ignore_ascii_case(b"bytes="));
    if !bytes || !head.has("accept-ranges") {
        return false;
    }
    // An entity tag is compared strongly, a date as the file's Last-Modified is written.
    let Some(ir) = req.header("if-range") else {
        return true;
    };
    let ir = ir.trim_ascii();
    let named = if ir.starts_with(b"\"") {
        "etag"
    } else {
        "last-modified"
    };
    head.header_ref(named) == Some(ir)
}

/// Statuses that never carry a body (RFC 9110 §6.4.1).
fn bodiless(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// Send the sidecar instead of the file: its own length (the host opens it), its coding,
/// and validators of its own bytes. One the host cannot open (gone since it was found)
/// leaves the plain file.
fn serve(head: &mut Head, side: Sidecar) -> Filtered {
    if head.replace_body_file(&side.path).is_err() {
        return Filtered::Pass;
    }
    let sent = head
        .set("Content-Encoding", side.coding.token())
        .and_then(|()| head.set("ETag", &side.etag()))
        .and_then(|()| head.set("Last-Modified", &side.last_modified()));
    match sent {
        Ok(()) => Filtered::Pass,
        Err(_) => Filtered::Error,
    }
}

impl Case for Compress {
    const NAME: &'static CStr = c"compress";
    const ACTS: bool = false;
    const FILTERS: bool = true;
    const TRANSFORMS: bool = true;
    const CONTENT_CODING: bool = true;

    fn create(_host: Host, settings: plugin_api::Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        let s = c.check()?;
        Ok(Compress {
            cache: Cache::new(s.cache_size),
            misses: sidecar::Misses::default(),
            s,
        })
    }

    fn test(&self, _req: &Request) -> bool {
        false
    }

    fn act(&self, _req: &Request, _resp: &mut Response) -> Outcome {
        Outcome::Declined
    }

    /// The host calls this only for answers without a Content-Encoding or no-transform,
    /// and never for a 206.
    fn filter(&self, req: &Request, head: &mut Head) -> Filtered {
        if !self.compressible(head) {
            return Filtered::Pass;
        }
        if bodiless(head.status()) {
            // A script's own 304: the answer it stands for could have been coded.
            let _ = head.vary("Accept-Encoding");
            return Filtered::Pass;
        }
        let field = req.header_list("accept-encoding");
        let choice = accept::choose(field.as_deref(), &self.s.codings);
        // A Range the host may cut from the file gets the file's bytes: a sidecar is its own
        // representation, and one resumed by its own tag (If-Range) is still found.
        let ranged = range_may_apply(req, head);
        if self.s.precompressed && !ranged && !choice.is_empty() {
            if let Some(side) = sidecar::find(req, head, &choice, &self.misses) {
                let _ = head.vary("Accept-Encoding");
                return serve(head, side);
            }
        }
        // A body too small to code goes as it is to every client: no Vary (as nginx's
        // gzip_min_length), so a cache keyed on the raw field keeps one copy, not one per
        // Accept-Encoding. Past that, another Accept-Encoding could have changed it.
        if self.too_small(head) {
            // Unless a sidecar stands beside the file: another client gets that, so every
            // answer for this URL varies, whatever this client asked or cut.
            let all = &self.s.codings;
            if self.s.precompressed && sidecar::find(req, head, all, &self.misses).is_some() {
                let _ = head.vary("Accept-Encoding");
            }
            return Filtered::Pass;
        }
        let _ = head.vary("Accept-Encoding");
        let Some(&best) = choice.first() else {
            return Filtered::Pass;
        };
        // HTTP/1.0 would learn the end of a coded stream only from the close (nginx's
        // `gzip_http_version 1.1`); a sidecar above has a length.
        if ranged || req.version() == "HTTP/1.0" {
            return Filtered::Pass;
        }
        if head.set("Content-Encoding", best.token()).is_err() {
            return Filtered::Error;
        }
        let (len, levels) = (head.body_length(), self.s.levels);
        match (&self.cache, len) {
            (Some(cache), Some(n)) if n <= cache::MAX_BODY => {
                Filtered::Transform(Box::new(cache.transform(n, best, levels)))
            }
            _ => Filtered::Transform(Box::new(Encoder::new(best, levels, len))),
        }
    }
}

plugin_api::export_case!(Compress);

#[cfg(test)]
mod tests;
