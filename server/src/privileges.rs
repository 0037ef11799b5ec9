//! Who workers run as: started as root, they become `user` (and `group`) before loading any
//! plugin; files they must write later (the access log) are handed to that user.

use nix::unistd::{Gid, Group, Uid, User};
use std::path::Path;

/// The user and group workers run as.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// The identity to switch to: none unless we are root and `user` is set. As root without
/// `user`, workers (and the scripts they run) stay root, with a warning.
pub fn target(user: Option<&str>, group: Option<&str>) -> Result<Option<Identity>, String> {
    let root = Uid::effective().is_root();
    let Some(name) = user else {
        return Ok(None);
    };
    if !root {
        return Ok(None);
    }
    let found = User::from_name(name)
        .map_err(|e| format!("user {name:?}: {e}"))?
        .ok_or_else(|| format!("user = {name:?} is not a user on this system\n  fix: name an existing user (e.g. \"nobody\", or one made for this server)"))?;
    let gid = match group {
        None => found.gid,
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| format!("group {g:?}: {e}"))?
                .ok_or_else(|| format!("group = {g:?} is not a group on this system\n  fix: name an existing group, or leave `group` out for {name}'s own"))?
                .gid
        }
    };
    Ok(Some(Identity {
        name: name.to_string(),
        uid: found.uid,
        gid,
    }))
}

/// Say what the settings mean for this process (the master, once at start).
pub fn explain(user: Option<&str>) {
    let root = Uid::effective().is_root();
    match (root, user) {
        (true, None) => log::warn!("running as root without `user`: workers and the scripts they run stay root\n  fix: set user = \"nobody\" (or a user made for this server) in server.toml"),
        (false, Some(u)) => log::warn!("user = {u:?} is ignored: only a server started as root can switch user"),
        _ => {}
    }
}

/// Become `id` for good: supplementary groups, group, then user. Call it while this
/// process has one thread (the kernel's ids are per thread; libc changes every thread, but
/// there should be nothing else running yet).
pub fn become_(id: &Identity) -> Result<(), String> {
    let why =
        |what: &str, e: nix::Error| format!("cannot switch to user {:?}: {what}: {e}", id.name);
    nix::unistd::setgroups(&[id.gid]).map_err(|e| why("setgroups", e))?;
    nix::unistd::setgid(id.gid).map_err(|e| why("setgid", e))?;
    nix::unistd::setuid(id.uid).map_err(|e| why("setuid", e))?;
    Ok(())
}

/// Create `path` if missing and give it to `id`, so a worker running as that user can open
/// it (and open it anew after a rotation), as nginx does with its logs.
pub fn hand_over(path: &Path, id: Option<&Identity>) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open the access log {}: {e}", path.display()))?;
    if let Some(id) = id {
        rustix::fs::fchown(
            &file,
            Some(rustix::fs::Uid::from_raw(id.uid.as_raw())),
            None,
        )
        .map_err(|e| {
            format!(
                "cannot give the access log {} to {}: {e}",
                path.display(),
                id.name
            )
        })?;
    }
    Ok(())
}
