//! Publisher authentication: each publisher holds a random bearer token; the log keeps only
//! its SHA-256, one `<name> <hex sha256>` line per publisher (`#` comments allowed). A request
//! names no publisher: the token alone identifies it, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::LogError;

/// The publishers allowed to add entries.
#[derive(Debug, Clone, Default)]
pub struct Publishers {
    entries: Vec<(String, [u8; 32])>,
}

impl Publishers {
    /// Parses the publishers file.
    pub fn parse(text: &str) -> Result<Self, LogError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(name), Some(hash), None) = (words.next(), words.next(), words.next()) else {
                return Err(LogError::Config(format!(
                    "publishers line {}: expected <name> <hex sha256 of the token>",
                    i + 1
                )));
            };
            let mut h = [0u8; 32];
            hex::decode_to_slice(hash, &mut h).map_err(|_| {
                LogError::Config(format!("publishers line {}: the hash is not 64 hex", i + 1))
            })?;
            entries.push((name.to_owned(), h));
        }
        Ok(Self { entries })
    }

    /// The line for a publisher with this token.
    pub fn line_for(name: &str, token: &str) -> String {
        format!("{name} {}", hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// The publisher this token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&str> {
        let h: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        // Compare against every entry (no early exit).
        for (name, want) in &self.entries {
            if bool::from(want.ct_eq(&h)) && found.is_none() {
                found = Some(name.as_str());
            }
        }
        found
    }
}
