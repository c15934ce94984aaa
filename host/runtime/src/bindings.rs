//! Host-side bindings generated from `wit/feature.wit`.
#![allow(missing_docs)] // generated code; the WIT file documents every item

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "feature",
    // `embed` runs a model for milliseconds to seconds: it is async so that
    // the backend runs on tokio's blocking pool, not on a worker thread.
    // `finish` of a pending call waits for it the same way.
    imports: {
        "cloister:feature/inference.embed": async,
        "cloister:feature/inference.[method]pending-embed.finish": async,
    },
    with: { "cloister:feature/inference.pending-embed": crate::inference::PendingEmbed },
    exports: { default: async },
});

pub use cloister::feature::inference;
