//! Typed errors of this crate.

use thiserror::Error;

/// A plugin name or version is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The plugin name does not match `^[a-z0-9][a-z0-9-]{0,62}$`.
    #[error("invalid plugin name {name:?}: {reason}")]
    InvalidPluginName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The version is empty, too long or has a character outside `[0-9A-Za-z.+-]`.
    #[error("invalid plugin version {version:?}: {reason}")]
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
    #[error("cannot generate a signing key: the OS random number generator failed: {reason}")]
    Randomness {
        /// The underlying error.
        reason: String,
    },
    /// The text is not a PEM-encoded PKCS#8 Ed25519 private key.
    #[error("not a valid PKCS#8 PEM Ed25519 private key: {reason}")]
    PrivateKeyPem {
        /// The underlying error.
        reason: String,
    },
    /// The text is not a PEM-encoded SPKI Ed25519 public key.
    #[error("not a valid SPKI PEM Ed25519 public key: {reason}")]
    PublicKeyPem {
        /// The underlying error.
        reason: String,
    },
    /// The 32 bytes are not a valid Ed25519 public key.
    #[error("invalid Ed25519 public key bytes: {reason}")]
    PublicKeyBytes {
        /// The underlying error.
        reason: String,
    },
    /// A key could not be encoded as PEM.
    #[error("cannot encode the {what} as PEM: {reason}")]
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
    #[error("cannot sign release: {0}")]
    Name(#[from] NameError),
    /// The statement could not be serialized.
    #[error("cannot sign release: serializing the in-toto statement failed: {reason}")]
    Encode {
        /// The underlying error.
        reason: String,
    },
    /// The signature operation failed.
    #[error("cannot sign release: Ed25519 signing failed: {reason}")]
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
    #[error("malformed DSSE envelope: {reason}")]
    MalformedEnvelope {
        /// What is wrong with it.
        reason: String,
    },
    /// The envelope's `payloadType` is not the in-toto one.
    #[error("unexpected DSSE payloadType {found:?}: expected {expected:?}")]
    UnexpectedPayloadType {
        /// The payload type required.
        expected: String,
        /// The payload type found.
        found: String,
    },
    /// A base64 field could not be decoded.
    #[error("DSSE envelope field {field} is not valid base64: {reason}")]
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
        .present.join(", "),
        .trusted.join(", ")
    )]
    NoTrustedSignature {
        /// Key ids of the envelope's signatures (`""` when a signature has none).
        present: Vec<String>,
        /// Key ids of the trusted keys.
        trusted: Vec<String>,
    },
    /// A signature claims a trusted key id but does not verify with that key.
    #[error("signature by trusted key id {key_id} is invalid: {reason}")]
    SignatureInvalid {
        /// The key id the signature claims.
        key_id: String,
        /// Why it did not verify.
        reason: String,
    },
    /// The (authenticated) payload is not an acceptable in-toto statement.
    #[error("malformed in-toto statement: {reason}")]
    MalformedStatement {
        /// What is wrong with it.
        reason: String,
    },
    /// The statement's `_type` is not in-toto Statement v1.
    #[error("wrong statement _type {found:?}: expected {expected:?}")]
    WrongStatementType {
        /// The type required.
        expected: String,
        /// The type found.
        found: String,
    },
    /// The statement's `predicateType` is not the Cloister plugin release one.
    #[error("wrong statement predicateType {found:?}: expected {expected:?}")]
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
    #[error("malformed subject name {name:?}: {reason}")]
    MalformedSubjectName {
        /// The subject name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The predicate names a different plugin or version than the subject.
    #[error("predicate names {predicate:?} but the subject is {subject:?}")]
    PredicateMismatch {
        /// `<plugin>@<version>` of the subject.
        subject: String,
        /// `<plugin>@<version>` of the predicate.
        predicate: String,
    },
    /// The component's SHA-256 is not the one that was signed.
    #[error("component digest mismatch: the signed statement expects sha256 {expected}, the component has sha256 {actual}")]
    DigestMismatch {
        /// Signed digest, lowercase hex.
        expected: String,
        /// Digest of the component given, lowercase hex.
        actual: String,
    },
}
