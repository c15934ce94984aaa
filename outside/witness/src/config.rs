//! The witness's keys on disk: its own signer key (made by `cloister-witness keygen`) and
//! the log keys it trusts.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use cloister_display::Excerpt;
use cloister_tlog::{KeyType, NoteSigner, TlogError, VerifierKey};
use zeroize::Zeroizing;

/// Largest key file or logs file read, in bytes.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// Why a key or a logs file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Reading or writing a file failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is too large to be a key or a logs file.
    #[error("{} is {len} bytes, more than the {MAX_CONFIG_FILE_BYTES} a key or logs file may have", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// The signer key file does not hold a signer key.
    #[error("the key file {}: {source}", path.display())]
    SignerKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: TlogError,
    },
    /// A log key is not a verifier key.
    #[error("log key {}: {source}", Excerpt(at))]
    LogKey {
        /// Where it came from (`--log` or a file and line).
        at: String,
        /// Why.
        source: TlogError,
    },
    /// A new key could not be made.
    #[error("cannot make a key: {0}")]
    KeyGen(TlogError),
}

fn read_small(path: &Path, what: &'static str) -> Result<Zeroizing<String>, ConfigError> {
    let io = |source| ConfigError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_CONFIG_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
            len,
        });
    }
    Ok(Zeroizing::new(std::fs::read_to_string(path).map_err(io)?))
}

/// Reads the witness's signer key (`PRIVATE+KEY+…`, one line).
pub fn read_signer(path: &Path) -> Result<NoteSigner, ConfigError> {
    let text = read_small(path, "cannot read the key file")?;
    NoteSigner::parse(text.trim()).map_err(|source| ConfigError::SignerKey {
        path: path.to_owned(),
        source,
    })
}

/// Whether the key file can be read by others than its owner (unix mode bits).
pub fn key_file_is_exposed(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o077 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Makes a new cosignature key named `name`, writes its `PRIVATE+KEY+…` form to `out`
/// (a new file, mode 0600: an existing file is never overwritten) and returns its public
/// key.
pub fn write_new_key(name: &str, out: &Path) -> Result<VerifierKey, ConfigError> {
    let signer = NoteSigner::generate(name, KeyType::Cosignature).map_err(ConfigError::KeyGen)?;
    let io = |what| {
        move |source| ConfigError::Io {
            what,
            path: out.to_owned(),
            source,
        }
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(out)
        .map_err(io("cannot create the key file"))?;
    let mut text = signer.to_skey();
    text.push('\n');
    f.write_all(text.as_bytes())
        .map_err(io("cannot write the key file"))?;
    f.sync_all().map_err(io("cannot fsync the key file"))?;
    Ok(signer.verifier().clone())
}

/// Parses a log's verifier key as given on the command line.
pub fn parse_log_key(vkey: &str) -> Result<VerifierKey, ConfigError> {
    VerifierKey::parse(vkey.trim()).map_err(|source| ConfigError::LogKey {
        at: "--log".into(),
        source,
    })
}

/// Reads a logs file: one log verifier key per line; empty lines and lines starting with
/// `#` are skipped.
pub fn read_logs_file(path: &Path) -> Result<Vec<VerifierKey>, ConfigError> {
    let text = read_small(path, "cannot read the logs file")?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(
            VerifierKey::parse(line).map_err(|source| ConfigError::LogKey {
                at: format!("{} line {}", path.display(), i + 1),
                source,
            })?,
        );
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_a_private_file_and_never_overwrites() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("w.key");
        let vkey = write_new_key("witness.example/w1", &path).expect("keygen");
        assert_eq!(vkey.kind(), KeyType::Cosignature);
        assert!(!key_file_is_exposed(&path));
        let signer = read_signer(&path).expect("read back");
        assert_eq!(signer.verifier(), &vkey);
        assert!(matches!(
            write_new_key("witness.example/w1", &path),
            Err(ConfigError::Io { .. })
        ));
        assert_eq!(read_signer(&path).expect("unchanged").verifier(), &vkey);
    }

    #[test]
    fn logs_file_skips_comments_and_names_a_bad_line() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = NoteSigner::generate("example.com/a", KeyType::Ed25519).expect("key");
        let path = tmp.path().join("logs");
        std::fs::write(&path, format!("# logs\n\n{}\n", a.verifier().to_vkey())).expect("write");
        assert_eq!(
            read_logs_file(&path).expect("parses"),
            vec![a.verifier().clone()]
        );
        std::fs::write(&path, "# logs\nnot a key\n").expect("write");
        let err = read_logs_file(&path).expect_err("bad line").to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
