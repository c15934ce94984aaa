//! A loaded plugin: a pre-instantiated component that serves each request
//! in a fresh store and instance.

use crate::bindings::{FeatureError, FeaturePre, PluginInfo};
use crate::error::{LoadError, RequestError};
use crate::inference::InferenceBackend;
use crate::pool::WasmPool;
use crate::runtime::Runtime;
use crate::state::{Grant, RequestState};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

/// A verified, compiled and pre-instantiated plugin.
///
/// Cheap to share: requests only read it. Each [`Plugin::handle`] call builds
/// a new store and instance on a plugin thread and drops both before
/// returning.
pub struct Plugin {
    inner: Arc<Inner>,
}

/// Cloned once, at load, for the `metadata` call (before the plugin's info
/// and grant are known).
#[derive(Clone)]
struct Inner {
    engine: Engine,
    pre: FeaturePre<RequestState>,
    info: PluginInfo,
    grant: Grant,
    limits: crate::Limits,
    /// Instance slots shared by every plugin of the runtime.
    slots: Arc<Semaphore>,
    /// This plugin's own share of them.
    plugin_slots: Arc<Semaphore>,
    pool: Arc<WasmPool>,
}

/// What one instance is created for.
enum Call {
    Metadata,
    Handle(String),
}

enum Answer {
    Metadata(PluginInfo),
    Output(String),
}

impl Plugin {
    pub(crate) async fn new(
        runtime: &Runtime,
        config_name: &str,
        component: wasmtime::component::Component,
        allowed_models: &[String],
        max_memory_bytes: Option<usize>,
        backend: Arc<dyn InferenceBackend>,
    ) -> Result<Plugin, LoadError> {
        let mut limits = runtime.limits.clone();
        if let Some(bytes) = max_memory_bytes {
            if !(1 << 16..=runtime.pool_max_memory_bytes).contains(&bytes) {
                return Err(LoadError::InvalidLimits {
                    plugin: config_name.to_owned(),
                    reason: format!(
                        "max_memory_bytes = {bytes}: must be between 65536 and the runtime's memory pool ({} bytes)",
                        runtime.pool_max_memory_bytes
                    ),
                });
            }
            limits.max_memory_bytes = bytes;
        }
        let instance_pre =
            runtime
                .linker
                .instantiate_pre(&component)
                .map_err(|e| LoadError::World {
                    plugin: config_name.to_owned(),
                    reason: crate::error::reason(&format!("{e:#}")),
                })?;
        let pre = FeaturePre::new(instance_pre).map_err(|e| LoadError::World {
            plugin: config_name.to_owned(),
            reason: crate::error::reason(&format!("{e:#}")),
        })?;
        let mut inner = Inner {
            engine: runtime.engine.clone(),
            pre,
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                models: Vec::new(),
            },
            grant: Grant {
                backend,
                allowed_models: Arc::from(Vec::<String>::new()),
                inference: Arc::clone(&runtime.inference),
            },
            plugin_slots: Arc::new(Semaphore::new(limits.per_plugin_instances() as usize)),
            limits,
            slots: Arc::clone(&runtime.slots),
            pool: Arc::clone(&runtime.pool),
        };
        let info = match Plugin::run(Arc::new(inner.clone()), Call::Metadata).await {
            Ok(Answer::Metadata(info)) => info,
            Ok(Answer::Output(_)) => {
                return Err(LoadError::Metadata {
                    plugin: config_name.to_owned(),
                    source: RequestError::Host("metadata call answered as a request".into()),
                })
            }
            Err(source) => {
                return Err(LoadError::Metadata {
                    plugin: config_name.to_owned(),
                    source,
                })
            }
        };
        validate_info(&info).map_err(|reason| LoadError::InvalidMetadata {
            plugin: config_name.to_owned(),
            reason,
        })?;
        // A plugin reaches the models it declared AND the host allows it.
        let granted: Vec<String> = info
            .models
            .iter()
            .filter(|m| allowed_models.contains(m))
            .cloned()
            .collect();
        inner.grant.allowed_models = Arc::from(granted);
        inner.info = info;
        Ok(Plugin {
            inner: Arc::new(inner),
        })
    }

    /// The plugin's self-description, as returned by its `metadata` export
    /// at load.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// Models this plugin may use: declared by it and allowed by the host.
    pub fn granted_models(&self) -> &[String] {
        &self.inner.grant.allowed_models
    }

    /// Serves one request in a fresh instance. The input must be JSON
    /// (checked here: syntax, nesting, surrogates). The returned string is
    /// the plugin's JSON output, checked the same way and within the output
    /// limit.
    ///
    /// The request's deadline (`limits.deadline_ms`, wall time from the
    /// moment it gets an instance slot) bounds everything: instantiation,
    /// the call, time the plugin spends in host calls (sleeping on a clock,
    /// inference) and the checks after it. Dropping the returned future
    /// (the client went away) ends the instance too.
    pub async fn handle(&self, input: &str) -> Result<String, RequestError> {
        let limits = &self.inner.limits;
        if input.len() > limits.max_input_bytes {
            return Err(RequestError::InputTooLarge {
                actual: input.len(),
                limit: limits.max_input_bytes,
            });
        }
        crate::json::check(input, limits.max_json_depth).map_err(RequestError::InvalidInputJson)?;
        match Plugin::run(Arc::clone(&self.inner), Call::Handle(input.to_owned())).await? {
            Answer::Output(output) => Ok(output),
            Answer::Metadata(_) => Err(RequestError::Host(
                "request answered as a metadata call".into(),
            )),
        }
    }

    /// Takes an instance slot (this plugin's and the runtime's), then runs
    /// the call on a plugin thread under the request's deadline.
    async fn run(inner: Arc<Inner>, call: Call) -> Result<Answer, RequestError> {
        let queue_started = Instant::now();
        let queue_deadline = queue_started + inner.limits.queue_timeout();
        let overloaded = || RequestError::Overloaded {
            waited_ms: queue_started.elapsed().as_millis() as u64,
        };
        let plugin_permit = acquire(&inner.plugin_slots, queue_deadline)
            .await
            .ok_or_else(overloaded)?;
        let permit = acquire(&inner.slots, queue_deadline)
            .await
            .ok_or_else(overloaded)?;
        let deadline = Instant::now() + inner.limits.deadline();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let job_inner = Arc::clone(&inner);
        inner
            .pool
            .submit(Box::new(move |rt| {
                let mut tx = tx;
                let result = rt.block_on(async {
                    let work = tokio::time::timeout_at(deadline.into(), job_inner.call(call, deadline));
                    tokio::select! {
                        result = work => result.unwrap_or(Err(RequestError::DeadlineExceeded {
                            limit_ms: job_inner.limits.deadline_ms,
                        })),
                        () = tx.closed() => Err(RequestError::Host("the request was abandoned".into())),
                    }
                });
                // The store and instance are gone; free the slots, then answer.
                drop(permit);
                drop(plugin_permit);
                let _ = tx.send(result);
            }))
            .map_err(|e| RequestError::Host(e.to_string()))?;
        match (&mut rx).await {
            Ok(result) => result,
            Err(_) => Err(RequestError::Host("the plugin thread stopped".into())),
        }
    }
}

/// Waits for a permit until `until`; `None` when none came.
async fn acquire(slots: &Arc<Semaphore>, until: Instant) -> Option<OwnedSemaphorePermit> {
    // Fast path: a free slot (no timer).
    if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
        return Some(permit);
    }
    match tokio::time::timeout_at(until.into(), Arc::clone(slots).acquire_owned()).await {
        Ok(Ok(permit)) => Some(permit),
        Ok(Err(_)) | Err(_) => None,
    }
}

impl Inner {
    /// Builds a fresh store (limits, deadline) and a fresh instance, makes
    /// the call, checks the answer. Runs on a plugin thread; everything it
    /// creates is dropped when it returns or is dropped.
    async fn call(&self, call: Call, deadline: Instant) -> Result<Answer, RequestError> {
        let mut store = Store::new(
            &self.engine,
            RequestState::new(self.grant.clone(), self.limits.max_memory_bytes, deadline),
        );
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(1);
        let started = Instant::now();
        let slots = Arc::clone(&self.slots);
        let max_instances = self.limits.max_concurrent_instances as usize;
        let cores = crate::pool::cores();
        store.epoch_deadline_callback(move |mut ctx| {
            let now = Instant::now();
            if now >= ctx.data().deadline {
                ctx.data_mut().deadline_hit = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            let in_flight = max_instances.saturating_sub(slots.available_permits());
            if now - started >= crate::pool::DEMOTE_AFTER && in_flight > cores {
                // A long runner while the host's cores are oversubscribed:
                // let new requests go first.
                crate::pool::demote();
            }
            Ok(UpdateDeadline::Yield(1))
        });
        let bindings = match self.pre.instantiate_async(&mut store).await {
            Ok(bindings) => bindings,
            Err(e) => return Err(self.classify(store.data(), e)),
        };
        match call {
            Call::Metadata => bindings
                .call_metadata(&mut store)
                .await
                .map(Answer::Metadata)
                .map_err(|e| self.classify(store.data(), e)),
            Call::Handle(input) => {
                let output = bindings
                    .call_handle(&mut store, &input)
                    .await
                    .map_err(|e| self.classify(store.data(), e))?
                    .map_err(|e| {
                        RequestError::Plugin(bound_error(e, self.limits.max_error_bytes))
                    })?;
                drop(store);
                if output.len() > self.limits.max_output_bytes {
                    return Err(RequestError::OutputTooLarge {
                        actual: output.len(),
                        limit: self.limits.max_output_bytes,
                    });
                }
                crate::json::check(&output, self.limits.max_json_depth)
                    .map_err(RequestError::InvalidOutputJson)?;
                Ok(Answer::Output(output))
            }
        }
    }

    fn classify(&self, state: &RequestState, err: wasmtime::Error) -> RequestError {
        if state.deadline_hit {
            return RequestError::DeadlineExceeded {
                limit_ms: self.limits.deadline_ms,
            };
        }
        if state.memory.hit {
            return RequestError::MemoryLimitExceeded {
                limit: self.limits.max_memory_bytes,
            };
        }
        if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return RequestError::PluginExited { status: exit.0 };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => RequestError::StackOverflow {
                limit: self.limits.max_wasm_stack_bytes,
            },
            Some(Trap::Interrupt) => RequestError::DeadlineExceeded {
                limit_ms: self.limits.deadline_ms,
            },
            Some(trap) => RequestError::Trapped {
                trap: trap.to_string(),
            },
            None => RequestError::Host(crate::error::reason(&format!("{err:#}"))),
        }
    }
}

/// Cuts a plugin's error message to `max` bytes (at a character boundary),
/// saying how long it was.
fn bound_error(e: FeatureError, max: usize) -> FeatureError {
    let cut = |m: String| -> String {
        if m.len() <= max {
            return m;
        }
        let mut end = max;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}… (cut: the plugin's message had {} bytes)",
            &m[..end],
            m.len()
        )
    };
    match e {
        FeatureError::InvalidInput(m) => FeatureError::InvalidInput(cut(m)),
        FeatureError::Inference(m) => FeatureError::Inference(cut(m)),
        FeatureError::Internal(m) => FeatureError::Internal(cut(m)),
    }
}

/// Checks the metadata fields; returns which one is wrong.
fn validate_info(info: &PluginInfo) -> Result<(), String> {
    // The same rules as the names and versions a release signature may carry.
    cloister_signing::validate_plugin_name(&info.name).map_err(|e| e.to_string())?;
    cloister_signing::validate_version(&info.version).map_err(|e| e.to_string())?;
    if info.description.len() > 512 {
        return Err("description longer than 512 bytes".into());
    }
    if info.models.len() > 16 || info.models.iter().any(|m| m.is_empty() || m.len() > 128) {
        return Err("models must be at most 16 non-empty names of at most 128 bytes".into());
    }
    Ok(())
}
