//! Benchmark fixture (ABI 1.1 filter): sees every answer's head and passes, so a chain of
//! them measures what the filter stage itself costs per filter.

use plugin_api::{Case, Filtered, Head, Host, Outcome, Request, Response, Settings};
use std::ffi::CStr;

struct NoopFilter;

impl Case for NoopFilter {
    const NAME: &'static CStr = c"noop_filter";
    const ACTS: bool = false;
    const FILTERS: bool = true;

    fn create(_host: Host, _settings: Settings) -> Result<Self, String> {
        Ok(NoopFilter)
    }

    fn test(&self, _req: &Request) -> bool {
        false
    }

    fn act(&self, _req: &Request, _resp: &mut Response) -> Outcome {
        Outcome::Declined
    }

    fn filter(&self, _req: &Request, _head: &mut Head) -> Filtered {
        Filtered::Pass
    }
}

plugin_api::export_case!(NoopFilter);
