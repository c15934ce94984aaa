//! The crate against test material written by others: transparency-dev/merkle's inclusion
//! and consistency cases, the RFC 6962 reference tree, and the C2SP / golang signed-note
//! examples (`../shared/vectors/merkle`, provenance in its README.txt).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use cloister_tlog::merkle::{self, Hash};
use cloister_tlog::{Checkpoint, Note, NoteSigner, VerifierKey};
use serde_json::Value;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/merkle")
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("vector base64")
}

/// A vector hash, or `None` when it is not 32 bytes (such a value can never verify here).
fn hash(v: &Value) -> Option<Hash> {
    b64(v.as_str()?).try_into().ok()
}

fn proof(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(a) => a.iter().map(hash).collect(),
        _ => None,
    }
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("vector dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn cases(kind: &str) -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    json_files(
        &vectors()
            .join("transparency-dev-merkle/testdata")
            .join(kind),
        &mut files,
    );
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
            (p, v)
        })
        .collect()
}

#[test]
fn reference_tree_roots_and_leaf_hashes() {
    let v: Value = serde_json::from_slice(
        &std::fs::read(vectors().join("rfc6962_reference_tree.json")).expect("read"),
    )
    .expect("json");
    let inputs: Vec<Vec<u8>> = v["leaf_inputs_hex"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|h| hex::decode(h.as_str().expect("str")).expect("hex"))
        .collect();
    let leaves: Vec<Hash> = inputs.iter().map(|d| merkle::leaf_hash(d)).collect();
    for (i, want) in v["leaf_hashes_hex"]
        .as_array()
        .expect("leaf hashes")
        .iter()
        .enumerate()
    {
        assert_eq!(
            hex::encode(leaves[i]),
            want.as_str().expect("str"),
            "leaf {i}"
        );
    }
    let roots = v["root_hashes_by_tree_size_0_to_8"]
        .as_array()
        .expect("roots");
    assert_eq!(roots.len(), 9);
    for (size, want) in roots.iter().enumerate() {
        let got = merkle::root_from_leaf_hashes(&leaves[..size]);
        assert_eq!(
            hex::encode(got),
            want.as_str().expect("str"),
            "root of size {size}"
        );
    }
}

#[test]
fn every_inclusion_case_agrees() {
    let cases = cases("inclusion");
    assert!(
        cases.len() > 50,
        "found only {} inclusion cases",
        cases.len()
    );
    for (path, c) in cases {
        let want_err = c["wantErr"].as_bool().expect("wantErr");
        let got = match (hash(&c["leafHash"]), hash(&c["root"]), proof(&c["proof"])) {
            (Some(leaf), Some(root), Some(p)) => merkle::verify_inclusion(
                c["leafIdx"].as_u64().expect("idx"),
                c["treeSize"].as_u64().expect("size"),
                &leaf,
                &p,
                &root,
            ),
            _ => Err(cloister_tlog::TlogError::Proof("not 32-byte hashes".into())),
        };
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
    }
}

/// Cases where this crate's policy deliberately differs from transparency-dev's library;
/// every other case must agree.
const CONSISTENCY_POLICY_DIFFERENCES: &[(&str, &str)] = &[
    // Roots that are not 32-byte SHA-256 hashes never verify here, even when equal.
    (
        "additional/sizes-are-equal-one-and-proof-is-empty.json",
        "non-hash roots",
    ),
];

#[test]
fn every_consistency_case_agrees() {
    let cases = cases("consistency");
    assert!(
        cases.len() >= 98,
        "found only {} consistency cases",
        cases.len()
    );
    let mut differ = Vec::new();
    for (path, c) in cases {
        let want_err = c["wantErr"].as_bool().expect("wantErr");
        let got = match (hash(&c["root1"]), hash(&c["root2"]), proof(&c["proof"])) {
            (Some(r1), Some(r2), Some(p)) => merkle::verify_consistency(
                c["size1"].as_u64().expect("size1"),
                c["size2"].as_u64().expect("size2"),
                &p,
                &r1,
                &r2,
            ),
            _ => Err(cloister_tlog::TlogError::Proof("not 32-byte hashes".into())),
        };
        if got.is_err() != want_err {
            differ.push(path.display().to_string());
        }
    }
    let expected: Vec<&str> = CONSISTENCY_POLICY_DIFFERENCES
        .iter()
        .map(|(f, _)| *f)
        .collect();
    assert_eq!(differ.len(), expected.len(), "{differ:?}");
    for (d, e) in differ.iter().zip(&expected) {
        assert!(d.ends_with(e), "{d} differs, expected only {expected:?}");
    }
}

/// The size1 = 0 policy (see `merkle`'s docs): consistent only from the empty tree's own
/// hash, with an empty proof.
#[test]
fn size_zero_policy() {
    let root2 = merkle::leaf_hash(b"x");
    assert!(merkle::verify_consistency(0, 1, &[], &merkle::EMPTY_ROOT, &root2).is_ok());
    assert!(merkle::verify_consistency(0, 1, &[], &root2, &root2).is_err());
    assert!(merkle::verify_consistency(0, 1, &[root2], &merkle::EMPTY_ROOT, &root2).is_err());
    assert!(
        merkle::verify_consistency(0, 0, &[], &merkle::EMPTY_ROOT, &merkle::EMPTY_ROOT).is_ok()
    );
}

#[test]
fn signed_note_examples() {
    let v: Value = serde_json::from_slice(
        &std::fs::read(vectors().join("signed-note/signed_note_vectors.json")).expect("read"),
    )
    .expect("json");
    let notes = v["signed_notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 5);
    for n in notes {
        let key = VerifierKey::parse(n["vkey"].as_str().expect("vkey")).expect("vkey parses");
        assert_eq!(
            key.to_vkey(),
            n["vkey"].as_str().expect("vkey"),
            "vkey round trip"
        );
        let text = n["note"].as_str().expect("note");
        let note = Note::parse(text.as_bytes()).expect("note parses");
        assert_eq!(note.to_text(), text, "note round trip");
        let expect = n["expect"].as_str().expect("expect");
        let got = note.open(std::slice::from_ref(&key));
        if expect.starts_with("valid") {
            let ok = got.unwrap_or_else(|e| panic!("{expect}: {e}"));
            assert_eq!(ok.len(), 1);
            assert_eq!(ok[0].key, key);
        } else {
            assert!(got.is_err(), "{expect}");
        }
        if let Some(skey) = n.get("signer_skey").and_then(Value::as_str) {
            let signer = NoteSigner::parse(skey).expect("skey parses");
            assert_eq!(signer.verifier(), &key);
            assert_eq!(signer.to_skey().as_str(), skey);
            // Ed25519 is deterministic: signing the text reproduces the published line.
            let line = signer.sign_line(note.text(), 0).expect("sign");
            assert_eq!(line, note.signatures()[0].to_line());
        }
    }
}

#[test]
fn checkpoint_examples() {
    let v: Value = serde_json::from_slice(
        &std::fs::read(vectors().join("signed-note/signed_note_vectors.json")).expect("read"),
    )
    .expect("json");
    let examples = v["checkpoint_format_examples"]
        .as_array()
        .expect("examples");
    let go = &examples[0];
    let body = go["checkpoint_body"].as_str().expect("body");
    let c = Checkpoint::parse(body).expect("parses");
    assert_eq!(c.origin, go["origin"].as_str().expect("origin"));
    assert_eq!(c.size, go["tree_size"].as_u64().expect("size"));
    assert_eq!(c.root, merkle::leaf_hash(b"hello world"));
    assert_eq!(c.to_text(), body);
    for bad in go["bad_examples_must_fail"].as_array().expect("bad") {
        let bad = bad.as_str().expect("str");
        // The first bad example has another origin: it parses, and fails only as a
        // checkpoint of the go.sum log.
        if let Ok(c) = Checkpoint::parse(bad) {
            assert_ne!(c.origin, go["origin"].as_str().expect("origin"));
        }
    }
    // The cosignature example: parses, and the cosigned message is what the spec prints.
    let cos = &examples[1];
    let note = Note::parse(cos["note"].as_str().expect("note").as_bytes()).expect("parses");
    assert_eq!(note.signatures().len(), 2);
    let w = &note.signatures()[1];
    assert_eq!(w.signature.len(), 8 + 64);
    let t = u64::from_be_bytes(w.signature[..8].try_into().expect("8"));
    assert_eq!(
        cloister_tlog::note::cosigned_message(note.text(), t),
        cos["cosigned_message_example"].as_str().expect("msg")
    );
}
