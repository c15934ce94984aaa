//! The host side of the `cloister:feature/inference` interface.
//!
//! A plugin reaches a model only if it declared the model in its metadata and
//! the host configuration allows it for that plugin; the runtime checks this
//! before the backend sees the call.

use crate::bindings::inference::{Host, InferenceError};
use crate::state::RequestState;

/// One vector per input text.
pub type Embeddings = Vec<Vec<f32>>;

/// Why the backend could not serve an inference call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferenceFailure {
    /// The model is not loaded by this host.
    #[error("model `{0}` is not available on this host")]
    ModelNotAvailable(String),
    /// The input breaks a limit of the model (batch size, empty batch).
    #[error("invalid inference input: {0}")]
    InvalidInput(String),
    /// The model failed while running.
    #[error("inference failed: {0}")]
    Internal(String),
}

/// Runs models for plugins. Implemented by the host's inference engine.
pub trait InferenceBackend: Send + Sync + 'static {
    /// Sentence embeddings, one L2-normalised vector per text.
    fn embed(&self, model: &str, texts: &[String]) -> Result<Embeddings, InferenceFailure>;
}

/// The backend of a host that loaded no models: every call fails with
/// [`InferenceFailure::ModelNotAvailable`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoModels;

impl InferenceBackend for NoModels {
    fn embed(&self, model: &str, _texts: &[String]) -> Result<Embeddings, InferenceFailure> {
        Err(InferenceFailure::ModelNotAvailable(model.to_owned()))
    }
}

impl From<InferenceFailure> for InferenceError {
    fn from(f: InferenceFailure) -> Self {
        match f {
            InferenceFailure::ModelNotAvailable(m) => InferenceError::ModelNotAvailable(m),
            InferenceFailure::InvalidInput(m) => InferenceError::InvalidInput(m),
            InferenceFailure::Internal(m) => InferenceError::Internal(m),
        }
    }
}

impl Host for RequestState {
    /// Checks the grant first (declared by the plugin AND allowed by the
    /// host), then runs the backend on tokio's blocking pool, waiting at most
    /// until the request's deadline. Past it the call fails with `internal`
    /// and the next epoch tick interrupts the plugin; the backend's work
    /// (bounded by its own limits) finishes in the background.
    async fn embed(
        &mut self,
        model: String,
        texts: Vec<String>,
    ) -> Result<Embeddings, InferenceError> {
        if !self.grant.allowed_models.contains(&model) {
            return Err(InferenceError::ModelNotAvailable(format!(
                "{model} (not declared by this plugin or not allowed for it by the host)"
            )));
        }
        let backend = std::sync::Arc::clone(&self.grant.backend);
        let task = tokio::task::spawn_blocking(move || backend.embed(&model, &texts));
        let remaining = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(remaining, task).await {
            Ok(Ok(result)) => result.map_err(InferenceError::from),
            Ok(Err(_)) => Err(InferenceError::Internal("the inference task failed".into())),
            Err(_) => Err(InferenceError::Internal(
                "the request deadline passed during inference".into(),
            )),
        }
    }
}

impl crate::bindings::cloister::feature::types::Host for RequestState {}
