//! Coded copies of small bodies kept in memory, found by their bytes, so a page sent again
//! (a file, the server's own error page) is not coded again (lighttpd keeps coded files in
//! `deflate.cache-dir`). A body is looked up whole; a copy is kept with the bytes it was made
//! from and used only for the same bytes, so it can never be stale.

use crate::coding::{Coding, Encoder, Levels};
use plugin_api::Transform;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

/// Bodies longer than this are coded as they are sent, never kept.
pub const MAX_BODY: u64 = 256 * 1024;

/// (the body's hash, its coding): where a copy is looked for.
type Key = (u64, Coding);

/// The copies of one plugin instance (one site, one worker), oldest out first.
pub struct Cache {
    cap: usize,
    hasher: RandomState,
    inner: Mutex<Kept>,
}

/// A coded copy and the bytes it was made from.
struct Copy {
    plain: Box<[u8]>,
    coded: Arc<[u8]>,
}

#[derive(Default)]
struct Kept {
    map: HashMap<Key, Copy>,
    order: VecDeque<Key>,
    bytes: usize,
}

impl Cache {
    /// A cache of at most `cap` bytes (bodies and their copies); `None` when `cap` is 0.
    pub fn new(cap: usize) -> Option<Arc<Cache>> {
        (cap > 0).then(|| {
            Arc::new(Cache {
                cap,
                hasher: RandomState::new(),
                inner: Mutex::new(Kept::default()),
            })
        })
    }

    /// The transform for a body announced as `len` bytes, coded with `coding`.
    pub fn transform(self: &Arc<Self>, len: u64, coding: Coding, levels: Levels) -> Cached {
        Cached {
            streaming: None,
            len,
            coding,
            levels,
            plain: Vec::new(),
            cache: Arc::clone(self),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, key: Key, plain: &[u8]) -> Option<Arc<[u8]>> {
        let kept = self.kept();
        let copy = kept.map.get(&key)?;
        (*copy.plain == *plain).then(|| Arc::clone(&copy.coded))
    }

    fn insert(&self, key: Key, plain: Vec<u8>, coded: &[u8]) {
        let size = plain.len() + coded.len();
        if size > self.cap / 8 {
            return;
        }
        let mut kept = self.kept();
        while kept.bytes + size > self.cap {
            let Some(old) = kept.order.pop_front() else {
                break;
            };
            if let Some(c) = kept.map.remove(&old) {
                kept.bytes -= c.plain.len() + c.coded.len();
            }
        }
        let copy = Copy {
            plain: plain.into(),
            coded: coded.into(),
        };
        if let Some(c) = kept.map.insert(key, copy) {
            kept.bytes -= c.plain.len() + c.coded.len();
        } else {
            kept.order.push_back(key);
        }
        kept.bytes += size;
    }
}

/// A body of known length gathered whole, then answered from a kept copy or coded and kept.
pub struct Cached {
    /// A stream (pushed on piece by piece) or a body longer than it said: coded as it
    /// comes from then on, not kept.
    streaming: Option<Encoder>,
    len: u64,
    coding: Coding,
    levels: Levels,
    plain: Vec<u8>,
    cache: Arc<Cache>,
}

impl Cached {
    /// Give up gathering: what was held is coded now, and the rest as it comes.
    fn stream(&mut self, out: &mut Vec<u8>) -> Result<&mut Encoder, String> {
        if self.streaming.is_none() {
            let mut e = Encoder::new(self.coding, self.levels, None);
            e.transform(&std::mem::take(&mut self.plain), out)?;
            self.streaming = Some(e);
        }
        Ok(self.streaming.as_mut().expect("set above"))
    }
}

impl Transform for Cached {
    fn transform(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let over = (self.plain.len() + input.len()) as u64 > self.len;
        if self.streaming.is_some() || over {
            return self.stream(out)?.transform(input, out);
        }
        self.plain.extend_from_slice(input);
        Ok(())
    }

    /// A stream's piece came (a script writing): its reader sees it at once.
    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        self.stream(out)?.flush(out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if let Some(e) = &mut self.streaming {
            return e.finish(out);
        }
        let plain = std::mem::take(&mut self.plain);
        let key = (self.cache.hasher.hash_one(&plain), self.coding);
        if let Some(coded) = self.cache.find(key, &plain) {
            out.extend_from_slice(&coded);
            return Ok(());
        }
        let start = out.len();
        let mut e = Encoder::exact(self.coding, self.levels, plain.len() as u64);
        e.transform(&plain, out)?;
        e.finish(out)?;
        if plain.len() as u64 == self.len {
            self.cache.insert(key, plain, &out[start..]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::LEVELS;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut plain)
            .unwrap();
        plain
    }

    fn run(cache: &Arc<Cache>, body: &[u8]) -> Vec<u8> {
        let mut t = cache.transform(body.len() as u64, Coding::Gzip, LEVELS);
        let mut out = Vec::new();
        for piece in body.chunks(100) {
            t.transform(piece, &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        out
    }

    /// The second answer of the same bytes is the kept copy; other bytes get their own.
    #[test]
    fn the_same_bytes_are_coded_once_and_other_bytes_anew() {
        let cache = Cache::new(1 << 20).unwrap();
        let page = b"<p>a page of some length, coded once</p>\n".repeat(20);
        let first = run(&cache, &page);
        let second = run(&cache, &page);
        assert_eq!(first, second);
        assert_eq!(cache.kept().map.len(), 1);
        let mut edited = page.clone();
        edited[5] = b'X';
        let other = run(&cache, &edited);
        assert_eq!(gunzip(&other), edited);
        assert_eq!(cache.kept().map.len(), 2);
    }

    /// A stream that pauses is coded as it comes and not kept.
    #[test]
    fn a_paused_stream_goes_out_as_it_comes_and_is_not_kept() {
        let cache = Cache::new(1 << 20).unwrap();
        let body = b"<p>slow script output</p>\n".repeat(40);
        let mut t = cache.transform(body.len() as u64, Coding::Gzip, LEVELS);
        let mut out = Vec::new();
        t.transform(&body[..500], &mut out).unwrap();
        t.flush(&mut out).unwrap();
        assert!(!out.is_empty(), "the first part went out at the pause");
        t.transform(&body[500..], &mut out).unwrap();
        t.finish(&mut out).unwrap();
        assert_eq!(gunzip(&out), body);
        assert!(cache.kept().map.is_empty());
    }

    /// A body longer than it said is coded as it comes, whole, and not kept (no holding of
    /// what a case writes past its length).
    #[test]
    fn a_body_longer_than_announced_is_streamed_and_not_kept() {
        let cache = Cache::new(1 << 20).unwrap();
        let body = b"more than it said ".repeat(100);
        let mut t = cache.transform(100, Coding::Gzip, LEVELS);
        let mut out = Vec::new();
        for piece in body.chunks(64) {
            t.transform(piece, &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        assert_eq!(gunzip(&out), body);
        assert!(cache.kept().map.is_empty());
    }

    /// The oldest copies go first when the cap is reached; a body too large for it is
    /// coded and not kept.
    #[test]
    fn the_cap_holds() {
        let cache = Cache::new(64 * 1024).unwrap();
        for i in 0..200u32 {
            run(&cache, format!("page {i} ").repeat(50).as_bytes());
        }
        let kept = cache.kept();
        assert!(kept.bytes <= 64 * 1024, "{}", kept.bytes);
        assert!(kept.map.len() < 200 && kept.map.len() == kept.order.len());
        drop(kept);
        run(&cache, &vec![b'x'; 10_000]);
        assert!(cache.kept().map.values().all(|c| c.plain.len() < 10_000));
    }
}
