//! The log as a publisher, a client and an auditor see it: real `cloister-log` and
//! `cloister-witness` processes over loopback.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use cloister_tlog::merkle::leaf_hash;
use cloister_tlog::{verify_checkpoint, verify_proof, Checkpoint, Freshness, Note, TlogProof};
use cloister_transparency::replay;
use cloister_transparency::Statement;
use common::TestLog;
use sha2::{Digest, Sha256};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn fresh() -> Freshness {
    Freshness {
        now: now(),
        max_age_secs: Some(600),
    }
}

fn hex32(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

fn release(name: &str, version: &str) -> Statement {
    Statement::PluginRelease {
        name: name.into(),
        version: version.into(),
        component_sha256: hex32(&format!("c{name}{version}")),
        signer_key_id: hex32("team-a key"),
        envelope_sha256: hex32(&format!("e{name}{version}")),
    }
}

fn size_of(log: &TestLog) -> u64 {
    let (status, body) = log.get("checkpoint");
    assert_eq!(status, 200);
    let note = Note::parse(&body).expect("checkpoint note");
    verify_checkpoint(&note, &log.policy, fresh())
        .expect("cosigned checkpoint")
        .checkpoint
        .size
}

#[test]
fn publish_prove_and_refuse_bad_input() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut log = TestLog::new(tmp.path(), "log.test/cloister");
    log.start();
    let a = release("summarize", "1.0.0");
    let entry = a.to_entry().expect("entry");
    let (status, body) = log.add(&entry, &log.token);
    assert_eq!(status, 200, "{body}");
    let proof = TlogProof::parse(body.as_bytes()).expect("tlog-proof");
    assert_eq!(proof.extra.as_deref(), Some(&entry[..]));
    let v =
        verify_proof(&proof, &leaf_hash(&entry), &log.policy, fresh()).expect("verifies offline");
    assert_eq!(proof.index, 0);
    assert_eq!(v.checkpoint.size, 2, "the entry and the revocation list");
    assert!(v.cosigners.len() >= 2);

    // Idempotent: the same entry again is the same index, nothing appended.
    let (status, body) = log.add(&entry, &log.token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(TlogProof::parse(body.as_bytes()).expect("proof").index, 0);
    assert_eq!(size_of(&log), 2);

    // Bad input: each a clear refusal, no change.
    let pretty = serde_json::to_vec_pretty(&release("x", "1")).expect("json");
    let revoke_nothing = Statement::Revocation {
        subject: hex32("nothing"),
        reason: "r".into(),
    };
    let list = Statement::RevocationList {
        covers: 2,
        revoked: vec![],
    };
    for (body, token, want) in [
        (b"not json".to_vec(), log.token.clone(), 400),
        (pretty, log.token.clone(), 400),
        (
            revoke_nothing.to_entry().expect("entry"),
            log.token.clone(),
            400,
        ),
        (list.to_entry().expect("entry"), log.token.clone(), 400),
        (entry.clone(), "wrong-token".to_owned(), 401),
        (vec![b'x'; 70_000], log.token.clone(), 413),
    ] {
        let (status, text) = log.add(&body, &token);
        assert_eq!(status, want, "{text}");
        assert!(!text.is_empty());
    }
    assert_eq!(log.get("nonsense").0, 404);
    assert_eq!(log.get("tile/0/../../log.key").0, 404);
    assert_eq!(size_of(&log), 2);

    // A revocation of the release.
    let rev = Statement::Revocation {
        subject: hex::encode(a.leaf_hash().expect("leaf")),
        reason: "bad build".into(),
    };
    let (status, body) = log.add(&rev.to_entry().expect("entry"), &log.token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(size_of(&log), 4);
    // The same subject again is refused.
    let again = Statement::Revocation {
        subject: hex::encode(a.leaf_hash().expect("leaf")),
        reason: "other words".into(),
    };
    assert_eq!(
        log.add(&again.to_entry().expect("entry"), &log.token).0,
        400
    );

    // The audit replays the log from its served tiles.
    let (_, body) = log.get("checkpoint");
    let c = Checkpoint::parse(Note::parse(&body).expect("note").text()).expect("checkpoint");
    let url = log.url();
    let mut fetch = |p: &str| {
        let (s, b) = common::get(&format!("{url}/{p}"));
        if s == 200 {
            Ok(b)
        } else {
            Err(format!("HTTP {s}"))
        }
    };
    let report = replay::audit(&mut fetch, &c, &[]).expect("audit");
    assert_eq!(report.statements.len(), 4);
    assert!(
        matches!(&report.statements[3], Statement::RevocationList { revoked, .. } if revoked.len() == 1)
    );
}

#[test]
fn without_a_witness_quorum_nothing_is_served_and_a_retry_proves_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut log = TestLog::new(tmp.path(), "log.test/quorum");
    log.start();
    let first = release("a", "1").to_entry().expect("entry");
    assert_eq!(log.add(&first, &log.token).0, 200);
    // Two of three witnesses down: the add is committed, not acknowledged.
    log.witnesses[1].stop();
    log.witnesses[2].stop();
    let entry = release("b", "1").to_entry().expect("entry");
    let (status, body) = log.add(&entry, &log.token);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("committed"), "{body}");
    assert_eq!(size_of(&log), 2, "the served checkpoint did not move");
    // Witnesses back (same keys and state, new ports): restart the log with their URLs.
    let vkey = log.vkey.clone();
    log.witnesses[1].start(&vkey);
    log.witnesses[2].start(&vkey);
    log.write_policy();
    log.proc = None;
    log.start();
    let (status, body) = log.add(&entry, &log.token);
    assert_eq!(status, 200, "{body}");
    let proof = TlogProof::parse(body.as_bytes()).expect("proof");
    assert_eq!(proof.index, 2, "the committed index, not a second copy");
    assert_eq!(size_of(&log), 4);
}

/// The operator keeps the log key and forks the log: the witnesses refuse to cosign the fork,
/// so a client that requires the quorum rejects it.
#[test]
fn a_split_view_is_refused_by_witnesses_and_clients() {
    use cloister_tlog::merkle;
    use cloister_witness::client::{add_checkpoint, AddOutcome, ClientError};
    let tmp = tempfile::tempdir().expect("tmp");
    let mut log = TestLog::new(tmp.path(), "log.test/fork");
    log.start();
    for i in 0..3 {
        assert_eq!(
            log.add(
                &release("p", &format!("{i}")).to_entry().expect("entry"),
                &log.token
            )
            .0,
            200
        );
    }
    let (_, body) = log.get("checkpoint");
    let honest_note = Note::parse(&body).expect("note");
    let honest = verify_checkpoint(&honest_note, &log.policy, fresh())
        .expect("honest")
        .checkpoint;
    // The fork: the operator signs, with the log's own key, a tree that does not extend the
    // witnessed one (another history of the same size + 2).
    let signer =
        cloister_tlog::NoteSigner::parse(&std::fs::read_to_string(&log.key_file).expect("key"))
            .expect("skey");
    let other: Vec<[u8; 32]> = (0..honest.size + 2)
        .map(|i| leaf_hash(format!("evil {i}").as_bytes()))
        .collect();
    let forked = Checkpoint {
        origin: honest.origin.clone(),
        size: other.len() as u64,
        root: merkle::root_from_leaf_hashes(&other),
        extensions: vec![],
    };
    let mut note = Note::unsigned(&forked.to_text()).expect("note");
    note.sign(&signer, 0).expect("sign");
    let mut mem: &[[u8; 32]] = &other;
    let proof = merkle::consistency_proof(&mut mem, honest.size, forked.size)
        .expect("proof of the fork's own history");
    for w in &log.witnesses {
        let r = add_checkpoint(
            &w.url(),
            honest.size,
            &proof,
            &note.to_text(),
            std::time::Duration::from_secs(10),
        );
        assert!(
            matches!(r, Err(ClientError::Unprocessable(_))),
            "{} must refuse the fork: {r:?}",
            w.name
        );
        // Claiming to start from nothing does not work either.
        let r = add_checkpoint(
            &w.url(),
            0,
            &[],
            &note.to_text(),
            std::time::Duration::from_secs(10),
        );
        assert!(
            matches!(r, Ok(AddOutcome::Conflict { witness_size }) if witness_size == honest.size),
            "{r:?}"
        );
    }
    // A client served the forked checkpoint: only the log signed it, and the honest
    // cosignatures do not carry over.
    assert!(verify_checkpoint(&note, &log.policy, fresh()).is_err());
    let mut dressed = note.clone();
    for sig in honest_note.signatures() {
        let _ = dressed.add_signature_line(&sig.to_line());
    }
    assert!(verify_checkpoint(&dressed, &log.policy, fresh()).is_err());
    // The honest log goes on.
    assert_eq!(
        log.add(&release("p", "3").to_entry().expect("entry"), &log.token)
            .0,
        200
    );
}

/// Kill the log (SIGKILL) while publishers are adding, restart it, in a loop: every
/// acknowledged entry is still at its index, and the audit passes.
#[test]
fn killed_mid_append_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut log = TestLog::new(tmp.path(), "log.test/crash");
    let mut acknowledged: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut n = 0usize;
    for round in 0..8 {
        log.start();
        let url = log.url();
        let token = log.token.clone();
        // Four publishers add concurrently; the log is killed after the first acknowledgment
        // of this round, while the others are in flight.
        let (tx, rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        for t in 0..4 {
            let entries: Vec<Vec<u8>> = (0..5)
                .map(|k| {
                    release(&format!("r{round}t{t}"), &format!("{k}-{n}"))
                        .to_entry()
                        .expect("entry")
                })
                .collect();
            n += 1;
            let (url, token, tx) = (url.clone(), token.clone(), tx.clone());
            threads.push(std::thread::spawn(move || {
                for e in entries {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let Ok(mut resp) = agent
                        .post(format!("{url}/add"))
                        .header("Authorization", &format!("Bearer {token}"))
                        .send(&e[..])
                    else {
                        return;
                    };
                    if resp.status().as_u16() == 200 {
                        let body = resp.body_mut().read_to_string().unwrap_or_default();
                        if let Ok(p) = TlogProof::parse(body.as_bytes()) {
                            let _ = tx.send((p.index, e.clone()));
                        }
                    }
                }
            }));
        }
        drop(tx);
        let first = rx
            .recv()
            .expect("at least one add is acknowledged before the kill");
        acknowledged.push(first);
        log.proc = None; // SIGKILL
        for t in threads {
            let _ = t.join();
        }
        acknowledged.extend(rx.try_iter());
    }
    log.start();
    let (_, body) = log.get("checkpoint");
    let note = Note::parse(&body).expect("note");
    let c = verify_checkpoint(&note, &log.policy, fresh())
        .expect("cosigned")
        .checkpoint;
    let url = log.url();
    let mut fetch = |p: &str| {
        let (s, b) = common::get(&format!("{url}/{p}"));
        if s == 200 {
            Ok(b)
        } else {
            Err(format!("HTTP {s}"))
        }
    };
    let report = replay::audit(&mut fetch, &c, &[]).expect("the log audits after 8 kills");
    assert!(acknowledged.len() >= 5);
    for (index, entry) in &acknowledged {
        let at = report
            .statements
            .get(*index as usize)
            .expect("acknowledged index exists");
        assert_eq!(
            at.to_entry().expect("entry"),
            *entry,
            "entry #{index} changed"
        );
    }
}
