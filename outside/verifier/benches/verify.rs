//! Cold verification of a real AMD SEV-SNP report (Milan, from `shared/vectors/snp`):
//! chain ARK -> ASK -> VCEK with AMD's built-in roots (RSASSA-PSS 4096), report signature
//! (ECDSA P-384), TCB and policy; and the same with the chain cached.
//!
//! Run: `cargo bench -p cloister-verifier --bench verify` (unset RUST_BACKTRACE).
use cloister_verifier::{verify, verify_with_cache, Allowed, ChainCache, Evidence, Policy};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn read(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/snp")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn bench(c: &mut Criterion) {
    let hex_text: String = String::from_utf8(read("virtee-sev/report_milan.hex"))
        .expect("utf-8")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let evidence = Evidence {
        report: hex::decode(hex_text).expect("hex"),
        vek_der: read("virtee-sev/vcek_milan.der"),
        intermediate_der: None,
        ark_der: None,
    };
    let mut policy = Policy::default();
    policy.allow_debug = true;
    policy.allowed_vmpls = Allowed::Any;
    // 2025-09-01: inside the VCEK's validity.
    let now: SystemTime = UNIX_EPOCH + Duration::from_secs(1_756_684_800);
    verify(&evidence, &policy, now).expect("the vector verifies");

    let mut g = c.benchmark_group("verify_amd_milan");
    g.bench_function("cold", |b| {
        b.iter(|| verify(&evidence, &policy, now).expect("verified"))
    });
    let mut cache = ChainCache::new();
    g.bench_function("chain_cached", |b| {
        b.iter(|| verify_with_cache(&evidence, &policy, now, Some(&mut cache)).expect("verified"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
