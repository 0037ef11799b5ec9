//! Byte buffers reused across requests on one event loop thread: a request's read buffer
//! and its reply buffer come from here, not from the allocator each time.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// Buffers each thread keeps for reuse, at most.
const KEEP: usize = 16;
/// Capacity a kept buffer may have (a smaller or bigger one goes back to the allocator).
const MIN_KEPT: usize = 1024;
const MAX_KEPT: usize = 8 * 1024;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `cap` bytes, handed back to the thread's pool
/// when dropped.
pub struct Buf(Vec<u8>);

impl Buf {
    pub fn take(cap: usize) -> Buf {
        let mut b = FREE.with_borrow_mut(Vec::pop).unwrap_or_default();
        // Never smaller than what the pool keeps, so a fresh one can go back to it.
        b.reserve(cap.max(MIN_KEPT));
        Buf(b)
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let b = std::mem::take(&mut self.0);
        if !(MIN_KEPT..=MAX_KEPT).contains(&b.capacity()) {
            return;
        }
        let _ = FREE.try_with(|f| {
            let mut f = f.borrow_mut();
            if f.len() < KEEP {
                let mut b = b;
                b.clear();
                f.push(b);
            }
        });
    }
}

impl Deref for Buf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_empty_with_its_room() {
        let mut a = Buf::take(2000);
        a.extend_from_slice(b"left over");
        let ptr = a.as_ptr();
        drop(a);
        let b = Buf::take(10);
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), ptr, "the same allocation is reused");
    }

    #[test]
    fn a_huge_buffer_is_not_kept() {
        let mut a = Buf::take(MAX_KEPT * 4);
        a.push(1);
        drop(a);
        assert!(Buf::take(1).capacity() < MAX_KEPT * 4);
    }
}
