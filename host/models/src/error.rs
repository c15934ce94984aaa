//! Errors: each names the model, the file and the reason.

use std::path::{Path, PathBuf};

/// The manifest could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read model manifest {path}")]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML of the manifest's shape.
    #[error("invalid model manifest: {message}")]
    Parse {
        /// The parser's explanation.
        message: String,
    },
    /// A value is not acceptable.
    #[error("invalid model manifest: model `{model}`: {message}")]
    Invalid {
        /// The model (`-` for the manifest as a whole).
        model: String,
        /// What is wrong.
        message: String,
    },
    /// An error of the manifest file at `path`.
    #[error("model manifest {path}: {inner}")]
    InFile {
        /// The manifest file.
        path: PathBuf,
        /// The error.
        inner: Box<ManifestError>,
    },
}

impl ManifestError {
    pub(crate) fn invalid(model: &str, message: impl Into<String>) -> Self {
        ManifestError::Invalid {
            model: model.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn in_file(self, path: &Path) -> Self {
        ManifestError::InFile {
            path: path.to_owned(),
            inner: Box::new(self),
        }
    }
}

/// A model file could not be verified or loaded. The host never loads a
/// model that produced one of these.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The manifest has no such model.
    #[error("model `{model}` is not in the model manifest")]
    UnknownModel {
        /// The model.
        model: String,
    },
    /// A file is missing or unreadable.
    #[error("model `{model}`: cannot read {path} (run `cloister models fetch`)")]
    Read {
        /// The model.
        model: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file does not have the pinned size.
    #[error(
        "model `{model}`: {path} has {actual} bytes, the manifest pins {expected}: refused \
         (run `cloister models fetch` to replace it)"
    )]
    SizeMismatch {
        /// The model.
        model: String,
        /// The file.
        path: PathBuf,
        /// Pinned size.
        expected: u64,
        /// Size found.
        actual: u64,
    },
    /// A file does not have the pinned SHA-256.
    #[error(
        "model `{model}`: {path} has sha256 {actual}, the manifest pins {expected}: refused \
         (run `cloister models fetch` to replace it)"
    )]
    HashMismatch {
        /// The model.
        model: String,
        /// The file.
        path: PathBuf,
        /// Pinned hash.
        expected: String,
        /// Hash found.
        actual: String,
    },
}

/// An artifact whose hash or size differs from its pin (boxed in the fetch tool's
/// `FetchError::Mismatch`: it is the largest error).
#[derive(Debug, thiserror::Error)]
#[error(
    "model `{model}`: {what} has sha256 {actual} ({actual_size} bytes), the manifest pins \
     {expected} ({expected_size} bytes): refused{}",
    kept_as(kept)
)]
pub struct Mismatch {
    /// The model.
    pub model: String,
    /// Which artifact (the wheel's URL, a member, a converted file).
    pub what: String,
    /// Pinned hash.
    pub expected: String,
    /// Hash found.
    pub actual: String,
    /// Pinned size.
    pub expected_size: u64,
    /// Size found.
    pub actual_size: u64,
    /// Where the refused bytes were moved, if they were kept.
    pub kept: Option<PathBuf>,
}

fn kept_as(kept: &Option<PathBuf>) -> String {
    match kept {
        Some(p) => format!(" (kept as {} for inspection)", p.display()),
        None => String::new(),
    }
}
