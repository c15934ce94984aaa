//! Models of the Cloister host: the manifest that pins them and the verified
//! load that hands the host only bytes whose SHA-256 matched.
//!
//! * [`Manifest`] — `models/manifest.toml`: each model's name, version,
//!   licence, upstream, source (a PyPI wheel pinned by URL and SHA-256), an
//!   optional conversion step, and every file with its SHA-256 and size.
//! * [`load_verified`] — reads each file the host needs **once**, hashes those
//!   bytes, and returns them only if they match; nothing re-reads the file.
//!   [`VerifiedModel::digest`] is the model's single measurement digest
//!   ([`model_digest`]).
//!
//! This crate runs inside the CVM and does no network I/O. Obtaining the files
//! (download, extraction, conversion) is `cloister-model-fetch`'s job, outside
//! the CVM (at image build, in CI, on a developer machine). See `docs/models.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod manifest;
pub mod verify;

pub use error::{ManifestError, Mismatch, VerifyError};
pub use manifest::{FileRole, Manifest, ModelKind, ModelSpec};
pub use verify::{
    load_spec, load_verified, model_digest, pinned_digest, VerifiedFile, VerifiedModel,
};

use std::path::{Path, PathBuf};

/// Environment variable naming the models data directory.
pub const DATA_DIR_ENV: &str = "CLOISTER_MODELS_DIR";

/// The default data directory for a manifest: `$CLOISTER_MODELS_DIR` if set,
/// else `target/models` next to the manifest's directory — for the
/// repository's `models/manifest.toml`, the repository's `target/models`.
pub fn default_data_dir(manifest_path: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let manifest_dir = manifest_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    manifest_dir.join("..").join("target").join("models")
}
