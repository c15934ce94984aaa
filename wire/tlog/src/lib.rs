//! Transparency-log formats of the C2SP family, on this workspace's crypto (sha2 0.11,
//! ed25519-dalek 3). Pure: no I/O, bytes in, verdict out.
//!
//! - [`merkle`]: RFC 6962 hashing, inclusion and consistency proofs (verify and build).
//! - [`note`]: signed notes, Ed25519 (0x01) and timestamped cosignatures (0x04), vkeys.
//! - [`checkpoint`]: `tlog-checkpoint` bodies.
//! - [`tiles`]: `tlog-tiles` paths, tile and bundle encoding, appending, reading hashes.
//! - [`proof`]: the `tlog-proof@v1` format.
//! - [`policy`]: `tlog-policy`, with k-of-n groups.
//! - [`verify`]: a cosigned checkpoint and a proof under a policy, with freshness.
//!
//! Written here rather than taken from `tlog_tiles`/`signed_note`/`ct-merkle`: those lag the
//! workspace's ed25519 and sha2 generations and have no cosignature/v1, tlog-proof or
//! tlog-policy. The tests check this crate against the transparency-dev and C2SP vectors.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod proof;
pub mod tiles;
pub mod verify;

pub use checkpoint::Checkpoint;
pub use merkle::{Hash, EMPTY_ROOT};
pub use note::{KeyType, Note, NoteSigner, VerifierKey};
pub use policy::Policy;
pub use proof::TlogProof;
pub use verify::{verify_checkpoint, verify_proof, Freshness, VerifiedCheckpoint};

use cloister_display::Excerpt;

/// Why a transparency-log object was refused. Each variant names the kind of object; the
/// message says what is wrong with it (never echoing more than an excerpt of input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlogError {
    /// A Merkle proof does not verify, or cannot be built.
    #[error("Merkle proof: {}", Excerpt(.0))]
    Proof(String),
    /// A signed note is malformed.
    #[error("malformed signed note: {}", Excerpt(.0))]
    Note(String),
    /// A signature of a known key does not verify, or none is present.
    #[error("signature: {}", Excerpt(.0))]
    Signature(String),
    /// A verifier or signer key is malformed.
    #[error("key: {}", Excerpt(.0))]
    Key(String),
    /// A checkpoint body is malformed.
    #[error("malformed checkpoint: {}", Excerpt(.0))]
    Checkpoint(String),
    /// A `tlog-proof` is malformed.
    #[error("malformed tlog-proof: {}", Excerpt(.0))]
    ProofFormat(String),
    /// A `tlog-policy` is malformed.
    #[error("malformed tlog-policy: {}", Excerpt(.0))]
    Policy(String),
    /// A tile or entry bundle is malformed or missing.
    #[error("tile: {}", Excerpt(.0))]
    Tile(String),
    /// The checkpoint's origin is not a log the policy trusts.
    #[error("unknown log: {}", Excerpt(.0))]
    UnknownLog(String),
    /// Not enough (fresh) witness cosignatures.
    #[error("witness quorum: {}", Excerpt(.0))]
    Quorum(String),
}
