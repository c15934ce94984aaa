//! The writing-help plugin's tone classifier: trained here, checked here.
//!
//! `guest-plugins/writing-help/tone/training.json` holds the labelled training
//! sentences (written for this project, disjoint from the evaluation set);
//! `tone/classifier.bin` the softmax regression the plugin runs (layout in
//! `cloister_tone_prototypes::classifier`). Both go through the same crate as
//! the plugin, so the format cannot drift.
//!
//! * The kept test `tone_classifier_matches_its_training` embeds the training
//!   set with the real model, trains with [`L2`], and checks the committed
//!   file (same header, weights within a tolerance); with
//!   `CLOISTER_WRITE_TONE=1` it writes the file instead:
//!
//!   ```sh
//!   CLOISTER_WRITE_TONE=1 cargo test -p cloister-eval tone_classifier
//!   ```
//! * `cloister-eval tone` prints the stratified 10-fold cross-validated
//!   accuracy on the training set for a range of penalties (the chosen one
//!   marked), per-tone recall, the calibration of the "unsure" rule
//!   (coverage and accuracy of the confident answers by threshold), and the
//!   committed classifier's accuracy on the held-out evaluation set.

use crate::harness::{repo_path, RunOptions};
use crate::stats::{show, wilson};
use anyhow::{bail, Context};
use cloister_inference::Engine;
use cloister_runtime::InferenceBackend;
use cloister_tone_prototypes::classifier::{cross_validate, train, Classifier, TrainParams};
use cloister_tone_prototypes::{SentencesFile, UNSURE_BELOW};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The tones, in the plugin's class order (`Tone::ALL`).
pub const TONES: [&str; 4] = ["formal", "casual", "friendly", "angry"];
/// The L2 penalty of the shipped classifier (chosen by cross-validation: see
/// `cloister-eval tone`).
pub const L2: f64 = 1e-3;
/// Gradient steps (the objective is strictly convex; more change nothing).
pub const ITERATIONS: usize = 800;
/// Folds of the cross-validation.
pub const FOLDS: usize = 10;

/// The training settings of the shipped classifier.
pub fn params(l2: f64) -> TrainParams {
    TrainParams {
        l2,
        iterations: ITERATIONS,
    }
}

/// The plugin's `tone/` directory.
pub fn dir() -> PathBuf {
    repo_path("guest-plugins/writing-help/tone")
}

/// The model digest as in the measurement log (`pinned_digest`).
pub fn model_digest(model: &str) -> anyhow::Result<[u8; 32]> {
    let manifest = cloister_models::Manifest::embedded()?;
    let spec = manifest
        .model(model)
        .with_context(|| format!("model {model} is not in the manifest"))?;
    Ok(cloister_models::pinned_digest(spec))
}

/// Loads the verified model from the models data directory.
pub fn engine(models: Option<&Path>) -> anyhow::Result<Engine> {
    crate::harness::load_engine(&crate::harness::models_dir(models))
}

/// Embeds `texts` in batches the engine accepts.
fn embed(engine: &Engine, model: &str, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(64) {
        out.extend(
            engine
                .embed(model, batch)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    Ok(out)
}

fn class_of(tone: &str) -> anyhow::Result<usize> {
    TONES
        .iter()
        .position(|t| *t == tone)
        .with_context(|| format!("unknown tone `{tone}`"))
}

/// The training set, embedded: vectors, labels, the file's SHA-256 and the
/// model's name.
pub struct Training {
    pub vectors: Vec<Vec<f32>>,
    pub labels: Vec<usize>,
    pub sha256: [u8; 32],
    pub model: String,
}

/// Reads and embeds `training.json` from `dir`.
pub fn training(dir: &Path, engine: &Engine) -> anyhow::Result<Training> {
    let path = dir.join("training.json");
    let json = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = SentencesFile::parse(&json).map_err(anyhow::Error::msg)?;
    let labels = file
        .sentences
        .iter()
        .map(|s| class_of(&s.tone))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let texts: Vec<String> = file.sentences.into_iter().map(|s| s.text).collect();
    let vectors = embed(engine, &file.model, &texts)?;
    Ok(Training {
        vectors,
        labels,
        sha256: Sha256::digest(&json).into(),
        model: file.model,
    })
}

/// Trains the classifier the plugin ships on the whole training set.
pub fn fit(t: &Training) -> anyhow::Result<Classifier> {
    let (weights, bias) =
        train(&t.vectors, &t.labels, TONES.len(), params(L2)).map_err(anyhow::Error::msg)?;
    Ok(Classifier {
        dims: t.vectors.first().map(Vec::len).unwrap_or(0),
        classes: TONES.len(),
        model_digest: model_digest(&t.model)?,
        training_sha256: t.sha256,
        weights,
        bias,
    })
}

/// Compares two classifiers: same header, weights within `tol`. Returns the
/// largest difference.
pub fn compare(expected: &Classifier, actual: &Classifier, tol: f32) -> anyhow::Result<f32> {
    if (expected.dims, expected.classes) != (actual.dims, actual.classes) {
        bail!("shapes differ: regenerate with CLOISTER_WRITE_TONE=1");
    }
    if expected.model_digest != actual.model_digest
        || expected.training_sha256 != actual.training_sha256
    {
        bail!("the model or training.json changed: regenerate with CLOISTER_WRITE_TONE=1");
    }
    let worst = expected
        .weights
        .iter()
        .chain(&expected.bias)
        .zip(actual.weights.iter().chain(&actual.bias))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    if worst > tol {
        bail!("weights differ by up to {worst} (> {tol})");
    }
    Ok(worst)
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len())
        .max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a)))
        .unwrap_or(0)
}

fn ratio(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

/// Prints accuracy, per-tone recall and the calibration of `probs` against
/// `labels`.
fn report(probs: &[Vec<f32>], labels: &[usize]) {
    let n = labels.len();
    let right = probs
        .iter()
        .zip(labels)
        .filter(|(p, &y)| argmax(p) == y)
        .count();
    println!(
        "  accuracy {} ({right}/{n})",
        show(ratio(right, n), wilson(right, n))
    );
    for (c, tone) in TONES.iter().enumerate() {
        let of: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
        let hit = of.iter().filter(|&&i| argmax(&probs[i]) == c).count();
        let confused: Vec<String> = TONES
            .iter()
            .enumerate()
            .filter(|(d, _)| *d != c)
            .map(|(d, t)| {
                let k = of.iter().filter(|&&i| argmax(&probs[i]) == d).count();
                format!("{t} {k}")
            })
            .collect();
        println!(
            "    {tone:<8} recall {:.3} ({hit}/{}); read as {}",
            ratio(hit, of.len()),
            of.len(),
            confused.join(", ")
        );
    }
    println!("  the \"unsure\" rule (answer only when the top probability reaches the threshold):");
    for threshold in [0.0f32, 0.4, UNSURE_BELOW, 0.6, 0.7, 0.8] {
        let sure: Vec<usize> = (0..n)
            .filter(|&i| probs[i].iter().cloned().fold(0.0, f32::max) >= threshold)
            .collect();
        let ok = sure
            .iter()
            .filter(|&&i| argmax(&probs[i]) == labels[i])
            .count();
        println!(
            "    ≥ {threshold:.2}{}: answers {:.3} of texts ({}/{n}), accuracy of the answers {}",
            if threshold == UNSURE_BELOW {
                " (shipped)"
            } else {
                ""
            },
            ratio(sure.len(), n),
            sure.len(),
            show(ratio(ok, sure.len()), wilson(ok, sure.len()))
        );
    }
}

#[derive(Deserialize)]
struct EvalSet {
    #[serde(default)]
    tone: Vec<EvalCase>,
}

#[derive(Deserialize)]
struct EvalCase {
    tone: String,
    text: String,
}

/// `cloister-eval tone`.
pub fn run(opts: &RunOptions, models: Option<&Path>) -> anyhow::Result<()> {
    let engine = engine(models)?;
    let t = training(&dir(), &engine)?;
    println!(
        "tone classifier — {} training sentences ({}), {FOLDS}-fold stratified cross-validation",
        t.labels.len(),
        dir().join("training.json").display()
    );
    let mut shipped_cv = None;
    for l2 in [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2] {
        let probs = cross_validate(&t.vectors, &t.labels, TONES.len(), FOLDS, params(l2))
            .map_err(anyhow::Error::msg)?;
        let right = probs
            .iter()
            .zip(&t.labels)
            .filter(|(p, &y)| argmax(p) == y)
            .count();
        println!(
            "  λ = {l2:e}{}: accuracy {} ({right}/{})",
            if l2 == L2 { " (shipped)" } else { "" },
            show(ratio(right, t.labels.len()), wilson(right, t.labels.len())),
            t.labels.len()
        );
        if l2 == L2 {
            shipped_cv = Some(probs);
        }
    }
    let probs = shipped_cv.context("the shipped penalty is not among those cross-validated")?;
    println!("\ncross-validated, λ = {L2:e}:");
    report(&probs, &t.labels);

    // The held-out evaluation set, with the committed classifier.
    let path = opts.data.join("writing-help/cases.json");
    let set: EvalSet = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a valid set", path.display()))?;
    let bin = std::fs::read(dir().join("classifier.bin")).context("tone/classifier.bin")?;
    let shipped = Classifier::decode(&bin).map_err(anyhow::Error::msg)?;
    let worst = compare(&shipped, &fit(&t)?, 1e-3)
        .context("the committed tone/classifier.bin is not what its training gives")?;
    println!(
        "
the committed classifier.bin is what training gives (largest difference {worst:e})"
    );
    let texts: Vec<String> = set.tone.iter().map(|c| c.text.clone()).collect();
    let labels = set
        .tone
        .iter()
        .map(|c| class_of(&c.tone))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let vectors = embed(&engine, &t.model, &texts)?;
    let probs = vectors
        .iter()
        .map(|v| {
            shipped
                .probabilities(v)
                .context("a vector of the wrong size")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    println!(
        "\nheld-out evaluation set ({}, {} sentences never trained on), the committed classifier:",
        path.display(),
        texts.len()
    );
    report(&probs, &labels);
    if opts.verbose {
        for ((c, p), &y) in set.tone.iter().zip(&probs).zip(&labels) {
            if argmax(p) != y {
                println!("    ✗ {} → {}: {}", c.tone, TONES[argmax(p)], c.text);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kept test: the committed classifier is what training on the committed
    /// sentences with the real model gives (needs the fetched model).
    #[test]
    fn tone_classifier_matches_its_training() {
        let engine = engine(None).unwrap();
        let t = training(&dir(), &engine).unwrap();
        let fresh = fit(&t).unwrap();
        let path = dir().join("classifier.bin");
        if std::env::var_os("CLOISTER_WRITE_TONE").is_some_and(|v| v == "1") {
            let bin = fresh.encode().unwrap();
            std::fs::write(&path, &bin).unwrap();
            eprintln!("wrote {} ({} bytes)", path.display(), bin.len());
            return;
        }
        let committed = Classifier::decode(&std::fs::read(&path).unwrap()).unwrap();
        let worst = compare(&committed, &fresh, 1e-3).unwrap();
        eprintln!("tone classifier matches its training (largest difference {worst:e})");
    }

    #[test]
    fn compare_checks_header_and_tolerance() {
        let a = Classifier {
            dims: 1,
            classes: 2,
            model_digest: [1; 32],
            training_sha256: [2; 32],
            weights: vec![1.0, 2.0],
            bias: vec![0.0, 0.0],
        };
        assert_eq!(compare(&a, &a.clone(), 1e-3).unwrap(), 0.0);
        let mut b = a.clone();
        b.weights[1] = 2.1;
        assert!(compare(&a, &b, 1e-3).is_err());
        let mut c = a.clone();
        c.training_sha256 = [3; 32];
        assert!(compare(&a, &c, 1e-3).is_err());
    }
}
