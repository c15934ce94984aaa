//! The sandboxed, stateless plugin runtime of the Cloister host.
//!
//! This crate runs **inside the confidential VM**. It turns a WebAssembly
//! component that targets the `feature` world of `wit/feature.wit` into a
//! [`Plugin`] that serves requests, under these rules:
//!
//! * **Nothing ambient.** The linker is built from an explicit allow-list
//!   ([`imports::ALLOWED_INTERFACES`]): the WASI interfaces Rust's std needs on
//!   `wasm32-wasip2` (io, cli environment/exit/stdio/terminal, clocks, random,
//!   and the filesystem interfaces with an *empty* preopen set) plus the
//!   host's `cloister:feature/inference`. Sockets, HTTP and everything else are
//!   never linked, and a component that imports anything outside the list is
//!   refused at load with an error naming the import
//!   ([`LoadError::ForbiddenImport`]). The environment and the arguments are
//!   empty; stdout and stderr are discarded (they could carry user content).
//! * **Stateless.** Every request gets a fresh [`wasmtime::Store`] and a fresh
//!   instance from a pre-instantiated component; both are dropped when the
//!   request ends. Pooled memory slots are reset before reuse, so neither
//!   statics nor memory contents survive a request.
//! * **Bounded.** Per request: linear memory, a wall-clock deadline enforced
//!   with epoch interruption, input and output size; a cap on concurrent
//!   instances. Exceeding one ends that request only, with a specific
//!   [`RequestError`].
//!
//! The runtime knows nothing about signatures or measurement: the host verifies
//! a component before handing its bytes to [`Runtime::load`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bindings;
pub mod clock;
mod error;
pub mod imports;
pub mod inference;
pub mod json;
mod limits;
mod plugin;
mod pool;
mod runtime;
pub use runtime::{LoadSpec, Precompiled};
mod state;

pub use bindings::{FeatureError, PluginInfo};
pub use cloister_aot::MeasuredDir;
pub use error::{LoadError, RequestError, RuntimeError};
pub use inference::{Cancel, Embeddings, InferenceBackend, InferenceFailure, NoModels};
pub use limits::Limits;
pub use plugin::Plugin;
pub use runtime::Runtime;
