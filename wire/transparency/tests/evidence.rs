//! Statements and the offline check of a host's transparency evidence, over a log built in
//! memory with the same tile code the log server uses.

use std::collections::HashMap;

use cloister_measurement::{Entry, EntryKind};
use cloister_tlog::note::{KeyType, NoteSigner};
use cloister_tlog::{tiles, Checkpoint, Freshness, Note, Policy, TlogError};
use cloister_transparency::replay::{self, revocation_list};
use cloister_transparency::{
    verify_transparency, NamedDigest, Statement, TransparencyError, TransparencyEvidence,
};
use sha2::{Digest, Sha256};

const NOW: u64 = 1_800_000_000;

fn hex32(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

fn release(name: &str, version: &str) -> Statement {
    Statement::PluginRelease {
        name: name.into(),
        version: version.into(),
        component_sha256: hex32(&format!("{name}{version}")),
        signer_key_id: hex32("team key"),
        envelope_sha256: hex32(&format!("env{name}{version}")),
    }
}

fn model() -> Statement {
    let files = vec![
        NamedDigest {
            name: "model.onnx".into(),
            sha256: hex32("onnx"),
        },
        NamedDigest {
            name: "tokenizer.json".into(),
            sha256: hex32("tok"),
        },
    ];
    let decoded: Vec<(String, [u8; 32])> = files
        .iter()
        .map(|f| {
            let mut h = [0u8; 32];
            hex::decode_to_slice(&f.sha256, &mut h).expect("hex");
            (f.name.clone(), h)
        })
        .collect();
    let digest = cloister_measurement::model_digest(decoded.iter().map(|(n, h)| (n.as_str(), h)));
    Statement::Model {
        name: "mini".into(),
        version: "1.0.0".into(),
        sha256: hex::encode(digest),
        files,
    }
}

fn image(m: &[u8; 48]) -> Statement {
    Statement::CvmImage {
        launch_measurement: hex::encode(m),
        manifest_sha256: hex32("manifest"),
        inputs: vec![NamedDigest {
            name: "kernel".into(),
            sha256: hex32("kernel"),
        }],
        vcpus: 2,
        vcpu_type: "EPYC-v4".into(),
        vmm: "QEMU".into(),
    }
}

fn measured(s: &Statement) -> Entry {
    match s {
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
        Statement::Model {
            name,
            version,
            sha256,
            ..
        } => Entry {
            kind: EntryKind::Model,
            name: name.clone(),
            version: version.clone(),
            sha256: sha256.clone(),
            signer_key_id: None,
        },
        _ => unreachable!(),
    }
}

/// A log in memory: statements appended in batches, each closed by a revocation list, and
/// a cosigned checkpoint after each batch.
struct MemLog {
    store: HashMap<String, Vec<u8>>,
    statements: Vec<Statement>,
    log: NoteSigner,
    witnesses: Vec<NoteSigner>,
    note: Option<Note>,
}

impl MemLog {
    fn new() -> Self {
        Self {
            store: HashMap::new(),
            statements: Vec::new(),
            log: NoteSigner::generate("log.example/cloister", KeyType::Ed25519).expect("key"),
            witnesses: (0..3)
                .map(|i| {
                    NoteSigner::generate(&format!("w{i}.example"), KeyType::Cosignature)
                        .expect("key")
                })
                .collect(),
            note: None,
        }
    }

    fn policy(&self) -> Policy {
        let mut s = format!("log {}\n", self.log.verifier().to_vkey());
        for (i, w) in self.witnesses.iter().enumerate() {
            s.push_str(&format!("witness w{i} {}\n", w.verifier().to_vkey()));
        }
        s.push_str("group q 2 w0 w1 w2\nquorum q\n");
        Policy::parse(&s).expect("policy")
    }

    fn append(&mut self, batch: Vec<Statement>, cosign_at: u64) {
        let mut all = batch;
        let mut before = self.statements.clone();
        before.extend(all.iter().cloned());
        all.push(revocation_list(&before));
        let entries: Vec<Vec<u8>> = all.iter().map(|s| s.to_entry().expect("entry")).collect();
        let size = self.statements.len() as u64;
        let store = &self.store;
        let (writes, _) = tiles::append(size, &entries, |id| {
            store
                .get(&id.path())
                .cloned()
                .ok_or_else(|| TlogError::Tile("missing".into()))
        })
        .expect("append");
        for w in writes {
            self.store.insert(w.id.path(), w.bytes);
        }
        self.statements.extend(all);
        let leaves: Vec<[u8; 32]> = self
            .statements
            .iter()
            .map(|s| s.leaf_hash().expect("leaf"))
            .collect();
        let c = Checkpoint {
            origin: "log.example/cloister".into(),
            size: leaves.len() as u64,
            root: cloister_tlog::merkle::root_from_leaf_hashes(&leaves),
            extensions: vec![],
        };
        let mut note = Note::unsigned(&c.to_text()).expect("note");
        note.sign(&self.log, 0).expect("sign");
        for w in &self.witnesses[..2] {
            note.sign(w, cosign_at).expect("cosign");
        }
        self.note = Some(note);
    }

    fn fetch(&self) -> impl FnMut(&str) -> Result<Vec<u8>, String> + '_ {
        |p: &str| {
            self.store
                .get(p)
                .cloned()
                .ok_or_else(|| "not found".to_owned())
        }
    }

    fn evidence(&self, wanted: &[Statement]) -> TransparencyEvidence {
        let note = self.note.clone().expect("checkpoint");
        let mut fetch = self.fetch();
        let size = self.statements.len() as u64;
        let last = self
            .statements
            .last()
            .expect("list")
            .to_entry()
            .expect("entry");
        let revocations = replay::build_proof(&mut fetch, &note, size - 1, &last).expect("proof");
        let entries = wanted
            .iter()
            .map(|w| {
                let index = self.statements.iter().position(|s| s == w).expect("logged") as u64;
                replay::build_proof(&mut fetch, &note, index, &w.to_entry().expect("entry"))
                    .expect("proof")
            })
            .collect();
        TransparencyEvidence {
            revocations,
            entries,
        }
    }
}

fn fresh() -> Freshness {
    Freshness {
        now: NOW,
        max_age_secs: Some(3600),
    }
}

#[test]
fn statements_are_canonical_and_validated() {
    for s in [release("summarize", "1.0.0"), model(), image(&[7; 48])] {
        let e = s.to_entry().expect("entry");
        assert_eq!(Statement::from_entry(&e).expect("parses"), s);
        let pretty = serde_json::to_vec_pretty(&s).expect("json");
        assert_eq!(
            Statement::from_entry(&pretty),
            Err(cloister_transparency::StatementError::NotCanonical)
        );
    }
    let mut m = model();
    if let Statement::Model { sha256, .. } = &mut m {
        *sha256 = hex32("other");
    }
    assert!(
        m.to_entry().is_err(),
        "a model digest that is not its files' digest"
    );
    for bad in [
        br#"{"type":"plugin-release","name":"x"}"#.to_vec(),
        br#"{"type":"nonsense"}"#.to_vec(),
        br#"{"covers":0,"revoked":["b","a"],"type":"revocation-list"}"#.to_vec(),
        b"\xff".to_vec(),
    ] {
        assert!(Statement::from_entry(&bad).is_err());
    }
    let mut extra = release("a", "1").to_entry().expect("entry");
    extra.splice(1..1, br#""aaa":1,"#.iter().copied());
    assert!(Statement::from_entry(&extra).is_err(), "unknown member");
}

#[test]
fn evidence_verifies_and_each_gap_is_refused() {
    let launch = [9u8; 48];
    let (a, b, m, img) = (
        release("summarize", "1.0.0"),
        release("writing-help", "1.0.0"),
        model(),
        image(&launch),
    );
    let mut log = MemLog::new();
    log.append(vec![a.clone(), m.clone()], NOW - 100);
    log.append(
        vec![b.clone(), img.clone(), release("unrelated", "2")],
        NOW - 10,
    );
    let policy = log.policy();
    let measured_entries = vec![measured(&m), measured(&a), measured(&b)];
    let ev = log.evidence(&[a.clone(), b.clone(), m.clone(), img.clone()]);
    let v = verify_transparency(&ev, &measured_entries, &launch, &policy, fresh(), None)
        .expect("verifies");
    assert_eq!(v.checkpoint.checkpoint.size, 7);
    assert_eq!(v.measured_indexes, vec![1, 0, 3]);
    assert_eq!(v.image_index, 4);

    // Something measured that is not in the log.
    let mut other = measured(&b);
    other.sha256 = hex32("unlogged build");
    let r = verify_transparency(&ev, &[other], &launch, &policy, fresh(), None);
    assert!(
        matches!(r, Err(TransparencyError::NotInLog { .. })),
        "{r:?}"
    );
    // Another image.
    let r = verify_transparency(&ev, &measured_entries, &[1; 48], &policy, fresh(), None);
    assert!(
        matches!(r, Err(TransparencyError::NotInLog { .. })),
        "{r:?}"
    );
    // Stale cosignatures.
    let later = Freshness {
        now: NOW + 7200,
        max_age_secs: Some(3600),
    };
    let r = verify_transparency(&ev, &measured_entries, &launch, &policy, later, None);
    assert!(
        matches!(r, Err(TransparencyError::Tlog(TlogError::Quorum(_)))),
        "{r:?}"
    );
    // A proof whose entry bytes were swapped for another statement.
    let mut swapped = ev.clone();
    swapped.entries[0].extra = Some(release("summarize", "9.9.9").to_entry().expect("entry"));
    assert!(
        verify_transparency(&swapped, &measured_entries, &launch, &policy, fresh(), None).is_err()
    );
    // A revocation list that is not the last entry: prove the first batch's list instead.
    let mut early = ev.clone();
    let first_list = log.statements[2].to_entry().expect("entry");
    early.revocations = replay::build_proof(
        &mut log.fetch(),
        log.note.as_ref().expect("note"),
        2,
        &first_list,
    )
    .expect("proof");
    let r = verify_transparency(&early, &measured_entries, &launch, &policy, fresh(), None);
    assert!(
        matches!(r, Err(TransparencyError::RevocationListPosition(_))),
        "{r:?}"
    );
    // Proofs against two different checkpoints.
    let older = ev.entries[0].clone();
    let mut log2 = MemLog::new();
    log2.append(vec![a.clone()], NOW);
    let mut mixed = ev.clone();
    mixed.entries[0] = log2.evidence(std::slice::from_ref(&a)).entries[0].clone();
    assert_ne!(mixed.entries[0], older);
    assert!(matches!(
        verify_transparency(&mixed, &measured_entries, &launch, &policy, fresh(), None),
        Err(TransparencyError::MixedCheckpoints)
    ));

    // Revoke b: the next checkpoint's list names it, and evidence from it is refused.
    let subject = hex::encode(b.leaf_hash().expect("leaf"));
    log.append(
        vec![Statement::Revocation {
            subject,
            reason: "key compromise".into(),
        }],
        NOW,
    );
    let old_ev = ev.clone();
    let ev = log.evidence(&[a.clone(), b.clone(), m.clone(), img.clone()]);
    let r = verify_transparency(&ev, &measured_entries, &launch, &policy, fresh(), None);
    assert!(matches!(r, Err(TransparencyError::Revoked { .. })), "{r:?}");
    // A host that keeps its proofs from before the revocation: fine on their own, refused by
    // a client that read the newest revocation list from the log.
    verify_transparency(&old_ev, &measured_entries, &launch, &policy, fresh(), None)
        .expect("old proofs alone");
    let newest = cloister_transparency::newest_revocations(&ev.revocations, &policy, fresh())
        .expect("the newest list");
    assert_eq!(newest.size, 9);
    let r = verify_transparency(
        &old_ev,
        &measured_entries,
        &launch,
        &policy,
        fresh(),
        Some(&newest),
    );
    assert!(
        matches!(r, Err(TransparencyError::Revoked { list_index: 8, .. })),
        "{r:?}"
    );
    // ... while a host with old proofs that runs nothing revoked is still accepted.
    verify_transparency(
        &old_ev,
        &measured_entries[..2],
        &launch,
        &policy,
        fresh(),
        Some(&newest),
    )
    .expect("old proofs, nothing revoked");
    // The newest list must be the last entry of its checkpoint.
    assert!(cloister_transparency::newest_revocations(&ev.entries[0], &policy, fresh()).is_err());
    // A host that is not running b is fine at the same checkpoint.
    verify_transparency(&ev, &measured_entries[..2], &launch, &policy, fresh(), None)
        .expect("a and m");

    // The audit replays the log and accepts it.
    let note = log.note.clone().expect("note");
    let c = Checkpoint::parse(note.text()).expect("checkpoint");
    let mut fetch = log.fetch();
    let first = Checkpoint {
        origin: c.origin.clone(),
        size: 3,
        root: cloister_tlog::merkle::root_from_leaf_hashes(
            &log.statements[..3]
                .iter()
                .map(|s| s.leaf_hash().expect("leaf"))
                .collect::<Vec<_>>(),
        ),
        extensions: vec![],
    };
    let report = replay::audit(&mut fetch, &c, std::slice::from_ref(&first)).expect("audits");
    assert_eq!(report.statements.len(), 9);
    assert_eq!(report.consistent_with, vec![3]);
    // A forked earlier checkpoint is caught.
    let mut forked = first.clone();
    forked.root = [0; 32];
    assert!(matches!(
        replay::audit(&mut fetch, &c, &[forked]),
        Err(replay::ReplayError::Inconsistent { .. })
    ));
}

#[test]
fn audit_catches_altered_tiles_and_broken_rules() {
    let mut log = MemLog::new();
    log.append(vec![release("a", "1"), release("b", "1")], NOW);
    let c = Checkpoint::parse(log.note.as_ref().expect("note").text()).expect("checkpoint");
    // An altered entry bundle: the root no longer matches.
    let mut bad = log.store.clone();
    let bundle = bad.get_mut("tile/entries/000.p/3").expect("bundle");
    let last = bundle.len() - 3;
    bundle[last] ^= 1;
    let mut fetch = |p: &str| bad.get(p).cloned().ok_or_else(|| "not found".to_owned());
    assert!(replay::audit(&mut fetch, &c, &[]).is_err());
    // A truncated tile.
    let mut bad = log.store.clone();
    bad.get_mut("tile/0/000.p/3").expect("tile").truncate(90);
    let mut fetch = |p: &str| bad.get(p).cloned().ok_or_else(|| "not found".to_owned());
    assert!(replay::audit(&mut fetch, &c, &[]).is_err());
    // A revocation list that omits a revocation breaks the rules, even when correctly hashed.
    let a = release("a", "1");
    let a_leaf = a.leaf_hash().expect("leaf");
    let mut rules = replay::Rules::default();
    rules.apply(&a, &a_leaf).expect("a release");
    let rev = Statement::Revocation {
        subject: hex::encode(a_leaf),
        reason: "x".into(),
    };
    rules
        .apply(&rev, &rev.leaf_hash().expect("leaf"))
        .expect("revocation of a");
    assert!(rules.check(&rev).is_err(), "revoked twice");
    assert!(rules
        .check(&Statement::RevocationList {
            covers: 2,
            revoked: vec![]
        })
        .is_err());
    assert!(rules
        .check(&Statement::RevocationList {
            covers: 3,
            revoked: vec![hex::encode(a_leaf)]
        })
        .is_err());
    assert!(rules.check(&rules.revocation_list()).is_ok());
    // A revocation of nothing, or of a revocation.
    assert!(rules
        .check(&Statement::Revocation {
            subject: hex32("nothing"),
            reason: "x".into()
        })
        .is_err());
    let of_rev = Statement::Revocation {
        subject: hex::encode(rev.leaf_hash().expect("leaf")),
        reason: "x".into(),
    };
    assert!(rules.check(&of_rev).is_err());
}

fn gateway_key(id: u8, not_after: u64) -> Statement {
    let mut config = vec![id, 0x00, 0x20];
    config.extend_from_slice(&[0xab; 32]);
    config.extend_from_slice(&[0x00, 0x04, 0x00, 0x01, 0x00, 0x01]);
    Statement::OhttpKeyConfig {
        gateway: "gateway.example".into(),
        key_id: u32::from(id),
        config: hex::encode(config),
        not_before: NOW - 60,
        not_after,
    }
}

fn issuer_key() -> Statement {
    Statement::TokenIssuerKey {
        issuer: "issuer.example".into(),
        token_type: 2,
        token_key_id: hex32("issuer key"),
    }
}

/// Key consistency: a gateway key configuration and an issuer key are accepted only when a
/// witnessed checkpoint proves them and the log has not revoked them.
#[test]
fn published_keys_verify_and_unpublished_or_revoked_ones_do_not() {
    // Validation.
    for s in [gateway_key(1, NOW + 3600), issuer_key()] {
        let e = s.to_entry().expect("entry");
        assert_eq!(Statement::from_entry(&e).expect("parses"), s);
        assert!(s.is_revocable());
    }
    let key = |key_id: u32, config: &str, not_after: u64| Statement::OhttpKeyConfig {
        gateway: "gateway.example".into(),
        key_id,
        config: config.into(),
        not_before: NOW - 60,
        not_after,
    };
    let good_config = match gateway_key(1, NOW + 3600) {
        Statement::OhttpKeyConfig { config, .. } => config,
        _ => unreachable!(),
    };
    let bad = [
        key(2, &good_config, NOW + 3600),
        key(1, &good_config, NOW - 60),
        key(1, &good_config.to_uppercase(), NOW + 3600),
        key(1, "0100", NOW + 3600),
        Statement::TokenIssuerKey {
            issuer: "issuer.example".into(),
            token_type: 1,
            token_key_id: hex32("issuer key"),
        },
        Statement::TokenIssuerKey {
            issuer: "issuer.example".into(),
            token_type: 2,
            token_key_id: "00".into(),
        },
    ];
    for s in bad {
        assert!(s.to_entry().is_err(), "{s:?} must be refused");
    }

    let mut log = MemLog::new();
    let (k1, k2, ik) = (
        gateway_key(1, NOW + 3600),
        gateway_key(2, NOW + 7200),
        issuer_key(),
    );
    log.append(vec![k1.clone(), ik.clone()], NOW - 10);
    let policy = log.policy();
    let ev = log.evidence(&[k1.clone(), ik.clone()]);
    let is = |want: Statement| move |s: &Statement| *s == want;
    let got = cloister_transparency::verify_published(
        &ev.entries[0],
        &ev.revocations,
        &policy,
        fresh(),
        "gateway key 1",
        is(k1.clone()),
    )
    .expect("published");
    assert_eq!(got, k1);
    cloister_transparency::verify_published(
        &ev.entries[1],
        &ev.revocations,
        &policy,
        fresh(),
        "issuer key",
        is(ik.clone()),
    )
    .expect("published");
    // A key nobody published: the proof of another statement does not stand in for it.
    let e = cloister_transparency::verify_published(
        &ev.entries[0],
        &ev.revocations,
        &policy,
        fresh(),
        "gateway key 2",
        is(k2.clone()),
    )
    .unwrap_err();
    assert!(matches!(e, TransparencyError::NotInLog { .. }), "{e:?}");
    // A checkpoint without the witness quorum (a log showing this client alone a key).
    let mut lone = ev.clone();
    let unwitnessed = {
        let mut n = Note::unsigned(ev.entries[0].checkpoint.text()).expect("note");
        n.sign(&log.log, 0).expect("sign");
        n
    };
    lone.entries[0].checkpoint = unwitnessed.clone();
    lone.revocations.checkpoint = unwitnessed;
    let e = cloister_transparency::verify_published(
        &lone.entries[0],
        &lone.revocations,
        &policy,
        fresh(),
        "gateway key 1",
        is(k1.clone()),
    )
    .unwrap_err();
    assert!(matches!(e, TransparencyError::Tlog(_)), "{e:?}");
    // Revoked later: refused against the newer checkpoint.
    log.append(
        vec![
            k2,
            Statement::Revocation {
                subject: hex::encode(k1.leaf_hash().expect("leaf")),
                reason: "key compromised".into(),
            },
        ],
        NOW - 5,
    );
    let ev = log.evidence(std::slice::from_ref(&k1));
    let e = cloister_transparency::verify_published(
        &ev.entries[0],
        &ev.revocations,
        &log.policy(),
        fresh(),
        "gateway key 1",
        is(k1),
    )
    .unwrap_err();
    assert!(matches!(e, TransparencyError::Revoked { .. }), "{e:?}");
}
