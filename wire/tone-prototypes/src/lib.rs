//! The writing-help plugin's tone files, defined once.
//!
//! * `tone/training.json` (written by hand): the labelled training sentences,
//!   `{"model": "<model name>", "note": "<optional>", "sentences": [{"tone": "<name>", "text": "<sentence>"}, …]}`.
//! * `tone/classifier.bin` (trained offline with the real model by `cloister-eval`): the
//!   softmax regression the plugin runs; format, training and cross-validation in
//!   [`classifier`].
//!
//! The plugin decodes the classifier at build time (inside its pre-initialized snapshot); the
//! evaluation tool trains it and checks it against the model. Both go through this crate, so
//! the format cannot drift between them. It is pure (bytes in, values out) and builds for
//! wasm32-wasip2 as well as natively. (The crate kept its name from the nearest-prototype
//! scorer it replaced.)
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use serde::Deserialize;

pub mod classifier;
pub use classifier::{Classifier, TrainParams};

/// The writing-help plugin answers "unsure" when no tone's probability
/// reaches this: below it, the classifier's top answer is right too rarely to
/// state (cross-validated calibration in `cloister-eval tone`).
pub const UNSURE_BELOW: f32 = 0.5;

/// `training.json`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentencesFile {
    /// The model the vectors come from (its name in `inference.embed`).
    pub model: String,
    /// A note for readers of the file; ignored.
    #[serde(default)]
    pub note: Option<String>,
    /// The labelled sentences, in file order.
    pub sentences: Vec<Prototype>,
}

/// One labelled sentence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prototype {
    /// The tone's lowercase name.
    pub tone: String,
    /// The sentence.
    pub text: String,
}

impl SentencesFile {
    /// Parses `training.json`.
    pub fn parse(json: &[u8]) -> Result<SentencesFile, String> {
        serde_json::from_slice(json).map_err(|e| format!("training.json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_files_are_strict() {
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
