//! The integration tests: one binary, a module per area, every test against a real server
//! process over real sockets.

mod support;

/// The start-up banner: plain through a pipe, coloured on a terminal.
mod banner;
/// One module per case, in chain order.
mod cases;
/// CGI/1.1 (RFC 3875) through the cgi_file plugin.
mod cgi;
/// The chain comes from server.toml: reordering, drop-in plugins, the C plugin.
mod chain;
/// HTTP/1.1 semantics every case gets from the host (RFC 9110 / RFC 9112).
mod http;
/// Limits and timeouts: each is hit, then a normal request still succeeds.
mod limits;
/// Path safety over the wire: traversal, encoded dots and slashes, NUL, symlinks.
mod paths;
/// Start-up: wrong ABI, missing plugin, bad server.toml, refused settings; plugin panics.
mod plugins;
/// Reloading server.toml on SIGHUP.
mod reload;
/// Running as a service: user, sd_notify, socket activation, pid file, man page.
mod service;
/// Graceful shutdown on SIGTERM and SIGQUIT.
mod shutdown;
/// SIGUSR1 reopens the access log; SIGUSR2, SIGWINCH and SIGPIPE are survived.
mod signals;
/// Static files: validators, conditional requests, ranges, content types.
mod static_files;
/// Binary upgrade: USR2, WINCH, QUIT.
mod upgrade;
/// Worker processes: crashes and stalls cost one request; respawn, back-off.
mod workers;
