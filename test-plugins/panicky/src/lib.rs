//! Test fixture: a case that panics in `act` for `/panic`, to show a panic becomes a 500.

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
        req.path() == "/panic"
    }

    fn act(&self, _req: &Request, _resp: &mut Response) -> Outcome {
        panic!("this case panics on purpose");
    }
}

plugin_api::export_case!(Panicky);
