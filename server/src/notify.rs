//! The service manager's readiness protocol (sd_notify): READY=1, RELOADING=1, STOPPING=1
//! as datagrams to $NOTIFY_SOCKET, when there is one.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Send `state` (e.g. "READY=1") to the service manager; nothing when not run by one.
/// Failures are logged, never fatal: serving matters more than telling.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = address(&target).and_then(|addr| {
        let sock = UnixDatagram::unbound()?;
        sock.send_to_addr(state.as_bytes(), &addr)
    });
    if let Err(e) = sent {
        log::warn!("cannot notify the service manager ({state:?}): {e}");
    }
}

/// `/run/systemd/notify`, or `@name` for an abstract socket.
fn address(target: &std::ffi::OsStr) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match target.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(target),
    }
}

/// READY=1 with our pid (the pid changes on a binary upgrade).
pub fn ready() {
    notify(&format!("READY=1\nMAINPID={}", std::process::id()));
}

/// RELOADING=1 with the monotonic time systemd's notify-reload expects.
pub fn reloading() {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let usec = t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

pub fn stopping() {
    notify("STOPPING=1");
}
