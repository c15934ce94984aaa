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
    /// Most instances of any one plugin alive at once (default 32; at most
    /// `max_concurrent_instances`), so that one plugin cannot take every slot.
    pub max_concurrent_per_plugin: u32,
    /// Longest error message a plugin may return, in bytes (default 4 KiB);
    /// longer messages are cut at a character boundary and marked as cut.
    pub max_error_bytes: usize,
    /// Deepest JSON nesting (arrays and objects) accepted in a request and in
    /// a plugin's output (default 64).
    pub max_json_depth: usize,
    /// Most `embed` calls running at once, across all plugins (default 0:
    /// the number of cores). Calls beyond it wait in a bounded queue and are
    /// refused when it is full.
    pub max_concurrent_inference: u32,
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
            max_concurrent_per_plugin: 32,
            max_error_bytes: 4 << 10,
            max_json_depth: 64,
            max_concurrent_inference: 0,
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
        if self.max_concurrent_per_plugin == 0 {
            return Err("limits.max_concurrent_per_plugin must be greater than 0".into());
        }
        if !(64..=(1 << 20)).contains(&self.max_error_bytes) {
            return Err("limits.max_error_bytes must be between 64 and 1048576".into());
        }
        if !(1..=512).contains(&self.max_json_depth) {
            return Err("limits.max_json_depth must be between 1 and 512".into());
        }
        if self.max_concurrent_inference > 1024 {
            return Err(
                "limits.max_concurrent_inference must be at most 1024 (0: one per core)".into(),
            );
        }
        Ok(())
    }

    /// Instances of one plugin that may be alive at once:
    /// `max_concurrent_per_plugin`, at most `max_concurrent_instances`.
    pub fn per_plugin_instances(&self) -> u32 {
        self.max_concurrent_per_plugin
            .min(self.max_concurrent_instances)
    }

    /// `embed` calls that may run at once: `max_concurrent_inference`, or
    /// the number of cores when it is 0.
    pub fn inference_workers(&self) -> usize {
        match self.max_concurrent_inference {
            0 => crate::pool::cores(),
            n => n as usize,
        }
    }
}
