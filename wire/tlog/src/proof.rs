//! C2SP `tlog-proof@v1` (<https://c2sp.org/tlog-proof>): an offline-verifiable proof that an
//! entry is in a log, with the (cosigned) checkpoint it is proven against.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>            (optional)
//! index <decimal>
//! <base64 hash>             (zero or more: the inclusion proof, leaf's sibling first)
//!
//! <the signed checkpoint note, verbatim>
//! ```
//!
//! Cloister puts the logged entry's exact bytes in `extra`, so a verifier recomputes the
//! leaf hash from them; nothing in `extra` is trusted until that hash is proven.

use base64::Engine as _;

use crate::checkpoint::{hash_b64, parse_decimal, parse_hash};
use crate::merkle::{Hash, MAX_PROOF_HASHES};
use crate::note::{Note, MAX_NOTE_BYTES};
use crate::TlogError;

/// The first line of a v1 proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed `tlog-proof@v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque extra data (unauthenticated).
    pub extra: Option<Vec<u8>>,
    /// Zero-based index of the entry.
    pub index: u64,
    /// The inclusion proof.
    pub hashes: Vec<Hash>,
    /// The checkpoint, as a signed note.
    pub checkpoint: Note,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl TlogProof {
    /// Parses the text form.
    pub fn parse(bytes: &[u8]) -> Result<Self, TlogError> {
        if bytes.len() > 2 * MAX_NOTE_BYTES {
            return Err(TlogError::ProofFormat(format!(
                "{} bytes is too long",
                bytes.len()
            )));
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| TlogError::ProofFormat("not UTF-8".into()))?;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| TlogError::ProofFormat("no blank line before the checkpoint".into()))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(TlogError::ProofFormat(format!(
                "the first line is not {HEADER}"
            )));
        }
        let mut line = lines.next();
        let mut extra = None;
        if let Some(rest) = line.and_then(|l| l.strip_prefix("extra ")) {
            extra = Some(
                b64()
                    .decode(rest)
                    .map_err(|_| TlogError::ProofFormat("the extra line is not base64".into()))?,
            );
            line = lines.next();
        }
        let index = line
            .and_then(|l| l.strip_prefix("index "))
            .ok_or_else(|| TlogError::ProofFormat("no index line".into()))?;
        let index =
            parse_decimal(index, "index").map_err(|e| TlogError::ProofFormat(e.to_string()))?;
        let mut hashes = Vec::new();
        for l in lines {
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(TlogError::ProofFormat("too many proof hashes".into()));
            }
            hashes.push(
                parse_hash(l, "a proof hash").map_err(|e| TlogError::ProofFormat(e.to_string()))?,
            );
        }
        let checkpoint = Note::parse(checkpoint.as_bytes())?;
        Ok(Self {
            extra,
            index,
            hashes,
            checkpoint,
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        if let Some(e) = &self.extra {
            s.push_str(&format!("extra {}\n", b64().encode(e)));
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            s.push_str(&hash_b64(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint.to_text());
        s
    }
}
