//! Test fixture (ABI 1.1 rewrite): `/old/<rest>` goes on as `/new/<rest>` (query kept), with
//! `MOVED_FROM` set for later cases; `/old-escape` tries to leave the root.

use plugin_api::{Case, Host, Outcome, Request, Response, Settings};
use std::ffi::CStr;

struct OldNew;

impl Case for OldNew {
    const NAME: &'static CStr = c"old_new";
    const ALLOW: &'static CStr = c"*";
    const REWRITES: bool = true;

    fn create(_host: Host, _settings: Settings) -> Result<Self, String> {
        Ok(OldNew)
    }

    fn test(&self, req: &Request) -> bool {
        req.path().starts_with("/old/") || req.path() == "/old-escape"
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        let path = req.path();
        let target = match path.strip_prefix("/old/") {
            Some(rest) => format!("/new/{rest}"),
            None => "/../../etc/passwd".to_string(),
        };
        let query = String::from_utf8_lossy(req.query()).into_owned();
        let target = if query.is_empty() {
            target
        } else {
            format!("{target}?{query}")
        };
        let moved = resp.set_var("MOVED_FROM", &path);
        match moved.and_then(|()| resp.rewrite(&target)) {
            Ok(()) => Outcome::Continue,
            Err(_) => Outcome::Error,
        }
    }
}

plugin_api::export_case!(OldNew);

#[cfg(test)]
mod tests {
    use super::OldNew;
    use plugin_api::testing::{TestCase, TestRequest};
    use plugin_api::Outcome;

    #[test]
    fn old_paths_go_on_as_new_ones_with_the_query() {
        let case = TestCase::<OldNew>::create("{}").unwrap();
        let req = TestRequest::get("/old/a.txt").query("x=1");
        assert!(case.test(&req));
        let r = case.act(&req);
        assert_eq!(r.outcome, Outcome::Continue);
        assert_eq!(r.rewrite.as_deref(), Some("/new/a.txt?x=1"));
        assert_eq!(r.vars, vec![("MOVED_FROM".into(), "/old/a.txt".into())]);
    }
}
