//! C2SP checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed tree head of a log.
//!
//! The note text is the origin line, the tree size in decimal (no leading zeroes), the root
//! hash in base64, then optional non-empty extension lines.

use base64::Engine as _;
use cloister_display::Quoted;

use crate::merkle::Hash;
use crate::TlogError;

/// The body of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `log.example.com/cloister`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root hash.
    pub root: Hash,
    /// Extension lines (opaque, unsigned by witnesses' semantics; Cloister writes none).
    pub extensions: Vec<String>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Parses a decimal with no leading zeroes (except `0` itself).
pub fn parse_decimal(s: &str, what: &str) -> Result<u64, TlogError> {
    let ok = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && !(s.len() > 1 && s.starts_with('0'));
    if !ok {
        return Err(TlogError::Checkpoint(format!(
            "{what} {} is not a decimal number without leading zeroes",
            Quoted(s)
        )));
    }
    s.parse()
        .map_err(|_| TlogError::Checkpoint(format!("{what} {} does not fit in 64 bits", Quoted(s))))
}

/// Decodes a base64 SHA-256 hash (exactly 32 bytes, canonical base64).
pub fn parse_hash(s: &str, what: &str) -> Result<Hash, TlogError> {
    let raw = b64()
        .decode(s)
        .map_err(|_| TlogError::Checkpoint(format!("{what} is not base64")))?;
    let h: Hash = raw.try_into().map_err(|v: Vec<u8>| {
        TlogError::Checkpoint(format!("{what} is {} bytes, not 32", v.len()))
    })?;
    Ok(h)
}

/// A hash in base64.
pub fn hash_b64(h: &Hash) -> String {
    b64().encode(h)
}

impl Checkpoint {
    /// Parses a checkpoint body (the note text, with its final newline).
    pub fn parse(text: &str) -> Result<Self, TlogError> {
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| TlogError::Checkpoint("the body does not end with a newline".into()))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(TlogError::Checkpoint("the origin line is empty".into()));
        }
        let size = parse_decimal(
            lines
                .next()
                .ok_or_else(|| TlogError::Checkpoint("no tree size line".into()))?,
            "tree size",
        )?;
        let root = parse_hash(
            lines
                .next()
                .ok_or_else(|| TlogError::Checkpoint("no root hash line".into()))?,
            "the root hash",
        )?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(TlogError::Checkpoint("an extension line is empty".into()));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The body text, with its final newline.
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, hash_b64(&self.root));
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }
}
