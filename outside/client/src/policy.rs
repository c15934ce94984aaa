//! Reading a policy file (TOML, [`cloister_verifier::PolicyFile`]) from disk: the only I/O
//! of policy handling, at the edge. The simulator root it names is read relative to the
//! policy file.

use std::path::{Path, PathBuf};

use cloister_verifier::{Policy, PolicyFile, PolicyFileError, TrustedRoots};

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    /// A file could not be read.
    #[error("cannot read {what} {path}")]
    Read {
        /// "policy file", "trust_simulator_root" or "transparency.tlog_policy".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The log's newest revocation list could not be read or did not verify.
    #[error("cannot read the transparency log's newest revocation list at {url}: {reason}")]
    LogCheckpoint {
        /// The log.
        url: String,
        /// Why.
        reason: String,
    },
    /// The file is not a valid policy.
    #[error("invalid policy file {path}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        source: PolicyFileError,
    },
}

/// A loaded policy: the parsed file, the policy and the trusted roots.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The file as parsed.
    pub file: PolicyFile,
    /// The policy.
    pub policy: Policy,
    /// AMD's roots, plus the simulator root if the file trusts one.
    pub roots: TrustedRoots,
}

/// Loads the policy at `path`, or the default policy (AMD roots, strict guest policy, any
/// measurement, no plugins or models) when `None`.
pub fn load_policy(path: Option<&Path>) -> Result<LoadedPolicy, PolicyLoadError> {
    let Some(path) = path else {
        let file = PolicyFile::default();
        let (policy, roots) =
            file.to_policy(None, None)
                .map_err(|source| PolicyLoadError::Invalid {
                    path: PathBuf::from("<default>"),
                    source,
                })?;
        return Ok(LoadedPolicy {
            file,
            policy,
            roots,
        });
    };
    let invalid = |source| PolicyLoadError::Invalid {
        path: path.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|source| PolicyLoadError::Read {
        what: "policy file",
        path: path.to_owned(),
        source,
    })?;
    let file = PolicyFile::from_toml(&text).map_err(invalid)?;
    let root = match &file.trust_simulator_root {
        None => None,
        Some(relative) => {
            let root_path = path.parent().unwrap_or(Path::new(".")).join(relative);
            Some(
                std::fs::read(&root_path).map_err(|source| PolicyLoadError::Read {
                    what: "trust_simulator_root",
                    path: root_path,
                    source,
                })?,
            )
        }
    };
    let tlog_policy = match &file.transparency {
        None => None,
        Some(t) => {
            let tlog_path = path.parent().unwrap_or(Path::new(".")).join(&t.tlog_policy);
            Some(
                std::fs::read_to_string(&tlog_path).map_err(|source| PolicyLoadError::Read {
                    what: "transparency.tlog_policy",
                    path: tlog_path,
                    source,
                })?,
            )
        }
    };
    let (mut policy, roots) = file
        .to_policy(root.as_deref(), tlog_policy.as_deref())
        .map_err(invalid)?;
    if let (Some(req), Some(url)) = (
        policy.transparency.as_mut(),
        file.transparency.as_ref().and_then(|t| t.log.as_deref()),
    ) {
        req.newest = Some(newest_revocations(url, req)?);
    }
    Ok(LoadedPolicy {
        file,
        policy,
        roots,
    })
}

/// Reads the log's newest revocation list: its cosigned `checkpoint`, the last entry's
/// bundle and the hash tiles for its inclusion proof, all verified (under the requirement's
/// tlog-policy) before they are used. What it revokes is then refused even when a host's
/// proofs are older.
fn newest_revocations(
    url: &str,
    req: &cloister_verifier::TransparencyRequirement,
) -> Result<cloister_transparency::NewestRevocations, PolicyLoadError> {
    let fail = |reason: String| PolicyLoadError::LogCheckpoint {
        url: cloister_display::excerpt(url),
        reason,
    };
    if !url.starts_with("http://") {
        return Err(fail(
            "only http:// logs are supported (everything is verified)".into(),
        ));
    }
    let reader = crate::log_reader::LogReader::new(url, std::time::Duration::from_secs(20));
    let mut fetch = |path: &str| reader.fetch(path);
    let note = cloister_tlog::Note::parse(&fetch("checkpoint").map_err(fail)?)
        .map_err(|e| fail(e.to_string()))?;
    let size = cloister_tlog::Checkpoint::parse(note.text())
        .map_err(|e| fail(e.to_string()))?
        .size;
    if size == 0 {
        return Err(fail("the log is empty".into()));
    }
    let last = cloister_transparency::replay::read_entries(&mut fetch, size - 1, size)
        .map_err(|e| fail(e.to_string()))?;
    let entry = last.first().ok_or_else(|| fail("no last entry".into()))?;
    let proof = cloister_transparency::replay::build_proof(&mut fetch, &note, size - 1, entry)
        .map_err(|e| fail(e.to_string()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    cloister_transparency::newest_revocations(
        &proof,
        &req.tlog,
        cloister_tlog::Freshness {
            now,
            max_age_secs: req.max_age_secs,
        },
    )
    .map_err(|e| fail(e.to_string()))
}
