//! The `add-checkpoint` request body of tlog-witness: its parsing (the witness) and its
//! encoding (the client).
//!
//! ```text
//! old <size>\n
//! <base64 hash>\n        (0 to 63 consistency-proof lines)
//! \n
//! <signed checkpoint note>
//! ```

use cloister_tlog::checkpoint::{hash_b64, parse_decimal, parse_hash};
use cloister_tlog::{Checkpoint, Hash, Note};

/// Most consistency-proof lines a request may carry (tlog-witness: a client MUST NOT send
/// more than 63).
pub const MAX_PROOF_LINES: usize = 63;

/// Why an `add-checkpoint` body is malformed (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body has no empty line ending the old-size and proof lines.
    #[error("the body has no empty line after the old size and proof lines")]
    NoEmptyLine,
    /// The first line is not `old <decimal>`.
    #[error("the first line is not `old <size>` (a decimal without leading zeroes)")]
    OldSize,
    /// More than [`MAX_PROOF_LINES`] proof lines.
    #[error("{0} consistency-proof lines, more than the {MAX_PROOF_LINES} allowed")]
    TooManyProofLines(usize),
    /// A proof line is not the base64 of a 32-byte hash.
    #[error("consistency-proof line {0} is not the base64 of a 32-byte hash")]
    ProofLine(usize),
    /// The checkpoint is not a signed note.
    #[error("the checkpoint is not a signed note: {0}")]
    Note(cloister_tlog::TlogError),
    /// The note's text is not a checkpoint.
    #[error("the note is not a checkpoint: {0}")]
    Checkpoint(cloister_tlog::TlogError),
}

/// A parsed `add-checkpoint` body (signatures not yet verified, consistency not checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness cosigned last.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed note.
    pub note: Note,
    /// Its text, parsed.
    pub checkpoint: Checkpoint,
}

/// Parses an `add-checkpoint` body.
pub fn parse_add_checkpoint(body: &[u8]) -> Result<AddCheckpoint, RequestError> {
    // The old-size and proof lines are never empty, so the first empty line ends them.
    let end = body
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or(RequestError::NoEmptyLine)?;
    let head = std::str::from_utf8(&body[..end]).map_err(|_| RequestError::OldSize)?;
    let rest = &body[end + 2..];
    let mut lines = head.split('\n');
    let old_size = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .and_then(|s| parse_decimal(s, "old size").ok())
        .ok_or(RequestError::OldSize)?;
    let proof_lines: Vec<&str> = lines.collect();
    if proof_lines.len() > MAX_PROOF_LINES {
        return Err(RequestError::TooManyProofLines(proof_lines.len()));
    }
    let proof = proof_lines
        .iter()
        .enumerate()
        .map(|(i, l)| parse_hash(l, "proof hash").map_err(|_| RequestError::ProofLine(i + 1)))
        .collect::<Result<Vec<Hash>, _>>()?;
    let note = Note::parse(rest).map_err(RequestError::Note)?;
    let checkpoint = Checkpoint::parse(note.text()).map_err(RequestError::Checkpoint)?;
    Ok(AddCheckpoint {
        old_size,
        proof,
        note,
        checkpoint,
    })
}

/// Encodes an `add-checkpoint` body from its parts; `signed_note` is the checkpoint note as
/// the log serves it (text, blank line, signature lines).
pub fn encode_add_checkpoint(old_size: u64, proof: &[Hash], signed_note: &str) -> String {
    let mut out = format!("old {old_size}\n");
    for h in proof {
        out.push_str(&hash_b64(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_note);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloister_tlog::{KeyType, NoteSigner, EMPTY_ROOT};

    fn note() -> String {
        let signer = NoteSigner::generate("example.com/log", KeyType::Ed25519).expect("key");
        let mut n = Note::unsigned(&format!("example.com/log\n0\n{}\n", hash_b64(&EMPTY_ROOT)))
            .expect("note");
        n.sign(&signer, 0).expect("sign");
        n.to_text()
    }

    #[test]
    fn round_trip() {
        let proof = vec![[1u8; 32], [2u8; 32]];
        let body = encode_add_checkpoint(7, &proof, &note());
        let req = parse_add_checkpoint(body.as_bytes()).expect("parses");
        assert_eq!(req.old_size, 7);
        assert_eq!(req.proof, proof);
        assert_eq!(req.checkpoint.origin, "example.com/log");
        assert_eq!(req.note.to_text(), note_text_of(&body));
    }

    fn note_text_of(body: &str) -> &str {
        let at = body.find("\n\n").expect("blank line");
        &body[at + 2..]
    }

    #[test]
    fn refuses_malformed_heads() {
        let n = note();
        let h = hash_b64(&[3u8; 32]);
        let cases: Vec<(String, RequestError)> = vec![
            (n.clone(), RequestError::OldSize),
            (format!("old 01\n\n{n}"), RequestError::OldSize),
            (format!("old -1\n\n{n}"), RequestError::OldSize),
            (format!("old  1\n\n{n}"), RequestError::OldSize),
            (format!("old 1\r\n\n{n}"), RequestError::OldSize),
            (format!("Old 1\n\n{n}"), RequestError::OldSize),
            (
                format!("old 18446744073709551616\n\n{n}"),
                RequestError::OldSize,
            ),
            (format!("old 1\n{h}\n"), RequestError::NoEmptyLine),
            (
                format!("old 1\nnot base64!\n\n{n}"),
                RequestError::ProofLine(1),
            ),
            (
                format!("old 1\n{h}\nAAAA\n\n{n}"),
                RequestError::ProofLine(2),
            ),
            (
                format!("old 1\n{}\n{n}", format!("{h}\n").repeat(64)),
                RequestError::TooManyProofLines(64),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(parse_add_checkpoint(body.as_bytes()), Err(want), "{body:?}");
        }
        let ok = format!("old 1\n{}\n{n}", format!("{h}\n").repeat(63));
        assert_eq!(
            parse_add_checkpoint(ok.as_bytes())
                .expect("63 lines")
                .proof
                .len(),
            63
        );
    }

    #[test]
    fn refuses_what_is_not_a_checkpoint_note() {
        assert!(matches!(
            parse_add_checkpoint(b"old 0\n\nhello\n"),
            Err(RequestError::Note(_))
        ));
        let signer = NoteSigner::generate("example.com/log", KeyType::Ed25519).expect("key");
        let mut n = Note::unsigned("example.com/log\nnot a size\n").expect("note");
        n.sign(&signer, 0).expect("sign");
        let body = format!("old 0\n\n{}", n.to_text());
        assert!(matches!(
            parse_add_checkpoint(body.as_bytes()),
            Err(RequestError::Checkpoint(_))
        ));
    }
}
