//! The host's embeddings against the independent reference
//! (models/reference/all-minilm-l6-v2.json, written by models/reference.py
//! with onnxruntime and the Python `tokenizers` package): token ids equal,
//! embeddings at cosine >= 0.9999. Also the limits and the backend contract.

use cloister_inference::{Engine, Limits, Shapes};
use cloister_runtime::{InferenceBackend, InferenceFailure};
use cloister_test_support::{repo_file, verified_model as verified, MODEL};
use serde::Deserialize;
use std::sync::OnceLock;

#[derive(Deserialize)]
struct Reference {
    model: String,
    onnx_sha256: String,
    tokenizer_sha256: String,
    max_tokens: usize,
    inputs: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn reference() -> Reference {
    let path = repo_file("models/reference/all-minilm-l6-v2.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("reference JSON")
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut e = Engine::new(Limits::default());
        e.load(verified(), Shapes::Symbolic).expect("model loads");
        e
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn reference_is_for_the_pinned_files() {
    let r = reference();
    let v = verified();
    assert_eq!(r.model, MODEL);
    assert_eq!(r.max_tokens, v.spec.max_tokens);
    for (role, pin) in [
        (cloister_models::FileRole::Onnx, &r.onnx_sha256),
        (cloister_models::FileRole::Tokenizer, &r.tokenizer_sha256),
    ] {
        assert_eq!(&hex(v.file(role).unwrap().sha256), pin, "{role:?}");
    }
    assert!(r.inputs.len() >= 20);
    assert!(
        r.inputs.iter().any(|i| i.ids.len() == r.max_tokens),
        "the reference must include a text truncated at max_tokens"
    );
}

fn hex(b: [u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn token_ids_equal_the_reference_tokenizer() {
    let r = reference();
    let enc = engine().model(MODEL).unwrap();
    for (i, rec) in r.inputs.iter().enumerate() {
        let ours = enc.tokenize(&rec.text).unwrap();
        assert_eq!(ours.ids, rec.ids, "input #{i}: token ids differ");
    }
}

#[test]
fn embeddings_match_the_reference_at_cosine_0_9999() {
    let r = reference();
    let texts: Vec<String> = r.inputs.iter().map(|i| i.text.clone()).collect();
    // All inputs in one call: grouped by length and padded per batch.
    let ours = engine().embed(MODEL, &texts).unwrap();
    assert_eq!(ours.len(), texts.len());
    let mut min = f64::MAX;
    for (i, (v, rec)) in ours.iter().zip(&r.inputs).enumerate() {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "input #{i}: norm {norm}");
        let c = cosine(v, &rec.embedding);
        assert!(c >= 0.9999, "input #{i}: cosine {c:.6} < 0.9999");
        min = min.min(c);
    }
    eprintln!(
        "minimum cosine against the reference: {min:.9} (1 - min = {:.1e})",
        1.0 - min
    );

    // One at a time gives the same vectors as in a batch (padding is masked).
    for i in [0, 11, 21] {
        let single = engine().embed(MODEL, &texts[i..=i]).unwrap();
        let c = cosine(&single[0], &ours[i]);
        assert!(c >= 0.99999, "input #{i}: batched vs single cosine {c}");
    }
}

#[test]
fn concrete_shapes_give_the_same_vectors() {
    let r = reference();
    let texts: Vec<String> = r.inputs.iter().take(8).map(|i| i.text.clone()).collect();
    let mut e = Engine::new(Limits::default());
    e.load(verified(), Shapes::Concrete).unwrap();
    let a = e.embed(MODEL, &texts).unwrap();
    for (i, (v, rec)) in a.iter().zip(&r.inputs).enumerate() {
        let c = cosine(v, &rec.embedding);
        assert!(c >= 0.9999, "input #{i}: cosine {c:.6}");
    }
}

#[test]
fn batches_on_two_threads_give_the_reference_vectors() {
    // The only test here that changes the process-wide thread count; the
    // others give the same vectors either way.
    let r = reference();
    let texts: Vec<String> = r.inputs.iter().map(|i| i.text.clone()).collect();
    cloister_inference::set_threads(2);
    let parallel = engine().embed(MODEL, &texts);
    let one = engine().embed(MODEL, &texts[..1]);
    cloister_inference::set_threads(1);
    let parallel = parallel.unwrap();
    assert_eq!(parallel.len(), texts.len());
    for (i, (v, rec)) in parallel.iter().zip(&r.inputs).enumerate() {
        let c = cosine(v, &rec.embedding);
        assert!(c >= 0.9999, "input #{i}: cosine {c:.6} on two threads");
    }
    // One text cannot be split: it runs alone.
    assert!(cosine(&one.unwrap()[0], &r.inputs[0].embedding) >= 0.9999);
}

#[test]
fn limits_are_answered_with_invalid_input_naming_the_limit() {
    let limits = Limits {
        max_texts: 3,
        max_text_bytes: 10,
        ..Limits::default()
    };
    let mut e = Engine::new(limits);
    e.load(verified(), Shapes::Symbolic).unwrap();
    let secret = "secret-user-text";
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "empty batch"),
        (vec!["a".into(); 4], "max_texts 3"),
        (vec!["ok".into(), secret.into()], "max_text_bytes 10"),
    ];
    for (texts, needle) in cases {
        match e.embed(MODEL, &texts) {
            Err(InferenceFailure::InvalidInput(m)) => {
                assert!(m.contains(needle), "`{m}` should name `{needle}`");
                assert!(!m.contains(secret), "error echoes the input: {m}");
            }
            other => panic!("expected InvalidInput for {needle}, got {other:?}"),
        }
    }
    assert!(matches!(
        e.embed("other-model", &["x".into()]),
        Err(InferenceFailure::ModelNotAvailable(m)) if m == "other-model"
    ));
    assert_eq!(e.embed(MODEL, &["ok".into()]).unwrap().len(), 1);
}

#[test]
fn a_profiled_run_times_every_node_of_the_plan() {
    let r = reference();
    let enc = engine().model(MODEL).expect("model loaded");
    let rows: Vec<Vec<u32>> = r.inputs.iter().take(4).map(|i| i.ids.clone()).collect();
    let rows: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    let ops = enc.profile_batch(&rows).unwrap();
    // Six layers of a BERT encoder: the matrix products are there, each kind
    // is listed once, most expensive first, and every kind ran at least once.
    assert!(
        ops.iter().any(|o| o.op.to_lowercase().contains("matmul")),
        "no matrix product among {:?}",
        ops.iter().map(|o| &o.op).collect::<Vec<_>>()
    );
    let mut names: Vec<&str> = ops.iter().map(|o| o.op.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ops.len(), "an operator kind is listed twice");
    assert!(ops.windows(2).all(|w| w[0].time >= w[1].time));
    assert!(ops.iter().all(|o| o.nodes >= 1));
    assert!(ops.iter().map(|o| o.nodes).sum::<usize>() >= 6 * 4);
    // Each layer's attention mask add + softmax runs as one fused node
    // (`cloister_inference::softmax`), and tract's own softmax nowhere.
    let masked = ops
        .iter()
        .find(|o| o.op == "MaskedSoftmax")
        .unwrap_or_else(|| panic!("no MaskedSoftmax among {names:?}"));
    assert_eq!(masked.nodes, 6, "one fused softmax per layer");
    assert!(
        !names.contains(&"Softmax"),
        "tract's softmax left: {names:?}"
    );
    // The residual adds (two per layer) run as same-shape adds.
    let adds = ops
        .iter()
        .find(|o| o.op == "SameShapeAdd")
        .unwrap_or_else(|| panic!("no SameShapeAdd among {names:?}"));
    assert!(adds.nodes >= 12, "{} same-shape adds", adds.nodes);
    // Every layer norm (the embeddings' and two per layer) runs as one
    // fused node (`cloister_inference::layer_norm`), none as tract's chain.
    let norms = ops
        .iter()
        .find(|o| o.op == "LayerNorm")
        .unwrap_or_else(|| panic!("no LayerNorm among {names:?}"));
    assert_eq!(norms.nodes, 1 + 2 * 6, "one fused layer norm per norm");
    assert!(
        !names.contains(&"RmsNorm"),
        "part of tract's layer-norm chain left: {names:?}"
    );
    // Nothing to run, nothing timed.
    assert!(enc.profile_batch(&[]).unwrap().is_empty());
}
