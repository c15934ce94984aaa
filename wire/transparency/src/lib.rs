//! Cloister's use of its transparency log: the typed statements it holds
//! ([`statement`]), the evidence a host carries and its offline verification ([`evidence`]),
//! and reading a log from its tiles (replaying it, building proofs) ([`replay`]). Pure: every
//! function takes bytes or a fetch function and returns a verdict.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod evidence;
pub mod replay;
pub mod statement;

pub use evidence::{
    newest_revocations, verify_published, verify_transparency, NewestRevocations,
    TransparencyError, TransparencyEvidence, TransparencyVerdict,
};
pub use statement::{NamedDigest, Statement, StatementError};
