//! The integration tests: one binary, a module per area, every test against a real server
//! process over real sockets.

mod support;

/// C plugins across ABI minors: the frozen 1.0 header, a short 1.1 descriptor, a C filter.
mod abi;
/// access: allow/deny by client address per prefix, IPv4 and IPv6 loopback.
mod access;
/// The start-up banner: plain through a pipe, coloured on a terminal.
mod banner;
/// basic_auth: protected prefixes, htpasswd users, curl -u as the client.
mod basic_auth;
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
/// error_pages: the site's own page for every error answer, the host's own included.
mod error_pages;
/// ABI 1.1: filters, transforms and rewrites, over the wire.
mod filters;
/// docs/plugins.md is run: its commands, their output, its excerpts of the templates.
mod guide;
/// HTTP/2 with prior knowledge on a plain port (RFC 9113 §3.3).
mod h2c;
/// Response headers by rule: security preset, cache lifetimes, CORS (plugins/headers).
mod headers;
/// Dotfiles and dot-folders answer 404 as if absent; the listing agrees.
mod hidden_files;
/// HTTP/1.1 semantics every case gets from the host (RFC 9110 / RFC 9112).
mod http;
/// Limits and timeouts: each is hit, then a normal request still succeeds.
mod limits;
/// Path safety over the wire: traversal, encoded dots and slashes, NUL, symlinks.
mod paths;
/// Start-up: wrong ABI, missing plugin, bad server.toml, refused settings; plugin panics.
mod plugins;
/// Behind a trusted reverse proxy: X-Forwarded-For and X-Forwarded-Proto.
mod proxy;
/// redirect: rules answer 301-308 with an encoded Location; open redirects refused.
mod redirect;
/// Reloading server.toml on SIGHUP.
mod reload;
/// Running as a service: user, sd_notify, socket activation, pid file, man page.
mod service;
/// Graceful shutdown on SIGTERM and SIGQUIT.
mod shutdown;
/// SIGUSR1 reopens the access log; SIGUSR2, SIGWINCH and SIGPIPE are survived.
mod signals;
/// [[sites]]: routing by Host, per-site roots, chains and settings, https_redirect.
mod sites;
/// Static files: validators, conditional requests, ranges, content types.
mod static_files;
/// status: counters as JSON and Prometheus text.
mod status;
/// TLS listeners: HTTPS with HTTP/1.1 and HTTP/2 (curl, openssl s_client), certificates by
/// SNI, reload, start-up errors, self-signed mode, and HTTP/2 abuse (Python's h2).
mod tls;
/// try_files: clean URLs and single-page-app fallback by rewriting to the first candidate.
mod try_files;
/// Binary upgrade: USR2, WINCH, QUIT.
mod upgrade;
/// Worker processes: crashes and stalls cost one request; respawn, back-off.
mod workers;
