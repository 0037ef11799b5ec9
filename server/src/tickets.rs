//! TLS session tickets sealed with a key that the master makes and every worker shares, so
//! a client resumes its session on whichever worker accepts its next connection (nginx's
//! workers share their ticket keys the same way). The key moves on every six hours by a
//! one-way step, as rustls' own ticketer rotates its key: a process keeps the keys of the
//! current period and the one before, and a later key opens no earlier period's tickets.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf::{Prk, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use zeroize::Zeroize;

/// How long one key seals new tickets (rustls' own ticketer's rotation).
const PERIOD_SECS: u64 = 6 * 60 * 60;

/// How long a client may resume a session: a ticket opens in its key's period and the next
/// (rustls' own ticketer's lifetime, 12 hours; one made late in a period lasts less).
const LIFETIME_SECS: u32 = 2 * PERIOD_SECS as u32;

/// The ticket key of one period. The next period's is derived from it by a one-way step,
/// so every process that holds the same key at the same period agrees on the ones after
/// it without asking, and none can go back. Zeroed when dropped.
#[derive(Clone, Serialize, Deserialize)]
pub struct TicketKey {
    period: u64,
    key: [u8; 32],
}

impl Drop for TicketKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(f, "TicketKey(period {})", self.period)
    }
}

impl TicketKey {
    /// A fresh random key for the current period (the master's; `--single-process`'s own).
    pub fn new() -> Result<TicketKey, String> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| "TLS: no randomness for the session ticket key".to_string())?;
        Ok(TicketKey {
            period: period_now(),
            key,
        })
    }

    /// Moved on to `period`'s key (never back: a clock set back keeps the key it has). A
    /// clock that jumps years ahead costs a step (about a microsecond) per six hours.
    pub fn advance(&mut self, period: u64) {
        while self.period < period {
            let next = next_key(&self.key);
            self.key.zeroize();
            self.key = next;
            self.period += 1;
        }
    }

    /// The key the master keeps and hands to a new worker: the previous period's, so the
    /// worker derives the current one and still opens the tickets sealed before it began.
    pub fn for_workers(&mut self) -> &TicketKey {
        self.advance(period_now().saturating_sub(1));
        self
    }

    fn aead(&self) -> LessSafeKey {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &self.key)
            .expect("a 32-byte key is a ChaCha20-Poly1305 key");
        LessSafeKey::new(unbound)
    }
}

/// The period of the wall clock now.
fn period_now() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_secs() / PERIOD_SECS)
}

/// The next period's key: HKDF-SHA256 expanded from this one (RFC 5869), one-way.
fn next_key(key: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Prk::new_less_safe(HKDF_SHA256, key)
        .expand(&[b"cases session ticket key, next period"], HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut out))
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The keys a ticketer holds: the current period's, and the one before (its tickets still
/// open).
struct Keys {
    chain: TicketKey,
    current: LessSafeKey,
    previous: Option<LessSafeKey>,
}

impl Keys {
    /// Moved on to `period`: its key seals, the one before it (whether or not this process
    /// used it: another worker may have) still opens.
    fn at(&mut self, period: u64) {
        if self.chain.period >= period {
            return;
        }
        self.chain.advance(period - 1);
        self.previous = Some(self.chain.aead());
        self.chain.advance(period);
        self.current = self.chain.aead();
    }

    /// The key that opens a ticket of `period`: this period's or the one before.
    fn opening(&self, period: u64) -> Option<&LessSafeKey> {
        if period == self.chain.period {
            Some(&self.current)
        } else if Some(period) == self.chain.period.checked_sub(1) {
            self.previous.as_ref()
        } else {
            None
        }
    }
}

/// Seals and opens tickets: the key's period, a random nonce, then the AEAD-sealed session
/// state with the period as associated data (the layout of rustls' own AEAD ticketer, with
/// the period in front).
pub struct SharedTicketer {
    keys: Mutex<Keys>,
    random: SystemRandom,
}

impl SharedTicketer {
    /// A ticketer that starts from `key` and moves on to the current period at once.
    pub fn new(key: &TicketKey) -> SharedTicketer {
        SharedTicketer::at(key, period_now())
    }

    fn at(key: &TicketKey, now: u64) -> SharedTicketer {
        let mut keys = Keys {
            chain: key.clone(),
            current: key.aead(),
            previous: None,
        };
        keys.at(now);
        SharedTicketer {
            keys: Mutex::new(keys),
            random: SystemRandom::new(),
        }
    }

    fn keys(&self, period: u64) -> std::sync::MutexGuard<'_, Keys> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.at(period);
        keys
    }

    fn seal(&self, plain: &[u8], now: u64) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let keys = self.keys(now);
        let period = keys.chain.period.to_be_bytes();
        let mut sealed = plain.to_vec();
        keys.current
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(period),
                &mut sealed,
            )
            .ok()?;
        drop(keys);
        let mut ticket = Vec::with_capacity(period.len() + NONCE_LEN + sealed.len());
        ticket.extend_from_slice(&period);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn open(&self, ticket: &[u8], now: u64) -> Option<Vec<u8>> {
        let (period, rest) = ticket.split_first_chunk::<8>()?;
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
        let keys = self.keys(now);
        let ahead;
        let key = match u64::from_be_bytes(*period) {
            // Sealed by a worker that saw the clock one period further on before it was set
            // back: its key is one step from ours, and taking that step opens nothing older.
            p if Some(p) == keys.chain.period.checked_add(1) => {
                let mut next = keys.chain.clone();
                next.advance(p);
                ahead = next.aead();
                &ahead
            }
            p => keys.opening(p)?,
        };
        let mut buf = sealed.to_vec();
        let nonce = Nonce::assume_unique_for_key(*nonce);
        let plain = key
            .open_in_place(nonce, Aad::from(*period), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

impl std::fmt::Debug for SharedTicketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("SharedTicketer")
    }
}

impl rustls::server::ProducesTickets for SharedTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME_SECS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal(plain, period_now())
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        self.open(ticket, period_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;

    #[test]
    fn a_ticket_opens_with_the_same_key_only_and_not_when_altered() {
        let key = TicketKey::new().unwrap();
        let (a, b) = (SharedTicketer::new(&key), SharedTicketer::new(&key));
        let ticket = a.encrypt(b"session state").unwrap();
        assert_eq!(b.decrypt(&ticket).as_deref(), Some(&b"session state"[..]));
        let other = SharedTicketer::new(&TicketKey::new().unwrap());
        assert_eq!(other.decrypt(&ticket), None);
        let mut bent = ticket.clone();
        *bent.last_mut().unwrap() ^= 1;
        assert_eq!(b.decrypt(&bent), None);
        assert_eq!(b.decrypt(&ticket[..5]), None);
        assert_ne!(
            a.encrypt(b"session state"),
            Some(ticket),
            "a fresh nonce each time"
        );
    }

    fn key_at(period: u64) -> TicketKey {
        TicketKey {
            period,
            key: [7; 32],
        }
    }

    /// The period a ticket names.
    fn period_of(ticket: &[u8]) -> u64 {
        u64::from_be_bytes(*ticket.first_chunk::<8>().unwrap())
    }

    #[test]
    fn a_ticket_opens_in_its_period_and_the_next_only() {
        let t = SharedTicketer::at(&key_at(100), 100);
        let ticket = t.seal(b"state", 100).unwrap();
        assert_eq!(period_of(&ticket), 100);
        assert_eq!(t.open(&ticket, 100).as_deref(), Some(&b"state"[..]));
        assert_eq!(t.open(&ticket, 101).as_deref(), Some(&b"state"[..]));
        assert_eq!(t.open(&ticket, 102), None);
        // A clock set back does not bring the old key back: it seals with 102's still.
        assert_eq!(t.open(&ticket, 100), None);
        assert_eq!(period_of(&t.seal(b"state", 100).unwrap()), 102);
        // A ticket claiming any period, up to the last, opens nothing.
        let mut claims = t.seal(b"state", 102).unwrap();
        claims[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(t.open(&claims, 102), None);
    }

    #[test]
    fn the_period_is_sealed_with_the_state() {
        // Sealed in 101, the ticket opened in 102 with 101's key; named 102, the same bytes
        // meet 102's key and fail; the period cannot be moved without the key.
        let t = SharedTicketer::at(&key_at(100), 101);
        let ticket = t.seal(b"state", 101).unwrap();
        let (period, rest) = ticket.split_at(8);
        let keys = t.keys(102);
        let previous = keys.opening(101).unwrap();
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = || Nonce::try_assume_unique_for_key(nonce).unwrap();
        let mut buf = sealed.to_vec();
        let aad = <[u8; 8]>::try_from(period).unwrap();
        assert!(previous
            .open_in_place(nonce(), Aad::from(aad), &mut buf)
            .is_ok());
        let mut buf = sealed.to_vec();
        let other = 102u64.to_be_bytes();
        assert!(previous
            .open_in_place(nonce(), Aad::from(other), &mut buf)
            .is_err());
    }

    #[test]
    fn workers_that_move_on_apart_agree_on_every_later_key() {
        // One worker sealed in period 101; another, idle since 100, opens it in 102.
        let busy = SharedTicketer::at(&key_at(100), 100);
        let idle = SharedTicketer::at(&key_at(100), 100);
        let ticket = busy.seal(b"state", 101).unwrap();
        assert_eq!(idle.open(&ticket, 102).as_deref(), Some(&b"state"[..]));
    }

    #[test]
    fn a_ticket_from_a_worker_one_period_ahead_opens_after_the_clock_is_set_back() {
        // One worker saw 102 before the clock went back to 101; a worker started since
        // holds 101 and still opens what the first seals with 102's key.
        let ahead = SharedTicketer::at(&key_at(100), 102);
        let behind = SharedTicketer::at(&key_at(100), 101);
        let ticket = ahead.seal(b"state", 101).unwrap();
        assert_eq!(period_of(&ticket), 102);
        assert_eq!(behind.open(&ticket, 101).as_deref(), Some(&b"state"[..]));
        // Two periods ahead is too far.
        let far = SharedTicketer::at(&key_at(100), 103);
        assert_eq!(behind.open(&far.seal(b"state", 101).unwrap(), 101), None);
    }

    #[test]
    fn a_worker_started_later_opens_the_tickets_of_the_period_before() {
        // The master keeps the key one period behind the clock, so a worker it starts in
        // 101 still opens what the others sealed in 100.
        let mut master = key_at(100);
        let old = SharedTicketer::at(&master, 100);
        let ticket = old.seal(b"state", 100).unwrap();
        // In 101 the master hands over 100's key (what `for_workers` keeps).
        master.advance(101 - 1);
        let new = SharedTicketer::at(&master, 101);
        assert_eq!(new.open(&ticket, 101).as_deref(), Some(&b"state"[..]));
        assert_eq!(period_of(&new.seal(b"state", 101).unwrap()), 101);
    }

    #[test]
    fn each_period_has_its_own_key() {
        let mut k = key_at(0);
        let first = k.key;
        k.advance(1);
        assert_ne!(k.key, first);
        assert_eq!(k.key, next_key(&first));
        k.advance(0);
        assert_eq!((k.period, k.key), (1, next_key(&first)));
        assert_eq!(
            format!("{k:?}"),
            "TicketKey(period 1)",
            "the key is never shown"
        );
    }
}
