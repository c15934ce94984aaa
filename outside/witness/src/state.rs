//! The witness's durable state: one file per log, `<state dir>/<hex SHA-256 of the
//! origin>.checkpoint`, holding the latest checkpoint the witness cosigned for that log as a
//! signed note (the log's verified signatures and the witness's cosignature), exactly as
//! `GET <prefix>/<origin hash>/checkpoint` serves it.
//!
//! A file is replaced durably: the new content goes to `<name>.tmp`, which is fsynced and
//! renamed over the file, then the directory is fsynced. A crash at any point leaves either
//! the old or the new file (a leftover `.tmp` is ignored and overwritten). The directory is
//! locked (`<state dir>/lock`, an exclusive advisory lock) for as long as the witness runs,
//! so that two witness processes never share one state.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why the state directory or a state file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// An I/O operation on the state failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another process holds the state directory's lock.
    #[error("the state directory {} is in use by another witness process (its lock file is held)", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A state file exists but is not a valid state: the witness refuses to start rather
    /// than forget what it cosigned.
    #[error("corrupt state file {}: {why} (the witness never resets its state by itself: restore the file from a backup, or remove it knowingly)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// A failed [`StateDir::replace`].
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct WriteError {
    /// Whether the rename happened: the file holds the new content, though perhaps not
    /// durably (the directory fsync failed).
    pub replaced: bool,
    /// What failed.
    #[source]
    pub source: StateError,
}

/// The lowercase hex SHA-256 of a log's origin: its name in file names and URLs.
pub fn origin_hash(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

/// The locked state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    /// Held (locked) for the life of the value.
    _lock: File,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

impl StateDir {
    /// Opens (creating it, mode 0700, if needed) and locks the state directory.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(io("cannot create the state directory", dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("cannot open the lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked { path: lock_path })
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io("cannot lock", &lock_path)(e));
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of `origin`.
    pub fn path_of(&self, origin: &str) -> PathBuf {
        self.dir.join(format!("{}.checkpoint", origin_hash(origin)))
    }

    /// The content of `origin`'s state file, `None` if there is none. A file that is not
    /// UTF-8 or is larger than `max_bytes` is [`StateError::Corrupt`].
    pub fn read(&self, origin: &str, max_bytes: u64) -> Result<Option<String>, StateError> {
        let path = self.path_of(origin);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("cannot open the state file", &path)(e)),
        };
        let len = file
            .metadata()
            .map_err(io("cannot stat the state file", &path))?
            .len();
        if len > max_bytes {
            return Err(StateError::Corrupt {
                path,
                why: format!("{len} bytes, more than a checkpoint note may have ({max_bytes})"),
            });
        }
        let bytes = std::fs::read(&path).map_err(io("cannot read the state file", &path))?;
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Some(s)),
            Err(_) => Err(StateError::Corrupt {
                path,
                why: "not UTF-8".into(),
            }),
        }
    }

    /// Replaces `origin`'s state file by `content`, durably (see the module documentation).
    /// When this returns `Ok`, the new content survives a crash or a power loss.
    pub fn replace(&self, origin: &str, content: &str) -> Result<(), WriteError> {
        let path = self.path_of(origin);
        let tmp = path.with_extension("checkpoint.tmp");
        let not_replaced = |source| WriteError {
            replaced: false,
            source,
        };
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("cannot create", &tmp))
            .map_err(not_replaced)?;
        f.write_all(content.as_bytes())
            .map_err(io("cannot write", &tmp))
            .map_err(not_replaced)?;
        f.sync_all()
            .map_err(io("cannot fsync", &tmp))
            .map_err(not_replaced)?;
        drop(f);
        std::fs::rename(&tmp, &path)
            .map_err(io("cannot rename the new state over", &path))
            .map_err(not_replaced)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot fsync the state directory", &self.dir))
            .map_err(|source| WriteError {
                replaced: true,
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_then_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(&tmp.path().join("s")).expect("open");
        assert_eq!(state.read("o", 100).expect("read"), None);
        state.replace("o", "first\n").expect("write");
        state.replace("o", "second\n").expect("write");
        assert_eq!(
            state.read("o", 100).expect("read").as_deref(),
            Some("second\n")
        );
        assert!(!state.path_of("o").with_extension("checkpoint.tmp").exists());
        let name = format!("{}.checkpoint", origin_hash("o"));
        assert_eq!(
            state.path_of("o").file_name().and_then(|n| n.to_str()),
            Some(name.as_str())
        );
        assert!(matches!(
            state.read("o", 3),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_second_process_is_locked_out() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let _first = StateDir::open(tmp.path()).expect("open");
        assert!(matches!(
            StateDir::open(tmp.path()),
            Err(StateError::Locked { .. })
        ));
    }

    #[test]
    fn origin_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            origin_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
