//! TLS session tickets sealed with one key that the master makes and every worker shares, so
//! a client resumes its session on whichever worker accepts its next connection (nginx's
//! workers share their ticket keys the same way); rustls' own ticketer keys each process.

use crate::control::TicketKey;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// How long a client may resume a session: rustls' own ticketer's lifetime (12 hours).
const LIFETIME_SECS: u32 = 12 * 60 * 60;

/// A fresh random key (the master's, for its whole life; `--single-process`'s own).
pub fn new_key() -> Result<TicketKey, String> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| "TLS: no randomness for the session ticket key".to_string())?;
    Ok(key)
}

/// Seals and opens tickets: a random nonce, then the AEAD-sealed session state (the format
/// rustls' own AEAD ticketer uses).
pub struct SharedTicketer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl SharedTicketer {
    pub fn new(key: &TicketKey) -> Result<SharedTicketer, String> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key)
            .map_err(|_| "TLS: the session ticket key is unusable".to_string())?;
        Ok(SharedTicketer {
            key: LessSafeKey::new(unbound),
            random: SystemRandom::new(),
        })
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
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .ok()?;
        let mut ticket = Vec::with_capacity(NONCE_LEN + sealed.len());
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = ticket.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::empty(), &mut buf).ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;

    #[test]
    fn a_ticket_opens_with_the_same_key_only_and_not_when_altered() {
        let key = new_key().unwrap();
        let (a, b) = (
            SharedTicketer::new(&key).unwrap(),
            SharedTicketer::new(&key).unwrap(),
        );
        let ticket = a.encrypt(b"session state").unwrap();
        assert_eq!(b.decrypt(&ticket).as_deref(), Some(&b"session state"[..]));
        let other = SharedTicketer::new(&new_key().unwrap()).unwrap();
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
}
