//! The chapter's `do_GET`: figure out what exactly is being requested, then how to handle
//! it (the first case whose `test` is true acts). The host's own answers before any case
//! runs (400, 403, 301, 501, `OPTIONS *`) are made here too.

use crate::config::{Config, Site};
use crate::conn::Peer;
use crate::error_page;
use crate::errors::RequestError;
use crate::http::{known_method, Head};
use crate::plugin::{self, Field, OwnedRequest, Plugin, Test};
use crate::reply::{Body, Collect, Msg, Reply};
use crate::resolve::{self, Kind, OpenFile, Refusal, Root};
use crate::static_file;
use plugin_api::abi::{
    WP_CONTINUE, WP_DECLINED, WP_DONE, WP_KIND_DIR, WP_KIND_FILE, WP_KIND_MISSING, WP_KIND_OTHER,
};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// What a request is answered from: one site's cases in priority order and its document
/// root. Swapped whole on reload, so a request sees one consistent pair.
pub struct Chain {
    pub cases: Vec<Arc<Plugin>>,
    /// The cases that filter responses (ABI 1.1), in chain order, with their number in the
    /// process's list of cases (for crash and stall reports).
    pub filters: Vec<(usize, Arc<Plugin>)>,
    pub root: Arc<Root>,
    /// The Allow value for `OPTIONS *` and 501 answers: every method some case answers.
    all_methods: String,
    /// How often each case acted, for the status page: the process's counters, every site's
    /// chain one after the other; this chain's start at `base`.
    acted: Arc<[AtomicU64]>,
    /// Where this chain's cases start in the process's list of cases (the counters, and
    /// the index that names a case that crashes or stalls).
    base: usize,
    /// The site this chain answers for: its names and its https redirect.
    pub site: Site,
}

impl Chain {
    /// Load every case of `site`'s chain and open its root; the first failure is returned
    /// (it stops start-up, or keeps the old chain on reload). Its counters are
    /// `acted[base..]`.
    pub fn load(
        config: &Config,
        site: &Site,
        (acted, base): (&Arc<[AtomicU64]>, usize),
    ) -> Result<Chain, String> {
        let ttl = config.limits.open_file_cache;
        crate::resolve::enterable(&site.root, config.user.as_deref())?;
        let root = Root::open(&site.root, ttl)
            .map_err(|e| format!("document root {}: {e}", site.root.display()))?;
        let cases = site
            .cases
            .iter()
            .map(|entry| {
                plugin::load(entry, &config.plugin_dirs, &config.path, &root.path).map(Arc::new)
            })
            .collect::<Result<Vec<_>, String>>()?;
        let all_methods = all_methods(&cases);
        let filters = cases
            .iter()
            .enumerate()
            .filter(|(_, c)| c.filters())
            .map(|(i, c)| (base + i, Arc::clone(c)))
            .collect();
        Ok(Chain {
            acted: Arc::clone(acted),
            base,
            cases,
            filters,
            root: Arc::new(root),
            all_methods,
            site: site.clone(),
        })
    }

    /// The site's short name: its first server name, or `default`.
    pub fn site_id(&self) -> &str {
        self.site.written.first().map_or("default", String::as_str)
    }

    /// Case `i`'s test (a pass for a plugin that only filters), under the fault guard.
    fn test(&self, i: usize, req: &OwnedRequest) -> Test {
        let case = &self.cases[i];
        if !case.acts() {
            return Test::Pass;
        }
        let _running = self.running(i);
        case.test(req)
    }

    /// Mark this thread as in case `i` (for a crash or stall report).
    fn running(&self, i: usize) -> crate::fault::Running {
        crate::fault::running(self.base + i, &self.cases[i].name)
    }

    /// Count one act of case `i`.
    fn count(&self, i: usize) {
        if let Some(c) = self.acted.get(self.base + i) {
            c.fetch_add(1, Relaxed);
        }
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

/// What follows `http://` or `https://` (any case) in an absolute-form target.
pub fn after_scheme(target: &[u8]) -> Option<&[u8]> {
    let starts = |scheme: &[u8]| {
        let n = scheme.len();
        target
            .get(..n)
            .is_some_and(|t| t.eq_ignore_ascii_case(scheme))
    };
    if starts(b"http://") {
        Some(&target[7..])
    } else if starts(b"https://") {
        Some(&target[8..])
    } else {
        None
    }
}

/// Split an origin-form or absolute-form target into (path, query).
pub fn split_target(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let target = match target.iter().position(|&b| b == b'#') {
        Some(i) => &target[..i],
        None => target,
    };
    let t = if target.starts_with(b"/") {
        target
    } else {
        let rest = after_scheme(target)?;
        match rest.iter().position(|&b| b == b'/' || b == b'?') {
            Some(i) if rest[i] == b'/' => &rest[i..],
            Some(i) => return Some((b"/", &rest[i + 1..])),
            None => return Some((b"/", b"")),
        }
    };
    Some(match t.iter().position(|&b| b == b'?') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, b""),
    })
}

/// Local redirects followed for one request before giving up with a 500.
const MAX_REDIRECTS: usize = 10;
/// Rewrites of one request's target before giving up with a 500 (nginx's limit of internal
/// redirects is 10 too).
const MAX_REWRITES: usize = 10;

/// A request's answer, and who a case found the client to be.
pub struct Answered {
    pub reply: Reply,
    /// `REMOTE_USER` as a case set it (after checking credentials), for the access log.
    pub remote_user: Option<Vec<u8>>,
    /// The host refused the target or the method itself (400, 501) before any case saw
    /// it: over HTTP/1.1 the connection closes after it, as nginx and lighttpd close after
    /// their own 400 and 501 (what follows may be the rest of a request it misread).
    pub close: bool,
}

/// Answer one request: the chain (following local redirects), then the response filters,
/// then the host's conditional and Range stage.
pub async fn respond(
    chain: &Arc<Chain>,
    max_ranges: usize,
    head: &Head,
    body: Vec<u8>,
    peer: &Peer,
) -> Answered {
    if let Some(moved) = crate::sites::https_redirect(chain, head, peer) {
        let reply = filter_refusal(chain, moved, head, peer);
        return Answered {
            reply: static_file::conditional(reply, head, max_ranges),
            remote_user: None,
            close: false,
        };
    }
    let mut seen = Seen::default();
    let reply = run_chain(chain, head, body, peer, &mut seen).await;
    let reply = unavailable_not_missing(reply, &seen);
    let close = seen.place.is_none() && matches!(reply.status, 400 | 501);
    let reply = filter(chain, crate::reply::reset_content(reply), head, &seen, peer);
    let remote_user = seen
        .vars
        .iter()
        .find(|(n, _)| n == b"REMOTE_USER")
        .map(|(_, v)| v.clone());
    Answered {
        reply: static_file::conditional(reply, head, max_ranges),
        remote_user,
        close,
    }
}

/// A 404 for a path whose lookup failed for want of descriptors is a 503: the file may well
/// be there (nginx answers 500). Answers that needed no file (a status page, a redirect, a
/// script) stand.
fn unavailable_not_missing(reply: Reply, seen: &Seen) -> Reply {
    match &seen.place {
        Some(place) if place.unavailable && reply.status == 404 => {
            let why = "the server is out of open files just now";
            error_page::reply(503, &place.path, why)
        }
        _ => reply,
    }
}

/// The chain's answer when the head alone decides it: a method no case knows (501), or the
/// first case whose test is true does not take the method (405), so the body need not be
/// read first, as nginx answers a POST to a file at once. Tests are pure and see only the
/// body's length, which the head gives. `None`: read the body and run the chain.
pub fn refused_before_body(
    chain: &Chain,
    head: &Head,
    peer: &Peer,
    body_len: usize,
) -> Option<Reply> {
    if head.method == "OPTIONS" || crate::sites::https_redirect(chain, head, peer).is_some() {
        return None;
    }
    let place = match locate(chain, head) {
        Ok(place) => place,
        // A method no case knows (501), `*` with another method than OPTIONS (400).
        Err(refused) => return Some(filter_refusal(chain, refused, head, peer)),
    };
    let view = case_view(
        Some(&place),
        head,
        peer,
        &chain.root,
        body_len,
        &Vars::new(),
    );
    let (first, test) = (0..chain.cases.len())
        .map(|i| (i, chain.test(i, &view)))
        .find(|&(_, t)| t != Test::Pass)?;
    // A test that failed answers 500 here too, never its method's 405.
    let refused = match test {
        Test::Failed => None,
        _ => Some(method_policy(
            &chain.cases[first],
            &head.method,
            &place.path,
        )?),
    };
    let seen = Seen {
        view: Some(view),
        place: Some(place),
        ..Seen::default()
    };
    let refused = refused.unwrap_or_else(|| failed_test(chain, first, &seen));
    Some(filter(chain, refused, head, &seen, peer))
}

/// A reply the host made before the chain ran (413, a bad Host...), through the filters.
pub fn filter_refusal(chain: &Chain, reply: Reply, head: &Head, peer: &Peer) -> Reply {
    filter(chain, reply, head, &Seen::default(), peer)
}

/// What the chain last looked at, for the filters' view of the request.
#[derive(Default)]
struct Seen {
    /// The request of the last local redirect, if one was followed.
    redirect: Option<Head>,
    /// The view the cases last saw, reused by the filters (absent when a case took it to a
    /// worker thread, or the host refused the target).
    view: Option<OwnedRequest>,
    place: Option<Place>,
    vars: Vars,
}

/// Variables cases attached to the request (ABI 1.1 `set_var`), in order.
type Vars = Vec<(Vec<u8>, Vec<u8>)>;

/// Pass the reply through the chain's filters, with the request as the chain last saw it.
fn filter(chain: &Chain, reply: Reply, head: &Head, seen: &Seen, peer: &Peer) -> Reply {
    if chain.filters.is_empty() {
        return reply;
    }
    let head = seen.redirect.as_ref().unwrap_or(head);
    let built;
    let req = match &seen.view {
        Some(view) => view,
        None => {
            built = case_view(seen.place.as_ref(), head, peer, &chain.root, 0, &seen.vars);
            &built
        }
    };
    let path = seen.place.as_ref().map_or(&head.target, |p| &p.path);
    let ctx = crate::filter::Ctx {
        req,
        root: &chain.root,
        path,
        head_only: head.method == "HEAD",
    };
    crate::filter::apply(&chain.filters, reply, &ctx)
}

/// The cases, following local (CGI) redirects as new GET requests.
/// What they looked at is left in `seen` (which stays in place: it is large).
async fn run_chain(
    chain: &Arc<Chain>,
    head: &Head,
    body: Vec<u8>,
    peer: &Peer,
    seen: &mut Seen,
) -> Reply {
    let mut answer = respond_once(chain, head, seen, body, peer).await;
    for _ in 0..MAX_REDIRECTS {
        let Answer::Redirect(target) = answer else {
            break;
        };
        // The case's mistake, not the client's: a 500, and a line saying why.
        if !names_a_place(&target) {
            log::error!(
                "{}: a local redirect to {:?}, which is not a path in the site",
                String::from_utf8_lossy(&head.target),
                String::from_utf8_lossy(&target)
            );
            return error_page::refusal(RequestError::BadRedirect, &head.target);
        }
        let next = redirected(head, target);
        answer = respond_once(chain, &next, seen, Vec::new(), peer).await;
        seen.redirect = Some(next);
    }
    match answer {
        Answer::Reply(r) => r,
        Answer::Redirect(target) => {
            log::error!(
                "{}: more than {MAX_REDIRECTS} local redirects (the last to {:?})",
                String::from_utf8_lossy(&head.target),
                String::from_utf8_lossy(&target)
            );
            error_page::refusal(RequestError::RedirectLoop, &head.target)
        }
    }
}

/// Is a local redirect's target a path that stays in the site (a query allowed)?
fn names_a_place(target: &[u8]) -> bool {
    split_target(target).is_some_and(|(path, _)| resolve::normalise(path).is_ok())
}

/// The request a local redirect makes: GET (HEAD stays HEAD) of `target`, without a body.
fn redirected(head: &Head, target: Vec<u8>) -> Head {
    let body_field = |n: &[u8]| {
        ["content-length", "transfer-encoding", "content-type"]
            .iter()
            .any(|b| n.eq_ignore_ascii_case(b.as_bytes()))
    };
    Head {
        method: if head.method == "HEAD" { "HEAD" } else { "GET" }.into(),
        target,
        minor: head.minor,
        h2: head.h2,
        headers: head
            .headers
            .iter()
            .filter(|(n, _)| !body_field(n))
            .collect(),
        len: 0,
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

/// The chapter's `handle_request` for one target. What it looked at is left in `seen`.
async fn respond_once(
    chain: &Arc<Chain>,
    head: &Head,
    seen: &mut Seen,
    body: Vec<u8>,
    peer: &Peer,
) -> Answer {
    // Figure out what exactly is being requested.
    seen.place = None;
    seen.view = None;
    let place = match locate(chain, head) {
        Ok(place) => seen.place.insert(place),
        Err(early) => return early.into(),
    };
    let req = case_view(Some(place), head, peer, &chain.root, body.len(), &seen.vars);

    // Figure out how to handle it: the first case whose test is true acts.
    let mut work = Work {
        req: Some(req),
        body: Some(body),
    };
    let (mut i, mut rewrites) = (0, 0);
    while i < chain.cases.len() {
        match chain.test(i, work.req()) {
            Test::Pass => {
                i += 1;
                continue;
            }
            Test::Failed => {
                seen.view = work.req.take();
                return failed_test(chain, i, seen).into();
            }
            Test::Take => {}
        }
        match take_turn(chain, i, head, seen, &mut work, peer).await {
            Turn::Answer(answer) => {
                seen.view = work.req.take().filter(|_| !place_restated(seen));
                return answer;
            }
            Turn::Next => i += 1,
            // A new target is a new request to every case, those before this one too (an
            // access rule, a password), as nginx looks for its location again.
            Turn::Again if rewrites < MAX_REWRITES => (i, rewrites) = (0, rewrites + 1),
            Turn::Again => {
                log::error!(
                    "case={}: more than {MAX_REWRITES} rewrites",
                    chain.cases[i].name
                );
                seen.view = work.req.take();
                return error_page::refusal(RequestError::RewriteLoop, &head.target).into();
            }
        }
    }

    // Handle errors: no case took the request.
    seen.view = work.req.take();
    let path = seen.place.as_ref().map_or(&head.target, |p| &p.path);
    error_page::reply(404, path, "no case handles this request").into()
}

/// A 500 for a request whose case `i` could not say whether it takes it: the cases after
/// it are not asked, since it may have been guarding them (a password, an access rule).
fn failed_test(chain: &Chain, i: usize, seen: &Seen) -> Reply {
    let path = seen.place.as_ref().map_or(&[][..], |p| &p.path);
    log::error!(
        "case={}: its test failed on {}",
        chain.cases[i].name,
        String::from_utf8_lossy(path)
    );
    error_page::reply(500, path, "the case handling this request failed")
}

/// Where the chain goes after a case's turn.
enum Turn {
    Answer(Answer),
    /// On to the next case (this one declined, or only set variables).
    Next,
    /// From the first case again: the target was rewritten.
    Again,
}

/// Case `i`'s test was true: its methods, then its act.
async fn take_turn(
    chain: &Arc<Chain>,
    i: usize,
    head: &Head,
    seen: &mut Seen,
    work: &mut Work,
    peer: &Peer,
) -> Turn {
    let place = seen.place.as_mut().expect("located before any case runs");
    if let Some(refused) = method_policy(&chain.cases[i], &head.method, &place.path) {
        return Turn::Answer(refused.into());
    }
    match act(chain, i, work, place).await {
        Acted::Declined => Turn::Next,
        Acted::Answer(answer) => Turn::Answer(answer),
        Acted::Continue(changes) => {
            let again = changes.rewrite.is_some();
            match go_on(chain, head, seen, work, changes, peer) {
                Err(refused) => Turn::Answer(refused.into()),
                Ok(()) if again => Turn::Again,
                Ok(()) => Turn::Next,
            }
        }
    }
}

/// After a case returned WP_CONTINUE: keep its variables, and when it rewrote the target,
/// locate the new one (decoded, confined, looked up again) and rebuild the view; method,
/// headers and body stay. A target the host refuses ends the request with that answer.
fn go_on(
    chain: &Chain,
    head: &Head,
    seen: &mut Seen,
    work: &mut Work,
    changes: Changes,
    peer: &Peer,
) -> Result<(), Reply> {
    seen.vars.extend(changes.vars);
    if let Some(target) = changes.rewrite {
        log::debug!("rewritten to {}", String::from_utf8_lossy(&target));
        seen.place = Some(place_of(chain, &target)?);
    }
    let body_len = work.body.as_ref().map_or(0, Vec::len);
    let req = case_view(
        seen.place.as_ref(),
        head,
        peer,
        &chain.root,
        body_len,
        &seen.vars,
    );
    work.req = Some(req);
    Ok(())
}

/// What exactly is being requested: the normalised path, its query, and what it is on disk.
struct Place {
    path: Vec<u8>,
    query: Vec<u8>,
    fs_path: PathBuf,
    kind: Kind,
    /// The regular file the lookup opened, reused when a case sends this same path.
    opened: Option<OpenFile>,
    /// The answer is another file than the path's: the cases' view is out of date.
    restated: bool,
    /// The lookup failed for want of descriptors: what it found is not known.
    unavailable: bool,
}

/// The chapter's first step, with the checks it left out: a method we know, and a target
/// that is a path.
fn locate(chain: &Chain, head: &Head) -> Result<Place, Reply> {
    if let Some(early) = asterisk_or_unknown(chain, head) {
        return Err(early);
    }
    place_of(chain, &head.target)
}

/// A target's path, decoded and confined to the root, and what it names.
fn place_of(chain: &Chain, target: &[u8]) -> Result<Place, Reply> {
    let refuse = |e: RequestError, path: &[u8]| error_page::refusal(e, path);
    let Some((raw_path, query)) = split_target(target) else {
        return Err(refuse(RequestError::NotAPath, target));
    };
    let (normal, trailing) =
        resolve::normalise(raw_path).map_err(|_| refuse(RequestError::BadPath, raw_path))?;
    let mut unavailable = false;
    let found = match chain.root.lookup(normal.rel()) {
        Ok(found) => found,
        // Through a symlink out of the root: not part of the site, so absent to the cases
        // (a hidden name stays hidden, as the chain's first case decides).
        Err(Refusal::Forbidden) => resolve::Found::missing(),
        Err(Refusal::BadRequest) => return Err(refuse(RequestError::BadPath, raw_path)),
        // Out of open files: absent to the cases, so those that need no file still answer,
        // but a 404 becomes a 503 (`unavailable_not_missing`).
        Err(Refusal::Unavailable) => {
            unavailable = true;
            resolve::Found::missing()
        }
    };
    let (kind, opened) = match found.kind {
        // "/file.html/" names a folder that is not there (ENOTDIR), as nginx and lighttpd say.
        Kind::File | Kind::Other if trailing => (Kind::Missing, None),
        k => (k, found.file),
    };
    // A folder keeps a trailing slash only when the target has a real one (not `%2f`) or
    // ends in a dot segment, so a folder named without it is seen as such, and the
    // directory cases redirect to it. Anything else keeps the slash it decoded to, so the
    // cases see the path the file lookup saw (`/a.html%2f` is `/a.html/`, absent).
    let fs_path = chain.root.join(normal.rel());
    let folder_end = || raw_path.ends_with(b"/") || dot_end(raw_path);
    let path = normal.into_url_path(trailing && (kind != Kind::Dir || folder_end()));
    Ok(Place {
        fs_path,
        query: query.to_vec(),
        path,
        kind,
        opened,
        restated: false,
        unavailable,
    })
}

/// Does the raw path's last segment (after its last real `/`) decode to `.` or `..`?
fn dot_end(raw_path: &[u8]) -> bool {
    let last = raw_path.rsplit(|&b| b == b'/').next().unwrap_or_default();
    resolve::decode(last).is_ok_and(|d| resolve::ends_in_dot_segment(&d) && !d.contains(&b'/'))
}

/// 501 for a method no case takes (CONNECT, or an extension method, QUERY or PROPFIND,
/// that no case lists or takes with `*`), and the answers to `*` (OPTIONS only).
fn asterisk_or_unknown(chain: &Chain, head: &Head) -> Option<Reply> {
    let method = &*head.method;
    let taken = || known_method(method) || chain.cases.iter().any(|c| c.allows(method));
    if method == "CONNECT" || !taken() {
        // No Allow: it would describe the target's methods (RFC 9110 §10.2.1), and this is
        // about the method; nginx and lighttpd send none either.
        return Some(error_page::refusal(
            RequestError::NotImplemented,
            &head.target,
        ));
    }
    match (head.target.as_slice(), method) {
        (t, "OPTIONS") if server_wide(t) => {
            Some(Reply::new(200, Body::Empty).header("Allow", chain.all_methods.clone()))
        }
        (b"*", _) => Some(error_page::refusal(RequestError::AsteriskNotOptions, b"*")),
        _ => None,
    }
}

/// `*`, or an absolute-form target with no path (`http://host:8080`): for OPTIONS, a
/// question about the server rather than a resource (RFC 9112 §3.2.4).
fn server_wide(target: &[u8]) -> bool {
    target == b"*"
        || after_scheme(target).is_some_and(|rest| !rest.contains(&b'/') && !rest.contains(&b'?'))
}

/// The request as a case sees it (`wp_request`), built once for every test and act. With
/// no place (the host refused the target), the path is the target and nothing is on disk.
fn case_view(
    place: Option<&Place>,
    head: &Head,
    peer: &Peer,
    root: &Root,
    body_len: usize,
    vars: &Vars,
) -> OwnedRequest {
    let mut req = OwnedRequest::new();
    req.set(Field::Method, head.method.as_bytes());
    req.set(Field::Target, &head.target);
    req.set(Field::Version, crate::conn::version(head).as_bytes());
    set_addresses(&mut req, peer);
    req.set(Field::Root, root.path.as_os_str().as_bytes());
    set_place(&mut req, place, &head.target);
    if peer.tls.is_some() {
        // As nginx's `fastcgi_param HTTPS $https`: set only on TLS connections.
        req.add_var(b"HTTPS", b"on");
    }
    req.set_numbers(body_len as u64, peer.client.port(), peer.local.port());
    // An absolute-form target's authority is the request's host (RFC 9112 §3.2.2): the
    // cases see it as Host, as they see HTTP/2's :authority.
    let authority = crate::sites::absolute_authority(&head.target);
    for (n, v) in head.headers.iter() {
        if authority.is_none() || !n.eq_ignore_ascii_case(b"host") {
            req.add_header(n, v);
        }
    }
    if let Some(host) = authority {
        req.add_header(b"host", host);
    }
    for (n, v) in vars {
        req.add_var(n, v);
    }
    req.seal();
    req
}

/// The client's and our address, as text (written without `fmt`).
fn set_addresses(req: &mut OwnedRequest, peer: &Peer) {
    use crate::digits::with_ip_text;
    with_ip_text(peer.client.ip(), |t| req.set(Field::ClientAddr, t));
    with_ip_text(peer.local.ip(), |t| req.set(Field::ServerAddr, t));
}

/// Path, query, file system path and kind of the view.
fn set_place(req: &mut OwnedRequest, place: Option<&Place>, target: &[u8]) {
    let Some(place) = place else {
        req.set(Field::Path, target);
        return;
    };
    req.set(Field::Path, &place.path);
    req.set(Field::Query, &place.query);
    req.set(Field::FsPath, place.fs_path.as_os_str().as_bytes());
    req.set_kind(match place.kind {
        Kind::Missing => WP_KIND_MISSING,
        Kind::File => WP_KIND_FILE,
        Kind::Dir => WP_KIND_DIR,
        Kind::Other => WP_KIND_OTHER,
    });
}

/// Between `test` and `act`: the case's methods. OPTIONS is answered with its Allow unless
/// the case handles OPTIONS itself; another method of RFC 9110 it does not take is 405, an
/// extension method (which another case may take: a script, QUERY) 501 (§15.6.2).
fn method_policy(case: &Plugin, method: &str, path: &[u8]) -> Option<Reply> {
    let allow = || allow_value(case.allow.as_deref().unwrap_or(&["*".to_string()]));
    if method == "OPTIONS" && !case.allows("OPTIONS") {
        return Some(Reply::new(200, Body::Empty).header("Allow", allow()));
    }
    let allowed = case.allows(method) || (method == "HEAD" && case.allows("GET"));
    if allowed {
        return None;
    }
    if !known_method(method) {
        return Some(error_page::refusal(RequestError::NotImplemented, path));
    }
    let r = error_page::reply(405, path, &format!("{method} is not allowed here"));
    Some(r.header("Allow", allow()))
}

/// The request and its body while cases take turns: a blocking case borrows them on a
/// worker thread and gives them back when it declines.
struct Work {
    req: Option<OwnedRequest>,
    body: Option<Vec<u8>>,
}

impl Work {
    fn req(&self) -> &OwnedRequest {
        self.req
            .as_ref()
            .expect("the request comes back after each act")
    }
}

/// What one case's `act` came to.
enum Acted {
    /// Nothing was written: the next case whose test is true may act.
    Declined,
    /// The case changed the request (ABI 1.1): the chain goes on at the next case.
    Continue(Changes),
    Answer(Answer),
}

/// What a case that returned WP_CONTINUE changed.
struct Changes {
    rewrite: Option<Vec<u8>>,
    vars: Vars,
}

/// Run case `i`'s act (on a worker thread if it may block) and turn what it did into an
/// answer.
async fn act(chain: &Arc<Chain>, i: usize, work: &mut Work, place: &mut Place) -> Acted {
    let case = &chain.cases[i];
    let body = work.body.take().unwrap_or_default();
    let (rc, mut collect) = if case.may_block {
        // Boxed: a worker thread's hand-over need not be in every request's state.
        match Box::pin(run_blocking(chain, i, work, body)).await {
            Ran::Streaming(reply) => {
                chain.count(i);
                return Acted::Answer(reply.into());
            }
            Ran::Done(rc, collect) => (rc, collect),
            Ran::Unstarted => {
                let why = "no thread could be started for this request";
                return Acted::Answer(error_page::reply(503, &place.path, why).into());
            }
        }
    } else {
        let mut c = Collect::new(body, None);
        let _running = chain.running(i);
        let rc = case.act(work.req(), &mut c);
        (rc, c)
    };
    log::debug!("case={} acted: {}", case.name, outcome_name(rc));
    match rc {
        WP_DONE => {
            chain.count(i);
            Acted::Answer(finish(collect, &chain.root, place))
        }
        WP_DECLINED | WP_CONTINUE if !collect.started => {
            let changes = Changes {
                rewrite: collect.rewrite.take(),
                vars: std::mem::take(&mut collect.vars),
            };
            work.body = Some(collect.into_body());
            if rc == WP_DECLINED {
                Acted::Declined
            } else {
                Acted::Continue(changes)
            }
        }
        _ => {
            log::error!(
                "case={} failed on {}",
                case.name,
                String::from_utf8_lossy(&place.path)
            );
            let r = error_page::reply(500, &place.path, "the case handling this request failed");
            Acted::Answer(r.into())
        }
    }
}

/// A `WP_*` result in words, for the debug log.
fn outcome_name(rc: i32) -> &'static str {
    match rc {
        WP_DONE => "done",
        WP_DECLINED => "declined",
        WP_CONTINUE => "continue",
        _ => "error",
    }
}

/// Turn what a case collected into an answer: a local redirect, an error page, a file, or
/// the bytes it wrote.
fn finish(c: Collect, root: &Root, place: &mut Place) -> Answer {
    if let Some(target) = c.redirect {
        return Answer::Redirect(target);
    }
    if let Some((status, msg)) = c.error {
        let mut r = error_page::reply(status, &place.path, &msg);
        let kept = c.headers.into_iter();
        r.headers
            .extend(kept.filter(|(n, _)| !n.eq_ignore_ascii_case(b"content-type")));
        return r.into();
    }
    if let Some(file) = c.file {
        // The file the lookup opened is reused when the case sends that same path.
        let same = file.as_slice() == place.fs_path.as_os_str().as_bytes();
        let reused = place.opened.take().filter(|_| same);
        let reply = static_file::answer(root, &file, reused, c.status, c.headers, &place.path);
        // Only a file that was opened: a refused one (linked out of the root) stays unseen.
        if !same && reply.status < 400 {
            sends_other_file(place, file);
        }
        return reply.into();
    }
    // A length the case named and did not keep to: the answer goes out as a stream of that
    // length would (short: cut off; long: refused), not made whole with the length it has.
    let body = match declared_length(&c.headers) {
        Some(n) if n != c.body.len() as u64 => Body::Stream(crate::spool::ended(c.body), Some(n)),
        _ => Body::Bytes(c.body),
    };
    Reply {
        status: c.status,
        headers: c.headers,
        body,
    }
    .into()
}

fn place_restated(seen: &Seen) -> bool {
    seen.place.as_ref().is_some_and(|p| p.restated)
}

/// A case answered with another file than the path's (a folder's index page): the filters
/// are shown that file as the request's, so they treat the answer as the file it is
/// (compress sends the page's sidecar), while the path stays the one asked for.
fn sends_other_file(place: &mut Place, file: Vec<u8>) {
    place.fs_path = PathBuf::from(std::ffi::OsString::from_vec(file));
    place.kind = Kind::File;
    place.restated = true;
}

/// How a blocking case ran: it started streaming (the reply carries the stream), or it
/// finished with its collected answer.
enum Ran {
    Streaming(Reply),
    Done(i32, Collect),
    /// No thread could be started (a process or memory limit): 503, and the case never runs.
    Unstarted,
}

/// Run a blocking case on tokio's blocking pool. If it starts streaming, the reply carries
/// the stream; otherwise its collected answer comes back, and the request returns to
/// `work`. A thread that cannot be started is a 503 at once, and the act never runs.
async fn run_blocking(chain: &Arc<Chain>, i: usize, work: &mut Work, body: Vec<u8>) -> Ran {
    let (out, mut rx) = crate::spool::channel();
    let chain2 = Arc::clone(chain);
    let req = work
        .req
        .take()
        .expect("the request comes back after each act");
    let abandoned = Arc::new(AtomicBool::new(false));
    let gone = Arc::clone(&abandoned);
    let act = move || {
        if gone.load(Relaxed) {
            return None;
        }
        let _running = crate::stats::Running::start();
        let case = &chain2.cases[i];
        let mut c = Collect::new(body, Some(out));
        let in_case = chain2.running(i);
        let rc = case.act(&req, &mut c);
        drop(in_case);
        if rc != WP_DONE && c.committed() {
            if c.client_gone() {
                log::debug!("case={}: the client went away mid-answer", case.name);
            } else {
                log::error!("case={} failed after it started answering", case.name);
            }
            c.abort_stream();
        }
        // The case is done (a script's place is free); what it wrote and the client has
        // not read yet still goes out from here.
        c.end_stream();
        Some((rc, c, req))
    };
    let Some(task) = spawn_blocking(act, &abandoned) else {
        let name = &chain.cases[i].name;
        log::error!("case={name}: cannot start a thread for this request (a limit on processes or threads?); answering 503");
        return Ran::Unstarted;
    };
    if let Some(Msg::Head(status, headers)) = rx.recv().await {
        // The worker finishes on its own; its result only matters through the stream.
        return Ran::Streaming(streaming_reply(status, headers, rx));
    }
    match task.await {
        Ok(Some((rc, c, req))) => {
            work.req = Some(req);
            Ran::Done(rc, c)
        }
        _ => Ran::Done(plugin_api::abi::WP_ERROR, Collect::new(Vec::new(), None)),
    }
}

/// tokio's spawn_blocking, but None where it panics because no thread can be started (a
/// process limit, a cgroup's pids.max) with none idle. It has queued the act by then, to
/// run whenever a thread comes: `abandoned` makes it do nothing then, so a script (a POST
/// too) never runs long after its client was answered.
fn spawn_blocking<T: Send + 'static>(
    act: impl FnOnce() -> T + Send + 'static,
    abandoned: &AtomicBool,
) -> Option<tokio::task::JoinHandle<T>> {
    let spawn = std::panic::AssertUnwindSafe(|| tokio::task::spawn_blocking(act));
    match std::panic::catch_unwind(spawn) {
        Ok(task) => Some(task),
        Err(_) => {
            abandoned.store(true, Relaxed);
            None
        }
    }
}

/// A reply whose body is what the worker goes on writing, with the case's Content-Length
/// when it gave one.
fn streaming_reply(status: u16, headers: crate::reply::Headers, rx: crate::spool::Inbox) -> Reply {
    let len = declared_length(&headers);
    Reply {
        status,
        headers,
        body: Body::Stream(rx, len),
    }
}

/// The Content-Length a case gave (the host took it only as digits).
fn declared_length(headers: &crate::reply::Headers) -> Option<u64> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"content-length"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::{case_view, split_target, Head, Peer, Root};
    use crate::conn::Tls;

    #[test]
    fn a_tls_connection_gives_the_cases_https_on_and_a_plain_one_nothing() {
        let head = Head {
            method: "GET".into(),
            target: b"/".to_vec(),
            minor: 1,
            h2: false,
            headers: Default::default(),
            len: 0,
        };
        let root = Root::open("/".as_ref(), std::time::Duration::ZERO).unwrap();
        let addr = "127.0.0.1:1".parse().unwrap();
        let mut peer = Peer::plain(addr, addr);
        let plain = case_view(None, &head, &peer, &root, 0, &Vec::new());
        assert_eq!(plain.var(b"HTTPS"), None);
        peer.tls = Some(Box::new(Tls { sni: None }));
        let tls = case_view(None, &head, &peer, &root, 0, &Vec::new());
        assert_eq!(tls.var(b"HTTPS"), Some(&b"on"[..]));
    }

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
