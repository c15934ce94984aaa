//! What every evaluation needs: the plugin runtime, the real inference
//! backend (timed), loading a built component, latency statistics.

use anyhow::{anyhow, Context};
use cloister_inference::{Engine, Limits as InferenceLimits, Shapes};
use cloister_runtime::{
    Embeddings, InferenceBackend, InferenceFailure, Limits, LoadSpec, Plugin, Runtime,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The sentence-embedding model the features use.
pub const MODEL: &str = "all-minilm-l6-v2";

/// The runtime's memory slots: the largest per-plugin budget used here.
pub const MEMORY_POOL_BYTES: usize = 512 << 20;

/// A path relative to the repository root.
pub fn repo_path(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    p.canonicalize().unwrap_or(p)
}

/// Options shared by the suites.
pub struct RunOptions {
    /// The `eval/` directory.
    pub data: PathBuf,
    /// Runs per item for latency.
    pub repeat: usize,
    /// Print every item.
    pub verbose: bool,
}

/// The inference engine, counting the calls plugins make and the time they
/// take.
pub struct TimedBackend {
    engine: Engine,
    calls: AtomicU64,
    texts: AtomicU64,
    nanos: AtomicU64,
}

/// Inference calls made so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `embed` calls.
    pub calls: u64,
    /// Texts embedded.
    pub texts: u64,
    /// Time spent in the model.
    pub nanos: u64,
}

impl Usage {
    /// The usage between `earlier` and `self`.
    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            calls: self.calls - earlier.calls,
            texts: self.texts - earlier.texts,
            nanos: self.nanos - earlier.nanos,
        }
    }
}

impl TimedBackend {
    /// Usage so far.
    pub fn usage(&self) -> Usage {
        Usage {
            calls: self.calls.load(Ordering::SeqCst),
            texts: self.texts.load(Ordering::SeqCst),
            nanos: self.nanos.load(Ordering::SeqCst),
        }
    }
}

impl InferenceBackend for TimedBackend {
    fn embed(&self, model: &str, texts: &[String]) -> Result<Embeddings, InferenceFailure> {
        let started = Instant::now();
        let out = self.engine.embed(model, texts);
        self.nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.texts.fetch_add(texts.len() as u64, Ordering::SeqCst);
        out
    }
}

/// The runtime and the backend, shared by the suites.
pub struct Harness {
    /// The plugin runtime with the host's default limits.
    pub runtime: Runtime,
    /// The real model behind a counter.
    pub backend: Arc<TimedBackend>,
    plugins: PathBuf,
}

/// The models data directory: `models`, else the default for the manifest
/// (`$CLOISTER_MODELS_DIR`, else target/models).
pub fn models_dir(models: Option<&Path>) -> PathBuf {
    models
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cloister_models::default_data_dir(&repo_path("models/manifest.toml")))
}

/// Verifies [`MODEL`] in `dir` against the embedded manifest and loads it.
pub fn load_engine(dir: &Path) -> anyhow::Result<Engine> {
    let manifest = cloister_models::Manifest::embedded().context("the embedded model manifest")?;
    let verified = cloister_models::load_verified(&manifest, MODEL, dir).with_context(|| {
        format!(
            "model {MODEL} is not in {}; run `cloister models fetch` first",
            dir.display()
        )
    })?;
    let mut engine = Engine::new(InferenceLimits::default());
    engine
        .load(&verified, Shapes::Symbolic)
        .with_context(|| format!("loading {MODEL}"))?;
    Ok(engine)
}

impl Harness {
    /// Starts the runtime and loads the verified model.
    pub fn new(plugins: &Path, models: Option<&Path>, threads: usize) -> anyhow::Result<Harness> {
        let dir = models_dir(models);
        let started = Instant::now();
        cloister_inference::set_threads(threads);
        let engine = load_engine(&dir)?;
        eprintln!(
            "model {MODEL} loaded from {} in {} ms ({} thread(s))",
            dir.display(),
            started.elapsed().as_millis(),
            threads
        );
        // Default limits, with memory slots large enough for the plugins
        // that are given a larger budget (writing-help).
        let runtime = Runtime::with_memory_pool(Limits::default(), MEMORY_POOL_BYTES)
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Harness {
            runtime,
            backend: Arc::new(TimedBackend {
                engine,
                calls: AtomicU64::new(0),
                texts: AtomicU64::new(0),
                nanos: AtomicU64::new(0),
            }),
            plugins: plugins.to_path_buf(),
        })
    }

    /// Loads `target/plugins/<name>.wasm` with the model granted (no
    /// signature: the evaluation runs what was just built).
    pub async fn plugin(&self, name: &str) -> anyhow::Result<Plugin> {
        self.plugin_with_memory(name, None).await
    }

    /// Like [`Harness::plugin`], with a per-instance memory budget other
    /// than the default (as `[[plugin]] max_memory_bytes` in the host).
    pub async fn plugin_with_memory(
        &self,
        name: &str,
        max_memory_bytes: Option<usize>,
    ) -> anyhow::Result<Plugin> {
        let path = self.plugins.join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read {}; build the plugins with scripts/build-plugins",
                path.display()
            )
        })?;
        let backend: Arc<dyn InferenceBackend> = self.backend.clone();
        let models = [MODEL.to_owned()];
        let spec = LoadSpec {
            name,
            component: &bytes,
            allowed_models: &models,
            max_memory_bytes,
            precompiled: None,
        };
        self.runtime
            .load_all(&[spec], backend)
            .await
            .map_err(|e| anyhow!("{e}"))?
            .pop()
            .ok_or_else(|| anyhow!("plugin {name} was not loaded"))
    }
}

/// Latency percentiles (nearest rank).
pub struct Latency {
    sorted: Vec<Duration>,
}

impl Latency {
    /// From samples in any order.
    pub fn new(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        Latency { sorted: samples }
    }

    /// The `p`-th percentile (0–100), or zero without samples.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// `p50 … ms, p95 … ms, max … ms (n runs)`.
    pub fn summary(&self) -> String {
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} runs)",
            ms(self.percentile(50.0)),
            ms(self.percentile(95.0)),
            ms(self.sorted.last().copied().unwrap_or_default()),
            self.sorted.len()
        )
    }
}

/// Milliseconds as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let l = Latency::new((1..=20).rev().map(Duration::from_millis).collect());
        assert_eq!(l.percentile(50.0), Duration::from_millis(10));
        assert_eq!(l.percentile(95.0), Duration::from_millis(19));
        assert_eq!(l.percentile(100.0), Duration::from_millis(20));
        assert_eq!(Latency::new(Vec::new()).percentile(50.0), Duration::ZERO);
    }
}
