//! The Cloister transparency log: a C2SP tlog-tiles log of plugin releases, models, CVM
//! images and revocations, signed by the operator and cosigned by independent witnesses.
//!
//! - [`state`]: the single writer — appends, checkpoints, cosigning, crash recovery.
//! - [`disk`]: atomic, durable file writes and the on-disk layout.
//! - [`http`]: the HTTP API — `GET /checkpoint`, `GET /tile/…` (static), `POST /add`
//!   (publishers, bearer token), `POST /cosign` (publishers: refresh the witnesses'
//!   cosignatures now).
//! - [`publishers`]: who may add entries (SHA-256 of their tokens).
//!
//! See `docs/transparency.md` for what is logged and how clients use it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod disk;
pub mod http;
pub mod publishers;
pub mod state;

use cloister_display::Excerpt;

/// Why the log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A file could not be read or written.
    #[error("log storage: {}", Excerpt(.0))]
    Io(String),
    /// The files on disk contradict each other or the log's key.
    #[error("the log's files are inconsistent: {}", Excerpt(.0))]
    Corrupt(String),
    /// The configuration is wrong.
    #[error("log configuration: {}", Excerpt(.0))]
    Config(String),
    /// An entry was refused.
    #[error("entry refused: {}", Excerpt(.0))]
    Refused(String),
    /// The witnesses did not cosign.
    #[error("witnesses: {}", Excerpt(.0))]
    Witnesses(String),
    /// A format error.
    #[error("{0}")]
    Tlog(#[from] cloister_tlog::TlogError),
}
