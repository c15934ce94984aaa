//! Offline verification under a [`Policy`]: a cosigned checkpoint, and a `tlog-proof` of an
//! entry against it.

use cloister_display::Quoted;

use crate::checkpoint::Checkpoint;
use crate::merkle::{verify_inclusion, Hash};
use crate::note::{Note, VerifierKey};
use crate::policy::Policy;
use crate::proof::TlogProof;
use crate::TlogError;

/// How far in the future a cosignature's time may be and still count (clock skew).
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// When the verifier checks, and how old a cosignature may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Now, in seconds since the epoch.
    pub now: u64,
    /// A cosignature older than this many seconds does not count toward the quorum; `None`
    /// counts every cosignature whatever its age.
    pub max_age_secs: Option<u64>,
}

/// A checkpoint the policy accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// Its body.
    pub checkpoint: Checkpoint,
    /// The log key that signed it.
    pub log_key: VerifierKey,
    /// The witnesses (policy names) whose cosignatures verified and counted, with their
    /// times.
    pub cosigners: Vec<(String, u64)>,
    /// The oldest time among the counted cosignatures (the checkpoint is at least this fresh
    /// by the quorum), or `None` under `quorum none`.
    pub witnessed_at: Option<u64>,
}

/// Verifies a signed checkpoint: signed by a log of the policy for its origin, every known
/// signature valid, and cosigned by a quorum of witnesses with fresh enough cosignatures.
pub fn verify_checkpoint(
    note: &Note,
    policy: &Policy,
    fresh: Freshness,
) -> Result<VerifiedCheckpoint, TlogError> {
    let checkpoint = Checkpoint::parse(note.text())?;
    let log_keys = policy.log_keys_for(&checkpoint.origin);
    if log_keys.is_empty() {
        return Err(TlogError::UnknownLog(format!(
            "the policy trusts no log with origin {}",
            Quoted(&checkpoint.origin)
        )));
    }
    let mut known: Vec<VerifierKey> = log_keys.clone();
    known.extend(policy.witnesses().iter().map(|w| w.key.clone()));
    let verified = note.verify(&known)?;
    let log_key = verified
        .iter()
        .find(|v| log_keys.contains(&v.key))
        .map(|v| v.key.clone())
        .ok_or_else(|| {
            TlogError::Signature(format!(
                "the checkpoint of {} carries no signature of its log's key",
                Quoted(&checkpoint.origin)
            ))
        })?;
    let mut counted = Vec::new();
    let mut cosigners = Vec::new();
    let mut stale = 0usize;
    let mut future = 0usize;
    for (i, w) in policy.witnesses().iter().enumerate() {
        let Some(v) = verified.iter().find(|v| v.key == w.key) else {
            continue;
        };
        let Some(t) = v.timestamp else { continue };
        if t > fresh.now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            future += 1;
            continue;
        }
        if let Some(max) = fresh.max_age_secs {
            if t.saturating_add(max) < fresh.now {
                stale += 1;
                continue;
            }
        }
        counted.push(i);
        cosigners.push((w.name.clone(), t));
    }
    if !policy.quorum_met(&counted) {
        return Err(TlogError::Quorum(format!(
            "the checkpoint of {} at size {} has {} counted cosignatures, not the policy's quorum \
             ({stale} too old, {future} dated in the future)",
            Quoted(&checkpoint.origin),
            checkpoint.size,
            counted.len()
        )));
    }
    let witnessed_at = if policy.quorum_is_none() {
        None
    } else {
        cosigners.iter().map(|(_, t)| *t).min()
    };
    Ok(VerifiedCheckpoint {
        checkpoint,
        log_key,
        cosigners,
        witnessed_at,
    })
}

/// Verifies a `tlog-proof`: its checkpoint under the policy, and the inclusion of the leaf
/// hash `leaf` at the proof's index.
pub fn verify_proof(
    proof: &TlogProof,
    leaf: &Hash,
    policy: &Policy,
    fresh: Freshness,
) -> Result<VerifiedCheckpoint, TlogError> {
    let v = verify_checkpoint(&proof.checkpoint, policy, fresh)?;
    verify_inclusion(
        proof.index,
        v.checkpoint.size,
        leaf,
        &proof.hashes,
        &v.checkpoint.root,
    )?;
    Ok(v)
}
