//! Case `always_fail`: the catch-all at the end of the chain (the chapter's `case_always_fail`).

use plugin_api::helpers::error_status;
use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// Base case if nothing else worked.
pub struct AlwaysFail {
    status: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// The status to answer: 500 as in the chapter ("unknown object"); 403 or 404 also make sense.
    #[serde(default = "default_status")]
    status: u16,
}

fn default_status() -> u16 {
    500
}

impl Case for AlwaysFail {
    const NAME: &'static CStr = c"always_fail";
    const ALLOW: &'static CStr = c"*";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(AlwaysFail {
            status: error_status(c.status)?,
        })
    }

    fn test(&self, _req: &Request) -> bool {
        true
    }

    fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
        resp.error(self.status, "unknown object").into()
    }
}

plugin_api::export_case!(AlwaysFail);
