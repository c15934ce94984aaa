//! The real model, verified from the fetched data directory. Tests that need
//! it fail (never skip) when it is absent.
#![allow(dead_code)]

use cloister_models::{load_verified, Manifest, VerifiedModel};
use std::path::PathBuf;
use std::sync::OnceLock;

pub const MODEL: &str = "all-minilm-l6-v2";

pub fn models_dir() -> PathBuf {
    std::env::var_os(cloister_models::DATA_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"))
}

pub fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// The verified model; panics with what to run if it is not there.
pub fn verified() -> &'static VerifiedModel {
    static MODEL_BYTES: OnceLock<VerifiedModel> = OnceLock::new();
    MODEL_BYTES.get_or_init(|| {
        let manifest = Manifest::embedded().expect("embedded manifest");
        let dir = models_dir();
        load_verified(&manifest, MODEL, &dir).unwrap_or_else(|e| {
            panic!(
                "model {MODEL} is not available in {}: {e}\n\
                 run `cloister-host models fetch` (or scripts/test, which does) first",
                dir.display()
            )
        })
    })
}
