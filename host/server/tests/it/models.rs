//! Models in the host: verified before the plugins, recorded in the
//! measurement log, refused when they do not match their pins. These tests
//! need the fetched model (`cloister models fetch`, which scripts/test
//! runs first) and fail, saying so, when it is absent.

use cloister_test_support::host::{measure, Fixture};
use cloister_test_support::{models_dir, MODEL};

fn with_models(f: &Fixture, extra: &str) {
    let mut text = std::fs::read_to_string(f.config()).unwrap();
    text.push_str(extra);
    std::fs::write(f.config(), text).unwrap();
}

#[test]
fn models_enter_the_measurement_log_before_the_plugins() {
    let dir = models_dir();
    let f = Fixture::new(&["echo"]);
    with_models(
        &f,
        &format!("\n[models]\ndir = {:?}\nload = [\"{MODEL}\"]\n", dir),
    );
    let (ok, out, err) = measure(&f.config());
    assert!(ok, "measure failed: {err}");
    let manifest = cloister_models::Manifest::embedded().unwrap();
    let spec = manifest.model(MODEL).unwrap();
    let digest = hex::encode(cloister_models::pinned_digest(spec));
    let first = out.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("model   {MODEL}@{} sha256:{digest} signer:-", spec.version),
        "{out}"
    );
    assert!(out
        .lines()
        .nth(1)
        .unwrap_or_default()
        .starts_with("plugin  echo@0.1.0"));

    // The canonical log carries the same entry, with a null signer.
    let out = std::process::Command::new(cloister_test_support::host::host_bin())
        .args(["measure", "--canonical", "--config"])
        .arg(f.config())
        .output()
        .unwrap();
    let log = cloister_measurement::MeasurementLog::from_canonical_bytes(
        String::from_utf8_lossy(&out.stdout).trim_end().as_bytes(),
    )
    .expect("canonical log");
    let e = &log.entries()[0];
    assert_eq!(e.kind, cloister_measurement::EntryKind::Model);
    assert_eq!(
        (e.name.as_str(), e.sha256.as_str()),
        (MODEL, digest.as_str())
    );
    assert_eq!(e.signer_key_id, None);
}

#[test]
fn a_model_that_does_not_match_its_pin_stops_the_host() {
    let dir = models_dir();
    let f = Fixture::new(&["echo"]);
    // A manifest whose tokenizer pin differs from the fetched file.
    let manifest = cloister_models::manifest::EMBEDDED_MANIFEST;
    let pin = cloister_models::Manifest::embedded()
        .unwrap()
        .model(MODEL)
        .unwrap()
        .file_with_role(cloister_models::FileRole::Tokenizer)
        .unwrap()
        .sha256
        .clone();
    let wrong = format!(
        "{}{}",
        &pin[..63],
        if pin.ends_with('0') { '1' } else { '0' }
    );
    std::fs::write(f.path("manifest.toml"), manifest.replace(&pin, &wrong)).unwrap();
    with_models(
        &f,
        &format!(
            "\n[models]\ndir = {:?}\nmanifest = \"manifest.toml\"\nload = [\"{MODEL}\"]\n",
            dir
        ),
    );
    let (ok, out, err) = measure(&f.config());
    assert!(!ok, "a mismatching model must stop the host: {out}");
    assert!(
        err.contains("tokenizer.json") && err.contains("refused") && err.contains(&wrong),
        "{err}"
    );
}

#[test]
fn a_missing_model_says_what_to_run_and_plugins_need_loaded_models() {
    let empty = tempfile::tempdir().unwrap();
    let f = Fixture::new(&["echo"]);
    with_models(
        &f,
        &format!(
            "\n[models]\ndir = {:?}\nload = [\"{MODEL}\"]\n",
            empty.path()
        ),
    );
    let (ok, _, err) = measure(&f.config());
    assert!(!ok);
    assert!(err.contains("cloister models fetch"), "{err}");

    // A plugin allowed a model the host does not load: refused at config.
    let f = Fixture::new(&["echo"]);
    let text = std::fs::read_to_string(f.config()).unwrap().replace(
        "signers = [\"team.pub.pem\"]\n",
        "signers = [\"team.pub.pem\"]\nmodels = [\"all-minilm-l6-v2\"]\n",
    );
    std::fs::write(f.config(), text).unwrap();
    let (ok, _, err) = measure(&f.config());
    assert!(!ok);
    assert!(err.contains("models.load does not load"), "{err}");
}
