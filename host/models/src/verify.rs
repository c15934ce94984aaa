//! Verified loading: every file is read once into memory, those bytes are
//! hashed, and only those bytes are handed on. Nothing re-reads a file after
//! it was verified, so what runs is what was hashed.

use crate::error::VerifyError;
use crate::manifest::{FileRole, FileSpec, Manifest, ModelSpec};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// First line of the text hashed into a model's digest.
pub use cloister_measurement::MODEL_DIGEST_DOMAIN as DIGEST_DOMAIN;

/// One verified file: its bytes and their SHA-256.
#[derive(Clone)]
pub struct VerifiedFile {
    /// File name (as in the manifest).
    pub name: String,
    /// What it is for.
    pub role: FileRole,
    /// The bytes that were hashed.
    pub bytes: Vec<u8>,
    /// Their SHA-256 (equal to the manifest's pin).
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for VerifiedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedFile")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("len", &self.bytes.len())
            .field("sha256", &hex::encode(self.sha256))
            .finish()
    }
}

/// A model whose loaded files all matched the manifest.
#[derive(Debug, Clone)]
pub struct VerifiedModel {
    /// The manifest's entry.
    pub spec: ModelSpec,
    /// The loaded files (every role but `convert-input`), in name order.
    pub files: Vec<VerifiedFile>,
    /// The model's measurement digest ([`model_digest`]).
    pub digest: [u8; 32],
}

impl VerifiedModel {
    /// The verified file with this role.
    pub fn file(&self, role: FileRole) -> Option<&VerifiedFile> {
        self.files.iter().find(|f| f.role == role)
    }

    /// Lowercase hex of [`VerifiedModel::digest`].
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }
}

/// The model's single measurement digest (defined with the measurement log, in
/// `cloister-measurement`, so verifiers outside the CVM compute the same value).
pub use cloister_measurement::model_digest;

/// The digest a model will have once its files verify: computed from the
/// manifest's pins alone.
pub fn pinned_digest(spec: &ModelSpec) -> [u8; 32] {
    let pins: Vec<(&str, [u8; 32])> = spec
        .loaded_files()
        .into_iter()
        .map(|f| (f.name.as_str(), parse_hex32(&f.sha256)))
        .collect();
    model_digest(pins.iter().map(|(n, s)| (*n, s)))
}

fn parse_hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    // The manifest validated the pin; a bad one yields an impossible digest.
    if let Ok(v) = hex::decode(s) {
        if v.len() == 32 {
            out.copy_from_slice(&v);
        }
    }
    out
}

/// Where a model's files live inside a data directory.
pub fn model_dir(data_dir: &Path, model: &str) -> PathBuf {
    data_dir.join(model)
}

/// Reads a file once, refusing it unless it has the pinned size and hash.
/// Reads at most `size + 1` bytes, so an oversized file costs no more memory
/// than a good one.
pub fn read_verified(model: &str, path: &Path, spec: &FileSpec) -> Result<Vec<u8>, VerifyError> {
    let read_err = |source| VerifyError::Read {
        model: model.to_owned(),
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::with_capacity(usize::try_from(spec.size).unwrap_or(0));
    file.take(spec.size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 != spec.size {
        let actual = std::fs::metadata(path)
            .map(|m| m.len())
            .unwrap_or(bytes.len() as u64);
        return Err(VerifyError::SizeMismatch {
            model: model.to_owned(),
            path: path.to_owned(),
            expected: spec.size,
            actual,
        });
    }
    let actual: [u8; 32] = Sha256::digest(&bytes).into();
    let actual_hex = hex::encode(actual);
    if actual_hex != spec.sha256 {
        return Err(VerifyError::HashMismatch {
            model: model.to_owned(),
            path: path.to_owned(),
            expected: spec.sha256.clone(),
            actual: actual_hex,
        });
    }
    Ok(bytes)
}

/// Reads and verifies every loaded file of model `name` from
/// `<data_dir>/<name>/`. Returns the verified bytes; fails on the first file
/// that is missing or does not match.
pub fn load_verified(
    manifest: &Manifest,
    name: &str,
    data_dir: &Path,
) -> Result<VerifiedModel, VerifyError> {
    let spec = manifest
        .model(name)
        .ok_or_else(|| VerifyError::UnknownModel {
            model: name.to_owned(),
        })?;
    load_spec(spec, data_dir)
}

/// [`load_verified`] for one manifest entry.
pub fn load_spec(spec: &ModelSpec, data_dir: &Path) -> Result<VerifiedModel, VerifyError> {
    let name = spec.name.as_str();
    let dir = model_dir(data_dir, name);
    let mut files = Vec::new();
    for f in spec.loaded_files() {
        let bytes = read_verified(name, &dir.join(&f.name), f)?;
        files.push(VerifiedFile {
            name: f.name.clone(),
            role: f.role,
            sha256: Sha256::digest(&bytes).into(),
            bytes,
        });
    }
    let digest = model_digest(files.iter().map(|f| (f.name.as_str(), &f.sha256)));
    Ok(VerifiedModel {
        spec: spec.clone(),
        files,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256sum_listing_under_a_domain_line() {
        let a: [u8; 32] = Sha256::digest(b"a").into();
        let b: [u8; 32] = Sha256::digest(b"b").into();
        let text = format!(
            "cloister-model/v1\n{}  a.onnx\n{}  b.json\n",
            hex::encode(a),
            hex::encode(b)
        );
        let expected: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        // Order of the input does not matter.
        assert_eq!(model_digest([("b.json", &b), ("a.onnx", &a)]), expected);
    }

    #[test]
    fn pinned_digest_of_the_repository_manifest_is_stable() {
        let m = Manifest::embedded().unwrap();
        let spec = m.model("all-minilm-l6-v2").unwrap();
        let d = pinned_digest(spec);
        assert_eq!(d, pinned_digest(spec));
        assert_ne!(d, [0u8; 32]);
    }
}
