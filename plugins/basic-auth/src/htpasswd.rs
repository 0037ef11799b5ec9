//! The htpasswd file (Apache's `user:hash` lines): which hashes are accepted, and checking a
//! password against them in constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::path::Path;
use subtle::ConstantTimeEq;

/// What every refusal of a hash says is expected, and how to make one.
const EXPECTED: &str = "expected: a bcrypt ($2y$), SHA-256/512-crypt ($5$, $6$) or {SHA} hash";

/// A stored password hash of a kind this server checks.
#[derive(Clone, Debug)]
pub enum Hash {
    /// `$2y$`, `$2b$`, `$2a$` (htpasswd -B): verified by the `bcrypt` crate.
    Bcrypt(String),
    /// `$5$`, `$6$` (htpasswd -2 / -5): verified by the `sha-crypt` crate.
    ShaCrypt(String),
    /// `{SHA}` (htpasswd -s): base64 of an unsalted SHA-1; accepted with a warning.
    Sha1([u8; 20]),
}

impl Hash {
    /// Read a hash as written in the file; `Err` names its kind and why it is refused.
    pub fn parse(text: &str) -> Result<Hash, String> {
        if let Some(b64) = text.strip_prefix("{SHA}") {
            let digest = STANDARD.decode(b64).ok().and_then(|d| d.try_into().ok());
            return digest
                .map(Hash::Sha1)
                .ok_or_else(|| "its {SHA} hash is not the base64 of 20 bytes".into());
        }
        if ["$2y$", "$2b$", "$2a$"].iter().any(|p| text.starts_with(p)) {
            bcrypt_shape(text).map(|()| Hash::Bcrypt(text.into()))
        } else if text.starts_with("$5$") || text.starts_with("$6$") {
            sha_crypt_shape(text).map(|()| Hash::ShaCrypt(text.into()))
        } else {
            Err(refused_kind(text).into())
        }
    }

    /// Does `password` match? Every kind compares in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        #[cfg(test)]
        tests::VERIFIED.with(|n| n.set(n.get() + 1));
        match self {
            Hash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            Hash::ShaCrypt(h) => {
                use sha_crypt::PasswordVerifier;
                let checker = sha_crypt::ShaCrypt::default();
                checker.verify_password(password, h.as_str()).is_ok()
            }
            Hash::Sha1(want) => Sha1::digest(password).as_slice().ct_eq(want).into(),
        }
    }

    /// How costly a check is, to pick the dummy for unknown users: the dearest kind.
    fn cost_rank(&self) -> u8 {
        match self {
            Hash::Bcrypt(_) => 2,
            Hash::ShaCrypt(_) => 1,
            Hash::Sha1(_) => 0,
        }
    }
}

/// A bcrypt hash the crate can read, with a cost it accepts (4-31).
fn bcrypt_shape(text: &str) -> Result<(), String> {
    let parts: bcrypt::HashParts = text
        .parse()
        .map_err(|e| format!("its bcrypt hash is malformed ({e})"))?;
    match parts.get_cost() {
        4..=31 => Ok(()),
        cost => Err(format!("its bcrypt cost {cost} is outside 4-31")),
    }
}

/// `$5$[rounds=N$]salt$hash` or the same with `$6$`: the shape sha-crypt's verify reads.
fn sha_crypt_shape(text: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("its SHA-crypt hash is malformed ({why})"));
    let Ok(mcf) = sha_crypt::PasswordHashRef::new(text) else {
        return bad("not in modular crypt format");
    };
    let mut fields: Vec<&str> = mcf.fields().map(|f| f.as_str()).collect();
    if fields.first().is_some_and(|f| f.starts_with("rounds=")) {
        let rounds = fields.remove(0);
        if rounds.parse::<sha_crypt::Params>().is_err() {
            return bad("rounds must be 1000 to 999999999");
        }
    }
    let want = if mcf.id() == "5" { 43 } else { 86 };
    let crypt64 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    };
    match fields[..] {
        [salt, hash] if !salt.is_empty() && hash.len() == want && crypt64(hash) => Ok(()),
        _ => bad("expected $id$[rounds=N$]salt$hash"),
    }
}

/// Why a hash of another kind is refused, named as htpasswd names it.
fn refused_kind(text: &str) -> &'static str {
    if text.starts_with("$apr1$") {
        "its hash is Apache MD5 ($apr1$, htpasswd -m), which is weak and not accepted"
    } else if text.starts_with("$1$") {
        "its hash is MD5-crypt ($1$), which is weak and not accepted"
    } else if text.starts_with('$') {
        "its hash is of a kind this server does not check"
    } else {
        "its password is plain text or crypt DES (htpasswd -p, -d), which are not accepted"
    }
}

/// The users of one htpasswd file.
#[derive(Debug, Default)]
pub struct Users {
    by_name: HashMap<String, Hash>,
    /// Checked for an unknown user, so that the answer takes as long as for a known one.
    dummy: Option<Hash>,
    /// Lines whose hash is accepted but weak ({SHA}), for the start-up warning.
    pub weak: Vec<String>,
}

/// The result of checking a user name and password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Ok,
    WrongPassword,
    UnknownUser,
}

impl Users {
    /// Read an htpasswd file's text: `user:hash` lines, `#` comments and blank lines
    /// ignored. The first refused line stops it, named by file, line and user.
    pub fn parse(path: &Path, text: &str) -> Result<Users, String> {
        let mut users = Users::default();
        let mut lines_of: HashMap<String, usize> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{}:{}", path.display(), i + 1);
            let (user, hash) = entry(&at, path, line)?;
            if let Some(first) = lines_of.insert(user.to_string(), i + 1) {
                return Err(format!(
                    "{at}: user {user:?} is already on line {first}\n  fix: keep one line per user"
                ));
            }
            if matches!(hash, Hash::Sha1(_)) {
                users.weak.push(format!("{at}: user {user:?} has a {{SHA}} hash (unsalted SHA-1): accepted, but weak\n  fix: htpasswd -B {} {user}", path.display()));
            }
            users.add(user, hash);
        }
        Ok(users)
    }

    fn add(&mut self, user: &str, hash: Hash) {
        let dearer = match &self.dummy {
            Some(d) => hash.cost_rank() > d.cost_rank(),
            None => true,
        };
        if dearer {
            self.dummy = Some(hash.clone());
        }
        self.by_name.insert(user.to_string(), hash);
    }

    /// How many users the file has.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Check `user`'s `password`. An unknown user still costs one hash check (against the
    /// file's dearest hash), so the time taken does not tell which users exist.
    pub fn check(&self, user: &str, password: &[u8]) -> Check {
        match self.by_name.get(user) {
            Some(hash) if hash.verify(password) => Check::Ok,
            Some(_) => Check::WrongPassword,
            None => {
                if let Some(dummy) = &self.dummy {
                    std::hint::black_box(dummy.verify(password));
                }
                Check::UnknownUser
            }
        }
    }
}

/// One `user:hash` line (an Apache file may add `:comment` fields; they are ignored).
fn entry<'a>(at: &str, path: &Path, line: &'a str) -> Result<(&'a str, Hash), String> {
    let file = path.display();
    let fix = format!("fix: write `user:hash` lines, e.g. with `htpasswd -B {file} USER`");
    let Some((user, rest)) = line.split_once(':') else {
        return Err(format!(
            "{at}: no ':' between user and hash\n  {EXPECTED}\n  {fix}"
        ));
    };
    let hash = rest.split(':').next().unwrap_or("");
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(format!(
            "{at}: the user name is empty or has control characters\n  {fix}"
        ));
    }
    let hash = Hash::parse(hash).map_err(|why| {
        format!("{at}: user {user:?}: {why}\n  {EXPECTED}\n  fix: set a new password with `htpasswd -B {file} {user}`")
    })?;
    Ok((user, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Hash checks made on this thread.
        pub static VERIFIED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Lines made by Apache's htpasswd 2.4 (-B -C 4, -2, -5, -s, -m, -d, -p).
    const FILE: &str = "\
# staff
alice:$2y$04$B/GRR97FQeSBDSIPiuOWdeALcE94ImqSBVrJQRMd0e1Hp9NOQxZTa

bob:$5$lngwOHfpvMNLEIS7$WtU3LW2w7iQKD1rgFBlqJoGi/lhZmSlZRFhaimJ9xG7\r
carol:$6$XKWH8zi9lwMbqg6x$s3YGsCvVXDPOTgRQEBNBoa2TowK108lTpXnApF8qkTkiseqnyYpZ9VYHxU6iJtqMRDS1.7tVrVYF685CxpC6l.
dave:{SHA}v83z5sps70VUO/u1dQnJKuyaOfs=:a comment field
";

    fn users() -> Users {
        Users::parse(Path::new("/etc/pw"), FILE).unwrap()
    }

    fn refusal(line: &str) -> String {
        Users::parse(Path::new("/etc/pw"), &format!("# x\n{line}\n")).unwrap_err()
    }

    #[test]
    fn every_accepted_kind_checks_its_password() {
        let u = users();
        assert_eq!(u.len(), 4);
        for (user, password) in [
            ("alice", "wonder land"),
            ("bob", "b0b:pass"),
            ("carol", "carol-π"),
            ("dave", "dave"),
        ] {
            assert_eq!(u.check(user, password.as_bytes()), Check::Ok, "{user}");
            assert_eq!(u.check(user, b"guess"), Check::WrongPassword, "{user}");
        }
        assert_eq!(u.check("Alice", b"wonder land"), Check::UnknownUser);
    }

    #[test]
    fn an_unknown_user_costs_a_check_of_the_dearest_hash() {
        let u = users();
        assert!(matches!(u.dummy, Some(Hash::Bcrypt(_))), "{:?}", u.dummy);
        let before = VERIFIED.with(|n| n.get());
        assert_eq!(u.check("mallory", b"x"), Check::UnknownUser);
        assert_eq!(VERIFIED.with(|n| n.get()), before + 1);
    }

    #[test]
    fn sha1_hashes_are_accepted_but_reported_weak() {
        let u = users();
        assert_eq!(u.weak.len(), 1);
        assert!(
            u.weak[0].starts_with("/etc/pw:6: user \"dave\""),
            "{}",
            u.weak[0]
        );
        assert!(
            u.weak[0].contains("htpasswd -B /etc/pw dave"),
            "{}",
            u.weak[0]
        );
    }

    #[test]
    fn weak_or_unknown_kinds_are_refused_naming_file_line_user_and_fix() {
        for (line, why) in [
            ("eve:$apr1$2xlLsUS4$dNYVt8ND6MXS12JYJbp9M0", "Apache MD5"),
            ("eve:$1$abc$def", "MD5-crypt"),
            ("eve:Ov7quqRhFL9zI", "plain text or crypt DES"),
            ("eve:letmein", "plain text or crypt DES"),
            (
                "eve:$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
                "not check",
            ),
        ] {
            let e = refusal(line);
            assert!(e.starts_with("/etc/pw:2: user \"eve\": "), "{e}");
            assert!(e.contains(why), "{e}");
            assert!(e.contains("expected: a bcrypt ($2y$)"), "{e}");
            assert!(
                e.contains("fix: set a new password with `htpasswd -B /etc/pw eve`"),
                "{e}"
            );
            assert!(
                !e.contains(line.split_once(':').unwrap().1),
                "the hash is not shown: {e}"
            );
        }
    }

    #[test]
    fn malformed_hashes_and_lines_are_refused() {
        for (line, why) in [
            ("x:$2y$04$short", "bcrypt hash is malformed"),
            (
                "x:$2y$03$B/GRR97FQeSBDSIPiuOWdeALcE94ImqSBVrJQRMd0e1Hp9NOQxZTa",
                "cost 3",
            ),
            (
                "x:$2x$04$B/GRR97FQeSBDSIPiuOWdeALcE94ImqSBVrJQRMd0e1Hp9NOQxZTa",
                "not check",
            ),
            ("x:$5$salt$tooshort", "SHA-crypt hash is malformed"),
            (
                "x:$5$rounds=10$lngwOHfpvMNLEIS7$WtU3LW2w7iQKD1rgFBlqJoGi/lhZmSlZRFhaimJ9xG7",
                "rounds",
            ),
            (
                "x:$6$lngwOHfpvMNLEIS7$WtU3LW2w7iQKD1rgFBlqJoGi/lhZmSlZRFhaimJ9xG7",
                "malformed",
            ),
            ("x:{SHA}AAAA", "20 bytes"),
            ("no colon", "no ':'"),
            (
                ":$2y$04$B/GRR97FQeSBDSIPiuOWdeALcE94ImqSBVrJQRMd0e1Hp9NOQxZTa",
                "empty",
            ),
        ] {
            let e = refusal(line);
            assert!(e.starts_with("/etc/pw:2: "), "{e}");
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn a_user_on_two_lines_is_refused() {
        let e = Users::parse(
            Path::new("/p"),
            "a:{SHA}v83z5sps70VUO/u1dQnJKuyaOfs=\n\na:{SHA}v83z5sps70VUO/u1dQnJKuyaOfs=\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("/p:3: user \"a\" is already on line 1"),
            "{e}"
        );
    }

    #[test]
    fn rounds_are_read_from_sha_crypt_hashes() {
        // htpasswd -5 -r 1000 zoe zoe
        let line = "zoe:$6$rounds=1000$Pc0sviVNeOE0l2dF$JuTyuI4D5OlLHPPfn19mBsGRe/bwa38RfQr2ZDPBEkvysWJN5eqsmxGKh.6PwO2dGFgNZFG2TL.JjPgGZRC160";
        let u = Users::parse(Path::new("/p"), line).unwrap();
        assert_eq!(u.check("zoe", b"zoe"), Check::Ok);
    }
}
