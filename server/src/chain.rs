//! The chapter's `do_GET`: build the request a plugin sees, then the first case whose `test`
//! is true acts. Also the answers the host gives before any case runs (400, 403, 301, 501...).

use crate::config::Config;
use crate::error_page;
use crate::http::{known_method, Head};
use crate::plugin::{self, Field, OwnedRequest, Plugin};
use crate::reply::{Body, Collect, Msg, Reply};
use crate::resolve::{self, Kind, Refusal, Root};
use crate::static_file;
use plugin_api::abi::{
    WP_DECLINED, WP_DONE, WP_KIND_DIR, WP_KIND_FILE, WP_KIND_MISSING, WP_KIND_OTHER,
};
use rustix::fs::OFlags;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

/// What a request is answered from: the cases in priority order and the document root.
/// Swapped whole on reload, so a request sees one consistent pair.
pub struct Chain {
    pub cases: Vec<Arc<Plugin>>,
    pub root: Arc<Root>,
    /// The Allow value for `OPTIONS *` and 501 answers: every method some case answers.
    all_methods: String,
}

impl Chain {
    /// Load every case named in the configuration and open the root; the first failure is
    /// returned (it stops start-up, or keeps the old chain on reload).
    pub fn load(config: &Config) -> Result<Chain, String> {
        let ttl = config.limits.open_file_cache;
        let root = Root::open(&config.root, ttl)
            .map_err(|e| format!("document root {}: {e}", config.root.display()))?;
        let mut cases = Vec::new();
        for entry in &config.cases {
            cases.push(Arc::new(plugin::load(
                entry,
                &config.plugin_dirs,
                &config.path,
            )?));
        }
        if let Some(i) = config.cases.iter().position(|c| c.name == "always_fail") {
            if i + 1 < config.cases.len() {
                log::warn!(
                    "{}: cases after always_fail never run: {}",
                    config.path.display(),
                    config.cases[i + 1..]
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        } else {
            log::warn!(
                "{}: the chain does not end with always_fail; requests no case takes get 404",
                config.path.display()
            );
        }
        let all_methods = all_methods(&cases);
        Ok(Chain {
            cases,
            root: Arc::new(root),
            all_methods,
        })
    }
}

/// Methods any case answers, for `OPTIONS *` (computed once per chain).
fn all_methods(cases: &[Arc<Plugin>]) -> String {
    let mut ms: Vec<String> = Vec::new();
    for c in cases {
        match &c.allow {
            None => {
                for m in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] {
                    ms.push(m.into());
                }
            }
            Some(list) => ms.extend(list.iter().cloned()),
        }
    }
    allow_value(&ms)
}

fn allow_value(methods: &[String]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for m in methods.iter().map(String::as_str).chain(["OPTIONS"]) {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out.join(", ")
}

/// Where the request came in.
pub struct Peer {
    pub client: SocketAddr,
    pub local: SocketAddr,
}

/// An error page from the host.
pub fn error_reply(status: u16, path: &[u8], message: &str) -> Reply {
    Reply::new(
        status,
        Body::Bytes(error_page::render(status, path, message)),
    )
    .header("Content-Type", "text/html; charset=utf-8")
}

/// Split an origin-form or absolute-form target into (path, query).
fn split_target(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let t = if target.starts_with(b"/") {
        target
    } else {
        let lower = target.to_ascii_lowercase();
        let rest = if lower.starts_with(b"http://") {
            &target[7..]
        } else if lower.starts_with(b"https://") {
            &target[8..]
        } else {
            return None;
        };
        match rest.iter().position(|&b| b == b'/' || b == b'?') {
            Some(i) if rest[i] == b'/' => &rest[i..],
            Some(i) => return Some((b"/", &rest[i + 1..])),
            None => return Some((b"/", b"")),
        }
    };
    let t = match t.iter().position(|&b| b == b'#') {
        Some(i) => &t[..i],
        None => t,
    };
    Some(match t.iter().position(|&b| b == b'?') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, b""),
    })
}

/// Local redirects followed for one request before giving up with a 500.
const MAX_REDIRECTS: usize = 10;

/// Answer one request, following local (CGI) redirects as new GET requests.
pub async fn respond(
    chain: &Arc<Chain>,
    max_ranges: usize,
    head: &Head,
    body: Vec<u8>,
    peer: &Peer,
) -> Reply {
    let mut answer = respond_once(chain, max_ranges, head, body, peer).await;
    for _ in 0..MAX_REDIRECTS {
        let target = match answer {
            Answer::Reply(r) => return r,
            Answer::Redirect(t) => t,
        };
        let next = Head {
            method: if head.method == "HEAD" { "HEAD" } else { "GET" }.to_string(),
            target,
            minor: head.minor,
            headers: head
                .headers
                .iter()
                .filter(|(n, _)| {
                    !n.eq_ignore_ascii_case("content-length")
                        && !n.eq_ignore_ascii_case("transfer-encoding")
                        && !n.eq_ignore_ascii_case("content-type")
                })
                .cloned()
                .collect(),
            len: 0,
        };
        answer = respond_once(chain, max_ranges, &next, Vec::new(), peer).await;
    }
    match answer {
        Answer::Reply(r) => r,
        Answer::Redirect(_) => error_reply(500, &head.target, "too many local redirects"),
    }
}

enum Answer {
    Reply(Reply),
    Redirect(Vec<u8>),
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Self {
        Answer::Reply(r)
    }
}

async fn respond_once(
    chain: &Arc<Chain>,
    max_ranges: usize,
    head: &Head,
    body: Vec<u8>,
    peer: &Peer,
) -> Answer {
    let root = &chain.root;
    let method = head.method.as_str();
    if !known_method(method) || method == "CONNECT" {
        return error_reply(501, &head.target, "this method is not implemented")
            .header("Allow", chain.all_methods.clone())
            .into();
    }
    if head.target == b"*" {
        return if method == "OPTIONS" {
            Reply::new(200, Body::Empty)
                .header("Allow", chain.all_methods.clone())
                .into()
        } else {
            error_reply(400, b"*", "'*' is only for OPTIONS").into()
        };
    }
    let Some((raw_path, query)) = split_target(&head.target) else {
        return error_reply(400, &head.target, "the request target is not a path").into();
    };
    let (segs, trailing) = match resolve::normalise(raw_path) {
        Ok(x) => x,
        Err(_) => {
            return error_reply(400, raw_path, "the path is malformed or leaves the root").into()
        }
    };
    let found = match root.lookup(&segs) {
        Ok(f) => f,
        Err(Refusal::Forbidden) => {
            return error_reply(403, raw_path, "the path leads outside the document root").into()
        }
        Err(Refusal::BadRequest) => return error_reply(400, raw_path, "bad path").into(),
    };
    let (kind, mut opened) = match found.kind {
        // "/file.html/" names a folder that is not there (ENOTDIR), as nginx and lighttpd say.
        Kind::File | Kind::Other if trailing => (Kind::Missing, None),
        k => (k, found.file),
    };
    let path = resolve::url_path(&segs, trailing);
    if kind == Kind::Dir && !raw_path.ends_with(b"/") {
        let mut loc = raw_path.to_vec();
        loc.push(b'/');
        if !query.is_empty() {
            loc.push(b'?');
            loc.extend_from_slice(query);
        }
        return error_reply(
            301,
            &path,
            "moved to the folder's address with a trailing slash",
        )
        .header("Location", loc)
        .into();
    }

    let mut req = OwnedRequest::new();
    req.set(Field::Method, method.as_bytes());
    req.set(Field::Target, &head.target);
    req.set(Field::Path, &path);
    req.set(Field::Query, query);
    req.set(
        Field::Version,
        if head.minor == 0 {
            b"HTTP/1.0"
        } else {
            b"HTTP/1.1"
        },
    );
    req.set(Field::ClientAddr, peer.client.ip().to_string().as_bytes());
    req.set(Field::ServerAddr, peer.local.ip().to_string().as_bytes());
    req.set(Field::Root, root.path.as_os_str().as_bytes());
    let fs_path = root.join(&segs);
    req.set(Field::FsPath, fs_path.as_os_str().as_bytes());
    req.fs_kind = match kind {
        Kind::Missing => WP_KIND_MISSING,
        Kind::File => WP_KIND_FILE,
        Kind::Dir => WP_KIND_DIR,
        Kind::Other => WP_KIND_OTHER,
    };
    req.body_len = body.len() as u64;
    req.client_port = peer.client.port();
    req.server_port = peer.local.port();
    for (n, v) in &head.headers {
        req.add_header(n.as_bytes(), v);
    }
    req.seal();

    let mut body = Some(body);
    let mut req = Some(req);
    for (i, case) in chain.cases.iter().enumerate() {
        let r = req.as_ref().expect("request is returned after each act");
        if !case.test(r) {
            continue;
        }
        let allowed = case.allows(method) || (method == "HEAD" && case.allows("GET"));
        let allow = || allow_value(case.allow.as_deref().unwrap_or(&["*".to_string()]));
        if method == "OPTIONS" && !case.allows("OPTIONS") {
            return Reply::new(200, Body::Empty).header("Allow", allow()).into();
        }
        if !allowed {
            return error_reply(405, &path, &format!("{method} is not allowed here"))
                .header("Allow", allow())
                .into();
        }
        let (rc, collect, stream) = if case.may_block {
            run_blocking(
                chain,
                i,
                req.take().unwrap(),
                body.take().unwrap_or_default(),
                &mut req,
            )
            .await
        } else {
            let mut c = Collect::new(body.take().unwrap_or_default(), None);
            let rc = case.act(r, &mut c);
            (rc, c, None)
        };
        if let Some(reply) = stream {
            return reply.into();
        }
        match rc {
            WP_DONE => {
                if let Some(t) = collect.redirect {
                    return Answer::Redirect(t);
                }
                // The file lookup opened is reused when the case sends that same path.
                let reuse = opened
                    .take()
                    .filter(|_| collect.file.as_deref() == Some(fs_path.as_os_str().as_bytes()));
                return finish(collect, root, head, &path, max_ranges, reuse).into();
            }
            WP_DECLINED if !collect.started => {
                body = Some(collect.into_body());
                continue;
            }
            _ => {
                log::error!(
                    "case={} failed on {} {}",
                    case.name,
                    method,
                    String::from_utf8_lossy(&path)
                );
                return error_reply(500, &path, "the case handling this request failed").into();
            }
        }
    }
    error_reply(404, &path, "no case handles this request").into()
}

/// Run a blocking case on a worker thread. If it starts streaming, the reply carries the
/// stream; otherwise its collected answer comes back. The request is returned through `back`.
async fn run_blocking(
    chain: &Arc<Chain>,
    i: usize,
    req: OwnedRequest,
    body: Vec<u8>,
    back: &mut Option<OwnedRequest>,
) -> (i32, Collect, Option<Reply>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(8);
    let chain2 = Arc::clone(chain);
    let task = tokio::task::spawn_blocking(move || {
        let case = &chain2.cases[i];
        let mut c = Collect::new(body, Some(tx));
        let rc = case.act(&req, &mut c);
        if rc != WP_DONE && c.committed() {
            log::error!("case={} failed after it started answering", case.name);
            c.abort_stream();
        }
        c.end_stream();
        (rc, c, req)
    });
    if let Some(Msg::Head(status, headers)) = rx.recv().await {
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"content-length"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok());
        let reply = Reply {
            status,
            headers,
            body: Body::Stream(rx, len),
        };
        // The worker finishes on its own; its result only matters through the stream.
        return (WP_DONE, Collect::new(Vec::new(), None), Some(reply));
    }
    match task.await {
        Ok((rc, c, req)) => {
            *back = Some(req);
            (rc, c, None)
        }
        Err(_) => (
            plugin_api::abi::WP_ERROR,
            Collect::new(Vec::new(), None),
            None,
        ),
    }
}

/// Turn what a case collected into a reply.
fn finish(
    c: Collect,
    root: &Root,
    head: &Head,
    path: &[u8],
    max_ranges: usize,
    opened: Option<resolve::OpenFile>,
) -> Reply {
    let Collect {
        status,
        headers,
        body,
        file,
        error,
        ..
    } = c;
    if let Some((status, msg)) = error {
        let mut r = error_reply(status, path, &msg);
        r.headers.extend(
            headers
                .into_iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(b"content-type")),
        );
        return r;
    }
    if let Some(fpath) = file {
        return send_file(
            root, &fpath, head, status, headers, path, max_ranges, opened,
        );
    }
    Reply {
        status,
        headers,
        body: Body::Bytes(body),
    }
}

#[allow(clippy::too_many_arguments)]
fn send_file(
    root: &Root,
    fpath: &[u8],
    head: &Head,
    status: u16,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    url: &[u8],
    max_ranges: usize,
    opened: Option<resolve::OpenFile>,
) -> Reply {
    let abs = Path::new(std::ffi::OsStr::from_bytes(fpath));
    if let Some(f) = opened {
        let meta = meta_of(&f.stat);
        return static_file::reply(f.file, &meta, abs, head, status, headers, max_ranges);
    }
    let Some(rel) = root.relative(abs) else {
        log::warn!("send_file outside the root refused: {}", abs.display());
        return error_reply(403, url, "the file is outside the document root");
    };
    let fd = match root.open_beneath(
        rel.as_os_str().as_bytes(),
        OFlags::RDONLY | OFlags::NONBLOCK,
    ) {
        Ok(fd) => fd,
        Err(resolve::OpenError::Outside) => {
            return error_reply(403, url, "the file leads outside the document root")
        }
        Err(resolve::OpenError::Missing) => return error_reply(404, url, "not found"),
        Err(resolve::OpenError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return error_reply(403, url, "the file cannot be read")
        }
        Err(resolve::OpenError::Io(e)) => {
            log::error!("cannot open {}: {e}", abs.display());
            return error_reply(500, url, "the file cannot be opened");
        }
    };
    let stat = match rustix::fs::fstat(&fd) {
        Ok(st) if resolve::kind_of_mode(st.st_mode) == Kind::File => st,
        Ok(_) => return error_reply(403, url, "not a regular file"),
        Err(_) => return error_reply(500, url, "the file cannot be read"),
    };
    let meta = meta_of(&stat);
    static_file::reply(
        Arc::new(std::fs::File::from(fd)),
        &meta,
        abs,
        head,
        status,
        headers,
        max_ranges,
    )
}

fn meta_of(st: &rustix::fs::Stat) -> static_file::Meta {
    let mtime = std::time::UNIX_EPOCH
        + std::time::Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32);
    static_file::Meta {
        size: st.st_size.max(0) as u64,
        mtime,
    }
}

#[cfg(test)]
mod tests {
    use super::split_target;

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(split_target(b"/a?b=1"), Some((&b"/a"[..], &b"b=1"[..])));
        assert_eq!(split_target(b"/a#frag"), Some((&b"/a"[..], &b""[..])));
        assert_eq!(
            split_target(b"http://h:1/x?y"),
            Some((&b"/x"[..], &b"y"[..]))
        );
        assert_eq!(split_target(b"HTTP://h"), Some((&b"/"[..], &b""[..])));
        assert_eq!(split_target(b"h:443"), None);
    }
}
