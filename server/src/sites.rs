//! Which site answers a request: the host it names (an absolute-form target's authority, else
//! Host; with TLS, also the SNI name) looked up among the sites' server names, unknown hosts
//! going to the default site; and a site's `https_redirect` of plain-HTTP requests.

use crate::chain::Chain;
use crate::config::{Config, ServerName};
use crate::conn::Peer;
use crate::error_page;
use crate::errors::RequestError;
use crate::http::Head;
use crate::reply::Reply;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Every site's chain and the names that lead to it. Swapped whole on reload.
pub struct Sites {
    /// The default site first, then the others in the file's order.
    chains: Vec<Arc<Chain>>,
    /// Exact names to the index of their site.
    exact: HashMap<String, usize>,
    /// Wildcard suffixes (`.example.com`) and their site, longest first, as nginx prefers
    /// the longest matching wildcard.
    wildcards: Vec<(String, usize)>,
}

impl Sites {
    /// Load every site's chain (each loads its own instances of its plugins, with its own
    /// settings); the first failure is returned.
    pub fn load(config: &Config) -> Result<Sites, String> {
        let total = config.sites.iter().map(|s| s.cases.len()).sum::<usize>();
        let acted: Arc<[AtomicU64]> = (0..total).map(|_| AtomicU64::new(0)).collect();
        let (mut chains, mut base) = (Vec::new(), 0);
        for site in &config.sites {
            let chain = Chain::load(config, site, (&acted, base))
                .map_err(|e| in_site(config, &site.label, e))?;
            base += site.cases.len();
            chains.push(Arc::new(chain));
        }
        let sites = Sites::index(chains);
        crate::stats::get().use_chain((sites.counted_names(), acted));
        Ok(sites)
    }

    /// The lookup tables over loaded chains (names were checked unique by the config).
    fn index(chains: Vec<Arc<Chain>>) -> Sites {
        let mut exact = HashMap::new();
        let mut wildcards = Vec::new();
        for (i, chain) in chains.iter().enumerate() {
            for name in &chain.site.names {
                match name {
                    ServerName::Exact(n) => {
                        exact.insert(n.clone(), i);
                    }
                    ServerName::Wildcard(s) => wildcards.push((s.clone(), i)),
                }
            }
        }
        wildcards.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Sites {
            chains,
            exact,
            wildcards,
        }
    }

    /// The chain for a request naming `host` (the Host field value, or an absolute-form
    /// target's authority: see [`request_host`]) on a connection whose TLS handshake named
    /// `sni`. Without SNI, the host alone decides; with both, they must lead to the same
    /// site, else 421 Misdirected Request (RFC 9110 §15.5.20), as Caddy's `strict_sni_host`
    /// does. A name no site has, or none at all, gets the default site.
    pub fn site_for(
        &self,
        host: Option<&[u8]>,
        sni: Option<&str>,
    ) -> Result<Arc<Chain>, RequestError> {
        // One site answers every name: nothing to look up, nothing to disagree.
        if self.chains.len() == 1 {
            return Ok(Arc::clone(&self.chains[0]));
        }
        let by_host = host.map(|h| self.index_of(&normalise(h)));
        let by_sni = sni.map(|s| self.index_of(&normalise(s.as_bytes())));
        let i = match (by_host, by_sni) {
            (Some(h), Some(s)) if h != s => return Err(RequestError::Misdirected),
            (Some(i), _) | (None, Some(i)) => i,
            (None, None) => 0,
        };
        Ok(Arc::clone(&self.chains[i]))
    }

    /// The site for hosts no site names.
    pub fn default_chain(&self) -> Arc<Chain> {
        Arc::clone(&self.chains[0])
    }

    /// Every site's chain, the default first.
    pub fn chains(&self) -> &[Arc<Chain>] {
        &self.chains
    }

    /// The name of the case at `index` of the process's case list (every site's chain, one
    /// after the other), for the watchdog.
    pub fn case_name(&self, index: usize) -> Option<String> {
        let names = self.counted_names();
        names.get(index).cloned()
    }

    /// Case names in the process's order: as they are with one site; with several,
    /// `hello@example.com` (the site's first name, or `default`).
    fn counted_names(&self) -> Vec<String> {
        let several = self.chains.len() > 1;
        let mut out = Vec::new();
        for chain in &self.chains {
            for case in &chain.cases {
                out.push(match several {
                    true => format!("{}@{}", case.name, chain.site_id()),
                    false => case.name.clone(),
                });
            }
        }
        out
    }

    /// A normalised host's site: exact name, else the longest wildcard, else the default.
    fn index_of(&self, host: &str) -> usize {
        if let Some(&i) = self.exact.get(host) {
            return i;
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| wildcard_matches(suffix, host))
            .map_or(0, |&(_, i)| i)
    }
}

/// `*.example.com` (kept as `.example.com`) matches one or more labels in front of it, never
/// `example.com` itself, as nginx's leading wildcard.
pub fn wildcard_matches(suffix: &str, host: &str) -> bool {
    host.len() > suffix.len() && host.ends_with(suffix)
}

/// Does `host` (normalised) name this site?
pub fn names_site(names: &[ServerName], host: &str) -> bool {
    names.iter().any(|n| match n {
        ServerName::Exact(e) => e == host,
        ServerName::Wildcard(s) => wildcard_matches(s, host),
    })
}

/// The host a request names: an absolute-form target's authority (RFC 9112 §3.2.2: the
/// server then ignores Host), else the Host field; `None` without either (HTTP/1.0).
pub fn request_host(head: &Head) -> Option<&[u8]> {
    absolute_authority(&head.target).or_else(|| head.header("host"))
}

/// `http://h:1/x` → `h:1`: the authority of an absolute-form target (userinfo dropped).
pub fn absolute_authority(target: &[u8]) -> Option<&[u8]> {
    let rest = crate::chain::after_scheme(target)?;
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    Some(host)
}

/// A host as sites are looked up by it: lower-case, without the port and a trailing dot.
/// `[::1]:8080` → `[::1]`.
pub fn normalise(host: &[u8]) -> String {
    let text = String::from_utf8_lossy(host).to_ascii_lowercase();
    let name = if text.starts_with('[') {
        match text.find(']') {
            Some(end) => &text[..=end],
            None => &text,
        }
    } else {
        text.rsplit_once(':').map_or(&*text, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                &text
            }
        })
    };
    name.strip_suffix('.').unwrap_or(name).to_string()
}

/// A path (or absolute URL) with good escapes that stays beneath the root: what the chain
/// would not refuse with 400.
fn well_formed(target: &[u8]) -> bool {
    crate::chain::split_target(target)
        .is_some_and(|(path, _)| crate::resolve::normalise(path).is_ok())
}

/// `https_redirect = true` on a plain connection: the same path and query on https, for a
/// host that is one of the site's names (never one the client made up: a host this site
/// does not name, or none, is 421). 301 for GET and HEAD, as nginx's `return 301`; 308 for
/// the other methods, as Caddy's, so a client sends its POST again as a POST with its body
/// (RFC 9110 §15.4.2 lets it turn a 301's POST into a GET). `None`: serve the request.
pub fn https_redirect(chain: &Chain, head: &Head, peer: &Peer) -> Option<Reply> {
    let port = chain.site.https_redirect?;
    if peer.tls.is_some() || head.target == b"*" || !well_formed(&head.target) {
        // A target the chain refuses (400) is not redirected to either.
        return None;
    }
    let host = request_host(head).map(normalise);
    let Some(host) = host.filter(|h| names_site(&chain.site.names, h)) else {
        let why = "this site redirects to https only for its own names";
        return Some(error_page::reply(421, &head.target, why));
    };
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    let mut location = format!("https://{host}{port}").into_bytes();
    location.extend(path_and_query(&head.target));
    let status = match &*head.method {
        "GET" | "HEAD" => 301,
        _ => 308,
    };
    let r = error_page::reply(status, &head.target, "this site is served over https");
    Some(r.header("Location", location))
}

/// The path and query of an origin-form or absolute-form target (`/` when it has none);
/// an empty query keeps its `?` (RFC 3986 §6.2.3), as nginx's and Caddy's redirects do.
fn path_and_query(target: &[u8]) -> Vec<u8> {
    let Some((path, query)) = crate::chain::split_target(target) else {
        return b"/".to_vec();
    };
    let mut before_fragment = target.iter().take_while(|&&b| b != b'#');
    match before_fragment.any(|&b| b == b'?') {
        false => path.to_vec(),
        true => [path, b"?", query].concat(),
    }
}

/// A start-up error of one site's chain, naming the site when there are several.
fn in_site(config: &Config, label: &str, e: String) -> String {
    if config.sites.len() > 1 {
        format!("{label}: {e}")
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerName::{Exact, Wildcard};
    use std::path::Path;

    /// Sites with these names (no cases), the first the default; and the config they share.
    fn sites(names: Vec<Vec<ServerName>>) -> Sites {
        let text = "listen = \"127.0.0.1:0\"\nroot = \"/\"\ncases = [\"a\"]\n";
        let config = Config::from_text(Path::new("/tmp/x.toml"), text, None, None).unwrap();
        let acted: Arc<[AtomicU64]> = Arc::from([]);
        let load = |names| {
            let mut site = config.sites[0].clone();
            (site.names, site.cases) = (names, Vec::new());
            Arc::new(Chain::load(&config, &site, (&acted, 0)).unwrap())
        };
        Sites::index(names.into_iter().map(load).collect())
    }

    /// The index of the site a host and an SNI name lead to.
    fn which(s: &Sites, host: Option<&str>, sni: Option<&str>) -> Result<usize, RequestError> {
        let chain = s.site_for(host.map(str::as_bytes), sni)?;
        Ok(s.chains
            .iter()
            .position(|c| Arc::ptr_eq(c, &chain))
            .unwrap())
    }

    #[test]
    fn sni_and_host_must_name_the_same_site_else_421() {
        let s = sites(vec![
            vec![],
            vec![Exact("a.test".into())],
            vec![Exact("b.test".into()), Wildcard(".b.test".into())],
        ]);
        assert_eq!(which(&s, Some("b.test"), None), Ok(2));
        assert_eq!(which(&s, None, Some("b.test")), Ok(2));
        assert_eq!(which(&s, Some("WWW.b.test:443"), Some("b.test")), Ok(2));
        assert_eq!(which(&s, Some("x.test"), Some("y.test")), Ok(0));
        assert_eq!(which(&s, None, None), Ok(0));
        let misdirected = Err(RequestError::Misdirected);
        assert_eq!(which(&s, Some("a.test"), Some("b.test")), misdirected);
        assert_eq!(which(&s, Some("unknown.test"), Some("a.test")), misdirected);
        assert_eq!(RequestError::Misdirected.status(), 421);
    }

    #[test]
    fn an_exact_name_wins_over_a_wildcard_and_a_longer_wildcard_over_a_shorter() {
        let s = sites(vec![
            vec![],
            vec![Wildcard(".test".into())],
            vec![Wildcard(".b.test".into())],
            vec![Exact("www.b.test".into())],
        ]);
        assert_eq!(which(&s, Some("a.test"), None), Ok(1));
        assert_eq!(which(&s, Some("x.b.test"), None), Ok(2));
        assert_eq!(which(&s, Some("www.b.test"), None), Ok(3));
    }

    #[test]
    fn hosts_normalise_without_port_case_or_trailing_dot() {
        assert_eq!(normalise(b"Example.COM:8080"), "example.com");
        assert_eq!(normalise(b"example.com."), "example.com");
        assert_eq!(normalise(b"example.com.:80"), "example.com");
        assert_eq!(normalise(b"[::1]:8080"), "[::1]");
        assert_eq!(normalise(b"127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn absolute_form_targets_name_their_authority() {
        assert_eq!(
            absolute_authority(b"http://a.test:81/x"),
            Some(&b"a.test:81"[..])
        );
        assert_eq!(
            absolute_authority(b"HTTPS://u@b.test?q"),
            Some(&b"b.test"[..])
        );
        assert_eq!(absolute_authority(b"/x"), None);
        assert_eq!(path_and_query(b"http://a.test"), b"/");
        assert_eq!(path_and_query(b"http://a.test?q"), b"/?q");
        assert_eq!(path_and_query(b"http://a.test/p?q=1"), b"/p?q=1");
        assert_eq!(path_and_query(b"/p?q"), b"/p?q");
    }

    #[test]
    fn a_wildcard_matches_labels_in_front_only() {
        assert!(wildcard_matches(".example.com", "www.example.com"));
        assert!(wildcard_matches(".example.com", "a.b.example.com"));
        assert!(!wildcard_matches(".example.com", "example.com"));
        assert!(!wildcard_matches(".example.com", "badexample.com"));
    }
}
