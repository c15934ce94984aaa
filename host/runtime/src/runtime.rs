//! The engine, the allow-listed linker and the epoch ticker shared by all
//! plugins.

use crate::bindings::Feature;
use crate::error::{LoadError, RuntimeError};
use crate::inference::{InferenceBackend, InferencePool};
use crate::limits::Limits;
use crate::plugin::Plugin;
use crate::pool::WasmPool;
use crate::state::RequestState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::filesystem::WasiFilesystem;
use wasmtime_wasi::p2::bindings as wasi;
use wasmtime_wasi::random::WasiRandom;

/// How often the epoch advances. The deadline is checked at each tick, so it
/// is enforced to within about this much.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Core instances, memories and tables one component may have. Rust
/// components built for wasm32-wasip2 use a handful of core instances and one
/// memory; the bounds leave room and keep the pool's size predictable.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 8;

/// Bytes of each memory slot kept mapped between requests (reset, never
/// reused dirty). Covers Rust's 1 MiB shadow stack plus a small heap.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// Extra instance slots beyond the request cap, for `metadata` calls at load.
const LOAD_SLOTS: u32 = 4;

/// `embed` calls that may wait per inference worker before calls are
/// refused as busy.
const INFERENCE_QUEUE_PER_WORKER: usize = 4;

/// The plugin runtime: one per host process.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<RequestState>,
    pub(crate) limits: Limits,
    /// The largest linear memory any plugin may be given (the pool's
    /// per-memory cap): `limits.max_memory_bytes` unless raised with
    /// [`Runtime::with_memory_pool`].
    pub(crate) pool_max_memory_bytes: usize,
    pub(crate) slots: Arc<Semaphore>,
    /// The threads plugin code runs on.
    pub(crate) pool: Arc<WasmPool>,
    /// The threads inference runs on.
    pub(crate) inference: Arc<InferencePool>,
    ticker: Option<Ticker>,
}

impl Runtime {
    /// Builds the engine (pooling allocator, epoch interruption) and the
    /// allow-listed linker, and starts the epoch ticker.
    pub fn new(limits: Limits) -> Result<Runtime, RuntimeError> {
        let pool = limits.max_memory_bytes;
        Runtime::with_memory_pool(limits, pool)
    }

    /// Like [`Runtime::new`], but with memory slots of
    /// `pool_max_memory_bytes` (at least `limits.max_memory_bytes`), so that
    /// single plugins can be given a larger memory budget than the default
    /// ([`LoadSpec::max_memory_bytes`]). Slots are virtual address space; only
    /// the pages an instance touches are backed.
    pub fn with_memory_pool(
        limits: Limits,
        pool_max_memory_bytes: usize,
    ) -> Result<Runtime, RuntimeError> {
        limits.validate().map_err(RuntimeError::InvalidLimits)?;
        if pool_max_memory_bytes < limits.max_memory_bytes {
            return Err(RuntimeError::InvalidLimits(format!(
                "the memory pool ({pool_max_memory_bytes} bytes) is smaller than limits.max_memory_bytes ({})",
                limits.max_memory_bytes
            )));
        }
        let config = engine_config(&limits, pool_max_memory_bytes)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = build_linker(&engine).map_err(|e| RuntimeError::Linker(format!("{e:#}")))?;
        let ticker = Ticker::start(engine.clone()).map_err(|e| {
            RuntimeError::Engine(format!("cannot start the epoch ticker thread: {e}"))
        })?;
        let slots = Arc::new(Semaphore::new(limits.max_concurrent_instances as usize));
        let pool = Arc::new(WasmPool::new(
            (limits.max_concurrent_instances + LOAD_SLOTS) as usize,
        ));
        let workers = limits.inference_workers();
        let inference = Arc::new(
            InferencePool::start(workers, workers * INFERENCE_QUEUE_PER_WORKER).map_err(|e| {
                RuntimeError::Engine(format!("cannot start the inference threads: {e}"))
            })?,
        );
        Ok(Runtime {
            engine,
            linker,
            limits,
            pool_max_memory_bytes,
            slots,
            pool,
            inference,
            ticker: Some(ticker),
        })
    }

    /// How many plugin threads have been started (at most
    /// `max_concurrent_instances` + 4; they are kept for reuse).
    pub fn plugin_threads(&self) -> usize {
        self.pool.threads()
    }

    /// How many instances are alive right now (requests being served).
    pub fn in_flight(&self) -> usize {
        self.limits.max_concurrent_instances as usize - self.slots.available_permits()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles `component`, checks its imports against the allow-list,
    /// pre-instantiates it and reads its metadata.
    ///
    /// `config_name` names the plugin in errors. `allowed_models` is what the
    /// host configuration allows this plugin; the plugin may use the models
    /// that are both allowed and declared in its metadata.
    pub async fn load(
        &self,
        config_name: &str,
        component: &[u8],
        allowed_models: &[String],
        backend: Arc<dyn InferenceBackend>,
    ) -> Result<Plugin, LoadError> {
        let compiled = self.compile(config_name, component)?;
        Plugin::new(self, config_name, compiled, allowed_models, None, backend).await
    }

    /// Compiles a component and checks its imports, without instantiating.
    /// CPU-heavy (seconds for large components); safe to call from several
    /// threads at once.
    pub fn compile(
        &self,
        config_name: &str,
        component: &[u8],
    ) -> Result<wasmtime::component::Component, LoadError> {
        let compiled = wasmtime::component::Component::new(&self.engine, component)
            .map_err(|e| self.compile_error(config_name, &e))?;
        self.check_imports(config_name, compiled)
    }

    /// Compiles a component as [`Runtime::compile`] does (the same checks) and
    /// returns the artifact [`cloister_aot::load_precompiled`] loads: the
    /// machine code of the pinned code generation, for this runtime's limits.
    /// The same component and limits give the same bytes on every machine.
    pub fn precompile(&self, config_name: &str, component: &[u8]) -> Result<Vec<u8>, LoadError> {
        let compiled = self.compile(config_name, component)?;
        compiled.serialize().map_err(|e| LoadError::Serialize {
            plugin: config_name.to_owned(),
            reason: format!("{e:#}"),
        })
    }

    /// Loads a component's precompiled artifact from the measured image (see
    /// `cloister_aot`) and checks its imports as [`Runtime::compile`] does.
    pub fn load_precompiled(
        &self,
        config_name: &str,
        precompiled: Precompiled<'_>,
    ) -> Result<wasmtime::component::Component, LoadError> {
        let compiled =
            cloister_aot::load_precompiled(&self.engine, precompiled.dir, precompiled.sha256_hex)
                .map_err(|e| LoadError::Precompiled {
                plugin: config_name.to_owned(),
                reason: e.to_string(),
            })?;
        self.check_imports(config_name, compiled)
    }

    fn check_imports(
        &self,
        config_name: &str,
        compiled: wasmtime::component::Component,
    ) -> Result<wasmtime::component::Component, LoadError> {
        let ty = compiled.component_type();
        // Type imports (records and variants a world `use`s) carry no
        // capability; every other import is checked against the allow-list.
        let names: Vec<String> = ty
            .imports(&self.engine)
            .filter(|(_, item)| {
                !matches!(item.ty, wasmtime::component::types::ComponentItem::Type(_))
            })
            .map(|(name, _)| name.to_owned())
            .collect();
        if let Some((import, refusal)) =
            crate::imports::first_refused(names.iter().map(|s| s.as_str()))
        {
            return Err(LoadError::ForbiddenImport {
                plugin: config_name.to_owned(),
                import: import.to_owned(),
                refusal,
            });
        }
        Ok(compiled)
    }

    /// A component wasmtime refused: valid but larger than the instance
    /// pool allows (named by the limit), or invalid.
    fn compile_error(&self, plugin: &str, e: &wasmtime::Error) -> LoadError {
        let reason = crate::error::reason(&format!("{e:#}"));
        // Wasmtime's pooling allocator checks each module's needs against
        // the slot sizes at compile time; its message names what overflowed.
        if reason.contains("pooling allocator") {
            let limit = if reason.contains("memory") {
                format!(
                    "a memory slot holds {} bytes: limits.max_memory_bytes or the plugin's max_memory_bytes",
                    self.pool_max_memory_bytes
                )
            } else if reason.contains("table") {
                "tables: at most 8 per component, each within the pool's table slot".to_owned()
            } else {
                "instances: at most 16 core instances and 2 memories per component".to_owned()
            };
            return LoadError::ExceedsLimits {
                plugin: plugin.to_owned(),
                limit,
                reason,
            };
        }
        LoadError::Compile {
            plugin: plugin.to_owned(),
            reason,
        }
    }

    /// Loads several plugins, compiling them in parallel on all cores.
    /// Returns them in input order; fails on the first error (in input order).
    pub async fn load_all(
        &self,
        specs: &[LoadSpec<'_>],
        backend: Arc<dyn InferenceBackend>,
    ) -> Result<Vec<Plugin>, LoadError> {
        let compiled: Vec<Result<wasmtime::component::Component, LoadError>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = specs
                    .iter()
                    .map(|spec| {
                        scope.spawn(move || match spec.precompiled {
                            Some(p) => self.load_precompiled(spec.name, p),
                            None => self.compile(spec.name, spec.component),
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .zip(specs)
                    .map(|(h, spec)| {
                        h.join().unwrap_or_else(|_| {
                            Err(LoadError::Compile {
                                plugin: spec.name.to_owned(),
                                reason: "the compiler thread panicked".into(),
                            })
                        })
                    })
                    .collect()
            });
        let mut plugins = Vec::with_capacity(specs.len());
        for (spec, compiled) in specs.iter().zip(compiled) {
            plugins.push(
                Plugin::new(
                    self,
                    spec.name,
                    compiled?,
                    spec.allowed_models,
                    spec.max_memory_bytes,
                    Arc::clone(&backend),
                )
                .await?,
            );
        }
        Ok(plugins)
    }
}

/// One plugin to load with [`Runtime::load_all`].
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec<'a> {
    /// The plugin's name in the host configuration.
    pub name: &'a str,
    /// The component's bytes (already verified by the caller).
    pub component: &'a [u8],
    /// Models the configuration allows this plugin.
    pub allowed_models: &'a [String],
    /// This plugin's linear-memory budget per instance, if not the default
    /// `limits.max_memory_bytes`; at most the runtime's memory pool.
    pub max_memory_bytes: Option<usize>,
    /// Load the component's precompiled artifact from the measured image
    /// instead of compiling `component` (which the caller has still verified).
    pub precompiled: Option<Precompiled<'a>>,
}

/// Where a verified component's precompiled artifact is: a directory of the
/// measured image and the component's SHA-256, which names the artifact.
#[derive(Debug, Clone, Copy)]
pub struct Precompiled<'a> {
    /// The directory (see [`cloister_aot::MeasuredDir`] for what it claims).
    pub dir: &'a cloister_aot::MeasuredDir,
    /// The verified component's SHA-256, lowercase hex.
    pub sha256_hex: &'a str,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.stop();
        }
    }
}

fn engine_config(
    limits: &Limits,
    pool_max_memory_bytes: usize,
) -> Result<Config, cloister_aot::AotError> {
    let slots = limits.max_concurrent_instances + LOAD_SLOTS;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * CORE_INSTANCES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(slots * MEMORIES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_tables(slots * TABLES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .total_stacks(slots)
        .max_memory_size(pool_max_memory_bytes)
        // Slot reuse: with PAGEMAP_SCAN (Linux >= 6.7) wasmtime finds the
        // pages the previous instance dirtied and resets only those to the
        // initial image, within the keep-resident window; beyond it, and
        // on kernels without the ioctl, pages are decommitted with madvise.
        // Either way the next instance sees only the initial image.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(1 << 16);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.max_wasm_stack_bytes)
        .async_stack_size(limits.max_wasm_stack_bytes + (256 << 10))
        // Traps are classified by code; backtraces would only cost time.
        .wasm_backtrace_max_frames(None)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // The same machine code on every machine: what makes a precompiled
    // artifact (and the image that carries it) reproducible.
    cloister_aot::pin_code_generation(&mut config)?;
    Ok(config)
}

/// Links exactly the allow-listed interfaces, each from its own context, so
/// that nothing else is reachable. Sockets and HTTP are never linked.
fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<RequestState>> {
    let mut l = Linker::<RequestState>::new(engine);

    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<RequestState, HasTable>(
        &mut l,
        |s| &mut s.table,
    )?;
    wasmtime_wasi_io::bindings::wasi::io::poll::add_to_linker::<RequestState, HasTable>(
        &mut l,
        |s| &mut s.table,
    )?;
    wasmtime_wasi_io::bindings::wasi::io::streams::add_to_linker::<RequestState, HasTable>(
        &mut l,
        |s| &mut s.table,
    )?;

    wasi::cli::environment::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;
    wasi::cli::exit::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;
    wasi::cli::stdin::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;
    wasi::cli::stdout::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;
    wasi::cli::stderr::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;
    wasi::cli::terminal_input::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;
    wasi::cli::terminal_output::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;
    wasi::cli::terminal_stdin::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;
    wasi::cli::terminal_stdout::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;
    wasi::cli::terminal_stderr::add_to_linker::<_, WasiCli>(&mut l, RequestState::cli_view)?;

    wasi::clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(
        &mut l,
        RequestState::clocks_view,
    )?;
    wasi::clocks::wall_clock::add_to_linker::<_, WasiClocks>(&mut l, RequestState::clocks_view)?;

    wasi::random::random::add_to_linker::<_, WasiRandom>(&mut l, |s| &mut s.random)?;
    wasi::random::insecure::add_to_linker::<_, WasiRandom>(&mut l, |s| &mut s.random)?;
    wasi::random::insecure_seed::add_to_linker::<_, WasiRandom>(&mut l, |s| &mut s.random)?;

    wasi::filesystem::types::add_to_linker::<_, WasiFilesystem>(
        &mut l,
        RequestState::filesystem_view,
    )?;
    wasi::filesystem::preopens::add_to_linker::<_, WasiFilesystem>(
        &mut l,
        RequestState::filesystem_view,
    )?;

    Feature::add_to_linker::<_, HasSelf<RequestState>>(&mut l, |s| s)?;
    Ok(l)
}

struct HasTable;

impl wasmtime::component::HasData for HasTable {
    type Data<'a> = &'a mut wasmtime::component::ResourceTable;
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until stopped.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("cloister-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker { stop, handle })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.thread().unpark();
        let _ = self.handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MeasuredDir, NoModels};
    use cloister_test_support::component;

    fn limits() -> Limits {
        Limits {
            max_memory_bytes: 32 << 20,
            deadline_ms: 300,
            max_concurrent_instances: 4,
            ..Limits::default()
        }
    }

    /// The runtime takes the digest its caller verified and only uses it to name the
    /// artifact: any 64 lowercase hex characters stand for one here.
    fn digest_of(name: &str) -> String {
        format!("{:0>64}", hex_of(name))
    }

    fn hex_of(name: &str) -> String {
        name.bytes().map(|b| format!("{b:02x}")).collect()
    }

    async fn load_from(
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
        dir: &MeasuredDir,
    ) -> Result<crate::Plugin, LoadError> {
        let digest = digest_of(name);
        let spec = LoadSpec {
            name,
            component: bytes,
            allowed_models: &[],
            max_memory_bytes: None,
            precompiled: Some(Precompiled {
                dir,
                sha256_hex: &digest,
            }),
        };
        let mut loaded = runtime.load_all(&[spec], Arc::new(NoModels)).await?;
        Ok(loaded.pop().expect("one plugin"))
    }

    #[tokio::test]
    async fn precompiled_artifacts_are_reproducible_and_serve_like_compiled_ones() {
        let echo = component("echo");
        let a = Runtime::new(limits()).unwrap();
        let b = Runtime::new(limits()).unwrap();
        let first = a.precompile("echo", &echo).unwrap();
        // Another engine (as on another machine: the code generation is pinned, not
        // detected), the same bytes.
        assert!(first == b.precompile("echo", &echo).unwrap());
        assert!(first == a.precompile("echo", &echo).unwrap());

        let tmp = tempfile::tempdir().unwrap();
        let dir = MeasuredDir::new(tmp.path());
        std::fs::write(dir.artifact(&digest_of("echo")).unwrap(), &first).unwrap();
        let plugin = load_from(&b, "echo", &echo, &dir).await.unwrap();
        assert_eq!(plugin.info().name, "echo");
        let input = r#"{"text":"héllo","n":[1,2,3]}"#;
        assert_eq!(plugin.handle(input).await.unwrap(), input);
    }

    #[tokio::test]
    async fn a_missing_damaged_or_foreign_artifact_stops_the_load() {
        let echo = component("echo");
        let runtime = Runtime::new(limits()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = MeasuredDir::new(tmp.path());
        let path = dir.artifact(&digest_of("echo")).unwrap();
        let refused = |e: LoadError, want: &str| {
            let text = e.to_string();
            assert!(
                matches!(e, LoadError::Precompiled { .. }),
                "{want}: wrong error {text}"
            );
            assert!(
                text.contains("plugin `echo`") && text.contains(want),
                "{want}: {text}"
            );
        };

        // Missing: the host does not fall back to compiling.
        let e = load_from(&runtime, "echo", &echo, &dir)
            .await
            .err()
            .unwrap();
        refused(e, "cannot open");

        // Not an artifact at all: the component itself, garbage, an empty file.
        for bytes in [echo.clone(), b"\x7fELF garbage".to_vec(), Vec::new()] {
            std::fs::write(&path, &bytes).unwrap();
            let e = load_from(&runtime, "echo", &echo, &dir)
                .await
                .err()
                .unwrap();
            refused(e, "refused");
        }

        // A real artifact, cut short.
        let good = runtime.precompile("echo", &echo).unwrap();
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let e = load_from(&runtime, "echo", &echo, &dir)
            .await
            .err()
            .unwrap();
        refused(e, "refused");

        // A real artifact from an engine configured otherwise (wasmtime's defaults: no
        // epoch interruption, the CPU's own features): wasmtime compares the settings
        // the code depends on and refuses it.
        let other = Engine::new(&Config::new()).unwrap();
        std::fs::write(&path, other.precompile_component(&echo).unwrap()).unwrap();
        let e = load_from(&runtime, "echo", &echo, &dir)
            .await
            .err()
            .unwrap();
        refused(e, "refused");
    }

    #[tokio::test]
    async fn an_artifact_with_a_forbidden_import_is_refused_like_its_component() {
        // `precompile` never writes one (it checks imports first); this one is made with
        // the engine directly, as a builder that skipped the check would.
        let hostile = component("hostile-import");
        let runtime = Runtime::new(limits()).unwrap();
        let artifact = runtime.engine.precompile_component(&hostile).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = MeasuredDir::new(tmp.path());
        std::fs::write(
            dir.artifact(&digest_of("hostile-import")).unwrap(),
            artifact,
        )
        .unwrap();
        let e = load_from(&runtime, "hostile-import", &hostile, &dir)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, LoadError::ForbiddenImport { .. }), "{e}");
        let e = runtime
            .precompile("hostile-import", &hostile)
            .err()
            .unwrap();
        assert!(matches!(e, LoadError::ForbiddenImport { .. }), "{e}");
    }
}
