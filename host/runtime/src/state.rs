//! Per-request store state: the capabilities one instance holds.

use crate::clock::{CoarseMonotonic, CoarseWall};
use crate::inference::{InferenceBackend, InferencePool};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{WasiCliCtx, WasiCliCtxView};
use wasmtime_wasi::clocks::{WasiClocksCtx, WasiClocksCtxView};
use wasmtime_wasi::filesystem::{WasiFilesystemCtx, WasiFilesystemCtxView};
use wasmtime_wasi::random::WasiRandomCtx;

/// What a plugin may reach besides minimal WASI: fixed at load, shared by all
/// of its requests.
#[derive(Clone)]
pub(crate) struct Grant {
    pub(crate) backend: Arc<dyn InferenceBackend>,
    pub(crate) allowed_models: Arc<[String]>,
    /// The runtime's inference workers, shared by every plugin.
    pub(crate) inference: Arc<InferencePool>,
}

/// Everything one instance can touch. Built fresh for each request and
/// dropped with the store.
pub(crate) struct RequestState {
    pub(crate) table: ResourceTable,
    /// Empty environment and arguments; stdin empty; stdout and stderr
    /// discard everything written to them.
    pub(crate) cli: WasiCliCtx,
    pub(crate) clocks: WasiClocksCtx,
    pub(crate) random: WasiRandomCtx,
    /// No preopened directories.
    pub(crate) filesystem: WasiFilesystemCtx,
    pub(crate) grant: Grant,
    pub(crate) memory: MemoryBudget,
    pub(crate) deadline: Instant,
    pub(crate) deadline_hit: bool,
    /// `pending-embed` handles alive in this instance.
    pub(crate) pending_embeds: usize,
}

impl RequestState {
    pub(crate) fn new(grant: Grant, max_memory_bytes: usize, deadline: Instant) -> Self {
        // Built with WASI's own builder so that nothing is granted by
        // default: no arguments, environment, preopens or network; stdio
        // closed or discarded; coarse clocks; random reads bounded.
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new();
        wasi.wall_clock(CoarseWall)
            .monotonic_clock(CoarseMonotonic::new())
            .max_random_size(MAX_RANDOM_BYTES)
            .allow_blocking_current_thread(false);
        let mut wasi = wasi.build();
        RequestState {
            table: ResourceTable::new(),
            cli: std::mem::take(wasi.cli()),
            clocks: std::mem::take(wasi.clocks()),
            random: std::mem::take(wasi.random()),
            filesystem: std::mem::take(wasi.filesystem()),
            grant,
            memory: MemoryBudget::new(max_memory_bytes),
            deadline,
            deadline_hit: false,
            pending_embeds: 0,
        }
    }

    pub(crate) fn cli_view(&mut self) -> WasiCliCtxView<'_> {
        WasiCliCtxView {
            ctx: &mut self.cli,
            table: &mut self.table,
        }
    }

    pub(crate) fn clocks_view(&mut self) -> WasiClocksCtxView<'_> {
        WasiClocksCtxView {
            ctx: &mut self.clocks,
            table: &mut self.table,
        }
    }

    pub(crate) fn filesystem_view(&mut self) -> WasiFilesystemCtxView<'_> {
        WasiFilesystemCtxView {
            ctx: &mut self.filesystem,
            table: &mut self.table,
        }
    }
}

/// Most random bytes one `get-random-bytes` call may ask for. The host
/// allocates them outside the plugin's memory budget, so WASI's default
/// (64 MiB) would let 64 instances take 4 GiB of host memory.
const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// Caps the total linear memory of all memories in one store and remembers
/// whether the cap was hit, so a resulting trap can be reported as what it is.
pub(crate) struct MemoryBudget {
    limit: usize,
    used: usize,
    pub(crate) hit: bool,
}

/// Most table elements one instance may have (function tables of Rust
/// components stay far below this).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryBudget {
    fn new(limit: usize) -> Self {
        MemoryBudget {
            limit,
            used: 0,
            hit: false,
        }
    }
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        match self.used.checked_add(growth) {
            Some(total) if total <= self.limit => {
                self.used = total;
                Ok(true)
            }
            _ => {
                self.hit = true;
                Ok(false)
            }
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
