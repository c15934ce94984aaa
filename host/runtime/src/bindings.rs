//! Host-side bindings generated from `wit/feature.wit`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "feature",
    exports: { default: async },
});

pub use cloister::feature::inference;
pub use cloister::feature::types::{FeatureError, PluginInfo};
