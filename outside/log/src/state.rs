//! The log's state and its one writer: appending entries, signing checkpoints, asking
//! witnesses to cosign, and recovering after a crash.
//!
//! # Append (one batch at a time)
//!
//! 1. Every entry is checked: a canonical statement, obeying the log's rules (a revocation
//!    names an earlier release, model or image not yet revoked). An entry already in the log
//!    is not added again: its existing index is returned (adds are idempotent).
//! 2. The batch is closed by a `revocation-list` entry.
//! 3. The new tiles and bundles are written (each atomically; none that a signed checkpoint
//!    refers to is ever rewritten, since an append from size S only writes wider tiles).
//! 4. The new checkpoint is signed and written to `checkpoint.signed` — the commit point.
//!    From here the entries are in the log, across any crash.
//! 5. The witnesses are asked to cosign; with the policy's quorum, the cosigned checkpoint
//!    is written to `checkpoint`, the only one served, and the add is acknowledged with an
//!    inclusion proof against it. Without a quorum the add fails (503) with the entries
//!    committed; they are witnessed at the next successful cosigning, and a retried add
//!    returns their proofs.
//!
//! # Recovery
//!
//! On start the log reads `checkpoint.signed`, checks its own signature, recomputes the root
//! from the tiles, and replays every entry from the bundles (rebuilding the revocation and
//! deduplication indexes, and re-checking every rule). Tiles written after the last commit
//! are ignored (and later overwritten). Any disagreement is a start-up error: the log never
//! serves a checkpoint it cannot prove.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cloister_tlog::merkle::{self, leaf_hash, Hash};
use cloister_tlog::tiles::{self, TileHashes, TileId};
use cloister_tlog::{Checkpoint, Note, NoteSigner, Policy, TlogError, TlogProof};
use cloister_transparency::replay::{self, Rules};
use cloister_transparency::Statement;
use cloister_witness::client::{self as witness_client, AddOutcome};

use crate::disk::{read_optional, sync_dir, tile_file, write_atomic};
use crate::LogError;

/// Most entries in one append batch (publishers' adds are grouped up to this).
pub const MAX_BATCH: usize = 256;

/// How long one witness request may take.
pub const WITNESS_TIMEOUT: Duration = Duration::from_secs(10);

/// The log.
pub struct Log {
    dir: PathBuf,
    signer: NoteSigner,
    witnesses: Policy,
    /// The log's rules, as of the committed size.
    rules: Rules,
    /// Leaf hash → index, for deduplication.
    index_of: HashMap<Hash, u64>,
    /// The signed (committed) checkpoint.
    signed: Note,
    /// The served, cosigned checkpoint (None before the first quorum).
    served: Option<Note>,
    /// What each witness (by policy index) last cosigned, if known.
    witness_sizes: Vec<Option<u64>>,
}

/// The outcome of an add.
#[derive(Debug)]
pub enum AddResult {
    /// The entry is in the witnessed log.
    Proven(Box<TlogProof>),
    /// The entry is committed but the witnesses did not cosign (yet).
    Unwitnessed {
        /// Its index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// The entry was refused.
    Refused(String),
    /// The log could not write (nothing was committed; retry later).
    Failed(String),
}

impl Log {
    /// Opens (or creates, if empty) the log in `dir`, recovering as described above.
    pub fn open(dir: &Path, signer: NoteSigner, witnesses: Policy) -> Result<Self, LogError> {
        let origin = signer.verifier().name().to_owned();
        if witnesses.log_keys_for(&origin).is_empty() {
            return Err(LogError::Config(format!(
                "the witness policy does not list this log's key ({})",
                signer.verifier().to_vkey()
            )));
        }
        let signed_path = dir.join("checkpoint.signed");
        let signed = match read_optional(&signed_path)? {
            Some(bytes) => {
                let note = Note::parse(&bytes)
                    .map_err(|e| LogError::Corrupt(format!("{}: {e}", signed_path.display())))?;
                note.open(std::slice::from_ref(signer.verifier()))
                    .map_err(|e| LogError::Corrupt(format!("{}: {e}", signed_path.display())))?;
                note
            }
            None => {
                if dir.join("tile").exists() && read_optional(&dir.join("checkpoint"))?.is_some() {
                    return Err(LogError::Corrupt(format!(
                        "{} is missing but the log has tiles and a checkpoint",
                        signed_path.display()
                    )));
                }
                let c = Checkpoint {
                    origin: origin.clone(),
                    size: 0,
                    root: merkle::EMPTY_ROOT,
                    extensions: vec![],
                };
                let mut note = Note::unsigned(&c.to_text())?;
                note.sign(&signer, 0)?;
                std::fs::create_dir_all(dir)
                    .map_err(|e| LogError::Io(format!("cannot create {}: {e}", dir.display())))?;
                write_atomic(&signed_path, note.to_text().as_bytes())?;
                note
            }
        };
        let checkpoint = Checkpoint::parse(signed.text())?;
        if checkpoint.origin != origin {
            return Err(LogError::Corrupt(format!(
                "{} is for another origin",
                signed_path.display()
            )));
        }
        let mut log = Log {
            dir: dir.to_owned(),
            signer,
            witness_sizes: vec![None; witnesses.witnesses().len()],
            witnesses,
            rules: Rules::default(),
            index_of: HashMap::new(),
            signed,
            served: None,
        };
        // Replay every committed entry.
        let size = checkpoint.size;
        let entries = {
            let mut fetch = log.fetcher();
            replay::read_entries(&mut fetch, 0, size)
                .map_err(|e| LogError::Corrupt(format!("replaying the entries: {e}")))?
        };
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        if merkle::root_from_leaf_hashes(&leaves) != checkpoint.root {
            return Err(LogError::Corrupt(format!(
                "the {size} entries on disk do not hash to the signed checkpoint's root"
            )));
        }
        {
            let mut fetch = log.fetcher();
            let mut src = TileHashes::new(size, |id: TileId| {
                fetch(&id.path()).map_err(|r| TlogError::Tile(format!("{}: {r}", id.path())))
            });
            if merkle::range_hash(&mut src, 0, size)? != checkpoint.root {
                return Err(LogError::Corrupt(
                    "the hash tiles on disk do not hash to the signed checkpoint's root".into(),
                ));
            }
        }
        for (i, e) in entries.iter().enumerate() {
            let s = Statement::from_entry(e)
                .map_err(|err| LogError::Corrupt(format!("entry #{i}: {err}")))?;
            log.rules
                .apply(&s, &leaves[i])
                .map_err(|err| LogError::Corrupt(format!("entry #{i}: {err}")))?;
            log.index_of.entry(leaves[i]).or_insert(i as u64);
        }
        // The served checkpoint, if it is a (cosigned) checkpoint of this log no newer than
        // the signed one and consistent with it.
        if let Some(bytes) = read_optional(&dir.join("checkpoint"))? {
            let note =
                Note::parse(&bytes).map_err(|e| LogError::Corrupt(format!("checkpoint: {e}")))?;
            let c = Checkpoint::parse(note.text())?;
            note.open(std::slice::from_ref(log.signer.verifier()))
                .map_err(|e| LogError::Corrupt(format!("checkpoint: {e}")))?;
            if c.size > size || merkle::root_from_leaf_hashes(&leaves[..c.size as usize]) != c.root
            {
                return Err(LogError::Corrupt(
                    "the served checkpoint is not a prefix of the signed one".into(),
                ));
            }
            log.served = Some(note);
        }
        Ok(log)
    }

    /// A fetch function over the tiles on disk.
    pub fn fetcher(&self) -> impl FnMut(&str) -> Result<Vec<u8>, String> + '_ {
        move |p: &str| read_tile(&self.dir, p)
    }

    /// Number of committed entries.
    pub fn size(&self) -> u64 {
        self.rules.next_index()
    }

    /// The served checkpoint.
    pub fn served(&self) -> Option<&Note> {
        self.served.as_ref()
    }

    /// Appends `entries` (each a canonical statement) and returns one result per entry.
    pub fn add(&mut self, entries: &[Vec<u8>]) -> Vec<AddResult> {
        let mut results: Vec<Option<AddResult>> = (0..entries.len()).map(|_| None).collect();
        let mut indexes: Vec<Option<u64>> = vec![None; entries.len()];
        let mut new: Vec<Vec<u8>> = Vec::new();
        let start = self.size();
        // Check each entry against the log and the entries before it in the batch.
        let mut staged = self.rules.clone();
        let mut staged_index: HashMap<Hash, u64> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let s = match Statement::from_entry(e) {
                Ok(s) => s,
                Err(err) => {
                    results[i] = Some(AddResult::Refused(err.to_string()));
                    continue;
                }
            };
            if matches!(s, Statement::RevocationList { .. }) {
                results[i] = Some(AddResult::Refused(
                    "revocation lists are written by the log itself".into(),
                ));
                continue;
            }
            let leaf = leaf_hash(e);
            if let Some(existing) = self.index_of.get(&leaf).or(staged_index.get(&leaf)) {
                indexes[i] = Some(*existing);
                continue;
            }
            let index = start + new.len() as u64;
            if let Err(err) = staged.apply(&s, &leaf) {
                results[i] = Some(AddResult::Refused(err.to_string()));
                continue;
            }
            staged_index.insert(leaf, index);
            indexes[i] = Some(index);
            new.push(e.clone());
        }
        if !new.is_empty() {
            if let Err(e) = self.commit(new, staged) {
                let reason = e.to_string();
                tracing::error!(error = %reason, "append failed");
                return entries
                    .iter()
                    .enumerate()
                    .map(|(i, _)| {
                        results[i].take().unwrap_or_else(|| {
                            AddResult::Failed(format!("the log could not append: {reason}"))
                        })
                    })
                    .collect();
            }
        }
        let witnessed = match self.cosign() {
            Ok(()) => None,
            Err(e) => Some(e.to_string()),
        };
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if let Some(r) = results[i].take() {
                    return r;
                }
                let Some(index) = indexes[i] else {
                    return AddResult::Refused("internal: no index".into());
                };
                match (&witnessed, &self.served) {
                    (None, Some(note))
                        if index < Checkpoint::parse(note.text()).map(|c| c.size).unwrap_or(0) =>
                    {
                        let note = note.clone();
                        let mut fetch = self.fetcher();
                        match replay::build_proof(&mut fetch, &note, index, e) {
                            Ok(p) => AddResult::Proven(Box::new(p)),
                            Err(err) => AddResult::Unwitnessed {
                                index,
                                reason: format!("cannot build the proof: {err}"),
                            },
                        }
                    }
                    (reason, _) => AddResult::Unwitnessed {
                        index,
                        reason: reason.clone().unwrap_or_else(|| "not yet witnessed".into()),
                    },
                }
            })
            .collect()
    }

    /// Steps 2–4: write the batch and its revocation list, sign, commit. `after` is the
    /// log's rules with the batch already applied (as [`Log::add`] checked it).
    fn commit(&mut self, mut entries: Vec<Vec<u8>>, mut after: Rules) -> Result<(), LogError> {
        let old_size = self.size();
        let list = after.revocation_list();
        entries.push(
            list.to_entry()
                .map_err(|e| LogError::Refused(e.to_string()))?,
        );
        let (writes, leaves) = {
            let mut fetch = self.fetcher();
            tiles::append(old_size, &entries, |id| {
                fetch(&id.path()).map_err(|r| TlogError::Tile(format!("{}: {r}", id.path())))
            })?
        };
        let mut dirs = std::collections::BTreeSet::new();
        for w in &writes {
            let path = tile_file(&self.dir, &w.id.path());
            write_atomic(&path, &w.bytes)?;
            if let Some(d) = path.parent() {
                dirs.insert(d.to_owned());
            }
        }
        for d in dirs {
            sync_dir(&d)?;
        }
        // The new root, from the tiles just written.
        let new_size = old_size + entries.len() as u64;
        let root = {
            let mut fetch = self.fetcher();
            let mut src = TileHashes::new(new_size, |id: TileId| {
                fetch(&id.path()).map_err(|r| TlogError::Tile(format!("{}: {r}", id.path())))
            });
            merkle::range_hash(&mut src, 0, new_size)?
        };
        let c = Checkpoint {
            origin: self.signer.verifier().name().to_owned(),
            size: new_size,
            root,
            extensions: vec![],
        };
        let mut note = Note::unsigned(&c.to_text())?;
        note.sign(&self.signer, 0)?;
        write_atomic(
            &self.dir.join("checkpoint.signed"),
            note.to_text().as_bytes(),
        )?;
        // Committed.
        self.signed = note;
        let list_leaf = leaves[leaves.len() - 1];
        after
            .apply(&list, &list_leaf)
            .map_err(|err| LogError::Refused(err.to_string()))?;
        self.rules = after;
        for (i, leaf) in leaves.iter().enumerate() {
            self.index_of.entry(*leaf).or_insert(old_size + i as u64);
        }
        tracing::info!(entries = entries.len() - 1, size = new_size, "committed");
        Ok(())
    }

    /// Step 5: asks every witness of the policy to cosign the signed checkpoint (also when it
    /// is already served: cosignatures get a fresh time), and serves it with a quorum.
    pub fn cosign(&mut self) -> Result<(), LogError> {
        let c = Checkpoint::parse(self.signed.text())?;
        let text = self.signed.to_text();
        let witnesses = self.witnesses.witnesses().to_vec();
        let sizes = self.witness_sizes.clone();
        let dir = self.dir.clone();
        // Each witness in its own thread: one slow witness does not delay the others.
        let outcomes: Vec<WitnessOutcome> = std::thread::scope(|scope| {
            let handles: Vec<_> = witnesses
                .iter()
                .zip(sizes)
                .map(|(w, known)| {
                    let text = &text;
                    let dir = &dir;
                    scope.spawn(move || ask_witness(w, known, dir, c.size, text))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| (None, Err("the witness thread panicked".into())))
                })
                .collect()
        });
        let mut note = self.signed.clone();
        let mut cosigned = Vec::new();
        let mut failures = Vec::new();
        for (i, (size, outcome)) in outcomes.into_iter().enumerate() {
            if size.is_some() {
                self.witness_sizes[i] = size;
            }
            let w = &witnesses[i];
            match outcome {
                Ok(lines) => {
                    let mut candidate = note.clone();
                    for l in &lines {
                        if candidate.add_signature_line(l).is_err() {
                            continue;
                        }
                    }
                    match candidate.verify(std::slice::from_ref(&w.key)) {
                        Ok(v) if !v.is_empty() => {
                            note = candidate;
                            cosigned.push(i);
                        }
                        _ => failures.push(format!("{}: its cosignature does not verify", w.name)),
                    }
                }
                Err(e) => failures.push(format!("{}: {e}", w.name)),
            }
        }
        if !self.witnesses.quorum_met(&cosigned) {
            tracing::warn!(
                size = c.size,
                cosigned = cosigned.len(),
                "no witness quorum"
            );
            return Err(LogError::Witnesses(format!(
                "{} of {} witnesses cosigned size {}, not a quorum ({})",
                cosigned.len(),
                witnesses.len(),
                c.size,
                failures.join("; ")
            )));
        }
        write_atomic(&self.dir.join("checkpoint"), note.to_text().as_bytes())?;
        tracing::info!(
            size = c.size,
            cosigned = cosigned.len(),
            "checkpoint witnessed"
        );
        self.served = Some(note);
        Ok(())
    }
}

/// A tile or bundle of the log in `dir`, by its tile path.
fn read_tile(dir: &Path, tile_path: &str) -> Result<Vec<u8>, String> {
    match read_optional(&tile_file(dir, tile_path)) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err("no such tile".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// What one witness is now known to have cosigned, and its signature lines (or why not).
type WitnessOutcome = (Option<u64>, Result<Vec<String>, String>);

/// One witness: returns what it is now known to have cosigned, and its signature lines.
fn ask_witness(
    w: &cloister_tlog::policy::PolicyWitness,
    known: Option<u64>,
    dir: &Path,
    size: u64,
    text: &str,
) -> WitnessOutcome {
    let Some(url) = w.url.as_deref() else {
        return (known, Err("the policy gives no URL for it".into()));
    };
    let mut old = known.unwrap_or(0);
    for _ in 0..2 {
        if old > size {
            return (
                Some(old),
                Err(format!(
                    "it has cosigned size {old}, larger than ours ({size})"
                )),
            );
        }
        let proof = {
            let mut fetch = |p: &str| read_tile(dir, p);
            match replay::consistency_from_tiles(&mut fetch, old, size) {
                Ok(p) => p,
                Err(e) => return (known, Err(format!("cannot build a consistency proof: {e}"))),
            }
        };
        match witness_client::add_checkpoint(url, old, &proof, text, WITNESS_TIMEOUT) {
            Ok(AddOutcome::Cosigned(lines)) => return (Some(size), Ok(lines)),
            Ok(AddOutcome::Conflict { witness_size }) => old = witness_size,
            Err(e) => return (known, Err(e.to_string())),
        }
    }
    (Some(old), Err("the witness's size kept changing".into()))
}
