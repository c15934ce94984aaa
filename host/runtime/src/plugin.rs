//! A loaded plugin: a pre-instantiated component that serves each request
//! in a fresh store and instance.

use crate::bindings::{Feature, FeaturePre, PluginInfo};
use crate::error::{LoadError, RequestError};
use crate::inference::InferenceBackend;
use crate::runtime::Runtime;
use crate::state::{Grant, RequestState};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

/// A verified, compiled and pre-instantiated plugin.
///
/// Cheap to share: requests only read it. Each [`Plugin::handle`] call builds
/// a new store and instance and drops both before returning.
pub struct Plugin {
    engine: Engine,
    pre: FeaturePre<RequestState>,
    info: PluginInfo,
    grant: Grant,
    limits: crate::Limits,
    slots: Arc<Semaphore>,
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
                    reason: format!("{e:#}"),
                })?;
        let pre = FeaturePre::new(instance_pre).map_err(|e| LoadError::World {
            plugin: config_name.to_owned(),
            reason: format!("{e:#}"),
        })?;
        let mut plugin = Plugin {
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
            },
            limits,
            slots: Arc::clone(&runtime.slots),
        };
        let info = plugin
            .metadata()
            .await
            .map_err(|source| LoadError::Metadata {
                plugin: config_name.to_owned(),
                source,
            })?;
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
        plugin.grant.allowed_models = Arc::from(granted);
        plugin.info = info;
        Ok(plugin)
    }

    /// The plugin's self-description, as returned by its `metadata` export
    /// at load.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Models this plugin may use: declared by it and allowed by the host.
    pub fn granted_models(&self) -> &[String] {
        &self.grant.allowed_models
    }

    /// Serves one request in a fresh instance. The returned string is the
    /// plugin's JSON output, checked to be JSON and within the output limit.
    pub async fn handle(&self, input: &str) -> Result<String, RequestError> {
        if input.len() > self.limits.max_input_bytes {
            return Err(RequestError::InputTooLarge {
                actual: input.len(),
                limit: self.limits.max_input_bytes,
            });
        }
        let (mut store, bindings, _permit) = self.instantiate().await?;
        let output = bindings
            .call_handle(&mut store, input)
            .await
            .map_err(|e| self.classify(store.data(), e))?
            .map_err(RequestError::Plugin)?;
        if output.len() > self.limits.max_output_bytes {
            return Err(RequestError::OutputTooLarge {
                actual: output.len(),
                limit: self.limits.max_output_bytes,
            });
        }
        if serde_json_is_valid(&output) {
            Ok(output)
        } else {
            Err(RequestError::OutputNotJson)
        }
    }

    async fn metadata(&self) -> Result<PluginInfo, RequestError> {
        let (mut store, bindings, _permit) = self.instantiate().await?;
        bindings
            .call_metadata(&mut store)
            .await
            .map_err(|e| self.classify(store.data(), e))
    }

    /// Waits for an instance slot, then builds a fresh store (limits,
    /// deadline) and a fresh instance in it. The caller drops all three when
    /// the request ends.
    async fn instantiate(
        &self,
    ) -> Result<(Store<RequestState>, Feature, OwnedSemaphorePermit), RequestError> {
        // Fast path: a free slot (no timer); otherwise wait up to the queue
        // timeout.
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let waited = Instant::now();
                match tokio::time::timeout(
                    self.limits.queue_timeout(),
                    Arc::clone(&self.slots).acquire_owned(),
                )
                .await
                {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) | Err(_) => {
                        return Err(RequestError::Overloaded {
                            waited_ms: waited.elapsed().as_millis() as u64,
                        })
                    }
                }
            }
        };
        let deadline = Instant::now() + self.limits.deadline();
        let mut store = Store::new(
            &self.engine,
            RequestState::new(self.grant.clone(), self.limits.max_memory_bytes, deadline),
        );
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            if Instant::now() >= ctx.data().deadline {
                ctx.data_mut().deadline_hit = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        match self.pre.instantiate_async(&mut store).await {
            Ok(bindings) => Ok((store, bindings, permit)),
            Err(e) => Err(self.classify(store.data(), e)),
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
            None => RequestError::Host(format!("{err:#}")),
        }
    }
}

fn serde_json_is_valid(s: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
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
