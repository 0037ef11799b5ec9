//! Case `headers`: every answer (files, scripts, the host's own pages) gets the headers the
//! operator asked for: a security preset, cache lifetimes, CORS, and rules that set, append
//! or remove headers by path and status. CORS preflights are answered here too, so put it
//! before the cases that serve.

mod conf;
mod cors;
mod rules;

use conf::Conf;
use cors::Cors;
use plugin_api::{Case, Filtered, Head, Host, Outcome, Request, Response, Settings};
use rules::{Cache, Rule};
use std::ffi::CStr;

/// Headers by rule.
pub struct Headers {
    security: bool,
    hsts: Option<String>,
    cache: Option<Cache>,
    cors: Option<Cors>,
    rules: Vec<Rule>,
}

/// The security preset: no MIME sniffing, no full URLs leaked to other sites, no framing
/// by other sites (`X-Frame-Options` for old browsers, CSP `frame-ancestors` for current
/// ones). Each is added only when the answer has none (a script's own policy wins).
const SECURITY: [(&str, &str); 3] = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
];
const FRAME_ANCESTORS: (&str, &str) = ("Content-Security-Policy", "frame-ancestors 'self'");

/// Sent over HTTPS only: RFC 6797 §7.2 forbids it over plain HTTP.
pub const STS: &str = "Strict-Transport-Security";

/// Did the request come over TLS (the host's `HTTPS` variable, as for CGI)?
fn secure(req: &Request) -> bool {
    req.var("HTTPS") == Some(b"on")
}

impl Headers {
    /// The preset, for headers the answer does not set itself.
    fn security(&self, head: &mut Head) {
        if !self.security {
            return;
        }
        // Appended when absent: the same as set, without the host looking for one to replace.
        let mut own_frame_policy = false;
        for (name, value) in SECURITY {
            if head.has(name) {
                own_frame_policy = name == "X-Frame-Options";
            } else {
                let _ = head.append(name, value);
            }
        }
        // Browsers follow frame-ancestors over X-Frame-Options: ours would turn the
        // answer's own `X-Frame-Options: DENY` into 'self'.
        let (name, value) = FRAME_ANCESTORS;
        if !own_frame_policy && !head.has(name) {
            let _ = head.append(name, value);
        }
    }

    /// The HSTS policy, over HTTPS, for answers that do not carry their own.
    fn hsts(&self, req: &Request, head: &mut Head) {
        if let Some(policy) = &self.hsts {
            if secure(req) && !head.has(STS) {
                let _ = head.append(STS, policy);
            }
        }
    }

    /// A lifetime for successful GET/HEAD answers that do not carry their own.
    fn cache(&self, req: &Request, path: &str, head: &mut Head) {
        let Some(cache) = &self.cache else {
            return;
        };
        let fetch = matches!(req.method(), "GET" | "HEAD");
        if !fetch || !(200..300).contains(&head.status()) || head.has("cache-control") {
            return;
        }
        if let Some(value) = cache.control(path) {
            let _ = head.append("Cache-Control", value);
        }
    }

    /// The rules that match, in order (a `Strict-Transport-Security` they add, over HTTPS
    /// only).
    fn rules(&self, req: &Request, path: &str, head: &mut Head) {
        if self.rules.is_empty() {
            return;
        }
        let (status, secure) = (head.status(), secure(req));
        for rule in self.rules.iter().filter(|r| r.matches(path, status)) {
            rule.edits.apply(head, secure);
        }
    }
}

impl Case for Headers {
    const NAME: &'static CStr = c"headers";
    // Only CORS preflights are answered here.
    const ALLOW: &'static CStr = c"OPTIONS";
    const FILTERS: bool = true;

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        let rules = c
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.build(i + 1))
            .collect::<Result<_, _>>()?;
        Ok(Headers {
            security: c.security,
            hsts: c.hsts.as_deref().map(conf::hsts).transpose()?,
            cache: c.cache.map(|c| c.build()).transpose()?,
            cors: c.cors.map(|c| c.build()).transpose()?,
            rules,
        })
    }

    fn test(&self, req: &Request) -> bool {
        self.cors.as_ref().is_some_and(|c| c.is_preflight(req))
    }

    /// 204 with what the origin may do (RFC 9110 §15.3.5: no content).
    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        let Some(cors) = &self.cors else {
            return Outcome::Declined;
        };
        let mut r = resp.status(204);
        for (name, value) in cors.preflight_headers(req) {
            r = r.and_then(|()| resp.header(name, &value));
        }
        r.into()
    }

    fn filter(&self, req: &Request, head: &mut Head) -> Filtered {
        let path = req.path();
        self.security(head);
        self.hsts(req, head);
        self.cache(req, &path, head);
        if let Some(cors) = &self.cors {
            cors.filter(req, head);
        }
        self.rules(req, &path, head);
        Filtered::Pass
    }
}

plugin_api::export_case!(Headers);

#[cfg(test)]
mod tests;
