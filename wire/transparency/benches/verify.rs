//! What a client pays to check a host's transparency proofs: a typical bundle (the image
//! and 5 artifacts, 2-of-3 witnesses, a log of 10,000 entries), parsed from text and
//! verified — `cargo bench -p cloister-transparency --bench verify`. Goal: ≤ 1 ms.

use std::collections::HashMap;

use cloister_measurement::{Entry, EntryKind};
use cloister_tlog::note::{KeyType, NoteSigner};
use cloister_tlog::{merkle, tiles, Checkpoint, Freshness, Note, Policy, TlogError, TlogProof};
use cloister_transparency::replay::{self, revocation_list};
use cloister_transparency::{verify_transparency, NamedDigest, Statement, TransparencyEvidence};
use criterion::{criterion_group, criterion_main, Criterion};

const NOW: u64 = 1_800_000_000;

fn hex32(i: u64, tag: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("{tag}{i}").as_bytes()))
}

fn release(i: u64) -> Statement {
    Statement::PluginRelease {
        name: format!("plugin-{i}"),
        version: "1.0.0".into(),
        component_sha256: hex32(i, "c"),
        signer_key_id: hex32(0, "k"),
        envelope_sha256: hex32(i, "e"),
    }
}

fn bench(c: &mut Criterion) {
    let log = NoteSigner::generate("log.bench/cloister", KeyType::Ed25519).expect("key");
    let witnesses: Vec<NoteSigner> = (0..3)
        .map(|i| NoteSigner::generate(&format!("w{i}.bench"), KeyType::Cosignature).expect("key"))
        .collect();
    let mut policy_text = format!("log {}\n", log.verifier().to_vkey());
    for (i, w) in witnesses.iter().enumerate() {
        policy_text.push_str(&format!("witness w{i} {}\n", w.verifier().to_vkey()));
    }
    policy_text.push_str("group q 2 w0 w1 w2\nquorum q\n");
    let policy = Policy::parse(&policy_text).expect("policy");

    let launch = [7u8; 48];
    let image = Statement::CvmImage {
        launch_measurement: hex::encode(launch),
        manifest_sha256: hex32(0, "m"),
        inputs: vec![NamedDigest {
            name: "kernel".into(),
            sha256: hex32(0, "kernel"),
        }],
        vcpus: 2,
        vcpu_type: "EPYC-v4".into(),
        vmm: "QEMU".into(),
    };
    let mut statements: Vec<Statement> = (0..9_999).map(release).collect();
    statements[4_242] = image.clone();
    let list = revocation_list(&statements);
    statements.push(list);
    let entries: Vec<Vec<u8>> = statements
        .iter()
        .map(|s| s.to_entry().expect("entry"))
        .collect();
    let mut store: HashMap<String, Vec<u8>> = HashMap::new();
    let (writes, leaves) =
        tiles::append(0, &entries, |_| Err(TlogError::Tile("empty".into()))).expect("append");
    for w in writes {
        store.insert(w.id.path(), w.bytes);
    }
    let cp = Checkpoint {
        origin: "log.bench/cloister".into(),
        size: leaves.len() as u64,
        root: merkle::root_from_leaf_hashes(&leaves),
        extensions: vec![],
    };
    let mut note = Note::unsigned(&cp.to_text()).expect("note");
    note.sign(&log, 0).expect("sign");
    for w in &witnesses[..2] {
        note.sign(w, NOW - 60).expect("cosign");
    }
    let mut fetch = |p: &str| store.get(p).cloned().ok_or_else(|| "missing".to_owned());
    let picked = [10u64, 500, 3_000, 7_777, 9_998, 4_242];
    let proofs: Vec<String> = picked
        .iter()
        .map(|&i| {
            replay::build_proof(&mut fetch, &note, i, &entries[i as usize])
                .expect("proof")
                .to_text()
        })
        .collect();
    let last = cp.size - 1;
    let revocations = replay::build_proof(&mut fetch, &note, last, &entries[last as usize])
        .expect("proof")
        .to_text();
    let measured: Vec<Entry> = picked[..5]
        .iter()
        .map(|&i| match &statements[i as usize] {
            Statement::PluginRelease {
                name,
                version,
                component_sha256,
                signer_key_id,
                ..
            } => Entry {
                kind: EntryKind::Plugin,
                name: name.clone(),
                version: version.clone(),
                sha256: component_sha256.clone(),
                signer_key_id: Some(signer_key_id.clone()),
            },
            _ => unreachable!(),
        })
        .collect();
    let bytes: usize = proofs.iter().map(String::len).sum::<usize>() + revocations.len();
    eprintln!(
        "bundle: 6 proofs + the revocation list, {bytes} bytes of proof text, log of {} entries",
        cp.size
    );

    c.bench_function(
        "verify a bundle's proofs (image + 5 entries, 2 of 3 witnesses, parse included)",
        |b| {
            b.iter(|| {
                let ev = TransparencyEvidence {
                    revocations: TlogProof::parse(revocations.as_bytes()).expect("parse"),
                    entries: proofs
                        .iter()
                        .map(|p| TlogProof::parse(p.as_bytes()).expect("parse"))
                        .collect(),
                };
                verify_transparency(
                    &ev,
                    &measured,
                    &launch,
                    &policy,
                    Freshness {
                        now: NOW,
                        max_age_secs: Some(3600),
                    },
                    None,
                )
                .expect("verifies")
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
