//! Per-request cost of the plugin runtime: a fresh store and instance of the
//! echo plugin, one `handle` call, and the drop of both.
//!
//! Run with `scripts/build-plugins && cargo bench -p cloister-runtime`
//! (unset RUST_BACKTRACE for figures comparable with the closing notes).

use cloister_runtime::{Limits, NoModels, Runtime};
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;

fn echo_component() -> Vec<u8> {
    cloister_test_support::component("echo")
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
