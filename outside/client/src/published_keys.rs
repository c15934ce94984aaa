//! Key consistency: a client checks that the gateway key configuration and the issuer key it
//! was given are published in the transparency log, under its tlog-policy (log key, witness
//! quorum, freshness), and not revoked. A key served to one client alone would let the
//! operator recognise that client again; a key in a witnessed log is the key everyone sees.
//!
//! The log is read directly (its files are public and static): the checkpoint, every entry,
//! and the hash tiles for the two inclusion proofs. Each key is checked once per
//! [`PublishedKeys`] (a key configuration is fetched once per transport), so reading the
//! log does not reveal when each session starts. The verification itself is
//! [`cloister_transparency::verify_published`] (pure).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use cloister_transparency::replay::{build_proof, read_entries};
use cloister_transparency::Statement;

use crate::log_reader::LogReader;

/// Why a key was not accepted as published.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// The log could not be read or its files do not verify.
    #[error("cannot read the transparency log: {}", cloister_display::Excerpt(.0))]
    Log(String),
    /// No entry of the log publishes the key.
    #[error(
        "{0} is not published in the transparency log: it may have been given to this client alone"
    )]
    NotPublished(String),
    /// The proof did not verify (quorum, freshness, inclusion) or the key is revoked.
    #[error("{what} was REJECTED")]
    Rejected {
        /// The key.
        what: String,
        /// Why.
        #[source]
        source: cloister_transparency::TransparencyError,
    },
}

/// Checks keys against one log.
pub struct PublishedKeys {
    reader: LogReader,
    tlog: cloister_tlog::Policy,
    max_age_secs: Option<u64>,
    checked: Mutex<HashSet<Vec<u8>>>,
}

impl std::fmt::Debug for PublishedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedKeys").finish_non_exhaustive()
    }
}

impl PublishedKeys {
    /// Keys must be in the log at `log` (URL or directory), witnessed under `tlog` with
    /// cosignatures at most `max_age_secs` old.
    pub fn new(log: &str, tlog: cloister_tlog::Policy, max_age_secs: Option<u64>) -> PublishedKeys {
        PublishedKeys {
            reader: LogReader::new(log, Duration::from_secs(20)),
            tlog,
            max_age_secs,
            checked: Mutex::new(HashSet::new()),
        }
    }

    fn checked(&self) -> std::sync::MutexGuard<'_, HashSet<Vec<u8>>> {
        match self.checked.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Checks (once per `id`) that a statement `wanted` accepts is in the log and not
    /// revoked; `what` names the key in errors. Blocking (reads the log).
    pub fn check(
        &self,
        id: &[u8],
        what: &str,
        wanted: impl Fn(&Statement) -> bool,
    ) -> Result<(), KeyCheckError> {
        if self.checked().contains(id) {
            return Ok(());
        }
        let log = |e: String| KeyCheckError::Log(e);
        let mut fetch = |path: &str| self.reader.fetch(path);
        let note = cloister_tlog::Note::parse(&fetch("checkpoint").map_err(log)?)
            .map_err(|e| log(e.to_string()))?;
        let size = cloister_tlog::Checkpoint::parse(note.text())
            .map_err(|e| log(e.to_string()))?
            .size;
        if size == 0 {
            return Err(KeyCheckError::NotPublished(what.to_owned()));
        }
        let entries = read_entries(&mut fetch, 0, size).map_err(|e| log(e.to_string()))?;
        // The newest entry that publishes the key (entries that do not parse are skipped:
        // the log's audit is where they are refused).
        let (index, entry) = entries
            .iter()
            .enumerate()
            .rev()
            .find(|(_, e)| Statement::from_entry(e).is_ok_and(|s| wanted(&s)))
            .ok_or_else(|| KeyCheckError::NotPublished(what.to_owned()))?;
        let proof =
            build_proof(&mut fetch, &note, index as u64, entry).map_err(|e| log(e.to_string()))?;
        let last = entries
            .last()
            .ok_or_else(|| log("the log has no entries".into()))?;
        let revocations =
            build_proof(&mut fetch, &note, size - 1, last).map_err(|e| log(e.to_string()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        cloister_transparency::verify_published(
            &proof,
            &revocations,
            &self.tlog,
            cloister_tlog::Freshness {
                now,
                max_age_secs: self.max_age_secs,
            },
            what,
            wanted,
        )
        .map_err(|source| KeyCheckError::Rejected {
            what: what.to_owned(),
            source,
        })?;
        self.checked().insert(id.to_vec());
        Ok(())
    }
}

/// The configurations of an `application/ohttp-keys` list (RFC 9540: each prefixed by its
/// 2-byte length).
pub fn split_key_configs(list: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err("a key configuration's length is cut short".into());
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if len == 0 || rest.len() < 2 + len {
            return Err("a key configuration is cut short".into());
        }
        out.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    if out.is_empty() {
        return Err("the list has no key configuration".into());
    }
    Ok(out)
}
