//! Case `directory_index_file`: a directory with an `index.html` serves that page (the
//! chapter's `case_directory_index_file`).

use plugin_api::helpers::index_path;
use plugin_api::{Case, Host, Kind, Outcome, Request, Response, Settings};
use std::ffi::CStr;

/// Serve index.html page for a directory.
pub struct DirectoryIndexFile;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {}

impl Case for DirectoryIndexFile {
    const NAME: &'static CStr = c"directory_index_file";

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let _: Conf = settings.parse()?;
        Ok(DirectoryIndexFile)
    }

    fn test(&self, req: &Request) -> bool {
        req.kind() == Kind::Dir && index_path(req.fs_path()).is_file()
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        resp.send_file(&index_path(req.fs_path())).into()
    }
}

plugin_api::export_case!(DirectoryIndexFile);
