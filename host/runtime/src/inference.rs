//! The host side of the `cloister:feature/inference` interface.
//!
//! A plugin reaches a model only if it declared the model in its metadata and
//! the host configuration allows it for that plugin; the runtime checks this
//! before the backend sees the call.

use crate::bindings::inference::{Host, HostPendingEmbed, InferenceError};
use crate::state::RequestState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::component::Resource;

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
    /// The call was stopped: its request's deadline passed or the request
    /// ended.
    #[error("inference stopped: the request's deadline passed or the request ended")]
    Cancelled,
    /// The call cannot finish before its request's deadline, judged before
    /// any work from its size and the measured speed.
    #[error(
        "inference would take about {needed_ms} ms, only {left_ms} ms are left before the deadline"
    )]
    WouldMissDeadline {
        /// Estimated time the call needs.
        needed_ms: u64,
        /// Time left before the deadline.
        left_ms: u64,
    },
    /// Every inference worker is busy and the queue is full.
    #[error("inference is busy: every worker is in use and the queue is full; retry later")]
    Busy,
}

/// Tells a running inference call to stop. Set when the request that made
/// the call ends (for any reason), and implied once its deadline passes.
/// Backends check it between units of work (batches).
#[derive(Debug, Clone)]
pub struct Cancel {
    deadline: Option<Instant>,
    flag: Arc<AtomicBool>,
}

impl Cancel {
    /// A call that must stop at `deadline`.
    pub fn until(deadline: Instant) -> Cancel {
        Cancel {
            deadline: Some(deadline),
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A call without a deadline that runs until done (tools, benchmarks).
    pub fn never() -> Cancel {
        Cancel {
            deadline: None,
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Stops the call at its next check.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// Whether the call must stop now.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Runs models for plugins. Implemented by the host's inference engine.
pub trait InferenceBackend: Send + Sync + 'static {
    /// Sentence embeddings, one L2-normalised vector per text.
    fn embed(&self, model: &str, texts: &[String]) -> Result<Embeddings, InferenceFailure>;

    /// Like [`embed`](InferenceBackend::embed), but stops with
    /// [`InferenceFailure::Cancelled`] once `cancel` is set, checking it at
    /// least between units of work, and may refuse up front
    /// ([`InferenceFailure::WouldMissDeadline`]) a call that cannot finish in
    /// time. The runtime always calls this one. The default checks only
    /// before starting.
    fn embed_until(
        &self,
        model: &str,
        texts: &[String],
        cancel: &Cancel,
    ) -> Result<Embeddings, InferenceFailure> {
        if cancel.is_cancelled() {
            return Err(InferenceFailure::Cancelled);
        }
        self.embed(model, texts)
    }
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
            other @ (InferenceFailure::Cancelled
            | InferenceFailure::WouldMissDeadline { .. }
            | InferenceFailure::Busy) => InferenceError::Internal(other.to_string()),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The threads inference runs on: a fixed number of workers and a bounded
/// queue. A call that finds the queue full is refused at once
/// ([`InferenceFailure::Busy`]); a queued call whose request has ended is
/// dropped unrun. So abandoned calls cannot pile up, and inference never
/// takes more threads than it was given.
pub(crate) struct InferencePool {
    sender: Mutex<Option<SyncSender<Job>>>,
}

impl InferencePool {
    /// Starts `workers` threads with a queue of `queue` calls.
    pub(crate) fn start(workers: usize, queue: usize) -> std::io::Result<InferencePool> {
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("cloister-inference-{i}"))
                .spawn(move || inference_worker(&receiver))?;
        }
        Ok(InferencePool {
            sender: Mutex::new(Some(sender)),
        })
    }

    fn submit(&self, job: Job) -> Result<(), InferenceFailure> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match sender {
            Some(sender) => match sender.try_send(job) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(InferenceFailure::Busy),
                Err(TrySendError::Disconnected(_)) => Err(InferenceFailure::Internal(
                    "the inference workers have stopped".into(),
                )),
            },
            None => Err(InferenceFailure::Internal(
                "the inference workers have stopped".into(),
            )),
        }
    }
}

impl Drop for InferencePool {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn inference_worker(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = match receiver.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Cancels the call when the request's future is dropped (deadline, client
/// gone) or the call returns.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Most `start-embed` calls pending at once in one instance (the WIT
/// contract says four).
pub const MAX_PENDING_EMBEDS: usize = 4;

type Outcome = tokio::sync::oneshot::Receiver<Result<Embeddings, InferenceFailure>>;

/// An `embed` call started with `start-embed`: its result on the way, and
/// the guard that stops it when the plugin drops the handle or the request
/// ends (the store, and its resource table, is dropped with the request).
pub struct PendingEmbed {
    outcome: Option<Outcome>,
    _cancel: CancelOnDrop,
}

impl RequestState {
    /// Checks the grant, then queues the call on the inference workers.
    fn submit_embed(
        &mut self,
        model: String,
        texts: Vec<String>,
    ) -> Result<(Outcome, CancelOnDrop), InferenceError> {
        if !self.grant.allowed_models.contains(&model) {
            return Err(InferenceError::ModelNotAvailable(format!(
                "{model} (not declared by this plugin or not allowed for it by the host)"
            )));
        }
        let backend = Arc::clone(&self.grant.backend);
        let cancel = Cancel::until(self.deadline);
        let guard = CancelOnDrop(cancel.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.grant
            .inference
            .submit(Box::new(move || {
                // Dropped unrun when the request is already over.
                let result = backend.embed_until(&model, &texts, &cancel);
                let _ = tx.send(result);
            }))
            .map_err(InferenceError::from)?;
        Ok((rx, guard))
    }
}

/// Waits for a submitted call, at most until the request's `deadline`.
async fn wait_embed(deadline: Instant, outcome: Outcome) -> Result<Embeddings, InferenceError> {
    match tokio::time::timeout_at(deadline.into(), outcome).await {
        Ok(Ok(result)) => result.map_err(InferenceError::from),
        Ok(Err(_)) => Err(InferenceError::Internal("the inference task failed".into())),
        Err(_) => Err(InferenceError::from(InferenceFailure::Cancelled)),
    }
}

impl Host for RequestState {
    /// Checks the grant first (declared by the plugin AND allowed by the
    /// host), then runs the backend on the runtime's inference workers,
    /// waiting at most until the request's deadline. When the request ends
    /// (deadline, client gone, plugin done) the call is cancelled: the
    /// backend stops at its next batch boundary, or never starts if it was
    /// still queued.
    async fn embed(
        &mut self,
        model: String,
        texts: Vec<String>,
    ) -> Result<Embeddings, InferenceError> {
        let (outcome, guard) = self.submit_embed(model, texts)?;
        let result = wait_embed(self.deadline, outcome).await;
        drop(guard);
        result
    }

    /// Like `embed`, but returns once the call is queued; the plugin takes
    /// the result with `finish`. Bounded by [`MAX_PENDING_EMBEDS`] per
    /// instance, on top of the inference queue's own bound.
    fn start_embed(
        &mut self,
        model: String,
        texts: Vec<String>,
    ) -> Result<Resource<PendingEmbed>, InferenceError> {
        if self.pending_embeds >= MAX_PENDING_EMBEDS {
            return Err(InferenceError::InvalidInput(format!(
                "at most {MAX_PENDING_EMBEDS} embed calls may be pending at once"
            )));
        }
        let (outcome, guard) = self.submit_embed(model, texts)?;
        let pending = PendingEmbed {
            outcome: Some(outcome),
            _cancel: guard,
        };
        let handle = self
            .table
            .push(pending)
            .map_err(|e| InferenceError::Internal(format!("cannot keep the pending call: {e}")))?;
        self.pending_embeds += 1;
        Ok(handle)
    }
}

impl HostPendingEmbed for RequestState {
    /// The call's result, waiting at most until the request's deadline.
    async fn finish(&mut self, call: Resource<PendingEmbed>) -> Result<Embeddings, InferenceError> {
        let outcome = self
            .table
            .get_mut(&call)
            .map_err(|e| InferenceError::Internal(format!("unknown pending call: {e}")))?
            .outcome
            .take()
            .ok_or_else(|| {
                InferenceError::InvalidInput("this embed call was already finished".into())
            })?;
        wait_embed(self.deadline, outcome).await
    }

    /// Forgets the call, stopping it if it still runs.
    fn drop(&mut self, call: Resource<PendingEmbed>) -> wasmtime::Result<()> {
        self.table.delete(call)?;
        self.pending_embeds = self.pending_embeds.saturating_sub(1);
        Ok(())
    }
}

impl crate::bindings::cloister::feature::types::Host for RequestState {}
