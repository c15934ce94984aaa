//! The tone prototype files of the writing-help plugin, defined once.
//!
//! * `sentences.json` (written by hand):
//!   `{"model": "<model name>", "note": "<optional>", "sentences": [{"tone": "<name>", "text": "<sentence>"}, …]}`.
//! * `embeddings.bin` (computed offline with the real model by `cloister-eval`), little-endian:
//!
//!   ```text
//!   offset  size        field
//!   0       8           MAGIC "CLTONE\0\x01"
//!   8       4           dims   (u32)
//!   12      4           count  (u32) = number of sentences
//!   16      32          the model's digest, as in the measurement log
//!   48      32          SHA-256 of sentences.json, exactly as committed
//!   80      4·dims·count the vectors, f32, in sentence order
//!   ```
//!
//! The plugin parses both at build time (inside its pre-initialized snapshot); the evaluation
//! tool writes `embeddings.bin` and checks it against the model. Both go through this crate,
//! so the layout cannot drift between them. It is pure (bytes in, values out) and builds for
//! wasm32-wasip2 as well as natively.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use serde::Deserialize;

pub mod classifier;
pub use classifier::{Classifier, TrainParams};

/// The writing-help plugin answers "unsure" when no tone's probability
/// reaches this: below it, the classifier's top answer is right too rarely to
/// state (cross-validated calibration in `cloister-eval tone`).
pub const UNSURE_BELOW: f32 = 0.5;

/// Magic bytes opening `embeddings.bin`.
pub const MAGIC: &[u8; 8] = b"CLTONE\0\x01";
/// Bytes before the vectors in `embeddings.bin`.
pub const HEADER_LEN: usize = 8 + 4 + 4 + 32 + 32;

/// `sentences.json`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentencesFile {
    /// The model the vectors come from (its name in `inference.embed`).
    pub model: String,
    /// A note for readers of the file; ignored.
    #[serde(default)]
    pub note: Option<String>,
    /// The prototypes, in file order.
    pub sentences: Vec<Prototype>,
}

/// One prototype sentence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prototype {
    /// The tone's lowercase name.
    pub tone: String,
    /// The sentence.
    pub text: String,
}

impl SentencesFile {
    /// Parses `sentences.json`.
    pub fn parse(json: &[u8]) -> Result<SentencesFile, String> {
        serde_json::from_slice(json).map_err(|e| format!("sentences.json: {e}"))
    }
}

/// The header of `embeddings.bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Vector length.
    pub dims: usize,
    /// Number of vectors (= sentences).
    pub count: usize,
    /// The model's digest, as in the measurement log.
    pub model_digest: [u8; 32],
    /// SHA-256 of `sentences.json`.
    pub sentences_sha256: [u8; 32],
}

/// `embeddings.bin` for `vectors` (all of one length), with the digests the header records.
pub fn encode(
    model_digest: &[u8; 32],
    sentences_sha256: &[u8; 32],
    vectors: &[Vec<f32>],
) -> Result<Vec<u8>, String> {
    let dims = vectors.first().map(Vec::len).unwrap_or(0);
    if dims == 0 || vectors.iter().any(|v| v.len() != dims) {
        return Err("the vectors are empty or of different sizes".into());
    }
    let (dims32, count32) = match (u32::try_from(dims), u32::try_from(vectors.len())) {
        (Ok(d), Ok(c)) => (d, c),
        _ => return Err("too many vectors or dimensions for the format".into()),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + 4 * dims * vectors.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&dims32.to_le_bytes());
    out.extend_from_slice(&count32.to_le_bytes());
    out.extend_from_slice(model_digest);
    out.extend_from_slice(sentences_sha256);
    for v in vectors {
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    Ok(out)
}

/// Parses `embeddings.bin`: its header and its vectors, checking the magic and that the
/// length is exactly the header's `count` vectors of `dims`.
pub fn decode(bin: &[u8]) -> Result<(Header, Vec<Vec<f32>>), String> {
    if bin.len() < HEADER_LEN || &bin[..8] != MAGIC {
        return Err("embeddings.bin: bad header".into());
    }
    let word = |at: usize| u32::from_le_bytes([bin[at], bin[at + 1], bin[at + 2], bin[at + 3]]);
    let dims = word(8) as usize;
    let count = word(12) as usize;
    let mut model_digest = [0u8; 32];
    model_digest.copy_from_slice(&bin[16..48]);
    let mut sentences_sha256 = [0u8; 32];
    sentences_sha256.copy_from_slice(&bin[48..80]);
    let expected = dims
        .checked_mul(count)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(HEADER_LEN));
    if dims == 0 || expected != Some(bin.len()) {
        return Err(format!(
            "embeddings.bin: {} bytes do not hold {count} vectors of {dims}",
            bin.len()
        ));
    }
    let vectors = bin[HEADER_LEN..]
        .chunks_exact(4 * dims)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect();
    let header = Header {
        dims,
        count,
        model_digest,
        sentences_sha256,
    };
    Ok((header, vectors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let vectors = vec![vec![1.0, -2.5], vec![0.25, 3.0], vec![0.0, 1e-7]];
        let bin = encode(&[1; 32], &[2; 32], &vectors).expect("encodes");
        assert_eq!(bin.len(), HEADER_LEN + 4 * 2 * 3);
        let (header, back) = decode(&bin).expect("decodes");
        assert_eq!(
            header,
            Header {
                dims: 2,
                count: 3,
                model_digest: [1; 32],
                sentences_sha256: [2; 32]
            }
        );
        assert_eq!(back, vectors);
    }

    #[test]
    fn malformed_files_are_refused() {
        let bin = encode(&[0; 32], &[0; 32], &[vec![1.0]]).expect("encodes");
        assert!(decode(&bin[..bin.len() - 1]).is_err());
        assert!(decode(&bin[..10]).is_err());
        let mut wrong = bin.clone();
        wrong[0] = b'X';
        assert!(decode(&wrong).is_err());
        let mut huge = bin.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        assert!(encode(&[0; 32], &[0; 32], &[]).is_err());
        assert!(encode(&[0; 32], &[0; 32], &[vec![1.0], vec![1.0, 2.0]]).is_err());
        assert!(SentencesFile::parse(
            br#"{"model":"m","sentences":[{"tone":"x","text":"y","extra":1}]}"#
        )
        .is_err());
        assert_eq!(
            SentencesFile::parse(br#"{"model":"m","sentences":[{"tone":"x","text":"y"}]}"#)
                .expect("parses")
                .sentences
                .len(),
            1
        );
    }
}
