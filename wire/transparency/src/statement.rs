//! The entries of Cloister's log: typed statements in one canonical encoding.
//!
//! Every entry is the RFC 8785 (JCS) JSON of one of these objects, tagged by `type`; the log
//! and every verifier accept only that exact encoding ([`Statement::from_entry`]), so one
//! statement has one leaf hash.
//!
//! | `type` | members | published by |
//! |---|---|---|
//! | `plugin-release` | `name`, `version`, `component_sha256`, `signer_key_id`, `envelope_sha256` | a feature team |
//! | `model` | `name`, `version`, `sha256` (the model digest), `files` (`name`, `sha256`) | the operator |
//! | `cvm-image` | `launch_measurement` (96 hex), `manifest_sha256`, `inputs` (`name`, `sha256`), `vcpus`, `vcpu_type`, `vmm` | the operator |
//! | `revocation` | `subject` (leaf hash of a release, model or image entry), `reason` | its publisher |
//! | `revocation-list` | `covers` (its own index), `revoked` (sorted subjects) | the log itself |
//! | `ohttp-key-config` | `gateway`, `key_id`, `config` (hex of the RFC 9458 key configuration), `not_before`, `not_after` | the operator |
//! | `token-issuer-key` | `issuer`, `token_type`, `token_key_id` (SHA-256 of the issuer's public key) | the operator |
//!
//! The last two let a client check that the gateway key and the issuer key it was given are
//! the ones everyone is given (key consistency: a key served to one client only would tag it).
//!
//! The log appends a `revocation-list` as the last entry of every checkpoint it publishes:
//! it lists the subject of every `revocation` before it. A host proves non-revocation by
//! proving that list at index `size - 1` of the checkpoint; auditors check every list
//! against the revocations before it (see `docs/transparency.md`).

use cloister_display::{Excerpt, Quoted};
use serde::{Deserialize, Serialize};

use cloister_tlog::merkle::{leaf_hash, Hash};

/// Longest entry the log accepts (entry bundles carry a u16 length).
pub const MAX_ENTRY_BYTES: usize = cloister_tlog::tiles::MAX_ENTRY_BYTES;
/// Longest name, version, reason or input name.
pub const MAX_TEXT: usize = 256;
/// Most files of a model or inputs of an image.
pub const MAX_ITEMS: usize = 64;
/// Longest OHTTP key configuration, in bytes.
pub const MAX_KEY_CONFIG: usize = 512;

/// A file of a model, or an input of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedDigest {
    /// File or input name.
    pub name: String,
    /// SHA-256, 64 lowercase hex.
    pub sha256: String,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Statement {
    /// A signed plugin component release.
    PluginRelease {
        /// Plugin name (as in the measurement log).
        name: String,
        /// Version (as in the measurement log).
        version: String,
        /// SHA-256 of the component bytes.
        component_sha256: String,
        /// Key id of the release signer (SHA-256 of its Ed25519 public key).
        signer_key_id: String,
        /// SHA-256 of the DSSE envelope that signs the release.
        envelope_sha256: String,
    },
    /// A model: its files and their digest.
    Model {
        /// Model name.
        name: String,
        /// Version.
        version: String,
        /// The model digest (`cloister_measurement::model_digest` of `files`).
        sha256: String,
        /// The files it loads.
        files: Vec<NamedDigest>,
    },
    /// A CVM image and the SNP launch measurement it produces.
    CvmImage {
        /// SNP launch digest (MEASUREMENT), 96 lowercase hex.
        launch_measurement: String,
        /// SHA-256 of the image manifest.
        manifest_sha256: String,
        /// Every input the measurement depends on.
        inputs: Vec<NamedDigest>,
        /// vCPU count.
        vcpus: u32,
        /// vCPU type (e.g. `EPYC-v4`).
        vcpu_type: String,
        /// VMM type (e.g. `QEMU`).
        vmm: String,
    },
    /// A release, model or image may no longer be trusted.
    Revocation {
        /// Leaf hash (64 hex) of the entry revoked.
        subject: String,
        /// Why (for humans).
        reason: String,
    },
    /// The log's list of every revoked subject before this entry.
    RevocationList {
        /// This entry's own index: the list covers entries `0..covers`.
        covers: u64,
        /// Subjects, sorted, no duplicates.
        revoked: Vec<String>,
    },
    /// An Oblivious HTTP key configuration (RFC 9458 section 3) a gateway serves.
    OhttpKeyConfig {
        /// The gateway's name (as clients are configured with it).
        gateway: String,
        /// The configuration's key id (its first byte).
        key_id: u32,
        /// The encoded configuration, lowercase hex.
        config: String,
        /// Valid from (Unix seconds).
        not_before: u64,
        /// Valid until (Unix seconds, exclusive).
        not_after: u64,
    },
    /// A Privacy Pass issuer's token key (RFC 9578).
    TokenIssuerKey {
        /// The issuer's name (as in the gateway's challenge).
        issuer: String,
        /// The token type (2: blind RSA).
        token_type: u32,
        /// SHA-256 of the issuer's public key (its `token_key_id`), 64 hex.
        token_key_id: String,
    },
}

/// An entry that is not a valid statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// Not JSON of a statement's shape.
    #[error("malformed log entry: {}", Excerpt(.0))]
    Malformed(String),
    /// A member is out of range or ill-formed.
    #[error("invalid log entry member `{member}`: {}", Excerpt(.reason))]
    Invalid {
        /// The member.
        member: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Valid, but not in its canonical encoding.
    #[error("log entry is not in its canonical (RFC 8785) encoding")]
    NotCanonical,
}

fn hex64(member: &'static str, v: &str) -> Result<(), StatementError> {
    hex_n(member, v, 64)
}

fn hex_n(member: &'static str, v: &str, n: usize) -> Result<(), StatementError> {
    if v.len() == n && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(StatementError::Invalid {
            member,
            reason: format!("{} is not {n} lowercase hex characters", Quoted(v)),
        })
    }
}

fn text(member: &'static str, v: &str) -> Result<(), StatementError> {
    if v.is_empty() || v.len() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(StatementError::Invalid {
            member,
            reason: format!("must be 1 to {MAX_TEXT} bytes without control characters"),
        });
    }
    Ok(())
}

fn items(member: &'static str, v: &[NamedDigest]) -> Result<(), StatementError> {
    if v.is_empty() || v.len() > MAX_ITEMS {
        return Err(StatementError::Invalid {
            member,
            reason: format!("must list 1 to {MAX_ITEMS} items"),
        });
    }
    for (i, it) in v.iter().enumerate() {
        text(member, &it.name)?;
        hex64(member, &it.sha256)?;
        if v[..i].iter().any(|o| o.name == it.name) {
            return Err(StatementError::Invalid {
                member,
                reason: format!("{} is listed twice", Quoted(&it.name)),
            });
        }
    }
    Ok(())
}

impl Statement {
    /// Checks every member.
    pub fn validate(&self) -> Result<(), StatementError> {
        match self {
            Statement::PluginRelease {
                name,
                version,
                component_sha256,
                signer_key_id,
                envelope_sha256,
            } => {
                text("name", name)?;
                text("version", version)?;
                hex64("component_sha256", component_sha256)?;
                hex64("signer_key_id", signer_key_id)?;
                hex64("envelope_sha256", envelope_sha256)
            }
            Statement::Model {
                name,
                version,
                sha256,
                files,
            } => {
                text("name", name)?;
                text("version", version)?;
                hex64("sha256", sha256)?;
                items("files", files)?;
                let decoded: Vec<(String, [u8; 32])> = files
                    .iter()
                    .map(|f| {
                        let mut h = [0u8; 32];
                        hex::decode_to_slice(&f.sha256, &mut h).map(|_| (f.name.clone(), h))
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| StatementError::Invalid {
                        member: "files",
                        reason: e.to_string(),
                    })?;
                let digest = cloister_measurement::model_digest(
                    decoded.iter().map(|(n, h)| (n.as_str(), h)),
                );
                if hex::encode(digest) != *sha256 {
                    return Err(StatementError::Invalid {
                        member: "sha256",
                        reason: "is not the model digest of the files listed".into(),
                    });
                }
                Ok(())
            }
            Statement::CvmImage {
                launch_measurement,
                manifest_sha256,
                inputs,
                vcpus,
                vcpu_type,
                vmm,
            } => {
                hex_n("launch_measurement", launch_measurement, 96)?;
                hex64("manifest_sha256", manifest_sha256)?;
                items("inputs", inputs)?;
                if *vcpus == 0 || *vcpus > 512 {
                    return Err(StatementError::Invalid {
                        member: "vcpus",
                        reason: format!("{vcpus} is not between 1 and 512"),
                    });
                }
                text("vcpu_type", vcpu_type)?;
                text("vmm", vmm)
            }
            Statement::Revocation { subject, reason } => {
                hex64("subject", subject)?;
                text("reason", reason)
            }
            Statement::RevocationList { revoked, .. } => {
                for r in revoked {
                    hex64("revoked", r)?;
                }
                if revoked.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(StatementError::Invalid {
                        member: "revoked",
                        reason: "must be sorted with no duplicates".into(),
                    });
                }
                Ok(())
            }
            Statement::OhttpKeyConfig {
                gateway,
                key_id,
                config,
                not_before,
                not_after,
            } => {
                text("gateway", gateway)?;
                let bytes = match hex::decode(config) {
                    Ok(b) if !config.bytes().any(|c| c.is_ascii_uppercase()) => b,
                    _ => {
                        return Err(StatementError::Invalid {
                            member: "config",
                            reason: "is not lowercase hex".into(),
                        })
                    }
                };
                if bytes.len() < 8 || bytes.len() > MAX_KEY_CONFIG {
                    return Err(StatementError::Invalid {
                        member: "config",
                        reason: format!(
                            "{} bytes is not a key configuration (8 to {MAX_KEY_CONFIG})",
                            bytes.len()
                        ),
                    });
                }
                if u32::from(bytes[0]) != *key_id {
                    return Err(StatementError::Invalid {
                        member: "key_id",
                        reason: format!("{key_id} is not the configuration's key id {}", bytes[0]),
                    });
                }
                if not_before >= not_after {
                    return Err(StatementError::Invalid {
                        member: "not_after",
                        reason: "must be later than not_before".into(),
                    });
                }
                Ok(())
            }
            Statement::TokenIssuerKey {
                issuer,
                token_type,
                token_key_id,
            } => {
                text("issuer", issuer)?;
                if *token_type != 2 {
                    return Err(StatementError::Invalid {
                        member: "token_type",
                        reason: format!("{token_type} is not 2 (publicly verifiable tokens)"),
                    });
                }
                hex64("token_key_id", token_key_id)
            }
        }
    }

    /// The canonical bytes (the log entry).
    pub fn to_entry(&self) -> Result<Vec<u8>, StatementError> {
        self.validate()?;
        let bytes = serde_json_canonicalizer::to_vec(self)
            .map_err(|e| StatementError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(StatementError::Invalid {
                member: "(entry)",
                reason: format!("{} bytes is more than an entry may have", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// Parses an entry: valid, and exactly its canonical encoding.
    pub fn from_entry(bytes: &[u8]) -> Result<Self, StatementError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(StatementError::Malformed(format!(
                "{} bytes is too long",
                bytes.len()
            )));
        }
        let s: Statement =
            serde_json::from_slice(bytes).map_err(|e| StatementError::Malformed(e.to_string()))?;
        if s.to_entry()? != bytes {
            return Err(StatementError::NotCanonical);
        }
        Ok(s)
    }

    /// The RFC 6962 leaf hash of the canonical entry.
    pub fn leaf_hash(&self) -> Result<Hash, StatementError> {
        Ok(leaf_hash(&self.to_entry()?))
    }

    /// The statement's type name.
    pub fn kind(&self) -> &'static str {
        match self {
            Statement::PluginRelease { .. } => "plugin-release",
            Statement::Model { .. } => "model",
            Statement::CvmImage { .. } => "cvm-image",
            Statement::Revocation { .. } => "revocation",
            Statement::RevocationList { .. } => "revocation-list",
            Statement::OhttpKeyConfig { .. } => "ohttp-key-config",
            Statement::TokenIssuerKey { .. } => "token-issuer-key",
        }
    }

    /// Whether a revocation may name this statement.
    pub fn is_revocable(&self) -> bool {
        matches!(
            self,
            Statement::PluginRelease { .. }
                | Statement::Model { .. }
                | Statement::CvmImage { .. }
                | Statement::OhttpKeyConfig { .. }
                | Statement::TokenIssuerKey { .. }
        )
    }

    /// Whether this statement is what the measurement-log entry `e` attests.
    pub fn matches_measured(&self, e: &cloister_measurement::Entry) -> bool {
        use cloister_measurement::EntryKind;
        match (self, e.kind) {
            (
                Statement::PluginRelease {
                    name,
                    version,
                    component_sha256,
                    signer_key_id,
                    ..
                },
                EntryKind::Plugin,
            ) => {
                *name == e.name
                    && *version == e.version
                    && *component_sha256 == e.sha256
                    && e.signer_key_id.as_deref() == Some(signer_key_id.as_str())
            }
            (
                Statement::Model {
                    name,
                    version,
                    sha256,
                    ..
                },
                EntryKind::Model,
            ) => *name == e.name && *version == e.version && *sha256 == e.sha256,
            _ => false,
        }
    }

    /// Whether this statement is the image with this launch measurement.
    pub fn matches_launch(&self, measurement: &[u8; 48]) -> bool {
        matches!(self, Statement::CvmImage { launch_measurement, .. } if *launch_measurement == hex::encode(measurement))
    }

    /// A one-line description for people (names, versions, short digests; nothing secret).
    pub fn describe(&self) -> String {
        let short = |h: &str| h.chars().take(12).collect::<String>();
        match self {
            Statement::PluginRelease {
                name,
                version,
                component_sha256,
                signer_key_id,
                ..
            } => format!(
                "plugin-release {} {} component {} signer {}",
                Quoted(name),
                Quoted(version),
                short(component_sha256),
                short(signer_key_id)
            ),
            Statement::Model {
                name,
                version,
                sha256,
                ..
            } => format!(
                "model {} {} digest {}",
                Quoted(name),
                Quoted(version),
                short(sha256)
            ),
            Statement::CvmImage {
                launch_measurement,
                vcpus,
                vcpu_type,
                ..
            } => format!(
                "cvm-image measurement {} ({vcpus} x {})",
                short(launch_measurement),
                Quoted(vcpu_type)
            ),
            Statement::Revocation { subject, reason } => {
                format!("revocation of {} ({})", short(subject), Excerpt(reason))
            }
            Statement::RevocationList { covers, revoked } => {
                format!(
                    "revocation-list covering {covers} entries, {} revoked",
                    revoked.len()
                )
            }
            Statement::OhttpKeyConfig {
                gateway,
                key_id,
                config,
                not_before,
                not_after,
            } => format!(
                "ohttp-key-config of {} key {key_id} ({} bytes) valid {not_before}..{not_after}",
                Quoted(gateway),
                config.len() / 2
            ),
            Statement::TokenIssuerKey {
                issuer,
                token_key_id,
                ..
            } => format!(
                "token-issuer-key of {} key {}",
                Quoted(issuer),
                short(token_key_id)
            ),
        }
    }
}
