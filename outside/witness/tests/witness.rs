//! End to end: the `cloister-witness` binary as a separate process, over HTTP on loopback.
//! Every refusal is followed by a check that the witness's state did not move.

mod common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{SystemTime, UNIX_EPOCH};

use cloister_tlog::merkle::EMPTY_ROOT;
use cloister_tlog::{KeyType, Note, VerifierKey};
use cloister_witness::client::{attach_cosignatures, AddOutcome, ClientError, WitnessClient};
use cloister_witness::state::origin_hash;
use common::*;

const ORIGIN: &str = "log.example/cloister";

/// A witness trusting one log, in a temporary directory.
struct Setup {
    dir: tempfile::TempDir,
    log: TestLog,
    key: std::path::PathBuf,
    wkey: VerifierKey,
    w: WitnessProc,
}

impl Setup {
    fn new(leaves: usize) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = TestLog::new(ORIGIN, leaves);
        let (key, wkey) = witness_key(dir.path(), "w.key", "witness.example/w1");
        let w = WitnessProc::start(&serve_args(&key, &state(dir.path()), &[log.vkey()]));
        Setup {
            dir,
            log,
            key,
            wkey,
            w,
        }
    }

    fn client(&self) -> WitnessClient {
        WitnessClient::new(&self.w.url, TIMEOUT)
    }

    fn add_url(&self) -> String {
        format!("{}/add-checkpoint", self.w.url)
    }

    fn checkpoint_url(&self, origin: &str) -> String {
        format!("{}/{}/checkpoint", self.w.url, origin_hash(origin))
    }

    /// Cosigns the log's checkpoint of `new` leaves from `old`, expecting 200; returns the
    /// cosignature lines after checking they verify.
    fn cosign(&self, old: usize, new: usize) -> Vec<String> {
        let note = self.log.checkpoint(new);
        match self
            .client()
            .add_checkpoint(old as u64, &self.log.proof(old, new), &note)
        {
            Ok(AddOutcome::Cosigned(lines)) => {
                let (_, verified) =
                    attach_cosignatures(&note, &lines, std::slice::from_ref(&self.wkey))
                        .expect("the cosignature verifies");
                assert_eq!(verified.len(), 1);
                lines
            }
            other => panic!("{old} -> {new}: expected a cosignature, got {other:?}"),
        }
    }

    /// Posts a raw body; returns the answer.
    fn post(&self, body: &str) -> Answer {
        post(&self.add_url(), body.as_bytes())
    }

    /// Checks the witness still holds `size` (and, if cosigned, serves that checkpoint):
    /// a request whose old size is not `size` gets 409 with `size`, and changes nothing.
    fn assert_holds(&self, size: usize) {
        let probe = size + 1;
        let probe_log = TestLog {
            origin: self.log.origin.clone(),
            signer: cloister_tlog::NoteSigner::parse(&self.log.signer.to_skey()).expect("key"),
            leaves: {
                let mut l = self.log.leaves.clone();
                while l.len() < probe {
                    l.push([7u8; 32]);
                }
                l
            },
        };
        let a = self.post(&body(probe as u64, &[], &probe_log.checkpoint(probe)));
        assert_eq!(a.status, 409, "{a:?}");
        assert_eq!(a.body, format!("{size}\n"));
        let got = get(&self.checkpoint_url(ORIGIN));
        if size == 0 {
            assert_eq!(got.status, 404, "{got:?}");
        } else {
            assert_eq!(got.status, 200, "{got:?}");
            let cp = cloister_tlog::Checkpoint::parse(
                Note::parse(got.body.as_bytes()).expect("note").text(),
            )
            .expect("checkpoint");
            assert_eq!(cp.size, size as u64);
            assert_eq!(cp.root, self.log.root(size));
        }
    }
}

fn state(dir: &Path) -> std::path::PathBuf {
    dir.join("state")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn cosigns_a_log_as_it_grows_and_serves_the_latest_checkpoint() {
    let s = Setup::new(20);
    assert_eq!(get(&s.checkpoint_url(ORIGIN)).status, 404);
    assert_eq!(s.client().get_checkpoint(ORIGIN).expect("get"), None);

    let before = now();
    let lines = s.cosign(0, 5);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("\u{2014} witness.example/w1 "));
    let (_, verified) =
        attach_cosignatures(&s.log.checkpoint(5), &lines, std::slice::from_ref(&s.wkey))
            .expect("verifies");
    let t = verified[0].timestamp.expect("a cosignature has a time");
    assert!(t >= before && t <= now(), "{t}");

    // The raw answer's framing.
    let a = s.post(&body(5, &s.log.proof(5, 8), &s.log.checkpoint(8)));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.content_type, "text/plain; charset=utf-8");
    assert!(a.body.starts_with('\u{2014}') && a.body.ends_with('\n'));

    s.cosign(8, 8); // same size, same root: cosigned again
    s.cosign(8, 13);
    s.cosign(13, 20);

    // GET: the log's signature and the witness's cosignature, both verifying.
    let got = get(&s.checkpoint_url(ORIGIN));
    assert_eq!(got.status, 200);
    assert_eq!(got.content_type, "text/plain; charset=utf-8");
    let note = Note::parse(got.body.as_bytes()).expect("note");
    assert_eq!(
        note.text(),
        Note::parse(s.log.checkpoint(20).as_bytes())
            .expect("n")
            .text()
    );
    let log_key = s.log.signer.verifier().clone();
    let v = note
        .verify(&[log_key.clone(), s.wkey.clone()])
        .expect("verifies");
    assert_eq!(v.len(), 2);
    assert!(v.iter().any(|v| v.key == log_key && v.timestamp.is_none()));
    assert!(v.iter().any(|v| v.key == s.wkey && v.timestamp.is_some()));
    assert_eq!(
        s.client()
            .get_checkpoint(ORIGIN)
            .expect("get")
            .map(|n| n.to_text()),
        Some(got.body.clone())
    );
    s.assert_holds(20);
}

#[test]
fn two_and_three_witnesses_cosign_the_same_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = TestLog::new(ORIGIN, 12);
    let logs_file = dir.path().join("logs");
    std::fs::write(&logs_file, format!("# the logs\n{}\n", log.vkey())).expect("logs file");
    let mut witnesses = Vec::new();
    for i in 1..=3 {
        let (key, wkey) = witness_key(
            dir.path(),
            &format!("w{i}.key"),
            &format!("witness.example/w{i}"),
        );
        let mut args = serve_args(&key, &dir.path().join(format!("state{i}")), &[]);
        args.extend(["--logs-file".into(), logs_file.display().to_string()]);
        args.extend(["--prefix".into(), "/tlog".into()]);
        witnesses.push((WitnessProc::start(&args), wkey));
    }
    let keys: Vec<VerifierKey> = witnesses.iter().map(|(_, k)| k.clone()).collect();

    let mut cosigned = Note::parse(log.checkpoint(7).as_bytes()).expect("note");
    for (w, _) in &witnesses {
        let client = WitnessClient::new(&format!("{}/tlog", w.url), TIMEOUT);
        let AddOutcome::Cosigned(lines) = client
            .add_checkpoint(0, &[], &log.checkpoint(7))
            .expect("add")
        else {
            panic!("not cosigned");
        };
        for l in &lines {
            cosigned.add_signature_line(l).expect("line");
        }
    }
    let v = cosigned.verify(&keys).expect("three cosignatures verify");
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|v| v.timestamp.is_some()));
    // A key of the same public key under the 0x01 type does not match a cosignature.
    let as_log_type: Vec<VerifierKey> =
        keys.iter().map(|k| k.with_kind(KeyType::Ed25519)).collect();
    assert!(cosigned.verify(&as_log_type).expect("ignored").is_empty());

    // Two of them move on to 12; the third is left behind at 7 and says so.
    for (w, _) in &witnesses[..2] {
        let client = WitnessClient::new(&format!("{}/tlog", w.url), TIMEOUT);
        assert!(matches!(
            client.add_checkpoint(7, &log.proof(7, 12), &log.checkpoint(12)),
            Ok(AddOutcome::Cosigned(_))
        ));
    }
    let third = WitnessClient::new(&format!("{}/tlog", witnesses[2].0.url), TIMEOUT);
    assert!(matches!(
        third.add_checkpoint(12, &[], &log.checkpoint(12)),
        Ok(AddOutcome::Conflict { witness_size: 7 })
    ));
    // Without the prefix, nothing is there.
    assert_eq!(
        post(&format!("{}/add-checkpoint", witnesses[0].0.url), b"x").status,
        404
    );
}

#[test]
fn unknown_origin_is_404_and_changes_nothing() {
    let s = Setup::new(8);
    let other = TestLog::new("other.example/log", 8);
    let a = s.post(&body(0, &[], &other.checkpoint(4)));
    assert_eq!(a.status, 404, "{a:?}");
    assert!(
        a.body.contains("unknown log origin \"other.example/log\""),
        "{}",
        a.body
    );
    assert!(matches!(
        s.client().add_checkpoint(0, &[], &other.checkpoint(4)),
        Err(ClientError::NotFound(_))
    ));
    assert_eq!(get(&s.checkpoint_url("other.example/log")).status, 404);
    s.assert_holds(0);
    s.cosign(0, 4);
}

#[test]
fn checkpoints_not_signed_by_a_trusted_key_are_403() {
    let s = Setup::new(8);
    s.cosign(0, 3);

    // Same origin, a key the witness does not know: no trusted signature.
    let impostor = s.log.impostor();
    let a = s.post(&body(3, &impostor.proof(3, 6), &impostor.checkpoint(6)));
    assert_eq!(a.status, 403, "{a:?}");
    assert!(
        a.body.contains("no signature from a known key"),
        "{}",
        a.body
    );

    // The trusted key's line, with its signature damaged (key id intact).
    let good = s.log.checkpoint(6);
    let bad = tamper_signature(&good);
    let a = s.post(&body(3, &s.log.proof(3, 6), &bad));
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("does not verify"), "{}", a.body);

    // A trusted signature over another text (the size changed after signing).
    let forged = good.replacen("\n6\n", "\n7\n", 1);
    let a = s.post(&body(3, &s.log.proof(3, 7), &forged));
    assert_eq!(a.status, 403, "{a:?}");

    // A damaged trusted signature is not rescued by a good one from an unknown key...
    let mut both = Note::parse(bad.as_bytes()).expect("note");
    both.sign(&impostor.signer, 0).expect("sign");
    let a = s.post(&body(3, &s.log.proof(3, 6), &both.to_text()));
    assert_eq!(a.status, 403, "{a:?}");
    assert!(matches!(
        s.client()
            .add_checkpoint(3, &s.log.proof(3, 6), &both.to_text()),
        Err(ClientError::Forbidden(_))
    ));
    s.assert_holds(3);

    // ...while an unknown key's line next to a good one is ignored, and not stored.
    let mut extra = Note::parse(good.as_bytes()).expect("note");
    extra.sign(&impostor.signer, 0).expect("sign");
    let a = s.post(&body(3, &s.log.proof(3, 6), &extra.to_text()));
    assert_eq!(a.status, 200, "{a:?}");
    let stored = Note::parse(get(&s.checkpoint_url(ORIGIN)).body.as_bytes()).expect("note");
    assert_eq!(
        stored.signatures().len(),
        2,
        "the log's and the witness's only"
    );
    assert!(stored
        .verify(&[impostor.signer.verifier().clone()])
        .expect("v")
        .is_empty());
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Flips a bit of the signature (not the key id) of the note's first signature line.
fn tamper_signature(note: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (text, sigs) = note.split_at(note.rfind("\n\n").expect("blank") + 2);
    let line = sigs.lines().next().expect("line");
    let (prefix, sig) = line.rsplit_once(' ').expect("sig");
    let mut raw = b64.decode(sig).expect("base64");
    raw[10] ^= 1;
    format!("{text}{prefix} {}\n", b64.encode(raw))
}

#[test]
fn old_size_above_the_checkpoint_size_is_400() {
    let s = Setup::new(8);
    s.cosign(0, 4);
    let a = s.post(&body(6, &[], &s.log.checkpoint(5)));
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.body
            .contains("old size 6 is larger than the checkpoint size 5"),
        "{}",
        a.body
    );
    assert!(matches!(
        s.client().add_checkpoint(6, &[], &s.log.checkpoint(5)),
        Err(ClientError::BadRequest(_))
    ));
    s.assert_holds(4);
    s.cosign(4, 5);
}

#[test]
fn malformed_bodies_are_400_and_change_nothing() {
    let s = Setup::new(8);
    s.cosign(0, 2);
    let note = s.log.checkpoint(6);
    let proof = s.log.proof(2, 6);
    let lines: String = proof
        .iter()
        .map(|h| format!("{}\n", cloister_tlog::checkpoint::hash_b64(h)))
        .collect();
    let h = cloister_tlog::checkpoint::hash_b64(&[1u8; 32]);
    let cases: Vec<(&str, String)> = vec![
        ("empty body", String::new()),
        ("no old line", format!("{lines}\n{note}")),
        (
            "old with a leading zero",
            format!("old 02\n{lines}\n{note}"),
        ),
        ("old not a number", format!("old two\n{lines}\n{note}")),
        ("old with a sign", format!("old +2\n{lines}\n{note}")),
        ("two spaces", format!("old  2\n{lines}\n{note}")),
        ("CRLF", format!("old 2\r\n{lines}\n{note}")),
        (
            "no empty line",
            format!("old 2\n{lines}{note}").replace("\n\n", "\n"),
        ),
        (
            "64 proof lines",
            format!("old 2\n{}\n{note}", format!("{h}\n").repeat(64)),
        ),
        ("bad base64", format!("old 2\n{lines}%%%%\n\n{note}")),
        (
            "a 31-byte hash",
            format!("old 2\n{lines}{}\n\n{note}", b64(&[1u8; 31])),
        ),
        (
            "a 33-byte hash",
            format!("old 2\n{lines}{}\n\n{note}", b64(&[1u8; 33])),
        ),
        (
            "non-canonical base64",
            format!("old 2\n{}\n\n{note}", {
                let mut l = b64(&[1u8; 32]);
                l.replace_range(42..43, "R"); // trailing bits set
                l
            }),
        ),
        ("not a note", format!("old 2\n{lines}\nhello\n")),
        (
            "a note without signatures",
            format!(
                "old 2\n{lines}\n{}",
                &note[..note.rfind("\n\n").expect("blank") + 2]
            ),
        ),
        ("a note that is not a checkpoint", {
            let mut n = Note::unsigned(&format!("{ORIGIN}\nsix\n{h}\n")).expect("note");
            n.sign(&s.log.signer, 0).expect("sign");
            format!("old 2\n{lines}\n{}", n.to_text())
        }),
    ];
    for (what, b) in &cases {
        let a = s.post(b);
        assert_eq!(a.status, 400, "{what}: {a:?}");
        assert!(
            a.body.starts_with("malformed request"),
            "{what}: {}",
            a.body
        );
        assert_eq!(a.content_type, "text/plain; charset=utf-8");
    }
    // Bytes that are not UTF-8 at all.
    let mut bytes = format!("old 2\n{lines}\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n\n\xe2\x80\x94 x y\n");
    assert_eq!(post(&s.add_url(), &bytes).status, 400);
    // An error never echoes the input at length.
    let long = format!(
        "old 2\n\n{}\n0\n{h}\n\n\u{2014} x AAAAAAAA\n",
        "x".repeat(5000)
    );
    let a = s.post(&long);
    assert!(a.body.len() < 1000, "{} bytes", a.body.len());

    s.assert_holds(2);
    s.cosign(2, 6);
}

#[test]
fn a_stale_old_size_is_409_with_the_witness_size() {
    let s = Setup::new(16);
    s.cosign(0, 5);
    s.cosign(5, 9);
    // The log believes the witness is at 5 (it is at 9), and at 0.
    for old in [5usize, 0, 7] {
        let proof = if old == 0 {
            vec![]
        } else {
            s.log.proof(old, 12)
        };
        let a = s.post(&body(old as u64, &proof, &s.log.checkpoint(12)));
        assert_eq!(a.status, 409, "{a:?}");
        assert_eq!(a.content_type, "text/x.tlog.size");
        assert_eq!(a.body, "9\n");
    }
    // An old checkpoint, older than the state, with a valid proof: still 409.
    let a = s.post(&body(2, &s.log.proof(2, 5), &s.log.checkpoint(5)));
    assert_eq!((a.status, a.body.as_str()), (409, "9\n"));
    // The client reports the conflict, and the retry from 9 works.
    assert!(matches!(
        s.client()
            .add_checkpoint(5, &s.log.proof(5, 12), &s.log.checkpoint(12)),
        Ok(AddOutcome::Conflict { witness_size: 9 })
    ));
    s.assert_holds(9);
    s.cosign(9, 12);
}

#[test]
fn a_size_zero_checkpoint_needs_the_empty_root() {
    let s = Setup::new(4);
    let a = s.post(&body(0, &[], &s.log.sign(0, [9u8; 32])));
    assert_eq!(a.status, 422, "{a:?}");
    assert!(a.body.contains("empty tree"), "{}", a.body);
    s.assert_holds(0);
    // The empty tree itself is cosigned (and then held, at size 0).
    let a = s.post(&body(0, &[], &s.log.sign(0, EMPTY_ROOT)));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(get(&s.checkpoint_url(ORIGIN)).status, 200);
    s.cosign(0, 4);
    // Checked before the old size: a witness that holds 4 still calls it unprocessable.
    let a = s.post(&body(0, &[], &s.log.sign(0, [9u8; 32])));
    assert_eq!(a.status, 422, "{a:?}");
    assert!(a.body.contains("empty tree"), "{}", a.body);
    s.assert_holds(4);
}

#[test]
fn a_proof_from_old_size_zero_must_be_empty() {
    let s = Setup::new(8);
    let a = s.post(&body(0, &[s.log.leaves[0]], &s.log.checkpoint(5)));
    assert_eq!(a.status, 422, "{a:?}");
    assert!(a.body.contains("must be empty"), "{}", a.body);
    assert!(matches!(
        s.client()
            .add_checkpoint(0, &[s.log.leaves[0]], &s.log.checkpoint(5)),
        Err(ClientError::Unprocessable(_))
    ));
    s.assert_holds(0);
    s.cosign(0, 5);
    // Checked before the old size: a witness that holds 5 still calls it unprocessable.
    let a = s.post(&body(0, &s.log.proof(5, 8), &s.log.checkpoint(8)));
    assert_eq!(a.status, 422, "{a:?}");
    assert!(a.body.contains("must be empty"), "{}", a.body);
    s.assert_holds(5);
}

#[test]
fn a_consistency_proof_that_does_not_verify_is_422() {
    let s = Setup::new(16);
    s.cosign(0, 6);
    let mut proof = s.log.proof(6, 11);
    proof[1][0] ^= 1;
    let cases = vec![
        ("a damaged proof", proof),
        ("no proof", vec![]),
        ("a proof of other sizes", s.log.proof(5, 11)),
        ("a proof with a hash too many", {
            let mut p = s.log.proof(6, 11);
            p.push([0u8; 32]);
            p
        }),
    ];
    for (what, p) in cases {
        let a = s.post(&body(6, &p, &s.log.checkpoint(11)));
        assert_eq!(a.status, 422, "{what}: {a:?}");
        assert!(a.body.contains("not consistent"), "{what}: {}", a.body);
    }
    s.assert_holds(6);
    s.cosign(6, 11);
}

#[test]
fn forks_are_refused() {
    let s = Setup::new(16);
    s.cosign(0, 8);

    // Same size, another root: a fork at the size the witness holds.
    let fork = s.log.fork(5, 16, "fork");
    let a = s.post(&body(8, &[], &fork.checkpoint(8)));
    assert_eq!(a.status, 422, "{a:?}");
    assert!(a.body.contains("fork"), "{}", a.body);

    // A bigger tree of the fork, with the fork's own (valid for the fork) proof from 8: it
    // does not lead to the root the witness holds.
    let a = s.post(&body(8, &fork.proof(8, 13), &fork.checkpoint(13)));
    assert_eq!(a.status, 422, "{a:?}");
    assert!(a.body.contains("not consistent"), "{}", a.body);

    // A fork after the witness's size that rewrites nothing the witness saw is a
    // legitimate extension: only one of two can be cosigned, the other is then 409.
    let later = s.log.fork(8, 16, "later");
    s.assert_holds(8);
    let a = s.post(&body(8, &later.proof(8, 10), &later.checkpoint(10)));
    assert_eq!(a.status, 200, "{a:?}");
    let a = s.post(&body(8, &s.log.proof(8, 10), &s.log.checkpoint(10)));
    assert_eq!((a.status, a.body.as_str()), (409, "10\n"));
    // And from 10, the original log is now the fork.
    let a = s.post(&body(10, &s.log.proof(10, 12), &s.log.checkpoint(12)));
    assert_eq!(a.status, 422, "{a:?}");
}

#[test]
fn unknown_paths_wrong_methods_and_big_bodies() {
    let s = Setup::new(4);
    s.cosign(0, 2);
    let u = &s.w.url;
    assert_eq!(get(&format!("{u}/")).status, 404);
    assert_eq!(post(&format!("{u}/add-checkpoint/"), b"").status, 404);
    assert_eq!(
        get(&format!(
            "{u}/{}/checkpoint",
            origin_hash(ORIGIN).to_uppercase()
        ))
        .status,
        404
    );
    assert_eq!(
        get(&format!("{u}/{}/checkpoint", origin_hash("nobody"))).status,
        404
    );
    assert_eq!(get(&format!("{u}/{}", origin_hash(ORIGIN))).status, 404);

    let a = get(&s.add_url());
    assert_eq!(a.status, 405, "{a:?}");
    assert_eq!(put(&s.add_url(), b"x").status, 405);
    assert_eq!(post(&s.checkpoint_url(ORIGIN), b"").status, 405);
    assert_eq!(delete(&s.checkpoint_url(ORIGIN)).status, 405);

    // A declared length over 64 KiB is refused before the body is read...
    let r = raw(
        &s.w.addr,
        b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 70000\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    // ...and so is a chunked body that grows past it.
    let mut req =
        b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..5 {
        req.extend_from_slice(b"4000\r\n");
        req.extend_from_slice(&[b'a'; 0x4000]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = raw(&s.w.addr, &req);
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    s.assert_holds(2);
    s.cosign(2, 4);
}

#[test]
fn a_body_that_does_not_arrive_is_408() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = TestLog::new(ORIGIN, 4);
    let (key, _) = witness_key(dir.path(), "w.key", "witness.example/w1");
    let mut args = serve_args(&key, &state(dir.path()), &[log.vkey()]);
    args.extend(["--request-timeout-secs".into(), "1".into()]);
    let w = WitnessProc::start(&args);
    let r = raw(
        &w.addr,
        b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\nConnection: close\r\n\r\nold 0\n",
    );
    assert!(r.starts_with("HTTP/1.1 408"), "{r}");
    // A head that never ends: the connection is closed.
    let r = raw(&w.addr, b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\n");
    assert!(!r.contains("200"), "{r}");
}

#[test]
fn a_restarted_witness_continues_from_its_state() {
    let s = Setup::new(20);
    s.cosign(0, 7);
    s.cosign(7, 11);
    let served = get(&s.checkpoint_url(ORIGIN)).body;
    let Setup {
        dir,
        log,
        key,
        wkey,
        w,
    } = s;
    w.kill(); // as a crash would

    let w = WitnessProc::start(&serve_args(&key, &state(dir.path()), &[log.vkey()]));
    let s = Setup {
        dir,
        log,
        key,
        wkey,
        w,
    };
    assert_eq!(get(&s.checkpoint_url(ORIGIN)).body, served);
    s.assert_holds(11);
    let a = s.post(&body(0, &[], &s.log.checkpoint(11)));
    assert_eq!((a.status, a.body.as_str()), (409, "11\n"));
    // A fork of what it cosigned before the restart is still refused.
    let fork = s.log.fork(9, 20, "fork");
    assert_eq!(s.post(&body(11, &[], &fork.checkpoint(11))).status, 422);
    s.cosign(11, 15);

    // A clean stop (SIGTERM) and another start.
    let Setup {
        dir,
        log,
        key,
        wkey,
        w,
    } = s;
    assert!(w.terminate().success());
    let w = WitnessProc::start(&serve_args(&key, &state(dir.path()), &[log.vkey()]));
    let s = Setup {
        dir,
        log,
        key,
        wkey,
        w,
    };
    s.assert_holds(15);
    s.cosign(15, 20);
}

#[test]
fn concurrent_conflicting_checkpoints_one_wins() {
    const N: usize = 8;
    let s = Setup::new(40);
    s.cosign(0, 10);
    // N different checkpoints, all from old size 10: extensions of several sizes, and
    // forks of the same sizes beyond 10.
    let mut submissions = Vec::new();
    for i in 0..N {
        let log = if i % 2 == 0 {
            TestLog {
                origin: s.log.origin.clone(),
                signer: cloister_tlog::NoteSigner::parse(&s.log.signer.to_skey()).expect("key"),
                leaves: s.log.leaves.clone(),
            }
        } else {
            s.log.fork(10, 40, &format!("fork {i}"))
        };
        let size = 11 + i;
        submissions.push((
            body(10, &log.proof(10, size), &log.checkpoint(size)),
            log.checkpoint(size),
        ));
    }
    let barrier = Arc::new(Barrier::new(N));
    let url = s.add_url();
    let handles: Vec<_> = submissions
        .into_iter()
        .map(|(b, note)| {
            let barrier = Arc::clone(&barrier);
            let url = url.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (post(&url, b.as_bytes()), note)
            })
        })
        .collect();
    let results: Vec<(Answer, String)> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let winners: Vec<&(Answer, String)> = results.iter().filter(|(a, _)| a.status == 200).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner_note = Note::parse(winners[0].1.as_bytes()).expect("note");
    let winner_size = cloister_tlog::Checkpoint::parse(winner_note.text())
        .expect("cp")
        .size;
    for (a, _) in &results {
        if a.status != 200 {
            assert_eq!(a.status, 409, "{a:?}");
            assert_eq!(a.body, format!("{winner_size}\n"));
        }
    }
    // The state is the winner's, in memory and on disk.
    let served = Note::parse(get(&s.checkpoint_url(ORIGIN)).body.as_bytes()).expect("note");
    assert_eq!(served.text(), winner_note.text());
    let file = state(s.dir.path()).join(format!("{}.checkpoint", origin_hash(ORIGIN)));
    let on_disk = std::fs::read_to_string(&file).expect("state file");
    assert_eq!(Note::parse(on_disk.as_bytes()).expect("note"), served);
    let v = served
        .verify(std::slice::from_ref(&s.wkey))
        .expect("verifies");
    assert_eq!(v.len(), 1);
}

#[test]
fn a_corrupt_state_file_stops_the_start_and_is_named() {
    let s = Setup::new(8);
    s.cosign(0, 4);
    let Setup {
        dir, log, key, w, ..
    } = s;
    w.kill();
    let file = state(dir.path()).join(format!("{}.checkpoint", origin_hash(ORIGIN)));
    let good = std::fs::read_to_string(&file).expect("state");
    let args = serve_args(&key, &state(dir.path()), &[log.vkey()]);

    let broken: Vec<(&str, String)> = vec![
        ("garbage", "garbage\n".into()),
        ("empty", String::new()),
        ("truncated", good[..good.len() - 10].to_owned()),
        ("another size", good.replacen("\n4\n", "\n5\n", 1)),
        ("no witness cosignature", {
            // The cosignature is the last line.
            let cut = good[..good.len() - 1].rfind('\n').expect("line") + 1;
            good[..cut].to_owned()
        }),
    ];
    for (what, content) in broken {
        std::fs::write(&file, &content).expect("write");
        let err = match WitnessProc::try_start(&args) {
            Ok(_) => panic!("{what}: the witness started on a corrupt state"),
            Err(e) => e,
        };
        assert!(err.contains("corrupt state file"), "{what}: {err}");
        assert!(err.contains(&file.display().to_string()), "{what}: {err}");
        assert!(!err.contains("exit status: 0"), "{what}: {err}");
        // Never reset: the file is as it was.
        assert_eq!(
            std::fs::read_to_string(&file).expect("still there"),
            content
        );
    }

    // Another witness key on this state directory: refused too.
    let (other_key, _) = witness_key(dir.path(), "w2.key", "witness.example/w2");
    std::fs::write(&file, &good).expect("restore");
    let err = WitnessProc::try_start(&serve_args(&other_key, &state(dir.path()), &[log.vkey()]))
        .err()
        .expect("refused");
    assert!(err.contains("belongs to one witness key"), "{err}");

    // Restored: it starts and holds 4.
    let w = WitnessProc::start(&args);
    let a = post(
        &format!("{}/add-checkpoint", w.url),
        body(0, &[], &log.checkpoint(4)).as_bytes(),
    );
    assert_eq!((a.status, a.body.as_str()), (409, "4\n"));
}

#[test]
fn one_state_directory_serves_one_witness_process() {
    let s = Setup::new(4);
    let err = WitnessProc::try_start(&serve_args(&s.key, &state(s.dir.path()), &[s.log.vkey()]))
        .err()
        .expect("second process refused");
    assert!(err.contains("in use by another witness process"), "{err}");
    s.cosign(0, 4);
}

#[test]
fn bad_configurations_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = TestLog::new(ORIGIN, 1);
    let (key, _) = witness_key(dir.path(), "w.key", "witness.example/w1");
    let st = state(dir.path());
    // No log.
    let err = WitnessProc::try_start(&serve_args(&key, &st, &[]))
        .err()
        .expect("refused");
    assert!(err.contains("no log key"), "{err}");
    // A log key that is not a vkey.
    let err = WitnessProc::try_start(&serve_args(&key, &st, &["nonsense".into()]))
        .err()
        .expect("refused");
    assert!(err.contains("log key"), "{err}");
    // A cosignature key given as a log key.
    let err = WitnessProc::try_start(&serve_args(
        &key,
        &st,
        &[log
            .signer
            .verifier()
            .with_kind(KeyType::Cosignature)
            .to_vkey()],
    ))
    .err()
    .expect("refused");
    assert!(err.contains("not an Ed25519 note key"), "{err}");
    // A log key as the witness key.
    let log_key_file = dir.path().join("log.key");
    std::fs::write(&log_key_file, log.signer.to_skey().as_str()).expect("write");
    let err = WitnessProc::try_start(&serve_args(&log_key_file, &st, &[log.vkey()]))
        .err()
        .expect("refused");
    assert!(err.contains("not a cosignature key"), "{err}");
    // A bad prefix.
    let mut args = serve_args(&key, &st, &[log.vkey()]);
    args.extend(["--prefix".into(), "w/".into()]);
    assert!(WitnessProc::try_start(&args).is_err());
}

#[test]
fn keygen_writes_a_private_key_and_prints_its_vkey() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("w.key");
    let out = std::process::Command::new(bin())
        .args(["keygen", "--name", "witness.example/kg", "--out"])
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let vkey = VerifierKey::parse(stdout.trim()).expect("a vkey");
    assert_eq!(vkey.name(), "witness.example/kg");
    assert_eq!(vkey.kind(), KeyType::Cosignature);
    let mode = std::fs::metadata(&key)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let skey = std::fs::read_to_string(&key).expect("read");
    assert!(skey.starts_with("PRIVATE+KEY+witness.example/kg+"));

    // It is never overwritten.
    let again = std::process::Command::new(bin())
        .args(["keygen", "--name", "witness.example/kg", "--out"])
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&key).expect("read"), skey);

    // The key serves, and its cosignatures verify with the printed vkey.
    let log = TestLog::new(ORIGIN, 3);
    let w = WitnessProc::start(&serve_args(&key, &state(dir.path()), &[log.vkey()]));
    let client = WitnessClient::new(&w.url, TIMEOUT);
    let Ok(AddOutcome::Cosigned(lines)) = client.add_checkpoint(0, &[], &log.checkpoint(3)) else {
        panic!("not cosigned");
    };
    attach_cosignatures(&log.checkpoint(3), &lines, &[vkey]).expect("verifies");
}

#[test]
fn the_client_reports_transport_failures_and_refuses_foreign_cosignatures() {
    // Nobody listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let log = TestLog::new(ORIGIN, 2);
    assert!(matches!(
        cloister_witness::client::add_checkpoint(
            &format!("http://{addr}"),
            0,
            &[],
            &log.checkpoint(2),
            TIMEOUT
        ),
        Err(ClientError::Transport { .. })
    ));
    // Cosignature lines from a key the log does not expect are not attached.
    let s = Setup::new(2);
    let lines = s.cosign(0, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, stranger) = witness_key(dir.path(), "x.key", "witness.example/w1");
    assert!(matches!(
        attach_cosignatures(&s.log.checkpoint(2), &lines, &[stranger]),
        Err(ClientError::Cosignature(_))
    ));
    // A cosignature over another checkpoint does not verify for this one.
    assert!(matches!(
        attach_cosignatures(&s.log.checkpoint(1), &lines, std::slice::from_ref(&s.wkey)),
        Err(ClientError::Cosignature(_))
    ));
}

#[test]
fn connections_beyond_the_cap_wait_their_turn() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().expect("tempdir");
    let log = TestLog::new(ORIGIN, 2);
    let (key, _) = witness_key(dir.path(), "w.key", "witness.example/w1");
    let mut args = serve_args(&key, &state(dir.path()), &[log.vkey()]);
    args.extend(["--max-connections".into(), "1".into()]);
    let w = WitnessProc::start(&args);

    // A holds the only place (an idle connection, inside the head timeout).
    let a = std::net::TcpStream::connect(&w.addr).expect("connect A");
    let mut b = std::net::TcpStream::connect(&w.addr).expect("connect B");
    b.write_all(b"GET /nothing HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n")
        .expect("write B");
    b.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let waited = b.read(&mut buf);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "B was served while A held the only place: {waited:?}"
    );
    // A leaves: B is served.
    drop(a);
    b.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut out = Vec::new();
    b.read_to_end(&mut out).expect("read B");
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 404"));
}
