//! Pre-initialization of plugin components ("snapshots"), at build time.
//!
//! Some plugins spend a long time building in-memory state before they can
//! serve anything (writing-help: harper's dictionary and linters, ~1.4 s).
//! The host runs every request in a fresh instance, so that work would be
//! repeated on every request. Instead, the build instantiates the component
//! once, calls its initialization export (`wizer-initialize` by default), and
//! writes a new component whose linear memory and globals start in the
//! initialized state ([wasmtime-wizer]). That snapshot is the component that is
//! signed, measured and loaded; each request instantiates it from its initial
//! image (copy-on-write), so it starts already initialized.
//!
//! # Determinism
//!
//! The snapshot must be reproducible from the same input: the same bytes on
//! every run, so its SHA-256 (what is signed and measured) can be rebuilt and
//! checked by anyone. During initialization the component therefore sees:
//!
//! - `wasi:random/*`: fixed-seed generators (so hash-map seeds and the like
//!   that get baked into the snapshot are the same on every run; they are
//!   public in any case, since the snapshot is published);
//! - `wasi:clocks/*`: clocks frozen at zero;
//! - no environment, no arguments, empty stdin, no preopened directories, no
//!   network; stdout is discarded and stderr is inherited (for build-time
//!   diagnostics such as a panic message — the input is our own code);
//! - every non-WASI import (the host's `inference`) traps: a plugin cannot
//!   call models while being initialized.
//!
//! wizer itself runs single-threaded here (its `rayon` feature is off), and
//! records memory and globals in a fixed order.
//!
//! [wasmtime-wizer]: https://docs.rs/wasmtime-wizer

use rand::SeedableRng as _;
use std::time::Duration;
use wasmtime::component::{
    Component, Instance, Lift, Linker, ResourceTable, ResourceType, WasmList,
};
use wasmtime::error::Context as _;
use wasmtime::{bail, Config, Engine, Store};
use wasmtime_wasi::clocks::{HostMonotonicClock, HostWallClock};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// The export called to initialize a component unless told otherwise.
pub const DEFAULT_INIT_FUNC: &str = "wizer-initialize";

/// Pre-initializes `component`: instantiates it, calls its `init_func` export
/// (of type `func()`), and returns the snapshot component (which still
/// exports `init_func`). The result depends only on `component` and
/// `init_func`.
pub fn snapshot(component: &[u8], init_func: &str) -> anyhow::Result<Vec<u8>> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?
        .block_on(snapshot_async(component, init_func))
        // `{:#}` keeps the whole chain of causes.
        .map_err(|e| anyhow::anyhow!("{e:#}"))
}

async fn snapshot_async(component: &[u8], init_func: &str) -> wasmtime::Result<Vec<u8>> {
    let mut wizer = Wizer::new();
    // Keep the init export: wizer 48 would otherwise drop the core module's
    // export of the same name while the component still lifts it (an invalid
    // component). Left in the snapshot it is harmless: the host never calls
    // it, and the plugin's init is idempotent.
    wizer.init_func(init_func).keep_init_func(true);
    let (cx, instrumented) = wizer
        .instrument_component(component)
        .context("cannot instrument the component for pre-initialization")?;

    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).context("cannot create the wasmtime engine")?;
    let compiled = Component::new(&engine, &instrumented)
        .context("cannot compile the instrumented component")?;

    let mut linker = Linker::<InitState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("cannot link WASI")?;
    stub_non_wasi_imports(&engine, &compiled, &mut linker)?;

    let mut store = Store::new(&engine, InitState::new());
    // wizer reads each memory back as one `list<u8>`: allow up to 4 GiB in
    // one call (the default, 128 MiB, is a DoS bound for untrusted guests
    // calling a host; here it is our own build reading our own plugin).
    store.set_hostcall_fuel(4 << 30);
    let instance = linker
        .instantiate_async(&mut store, &compiled)
        .await
        .context("cannot instantiate the component")?;
    let init = instance
        .get_typed_func::<(), ()>(&mut store, init_func)
        .with_context(|| format!("the component has no export `{init_func}: func()`"))?;
    init.call_async(&mut store, ())
        .await
        .with_context(|| format!("the initialization function `{init_func}` trapped"))?;

    let snapshot = wizer
        .snapshot_component(
            &cx,
            &mut Snapshotter {
                store: &mut store,
                instance,
            },
        )
        .await
        .context("cannot snapshot the initialized instance")?;

    // The snapshot must still be a valid component.
    Component::new(&engine, &snapshot).context("the snapshot does not compile")?;
    Ok(snapshot)
}

/// Defines every function of every non-WASI instance import (the host's
/// `cloister:feature/inference`) as a trap: a plugin cannot call a model
/// while being initialized. (wasmtime's `define_unknown_imports_as_traps`
/// would also redefine semver-matched WASI instances such as
/// `wasi:io/error@0.2.12` and break their resource types.)
fn stub_non_wasi_imports(
    engine: &Engine,
    component: &Component,
    linker: &mut Linker<InitState>,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        if name.starts_with("wasi:") {
            continue;
        }
        match item.ty {
            ComponentItem::ComponentInstance(instance) => {
                let mut inst = linker.instance(name)?;
                for (export, ty) in instance.exports(engine) {
                    match ty.ty {
                        ComponentItem::ComponentFunc(_) => {
                            let what = format!("{name}#{export}");
                            inst.func_new(export, move |_, _, _, _| {
                                bail!(
                                    "`{what}` is not available while the component is pre-initialized"
                                )
                            })?;
                        }
                        // A resource type (`pending-embed`): defined so the
                        // import type-checks; its constructors and methods
                        // are functions, stubbed as traps, so no value
                        // of it can ever exist.
                        ComponentItem::Resource(_) => {
                            inst.resource(export, ResourceType::host::<Unavailable>(), |_, _| {
                                Ok(())
                            })?;
                        }
                        _ => {}
                    }
                }
            }
            ComponentItem::Type(_) => {}
            _ => bail!("unsupported import `{name}`: only instances can be stubbed"),
        }
    }
    Ok(())
}

/// The host type behind every stubbed resource import: never instantiated.
struct Unavailable;

/// What the component sees while it is initialized.
struct InitState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl InitState {
    fn new() -> InitState {
        let ctx = WasiCtx::builder()
            .secure_random(rand::rngs::StdRng::seed_from_u64(0x636c_6f69_7374_6572))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(0x7769_7a65_7200_0001))
            .insecure_random_seed(0x636c_6f69_7374_6572_2d73_6565_6400_0000)
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .inherit_stderr()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        InitState {
            ctx,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for InitState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// A clock that always reads zero.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Reads the instrumented instance's state for wizer (the same as wizer's own
/// `WasmtimeWizerComponent`, which needs wizer's `wasmtime` feature and with
/// it wasmtime features the host does not use).
struct Snapshotter<'a> {
    store: &'a mut Store<InitState>,
    instance: Instance,
}

impl Snapshotter<'_> {
    async fn call<R: Lift + Send + Sync + 'static, O>(
        &mut self,
        instance: &str,
        func: &str,
        use_ret: impl FnOnce(&mut Store<InitState>, R) -> O,
    ) -> O {
        // wizer's trait has no error path: the instrumented component always
        // has these exports (wizer added them), so a failure here is a wizer
        // bug and panicking is the only option the trait leaves.
        let (_, inst) = self
            .instance
            .get_export(&mut *self.store, None, instance)
            .unwrap_or_else(|| panic!("wizer instrumentation export `{instance}` is missing"));
        let (_, f) = self
            .instance
            .get_export(&mut *self.store, Some(&inst), func)
            .unwrap_or_else(|| {
                panic!("wizer instrumentation export `{instance}#{func}` is missing")
            });
        let f = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, f)
            .unwrap_or_else(|e| panic!("wizer instrumentation export `{func}`: {e}"));
        let (r,) = f
            .call_async(&mut *self.store, ())
            .await
            .unwrap_or_else(|e| panic!("wizer instrumentation call `{func}` failed: {e}"));
        use_ret(&mut *self.store, r)
    }
}

impl ComponentInstanceState for Snapshotter<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        self.call(instance, func, |store, list: WasmList<u8>| {
            contents(list.as_le_slice(&*store))
        })
        .await
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, r: i32| r).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, r: i64| r).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, r: f32| r.to_bits()).await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, r: f64| r.to_bits()).await
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
