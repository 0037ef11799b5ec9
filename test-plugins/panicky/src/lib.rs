//! Test fixture: a case that panics on purpose, to show a panic costs its one request a 500.
//! `/panic`: `act` panics. Under `/guarded/`, a key check whose `test` panics when the
//! `X-Key` field is missing, and claims (403) a wrong key: a good key goes on down the chain.

use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
use std::ffi::CStr;

/// Panics on purpose.
pub struct Panicky;

impl Case for Panicky {
    const NAME: &'static CStr = c"panicky";

    fn create(_host: Host, _settings: Settings) -> Result<Self, String> {
        Ok(Panicky)
    }

    fn test(&self, req: &Request) -> bool {
        if req.path().starts_with("/guarded/") {
            let key = req.header("x-key").expect("no X-Key field");
            return key != b"good";
        }
        req.path() == "/panic"
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        if req.path().starts_with("/guarded/") {
            return resp.error(403, "wrong key").into();
        }
        panic!("this case panics on purpose");
    }
}

plugin_api::export_case!(Panicky);
