//! The contract between the server and its case plugins: the C ABI and its safe Rust side.
//!
//! A case is the chapter's pair `test`/`act`. In Rust a plugin implements [`Case`] in safe code
//! and exports it with [`export_case!`]; every entry point is wrapped in `catch_unwind`, so a
//! panic costs that one request a 500 (a panicking `test` too, on hosts of ABI 1.2 on) and a
//! log line with its message and place; the next request calls the case again. In C a plugin includes `include/case_plugin.h` and exports `wp_plugin_v1`.
//! [`testing`] runs a case in-process, through that same export layer, for unit tests.
//!
//! ```no_run
//! use plugin_api::{Case, Outcome, Request, Response, Settings, Host};
//! struct Hello;
//! impl Case for Hello {
//!     const NAME: &'static std::ffi::CStr = c"hello";
//!     fn create(_host: Host, _settings: Settings) -> Result<Self, String> { Ok(Hello) }
//!     fn test(&self, req: &Request) -> bool { req.path() == "/hello" }
//!     fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
//!         resp.header("Content-Type", "text/plain").ok();
//!         resp.write(b"Hello, web!\n").into()
//!     }
//! }
//! plugin_api::export_case!(Hello);
//! ```

pub mod abi;
pub mod export;
mod filter;
pub mod helpers;
mod panic_note;
mod request;
mod response;
pub mod testing;

pub use export::Host;
pub use filter::{Filtered, Head, Transform};
pub use request::{Kind, Request};
pub use response::{Refused, Response};

use std::ffi::CStr;

/// What `act` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The response is complete.
    Done,
    /// Not mine after all (only before anything was written): the host tries the next case.
    Declined,
    /// Something failed: 500 if nothing was sent yet, else the connection is closed.
    Error,
    /// (ABI 1.1) The request was changed with [`Response::rewrite`] or
    /// [`Response::set_var`] and nothing was written: after a rewrite the chain starts again
    /// at the first case with the new target; with only variables set it goes on at the next
    /// case. Set [`Case::REWRITES`] when `act` may return it.
    Continue,
}

impl From<Result<(), Refused>> for Outcome {
    fn from(r: Result<(), Refused>) -> Self {
        match r {
            Ok(()) => Outcome::Done,
            Err(_) => Outcome::Error,
        }
    }
}

/// The plugin's own settings: the JSON text of its `[plugins.NAME]` table in `server.toml`.
pub struct Settings<'a> {
    json: &'a str,
}

impl<'a> Settings<'a> {
    /// Wrap settings text (used by the export layer and by plugin unit tests).
    pub fn new(json: &'a str) -> Self {
        Settings { json }
    }

    /// The raw JSON text.
    pub fn json(&self) -> &str {
        self.json
    }

    /// Deserialize into the plugin's settings type. Use `#[serde(deny_unknown_fields)]` so a
    /// typo is an error; the message names the key and what was expected.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(self.json).map_err(|e| {
            // serde_json appends "at line 1 column N" of our generated JSON: meaningless to users.
            let msg = e.to_string();
            match msg.find(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            }
        })
    }
}

/// Log levels a plugin can write at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Normal operation.
    Info = 3,
    /// Detail for debugging.
    Debug = 4,
}

/// One case of the chain, in safe Rust. The chapter's `test` and `act`, plus a constructor
/// that receives the plugin's settings.
pub trait Case: Sized + Send + Sync + 'static {
    /// The case name, as written in `server.toml` (`[a-z0-9_]+`).
    const NAME: &'static CStr;
    /// Methods this case answers, as an `Allow` header value; `*` for any. When `test` takes
    /// a request whose method is not listed, the host answers 405 with this `Allow` (an
    /// `OPTIONS` gets 200 with it, unless listed) and never calls `act`; `GET` lets `HEAD`
    /// in too.
    const ALLOW: &'static CStr = c"GET, HEAD";
    /// The plugin's version, free text.
    const VERSION: &'static CStr = c"0.1.0";
    /// `true` when `act` may block for long (runs a process): the host then calls it off the
    /// event loop and streams what it writes.
    const MAY_BLOCK: bool = false;
    /// `false` for a plugin that only filters: the host then never calls `test` or `act`.
    const ACTS: bool = true;
    /// (ABI 1.1) `act` may return [`Outcome::Continue`] after a rewrite or `set_var`.
    const REWRITES: bool = false;
    /// (ABI 1.1) [`Case::filter`] sees the head of every response.
    const FILTERS: bool = false;
    /// (ABI 1.1) [`Case::filter`] may return [`Filtered::Transform`] (needs `FILTERS`).
    const TRANSFORMS: bool = false;
    /// (ABI 1.1) The filter's transforms are a content coding (compression): the host skips
    /// answers already coded, marked `no-transform`, or partial.
    const CONTENT_CODING: bool = false;

    /// Build the instance; an `Err` stops the server's start-up with that message.
    fn create(host: Host, settings: Settings) -> Result<Self, String>;
    /// Does this case handle the request? Must be cheap and have no side effects. A plugin
    /// that only filters (`ACTS = false`) need not write it: it is never called.
    fn test(&self, _req: &Request) -> bool {
        false
    }
    /// Answer the request. A plugin that only filters (`ACTS = false`) need not write it.
    fn act(&self, _req: &Request, _resp: &mut Response) -> Outcome {
        Outcome::Error
    }
    /// (ABI 1.1) See a response's head before it is written, whoever made it; edit it,
    /// replace the body, or return a [`Transform`] for the body. Called only when
    /// [`Case::FILTERS`] is `true`.
    fn filter(&self, _req: &Request, _head: &mut Head) -> Filtered {
        Filtered::Pass
    }
}
