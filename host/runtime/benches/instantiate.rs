//! Per-request cost of the plugin runtime: a fresh store and instance of the
//! echo plugin, one `handle` call, and the drop of both.
//!
//! Run with `scripts/build-plugins && cargo bench -p cloister-runtime`
//! (unset RUST_BACKTRACE for figures comparable with the closing notes).

use cloister_runtime::{Limits, NoModels, Runtime};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;
use std::sync::Arc;

fn echo_component() -> Vec<u8> {
    let dir = std::env::var_os("CLOISTER_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"));
    let path = dir.join("echo.wasm");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run scripts/build-plugins first",
            path.display()
        )
    })
}

fn per_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let runtime = Runtime::new(Limits::default()).expect("plugin runtime");
    let echo = rt
        .block_on(runtime.load("echo", &echo_component(), &[], Arc::new(NoModels)))
        .expect("load echo");
    let input = r#"{"text":"hello"}"#;
    c.bench_function("echo: instantiate + call + drop", |b| {
        b.to_async(&rt).iter(|| echo.handle(input))
    });
}

criterion_group!(benches, per_request);
criterion_main!(benches);
