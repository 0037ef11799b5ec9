//! Cross-origin resource sharing (the Fetch standard's CORS protocol): which origins may
//! read answers, the preflight's answer, and the headers every answer under the CORS paths
//! gets.

use crate::conf::{is_token, CorsConf};
use plugin_api::helpers::Prefix;
use plugin_api::{Head, Request};

/// The checked `[plugins.headers.cors]` table.
pub struct Cors {
    /// `None`: any origin (`*`).
    origins: Option<Vec<String>>,
    methods: String,
    headers: String,
    expose: String,
    credentials: bool,
    max_age: u32,
    paths: Vec<Prefix>,
}

/// Browsers cap a preflight's cache at a day (Firefox) or two hours (Chromium).
const MAX_AGE_CAP: u32 = 86400;

impl Cors {
    pub fn new(c: CorsConf) -> Result<Cors, String> {
        let origins = origins(&c.origins, c.credentials)?;
        let methods = tokens("cors.methods", &c.methods, false)?;
        let headers = tokens("cors.headers", &c.headers, !c.credentials)?;
        let expose = tokens("cors.expose", &c.expose, !c.credentials)?;
        if c.max_age > MAX_AGE_CAP {
            return Err(format!(
                "cors.max_age = {}: browsers keep a preflight at most {MAX_AGE_CAP} seconds; expected 0-{MAX_AGE_CAP}",
                c.max_age
            ));
        }
        let paths = c
            .paths
            .iter()
            .map(|p| Prefix::new(p).map_err(|e| format!("cors.paths: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Cors {
            origins,
            methods,
            headers,
            expose,
            credentials: c.credentials,
            max_age: c.max_age,
            paths,
        })
    }

    fn covers(&self, req: &Request) -> bool {
        let path = req.path();
        self.paths.iter().any(|p| p.matches(&path))
    }

    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`, under
    /// the CORS paths.
    pub fn is_preflight(&self, req: &Request) -> bool {
        req.method() == "OPTIONS"
            && req.header("origin").is_some()
            && req.header("access-control-request-method").is_some()
            && self.covers(req)
    }

    /// The `Access-Control-Allow-Origin` value for this request's `Origin`, if allowed.
    fn allow_origin(&self, req: &Request) -> Option<String> {
        let origin = std::str::from_utf8(req.header("origin")?).ok()?;
        match &self.origins {
            None => Some("*".into()),
            Some(list) => list.iter().any(|o| o == origin).then(|| origin.into()),
        }
    }

    /// The preflight's answer headers: the allowed methods, headers and lifetime, when the
    /// origin is allowed; none otherwise, so the browser refuses the real request.
    pub fn preflight_headers(&self, req: &Request) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.origins.is_some() {
            out.push(("Vary", "Origin".into()));
        }
        let Some(origin) = self.allow_origin(req) else {
            return out;
        };
        out.push(("Access-Control-Allow-Origin", origin));
        out.push(("Access-Control-Allow-Methods", self.methods.clone()));
        if !self.headers.is_empty() {
            out.push(("Access-Control-Allow-Headers", self.headers.clone()));
        }
        out.push(("Access-Control-Max-Age", self.max_age.to_string()));
        if self.credentials {
            out.push(("Access-Control-Allow-Credentials", "true".into()));
        }
        out
    }

    /// Every answer under the CORS paths: `Vary: Origin` (unless any origin is allowed,
    /// when the answer does not depend on it), and for an allowed `Origin` the headers that
    /// let its scripts read the answer.
    pub fn filter(&self, req: &Request, head: &mut Head) {
        if !self.covers(req) {
            return;
        }
        if self.origins.is_some() {
            let _ = head.vary("Origin");
        }
        let Some(origin) = self.allow_origin(req) else {
            return;
        };
        let _ = head.set("Access-Control-Allow-Origin", &origin);
        if self.credentials {
            let _ = head.set("Access-Control-Allow-Credentials", "true");
        }
        if !self.expose.is_empty() {
            let _ = head.set("Access-Control-Expose-Headers", &self.expose);
        }
    }
}

/// `["*"]` for any origin, else serialised origins (`scheme://host[:port]`, no path).
fn origins(list: &[String], credentials: bool) -> Result<Option<Vec<String>>, String> {
    if list.iter().any(|o| o == "*") {
        if list.len() > 1 {
            return Err("cors.origins: \"*\" means any origin; list it alone".into());
        }
        if credentials {
            return Err(
                "cors.origins = [\"*\"] with credentials = true: browsers refuse a wildcard \
                 with credentials; list the origins"
                    .into(),
            );
        }
        return Ok(None);
    }
    if list.is_empty() {
        return Err(
            "cors.origins is empty; list origins like \"https://example.com\", or \"*\"".into(),
        );
    }
    for o in list {
        origin(o)?;
    }
    Ok(Some(list.to_vec()))
}

/// One origin as browsers send it: lower-case scheme and host, an optional port, no path.
fn origin(o: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "cors.origins: {o:?} is not an origin; expected scheme://host[:port] with no path or \
             trailing '/', like \"https://example.com\" or \"http://localhost:8080\""
        )
    };
    let (scheme, rest) = o.split_once("://").ok_or_else(bad)?;
    let host = rest.rsplit_once(':').map_or(
        rest,
        |(h, port)| {
            if port.parse::<u16>().is_ok() {
                h
            } else {
                ""
            }
        },
    );
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.[]:".contains(&b));
    let scheme_ok = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_lowercase());
    if host_ok && scheme_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A comma-separated list of tokens; `*` allowed alone where `star` says.
fn tokens(key: &str, list: &[String], star: bool) -> Result<String, String> {
    for t in list {
        if t == "*" && star && list.len() == 1 {
            continue;
        }
        if t == "*" {
            return Err(format!(
                "{key}: \"*\" is a wildcard only alone and without credentials; list the names"
            ));
        }
        if !is_token(t) {
            return Err(format!("{key}: {t:?} is not a method or header name"));
        }
    }
    Ok(list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_as_browsers_send_them() {
        for good in [
            "https://example.com",
            "http://localhost:8080",
            "http://[::1]:3000",
        ] {
            assert!(origin(good).is_ok(), "{good}");
        }
        for bad in [
            "example.com",
            "https://example.com/",
            "https://Example.com",
            "https://a.com/path",
            "https://a.com:port",
            "://a",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_stands_alone_and_never_with_credentials() {
        assert!(origins(&["*".into()], false).unwrap().is_none());
        assert!(origins(&["*".into(), "https://a.com".into()], false).is_err());
        let e = origins(&["*".into()], true).unwrap_err();
        assert!(e.contains("credentials"), "{e}");
        assert!(tokens("cors.headers", &["*".into()], true).is_ok());
        assert!(tokens("cors.headers", &["*".into()], false).is_err());
        assert!(tokens("cors.methods", &["GET".into(), "BAD METHOD".into()], false).is_err());
    }
}
