//! tract side of `bench/inference/ops`: where the time goes, per operator.
//!
//! Runs the benchmark sentences as one padded batch on one thread (the
//! `padded` mode of `bench/inference/run`), `--iters` times after a warm-up,
//! timing every node of tract's optimized plan, and prints one JSON line:
//! the median whole-run time, and per operator kind the nodes that run it and
//! its mean time per run.
//!
//! `cargo bench -p cloister-inference --bench profile -- --sentences FILE [--iters N]`

use cloister_inference::{Engine, Limits, Shapes};
use cloister_models::{load_verified, Manifest};
use cloister_test_support::cli_str as arg;
use std::collections::BTreeMap;
use std::time::Instant;

const MODEL: &str = "all-minilm-l6-v2";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(sentences) = arg("--sentences") else {
        eprintln!("profile bench: pass --sentences FILE (see bench/inference/ops)");
        return Ok(());
    };
    let iters: usize = arg("--iters").map_or(Ok(50), |s| s.parse())?;
    if iters == 0 {
        return Err("--iters must be at least 1".into());
    }
    let texts: Vec<String> = std::fs::read_to_string(&sentences)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    cloister_inference::set_threads(1);
    let dir = cloister_test_support::models_dir_unchecked();
    let verified = load_verified(&Manifest::embedded()?, MODEL, &dir)?;
    let mut engine = Engine::new(Limits::default());
    engine.load(&verified, Shapes::Symbolic)?;
    let enc = engine.model(MODEL).ok_or("model not loaded")?;
    let rows: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| enc.tokenize(t).map(|e| e.ids))
        .collect::<Result<_, _>>()?;
    let rows: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    let tokens = rows.iter().map(|r| r.len()).max().unwrap_or(0);

    for _ in 0..5 {
        enc.profile_batch(&rows)?;
    }
    let mut totals: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let mut runs = Vec::with_capacity(iters);
    for _ in 0..iters {
        let started = Instant::now();
        let ops = enc.profile_batch(&rows)?;
        runs.push(started.elapsed().as_secs_f64() * 1e3);
        for op in ops {
            let e = totals.entry(op.op).or_insert((op.nodes, 0.0));
            e.1 += op.time.as_secs_f64() * 1e3;
        }
    }
    runs.sort_by(f64::total_cmp);
    let mut ops: Vec<(String, usize, f64)> = totals
        .into_iter()
        .map(|(op, (nodes, ms))| (op, nodes, ms / iters as f64))
        .collect();
    ops.sort_by(|a, b| b.2.total_cmp(&a.2));
    let ops_json: Vec<String> = ops
        .iter()
        .map(|(op, nodes, ms)| {
            format!("{{\"op\": {op:?}, \"nodes\": {nodes}, \"ms_per_run\": {ms:.4}}}")
        })
        .collect();
    println!(
        "{{\"runtime\": \"tract 0.23.9\", \"batch\": {}, \"tokens\": {tokens}, \"iters\": {iters}, \"median_run_ms\": {:.3}, \"ops\": [{}]}}",
        rows.len(),
        runs[runs.len() / 2],
        ops_json.join(", ")
    );
    Ok(())
}
