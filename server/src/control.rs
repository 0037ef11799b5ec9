//! What a master and its workers say to each other: one JSON message per line on the
//! socket pair a worker inherits (a worker whose master is gone reads end-of-file).

use serde::{Deserialize, Serialize};

/// The key that seals TLS session tickets, and its period.
pub use crate::tickets::TicketKey;

/// Master → worker.
#[derive(Serialize, Deserialize, Debug)]
pub enum ToWorker {
    /// The configuration text to serve (the first message; validated by the master), the
    /// key that seals TLS session tickets, the same for every worker so a client resumes on
    /// whichever accepts it, and whether this worker replaces one that died (then a bad
    /// OCSP response file costs only its staple).
    Config {
        text: String,
        ticket_key: TicketKey,
        #[serde(default)]
        respawned: bool,
        /// The certificate a `self-signed` listener shows, the same in every worker.
        #[serde(default)]
        self_signed: Option<crate::tls::SelfSigned>,
    },
    /// Stop accepting, finish the requests in flight (within `shutdown_timeout`), exit.
    Stop,
    /// A reload: stop accepting, finish the requests in flight however long they take, exit.
    /// A `Stop` after it sets the deadline.
    Retire,
    /// Open the access log's path anew (SIGUSR1).
    Reopen,
}

/// Worker → master.
#[derive(Serialize, Deserialize, Debug)]
pub enum ToMaster {
    /// Plugins loaded, event loop running: serving. `cases` is the chain as
    /// (name, description) for the banner.
    Ready { cases: Vec<(String, String)> },
    /// After a `Stop`: no longer accepting connections.
    Draining,
    /// After a `Reopen`: the reopened path, or why it failed.
    Reopened {
        result: Result<Option<String>, String>,
    },
}

/// One message as a line.
pub fn line<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec(msg).unwrap_or_default();
    out.push(b'\n');
    out
}

/// A line back into a message.
pub fn parse<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    serde_json::from_str(line).map_err(|e| format!("a control message is garbled ({e}): {line:?}"))
}
