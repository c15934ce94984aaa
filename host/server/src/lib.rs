//! The Cloister host: runs **inside the confidential VM**.
//!
//! It reads a configuration ([`config`]), verifies every plugin's signature
//! against the signer keys the configuration trusts for it, loads the plugins
//! into the sandboxed runtime, records what it loaded in the measurement log
//! ([`load`]), and serves the HTTP API ([`api`]) over RA-TLS ([`ratls`]):
//! TLS whose certificate carries SNP evidence for its key, plus fresh
//! evidence bound to each session.
//!
//! Loading fails closed: one bad plugin stops the host from starting; it never
//! serves a partially trusted set.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod cli;
pub mod config;
pub mod listener;
pub mod load;
pub mod ratls;
pub mod transparency;
pub mod tunnel;

/// An error and its causes on one line, `outer: cause: cause`, for logs
/// (errors here never interpolate their source; see docs/threat-model.md,
/// class 11).
pub use cloister_display::error_chain;
