//! A per-thread memory of the last few values made from a key, found by a scan: cheaper
//! than hashing for the few keys a site keeps asking for (file types, error pages).

/// Values one such memory keeps; the oldest is replaced first.
const RECENT: usize = 16;

/// The values made most recently, with the keys they were made from.
pub struct Recent<K, V> {
    entries: Vec<(K, V)>,
    next: usize,
}

impl<K, V: Clone> Default for Recent<K, V> {
    fn default() -> Self {
        Recent::new()
    }
}

impl<K, V: Clone> Recent<K, V> {
    pub const fn new() -> Self {
        Recent {
            entries: Vec::new(),
            next: 0,
        }
    }

    /// The value of the first entry whose key is `same`, or a new one from `make`, kept in
    /// place of the oldest once the memory is full.
    pub fn get_or(&mut self, same: impl Fn(&K) -> bool, make: impl FnOnce() -> (K, V)) -> V {
        if let Some((_, v)) = self.entries.iter().find(|(k, _)| same(k)) {
            return v.clone();
        }
        let (k, v) = make();
        if self.entries.len() < RECENT {
            self.entries.push((k, v.clone()));
        } else {
            self.entries[self.next] = (k, v.clone());
            self.next = (self.next + 1) % RECENT;
        }
        v
    }
}
