//! Host-side bindings generated from `wit/feature.wit`.
#![allow(missing_docs)] // generated code; the WIT file documents every item

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "feature",
    exports: { default: async },
});

pub use cloister::feature::inference;
