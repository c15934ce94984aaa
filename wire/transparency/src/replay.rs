//! Reading a Cloister log from its tiles: entries, proofs, and a full audit.
//!
//! Everything here takes a `fetch` function (`tile path → bytes`) so the same code reads a
//! log from disk, over HTTP, or from a test map. Nothing fetched is trusted: entries are
//! hashed and checked against the signed root, tiles against the entries, and proofs are
//! verified before they are returned.

use std::collections::{BTreeSet, HashMap};

use cloister_display::Excerpt;
use cloister_tlog::merkle::{self, leaf_hash, Hash};
use cloister_tlog::tiles::{self, TileHashes, TileId, TileKind, TILE_WIDTH};
use cloister_tlog::{Checkpoint, Note, TlogError, TlogProof};

use crate::statement::{Statement, StatementError};

/// Why a log could not be read or does not audit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A tile or bundle could not be fetched.
    #[error("cannot fetch {path}: {}", Excerpt(.reason))]
    Fetch {
        /// The tile path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A format or proof error.
    #[error("{0}")]
    Tlog(#[from] TlogError),
    /// An entry is not a valid statement.
    #[error("entry #{index}: {source}")]
    Statement {
        /// Its index.
        index: u64,
        /// Why.
        source: StatementError,
    },
    /// The entries do not hash to the checkpoint's root.
    #[error("the {size} entries do not hash to the checkpoint's root: the log's tiles or entries were altered")]
    RootMismatch {
        /// The size checked.
        size: u64,
    },
    /// A hash tile disagrees with the entries.
    #[error("tile {path} disagrees with the entries it covers")]
    TileMismatch {
        /// The tile.
        path: String,
    },
    /// An earlier checkpoint is not a prefix of this log (a fork).
    #[error("the checkpoint of size {size} is not consistent with the log: {}", Excerpt(.reason))]
    Inconsistent {
        /// Its size.
        size: u64,
        /// Why.
        reason: String,
    },
    /// A rule of Cloister's log is broken (a wrong revocation list, a revocation of nothing).
    #[error("entry #{index}: {}", Excerpt(.reason))]
    Rule {
        /// The entry.
        index: u64,
        /// The rule.
        reason: String,
    },
}

fn get(
    fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    id: TileId,
) -> Result<Vec<u8>, ReplayError> {
    let path = id.path();
    fetch(&path).map_err(|reason| ReplayError::Fetch { path, reason })
}

/// The entries `from..size` of a log of `size` entries, read from its bundles (not yet
/// checked against anything: see [`audit`] and [`build_proof`]).
pub fn read_entries(
    fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    from: u64,
    size: u64,
) -> Result<Vec<Vec<u8>>, ReplayError> {
    let mut out = Vec::new();
    if from >= size {
        return Ok(out);
    }
    for n in from / TILE_WIDTH..=(size - 1) / TILE_WIDTH {
        let width = tiles::tile_width(0, n, size);
        let id = TileId {
            kind: TileKind::Entries,
            index: n,
            width,
        };
        let bundle = tiles::decode_bundle(&get(fetch, id)?, width)
            .map_err(|e| TlogError::Tile(format!("{}: {e}", id.path())))?;
        let start = n * TILE_WIDTH;
        for (i, e) in bundle.into_iter().enumerate() {
            if start + i as u64 >= from {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// An inclusion proof of `entry` at `index` in the checkpoint `note` (already verified by the
/// caller), built from the log's hash tiles and verified against the checkpoint's root.
pub fn build_proof(
    fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    note: &Note,
    index: u64,
    entry: &[u8],
) -> Result<TlogProof, ReplayError> {
    let checkpoint = Checkpoint::parse(note.text())?;
    let mut src = TileHashes::new(checkpoint.size, |id: TileId| {
        fetch(&id.path()).map_err(|r| TlogError::Tile(format!("{}: {r}", id.path())))
    });
    let hashes = merkle::inclusion_proof(&mut src, index, checkpoint.size)?;
    merkle::verify_inclusion(
        index,
        checkpoint.size,
        &leaf_hash(entry),
        &hashes,
        &checkpoint.root,
    )?;
    Ok(TlogProof {
        extra: Some(entry.to_vec()),
        index,
        hashes,
        checkpoint: note.clone(),
    })
}

/// A consistency proof from `old_size` to the checkpoint's size, from the hash tiles.
pub fn consistency_from_tiles(
    fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    old_size: u64,
    size: u64,
) -> Result<Vec<Hash>, ReplayError> {
    let mut src = TileHashes::new(size, |id: TileId| {
        fetch(&id.path()).map_err(|r| TlogError::Tile(format!("{}: {r}", id.path())))
    });
    Ok(merkle::consistency_proof(&mut src, old_size, size)?)
}

/// Checks, with a consistency proof built from the log's tiles, that the checkpoint `new`
/// extends `old` (a log that went back or forked fails, as [`ReplayError::Inconsistent`]).
pub fn verify_extends(
    fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<(), ReplayError> {
    let bad = |reason: String| ReplayError::Inconsistent {
        size: old.size,
        reason,
    };
    if old.size > new.size {
        return Err(bad(format!(
            "it is larger than the newer checkpoint ({}): the log went back",
            new.size
        )));
    }
    let proof = consistency_from_tiles(fetch, old.size, new.size)?;
    merkle::verify_consistency(old.size, new.size, &proof, &old.root, &new.root)
        .map_err(|e| bad(e.to_string()))
}

/// The revocation list that must follow `statements`: every revoked subject, sorted.
pub fn revocation_list(statements: &[Statement]) -> Statement {
    let mut rules = Rules::default();
    for s in statements {
        rules.apply_unchecked(s, None);
    }
    rules.revocation_list()
}

/// The log's own rules, as state built entry by entry: a revocation names an earlier
/// release, model or image not already revoked; a revocation list is exactly the list of
/// the revocations before it, and covers its own index.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    next: u64,
    revocable: HashMap<String, u64>,
    revoked: BTreeSet<String>,
}

impl Rules {
    /// Index of the next entry.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// The revocation list that the next entry must be to close a checkpoint.
    pub fn revocation_list(&self) -> Statement {
        Statement::RevocationList {
            covers: self.next,
            revoked: self.revoked.iter().cloned().collect(),
        }
    }

    /// Checks `s` (with leaf hash `leaf`) as the next entry.
    pub fn check(&self, s: &Statement) -> Result<(), ReplayError> {
        let index = self.next;
        match s {
            Statement::Revocation { subject, .. } => {
                if !self.revocable.contains_key(subject) {
                    return Err(ReplayError::Rule {
                        index,
                        reason: "the revocation names no earlier release, model, image or key"
                            .into(),
                    });
                }
                if self.revoked.contains(subject) {
                    return Err(ReplayError::Rule {
                        index,
                        reason: "the subject is already revoked".into(),
                    });
                }
                Ok(())
            }
            Statement::RevocationList { .. } => {
                if *s != self.revocation_list() {
                    return Err(ReplayError::Rule {
                        index,
                        reason: "the revocation list is not the list of every revocation before it"
                            .into(),
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Checks `s` as the next entry and records it.
    pub fn apply(&mut self, s: &Statement, leaf: &Hash) -> Result<(), ReplayError> {
        self.check(s)?;
        self.apply_unchecked(s, Some(leaf));
        Ok(())
    }

    fn apply_unchecked(&mut self, s: &Statement, leaf: Option<&Hash>) {
        match s {
            Statement::Revocation { subject, .. } => {
                self.revoked.insert(subject.clone());
            }
            _ if s.is_revocable() => {
                if let Some(leaf) = leaf {
                    self.revocable.insert(hex::encode(leaf), self.next);
                }
            }
            _ => {}
        }
        self.next += 1;
    }
}

/// What an audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Every statement, in order.
    pub statements: Vec<Statement>,
    /// Their leaf hashes.
    pub leaves: Vec<Hash>,
    /// The earlier checkpoints found consistent.
    pub consistent_with: Vec<u64>,
}

/// Replays the whole log of `checkpoint` from its tiles: every entry parses and obeys the
/// log's rules, the entries hash to the root, every level-0 hash tile agrees with them, and
/// each `earlier` checkpoint is a prefix (checked by recomputation and by a consistency proof
/// built from the tiles).
pub fn audit(
    fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    checkpoint: &Checkpoint,
    earlier: &[Checkpoint],
) -> Result<AuditReport, ReplayError> {
    let size = checkpoint.size;
    let entries = read_entries(fetch, 0, size)?;
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    if merkle::root_from_leaf_hashes(&leaves) != checkpoint.root {
        return Err(ReplayError::RootMismatch { size });
    }
    // Level-0 tiles must hold exactly these leaf hashes (a client building proofs reads them).
    for n in 0..size.div_ceil(TILE_WIDTH) {
        let width = tiles::tile_width(0, n, size);
        let id = TileId {
            kind: TileKind::Hashes(0),
            index: n,
            width,
        };
        let tile = tiles::decode_hash_tile(&get(fetch, id)?, width)?;
        let start = (n * TILE_WIDTH) as usize;
        if tile[..] != leaves[start..start + usize::from(width)] {
            return Err(ReplayError::TileMismatch { path: id.path() });
        }
    }
    let mut statements: Vec<Statement> = Vec::with_capacity(entries.len());
    let mut rules = Rules::default();
    for (i, e) in entries.iter().enumerate() {
        let index = i as u64;
        let s =
            Statement::from_entry(e).map_err(|source| ReplayError::Statement { index, source })?;
        rules.apply(&s, &leaves[i])?;
        statements.push(s);
    }
    if !matches!(statements.last(), Some(Statement::RevocationList { .. })) && size > 0 {
        return Err(ReplayError::Rule {
            index: size - 1,
            reason: "the checkpoint's last entry is not a revocation list".into(),
        });
    }
    let mut consistent_with = Vec::new();
    for old in earlier {
        let bad = |reason: String| ReplayError::Inconsistent {
            size: old.size,
            reason,
        };
        if old.size > size {
            return Err(bad(format!(
                "it is larger than the audited checkpoint ({size})"
            )));
        }
        if merkle::root_from_leaf_hashes(&leaves[..old.size as usize]) != old.root {
            return Err(bad(
                "its root is not the root of the log's first entries (a fork)".into(),
            ));
        }
        verify_extends(fetch, old, checkpoint)?;
        consistent_with.push(old.size);
    }
    Ok(AuditReport {
        statements,
        leaves,
        consistent_with,
    })
}
