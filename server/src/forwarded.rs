//! Behind a trusted reverse proxy: the client address and scheme its `X-Forwarded-For` and
//! `X-Forwarded-Proto` name stand for the connection's, as nginx's realip module
//! (`set_real_ip_from`, `real_ip_recursive on`) and Caddy's `trusted_proxies` do.

use crate::conn::{Peer, Tls};
use crate::http::Head;
use ipnet::IpNet;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

/// The proxies whose forwarded fields are believed (`trusted_proxies`); none by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trusted(Vec<IpNet>);

impl Trusted {
    /// Read `trusted_proxies` from `file`: addresses and networks (`10.0.0.0/8`).
    pub fn parse(file: &str, written: &[String]) -> Result<Trusted, String> {
        let net = |s: &String| {
            let net = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    format!("{file}: trusted_proxies entry {s:?} is not an address or a network\n  expected: the reverse proxies in front of this server, e.g. trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]")
                })?;
            // Peers are matched as IPv4 when they are IPv4 (mapped or not): a mapped
            // network would never match.
            match net {
                IpNet::V6(v6) if v6.network().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 => {
                    Err(format!("{file}: trusted_proxies entry {s:?} is IPv4 written as IPv6\n  fix: write the IPv4 address or network (IPv4 peers are always matched as IPv4)"))
                }
                net => Ok(net),
            }
        };
        written
            .iter()
            .map(net)
            .collect::<Result<_, _>>()
            .map(Trusted)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// The peer a request is answered for: the connection's own, unless it comes from a
/// trusted proxy; then the client is the last address of `X-Forwarded-For` (all its lines,
/// in order) that is not a trusted proxy itself, and `X-Forwarded-Proto: https` makes the
/// request an HTTPS one (`HTTPS=on` for scripts, HSTS, no `https_redirect`), `http` a plain
/// one. A list with something that is no address in the part read is not believed.
#[inline]
pub fn peer_for<'a>(trusted: &Trusted, peer: &'a Peer, head: &Head) -> Cow<'a, Peer> {
    if trusted.0.is_empty() {
        return Cow::Borrowed(peer);
    }
    forwarded(trusted, peer, head)
}

/// `peer_for` when some proxy is trusted.
fn forwarded<'a>(trusted: &Trusted, peer: &'a Peer, head: &Head) -> Cow<'a, Peer> {
    if !trusted.trusts(peer.client.ip()) {
        return Cow::Borrowed(peer);
    }
    let client = client(trusted, head);
    let https = https(head);
    if client.is_none() && https.is_none() {
        return Cow::Borrowed(peer);
    }
    let tls = match https {
        Some(true) => Some(
            peer.tls
                .clone()
                .unwrap_or_else(|| Box::new(Tls { sni: None })),
        ),
        Some(false) => None,
        None => peer.tls.clone(),
    };
    Cow::Owned(Peer {
        client: client.map_or(peer.client, |ip| SocketAddr::new(ip, peer.client.port())),
        local: peer.local,
        tls,
    })
}

/// The first address from the right of `X-Forwarded-For` that is not a trusted proxy (the
/// leftmost when all are).
fn client(trusted: &Trusted, head: &Head) -> Option<IpAddr> {
    let lines: Vec<&[u8]> = head.all("x-forwarded-for").collect();
    let items = lines.iter().rev().flat_map(|l| l.rsplit(|&b| b == b','));
    let mut found = None;
    for item in items.map(<[u8]>::trim_ascii) {
        let ip = address(item)?;
        found = Some(ip);
        if !trusted.trusts(ip) {
            break;
        }
    }
    found
}

/// `203.0.113.7`, `2001:db8::1`, and with a port as some proxies add it
/// (`203.0.113.7:41234`, `[2001:db8::1]:41234`).
fn address(item: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(item).ok()?;
    let ip = text.parse::<IpAddr>();
    ip.or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// `X-Forwarded-Proto`'s last value: `Some(true)` for https, `Some(false)` for http.
fn https(head: &Head) -> Option<bool> {
    let last = head.all("x-forwarded-proto").last()?;
    let value = last.rsplit(|&b| b == b',').next()?.trim_ascii();
    match value {
        v if v.eq_ignore_ascii_case(b"https") => Some(true),
        v if v.eq_ignore_ascii_case(b"http") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(fields: &str) -> Head {
        let raw = format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n");
        let limits = crate::config::Limits::default();
        crate::http::parse_head(raw.as_bytes(), &limits)
            .unwrap()
            .unwrap()
    }

    fn seen(trusted: &[&str], from: &str, fields: &str) -> (String, bool) {
        let list: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
        let trusted = Trusted::parse("f", &list).unwrap();
        let peer = Peer::plain(from.parse().unwrap(), "127.0.0.1:80".parse().unwrap());
        let p = peer_for(&trusted, &peer, &head(fields));
        (p.client.ip().to_string(), p.tls.is_some())
    }

    #[test]
    fn only_a_trusted_proxy_is_believed_and_the_last_untrusted_hop_is_the_client() {
        let xff = "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.0.0.2\r\n";
        let nets = ["127.0.0.1", "10.0.0.0/8"];
        assert_eq!(seen(&nets, "127.0.0.1:5", xff).0, "203.0.113.7");
        assert_eq!(seen(&[], "127.0.0.1:5", xff).0, "127.0.0.1");
        assert_eq!(seen(&nets, "198.51.100.1:5", xff).0, "198.51.100.1");
        // Several lines are one list; a port is dropped; all trusted: the leftmost.
        let two = "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: [2001:db8::1]:4000\r\n";
        assert_eq!(seen(&nets, "127.0.0.1:5", two).0, "2001:db8::1");
        let all = "X-Forwarded-For: 10.1.1.1, 10.0.0.2\r\n";
        assert_eq!(seen(&nets, "127.0.0.1:5", all).0, "10.1.1.1");
        // Garbage in the part read: nothing is believed.
        let bad = "X-Forwarded-For: 203.0.113.7, unknown\r\n";
        assert_eq!(seen(&nets, "127.0.0.1:5", bad).0, "127.0.0.1");
        // An IPv4 client of a dual-stack listener is matched as IPv4.
        assert_eq!(seen(&nets, "[::ffff:127.0.0.1]:5", xff).0, "203.0.113.7");
    }

    #[test]
    fn x_forwarded_proto_from_a_trusted_proxy_says_whether_the_request_is_https() {
        let nets = ["127.0.0.1"];
        assert!(seen(&nets, "127.0.0.1:5", "X-Forwarded-Proto: HTTPS\r\n").1);
        assert!(!seen(&nets, "127.0.0.1:5", "X-Forwarded-Proto: http\r\n").1);
        assert!(!seen(&[], "127.0.0.1:5", "X-Forwarded-Proto: https\r\n").1);
        assert!(!seen(&nets, "127.0.0.2:5", "X-Forwarded-Proto: https\r\n").1);
        // Over TLS from the proxy: `http` makes the request plain; no field keeps the
        // connection's own TLS and its SNI.
        let trusted = Trusted::parse("f", &["127.0.0.1".into()]).unwrap();
        let mut peer = Peer::plain(
            "127.0.0.1:5".parse().unwrap(),
            "127.0.0.1:443".parse().unwrap(),
        );
        peer.tls = Some(Box::new(Tls {
            sni: Some("a.test".into()),
        }));
        let plain = peer_for(&trusted, &peer, &head("X-Forwarded-Proto: http\r\n"));
        assert!(plain.tls.is_none());
        let kept = peer_for(&trusted, &peer, &head("X-Forwarded-For: 203.0.113.7\r\n"));
        assert_eq!(kept.sni(), Some("a.test"));
    }

    #[test]
    fn a_list_entry_that_is_no_address_stops_start_up() {
        let e = Trusted::parse("s.toml", &["10.0.0.0/8".into(), "proxy.local".into()]);
        assert!(e.unwrap_err().contains("\"proxy.local\" is not an address"));
        let e = Trusted::parse("s.toml", &["::ffff:10.0.0.0/104".into()]);
        assert!(e.unwrap_err().contains("is IPv4 written as IPv6"));
    }
}
