//! Per-request limits and their safe defaults.

use serde::Deserialize;
use std::time::Duration;

/// Limits applied to every request, set in the `[limits]` table of the host
/// configuration. Every field has a safe default.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest total linear memory one instance may use, in bytes
    /// (default 64 MiB).
    pub max_memory_bytes: usize,
    /// Wall-clock time one request may run, in milliseconds (default 2000).
    pub deadline_ms: u64,
    /// Largest request body handed to a plugin, in bytes (default 1 MiB).
    pub max_input_bytes: usize,
    /// Largest response a plugin may return, in bytes (default 1 MiB).
    pub max_output_bytes: usize,
    /// Most instances alive at once, across all plugins (default 64).
    pub max_concurrent_instances: u32,
    /// How long a request waits for a free instance slot before it is
    /// refused as overloaded, in milliseconds (default 1000).
    pub queue_timeout_ms: u64,
    /// Largest WebAssembly stack one call may use, in bytes (default 512 KiB).
    pub max_wasm_stack_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory_bytes: 64 << 20,
            deadline_ms: 2_000,
            max_input_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
            max_concurrent_instances: 64,
            queue_timeout_ms: 1_000,
            max_wasm_stack_bytes: 512 << 10,
        }
    }
}

impl Limits {
    /// The request deadline as a [`Duration`].
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The queue timeout as a [`Duration`].
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    /// Checks that the limits are usable, naming the first one that is not.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_memory_bytes < (1 << 16) {
            return Err("limits.max_memory_bytes must be at least 65536 (one wasm page)".into());
        }
        if self.deadline_ms == 0 {
            return Err("limits.deadline_ms must be greater than 0".into());
        }
        if self.max_input_bytes == 0 || self.max_output_bytes == 0 {
            return Err(
                "limits.max_input_bytes and max_output_bytes must be greater than 0".into(),
            );
        }
        if self.max_concurrent_instances == 0 || self.max_concurrent_instances > 10_000 {
            return Err("limits.max_concurrent_instances must be between 1 and 10000".into());
        }
        if self.max_wasm_stack_bytes < (64 << 10) || self.max_wasm_stack_bytes > (64 << 20) {
            return Err("limits.max_wasm_stack_bytes must be between 64 KiB and 64 MiB".into());
        }
        Ok(())
    }
}
