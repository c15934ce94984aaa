//! What every Cloister test crate needs and none should copy:
//!
//! * [`repo_root`], [`repo_file`], [`vectors_dir`]: paths that do not depend on where the
//!   calling crate sits in the tree. Third-party test vectors are read from
//!   `../shared/vectors` beside the repository (CI has them there too).
//! * [`plugin_dir`], [`component`]: the guest plugins `scripts/build-plugins` built.
//! * [`models_dir`], [`verified_model`]: the model `cloister models fetch` obtained.
//! * [`host`]: signed deployments ([`host::Fixture`]), `cloister-host measure`, a running
//!   `cloister-host serve` ([`host::Server`]).
//! * [`simulator_root`]: the root a verifier must trust explicitly for simulated evidence.
//!
//! Everything here panics with what to run when a prerequisite is missing: a test that
//! needs the model or the plugins fails, it never skips.
#![forbid(unsafe_code)]

pub mod host;
pub mod proc;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cloister_models::{load_verified, Manifest, VerifiedModel};

/// The model the feature tests load.
pub const MODEL: &str = "all-minilm-l6-v2";

/// The memory budget writing-help is deployed with in tests and benches: its
/// snapshot starts with ~157 MiB of harper dictionary and linters
/// (docs/features.md).
pub const WRITING_HELP_MEMORY: usize = 256 << 20;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    // This crate is tests/support/.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A path relative to the repository's root.
pub fn repo_file(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

/// Third-party test vectors (AMD reports, RFC vectors), kept beside the repository in
/// `../shared/vectors`, each folder with its provenance.
pub fn vectors_dir() -> PathBuf {
    repo_root().join("../shared/vectors")
}

/// Where the built guest plugins are: `$CLOISTER_PLUGIN_DIR`, else `target/plugins`.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("CLOISTER_PLUGIN_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_file("target/plugins"))
}

/// The bytes of a built guest plugin; panics, saying what to run, when it is not built.
pub fn component(name: &str) -> Vec<u8> {
    let path = plugin_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; build the guest plugins first with scripts/build-plugins",
            path.display()
        )
    })
}

/// The models data directory (`$CLOISTER_MODELS_DIR`, else the repository's
/// `target/models`), without checking that it holds anything.
pub fn models_dir_unchecked() -> PathBuf {
    std::env::var_os(cloister_models::DATA_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_file("target/models"))
}

/// The models data directory; panics, saying what to run, when [`MODEL`] is not there.
pub fn models_dir() -> PathBuf {
    let dir = models_dir_unchecked();
    let onnx = dir.join(MODEL).join("model.onnx");
    assert!(
        onnx.exists(),
        "{} is missing: run `cloister models fetch` (scripts/test does) first",
        onnx.display()
    );
    dir
}

/// [`MODEL`], read once and verified against the embedded manifest; panics with what to run
/// if it is not there.
pub fn verified_model() -> &'static VerifiedModel {
    static MODEL_BYTES: OnceLock<VerifiedModel> = OnceLock::new();
    MODEL_BYTES.get_or_init(|| {
        let manifest = Manifest::embedded().expect("embedded manifest");
        let dir = models_dir_unchecked();
        load_verified(&manifest, MODEL, &dir).unwrap_or_else(|e| {
            panic!(
                "model {MODEL} is not available in {}: {e}\n\
                 run `cloister models fetch` (or scripts/test, which does) first",
                dir.display()
            )
        })
    })
}

/// The root a verifier must trust, explicitly, to accept a simulated chip's evidence: its
/// ARK, with its ASK as the intermediate.
pub fn simulator_root(sim: &cloister_snp_sim::SimulatedSnp) -> cloister_verifier::TrustedRoot {
    cloister_verifier::TrustedRoot::new_ecdsa_p384(sim.product(), sim.ark_der().to_vec())
        .with_ask(sim.ask_der().to_vec())
}

/// A binary of the workspace (`cloister-host`, `cloister`), next to the running test's
/// own executable (`target/<profile>/deps/…` → `target/<profile>/NAME`); panics with what
/// to run when it was not built (`cargo test --workspace` builds every binary).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{} not built: run the workspace tests (cargo test --workspace)",
        bin.display()
    );
    bin
}

/// For bench binaries: the `p` quantile (0.0–1.0) of samples sorted ascending, by
/// nearest rank (`p = 0.5` of an even count is the upper median). Panics on no samples.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// For bench binaries: the word after `--name` on the command line, if any.
pub fn cli_str(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// For bench binaries: the value of `--name N` on the command line, or `default`.
pub fn cli_arg(name: &str, default: usize) -> usize {
    cli_str(name)
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod percentile_tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v = [1, 2, 3, 4];
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&v, 0.5), 3);
        assert_eq!(percentile(&v, 1.0), 4);
        assert_eq!(percentile(&[7, 8, 9], 0.5), 8);
    }
}
