//! Writing a `Reply` on an HTTP/2 stream: the head as a HEADERS frame, then the body (bytes,
//! file ranges read in pieces, a case's stream, a filtered body) as DATA frames, each sent
//! only as the client's flow-control window allows, under the send timeout.

use crate::h2conn::Cut;
use crate::reply::{bodiless, Body, Msg, Reply, Seg, Text};
use crate::send::{next_piece, FILE_PIECE, SKEW};
use crate::shared_file::SharedFile;
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, SendStream};
use std::time::Duration;
use tokio::time::timeout;

/// Send `r` on the stream; HEAD gets GET's head and no body. `sent` is set to the body
/// bytes handed to the stream (for the access log), also when it is cut.
pub async fn send(
    respond: &mut SendResponse<Bytes>,
    r: Reply,
    head_only: bool,
    wait: Duration,
    sent: &mut u64,
) -> Result<(), Cut> {
    let empty = head_only || bodiless(r.status) || r.body.len() == Some(0);
    let head = response(&r);
    let mut out = respond.send_response(head, empty)?;
    if empty {
        return Ok(());
    }
    let mut out = Out {
        s: &mut out,
        wait,
        sent,
        ended: false,
    };
    // A body of known bytes ends with its last DATA frame; one written as it comes ends
    // with an empty one once it is whole.
    let done = match r.body {
        Body::Empty => Ok(true),
        Body::Bytes(b) => out.data(Bytes::from(b), true).await.map(|_| true),
        Body::Shared(b) => out.data(Bytes::from_owner(b), true).await.map(|_| true),
        Body::File(file, segs) => out.file(&file, segs).await.map(|_| true),
        Body::Stream(rx, len) => out.stream(rx, len).await,
        Body::Transformed(t) => out.transformed(*t).await,
    }?;
    if !done {
        // The case or a filter failed mid-answer: the client must not take it as whole.
        out.s.send_reset(Reason::INTERNAL_ERROR);
        return Ok(());
    }
    if !out.ended {
        out.s.send_data(Bytes::new(), true)?;
    }
    Ok(())
}

/// The response head: status, Date, Server, the reply's fields less those HTTP/2 forbids
/// (RFC 9113 §8.2.2), and Content-Length when known. A field h2 cannot carry makes it a
/// bare 500.
fn response(r: &Reply) -> http::Response<()> {
    let mut res = http::Response::new(());
    *res.status_mut() =
        http::StatusCode::from_u16(r.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let fields = res.headers_mut();
    fields.reserve(r.headers.len() + 3);
    fields.append(http::header::DATE, date());
    let server = http::HeaderValue::from_static(crate::http::server());
    fields.append(http::header::SERVER, server);
    for (n, v) in &r.headers {
        if connection_specific(n) {
            continue;
        }
        match (http::HeaderName::from_bytes(n), value(v)) {
            (Ok(n), Ok(v)) => fields.append(n, v),
            _ => return bare_500(),
        };
    }
    if let (false, Some(n)) = (bodiless(r.status), r.body.len()) {
        fields.append(http::header::CONTENT_LENGTH, n.into());
    }
    res
}

/// A field's value: text kept for good (what filters add to every answer) is used in
/// place; the rest is copied.
fn value(v: &Text) -> Result<http::HeaderValue, http::header::InvalidHeaderValue> {
    match v {
        Text::Borrowed(b) => http::HeaderValue::from_maybe_shared(Bytes::from_static(b)),
        _ => http::HeaderValue::from_bytes(v),
    }
}

fn bare_500() -> http::Response<()> {
    let mut fallback = http::Response::new(());
    *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    fallback
}

thread_local! {
    static DATE: std::cell::RefCell<(u64, http::HeaderValue)> =
        const { std::cell::RefCell::new((u64::MAX, http::HeaderValue::from_static(""))) };
}

/// The Date field's value, made once a second per thread and shared by every answer.
fn date() -> http::HeaderValue {
    crate::http::with_date_now(|secs, text| {
        DATE.with(|d| {
            let mut d = d.borrow_mut();
            if d.0 != secs {
                // An IMF-fixdate is ASCII: it always makes a value.
                let made = http::HeaderValue::from_str(text);
                *d = (secs, made.unwrap_or(http::HeaderValue::from_static("")));
            }
            d.1.clone()
        })
    })
}

/// Fields HTTP/2 has no place for, and Content-Length (we set it from the body).
fn connection_specific(name: &[u8]) -> bool {
    const DROP: [&[u8]; 7] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"content-length",
    ];
    DROP.iter().any(|d| name.eq_ignore_ascii_case(d))
}

/// A stream's body side, with the send timeout, counting the body bytes it sends.
struct Out<'a> {
    s: &'a mut SendStream<Bytes>,
    wait: Duration,
    sent: &'a mut u64,
    /// The last DATA frame carried END_STREAM.
    ended: bool,
}

impl Out<'_> {
    /// Send `data` in pieces as the client's window opens; the last piece ends the stream
    /// when `last` (no empty DATA frame after it).
    async fn data(&mut self, mut data: Bytes, last: bool) -> Result<(), Cut> {
        while !data.is_empty() {
            let granted = self.room(data.len()).await?;
            let piece = data.split_to(granted.min(data.len()));
            self.push(piece, last && data.is_empty())?;
        }
        Ok(())
    }

    /// Wait (up to the send timeout) until the stream may send some of `want` more bytes,
    /// which h2 then holds until the connection can write them: how many.
    async fn room(&mut self, want: usize) -> Result<usize, Cut> {
        self.s.reserve_capacity(want);
        match timeout(self.wait, capacity(self.s)).await {
            Ok(Some(n)) => Ok(n?),
            // Closed: by the client's reset (counted against the reset guard), or with
            // the connection.
            Ok(None) => Err(Cut {
                by_client: reset_by_client(self.s).await,
            }),
            Err(_) => Err(Cut { by_client: false }),
        }
    }

    /// Send a piece the stream has room for; `end` ends the stream with it.
    fn push(&mut self, piece: Bytes, end: bool) -> Result<(), Cut> {
        let n = piece.len() as u64;
        self.s.send_data(piece, end)?;
        self.ended = end;
        *self.sent += n;
        Ok(())
    }

    /// File ranges (and the multipart bytes between them), in pieces: a small file's bytes
    /// from the open-file cache (read once), a larger one's read for each piece.
    async fn file(&mut self, file: &SharedFile, segs: Vec<Seg>) -> Result<(), Cut> {
        let count = segs.len();
        for (i, seg) in segs.into_iter().enumerate() {
            let last_seg = i + 1 == count;
            match seg {
                Seg::Bytes(b) => self.data(Bytes::from(b), last_seg).await?,
                Seg::Range(mut off, len) => {
                    let end = off + len;
                    while off < end {
                        // The room first: a stream its client does not read holds no
                        // piece of the file, only what h2 holds for it.
                        let want = FILE_PIECE.min((end - off) as usize);
                        let n = self.room(want).await?.min(want);
                        // A small piece is copied whole into one record; skew the rest.
                        let skew = if n < 16 * 1024 { 0 } else { SKEW };
                        let mut piece = vec![0; skew];
                        piece.reserve_exact(n);
                        file.read_into(&mut piece, off, n)
                            .map_err(|_| Cut { by_client: false })?;
                        off += n as u64;
                        let piece = Bytes::from(piece).slice(skew..);
                        self.push(piece, last_seg && off == end)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// What a case on a worker thread writes; Ok(false) when it aborted or overran its length.
    async fn stream(&mut self, mut rx: crate::spool::Inbox, len: Option<u64>) -> Result<bool, Cut> {
        let mut sent: u64 = 0;
        loop {
            match rx.recv().await {
                Some(Msg::Data(d)) => {
                    sent += d.len() as u64;
                    if len.is_some_and(|n| sent > n) {
                        return Ok(false);
                    }
                    self.data(Bytes::from(d), false).await?;
                }
                Some(Msg::Abort) => return Ok(false),
                Some(Msg::Head(..)) => {}
                None => return Ok(len.map_or(true, |n| n == sent)),
            }
        }
    }

    /// A body through its transforming filters; Ok(false) when a filter or the source failed.
    async fn transformed(&mut self, mut t: crate::filter::Transformed) -> Result<bool, Cut> {
        loop {
            let piece = match next_piece(&mut t).await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(_) => return Ok(false),
            };
            let Ok(out) = t.push(&piece, false) else {
                return Ok(false);
            };
            self.data(Bytes::from(out), false).await?;
        }
        let Ok(last) = t.push(&[], true) else {
            return Ok(false);
        };
        self.data(Bytes::from(last), false).await?;
        Ok(true)
    }
}

/// Did the client reset the stream (RST_STREAM), rather than the connection end?
async fn reset_by_client(s: &mut SendStream<Bytes>) -> bool {
    use std::task::Poll;
    let now = std::future::poll_fn(|cx| Poll::Ready(s.poll_reset(cx))).await;
    matches!(now, Poll::Ready(Ok(_)))
}

/// Wait until the stream may send some bytes: how many, an error, or `None` if it closed.
async fn capacity(s: &mut SendStream<Bytes>) -> Option<Result<usize, h2::Error>> {
    loop {
        let now = s.capacity();
        if now > 0 {
            return Some(Ok(now));
        }
        match std::future::poll_fn(|cx| s.poll_capacity(cx)).await {
            Some(Ok(0)) => continue,
            other => return other,
        }
    }
}
