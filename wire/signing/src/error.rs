//! Typed errors of this crate.

use cloister_display::{Excerpt, Quoted};
use thiserror::Error;

/// Key ids as `a, b`, each escaped and truncated, at most eight of them.
fn key_ids(ids: &[String]) -> String {
    let mut out: Vec<String> = ids.iter().take(8).map(|k| Excerpt(k).to_string()).collect();
    if ids.len() > 8 {
        out.push(format!("and {} more", ids.len() - 8));
    }
    out.join(", ")
}

/// A plugin name or version is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The plugin name does not match `^[a-z0-9][a-z0-9-]{0,62}$`.
    #[error("invalid plugin name {}: {}", Quoted(.name), Excerpt(.reason))]
    InvalidPluginName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The version is empty, too long or has a character outside `[0-9A-Za-z.+-]`.
    #[error("invalid plugin version {}: {}", Quoted(.version), Excerpt(.reason))]
    InvalidVersion {
        /// The rejected version.
        version: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// A key could not be created, decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error("cannot generate a signing key: the OS random number generator failed: {}", Excerpt(.reason))]
    Randomness {
        /// The underlying error.
        reason: String,
    },
    /// The text is not a PEM-encoded PKCS#8 Ed25519 private key.
    #[error("not a valid PKCS#8 PEM Ed25519 private key: {}", Excerpt(.reason))]
    PrivateKeyPem {
        /// The underlying error.
        reason: String,
    },
    /// The text is not a PEM-encoded SPKI Ed25519 public key.
    #[error("not a valid SPKI PEM Ed25519 public key: {}", Excerpt(.reason))]
    PublicKeyPem {
        /// The underlying error.
        reason: String,
    },
    /// The 32 bytes are not a valid Ed25519 public key.
    #[error("invalid Ed25519 public key bytes: {}", Excerpt(.reason))]
    PublicKeyBytes {
        /// The underlying error.
        reason: String,
    },
    /// A key could not be encoded as PEM.
    #[error("cannot encode the {what} as PEM: {}", Excerpt(.reason))]
    Encode {
        /// Which key ("private key" or "public key").
        what: &'static str,
        /// The underlying error.
        reason: String,
    },
}

/// A release could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignError {
    /// The plugin name or version is invalid.
    #[error("cannot sign release: invalid name or version")]
    Name(#[from] NameError),
    /// The statement could not be serialized.
    #[error("cannot sign release: serializing the in-toto statement failed: {}", Excerpt(.reason))]
    Encode {
        /// The underlying error.
        reason: String,
    },
    /// The signature operation failed.
    #[error("cannot sign release: Ed25519 signing failed: {}", Excerpt(.reason))]
    Signing {
        /// The underlying error.
        reason: String,
    },
}

/// A release envelope was rejected.
///
/// Each variant names the check that failed; nothing in a rejected envelope
/// should be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// The envelope is not valid DSSE JSON.
    #[error("malformed DSSE envelope: {}", Excerpt(.reason))]
    MalformedEnvelope {
        /// What is wrong with it.
        reason: String,
    },
    /// The envelope's `payloadType` is not the in-toto one.
    #[error("unexpected DSSE payloadType {}: expected {}", Quoted(.found), Quoted(.expected))]
    UnexpectedPayloadType {
        /// The payload type required.
        expected: String,
        /// The payload type found.
        found: String,
    },
    /// A base64 field could not be decoded.
    #[error("DSSE envelope field {} is not valid base64: {}", Excerpt(.field), Excerpt(.reason))]
    BadBase64 {
        /// Which field, e.g. `payload` or `signatures[0].sig`.
        field: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// The envelope carries no signature at all.
    #[error("DSSE envelope has no signatures")]
    NoSignatures,
    /// No signature's key id is among the trusted keys.
    #[error(
        "no signature by a trusted key: the envelope is signed by key ids [{}], trusted key ids are [{}]",
        key_ids(.present),
        key_ids(.trusted)
    )]
    NoTrustedSignature {
        /// Key ids of the envelope's signatures (`""` when a signature has none).
        present: Vec<String>,
        /// Key ids of the trusted keys.
        trusted: Vec<String>,
    },
    /// A signature claims a trusted key id but does not verify with that key.
    #[error("signature by trusted key id {} is invalid: {}", Excerpt(.key_id), Excerpt(.reason))]
    SignatureInvalid {
        /// The key id the signature claims.
        key_id: String,
        /// Why it did not verify.
        reason: String,
    },
    /// The (authenticated) payload is not an acceptable in-toto statement.
    #[error("malformed in-toto statement: {}", Excerpt(.reason))]
    MalformedStatement {
        /// What is wrong with it.
        reason: String,
    },
    /// The statement's `_type` is not in-toto Statement v1.
    #[error("wrong statement _type {}: expected {}", Quoted(.found), Quoted(.expected))]
    WrongStatementType {
        /// The type required.
        expected: String,
        /// The type found.
        found: String,
    },
    /// The statement's `predicateType` is not the Cloister plugin release one.
    #[error("wrong statement predicateType {}: expected {}", Quoted(.found), Quoted(.expected))]
    WrongPredicateType {
        /// The predicate type required.
        expected: String,
        /// The predicate type found.
        found: String,
    },
    /// The statement does not have exactly one subject.
    #[error("statement must have exactly one subject, it has {count}")]
    SubjectCount {
        /// How many subjects it has.
        count: usize,
    },
    /// The subject name is not `<plugin>@<version>` with a valid name and version.
    #[error("malformed subject name {}: {}", Quoted(.name), Excerpt(.reason))]
    MalformedSubjectName {
        /// The subject name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The predicate names a different plugin or version than the subject.
    #[error("predicate names {} but the subject is {}", Quoted(.predicate), Quoted(.subject))]
    PredicateMismatch {
        /// `<plugin>@<version>` of the subject.
        subject: String,
        /// `<plugin>@<version>` of the predicate.
        predicate: String,
    },
    /// The component's SHA-256 is not the one that was signed.
    #[error("component digest mismatch: the signed statement expects sha256 {}, the component has sha256 {}", Excerpt(.expected), Excerpt(.actual))]
    DigestMismatch {
        /// Signed digest, lowercase hex.
        expected: String,
        /// Digest of the component given, lowercase hex.
        actual: String,
    },
}
