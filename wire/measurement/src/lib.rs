//! The Cloister measurement log.
//!
//! The host records every plugin and model it loads, in load order. The log
//! is encoded canonically and hashed; the digest is later bound into the
//! AMD SEV-SNP attestation report, and clients recompute it from the log
//! they receive. This crate is pure (no I/O) and the encoding is exact.
//!
//! # Format (`cloister-measurement-log/v1`)
//!
//! The log is the JSON document
//!
//! ```json
//! {"entries":[ENTRY, ...],"format":"cloister-measurement-log/v1"}
//! ```
//!
//! where `entries` is in load order and each `ENTRY` is
//!
//! ```json
//! {"kind":"plugin"|"model","name":STRING,"sha256":HEX64,"signer_key_id":HEX64|null,"version":STRING}
//! ```
//!
//! - `kind`: `"plugin"` (a WebAssembly component) or `"model"`.
//! - `name`, `version`: non-empty strings.
//! - `sha256`: SHA-256 of the loaded bytes, 64 lowercase hex characters.
//! - `signer_key_id`: key id (lowercase hex SHA-256 of the raw Ed25519
//!   public key, 64 characters) of the key whose release signature was
//!   verified, or `null` if the artifact was not signature-checked. The
//!   member is always present.
//!
//! No other members are allowed, at either level.
//!
//! The canonical bytes ([`MeasurementLog::canonical_bytes`]) are the
//! [RFC 8785] JSON Canonicalization Scheme (JCS) serialization of that
//! document: UTF-8, no insignificant whitespace, object members sorted by
//! the UTF-16 code units of their names (for the fixed ASCII names above:
//! the order shown), strings escaped as ECMAScript `JSON.stringify` does
//! (only `"`, `\` and control characters; `\b \t \n \f \r` short forms,
//! other controls as `\u00xx` lowercase). For example, the empty log is
//! exactly `{"entries":[],"format":"cloister-measurement-log/v1"}`.
//!
//! The digest ([`MeasurementLog::digest`]) is SHA-256 over the canonical
//! bytes; [`MeasurementLog::digest_hex`] is its lowercase hex.
//!
//! [`MeasurementLog::from_canonical_bytes`] accepts only input that is
//! byte-for-byte the canonical encoding of a valid log, so a log and its
//! digest correspond one to one.
//!
//! [RFC 8785]: https://www.rfc-editor.org/rfc/rfc8785

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use cloister_display::{Excerpt, Quoted};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Value of the `format` member of a v1 measurement log.
pub const FORMAT: &str = "cloister-measurement-log/v1";

/// Canonical bytes of the empty log.
const EMPTY_LOG: &[u8] = b"{\"entries\":[],\"format\":\"cloister-measurement-log/v1\"}";

/// What was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A WebAssembly plugin component (`"plugin"`).
    Plugin,
    /// A model (`"model"`).
    Model,
}

impl EntryKind {
    /// Every kind, in the order the log's documentation lists them.
    pub const ALL: [EntryKind; 2] = [EntryKind::Plugin, EntryKind::Model];

    /// The kind's name in the log and everywhere else it is written: `"plugin"` or
    /// `"model"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Plugin => "plugin",
            EntryKind::Model => "model",
        }
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A string that names no [`EntryKind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown measurement log entry kind {}: expected \"plugin\" or \"model\"", Quoted(.0))]
pub struct UnknownEntryKind(pub String);

impl std::str::FromStr for EntryKind {
    type Err = UnknownEntryKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownEntryKind(s.chars().take(64).collect()))
    }
}

/// One loaded artifact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Plugin or model.
    pub kind: EntryKind,
    /// Name, non-empty.
    pub name: String,
    /// Version, non-empty.
    pub version: String,
    /// SHA-256 of the loaded bytes, 64 lowercase hex characters.
    pub sha256: String,
    /// Key id of the verified release signer (64 lowercase hex characters),
    /// if the artifact's signature was checked; serialized as `null` otherwise.
    pub signer_key_id: Option<String>,
}

/// The measurement log could not be extended, encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LogError {
    /// An entry has an empty or malformed field.
    #[error("measurement log entry #{index} ({}): {}", Quoted(.name), Excerpt(.reason))]
    InvalidEntry {
        /// Position of the entry in the log (0-based).
        index: usize,
        /// The entry's name (may be empty).
        name: String,
        /// Which field is wrong and why.
        reason: String,
    },
    /// The log could not be JCS-encoded.
    #[error("cannot encode the measurement log as RFC 8785 JSON: {}", Excerpt(.reason))]
    Encode {
        /// The encoder's complaint.
        reason: String,
    },
    /// The input is not JSON of the measurement log's shape.
    #[error("malformed measurement log: {}", Excerpt(.reason))]
    Malformed {
        /// The parser's complaint.
        reason: String,
    },
    /// The `format` member is not [`FORMAT`].
    #[error("unsupported measurement log format {}: expected {}", Quoted(.found), Quoted(.expected))]
    WrongFormat {
        /// The format required.
        expected: String,
        /// The format found.
        found: String,
    },
    /// The input is a valid log but not in its canonical (RFC 8785) encoding.
    #[error("measurement log is not canonically encoded (RFC 8785 JCS): {}", Excerpt(.reason))]
    NotCanonical {
        /// Where it differs.
        reason: String,
    },
}

/// Serialized shape of the whole log.
#[derive(Serialize)]
struct LogOut<'a> {
    format: &'a str,
    entries: &'a [Entry],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogIn {
    format: String,
    entries: Vec<Entry>,
}

/// Every artifact the host loaded, in load order, with its canonical
/// encoding kept up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementLog {
    entries: Vec<Entry>,
    canonical: Vec<u8>,
}

impl Default for MeasurementLog {
    fn default() -> Self {
        Self::new()
    }
}

impl MeasurementLog {
    /// An empty log.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            canonical: EMPTY_LOG.to_vec(),
        }
    }

    /// Appends an entry after validating it. On error the log is unchanged.
    pub fn push(&mut self, entry: Entry) -> Result<(), LogError> {
        validate_entry(self.entries.len(), &entry)?;
        self.entries.push(entry);
        match encode(&self.entries) {
            Ok(canonical) => {
                self.canonical = canonical;
                Ok(())
            }
            Err(e) => {
                self.entries.pop();
                Err(e)
            }
        }
    }

    /// The entries, in load order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The RFC 8785 canonical encoding of the log (see the crate docs).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        self.canonical.clone()
    }

    /// SHA-256 of [`Self::canonical_bytes`].
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(&self.canonical).into()
    }

    /// [`Self::digest`] as lowercase hex.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest())
    }

    /// Parses a log, accepting only the exact canonical encoding of a valid
    /// log: right `format`, no unknown members, valid entries, and bytes
    /// identical to their RFC 8785 re-encoding.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, LogError> {
        let parsed: LogIn = serde_json::from_slice(bytes).map_err(|e| LogError::Malformed {
            reason: e.to_string(),
        })?;
        if parsed.format != FORMAT {
            return Err(LogError::WrongFormat {
                expected: FORMAT.to_owned(),
                found: parsed.format,
            });
        }
        for (index, entry) in parsed.entries.iter().enumerate() {
            validate_entry(index, entry)?;
        }
        let canonical = encode(&parsed.entries)?;
        if canonical != bytes {
            let at = canonical
                .iter()
                .zip(bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(canonical.len().min(bytes.len()));
            return Err(LogError::NotCanonical {
                reason: format!(
                    "input differs from its canonical re-encoding at byte {at} \
                     (input is {} bytes, canonical form is {} bytes)",
                    bytes.len(),
                    canonical.len()
                ),
            });
        }
        Ok(Self {
            entries: parsed.entries,
            canonical,
        })
    }
}

/// The domain line of [`model_digest`].
pub const MODEL_DIGEST_DOMAIN: &str = "cloister-model/v1";

/// A model's single measurement digest (the `sha256` of its measurement-log entry): SHA-256
/// over
///
/// ```text
/// cloister-model/v1\n
/// <sha256 hex>  <file name>\n      one line per loaded file, by file name (bytewise)
/// ```
///
/// — the output of `sha256sum` over the loaded files, sorted by name, under a domain line.
/// It can be recomputed with
/// `{ echo cloister-model/v1; sha256sum model.onnx tokenizer.json; } | sha256sum`.
pub fn model_digest<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8; 32])>) -> [u8; 32] {
    let mut lines: Vec<(&str, &[u8; 32])> = files.into_iter().collect();
    lines.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    h.update(MODEL_DIGEST_DOMAIN.as_bytes());
    h.update(b"\n");
    for (name, sha) in lines {
        h.update(hex::encode(sha).as_bytes());
        h.update(b"  ");
        h.update(name.as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}

fn encode(entries: &[Entry]) -> Result<Vec<u8>, LogError> {
    serde_json_canonicalizer::to_vec(&LogOut {
        format: FORMAT,
        entries,
    })
    .map_err(|e| LogError::Encode {
        reason: e.to_string(),
    })
}

fn validate_entry(index: usize, entry: &Entry) -> Result<(), LogError> {
    let invalid = |reason: String| LogError::InvalidEntry {
        index,
        name: entry.name.clone(),
        reason,
    };
    if entry.name.is_empty() {
        return Err(invalid("name is empty".to_owned()));
    }
    if entry.version.is_empty() {
        return Err(invalid("version is empty".to_owned()));
    }
    if !is_lower_hex_64(&entry.sha256) {
        return Err(invalid(format!(
            "sha256 {:?} is not 64 lowercase hex characters",
            entry.sha256
        )));
    }
    if let Some(key_id) = &entry.signer_key_id {
        if !is_lower_hex_64(key_id) {
            return Err(invalid(format!(
                "signer_key_id {key_id:?} is not 64 lowercase hex characters"
            )));
        }
    }
    Ok(())
}

fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;
