//! Accounts allowed to obtain tokens. Each holds a random API key, sent as
//! `Authorization: Bearer <key>`; the issuer keeps only its SHA-256, one
//! `<name> <hex sha256>` line per account (`#` comments allowed). A request names no
//! account: the key alone identifies it, compared in constant time against every entry.
//! (The keys are 256-bit random strings, so an unsalted hash is enough.)

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use cloister_display::Excerpt;

/// Why the accounts file is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    /// A line that is not `<name> <hex sha256>`.
    #[error("accounts line {line}: {why}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// A name that is not one word.
    #[error("an account name is one word of letters, digits, '-', '_' or '.', got {}", Excerpt(.0))]
    Name(String),
    /// The name is taken.
    #[error("an account named {} already exists", Excerpt(.0))]
    Exists(String),
    /// The file could not be read or written.
    #[error("{}: {}", .0.display(), .1)]
    Io(std::path::PathBuf, String),
    /// No randomness for a key.
    #[error("no randomness for an API key: {0}")]
    Random(String),
}

/// The accounts, by the hash of their API keys.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    entries: Vec<(String, [u8; 32])>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('#')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Accounts {
    /// Parses an accounts file.
    pub fn parse(text: &str) -> Result<Self, AccountsError> {
        let mut entries: Vec<(String, [u8; 32])> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = |why: &str| AccountsError::Syntax {
                line: i + 1,
                why: why.to_owned(),
            };
            let mut words = line.split_whitespace();
            let (Some(name), Some(hash), None) = (words.next(), words.next(), words.next()) else {
                return Err(syntax("expected <name> <hex sha256 of the API key>"));
            };
            if !valid_name(name) {
                return Err(syntax(
                    "the name is not one word of letters, digits, '-', '_' or '.'",
                ));
            }
            if entries.iter().any(|(n, _)| n == name) {
                return Err(syntax("the name appears twice"));
            }
            let mut h = [0u8; 32];
            hex::decode_to_slice(hash, &mut h)
                .map_err(|_| syntax("the hash is not 64 hex digits"))?;
            entries.push((name.to_owned(), h));
        }
        Ok(Self { entries })
    }

    /// Reads an accounts file.
    pub fn load(path: &Path) -> Result<Self, AccountsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AccountsError::Io(path.to_owned(), format!("cannot read: {e}")))?;
        Self::parse(&text)
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of account `index`.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.entries.get(index).map(|(n, _)| n.as_str())
    }

    /// The line for an account with this API key.
    pub fn line_for(name: &str, api_key: &str) -> String {
        format!("{name} {}", hex::encode(Sha256::digest(api_key.as_bytes())))
    }

    /// The index of the account this API key belongs to.
    pub fn authenticate(&self, api_key: &str) -> Option<usize> {
        let h: [u8; 32] = Sha256::digest(api_key.as_bytes()).into();
        let mut found = None;
        // Compare against every entry (no early exit).
        for (i, (_, want)) in self.entries.iter().enumerate() {
            if bool::from(want.ct_eq(&h)) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    /// Adds an account named `name` to the file at `path` (created, mode `0600`, if
    /// missing) and returns its fresh API key: 32 random bytes in hex. Only the key's hash is
    /// stored; the key cannot be recovered later.
    pub fn add_to_file(path: &Path, name: &str) -> Result<Zeroizing<String>, AccountsError> {
        use std::os::unix::fs::OpenOptionsExt;
        if !valid_name(name) {
            return Err(AccountsError::Name(name.to_owned()));
        }
        let io = |what: &str, e: std::io::Error| {
            AccountsError::Io(path.to_owned(), format!("{what}: {e}"))
        };
        let existing = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io("cannot read", e)),
        };
        let accounts = Self::parse(&existing)?;
        if accounts.entries.iter().any(|(n, _)| n == name) {
            return Err(AccountsError::Exists(name.to_owned()));
        }
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut()).map_err(|e| AccountsError::Random(e.to_string()))?;
        let key = Zeroizing::new(hex::encode(raw.as_ref()));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io("cannot open for appending", e))?;
        let sep = if existing.is_empty() || existing.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        f.write_all(format!("{sep}{}\n", Self::line_for(name, &key)).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| io("cannot write", e))?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_authenticate_by_key_hash_only() {
        let text = format!(
            "# accounts\n{}\n\n{}\n",
            Accounts::line_for("alice", "k1"),
            Accounts::line_for("bob", "k2")
        );
        let a = Accounts::parse(&text).expect("parses");
        assert_eq!(a.len(), 2);
        assert_eq!(a.authenticate("k2").and_then(|i| a.name(i)), Some("bob"));
        assert_eq!(a.authenticate("k1"), Some(0));
        assert_eq!(a.authenticate("k3"), None);
        assert_eq!(a.authenticate(""), None);
        assert!(!text.contains("k1 ") && !text.contains(" k2"));
    }

    #[test]
    fn bad_accounts_files_are_refused() {
        let h = "00".repeat(32);
        for bad in [
            "alice".to_string(),
            format!("alice {h} extra"),
            format!("alice {}", &h[..62]),
            format!("alice {}zz", &h[..62]),
            format!("al/ice {h}"),
            format!("alice {h}\nalice {h}"),
        ] {
            assert!(Accounts::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn add_to_file_appends_a_hash_and_refuses_duplicates() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("accounts");
        let k1 = Accounts::add_to_file(&path, "alice").expect("add");
        let k2 = Accounts::add_to_file(&path, "bob").expect("add");
        assert_eq!(k1.len(), 64);
        assert_ne!(*k1, *k2);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains(k1.as_str()) && !text.contains(k2.as_str()));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let a = Accounts::load(&path).expect("load");
        assert_eq!(a.authenticate(&k1), Some(0));
        assert_eq!(a.authenticate(&k2), Some(1));
        assert!(matches!(
            Accounts::add_to_file(&path, "alice"),
            Err(AccountsError::Exists(_))
        ));
        assert!(matches!(
            Accounts::add_to_file(&path, "two words"),
            Err(AccountsError::Name(_))
        ));
        assert_eq!(Accounts::load(&path).expect("load").len(), 2);
    }
}
