//! The `[plugins.headers]` table as written, and the checks that turn it into rules: every
//! refusal says which key, what was found and what is expected.

use crate::cors::Cors;
use crate::rules::{Cache, Edits, PathMatch, Rule, StatusMatch};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The settings, as the operator writes them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conf {
    /// Add the security preset (nosniff, referrer policy, frame-ancestors) to every answer.
    #[serde(default)]
    pub security: bool,
    /// `Strict-Transport-Security` for answers over HTTPS (never over plain HTTP).
    pub hsts: Option<String>,
    /// Cache lifetimes per extension, and fingerprinted names that never change.
    pub cache: Option<CacheConf>,
    /// Cross-origin access: preflights answered, `Access-Control-Allow-Origin` on answers.
    pub cors: Option<CorsConf>,
    /// Header edits for the answers they match, applied last, in order.
    #[serde(default)]
    pub rules: Vec<RuleConf>,
}

/// One string or a list of them (`ext = ".css"` or `ext = [".css", ".js"]`).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConf {
    /// A path prefix: this path and everything below it.
    #[serde(rename = "match")]
    prefix: Option<String>,
    /// A glob on the path (`/assets/**/*.css`), or on the file name when it has no `/`.
    glob: Option<String>,
    /// Extensions, with their dot.
    ext: Option<OneOrMany>,
    /// Status classes (`"2xx"`) or codes (`"404"`).
    status: Option<OneOrMany>,
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    append: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConf {
    /// Seconds per extension; 0 means `no-cache` (revalidate every time).
    #[serde(default)]
    max_age: BTreeMap<String, u32>,
    /// Globs of fingerprinted names: `public, max-age=31536000, immutable`.
    #[serde(default)]
    immutable: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConf {
    /// Origins allowed (`https://example.com`), or `["*"]` for any.
    pub origins: Vec<String>,
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Request headers a preflight may ask for.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Response headers scripts may read (`Access-Control-Expose-Headers`).
    #[serde(default)]
    pub expose: Vec<String>,
    #[serde(default)]
    pub credentials: bool,
    /// Seconds a browser may cache a preflight's answer.
    #[serde(default = "default_max_age")]
    pub max_age: u32,
    /// Path prefixes CORS applies to.
    #[serde(default = "default_paths")]
    pub paths: Vec<String>,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST"].map(String::from).to_vec()
}

fn default_max_age() -> u32 {
    600
}

fn default_paths() -> Vec<String> {
    vec!["/".into()]
}

/// Headers the host writes itself after the filters: a rule may not name them. `Server`
/// is written by the host after the filters run, so it can be neither changed nor removed.
fn host_writes(name: &str) -> bool {
    name.eq_ignore_ascii_case("server") || plugin_api::abi::host_owned_header(name.as_bytes())
}

/// A header name a rule may edit: an RFC 9110 token the host lets filters touch.
pub fn header_name(key: &str, name: &str) -> Result<(), String> {
    if !is_token(name) {
        return Err(format!(
            "{key}: {name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    if host_writes(name) {
        return Err(format!(
            "{key}: {name:?} is written by the server itself after the filters; no rule can change it"
        ));
    }
    Ok(())
}

/// A header value: no control characters (CR, LF, NUL) and no edge whitespace.
fn header_value(key: &str, name: &str, value: &str) -> Result<(), String> {
    let ok = value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    if !ok || value.trim() != value {
        return Err(format!(
            "{key}: the value for {name:?} must be one line of visible text without leading or \
             trailing spaces, found {value:?}"
        ));
    }
    Ok(())
}

/// An RFC 9110 token (method, header name).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An extension as written in settings: `.css`, kept lower-case.
pub fn extension(key: &str, ext: &str) -> Result<String, String> {
    let rest = ext.strip_prefix('.').unwrap_or("");
    if rest.is_empty() || rest.contains(['/', '.']) {
        return Err(format!(
            "{key}: {ext:?} is not an extension; expected a dot and a name, like \".css\""
        ));
    }
    Ok(ext.to_ascii_lowercase())
}

impl RuleConf {
    /// Check one `[[plugins.headers.rules]]` entry (`n` counts from 1).
    pub fn build(self, n: usize) -> Result<Rule, String> {
        let key = format!("rules[{n}]");
        let ext = self
            .ext
            .map(|e| {
                e.into_vec()
                    .iter()
                    .map(|x| extension(&format!("{key}.ext"), x))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let path = PathMatch::new(&key, self.prefix.as_deref(), self.glob.as_deref(), ext)?;
        let status = self
            .status
            .map(|s| StatusMatch::new(&format!("{key}.status"), s.into_vec()))
            .transpose()?;
        let edits = edits(&key, self.set, self.append, self.remove)?;
        Ok(Rule {
            path,
            status,
            edits,
        })
    }
}

fn edits(
    key: &str,
    set: BTreeMap<String, String>,
    append: BTreeMap<String, String>,
    remove: Vec<String>,
) -> Result<Edits, String> {
    for (what, map) in [("set", &set), ("append", &append)] {
        for (name, value) in map {
            header_name(&format!("{key}.{what}"), name)?;
            header_value(&format!("{key}.{what}"), name, value)?;
        }
    }
    for name in &remove {
        header_name(&format!("{key}.remove"), name)?;
    }
    if set.is_empty() && append.is_empty() && remove.is_empty() {
        return Err(format!(
            "{key}: the rule changes nothing; give it set = {{...}}, append = {{...}} or remove = [...]"
        ));
    }
    Ok(Edits {
        set: set.into_iter().collect(),
        append: append.into_iter().collect(),
        remove,
    })
}

impl CacheConf {
    /// Check the `[plugins.headers.cache]` table.
    pub fn build(self) -> Result<Cache, String> {
        let mut max_age = Vec::new();
        for (ext, secs) in self.max_age {
            max_age.push((extension("cache.max_age", &ext)?, secs));
        }
        Cache::new(max_age, &self.immutable)
    }
}

/// An HSTS policy (RFC 6797 §6.1): directives split by `;`, each named once, one of them
/// `max-age` with a number of seconds (quoted or not).
pub fn hsts(value: &str) -> Result<String, String> {
    let value = value.trim();
    let printable = value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    let mut names: Vec<String> = Vec::new();
    let mut max_age = false;
    for d in value.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let (name, arg) = d.split_once('=').unwrap_or((d, ""));
        let name = name.trim().to_ascii_lowercase();
        if name == "max-age" {
            let arg = arg.trim();
            let bare = arg
                .strip_prefix('"')
                .and_then(|a| a.strip_suffix('"'))
                .unwrap_or(arg);
            max_age = !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit());
        }
        if names.contains(&name) {
            max_age = false;
            break;
        }
        names.push(name);
    }
    if !max_age || !printable {
        return Err(format!(
            "hsts: {value:?} is not a Strict-Transport-Security policy; expected e.g. \"max-age=31536000\" or \"max-age=63072000; includeSubDomains\" (each directive once)"
        ));
    }
    Ok(value.to_string())
}

impl CorsConf {
    /// Check the `[plugins.headers.cors]` table.
    pub fn build(self) -> Result<Cors, String> {
        Cors::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_host_writes_are_refused_with_the_reason() {
        let e = header_name("rules[1].remove", "Server").unwrap_err();
        assert!(e.contains("written by the server itself"), "{e}");
        assert!(header_name("rules[1].set", "Content-Length").is_err());
        assert!(header_name("rules[1].set", "X Bad").is_err());
        assert!(header_name("rules[1].set", "X-Good").is_ok());
    }

    #[test]
    fn values_must_be_one_clean_line() {
        assert!(header_value("k", "X", "a\r\nInjected: 1").is_err());
        assert!(header_value("k", "X", " padded").is_err());
        assert!(header_value("k", "X", "max-age=60, public").is_ok());
    }

    #[test]
    fn extensions_need_their_dot() {
        assert_eq!(extension("k", ".CSS").unwrap(), ".css");
        for bad in ["css", ".", ".a/b", ".tar.gz", ""] {
            assert!(extension("k", bad).is_err(), "{bad}");
        }
    }
}
