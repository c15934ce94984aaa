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
    /// The log's newest checkpoint could not be fetched or did not verify.
    #[error("cannot check the transparency log's newest checkpoint at {url}: {reason}")]
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
        req.min_size = newest_checkpoint_size(url, req)?;
    }
    Ok(LoadedPolicy {
        file,
        policy,
        roots,
    })
}

/// Fetches the log's `checkpoint`, verifies it under the requirement's tlog-policy and returns
/// its size: a host must then prove against a checkpoint at least this new.
fn newest_checkpoint_size(
    url: &str,
    req: &cloister_verifier::TransparencyRequirement,
) -> Result<u64, PolicyLoadError> {
    let fail = |reason: String| PolicyLoadError::LogCheckpoint {
        url: cloister_display::excerpt(url),
        reason,
    };
    let base = url.trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(fail(
            "only http:// logs are supported (everything is verified)".into(),
        ));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(format!("{base}/checkpoint"))
        .call()
        .map_err(|e| fail(e.to_string()))?;
    if resp.status().as_u16() != 200 {
        return Err(fail(format!("HTTP {}", resp.status().as_u16())));
    }
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .map_err(|e| fail(e.to_string()))?;
    let note = cloister_tlog::Note::parse(&bytes).map_err(|e| fail(e.to_string()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let v = cloister_tlog::verify_checkpoint(
        &note,
        &req.tlog,
        cloister_tlog::Freshness {
            now,
            max_age_secs: req.max_age_secs,
        },
    )
    .map_err(|e| fail(e.to_string()))?;
    Ok(v.checkpoint.size)
}
