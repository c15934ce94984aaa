//! tract side of `bench/inference/run`: embeds the benchmark sentences with
//! the verified model and prints one JSON line with the median time of a
//! whole batch (tokenize + run + pool + normalise).
//!
//! `cargo bench -p cloister-inference --bench embed -- --sentences FILE
//!  [--threads N] [--iters N] [--mode grouped|padded|single]
//!  [--shapes symbolic|concrete]`

use cloister_inference::{Engine, Limits, Shapes};
use cloister_models::{load_verified, Manifest};
use cloister_runtime::InferenceBackend;
use cloister_test_support::cli_str as arg;
use std::time::Instant;

const MODEL: &str = "all-minilm-l6-v2";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; without our arguments there is
    // nothing to measure.
    let Some(sentences) = arg("--sentences") else {
        eprintln!("embed bench: pass --sentences FILE (see bench/inference/run)");
        return Ok(());
    };
    let threads: usize = arg("--threads").map_or(Ok(1), |s| s.parse())?;
    let iters: usize = arg("--iters").map_or(Ok(50), |s| s.parse())?;
    let mode = arg("--mode").unwrap_or_else(|| "grouped".into());
    let shapes = match arg("--shapes").as_deref() {
        None | Some("symbolic") => Shapes::Symbolic,
        Some("concrete") => Shapes::Concrete,
        Some(other) => return Err(format!("--shapes {other}: symbolic or concrete").into()),
    };
    let dir = cloister_test_support::models_dir_unchecked();

    let texts: Vec<String> = std::fs::read_to_string(&sentences)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    cloister_inference::set_threads(threads);
    let verified = load_verified(&Manifest::embedded()?, MODEL, &dir)?;
    let load = Instant::now();
    let mut engine = Engine::new(Limits::default());
    engine.load(&verified, shapes)?;
    let load_ms = load.elapsed().as_secs_f64() * 1e3;
    let enc = engine.model(MODEL).ok_or("model not loaded")?;

    let run = || -> Result<(), Box<dyn std::error::Error>> {
        match mode.as_str() {
            "grouped" => {
                engine.embed(MODEL, &texts)?;
            }
            "padded" | "single" => {
                let rows: Vec<Vec<u32>> = texts
                    .iter()
                    .map(|t| enc.tokenize(t).map(|e| e.ids))
                    .collect::<Result<_, _>>()?;
                let rows: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
                if mode == "padded" {
                    enc.run_batch(&rows)?;
                } else {
                    for r in rows {
                        enc.run_batch(&[r])?;
                    }
                }
            }
            other => return Err(format!("--mode {other}: grouped, padded or single").into()),
        }
        Ok(())
    };
    let warm = Instant::now();
    run()?;
    let first_ms = warm.elapsed().as_secs_f64() * 1e3;
    for _ in 0..4 {
        run()?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"runtime\": \"tract 0.23.9\", \"mode\": \"{mode}\", \"shapes\": \"{}\", \"threads\": {threads}, \"sentences\": {}, \"median_ms\": {:.3}, \"per_sentence_ms\": {:.3}, \"load_ms\": {:.0}, \"first_call_ms\": {:.1}}}",
        if shapes == Shapes::Symbolic { "symbolic" } else { "concrete" },
        texts.len(),
        median,
        median / texts.len() as f64,
        load_ms,
        first_ms
    );
    Ok(())
}
