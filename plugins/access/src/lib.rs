//! Case `access`: a client address that the rules for the path refuse gets 403, as with
//! nginx's allow/deny: the rules are read in order, and the first one that names the address
//! decides; an address no rule names is let through.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use plugin_api::helpers::{client_ip, Prefix};
use plugin_api::{Case, Host, Level, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;
use std::net::IpAddr;

/// Settings of `[plugins.access]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    rules: Vec<RuleConf>,
}

/// One `[[plugins.access.rules]]` table: nginx's `allow` lines, then its `deny` lines, for
/// one prefix.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConf {
    prefix: String,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

/// A checked rule.
struct Rule {
    prefix: Prefix,
    /// The prefix as written, for messages.
    shown: String,
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Rule {
    /// `Some(true)`: allowed, `Some(false)`: denied, `None`: this rule does not name the
    /// address for this path, so the next one is asked.
    fn decides(&self, path: &str, ip: IpAddr) -> Option<bool> {
        if !self.prefix.matches(path) {
            None
        } else if self.allow.iter().any(|n| n.contains(&ip)) {
            Some(true)
        } else if self.deny.iter().any(|n| n.contains(&ip)) {
            Some(false)
        } else {
            None
        }
    }

    /// Do the two rules cover some path in common (one prefix lies within the other)?
    fn overlaps(&self, other: &Rule) -> bool {
        let bare = |r: &Rule| r.shown.trim_end_matches('/').to_string();
        self.prefix.matches(&bare(other)) || other.prefix.matches(&bare(self))
    }
}

/// An address, a network (`10.0.0.0/8`, `2001:db8::/32`) or `all`. A network with bits set
/// past its length, or written as IPv4-mapped IPv6, is refused with the form to write.
fn networks(s: &str) -> Result<Vec<IpNet>, String> {
    if s == "all" {
        return Ok(vec![Ipv4Net::default().into(), Ipv6Net::default().into()]);
    }
    let net = s
        .parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("{s:?} is not an address, a network like \"10.0.0.0/8\", or \"all\"")
        })?;
    if net != net.trunc() {
        return Err(format!(
            "{s:?} has bits set past its length: write \"{}\"",
            net.trunc()
        ));
    }
    if let IpNet::V6(v6) = net {
        let mapped = v6
            .network()
            .to_ipv4_mapped()
            .filter(|_| v6.prefix_len() >= 96);
        if let Some(v4) = mapped {
            let ipv4 = Ipv4Net::new(v4, v6.prefix_len() - 96).map_err(|e| e.to_string())?;
            return Err(format!(
                "{s:?} is IPv4 written as IPv6: write \"{ipv4}\" (IPv4 clients are always matched as IPv4)"
            ));
        }
    }
    Ok(vec![net])
}

/// Check one rule's table; `n` counts from 1, as the tables appear in server.toml.
fn rule(n: usize, c: RuleConf) -> Result<Rule, String> {
    let at = format!("rule {n} (prefix = {:?})", c.prefix);
    let list = |key: &str, items: &[String]| -> Result<Vec<IpNet>, String> {
        let nets: Result<Vec<Vec<IpNet>>, String> = items.iter().map(|s| networks(s)).collect();
        nets.map(|v| v.concat())
            .map_err(|e| format!("{at}: {key}: {e}"))
    };
    let r = Rule {
        prefix: Prefix::new(&c.prefix).map_err(|e| format!("{at}: {e}"))?,
        allow: list("allow", &c.allow)?,
        deny: list("deny", &c.deny)?,
        shown: c.prefix,
    };
    if let Some((d, a)) = shadowed_deny(&r) {
        return Err(format!(
            "{at}: deny {d} can never apply: allow {a} covers it, and a rule looks at its allow list first\n  fix: put deny = [\"{d}\"] in a rule of its own with the same prefix, before this one (the first rule that names an address decides, as nginx's first matching allow or deny line does)"
        ));
    }
    if r.allow.is_empty() && r.deny.is_empty() {
        return Err(format!(
            "{at}: allow and deny are both empty\n  expected: addresses or networks in allow = [...] and/or deny = [...], like allow = [\"127.0.0.1\"], deny = [\"all\"]"
        ));
    }
    Ok(r)
}

/// A deny entry within one of the same rule's allow entries (it would never decide), and
/// that allow entry. `all` is two networks, so `deny = ["all"]` is never shadowed but by
/// `allow = ["all"]`.
fn shadowed_deny(r: &Rule) -> Option<(IpNet, IpNet)> {
    r.deny.iter().find_map(|d| {
        let covered = r.allow.iter().find(|a| a.contains(d))?;
        Some((*d, *covered))
    })
}

/// Refuse a rule that allows some addresses when nothing after it denies anyone on its
/// paths: it would change nothing, and its author surely meant "only these".
fn check_allow_only(rules: &[Rule]) -> Result<(), String> {
    for (i, r) in rules.iter().enumerate() {
        let denied_later = rules[i..]
            .iter()
            .any(|later| !later.deny.is_empty() && later.overlaps(r));
        if !denied_later {
            return Err(format!(
                "rule {} (prefix = {:?}) allows some addresses, but no rule denies anyone under that prefix, so every address is let in anyway (as in nginx, an address no rule names is allowed)\n  fix: add deny = [\"all\"] to that rule to let in only the addresses it allows",
                i + 1,
                r.shown
            ));
        }
    }
    Ok(())
}

/// Refuse clients by address, per path prefix.
pub struct Access {
    rules: Vec<Rule>,
    host: Host,
}

impl Access {
    /// The rule that denies this request, if one does.
    fn denied_by(&self, req: &Request) -> Option<&Rule> {
        let path = req.path();
        let Some(ip) = client_ip(req) else {
            // No address to judge: closed wherever a rule applies.
            return self.rules.iter().find(|r| r.prefix.matches(&path));
        };
        self.rules
            .iter()
            .find_map(|r| r.decides(&path, ip).map(|allowed| (r, allowed)))
            .and_then(|(r, allowed)| (!allowed).then_some(r))
    }
}

impl Case for Access {
    const NAME: &'static CStr = c"access";
    // Every method: a refused address may not POST either.
    const ALLOW: &'static CStr = c"*";

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        if c.rules.is_empty() {
            return Err("rules = []: expected at least one [[plugins.access.rules]] table with a prefix and allow and/or deny".into());
        }
        let rules = c
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| rule(i + 1, r))
            .collect::<Result<Vec<_>, _>>()?;
        check_allow_only(&rules)?;
        Ok(Access { rules, host })
    }

    fn test(&self, req: &Request) -> bool {
        self.denied_by(req).is_some()
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        let Some(rule) = self.denied_by(req) else {
            return Outcome::Declined;
        };
        let msg = format!(
            "client {} denied for {} by the rule for {:?}",
            req.client_addr(),
            req.path(),
            rule.shown
        );
        self.host.log(Level::Info, &msg);
        resp.error(403, "this page is not for this address").into()
    }
}

plugin_api::export_case!(Access);

#[cfg(test)]
mod tests {
    use super::Access;
    use plugin_api::testing::{TestCase, TestRequest};

    fn case(rules: &str) -> TestCase<Access> {
        TestCase::<Access>::create(&format!(r#"{{"rules": [{rules}]}}"#)).unwrap()
    }

    fn refused(rules: &str) -> String {
        TestCase::<Access>::create(&format!(r#"{{"rules": [{rules}]}}"#))
            .err()
            .unwrap_or_default()
    }

    fn denied(c: &TestCase<Access>, path: &str, client: &str) -> bool {
        c.test(&TestRequest::get(path).client(client, 4000))
    }

    #[test]
    fn only_the_allowed_addresses_reach_a_prefix_with_deny_all() {
        let c = case(r#"{"prefix": "/status", "allow": ["127.0.0.0/8", "::1"], "deny": ["all"]}"#);
        assert!(!denied(&c, "/status", "127.0.0.1"));
        assert!(!denied(&c, "/status/x", "127.9.9.9"));
        assert!(!denied(&c, "/status", "::1"));
        assert!(denied(&c, "/status", "192.0.2.7"));
        assert!(denied(&c, "/status", "2001:db8::7"));
        assert!(!denied(&c, "/statuses", "192.0.2.7"), "another path");
        assert!(!denied(&c, "/", "192.0.2.7"));
    }

    #[test]
    fn ipv4_mapped_clients_are_matched_as_ipv4() {
        let c = case(r#"{"prefix": "/", "allow": ["10.0.0.0/8"], "deny": ["all"]}"#);
        assert!(!denied(&c, "/a", "::ffff:10.1.2.3"));
        assert!(denied(&c, "/a", "::ffff:192.0.2.7"));
    }

    #[test]
    fn the_first_rule_that_names_the_address_decides() {
        // nginx: deny 10.1.0.0/16; allow 10.0.0.0/8; deny all;
        let c = case(
            r#"{"prefix": "/admin/", "deny": ["10.1.0.0/16"]},
               {"prefix": "/admin/", "allow": ["10.0.0.0/8"], "deny": ["all"]}"#,
        );
        assert!(denied(&c, "/admin/x", "10.1.2.3"));
        assert!(!denied(&c, "/admin/x", "10.2.3.4"));
        assert!(denied(&c, "/admin/x", "192.0.2.7"));
        // An open part inside a closed one: listed first.
        let c = case(
            r#"{"prefix": "/admin/public/", "allow": ["all"]},
               {"prefix": "/admin/", "allow": ["127.0.0.1"], "deny": ["all"]}"#,
        );
        assert!(!denied(&c, "/admin/public/a", "192.0.2.7"));
        assert!(denied(&c, "/admin/private", "192.0.2.7"));
    }

    #[test]
    fn an_address_no_rule_names_is_let_through() {
        let c = case(r#"{"prefix": "/", "deny": ["192.0.2.0/24"]}"#);
        assert!(denied(&c, "/x", "192.0.2.7"));
        assert!(!denied(&c, "/x", "198.51.100.1"));
    }

    #[test]
    fn a_denied_address_gets_403_and_a_log_line() {
        let c = case(r#"{"prefix": "/", "deny": ["all"]}"#);
        let r = c.act(&TestRequest::get("/x").client("192.0.2.7", 1));
        assert_eq!(r.error.as_ref().map(|e| e.0), Some(403));
        let log = format!("{:?}", c.log());
        assert!(
            log.contains("client 192.0.2.7 denied for /x by the rule for \\\"/\\\""),
            "{log}"
        );
    }

    #[test]
    fn bad_rules_stop_start_up_with_what_to_write() {
        let e = refused(r#"{"prefix": "/a", "allow": ["10.0.0.1/8"], "deny": ["all"]}"#);
        assert!(e.contains("rule 1 (prefix = \"/a\"): allow: \"10.0.0.1/8\" has bits set past its length: write \"10.0.0.0/8\""), "{e}");
        let e = refused(r#"{"prefix": "/a", "deny": ["::ffff:10.0.0.0/104"]}"#);
        assert!(e.contains("write \"10.0.0.0/8\""), "{e}");
        let e = refused(r#"{"prefix": "/a", "deny": ["localhost"]}"#);
        assert!(e.contains("is not an address, a network like"), "{e}");
        let e = refused(r#"{"prefix": "/a"}"#);
        assert!(e.contains("allow and deny are both empty"), "{e}");
        let e = refused(r#"{"prefix": "a", "deny": ["all"]}"#);
        assert!(e.contains("must start with '/'"), "{e}");
        let e = refused(r#"{"prefix": "/a", "deny": ["all"], "order": 1}"#);
        assert!(e.contains("unknown field `order`"), "{e}");
        assert!(refused("").contains("expected at least one"));
    }

    /// nginx reads `deny 127.0.0.2; allow 127.0.0.0/8;` in order; here a rule's allow list
    /// comes first, so such a deny would silently never apply: refused, with the fix.
    #[test]
    fn a_deny_inside_the_same_rules_allow_is_refused_with_the_fix() {
        let e = refused(r#"{"prefix": "/a", "deny": ["127.0.0.2"], "allow": ["127.0.0.0/8"]}"#);
        assert!(
            e.contains("rule 1 (prefix = \"/a\"): deny 127.0.0.2/32 can never apply: allow 127.0.0.0/8 covers it"),
            "{e}"
        );
        assert!(
            e.contains("in a rule of its own with the same prefix, before this one"),
            "{e}"
        );
        // The fix works: the first rule denies 127.0.0.2, the second lets the rest in.
        let c = case(
            r#"{"prefix": "/a", "deny": ["127.0.0.2"]}, {"prefix": "/a", "allow": ["127.0.0.0/8"], "deny": ["all"]}"#,
        );
        assert!(denied(&c, "/a/x", "127.0.0.2"));
        assert!(!denied(&c, "/a/x", "127.0.0.3"));
        assert!(denied(&c, "/a/x", "10.0.0.1"));
    }

    #[test]
    fn an_allow_with_nothing_denied_after_it_is_refused() {
        let e = refused(r#"{"prefix": "/status", "allow": ["127.0.0.1"]}"#);
        assert!(
            e.contains(
                "rule 1 (prefix = \"/status\") allows some addresses, but no rule denies anyone"
            ),
            "{e}"
        );
        assert!(e.contains("fix: add deny = [\"all\"]"), "{e}");
        // A deny for another path does not count.
        let e = refused(
            r#"{"prefix": "/status", "allow": ["127.0.0.1"]}, {"prefix": "/admin", "deny": ["all"]}"#,
        );
        assert!(e.contains("rule 1"), "{e}");
        // A deny after it under the same prefix does.
        case(r#"{"prefix": "/status", "allow": ["127.0.0.1"]}, {"prefix": "/", "deny": ["all"]}"#);
    }
}
