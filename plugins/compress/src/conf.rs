//! The `[plugins.compress]` table as written, checked into what the filter uses: every
//! refusal says which key, what was found and what is expected.

use crate::coding::{Coding, Levels};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conf {
    /// Codings offered, in the server's order of preference.
    #[serde(default = "default_codings")]
    codings: Vec<String>,
    /// Media types compressed: `type/subtype` or `type/*`.
    #[serde(default = "default_types")]
    types: Vec<String>,
    /// Bodies shorter than this (bytes) are sent as they are; unknown lengths are coded.
    #[serde(default = "default_min_size")]
    min_size: u64,
    #[serde(default)]
    level: LevelConf,
    /// Send `file.br`, `file.zst`, `file.gz` when present and fresh.
    #[serde(default = "yes")]
    precompressed: bool,
    /// Bytes of coded output of small files kept per worker (0: none).
    #[serde(default = "default_cache_size")]
    cache_size: u64,
}

fn default_cache_size() -> u64 {
    4 << 20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelConf {
    #[serde(default = "default_gzip")]
    gzip: u32,
    #[serde(default = "default_br")]
    br: u32,
    #[serde(default = "default_zstd")]
    zstd: i32,
}

impl Default for LevelConf {
    fn default() -> Self {
        LevelConf {
            gzip: default_gzip(),
            br: default_br(),
            zstd: default_zstd(),
        }
    }
}

fn default_codings() -> Vec<String> {
    Coding::ALL.iter().map(|c| c.token().into()).collect()
}

/// Text and the formats built on it; images other than SVG, audio, video, archives and
/// WOFF fonts are compressed already.
pub const DEFAULT_TYPES: [&str; 18] = [
    "text/*",
    "application/javascript",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/geo+json",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/wasm",
    "application/yaml",
    "application/toml",
    "image/svg+xml",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "font/ttf",
    "font/otf",
];

fn default_types() -> Vec<String> {
    DEFAULT_TYPES.map(String::from).to_vec()
}

fn default_min_size() -> u64 {
    256
}

fn default_gzip() -> u32 {
    6
}

/// Brotli 4 is a little smaller than gzip 6 at about 1.5x its CPU; 5 costs 1.3-2.7x more
/// again (examples/throughput.rs); 10-11 are for precompressing, not for each request.
fn default_br() -> u32 {
    4
}

fn default_zstd() -> i32 {
    3
}

fn yes() -> bool {
    true
}

/// The checked settings.
pub struct Settings {
    pub codings: Vec<Coding>,
    pub types: Vec<String>,
    pub min_size: u64,
    pub levels: Levels,
    pub precompressed: bool,
    pub cache_size: usize,
}

impl Conf {
    pub fn check(self) -> Result<Settings, String> {
        Ok(Settings {
            codings: codings(&self.codings)?,
            types: types(self.types)?,
            min_size: self.min_size,
            levels: levels(&self.level)?,
            precompressed: self.precompressed,
            cache_size: usize::try_from(self.cache_size).unwrap_or(usize::MAX),
        })
    }
}

fn codings(list: &[String]) -> Result<Vec<Coding>, String> {
    let mut out = Vec::new();
    for t in list {
        let c = Coding::from_token(t).ok_or_else(|| {
            format!("codings: {t:?} is not a coding this server makes; expected \"br\", \"zstd\" or \"gzip\"")
        })?;
        if out.contains(&c) {
            return Err(format!("codings: {t:?} is listed twice"));
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err("codings is empty; list at least one of \"br\", \"zstd\", \"gzip\" (or leave compress out of cases)".into());
    }
    Ok(out)
}

fn types(list: Vec<String>) -> Result<Vec<String>, String> {
    for t in &list {
        let ok = t.split_once('/').is_some_and(|(ty, sub)| {
            let token = |s: &str| {
                !s.is_empty()
                    && s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$&-^_.+".contains(&b)
                    })
            };
            token(ty) && (sub == "*" || token(sub))
        });
        if !ok {
            return Err(format!(
                "types: {t:?} is not a media type; expected lower-case \"type/subtype\" or \"type/*\", like \"application/json\" or \"text/*\""
            ));
        }
    }
    Ok(list)
}

fn levels(l: &LevelConf) -> Result<Levels, String> {
    let check = |key: &str, v: i64, lo: i64, hi: i64| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(format!("level.{key} = {v}: expected {lo}-{hi}"))
        }
    };
    check("gzip", l.gzip.into(), 1, 9)?;
    check("br", l.br.into(), 0, 11)?;
    check("zstd", l.zstd.into(), 1, 19)?;
    Ok(Levels {
        gzip: l.gzip,
        br: l.br,
        zstd: l.zstd,
    })
}
