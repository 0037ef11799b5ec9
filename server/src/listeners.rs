//! The listening sockets: bound from `listen`, or inherited (systemd socket activation, a
//! binary upgrade, a master handing them to its workers) through LISTEN_FDS.

use std::net::{SocketAddr, TcpListener};

/// One listening socket and the `listen` entry it serves.
pub struct Bound {
    /// The address as configured (its port may be 0).
    pub wanted: SocketAddr,
    pub local: SocketAddr,
    pub socket: TcpListener,
}

/// `http://ADDR/` or `https://ADDR/` for a bound socket, as the banner and the log say it.
pub fn url(b: &Bound, config: &crate::config::Config) -> String {
    let i = config.listen.iter().position(|w| *w == b.wanted);
    let tls = i
        .and_then(|i| config.tls.get(i))
        .is_some_and(Option::is_some);
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}/", b.local)
}

/// Sockets handed to this process in LISTEN_FDS (from the first, 3, on). The variables are
/// removed, so nothing this process starts sees them.
pub fn inherited() -> Result<Vec<TcpListener>, String> {
    let mut fds = listenfd::ListenFd::from_env();
    (0..fds.len())
        .filter_map(|i| fds.take_tcp_listener(i).transpose())
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| {
            format!("LISTEN_FDS: an inherited descriptor is not a TCP listening socket: {e}")
        })
}

/// The sockets for `config.listen`: one already open for the same entry is shared
/// (`current` is left as it is, so a failure changes nothing), an inherited one with the same
/// address is taken (an entry with port 0 takes one on its IP), the rest are bound. Inherited
/// sockets nothing asks for are closed, with a warning. Each gets `defer_accept` as
/// configured (a reload that changes it changes the sockets it keeps too) and `tune`.
pub fn open(
    config: &crate::config::Config,
    current: &[Bound],
    inherited: Vec<TcpListener>,
) -> Result<Vec<Bound>, String> {
    let out = gather(&config.listen, current, inherited, &config.path)?;
    for b in &out {
        if let Err(e) = crate::server::defer_accept(&b.socket, config.defer_accept) {
            log::warn!("{}: cannot set TCP_DEFER_ACCEPT: {e}", b.local);
        }
        if let Err(e) = crate::server::tune(&b.socket) {
            log::warn!(
                "{}: cannot set TCP_NODELAY or TCP_NOTSENT_LOWAT: {e}",
                b.local
            );
        }
    }
    Ok(out)
}

/// Why `w` could not be bound, and the fix that fits the cause.
fn bind_error(w: SocketAddr, e: &std::io::Error, config: &std::path::Path) -> String {
    use std::io::ErrorKind::{AddrInUse, AddrNotAvailable, PermissionDenied};
    let fix = match e.kind() {
        AddrInUse => "another program (or this server) listens there: stop it, or choose a free port",
        AddrNotAvailable => "no interface of this machine has that address (`ip addr` lists them): use one of those, or 0.0.0.0 / [::] for all",
        PermissionDenied => "ports below 1024 need root or CAP_NET_BIND_SERVICE: start as root (the workers still drop to `user`), or use a port above 1023",
        _ if matches!(w.ip(), std::net::IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80) => {
            "a link-local address needs an interface, which `listen` cannot name: use a global address, or [::]"
        }
        _ => "choose another address",
    };
    format!(
        "cannot listen on {w}: {e}\n  fix: {fix}, with --listen or `listen` in {}",
        config.display()
    )
}

/// The sockets for `wanted`, shared, inherited or bound (see `open`).
fn gather(
    wanted: &[SocketAddr],
    current: &[Bound],
    mut inherited: Vec<TcpListener>,
    config: &std::path::Path,
) -> Result<Vec<Bound>, String> {
    let mut out = Vec::with_capacity(wanted.len());
    for &w in wanted {
        if let Some(b) = current.iter().find(|b| b.wanted == w) {
            let socket = b
                .socket
                .try_clone()
                .map_err(|e| format!("cannot share a listening socket: {e}"))?;
            out.push(Bound {
                wanted: w,
                local: b.local,
                socket,
            });
            continue;
        }
        let matches = |l: &TcpListener| {
            l.local_addr()
                .is_ok_and(|a| a == w || (w.port() == 0 && a.ip() == w.ip()))
        };
        if let Some(i) = inherited.iter().position(matches) {
            let socket = inherited.swap_remove(i);
            let local = socket.local_addr().map_err(|e| e.to_string())?;
            socket.set_nonblocking(true).map_err(|e| e.to_string())?;
            out.push(Bound {
                wanted: w,
                local,
                socket,
            });
            continue;
        }
        let socket = crate::server::bind(w).map_err(|e| bind_error(w, &e, config))?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        out.push(Bound {
            wanted: w,
            local,
            socket,
        });
    }
    for l in inherited {
        log::warn!(
            "an inherited listening socket ({}) is not in `listen`; closing it",
            l.local_addr().map_or("?".into(), |a| a.to_string())
        );
    }
    Ok(out)
}
