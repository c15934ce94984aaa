//! Transparency evidence: the proofs a host hands a client, and their offline verification.
//!
//! A host carries, next to its attestation report and measurement log, one `tlog-proof@v1`
//! for every measurement-log entry and for its launch measurement, plus one for the log's
//! `revocation-list` entry at the last index of the same checkpoint. Each proof's `extra`
//! line holds the proven entry's exact bytes. [`verify_transparency`] checks, with no network:
//!
//! 1. the checkpoint is signed by a log of the `tlog-policy` and cosigned by its quorum of
//!    witnesses, with cosignatures no older than the policy's maximum age;
//! 2. the revocation list is the checkpoint's last entry and covers every entry before it;
//! 3. every measured plugin and model, and the launch measurement, is a statement in the
//!    log at that checkpoint;
//! 4. none of them is in that revocation list, nor in the newest revocation list the
//!    verifier itself read from the log ([`NewestRevocations`], optional): a host cannot
//!    hide a revocation by keeping proofs from before it, and a host whose proofs are a few
//!    checkpoints old is not refused for that alone.

use cloister_display::{Excerpt, Quoted};
use cloister_measurement::Entry;
use cloister_tlog::merkle::{leaf_hash, verify_inclusion};
use cloister_tlog::{
    verify_checkpoint, Freshness, Policy, TlogError, TlogProof, VerifiedCheckpoint,
};

use crate::statement::{Statement, StatementError};

/// Most proofs one piece of evidence may carry.
pub const MAX_PROOFS: usize = 256;

/// The proofs a host carries, all against one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyEvidence {
    /// The proof of the `revocation-list` entry at index `size - 1`.
    pub revocations: TlogProof,
    /// One proof per measured artifact and the image.
    pub entries: Vec<TlogProof>,
}

/// Why transparency evidence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransparencyError {
    /// A proof, note or checkpoint does not verify under the policy.
    #[error("transparency log: {0}")]
    Tlog(#[from] TlogError),
    /// A proven entry is not a valid statement.
    #[error("transparency log entry #{index}: {source}")]
    Statement {
        /// The entry's index.
        index: u64,
        /// What is wrong.
        source: StatementError,
    },
    /// A proof has no `extra` line with the entry.
    #[error("a transparency proof (entry #{index}) carries no entry bytes")]
    NoEntry {
        /// The entry's index.
        index: u64,
    },
    /// The proofs are not all against the same checkpoint.
    #[error("the transparency proofs are against different checkpoints")]
    MixedCheckpoints,
    /// The revocation-list proof is not of the checkpoint's last entry, or its list does not
    /// cover every entry before it.
    #[error("the revocation list is not the checkpoint's last entry: {}", Excerpt(.0))]
    RevocationListPosition(String),
    /// Something the host attests has no proof in the log.
    #[error("{} is not in the transparency log (no proof of it)", .what)]
    NotInLog {
        /// What (name, version, short digest).
        what: String,
    },
    /// Something the host attests is revoked.
    #[error("{} is revoked in the transparency log (revocation list at entry #{list_index})", .what)]
    Revoked {
        /// What.
        what: String,
        /// The list that names it.
        list_index: u64,
    },
    /// Too many proofs, or a malformed wire form.
    #[error("malformed transparency evidence: {}", Excerpt(.0))]
    Malformed(String),
}

/// What the evidence proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyVerdict {
    /// The verified checkpoint.
    pub checkpoint: VerifiedCheckpoint,
    /// For each measured entry (in order), the index of its statement.
    pub measured_indexes: Vec<u64>,
    /// The index of the image statement.
    pub image_index: u64,
    /// How many subjects the log has revoked up to the checkpoint.
    pub revoked_count: usize,
}

fn statement_of(p: &TlogProof) -> Result<(Statement, [u8; 32]), TransparencyError> {
    let extra = p
        .extra
        .as_deref()
        .ok_or(TransparencyError::NoEntry { index: p.index })?;
    let s = Statement::from_entry(extra).map_err(|source| TransparencyError::Statement {
        index: p.index,
        source,
    })?;
    Ok((s, leaf_hash(extra)))
}

/// The revocation list of the newest checkpoint a verifier read from the log itself
/// (see [`newest_revocations`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestRevocations {
    /// The size of that checkpoint.
    pub size: u64,
    /// Every subject revoked up to it, sorted.
    pub revoked: Vec<String>,
}

/// Checks a proof of a log's newest revocation list, as a verifier fetched it from the log:
/// the checkpoint under the policy, the list at its last index, covering every entry before
/// it.
pub fn newest_revocations(
    proof: &TlogProof,
    policy: &Policy,
    fresh: Freshness,
) -> Result<NewestRevocations, TransparencyError> {
    let (checkpoint, revoked) = revocation_list_at_end(proof, policy, fresh)?;
    Ok(NewestRevocations {
        size: checkpoint.checkpoint.size,
        revoked,
    })
}

/// The checkpoint of `proof`, verified under the policy, and the revoked subjects of the
/// `revocation-list` that `proof` proves at the checkpoint's last index, covering every entry
/// before it.
fn revocation_list_at_end(
    proof: &TlogProof,
    policy: &Policy,
    fresh: Freshness,
) -> Result<(VerifiedCheckpoint, Vec<String>), TransparencyError> {
    let checkpoint = verify_checkpoint(&proof.checkpoint, policy, fresh)?;
    let size = checkpoint.checkpoint.size;
    let (list, leaf) = statement_of(proof)?;
    let Statement::RevocationList { covers, revoked } = list else {
        return Err(TransparencyError::RevocationListPosition(format!(
            "the revocation proof is of a {} entry",
            list.kind()
        )));
    };
    if proof.index + 1 != size || covers != proof.index {
        return Err(TransparencyError::RevocationListPosition(format!(
            "the list is entry #{} covering {covers}, the checkpoint has {size} entries",
            proof.index
        )));
    }
    verify_inclusion(
        proof.index,
        size,
        &leaf,
        &proof.hashes,
        &checkpoint.checkpoint.root,
    )?;
    Ok((checkpoint, revoked))
}

/// Checks that a key a client was given (a gateway's OHTTP key configuration, an issuer's
/// token key) is published in the log, and not revoked: `proof` proves a statement that
/// `wanted` accepts, and `revocations` the log's revocation list at the last index of the
/// same checkpoint, which is verified under `policy` (log key, witness quorum, freshness).
///
/// A key served to one client only would let its server recognise that client; a key in a
/// witnessed log is the key everyone can see. Returns the statement.
pub fn verify_published(
    proof: &TlogProof,
    revocations: &TlogProof,
    policy: &Policy,
    fresh: Freshness,
    what: &str,
    wanted: impl Fn(&Statement) -> bool,
) -> Result<Statement, TransparencyError> {
    let (checkpoint, revoked) = revocation_list_at_end(revocations, policy, fresh)?;
    if proof.checkpoint.text() != revocations.checkpoint.text() {
        return Err(TransparencyError::MixedCheckpoints);
    }
    let (s, leaf) = statement_of(proof)?;
    if !wanted(&s) {
        return Err(TransparencyError::NotInLog {
            what: format!("{what} (the proof is of {})", s.describe()),
        });
    }
    verify_inclusion(
        proof.index,
        checkpoint.checkpoint.size,
        &leaf,
        &proof.hashes,
        &checkpoint.checkpoint.root,
    )?;
    if revoked.binary_search(&hex::encode(leaf)).is_ok() {
        return Err(TransparencyError::Revoked {
            what: what.to_owned(),
            list_index: revocations.index,
        });
    }
    Ok(s)
}

/// Verifies transparency evidence for a host whose measurement log has `measured` entries and
/// whose report carries `launch_measurement`. `newest` is the revocation list the verifier
/// read from the log itself, if it did.
pub fn verify_transparency(
    ev: &TransparencyEvidence,
    measured: &[Entry],
    launch_measurement: &[u8; 48],
    policy: &Policy,
    fresh: Freshness,
    newest: Option<&NewestRevocations>,
) -> Result<TransparencyVerdict, TransparencyError> {
    if ev.entries.len() > MAX_PROOFS {
        return Err(TransparencyError::Malformed(format!(
            "{} proofs is more than {MAX_PROOFS}",
            ev.entries.len()
        )));
    }
    // 1-2. The checkpoint, once, and the revocation list as its last entry.
    let (checkpoint, revoked) = revocation_list_at_end(&ev.revocations, policy, fresh)?;
    let size = checkpoint.checkpoint.size;
    let root = checkpoint.checkpoint.root;
    // 3. Every proof against the same checkpoint, and what each proves.
    let mut proven: Vec<(Statement, [u8; 32], u64)> = Vec::with_capacity(ev.entries.len());
    for p in &ev.entries {
        if p.checkpoint.text() != ev.revocations.checkpoint.text() {
            return Err(TransparencyError::MixedCheckpoints);
        }
        let (s, leaf) = statement_of(p)?;
        verify_inclusion(p.index, size, &leaf, &p.hashes, &root)?;
        proven.push((s, leaf, p.index));
    }
    // 4. Revoked in the host's list, or in the newest one the verifier read.
    let revoked_check = |s: &Statement, leaf: &[u8; 32]| -> Result<(), TransparencyError> {
        let leaf = hex::encode(leaf);
        if revoked.binary_search(&leaf).is_ok() {
            return Err(TransparencyError::Revoked {
                what: s.describe(),
                list_index: ev.revocations.index,
            });
        }
        if let Some(n) = newest {
            if n.revoked.binary_search(&leaf).is_ok() {
                return Err(TransparencyError::Revoked {
                    what: s.describe(),
                    list_index: n.size.saturating_sub(1),
                });
            }
        }
        Ok(())
    };
    let mut measured_indexes = Vec::with_capacity(measured.len());
    for e in measured {
        let (s, leaf, index) = proven
            .iter()
            .find(|(s, _, _)| s.matches_measured(e))
            .ok_or_else(|| TransparencyError::NotInLog {
                what: format!(
                    "{} {} {} ({})",
                    e.kind,
                    Quoted(&e.name),
                    Quoted(&e.version),
                    e.sha256.chars().take(12).collect::<String>()
                ),
            })?;
        revoked_check(s, leaf)?;
        measured_indexes.push(*index);
    }
    let (s, leaf, image_index) = proven
        .iter()
        .find(|(s, _, _)| s.matches_launch(launch_measurement))
        .ok_or_else(|| TransparencyError::NotInLog {
            what: format!(
                "the CVM image with launch measurement {}",
                &hex::encode(launch_measurement)[..16]
            ),
        })?;
    revoked_check(s, leaf)?;
    Ok(TransparencyVerdict {
        checkpoint,
        measured_indexes,
        image_index: *image_index,
        revoked_count: revoked.len(),
    })
}

/// Whether a statement is revoked by `list` (a `revocation-list` statement).
pub fn is_revoked(list: &Statement, leaf: &[u8; 32]) -> bool {
    matches!(list, Statement::RevocationList { revoked, .. } if revoked.binary_search(&hex::encode(leaf)).is_ok())
}
