//! The integration tests: one binary, a module per area, every test against a real server
//! process over real sockets.

mod support;

/// One module per case, in chain order.
mod cases;
/// The chain comes from server.toml: reordering, drop-in plugins, the C plugin.
mod chain;
/// Start-up: wrong ABI, missing plugin, bad server.toml, refused settings; plugin panics.
mod plugins;
