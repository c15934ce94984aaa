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
        /// "policy file" or "trust_simulator_root".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
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
        let (policy, roots) = file
            .to_policy(None)
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
    let (policy, roots) = file.to_policy(root.as_deref()).map_err(invalid)?;
    Ok(LoadedPolicy {
        file,
        policy,
        roots,
    })
}
