//! Errors: each names the model, the file and the reason.

use std::path::{Path, PathBuf};

/// The manifest could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read model manifest {path}: {source}")]
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
    #[error("model `{model}`: cannot read {path}: {source} (run `cloister-host models fetch`)")]
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
         (run `cloister-host models fetch` to replace it)"
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
         (run `cloister-host models fetch` to replace it)"
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

/// `cloister-host models fetch` failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The download failed.
    #[error("model `{model}`: cannot download {url}: {reason}")]
    Download {
        /// The model.
        model: String,
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A downloaded, extracted or converted artifact does not have the
    /// pinned hash or size. It was renamed to `*.rejected` (or never written).
    #[error(transparent)]
    Mismatch(Box<Mismatch>),
    /// The wheel is not a readable zip, or lacks a member.
    #[error("model `{model}`: wheel {wheel}: {reason}")]
    Wheel {
        /// The model.
        model: String,
        /// The wheel file.
        wheel: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file could not be written, renamed or created.
    #[error("model `{model}`: {action} {path}: {source}")]
    Io {
        /// The model.
        model: String,
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Creating the Python environment or running the conversion failed.
    #[error("model `{model}`: {step} failed: {reason}")]
    Convert {
        /// The model.
        model: String,
        /// Which step (venv, pip install, convert.py).
        step: &'static str,
        /// Why (exit status and the tail of its output).
        reason: String,
    },
    /// The manifest has no such model.
    #[error("model `{model}` is not in the model manifest")]
    UnknownModel {
        /// The model.
        model: String,
    },
    /// The manifest needs a conversion step it does not have.
    #[error("model `{model}`: {message}")]
    Manifest {
        /// The model.
        model: String,
        /// What is missing.
        message: String,
    },
}

/// An artifact whose hash or size differs from its pin (boxed in
/// [`FetchError::Mismatch`]: it is the largest error).
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
