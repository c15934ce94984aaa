//! Sentence-embedding inference for the Cloister host (runs **inside the
//! CVM**): the backend behind the WIT `cloister:feature/inference` interface.
//!
//! * Models come in as [`cloister_models::VerifiedModel`]s — bytes that were
//!   read once and matched their pinned SHA-256; nothing here touches the
//!   filesystem.
//! * Tokenization: the model's `tokenizer.json` with the `tokenizers` crate
//!   (WordPiece for all-MiniLM-L6-v2). Its built-in padding and truncation
//!   are replaced: no padding at tokenization, truncation at the manifest's
//!   `max_tokens` (256).
//! * Batching: texts are grouped by token length ([`batching`]); each batch
//!   is padded to its own longest text, so short chat lines never pay for a
//!   long one.
//! * The graph runs on tract (`last_hidden_state`); the host then mean-pools
//!   over the attention mask and L2-normalises.
//! * Limits ([`Limits`]) are checked before any work, and answered with
//!   `InvalidInput` naming the limit. Errors and logs carry sizes and
//!   timings only, never texts or vectors.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batching;
mod encoder;
pub mod layer_norm;
mod rewrite;
pub mod same_shape_add;
pub mod softmax;
#[cfg(test)]
mod test_graph;

pub use encoder::{Encoded, OpTime, SentenceEncoder, Shapes, MAX_CACHED_PLANS};

use cloister_models::VerifiedModel;
use cloister_runtime::{Cancel, Embeddings, InferenceBackend, InferenceFailure};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// A model could not be made runnable.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Parsing, typing, optimizing or checking the model failed.
    #[error("model `{model}`: {stage}: {reason}")]
    Model {
        /// The model.
        model: String,
        /// Which stage.
        stage: &'static str,
        /// Why.
        reason: String,
    },
}

/// Per-call limits of the inference interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most texts in one `embed` call.
    pub max_texts: usize,
    /// Longest text in bytes (texts are truncated at the model's token
    /// limit anyway; this bounds tokenizer work).
    pub max_text_bytes: usize,
    /// Most texts in one model run.
    pub max_batch: usize,
    /// Most padded tokens in one model run. A call is cancelled between
    /// runs, so this bounds how long a cancelled call keeps a core.
    pub max_batch_tokens: usize,
    /// Most tokens in one `embed` call, all texts together: sized so that
    /// a call fits the default 2 s deadline on one core.
    pub max_call_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_texts: cloister_embed_budget::MAX_TEXTS_PER_CALL,
            max_text_bytes: 16 * 1024,
            max_batch: 32,
            max_batch_tokens: 1024,
            max_call_tokens: cloister_embed_budget::MAX_TOKENS_PER_CALL,
        }
    }
}

/// Threads one `embed` call may use (see [`set_threads`]).
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets, process-wide, the number of threads inference uses: the batches of
/// one `embed` call run on that many threads at once (split, if need be, so
/// that there are at least that many). tract itself runs each batch on one
/// thread: on these small matrices (384 wide, ~20 tokens) its multithreaded
/// matrix products were slower than batch-level parallelism
/// (`docs/models.md`, Performance). `1` runs everything on the calling
/// thread.
pub fn set_threads(threads: usize) {
    THREADS.store(threads.max(1), Ordering::Relaxed);
    tract_linalg::multithread::set_default_executor(
        tract_linalg::multithread::Executor::SingleThread,
    );
}

/// The number of threads set by [`set_threads`] (default 1).
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// The host's inference engine: loaded models by name.
#[derive(Debug, Default)]
pub struct Engine {
    models: BTreeMap<String, SentenceEncoder>,
    limits: Limits,
}

impl Engine {
    /// An engine with no models.
    pub fn new(limits: Limits) -> Engine {
        Engine {
            models: BTreeMap::new(),
            limits,
        }
    }

    /// Makes a verified model runnable and adds it.
    pub fn load(&mut self, model: &VerifiedModel, shapes: Shapes) -> Result<(), LoadError> {
        let encoder = SentenceEncoder::new(model, shapes)?;
        self.models.insert(model.spec.name.clone(), encoder);
        Ok(())
    }

    /// The loaded models' names.
    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// A loaded model.
    pub fn model(&self, name: &str) -> Option<&SentenceEncoder> {
        self.models.get(name)
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn check_limits(&self, texts: &[String]) -> Result<(), InferenceFailure> {
        if texts.is_empty() {
            return Err(InferenceFailure::InvalidInput(
                "empty batch: give at least one text".into(),
            ));
        }
        if texts.len() > self.limits.max_texts {
            return Err(InferenceFailure::InvalidInput(format!(
                "too many texts: {} > max_texts {}",
                texts.len(),
                self.limits.max_texts
            )));
        }
        if let Some((i, t)) = texts
            .iter()
            .enumerate()
            .find(|(_, t)| t.len() > self.limits.max_text_bytes)
        {
            return Err(InferenceFailure::InvalidInput(format!(
                "text #{i} has {} bytes > max_text_bytes {}",
                t.len(),
                self.limits.max_text_bytes
            )));
        }
        Ok(())
    }
}

impl InferenceBackend for Engine {
    fn embed(&self, model: &str, texts: &[String]) -> Result<Embeddings, InferenceFailure> {
        self.embed_until(model, texts, &Cancel::never())
    }

    fn embed_until(
        &self,
        model: &str,
        texts: &[String],
        cancel: &Cancel,
    ) -> Result<Embeddings, InferenceFailure> {
        let encoder = self
            .models
            .get(model)
            .ok_or_else(|| InferenceFailure::ModelNotAvailable(model.to_owned()))?;
        self.check_limits(texts)?;
        let started = Instant::now();
        let result = encoder.embed(texts, &self.limits, cancel);
        tracing::debug!(
            model,
            texts = texts.len(),
            bytes = texts.iter().map(String::len).sum::<usize>(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            ok = result.is_ok(),
            cancelled = matches!(result, Err(InferenceFailure::Cancelled)),
            "embed"
        );
        result
    }
}
