//! Case `existing_file`: the path is a regular file, so send it (the chapter's
//! `case_existing_file`); the host adds type, validators, ranges and sendfile.

use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use std::ffi::CStr;

/// File exists.
pub struct ExistingFile;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {}

impl Case for ExistingFile {
    const NAME: &'static CStr = c"existing_file";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let _: Conf = settings.parse()?;
        Ok(ExistingFile)
    }

    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::File
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        resp.send_file(req.fs_path()).into()
    }
}

plugin_api::export_case!(ExistingFile);
