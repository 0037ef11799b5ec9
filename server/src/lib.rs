//! The server as a library: every module of the binary, so benchmarks (and the binary in
//! `main.rs`) can reach the request path. The module map is in README.md.

pub mod access_log;
pub mod banner;
pub mod chain;
pub mod cli;
pub mod config;
pub mod conn;
pub mod control;
pub mod digits;
pub mod error_page;
pub mod errors;
pub mod fault;
pub mod filter;
pub mod h2conn;
pub mod h2send;
pub mod http;
pub mod listeners;
pub mod loops;
pub mod master;
pub mod notify;
pub mod plugin;
pub mod pool;
pub mod privileges;
pub mod recent;
pub mod reply;
pub mod resolve;
pub mod send;
pub mod server;
pub mod shared_file;
pub mod signals;
pub mod sites;
pub mod static_file;
pub mod stats;
pub mod tls;
pub mod wire;
pub mod worker;
