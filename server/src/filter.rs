//! Response filters (ABI 1.1): every answer with a request head passes the chain's filters,
//! in chain order, before its head is written; a filter may edit the head, replace the body,
//! or transform the body as it streams.

use crate::error_page;
use crate::plugin::{HeadSink, OwnedRequest, Plugin, TransformState, Verdict};
use crate::reply::{Body, Reply, Seg};
use plugin_api::abi::{
    WP_BODY_ERROR, WP_BODY_MORE, WP_BODY_OK, WP_F_CONTENT_CODING, WP_IO_END, WP_IO_FLUSH,
};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::reply::{Headers, Text};

/// Headers that frame the message or manage the connection: only the host sets them.
pub fn host_owned(name: &[u8]) -> bool {
    plugin_api::abi::host_owned_header(name)
}

/// What the filters need to know about the request besides its case view.
pub struct Ctx<'a> {
    pub req: &'a OwnedRequest,
    pub root: &'a crate::resolve::Root,
    /// The normalised path, for error pages.
    pub path: &'a [u8],
    /// HEAD: filters see GET's head, and bodies are never transformed.
    pub head_only: bool,
}

/// Pass `reply` through every filter of the chain. A filter error restarts the answer as a
/// 500 through the filters once; an error during that restart sends the built-in page.
pub fn apply(filters: &[(usize, Arc<Plugin>)], reply: Reply, ctx: &Ctx) -> Reply {
    if filters.is_empty() {
        return reply;
    }
    match run(filters, reply, ctx) {
        Ok(r) => r,
        Err(failed) => {
            log::error!("case={failed}: filter failed; answering 500");
            let page = || error_page::reply(500, ctx.path, "a response filter failed");
            run(filters, page(), ctx).unwrap_or_else(|_| page())
        }
    }
}

/// One pass through the filters; `Err` names the filter that failed.
fn run(filters: &[(usize, Arc<Plugin>)], mut reply: Reply, ctx: &Ctx) -> Result<Reply, String> {
    let mut stages: Vec<Stage> = Vec::new();
    // Room for what the filters add (security headers, Vary...): one growth, not several.
    reply.headers.reserve(8);
    let mut added = 0;
    for (i, f) in filters {
        if skips(f, &reply) {
            continue;
        }
        let before = log::log_enabled!(log::Level::Debug).then(|| fingerprint(&reply));
        let mut edit = Edit::new(reply, ctx, added);
        let verdict = {
            let _running = crate::fault::running(*i, &f.name);
            f.filter_head(ctx.req, &mut edit)
        };
        added = edit.added;
        let replaced = edit.replaced.is_some();
        let changed_body = replaced || edit.status_changed;
        reply = edit.finish();
        if replaced {
            superseded(&mut stages, &mut reply);
        }
        if let Some(before) = before {
            let changed = changed_body
                || before != fingerprint(&reply)
                || matches!(verdict, Verdict::Transform(_));
            if changed {
                log::debug!("filter={} changed the answer ({})", f.name, reply.status);
            }
        }
        match verdict {
            Verdict::Pass => {}
            Verdict::Error => return Err(f.name.clone()),
            Verdict::Transform(state) => stages.push(Stage::new(*i, Arc::clone(f), state)),
        }
    }
    Ok(if stages.is_empty() {
        reply
    } else {
        transformed(reply, stages, ctx)
    })
}

/// A filter put in a new body: what earlier filters meant to do to the old one no longer
/// applies, nor does the coding one of them named (error_pages after compress sent its
/// page coded under no Content-Encoding).
fn superseded(stages: &mut Vec<Stage>, reply: &mut Reply) {
    if stages
        .iter()
        .any(|s| s.case.filter_flags & WP_F_CONTENT_CODING != 0)
    {
        reply
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(b"content-encoding"));
    }
    stages.clear();
}

/// The status and headers, to tell whether a filter changed them (debug log only).
fn fingerprint(reply: &Reply) -> (u16, Headers) {
    (reply.status, reply.headers.clone())
}

/// A content-coding filter leaves alone what is already coded, what asks not to be
/// transformed, partial answers, and a 205, whose content the host drops (RFC 9110
/// §15.3.6): a coding named on its head would be GET's and not HEAD's.
fn skips(f: &Plugin, reply: &Reply) -> bool {
    if f.filter_flags & WP_F_CONTENT_CODING == 0 {
        return false;
    }
    let has = |n: &[u8]| reply.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let no_transform = reply.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case(b"cache-control")
            && v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"no-transform"))
    });
    matches!(reply.status, 205 | 206) || has(b"content-encoding") || no_transform
}

/// The head a filter edits, and what it asked to do with the body.
pub struct Edit<'a> {
    reply: Reply,
    ctx: &'a Ctx<'a>,
    status_changed: bool,
    replaced: Option<Replacement>,
    /// Header bytes the filters have set or appended to this answer, bounded by
    /// `MAX_FILTER_HEAD`.
    added: usize,
}

/// The most header bytes the filters together may set or append to one answer, as a
/// case's own are bounded: a head much larger is one no client takes (curl gives up at
/// 100 KiB) and an HTTP/2 peer refuses.
const MAX_FILTER_HEAD: usize = 64 * 1024;

enum Replacement {
    Bytes(Vec<u8>),
    /// A file beneath the root, opened when the filter named it.
    File(Body),
}

impl<'a> Edit<'a> {
    fn new(reply: Reply, ctx: &'a Ctx<'a>, added: usize) -> Edit<'a> {
        Edit {
            reply,
            ctx,
            status_changed: false,
            replaced: None,
            added,
        }
    }

    /// A field to set or append, when it is valid and within `MAX_FILTER_HEAD`.
    fn field(&mut self, name: &[u8], value: &[u8]) -> Option<(Text, Text)> {
        let added = self.added + name.len() + value.len() + 4;
        if added > MAX_FILTER_HEAD {
            return None;
        }
        let field = checked_field(name, value)?;
        self.added = added;
        Some(field)
    }

    /// Apply the body decisions. A new status without a new body gets the host's page for
    /// it.
    fn finish(self) -> Reply {
        let Edit {
            mut reply,
            ctx,
            status_changed,
            replaced,
            ..
        } = self;
        match replaced {
            Some(Replacement::Bytes(b)) => reply.body = Body::Bytes(b),
            Some(Replacement::File(file)) => reply.body = file,
            None if status_changed => {
                let page = error_page::reply(reply.status, ctx.path, "");
                reply.body = page.body;
                reply.headers.retain(|(n, _)| {
                    !n.eq_ignore_ascii_case(b"content-type")
                        && !n.eq_ignore_ascii_case(b"etag")
                        && !n.eq_ignore_ascii_case(b"last-modified")
                });
                reply.headers.extend(page.headers);
            }
            None => {}
        }
        reply
    }

    fn position(&self, name: &[u8]) -> Option<usize> {
        self.reply
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

impl HeadSink for Edit<'_> {
    fn status(&self) -> u16 {
        self.reply.status
    }

    fn set_status(&mut self, status: u16) -> bool {
        if !(200..=599).contains(&status) || status == 206 || status == 304 {
            return false;
        }
        if status != self.reply.status {
            self.reply.status = status;
            self.status_changed = true;
        }
        true
    }

    fn header_count(&self) -> usize {
        self.reply.headers.len()
    }

    fn header_at(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.reply.headers.get(i).map(|(n, v)| (&n[..], &v[..]))
    }

    fn find_header(&self, name: &[u8]) -> Option<&[u8]> {
        let found = self.position(name)?;
        Some(&self.reply.headers[found].1)
    }

    fn set_header(&mut self, name: &[u8], value: &[u8]) -> bool {
        let Some(field) = self.field(name, value) else {
            return false;
        };
        let headers = &mut self.reply.headers;
        let same = |(n, _): &(Text, Text)| n.eq_ignore_ascii_case(name);
        let Some(first) = headers.iter().position(same) else {
            headers.push(field);
            return true;
        };
        // The first one keeps its place with the new value; any others go.
        headers[first].1 = field.1;
        if headers[first + 1..].iter().any(same) {
            let mut i = 0;
            headers.retain(|h| {
                i += 1;
                i - 1 == first || !same(h)
            });
        }
        true
    }

    fn append_header(&mut self, name: &[u8], value: &[u8]) -> bool {
        let Some(field) = self.field(name, value) else {
            return false;
        };
        self.reply.headers.push(field);
        true
    }

    fn remove_header(&mut self, name: &[u8]) -> bool {
        if host_owned(name) {
            return false;
        }
        self.reply
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        true
    }

    fn vary_add(&mut self, token: &[u8]) -> bool {
        let added = self.added + token.len() + 8;
        if !crate::http::is_token(token) || added > MAX_FILTER_HEAD {
            return false;
        }
        self.added = added;
        match self.position(b"vary") {
            Some(i) => {
                let v = &mut self.reply.headers[i].1;
                let present = v
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token) || t.trim_ascii() == b"*");
                if !present {
                    let v = v.to_mut();
                    v.extend_from_slice(b", ");
                    v.extend_from_slice(token);
                }
            }
            None => self.reply.headers.extend(checked_field(b"Vary", token)),
        }
        true
    }

    fn replace_body_bytes(&mut self, data: &[u8]) -> bool {
        self.replaced = Some(Replacement::Bytes(data.to_vec()));
        true
    }

    /// An absolute path under the root, or refused (a relative one would be taken against
    /// the worker's folder, one elsewhere never opened). Opened now, from the open-file
    /// cache: a file that cannot be opened is refused here, so the filter can keep the
    /// answer it has (an error page deleted since start-up) instead of failing it.
    fn replace_body_file(&mut self, path: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let abs = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        if self.ctx.root.relative(abs).is_none() {
            return false;
        }
        match crate::static_file::open_for_filter(self.ctx.root, path) {
            Some(file) => {
                self.replaced = Some(Replacement::File(file));
                true
            }
            None => false,
        }
    }

    /// Only the host's error pages are kept as shared bytes.
    fn host_page(&self) -> Option<bool> {
        Some(matches!(self.reply.body, Body::Shared(_)))
    }

    fn body_length(&self) -> Option<u64> {
        // HEAD: what a case wrote need not be GET's body, but bytes it collected, a file,
        // and the length it named are what GET's would be.
        if self.ctx.head_only
            && !matches!(
                self.reply.body,
                Body::Bytes(_) | Body::Shared(_) | Body::File(..) | Body::Stream(_, Some(_))
            )
        {
            return None;
        }
        self.reply.body.len()
    }
}

fn editable(name: &[u8], value: &[u8]) -> bool {
    crate::http::is_token(name) && crate::http::is_field_value(value) && !host_owned(name)
}

/// How many fields filters added lately each thread keeps, checked and kept for good (a
/// power of 2).
const FIELDS_KEPT: usize = 64;

/// A field checked once and kept for good: its name and value.
type KeptField = Option<(&'static [u8], &'static [u8])>;

thread_local! {
    static FIELDS: [std::cell::Cell<KeptField>; FIELDS_KEPT] =
        const { [const { std::cell::Cell::new(None) }; FIELDS_KEPT] };
}

/// The field a filter sets or appends, when it is `editable`. Filters add the same few
/// fields to nearly every answer (security headers, Cache-Control, Vary), so the last
/// ones are kept per thread, in one of two places picked by a hash of their lengths and
/// a few bytes: a field seen before costs a compare, not a check and two copies. Only
/// fields kept for good (`lasting`) are remembered, as plain slices, so that a hit is two
/// compares and no reference count.
fn checked_field(name: &[u8], value: &[u8]) -> Option<(Text, Text)> {
    // A field value has no whitespace at either end (RFC 9110 §5.5); HTTP/2 peers refuse
    // one that has (RFC 9113 §8.2.1).
    let value = value.trim_ascii();
    let slot = field_slot(name, value);
    let same = |f: KeptField| f.filter(|&(n, v)| n == name && v == value);
    if let Some((n, v)) = FIELDS.with(|kept| same(kept[slot].get()).or(same(kept[slot ^ 1].get())))
    {
        return Some((Text::Borrowed(n), Text::Borrowed(v)));
    }
    if !editable(name, value) {
        return None;
    }
    let field = (lasting(name), lasting(value));
    if let (Text::Borrowed(n), Text::Borrowed(v)) = field {
        FIELDS.with(|kept| {
            let free = if kept[slot].get().is_none() {
                slot
            } else {
                slot ^ 1
            };
            kept[free].set(Some((n, v)));
        });
    }
    Some(field)
}

/// Bytes of field text each process keeps for good, so that a kept field is borrowed by
/// every answer that carries it: no reference count to raise and drop, a locked
/// instruction each, four per field per answer. Beyond it (a filter adding a new value to
/// every answer fills it once) fields are shared with a count, as before.
const LASTING_BUDGET: usize = 64 * 1024;

/// Field texts kept for good, and their bytes in all.
type Lasting = (std::collections::HashSet<&'static [u8]>, usize);

/// One lasting copy of `text`, or a counted one once the budget is spent. A lock, but only
/// when a thread meets a field its table does not hold, and none once the budget is spent
/// (so fields new to every answer do not make the event loops queue for it).
fn lasting(text: &[u8]) -> Text {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    static KEPT: std::sync::LazyLock<std::sync::Mutex<Lasting>> =
        std::sync::LazyLock::new(Default::default);
    static SPENT: AtomicBool = AtomicBool::new(false);
    if SPENT.load(Relaxed) {
        return Text::Shared(text.into());
    }
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    let t = lasting_in(&mut kept, LASTING_BUDGET, text);
    if matches!(t, Text::Shared(_)) {
        SPENT.store(true, Relaxed);
    }
    t
}

fn lasting_in(kept: &mut Lasting, budget: usize, text: &[u8]) -> Text {
    if let Some(t) = kept.0.get(text) {
        return Text::Borrowed(t);
    }
    if kept.1 + text.len() > budget {
        return Text::Shared(text.into());
    }
    let t: &'static [u8] = Box::leak(text.into());
    kept.1 += t.len();
    kept.0.insert(t);
    Text::Borrowed(t)
}

fn field_slot(name: &[u8], value: &[u8]) -> usize {
    let byte = |s: &[u8], i: usize| u64::from(s.get(i).copied().unwrap_or(0));
    let key = name.len() as u64
        | (value.len() as u64) << 16
        | byte(name, name.len() / 2) << 32
        | byte(value, value.len() / 2) << 40
        | byte(value, 0) << 48
        | byte(name, 0) << 56;
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FIELDS_KEPT.trailing_zeros())) as usize
}

/// One transforming filter's state for one response; `filter_end` runs exactly once, when
/// the stage is dropped (aborted unless the body reached its end).
pub struct Stage {
    /// The filter's place in the chain, for the fault report.
    index: usize,
    case: Arc<Plugin>,
    state: Option<TransformState>,
    finished: bool,
}

impl Stage {
    fn new(index: usize, case: Arc<Plugin>, state: TransformState) -> Stage {
        Stage {
            index,
            case,
            state: Some(state),
            finished: false,
        }
    }

    /// Feed `input` (with `flags`), returning everything the filter produced for it.
    fn feed(&mut self, mut input: &[u8], flags: u32) -> Result<Vec<u8>, ()> {
        let state = self.state.as_ref().ok_or(())?;
        let mut out = Vec::new();
        let mut window = vec![0u8; 64 * 1024];
        let _running = crate::fault::running(self.index, &self.case.name);
        loop {
            let (rc, used, made) = self.case.filter_body(state, input, &mut window, flags);
            out.extend_from_slice(&window[..made.min(window.len())]);
            input = &input[used.min(input.len())..];
            // Neither input taken nor output made: calling again would spin for good.
            let stuck = used == 0 && made == 0;
            match rc {
                WP_BODY_OK if input.is_empty() => break,
                WP_BODY_OK | WP_BODY_MORE if !stuck => continue,
                _ => {
                    self.failed(rc, stuck);
                    return Err(());
                }
            }
        }
        if flags & WP_IO_END != 0 {
            self.finished = true;
        }
        Ok(out)
    }

    /// Say why the body transform gave up: the head is gone, so the client sees the answer
    /// cut short, and only this line says which filter did it.
    fn failed(&self, rc: i32, stuck: bool) {
        let why = match rc {
            WP_BODY_OK | WP_BODY_MORE if stuck => "neither took input nor made output".into(),
            WP_BODY_ERROR => "reported an error".into(),
            rc => format!("returned {rc}, no WP_BODY_* value"),
        };
        log::error!(
            "case={}: filter_body {why}; the answer is cut short",
            self.case.name
        );
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let _running = crate::fault::running(self.index, &self.case.name);
            self.case.filter_end(state, !self.finished);
        }
    }
}

/// A body on its way through transforming filters.
pub struct Transformed {
    pub source: Source,
    stages: Vec<Stage>,
    /// The answer's ETag before a content coding gave it one of its own (`W/"x-br"`):
    /// a precondition naming the plain answer's tag still matches the coded one, as in
    /// nginx, lighttpd and Caddy, which check before they code.
    pub plain_etag: Option<Vec<u8>>,
}

/// A filter's body transform failed: the answer cannot be completed.
#[derive(Debug)]
pub struct TransformFailed;

/// Where a transformed body's bytes come from.
pub enum Source {
    /// A file's byte range, read in pieces.
    File(Arc<crate::shared_file::SharedFile>, u64, u64),
    /// What a case on a worker thread goes on writing, and what is left of the length it
    /// named.
    Stream(crate::spool::Inbox, Option<u64>),
    /// Nothing (HEAD and bodiless answers: the filter never gets body calls).
    Nothing,
}

impl Transformed {
    /// Pass one piece through every stage in order; `end` finishes them.
    pub fn push(&mut self, input: &[u8], end: bool) -> Result<Vec<u8>, TransformFailed> {
        // A stream's piece is what its case wrote at once: pushed on as it came, so a
        // script's reader is never kept waiting for what a transform holds back.
        let flags = match (end, &self.source) {
            (true, _) => WP_IO_END,
            (false, Source::Stream(..)) => WP_IO_FLUSH,
            (false, _) => 0,
        };
        let mut data = input.to_vec();
        for stage in &mut self.stages {
            data = stage.feed(&data, flags).map_err(|()| TransformFailed)?;
        }
        Ok(data)
    }

    /// Read the next piece of a file source (at most 64 KiB); empty at the end.
    pub fn read_file_piece(&mut self) -> std::io::Result<Vec<u8>> {
        let Source::File(file, off, left) = &mut self.source else {
            return Ok(Vec::new());
        };
        let n = (*left).min(64 * 1024) as usize;
        let mut buf = vec![0u8; n];
        file.read_exact_at(&mut buf, *off)?;
        *off += n as u64;
        *left -= n as u64;
        Ok(buf)
    }
}

/// The answer with its body routed through `stages`: the length is dropped, Range is off,
/// a strong ETag becomes weak. Bytes are transformed at once (so the answer keeps a
/// Content-Length); files and streams as they are sent.
fn transformed(mut reply: Reply, stages: Vec<Stage>, ctx: &Ctx) -> Reply {
    let coded = stages
        .iter()
        .any(|s| s.case.filter_flags & WP_F_CONTENT_CODING != 0);
    let mut plain_etag = coded.then(|| plain_tag(&reply.headers, &stages)).flatten();
    weaken_etag(&mut reply.headers, coded);
    reply
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(b"accept-ranges"));
    // A body held in memory is coded at once, for HEAD too, so HEAD's head says the same
    // Content-Length as GET's (RFC 9110 §9.3.2). Files and streams of a HEAD, and bodiless
    // answers, keep their source but are never read: no body calls.
    let bodiless = crate::reply::bodiless(reply.status);
    let source = match std::mem::replace(&mut reply.body, Body::Empty) {
        Body::Bytes(b) if !bodiless => return whole(reply, b, stages, ctx),
        Body::Shared(b) if !bodiless => return whole(reply, b.to_vec(), stages, ctx),
        Body::Empty | Body::Bytes(_) | Body::Shared(_) => Source::Nothing,
        Body::File(file, segs) => match segs.as_slice() {
            [Seg::Range(off, len)] => Source::File(file, *off, *len),
            _ => return reply_without_transform(reply, file, segs),
        },
        Body::Stream(rx, len) => Source::Stream(rx, len),
        Body::Transformed(t) => {
            plain_etag = t.plain_etag.or(plain_etag);
            t.source
        }
    };
    reply.body = Body::Transformed(Box::new(Transformed {
        source,
        stages,
        plain_etag,
    }));
    reply
}

/// Multipart file bodies are never transformed (Range is cut after the filters, so this
/// only happens if a case built one itself).
fn reply_without_transform(
    mut reply: Reply,
    file: Arc<crate::shared_file::SharedFile>,
    segs: Vec<Seg>,
) -> Reply {
    reply.body = Body::File(file, segs);
    reply
}

/// Transform a body held in memory in one go.
fn whole(mut reply: Reply, body: Vec<u8>, stages: Vec<Stage>, ctx: &Ctx) -> Reply {
    let mut t = Transformed {
        source: Source::Nothing,
        stages,
        plain_etag: None,
    };
    match t.push(&body, true) {
        Ok(out) => reply.body = Body::Bytes(out),
        Err(TransformFailed) => {
            log::error!(
                "a body transform failed on {}",
                String::from_utf8_lossy(ctx.path)
            );
            return error_page::reply(500, ctx.path, "a response filter failed");
        }
    }
    reply
}

/// The ETag the answer would carry without its content coding: its own, made weak when
/// another transform stage changes the bytes too.
fn plain_tag(headers: &Headers, stages: &[Stage]) -> Option<Vec<u8>> {
    let (_, tag) = headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case(b"etag") && is_entity_tag(v))?;
    let other = stages
        .iter()
        .any(|s| s.case.filter_flags & WP_F_CONTENT_CODING == 0);
    if other && tag.starts_with(b"\"") {
        Some([&b"W/"[..], tag].concat())
    } else {
        Some(tag.to_vec())
    }
}

/// `"x"` becomes `W/"x"`: the transformed bytes differ, the meaning does not. A body a
/// content-coding filter codes also gets a tag of its own, `W/"x-br"` (RFC 9110 §8.8.3.3,
/// as lighttpd and Caddy tag theirs): with the plain file's tag, a cache holding the coded
/// copy takes a 304 to a plain request as confirming it, and cuts a Range from the coded
/// bytes (Chromium does).
fn weaken_etag(headers: &mut Headers, coded: bool) {
    // A tag that is not one (a script's `ETag: abc`, unquoted) cannot be told apart from
    // the plain answer's: it goes, as nginx drops it from what it compresses.
    headers.retain(|(n, v)| !n.eq_ignore_ascii_case(b"etag") || is_entity_tag(v));
    let coding = coded
        .then(|| {
            let (_, v) = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(b"content-encoding"))?;
            crate::http::is_token(v).then(|| v.to_vec())
        })
        .flatten();
    for (n, v) in headers.iter_mut() {
        if !n.eq_ignore_ascii_case(b"etag") || !v.ends_with(b"\"") {
            continue;
        }
        let v = v.to_mut();
        if v.starts_with(b"\"") {
            v.splice(0..0, *b"W/");
        }
        if let Some(c) = &coding {
            let end = v.len() - 1;
            v.splice(end..end, b"-".iter().chain(c).copied());
        }
    }
}

/// `"x"` or `W/"x"` (RFC 9110 §8.8.3): quoted, no quote inside.
fn is_entity_tag(v: &[u8]) -> bool {
    let opaque = v.strip_prefix(b"W/").unwrap_or(v);
    opaque.len() >= 2
        && opaque.starts_with(b"\"")
        && opaque.ends_with(b"\"")
        && !opaque[1..opaque.len() - 1].contains(&b'"')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GET of `/` with `req` under `root`.
    fn ctx_of<'a>(req: &'a OwnedRequest, root: &'a crate::resolve::Root) -> Ctx<'a> {
        Ctx {
            req,
            root,
            path: b"/",
            head_only: false,
        }
    }

    #[test]
    fn a_transformed_answer_keeps_only_a_valid_etag_made_its_own() {
        for (tag, coded, want) in [
            ("\"x\"", true, Some("W/\"x-gzip\"")),
            ("W/\"x\"", true, Some("W/\"x-gzip\"")),
            ("\"x\"", false, Some("W/\"x\"")),
            ("noquotes", true, None),
            ("\"a\"b\"", false, None),
            ("W/x", true, None),
        ] {
            let mut headers: Headers = vec![
                (Text::Borrowed(b"Content-Encoding"), Text::Borrowed(b"gzip")),
                (
                    Text::Borrowed(b"ETag"),
                    Text::Owned(tag.as_bytes().to_vec()),
                ),
            ];
            weaken_etag(&mut headers, coded);
            let etag = headers.iter().find(|(n, _)| &n[..] == b"ETag");
            let etag = etag.map(|(_, v)| String::from_utf8_lossy(v).into_owned());
            assert_eq!(etag.as_deref(), want, "{tag} coded={coded}");
        }
    }

    #[test]
    fn lasting_texts_are_kept_once_within_their_budget_then_counted() {
        let mut kept = Lasting::default();
        let borrowed = |t: &Text| match t {
            Text::Borrowed(b) => Some(b.as_ptr()),
            _ => None,
        };
        let a = lasting_in(&mut kept, 16, b"nosniff");
        let again = lasting_in(&mut kept, 16, b"nosniff");
        assert!(borrowed(&a).is_some());
        assert_eq!(borrowed(&a), borrowed(&again), "one copy, found again");
        assert_eq!(kept.1, 7);
        let more = lasting_in(&mut kept, 16, b"SAMEORIGIN");
        assert!(
            borrowed(&more).is_none(),
            "past the budget: counted, not kept"
        );
        assert_eq!(&*more, b"SAMEORIGIN");
        assert_eq!(kept.1, 7);
        assert!(borrowed(&lasting_in(&mut kept, 16, b"nosniff")).is_some());
    }

    #[test]
    fn kept_fields_come_back_exactly_and_refused_ones_stay_refused() {
        let many: Vec<(String, String)> = (0..300)
            .map(|i| (format!("X-Field-{i}"), format!("value {}", i * 7)))
            .collect();
        for _ in 0..2 {
            for (n, v) in &many {
                let (kn, kv) = checked_field(n.as_bytes(), v.as_bytes()).unwrap();
                assert_eq!((&*kn, &*kv), (n.as_bytes(), v.as_bytes()));
            }
            assert!(checked_field(b"Content-Length", b"5").is_none());
            assert!(checked_field(b"Bad Name", b"x").is_none());
            assert!(checked_field(b"X-Ok", b"line\r\nbreak").is_none());
            // Same lengths and sampled bytes as a kept field, different elsewhere.
            let (kn, kv) = checked_field(b"X-Field-1", b"valuf 7").unwrap();
            assert_eq!((&*kn, &*kv), (&b"X-Field-1"[..], &b"valuf 7"[..]));
        }
    }

    fn fields(reply: &Reply) -> Vec<(String, String)> {
        let text = |t: &Text| String::from_utf8_lossy(t).into_owned();
        reply
            .headers
            .iter()
            .map(|(n, v)| (text(n), text(v)))
            .collect()
    }

    #[test]
    fn a_replacement_file_must_be_an_absolute_path_under_the_root() {
        let req = OwnedRequest::new();
        let dir = std::env::temp_dir().canonicalize().unwrap();
        let root = crate::resolve::Root::open(&dir, std::time::Duration::ZERO).unwrap();
        let ctx = ctx_of(&req, &root);
        let mut edit = Edit::new(Reply::new(404, Body::Empty), &ctx, 0);
        assert!(!edit.replace_body_file(b"errors/404.html"), "relative");
        assert!(!edit.replace_body_file(b"/etc/passwd"), "outside");
        let inside = dir.join(format!("cases-replace-{}.html", std::process::id()));
        let inside_bytes = inside.as_os_str().as_encoded_bytes();
        assert!(!edit.replace_body_file(inside_bytes), "not there");
        std::fs::write(&inside, "<h1>page</h1>").unwrap();
        assert!(edit.replace_body_file(inside_bytes));
        let _ = std::fs::remove_file(&inside);
        assert_eq!(edit.finish().body.len(), Some(13));
    }

    #[test]
    fn set_header_leaves_one_field_of_the_name_where_the_first_stood() {
        let req = OwnedRequest::new();
        let root = crate::resolve::Root::open("/".as_ref(), std::time::Duration::ZERO).unwrap();
        let ctx = ctx_of(&req, &root);
        let reply = Reply::new(200, Body::Empty)
            .header("X-A", "1")
            .header("Vary", "x")
            .header("X-A", "2");
        let mut edit = Edit::new(reply, &ctx, 0);
        assert!(edit.set_header(b"x-a", b"3"));
        assert!(edit.set_header(b"New", b"v"));
        assert!(!edit.set_header(b"Bad Name", b"v"));
        assert!(!edit.set_header(b"X-B", b"a\r\nInjected: 1"));
        assert!(!edit.set_header(b"Connection", b"close"));
        // The host names itself (server_tokens); a value loses its outer whitespace, which
        // HTTP/2 peers refuse (RFC 9113 §8.2.1).
        assert!(!edit.set_header(b"Server", b"other"));
        assert!(edit.set_header(b"New", b"  v \t"));
        let want = [("X-A", "3"), ("Vary", "x"), ("New", "v")];
        let want: Vec<_> = want.map(|(n, v)| (n.to_string(), v.to_string())).into();
        assert_eq!(fields(&edit.reply), want);
    }

    #[test]
    fn an_edit_adds_header_fields_only_within_what_is_left_of_64_kib() {
        let req = OwnedRequest::new();
        let root = crate::resolve::Root::open("/".as_ref(), std::time::Duration::ZERO).unwrap();
        let ctx = ctx_of(&req, &root);
        let mut edit = Edit::new(Reply::new(200, Body::Empty), &ctx, 0);
        assert!(!edit.append_header(b"X-Big", &vec![b'a'; MAX_FILTER_HEAD]));
        let value = vec![b'b'; 1000];
        let taken = (0..100)
            .filter(|_| edit.append_header(b"X-K", &value))
            .count();
        assert_eq!(taken, MAX_FILTER_HEAD / 1007);
        // An edit that starts with little left (`run` hands each filter what the ones
        // before it left) takes only what fits.
        let mut next = Edit::new(edit.finish(), &ctx, MAX_FILTER_HEAD - 10);
        assert!(!next.set_header(b"X-Next", b"0123456789"));
        assert!(!next.vary_add(b"Accept-Language"));
        assert!(next.set_header(b"X", b"1"));
    }
}
