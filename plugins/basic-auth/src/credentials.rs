//! The `Authorization: Basic` credentials of a request (RFC 7617, RFC 9110 §11.6.2), read
//! strictly: anything else is no credentials at all.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use plugin_api::Request;

/// A user name and password as the client sent them.
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// What the request's `Authorization` field holds.
pub enum Sent {
    /// No `Authorization` field: a first visit, answered with the challenge.
    Nothing,
    /// A field that is not well-formed Basic credentials, or more than one field.
    Malformed,
    Basic(Credentials),
}

/// Read the request's credentials.
pub fn of(req: &Request) -> Sent {
    let mut fields = req
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"authorization"))
        .map(|(_, v)| v);
    match (fields.next(), fields.next()) {
        (None, _) => Sent::Nothing,
        (Some(value), None) => parse(value).map_or(Sent::Malformed, Sent::Basic),
        (Some(_), Some(_)) => Sent::Malformed,
    }
}

/// `Basic` (any case), one or more spaces, then the base64 (RFC 4648, padded) of UTF-8
/// `user-id ":" password`, where the user-id has no `:` and neither has control characters.
pub fn parse(value: &[u8]) -> Option<Credentials> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let token = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
    let text = String::from_utf8(STANDARD.decode(token).ok()?).ok()?;
    let (user, password) = text.split_once(':')?;
    if text.chars().any(char::is_control) {
        return None;
    }
    Some(Credentials {
        user: user.into(),
        password: password.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn pair(value: &str) -> Option<(String, String)> {
        parse(value.as_bytes()).map(|c| (c.user, c.password))
    }

    #[test]
    fn basic_credentials_are_read_whatever_the_scheme_case() {
        let want = Some(("Aladdin".into(), "open sesame".into()));
        assert_eq!(pair("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), want);
        assert_eq!(pair("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), want);
        assert_eq!(pair("BASIC  QWxhZGRpbjpvcGVuIHNlc2FtZQ== "), want);
    }

    #[test]
    fn the_password_may_hold_colons_and_utf8() {
        // "test:123£" from RFC 7617 §2.1's charset example, and a colon in the password.
        assert_eq!(
            pair("Basic dGVzdDoxMjPCow=="),
            Some(("test".into(), "123£".into()))
        );
        assert_eq!(pair("Basic YTpiOmM="), Some(("a".into(), "b:c".into())));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "Basic",
            "Basic ",
            "Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Basicx QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Basic\tQWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ", // padding missing
            "Basic QWxhZGRp bjpvcGVuIHNlc2FtZQ==", // space inside
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==,", // a list
            "Basic QWxhZGRpbg==",               // no ':'
            "Basic /w==",                       // not UTF-8
            "Basic YQl4OmI=",                   // a tab in the user-id
            "Basic YTpiDWM=",                   // a CR in the password
        ] {
            assert!(pair(bad).is_none(), "{bad:?}");
        }
    }
}
