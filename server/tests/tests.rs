//! The integration tests: one binary, a module per area, every test against a real server
//! process over real sockets.

mod support;

/// The start-up banner: plain through a pipe, coloured on a terminal.
mod banner;
/// What a person sees, in headless Chromium (skipped without it).
mod browser;
/// One module per case, in chain order.
mod cases;
/// CGI/1.1 (RFC 3875) through the cgi_file plugin.
mod cgi;
/// The chain comes from server.toml: reordering, drop-in plugins, the C plugin.
mod chain;
/// Content coding on the fly and precompressed sidecars (plugins/compress), with real curl.
mod compress;
/// HTTP/1.1 semantics every case gets from the host (RFC 9110 / RFC 9112).
/// ABI 1.1: filters, transforms and rewrites, over the wire.
mod filters;
/// Response headers by rule: security preset, cache lifetimes, CORS (plugins/headers).
mod headers;
/// Dotfiles and dot-folders answer 404 as if absent; the listing agrees.
mod hidden_files;
mod http;
/// Limits and timeouts: each is hit, then a normal request still succeeds.
mod limits;
/// Path safety over the wire: traversal, encoded dots and slashes, NUL, symlinks.
mod paths;
/// Start-up: wrong ABI, missing plugin, bad server.toml, refused settings; plugin panics.
mod plugins;
/// Reloading server.toml on SIGHUP.
mod reload;
/// Graceful shutdown on SIGTERM and SIGQUIT.
mod shutdown;
/// SIGUSR1 reopens the access log; SIGUSR2, SIGWINCH and SIGPIPE are survived.
mod signals;
/// Static files: validators, conditional requests, ranges, content types.
mod static_files;
