//! The host's side of the transparency log (inside the CVM).
//!
//! At start-up and on every refresh the host reads the log — its cosigned checkpoint, entry
//! bundles and hash tiles — from a directory holding a copy of the log's static files (kept
//! up to date outside the CVM: the host has no HTTP client), and builds, for every
//! measured plugin and model and for its own launch measurement, a `tlog-proof@v1` against
//! that checkpoint, plus one for the log's revocation list (the checkpoint's last entry).
//! It then checks the set exactly as a client will ([`verify_transparency`]): a plugin or
//! model the log does not prove, or revokes, stops the start-up, naming it.
//!
//! Nothing read from the log is trusted: the checkpoint must verify under the host's
//! tlog-policy, each proof is verified against its root, and a new checkpoint must be
//! consistent with the previous one (a log that forks between refreshes is refused).
//! The proofs travel in every evidence bundle the host serves.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use cloister_measurement::Entry;
use cloister_protocol::BundleTransparency;
use cloister_tlog::{merkle, verify_checkpoint, Checkpoint, Freshness, Note, Policy};
use cloister_transparency::replay;
use cloister_transparency::{
    verify_transparency, Statement, TransparencyEvidence, TransparencyVerdict,
};

use crate::config::TransparencyConfig;

/// Largest file read from the log (a tile is 8 KiB, a bundle at most 256 × 64 KiB).
const MAX_FETCH_BYTES: u64 = 17 << 20;

/// Why the host could not obtain or accept its transparency proofs.
#[derive(Debug, thiserror::Error)]
pub enum TransparencyLoadError {
    /// The tlog-policy file could not be read or parsed.
    #[error("transparency policy {path}: {reason}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The log could not be read or did not verify.
    #[error("transparency log: {0}")]
    Log(String),
    /// The log does not prove what the host runs.
    #[error(transparent)]
    Refused(#[from] cloister_transparency::TransparencyError),
}

/// The host's view of the log, kept between refreshes.
pub struct LogMirror {
    dir: PathBuf,
    policy: Policy,
    max_age_secs: u64,
    /// The last verified checkpoint and every entry up to it.
    checkpoint: Option<Checkpoint>,
    entries: Vec<Vec<u8>>,
}

/// The result of one refresh.
pub struct Proofs {
    /// The proofs, as the bundle carries them.
    pub bundle: BundleTransparency,
    /// The host's own check of them.
    pub verdict: Result<TransparencyVerdict, cloister_transparency::TransparencyError>,
}

impl LogMirror {
    /// A mirror of the log `config` names.
    pub fn new(config: &TransparencyConfig) -> Result<Self, TransparencyLoadError> {
        let text =
            std::fs::read_to_string(&config.policy).map_err(|e| TransparencyLoadError::Policy {
                path: config.policy.clone(),
                reason: e.to_string(),
            })?;
        let policy = Policy::parse(&text).map_err(|e| TransparencyLoadError::Policy {
            path: config.policy.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            dir: config.log.clone(),
            policy,
            max_age_secs: config.max_age_secs,
            checkpoint: None,
            entries: Vec::new(),
        })
    }

    fn fetch(&self, path: &str) -> Result<Vec<u8>, String> {
        let f = self.dir.join(path);
        let meta = std::fs::metadata(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        if meta.len() > MAX_FETCH_BYTES {
            return Err(format!(
                "{}: {} bytes is too large",
                f.display(),
                meta.len()
            ));
        }
        std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))
    }

    /// Fetches the newest checkpoint and builds the proofs for `measured` and the image with
    /// `launch_measurement`. Blocking (run it off the async runtime).
    pub fn refresh(
        &mut self,
        measured: &[Entry],
        launch_measurement: &[u8; 48],
    ) -> Result<Proofs, TransparencyLoadError> {
        let log_err = TransparencyLoadError::Log;
        let note_bytes = self
            .fetch("checkpoint")
            .map_err(|e| log_err(format!("checkpoint: {e}")))?;
        let note = Note::parse(&note_bytes).map_err(|e| log_err(format!("checkpoint: {e}")))?;
        let fresh = Freshness {
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            max_age_secs: Some(self.max_age_secs),
        };
        let verified =
            verify_checkpoint(&note, &self.policy, fresh).map_err(|e| log_err(e.to_string()))?;
        let c = verified.checkpoint;
        if c.size == 0 {
            return Err(log_err("the log is empty".into()));
        }
        // Consistent with what this host saw before; then read only the new entries.
        let mut fetch = |p: &str| self.fetch(p);
        let from = match &self.checkpoint {
            Some(old) => {
                replay::verify_extends(&mut fetch, old, &c).map_err(|e| {
                    log_err(format!(
                        "the new checkpoint does not extend the previous one: {e}"
                    ))
                })?;
                old.size
            }
            None => 0,
        };
        let new_entries =
            replay::read_entries(&mut fetch, from, c.size).map_err(|e| log_err(e.to_string()))?;
        let mut entries = self.entries.clone();
        entries.extend(new_entries);
        // Every entry read must be the log's (the root is recomputed from them).
        let leaves: Vec<_> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
        if merkle::root_from_leaf_hashes(&leaves) != c.root {
            return Err(log_err(
                "the log's entries do not hash to its checkpoint's root".into(),
            ));
        }
        let statements: Vec<Option<Statement>> = entries
            .iter()
            .map(|e| Statement::from_entry(e).ok())
            .collect();
        let last = c.size - 1;
        let revocations = replay::build_proof(&mut fetch, &note, last, &entries[last as usize])
            .map_err(|e| log_err(e.to_string()))?;
        let mut proofs = Vec::new();
        let mut wanted: Vec<usize> = Vec::new();
        for m in measured {
            if let Some(i) = statements
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s.matches_measured(m)))
            {
                wanted.push(i);
            }
        }
        if let Some(i) = statements.iter().position(|s| {
            s.as_ref()
                .is_some_and(|s| s.matches_launch(launch_measurement))
        }) {
            wanted.push(i);
        }
        wanted.sort_unstable();
        wanted.dedup();
        for i in wanted {
            proofs.push(
                replay::build_proof(&mut fetch, &note, i as u64, &entries[i])
                    .map_err(|e| log_err(e.to_string()))?,
            );
        }
        let evidence = TransparencyEvidence {
            revocations,
            entries: proofs,
        };
        let verdict = verify_transparency(
            &evidence,
            measured,
            launch_measurement,
            &self.policy,
            fresh,
            None,
        );
        self.checkpoint = Some(c);
        self.entries = entries;
        Ok(Proofs {
            bundle: BundleTransparency {
                revocations: evidence.revocations.to_text(),
                entries: evidence.entries.iter().map(|p| p.to_text()).collect(),
            },
            verdict,
        })
    }
}

/// The launch measurement in an SNP report (MEASUREMENT, bytes 0x90..0xC0).
pub fn launch_measurement(report: &[u8]) -> Option<[u8; 48]> {
    report.get(0x90..0xC0)?.try_into().ok()
}
