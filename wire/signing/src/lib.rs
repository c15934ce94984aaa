//! Release signing and verification for Cloister plugin components.
//!
//! A plugin release is a WebAssembly component plus a detached signature
//! file. The signature file is a [DSSE] envelope (protocol v1, "DSSEv1"
//! pre-authentication encoding) whose payload is an [in-toto Statement v1]:
//!
//! ```json
//! {"_type":"https://in-toto.io/Statement/v1",
//!  "subject":[{"name":"<plugin>@<version>","digest":{"sha256":"<hex>"}}],
//!  "predicateType":"https://cloister.dev/plugin-release/v1",
//!  "predicate":{"plugin":"<plugin>","version":"<version>"}}
//! ```
//!
//! The envelope's `payloadType` is `application/vnd.in-toto+json`, and every
//! signature is an Ed25519 signature over `PAE(payloadType, payload)`:
//!
//! ```json
//! {"payload":"<base64>","payloadType":"application/vnd.in-toto+json",
//!  "signatures":[{"keyid":"<key id>","sig":"<base64 of 64 bytes>"}]}
//! ```
//!
//! A key id is the lowercase hex SHA-256 of the raw 32-byte Ed25519 public
//! key. Keys are exchanged as PEM: PKCS#8 for private keys, SPKI for public
//! keys.
//!
//! There is no well-maintained Rust DSSE crate, so the pre-authentication
//! encoding ([`pae`]) and the envelope are implemented here by hand; both are
//! small. Cryptography is `ed25519-dalek`, and verification uses
//! `verify_strict` (rejects small-order keys and malleable signatures).
//!
//! Verification ([`verify_release`]) authenticates the payload *before* it
//! interprets it: the statement is parsed only after a signature by a
//! trusted key has been checked.
//!
//! Base64 fields are written in standard (RFC 4648 §4, padded) encoding; on
//! input both the standard and the URL-safe alphabet are accepted, as the
//! DSSE specification allows.
//!
//! This crate does no I/O: bytes in, verdict out.
//!
//! [DSSE]: https://github.com/secure-systems-lab/dsse
//! [in-toto Statement v1]: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod envelope;
mod error;
mod keys;
mod names;
mod statement;

pub use envelope::{pae, sign_release, verify_release, Envelope, Signature, VerifiedRelease};
pub use error::{KeyError, NameError, SignError, VerifyError};
pub use keys::{PublicKey, SigningKey};
pub use names::{validate_plugin_name, validate_version};
pub use statement::ReleaseStatement;
pub use zeroize::Zeroizing;

/// DSSE `payloadType` of a Cloister release envelope (an in-toto Statement).
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of a Cloister plugin release statement.
pub const PREDICATE_TYPE: &str = "https://cloister.dev/plugin-release/v1";

#[cfg(test)]
mod tests;
