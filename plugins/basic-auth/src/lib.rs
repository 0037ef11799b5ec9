//! Case `basic_auth`: a path under a protected prefix needs a user name and password from an
//! htpasswd file (HTTP Basic, RFC 7617). Without them: 401 and a challenge; with them: the
//! chain goes on, with `REMOTE_USER` and `AUTH_TYPE` set for the case that answers.

mod credentials;
mod htpasswd;
mod user_file;

use credentials::Sent;
use htpasswd::Check;
use plugin_api::helpers::Prefix;
use plugin_api::{Case, Host, Level, Outcome, Request, Response, Settings};
use serde::Deserialize;
use std::collections::HashMap;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::Arc;
use user_file::UserFile;

/// Settings of `[plugins.basic_auth]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    /// The protected areas; the first whose prefix matches the path decides.
    areas: Vec<AreaConf>,
}

/// One `[[plugins.basic_auth.areas]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AreaConf {
    /// The path protected, and everything below it.
    prefix: String,
    /// The name browsers show in their password prompt.
    realm: String,
    /// The htpasswd file (an absolute path).
    htpasswd: PathBuf,
}

/// A protected prefix, its challenge and its users.
struct Area {
    prefix: Prefix,
    /// The `WWW-Authenticate` value.
    challenge: String,
    users: Arc<UserFile>,
}

/// Ask for a user name and password under the protected prefixes.
pub struct BasicAuth {
    areas: Vec<Area>,
    host: Host,
}

/// `Basic realm="…", charset="UTF-8"`, the realm as a quoted-string (RFC 9110 §5.6.4).
fn challenge(realm: &str) -> Result<String, String> {
    if realm.is_empty() || !realm.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "realm = {realm:?}: expected printable ASCII text, like \"Staff only\""
        ));
    }
    let quoted = realm.replace('\\', "\\\\").replace('"', "\\\"");
    Ok(format!("Basic realm=\"{quoted}\", charset=\"UTF-8\""))
}

/// The htpasswd setting: absolute, since a plugin cannot tell which folder a relative path
/// would be read from (the server's working folder, not server.toml's).
fn htpasswd_path(path: PathBuf) -> Result<PathBuf, String> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!(
            "htpasswd = {:?}: expected an absolute path, like \"/etc/cases/htpasswd\" (keep it outside the document root)",
            path.display()
        ))
    }
}

impl BasicAuth {
    /// Build the areas; areas naming the same file share it (read once, watched once).
    fn areas(conf: Conf, host: &Host) -> Result<Vec<Area>, String> {
        if conf.areas.is_empty() {
            return Err("areas = []: expected at least one [[plugins.basic_auth.areas]] table with prefix, realm and htpasswd".into());
        }
        let mut files: HashMap<PathBuf, Arc<UserFile>> = HashMap::new();
        let mut areas = Vec::new();
        for a in conf.areas {
            let path = htpasswd_path(a.htpasswd)?;
            let users = match files.get(&path) {
                Some(f) => Arc::clone(f),
                None => Arc::new(UserFile::open(&path, host.clone())?),
            };
            files.insert(path, Arc::clone(&users));
            areas.push(Area {
                prefix: Prefix::new(&a.prefix)?,
                challenge: challenge(&a.realm)?,
                users,
            });
        }
        Ok(areas)
    }

    fn area(&self, req: &Request) -> Option<&Area> {
        let path = req.path();
        self.areas.iter().find(|a| a.prefix.matches(&path))
    }

    /// The user, when the request carries a known user name and its password.
    fn user(&self, area: &Area, req: &Request) -> Option<String> {
        let creds = match credentials::of(req) {
            Sent::Nothing => return None,
            Sent::Malformed => {
                self.refused(req, "malformed Authorization field");
                return None;
            }
            Sent::Basic(creds) => creds,
        };
        match area
            .users
            .users()
            .check(&creds.user, creds.password.as_bytes())
        {
            Check::Ok => Some(creds.user),
            Check::WrongPassword => {
                self.refused(req, "wrong password");
                None
            }
            Check::UnknownUser => {
                self.refused(req, "unknown user");
                None
            }
        }
    }

    /// Log a refusal for tools like fail2ban: the address and path, never what was sent.
    fn refused(&self, req: &Request, why: &str) {
        let msg = format!(
            "client {} refused for {}: {why}",
            req.client_addr(),
            req.path()
        );
        self.host.log(Level::Warn, &msg);
    }
}

impl Case for BasicAuth {
    const NAME: &'static CStr = c"basic_auth";
    // Every method, OPTIONS included (as nginx's auth_basic): a protected page stays
    // protected whatever is asked of it.
    const ALLOW: &'static CStr = c"*";
    const REWRITES: bool = true;
    // A bcrypt check takes milliseconds: off the event loop.
    const MAY_BLOCK: bool = true;

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let conf: Conf = settings.parse()?;
        let areas = Self::areas(conf, &host)?;
        Ok(BasicAuth { areas, host })
    }

    fn test(&self, req: &Request) -> bool {
        self.area(req).is_some()
    }

    fn act(&self, req: &Request, resp: &mut Response) -> Outcome {
        let Some(area) = self.area(req) else {
            return Outcome::Declined;
        };
        match self.user(area, req) {
            Some(user) => resp
                .set_var("REMOTE_USER", &user)
                .and_then(|()| resp.set_var("AUTH_TYPE", "Basic"))
                .map_or(Outcome::Error, |()| Outcome::Continue),
            None => resp
                .header("WWW-Authenticate", &area.challenge)
                .and_then(|()| resp.error(401, "this page needs a user name and password"))
                .into(),
        }
    }
}

plugin_api::export_case!(BasicAuth);

#[cfg(test)]
mod tests {
    use super::BasicAuth;
    use plugin_api::testing::{TempRoot, TestCase, TestRequest};
    use plugin_api::Outcome;

    /// alice / "wonder land" (htpasswd -B -C 4).
    const ALICE: &str = "alice:$2y$04$B/GRR97FQeSBDSIPiuOWdeALcE94ImqSBVrJQRMd0e1Hp9NOQxZTa\n";
    /// "Basic " + base64("alice:wonder land").
    const ALICE_AUTH: &str = "Basic YWxpY2U6d29uZGVyIGxhbmQ=";

    fn case(dir: &TempRoot, realm: &str) -> TestCase<BasicAuth> {
        let file = dir.file("htpasswd", ALICE);
        let json = format!(
            r#"{{"areas": [{{"prefix": "/private/", "realm": {realm:?}, "htpasswd": {:?}}}]}}"#,
            file.display()
        );
        TestCase::<BasicAuth>::create(&json).unwrap()
    }

    #[test]
    fn only_paths_under_a_prefix_are_taken() {
        let dir = TempRoot::new();
        let c = case(&dir, "r");
        assert!(c.test(&TestRequest::get("/private")));
        assert!(c.test(&TestRequest::get("/private/a/b.txt")));
        assert!(!c.test(&TestRequest::get("/privateer")));
        assert!(!c.test(&TestRequest::get("/")));
    }

    #[test]
    fn no_credentials_get_401_and_a_challenge_with_the_realm_quoted() {
        let dir = TempRoot::new();
        let r = case(&dir, r#"Say "hi" \ bye"#).act(&TestRequest::get("/private/x"));
        assert_eq!(r.error.as_ref().map(|e| e.0), Some(401));
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Basic realm="Say \"hi\" \\ bye", charset="UTF-8""#)
        );
        assert!(r.vars.is_empty());
    }

    #[test]
    fn the_right_password_goes_on_with_remote_user_and_auth_type() {
        let dir = TempRoot::new();
        let req = TestRequest::get("/private/x").header("Authorization", ALICE_AUTH);
        let r = case(&dir, "r").act(&req);
        assert_eq!(r.outcome, Outcome::Continue);
        assert_eq!(r.error, None);
        assert_eq!(
            r.vars,
            vec![
                ("REMOTE_USER".into(), "alice".into()),
                ("AUTH_TYPE".into(), "Basic".into())
            ]
        );
    }

    #[test]
    fn a_wrong_password_gets_401_and_a_log_line_without_it() {
        let dir = TempRoot::new();
        let c = case(&dir, "r");
        // alice:hunter2
        let req =
            TestRequest::get("/private/x").header("Authorization", "Basic YWxpY2U6aHVudGVyMg==");
        let r = c.act(&req);
        assert_eq!(r.error.as_ref().map(|e| e.0), Some(401));
        assert!(r.vars.is_empty());
        let log = format!("{:?}", c.log());
        assert!(
            log.contains("client 127.0.0.1 refused for /private/x: wrong password"),
            "{log}"
        );
        assert!(
            !log.contains("hunter2") && !log.contains("YWxpY2U6aHVudGVyMg"),
            "{log}"
        );
    }

    #[test]
    fn two_authorization_fields_are_malformed() {
        let dir = TempRoot::new();
        let req = TestRequest::get("/private/x")
            .header("Authorization", ALICE_AUTH)
            .header("Authorization", ALICE_AUTH);
        let c = case(&dir, "r");
        assert_eq!(c.act(&req).error.map(|e| e.0), Some(401));
        assert!(format!("{:?}", c.log()).contains("malformed Authorization field"));
    }

    #[test]
    fn bad_settings_stop_start_up() {
        let dir = TempRoot::new();
        let file = dir.file("htpasswd", ALICE).display().to_string();
        let bad = |area: &str| {
            let json = format!(r#"{{"areas": [{area}]}}"#);
            TestCase::<BasicAuth>::create(&json)
                .err()
                .unwrap_or_default()
        };
        let area = |prefix: &str, realm: &str, file: &str| {
            format!(r#"{{"prefix": {prefix:?}, "realm": {realm:?}, "htpasswd": {file:?}}}"#)
        };
        assert!(bad("").contains("expected at least one"));
        assert!(bad(&area("/p", "r", "htpasswd")).contains("expected an absolute path"));
        assert!(bad(&area("p", "r", &file)).contains("must start with '/'"));
        assert!(bad(&area("/p", "", &file)).contains("expected printable ASCII"));
        assert!(bad(&area("/p", "a\nb", &file)).contains("expected printable ASCII"));
        assert!(bad(&area("/p", "r", "/nonexistent/pw"))
            .contains("cannot read the htpasswd file /nonexistent/pw"));
        assert!(bad(r#"{"prefix": "/p", "realm": "r"}"#).contains("missing field `htpasswd`"));
        assert!(bad(&format!(
            r#"{{"prefix": "/p", "realm": "r", "htpasswd": {file:?}, "user": "x"}}"#
        ))
        .contains("unknown field `user`"));
    }
}
