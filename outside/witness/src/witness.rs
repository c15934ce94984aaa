//! The witness proper: which logs it trusts, what it last cosigned for each, and the
//! `add-checkpoint` decision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use cloister_display::{Excerpt, Quoted};
use cloister_tlog::merkle::verify_consistency;
use cloister_tlog::note::MAX_NOTE_BYTES;
use cloister_tlog::{
    Checkpoint, Hash, KeyType, Note, NoteSigner, TlogError, VerifierKey, EMPTY_ROOT,
};

use crate::request::{parse_add_checkpoint, AddCheckpoint, RequestError};
use crate::state::{origin_hash, StateDir, StateError};

/// Why a witness cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The witness's own key is not a cosignature (type 0x04) key.
    #[error("the witness key {} is not a cosignature key (type 0x04): make one with `cloister-witness keygen`", Quoted(.0))]
    NotACosignatureKey(String),
    /// A log key is not an Ed25519 (type 0x01) note key.
    #[error("the log key {} is not an Ed25519 note key (type 0x01)", Quoted(.0))]
    NotALogKey(String),
    /// No log is configured.
    #[error("no log key is configured: a witness cosigns only for the logs it is told to trust")]
    NoLogs,
    /// The state directory or a state file cannot be used.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why an `add-checkpoint` request was refused; [`AddError::status`] is the HTTP status the
/// tlog-witness specification gives it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// 400: the body is malformed.
    #[error("malformed request: {0}")]
    Malformed(#[from] RequestError),
    /// 404: no configured log has this origin.
    #[error("unknown log origin {}", Quoted(.0))]
    UnknownOrigin(String),
    /// 403: no valid signature of a key trusted for the origin, or a trusted key's
    /// signature does not verify.
    #[error("checkpoint of {}: {source}", Quoted(origin))]
    Signature {
        /// The origin.
        origin: String,
        /// What the verification said.
        source: TlogError,
    },
    /// 400: the old size is larger than the checkpoint's size.
    #[error("old size {old_size} is larger than the checkpoint size {size}")]
    OldSizeTooLarge {
        /// The request's old size.
        old_size: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// 409: the old size is not the size of the latest checkpoint the witness cosigned.
    #[error("old size {old_size} is not the size of the latest checkpoint this witness cosigned ({witness_size})")]
    Conflict {
        /// The request's old size.
        old_size: u64,
        /// The size the witness holds.
        witness_size: u64,
    },
    /// 422: a checkpoint of size 0 whose root is not the empty tree's hash.
    #[error("a checkpoint of size 0 must have the empty tree's root hash, SHA-256(\"\")")]
    EmptyTreeRoot,
    /// 422: a non-empty consistency proof from old size 0.
    #[error("from old size 0 the consistency proof must be empty")]
    ProofFromEmpty,
    /// 422: the consistency proof does not verify (a fork, or a proof that cannot exist).
    #[error("not consistent with the latest cosigned checkpoint: {0}")]
    Inconsistent(TlogError),
    /// 500: the new state could not be persisted; nothing was cosigned.
    #[error("the witness could not persist its state; nothing was cosigned")]
    Persist(#[source] StateError),
    /// 500: another internal failure; nothing was cosigned.
    #[error("internal error: {0}; nothing was cosigned")]
    Internal(String),
}

impl AddError {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> u16 {
        match self {
            AddError::Malformed(_) | AddError::OldSizeTooLarge { .. } => 400,
            AddError::Signature { .. } => 403,
            AddError::UnknownOrigin(_) => 404,
            AddError::Conflict { .. } => 409,
            AddError::EmptyTreeRoot | AddError::ProofFromEmpty | AddError::Inconsistent(_) => 422,
            AddError::Persist(_) | AddError::Internal(_) => 500,
        }
    }
}

/// A successful `add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The log's origin.
    pub origin: String,
    /// The previous size (the request's old size).
    pub old_size: u64,
    /// The size now cosigned.
    pub size: u64,
    /// The response body: the witness's cosignature line(s), each ending in a newline.
    pub lines: String,
}

/// What the witness holds for one log.
#[derive(Debug, Clone, Copy)]
struct Latest {
    size: u64,
    root: Hash,
    /// The time of the latest cosignature (0: never cosigned). Cosignature times never go
    /// back for a log, even if the clock does.
    timestamp: u64,
}

#[derive(Debug)]
struct Log {
    keys: Vec<VerifierKey>,
    /// Held from the size check to the durable write (tlog-witness's race).
    latest: Mutex<Latest>,
    /// The stored note, for `GET …/checkpoint`; replaced only after it is durable.
    published: RwLock<Option<Arc<str>>>,
}

/// A witness: its key, the logs it trusts, their latest cosigned checkpoints.
#[derive(Debug)]
pub struct Witness {
    signer: NoteSigner,
    logs: HashMap<String, Log>,
    /// Origin hash (lowercase hex) → origin.
    by_hash: HashMap<String, String>,
    state: StateDir,
}

impl Witness {
    /// A witness with cosigning key `signer` (type 0x04), trusting `log_keys` (type 0x01;
    /// the key name is the log's origin, several keys may share one), keeping its state in
    /// `state_dir` (locked while the witness lives). Reads every configured log's state
    /// file: a corrupt one is an error naming the file.
    pub fn open(
        signer: NoteSigner,
        log_keys: Vec<VerifierKey>,
        state_dir: &std::path::Path,
    ) -> Result<Self, SetupError> {
        if signer.verifier().kind() != KeyType::Cosignature {
            return Err(SetupError::NotACosignatureKey(signer.verifier().to_vkey()));
        }
        if log_keys.is_empty() {
            return Err(SetupError::NoLogs);
        }
        let mut grouped: HashMap<String, Vec<VerifierKey>> = HashMap::new();
        for key in log_keys {
            if key.kind() != KeyType::Ed25519 {
                return Err(SetupError::NotALogKey(key.to_vkey()));
            }
            let keys = grouped.entry(key.name().to_owned()).or_default();
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let state = StateDir::open(state_dir)?;
        let mut logs = HashMap::new();
        let mut by_hash = HashMap::new();
        for (origin, keys) in grouped {
            let (latest, published) = load(&state, &origin, &keys, signer.verifier())?;
            by_hash.insert(origin_hash(&origin), origin.clone());
            logs.insert(
                origin,
                Log {
                    keys,
                    latest: Mutex::new(latest),
                    published: RwLock::new(published),
                },
            );
        }
        Ok(Self {
            signer,
            logs,
            by_hash,
            state,
        })
    }

    /// The witness's public key (type 0x04), to give to the logs and their verifiers.
    pub fn verifier(&self) -> &VerifierKey {
        self.signer.verifier()
    }

    /// The origins of the configured logs and the size last cosigned for each (0: never).
    pub fn sizes(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .logs
            .iter()
            .map(|(o, l)| (o.clone(), lock(&l.latest).map(|g| g.size).unwrap_or(0)))
            .collect();
        v.sort();
        v
    }

    /// The latest cosigned checkpoint (log signatures and the witness's cosignature) of the
    /// log whose origin has this lowercase hex SHA-256; `None` if unknown or never cosigned.
    pub fn checkpoint(&self, origin_hash: &str) -> Option<Arc<str>> {
        let log = self.logs.get(self.by_hash.get(origin_hash)?)?;
        match log.published.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Handles an `add-checkpoint` body at time `now` (seconds since the epoch): checks it
    /// as tlog-witness says, in this order — the form (400), the origin (404), the log's
    /// signature (403), old size ≤ size (400), a size-0 checkpoint's root and an empty
    /// proof from 0 (422); then, holding the log's lock, old size = the stored size (409)
    /// and the consistency proof (422) — and only then cosigns, persists durably, and
    /// returns the cosignature.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<Cosigned, AddError> {
        let req = parse_add_checkpoint(body)?;
        let result = self.add(&req, now);
        if let Err(e) = &result {
            tracing::info!(
                origin = %Excerpt(&req.checkpoint.origin),
                old_size = req.old_size,
                size = req.checkpoint.size,
                status = e.status(),
                "checkpoint refused"
            );
        }
        result
    }

    fn add(&self, req: &AddCheckpoint, now: u64) -> Result<Cosigned, AddError> {
        let cp = &req.checkpoint;
        let log = self
            .logs
            .get(&cp.origin)
            .ok_or_else(|| AddError::UnknownOrigin(cp.origin.clone()))?;
        let verified = req
            .note
            .open(&log.keys)
            .map_err(|source| AddError::Signature {
                origin: cp.origin.clone(),
                source,
            })?;
        if req.old_size > cp.size {
            return Err(AddError::OldSizeTooLarge {
                old_size: req.old_size,
                size: cp.size,
            });
        }
        if cp.size == 0 && cp.root != EMPTY_ROOT {
            return Err(AddError::EmptyTreeRoot);
        }
        if req.old_size == 0 && !req.proof.is_empty() {
            return Err(AddError::ProofFromEmpty);
        }

        // The stored note: the text, the log signatures that verified, the cosignature.
        let mut stored = Note::unsigned(req.note.text())
            .map_err(|e| AddError::Internal(format!("note text: {e}")))?;
        for sig in req.note.signatures() {
            if verified
                .iter()
                .any(|v| v.key.name() == sig.name && v.key.id() == sig.id)
            {
                stored
                    .add_signature_line(&sig.to_line())
                    .map_err(|e| AddError::Internal(format!("signature line: {e}")))?;
            }
        }

        let mut latest = lock(&log.latest)?;
        if req.old_size != latest.size {
            return Err(AddError::Conflict {
                old_size: req.old_size,
                witness_size: latest.size,
            });
        }
        verify_consistency(latest.size, cp.size, &req.proof, &latest.root, &cp.root)
            .map_err(AddError::Inconsistent)?;

        let timestamp = now.max(latest.timestamp);
        if timestamp == 0 {
            return Err(AddError::Internal(
                "the clock is at the epoch: a cosignature time must not be 0".into(),
            ));
        }
        let line = self
            .signer
            .sign_line(req.note.text(), timestamp)
            .map_err(|e| AddError::Internal(format!("cosigning: {e}")))?;
        stored
            .add_signature_line(&line)
            .map_err(|e| AddError::Internal(format!("cosignature line: {e}")))?;
        let stored = stored.to_text();

        let next = Latest {
            size: cp.size,
            root: cp.root,
            timestamp,
        };
        if let Err(e) = self.state.replace(&cp.origin, &stored) {
            if e.replaced {
                // The file already holds the new state (maybe not durably): the memory
                // follows the file, but no cosignature leaves the witness.
                *latest = next;
                publish(log, stored);
            }
            return Err(AddError::Persist(e.source));
        }
        *latest = next;
        publish(log, stored);
        drop(latest);
        Ok(Cosigned {
            origin: cp.origin.clone(),
            old_size: req.old_size,
            size: cp.size,
            lines: line,
        })
    }
}

fn publish(log: &Log, stored: String) {
    let stored: Arc<str> = stored.into();
    match log.published.write() {
        Ok(mut g) => *g = Some(stored),
        Err(poisoned) => *poisoned.into_inner() = Some(stored),
    }
}

fn lock(m: &Mutex<Latest>) -> Result<std::sync::MutexGuard<'_, Latest>, AddError> {
    // A panic while the lock was held may have left the memory behind the file: refuse
    // rather than guess (a restart reads the file again).
    m.lock().map_err(|_| {
        AddError::Internal(
            "this log's state is unusable after an earlier failure; restart the witness".into(),
        )
    })
}

/// Reads and checks `origin`'s state file.
fn load(
    state: &StateDir,
    origin: &str,
    log_keys: &[VerifierKey],
    own: &VerifierKey,
) -> Result<(Latest, Option<Arc<str>>), StateError> {
    let Some(text) = state.read(origin, MAX_NOTE_BYTES as u64)? else {
        return Ok((
            Latest {
                size: 0,
                root: EMPTY_ROOT,
                timestamp: 0,
            },
            None,
        ));
    };
    let corrupt = |why: String| StateError::Corrupt {
        path: state.path_of(origin),
        why,
    };
    let note = Note::parse(text.as_bytes()).map_err(|e| corrupt(e.to_string()))?;
    let cp = Checkpoint::parse(note.text()).map_err(|e| corrupt(e.to_string()))?;
    if cp.origin != origin {
        return Err(corrupt(format!(
            "it holds a checkpoint of {}, not of {}",
            Quoted(&cp.origin),
            Quoted(origin)
        )));
    }
    if cp.size == 0 && cp.root != EMPTY_ROOT {
        return Err(corrupt("a size-0 checkpoint with a non-empty root".into()));
    }
    let own_sig = note.open(std::slice::from_ref(own)).map_err(|e| {
        corrupt(format!(
            "it has no valid cosignature of this witness's key {} ({e}); a state directory belongs to one witness key",
            own.to_vkey()
        ))
    })?;
    note.verify(log_keys)
        .map_err(|e| corrupt(format!("a log signature does not verify: {e}")))?;
    let timestamp = own_sig.first().and_then(|v| v.timestamp).unwrap_or(0);
    Ok((
        Latest {
            size: cp.size,
            root: cp.root,
            timestamp,
        },
        Some(text.into()),
    ))
}
