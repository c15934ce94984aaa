//! The log's files, written so that a crash at any point leaves either the old or the new
//! contents of every file: write a temporary file in the same directory, fsync it, rename it
//! over the target, fsync the directory.
//!
//! Layout under the log directory (servable as-is by any static web server):
//!
//! - `checkpoint` — the latest checkpoint with the log's signature and the witnesses'
//!   cosignatures (the only one served);
//! - `checkpoint.signed` — the latest checkpoint the log signed (the commit point of an
//!   append; it may be ahead of `checkpoint` while witnesses are asked);
//! - `tile/…` — hash tiles and entry bundles (C2SP tlog-tiles).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::LogError;

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let io =
        |what: &str, e: std::io::Error| LogError::Io(format!("{what} {}: {e}", path.display()));
    let dir = path
        .parent()
        .ok_or_else(|| LogError::Io(format!("{} has no parent directory", path.display())))?;
    fs::create_dir_all(dir).map_err(|e| io("cannot create the directory of", e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| LogError::Io(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io("cannot create a temporary file for", e))?;
        f.write_all(bytes).map_err(|e| io("cannot write", e))?;
        f.sync_all().map_err(|e| io("cannot fsync", e))?;
    }
    fs::rename(&tmp, path).map_err(|e| io("cannot rename into place", e))?;
    sync_dir(dir)
}

/// fsyncs a directory (so a rename in it is durable).
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::Io(format!("cannot fsync the directory {}: {e}", dir.display())))
}

/// The file of a tile path under the log directory.
pub fn tile_file(root: &Path, tile_path: &str) -> PathBuf {
    root.join(tile_path)
}

/// Reads a file, `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, LogError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::Io(format!("cannot read {}: {e}", path.display()))),
    }
}
