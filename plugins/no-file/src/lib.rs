//! Case `no_file`: the path does not exist, so answer 404 (the chapter's `case_no_file`).

use plugin_api::helpers::error_status;
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::ffi::CStr;

/// File or directory does not exist.
pub struct NoFile {
    status: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// The status to answer (404 unless configured, e.g. 410).
    #[serde(default = "default_status")]
    status: u16,
}

fn default_status() -> u16 {
    404
}

impl Case for NoFile {
    const NAME: &'static CStr = c"no_file";
    const ALLOW: &'static CStr = c"*";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let c: Conf = settings.parse()?;
        Ok(NoFile {
            status: error_status(c.status)?,
        })
    }

    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::Missing
    }

    fn act(&self, _req: &Request, resp: &mut Response) -> Outcome {
        resp.error(self.status, "not found").into()
    }
}

plugin_api::export_case!(NoFile);
