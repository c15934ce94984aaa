//! Proofs built by this crate (from memory and from tiles) verify; tiles are laid out as
//! tlog-tiles says; notes, cosignatures and policies behave as their specs say.

use std::collections::HashMap;

use cloister_tlog::merkle::{self, Hash};
use cloister_tlog::note::{KeyType, NoteSigner};
use cloister_tlog::tiles::{self, TileHashes, TileId, TileKind};
use cloister_tlog::{
    verify_checkpoint, verify_proof, Checkpoint, Freshness, Note, Policy, TlogError, TlogProof,
};

fn entries(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry {i}").into_bytes()).collect()
}

/// A log on a map: appends in the given batch sizes, returns the map of every tile written.
fn tiled(batches: &[usize]) -> (HashMap<String, Vec<u8>>, Vec<Hash>) {
    let mut store: HashMap<String, Vec<u8>> = HashMap::new();
    let mut leaves = Vec::new();
    let mut size = 0u64;
    let mut next = 0usize;
    for &b in batches {
        let batch: Vec<Vec<u8>> = (next..next + b)
            .map(|i| format!("entry {i}").into_bytes())
            .collect();
        next += b;
        let (writes, new_leaves) = tiles::append(size, &batch, |id| {
            store
                .get(&id.path())
                .cloned()
                .ok_or_else(|| TlogError::Tile(format!("missing {}", id.path())))
        })
        .expect("append");
        for w in writes {
            store.insert(w.id.path(), w.bytes);
        }
        leaves.extend(new_leaves);
        size += b as u64;
    }
    (store, leaves)
}

#[test]
fn tile_paths() {
    let id = TileId {
        kind: TileKind::Hashes(0),
        index: 1_234_067,
        width: 256,
    };
    assert_eq!(id.path(), "tile/0/x001/x234/067");
    let id = TileId {
        kind: TileKind::Entries,
        index: 5,
        width: 17,
    };
    assert_eq!(id.path(), "tile/entries/005.p/17");
    for p in [
        "tile/0/x001/x234/067",
        "tile/entries/005.p/17",
        "tile/3/000",
        "tile/63/x999/999.p/255",
    ] {
        assert_eq!(TileId::parse(p).expect(p).path(), p);
    }
    for bad in [
        "tile/0/1",
        "tile/0/0001",
        "tile/64/000",
        "tile/0/001/002",
        "tile/0/x001",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/07",
        "tile/01/000",
        "tiles/0/000",
        "tile/0/x000/001",
        "tile/0/../000",
    ] {
        assert!(TileId::parse(bad).is_err(), "{bad}");
    }
}

/// The spec's own example: a tree of 70,000 leaves.
#[test]
fn tiles_of_a_tree_of_70000() {
    let size = 70_000u64;
    assert_eq!(tiles::tile_width(0, 273, size), 112);
    assert_eq!(tiles::tile_width(0, 272, size), 256);
    assert_eq!(tiles::tile_width(0, 274, size), 0);
    assert_eq!(tiles::tile_width(1, 0, size), 256);
    assert_eq!(tiles::tile_width(1, 1, size), 17);
    assert_eq!(tiles::tile_width(2, 0, size), 1);
    assert_eq!(tiles::tile_width(3, 0, size), 0);
    assert_eq!(tiles::tile_width(1, 0, 256), 1);
}

#[test]
fn appended_tiles_match_the_tree_and_proofs_verify() {
    // Batches that cross tile edges at level 0 and level 1.
    let (store, leaves) = tiled(&[1, 2, 252, 1, 300, 65_000, 1, 900]);
    let size = leaves.len() as u64;
    assert_eq!(
        leaves,
        entries(leaves.len())
            .iter()
            .map(|e| merkle::leaf_hash(e))
            .collect::<Vec<_>>()
    );
    let root = merkle::root_from_leaf_hashes(&leaves);
    let mut src = TileHashes::new(size, |id: TileId| {
        store
            .get(&id.path())
            .cloned()
            .ok_or_else(|| TlogError::Tile(format!("missing {}", id.path())))
    });
    assert_eq!(merkle::range_hash(&mut src, 0, size).expect("root"), root);
    for index in [0, 1, 255, 256, 257, 65_535, 65_536, size - 1] {
        let p = merkle::inclusion_proof(&mut src, index, size).expect("proof");
        merkle::verify_inclusion(index, size, &leaves[index as usize], &p, &root)
            .expect("verifies");
        let mut mem: &[Hash] = &leaves;
        assert_eq!(
            p,
            merkle::inclusion_proof(&mut mem, index, size).expect("mem proof")
        );
    }
    for old in [1, 2, 3, 255, 256, 257, 1000, 65_536, size - 1, size] {
        let old_root = merkle::root_from_leaf_hashes(&leaves[..old as usize]);
        let p = merkle::consistency_proof(&mut src, old, size).expect("proof");
        merkle::verify_consistency(old, size, &p, &old_root, &root).expect("verifies");
    }
    // Every entry bundle decodes to its entries.
    let bundle = store.get("tile/entries/000").expect("bundle 0");
    let got = tiles::decode_bundle(bundle, 256).expect("decodes");
    assert_eq!(got, entries(256));
}

#[test]
fn proofs_for_every_small_tree() {
    let all: Vec<Hash> = entries(41).iter().map(|e| merkle::leaf_hash(e)).collect();
    for size in 1..=40u64 {
        let leaves = &all[..size as usize];
        let root = merkle::root_from_leaf_hashes(leaves);
        let mut src: &[Hash] = leaves;
        for i in 0..size {
            let p = merkle::inclusion_proof(&mut src, i, size).expect("proof");
            merkle::verify_inclusion(i, size, &leaves[i as usize], &p, &root).expect("verifies");
            // A proof for another size or index fails.
            if size > 1 {
                assert!(merkle::verify_inclusion(
                    (i + 1) % size,
                    size,
                    &leaves[i as usize],
                    &p,
                    &root
                )
                .is_err());
                // (The tree size is not checked this way: it comes from the signed checkpoint,
                // and a proof for size 3 can also fit size 4 over the same root.)
                let other_root = merkle::root_from_leaf_hashes(&all[..size as usize + 1]);
                assert!(
                    merkle::verify_inclusion(i, size, &leaves[i as usize], &p, &other_root)
                        .is_err()
                );
            }
        }
        for old in 1..=size {
            let old_root = merkle::root_from_leaf_hashes(&leaves[..old as usize]);
            let p = merkle::consistency_proof(&mut src, old, size).expect("proof");
            merkle::verify_consistency(old, size, &p, &old_root, &root).expect("verifies");
            if old < size {
                let forked = merkle::leaf_hash(b"fork");
                assert!(merkle::verify_consistency(old, size, &p, &forked, &root).is_err());
            }
        }
    }
}

#[test]
fn truncated_tiles_and_bundles_are_refused() {
    let (store, _) = tiled(&[300]);
    let full = store.get("tile/0/000").expect("tile");
    assert!(tiles::decode_hash_tile(&full[..full.len() - 1], 256).is_err());
    let bundle = store.get("tile/entries/000").expect("bundle");
    assert!(tiles::decode_bundle(&bundle[..bundle.len() - 1], 256).is_err());
    assert!(tiles::decode_bundle(bundle, 255).is_err());
    // Appending after a truncated partial tile fails and writes nothing.
    let mut broken = store.clone();
    let p = broken.get_mut("tile/0/001.p/44").expect("partial");
    p.truncate(40);
    let r = tiles::append(300, &[b"x".to_vec()], |id| {
        broken
            .get(&id.path())
            .cloned()
            .ok_or_else(|| TlogError::Tile("missing".into()))
    });
    assert!(r.is_err());
    // An entry too large for a bundle is refused.
    assert!(tiles::append(0, &[vec![0u8; 70_000]], |_| unreachable!()).is_err());
}

fn signed_checkpoint(log: &NoteSigner, size: u64, root: Hash) -> Note {
    let c = Checkpoint {
        origin: log.verifier().name().to_owned(),
        size,
        root,
        extensions: vec![],
    };
    let mut n = Note::unsigned(&c.to_text()).expect("note");
    n.sign(log, 0).expect("sign");
    n
}

fn policy(log: &NoteSigner, witnesses: &[&NoteSigner], quorum: &str) -> Policy {
    let mut s = format!("log {}\n", log.verifier().to_vkey());
    for (i, w) in witnesses.iter().enumerate() {
        s.push_str(&format!("witness w{i} {}\n", w.verifier().to_vkey()));
    }
    s.push_str(quorum);
    Policy::parse(&s).expect("policy")
}

#[test]
fn cosigned_checkpoints_under_a_policy() {
    let log = NoteSigner::generate("log.example/cloister", KeyType::Ed25519).expect("key");
    let w: Vec<NoteSigner> = (0..3)
        .map(|i| {
            NoteSigner::generate(&format!("witness{i}.example"), KeyType::Cosignature).expect("key")
        })
        .collect();
    let p = policy(
        &log,
        &[&w[0], &w[1], &w[2]],
        "group q 2 w0 w1 w2\nquorum q\n",
    );
    let leaves: Vec<Hash> = entries(5).iter().map(|e| merkle::leaf_hash(e)).collect();
    let root = merkle::root_from_leaf_hashes(&leaves);
    let mut note = signed_checkpoint(&log, 5, root);
    let now = 1_800_000_000;
    let fresh = Freshness {
        now,
        max_age_secs: Some(3600),
    };
    assert!(matches!(
        verify_checkpoint(&note, &p, fresh),
        Err(TlogError::Quorum(_))
    ));
    note.sign(&w[0], now - 10).expect("cosign");
    assert!(
        verify_checkpoint(&note, &p, fresh).is_err(),
        "1 of 3 is not 2 of 3"
    );
    note.sign(&w[2], now - 7200).expect("cosign");
    assert!(
        verify_checkpoint(&note, &p, fresh).is_err(),
        "a stale cosignature does not count"
    );
    assert!(verify_checkpoint(
        &note,
        &p,
        Freshness {
            now,
            max_age_secs: None
        }
    )
    .is_ok());
    note.sign(&w[1], now - 5).expect("cosign");
    let v = verify_checkpoint(&note, &p, fresh).expect("2 fresh of 3");
    assert_eq!(v.witnessed_at, Some(now - 10));
    assert_eq!(v.cosigners.len(), 2);

    // The note survives its text form; a proof carries it.
    let again = Note::parse(note.to_text().as_bytes()).expect("parses");
    assert_eq!(again, note);
    let mut mem: &[Hash] = &leaves;
    let proof = TlogProof {
        extra: Some(b"entry 3".to_vec()),
        index: 3,
        hashes: merkle::inclusion_proof(&mut mem, 3, 5).expect("proof"),
        checkpoint: note.clone(),
    };
    let parsed = TlogProof::parse(proof.to_text().as_bytes()).expect("parses");
    assert_eq!(parsed, proof);
    verify_proof(&parsed, &leaves[3], &p, fresh).expect("verifies");
    assert!(
        verify_proof(&parsed, &leaves[2], &p, fresh).is_err(),
        "another leaf"
    );

    // A proof for another tree size: built at size 5, shown with a checkpoint of size 7.
    let more: Vec<Hash> = entries(7).iter().map(|e| merkle::leaf_hash(e)).collect();
    let mut big = signed_checkpoint(&log, 7, merkle::root_from_leaf_hashes(&more));
    big.sign(&w[0], now).expect("cosign");
    big.sign(&w[1], now).expect("cosign");
    let other_size = TlogProof {
        checkpoint: big,
        ..parsed.clone()
    };
    assert!(matches!(
        verify_proof(&other_size, &leaves[3], &p, fresh),
        Err(TlogError::Proof(_))
    ));

    // A forged cosignature (a known witness's line, wrong bytes) rejects the note.
    let mut forged = note.clone();
    forged.remove_signatures_of(w[1].verifier());
    let mut line = w[1].sign_line("something else\n", now).expect("line");
    forged.add_signature_line(&line).expect("add");
    assert!(matches!(
        verify_checkpoint(&forged, &p, fresh),
        Err(TlogError::Signature(_))
    ));
    // An unknown witness's line is ignored.
    let stranger = NoteSigner::generate("witness9.example", KeyType::Cosignature).expect("key");
    line = stranger.sign_line(note.text(), now).expect("line");
    let mut extra = note.clone();
    extra.add_signature_line(&line).expect("add");
    assert!(verify_checkpoint(&extra, &p, fresh).is_ok());
    // A checkpoint of a log the policy does not know.
    let other = NoteSigner::generate("evil.example/log", KeyType::Ed25519).expect("key");
    let n = signed_checkpoint(&other, 5, root);
    assert!(matches!(
        verify_checkpoint(&n, &p, fresh),
        Err(TlogError::UnknownLog(_))
    ));
    // The right origin signed by the wrong key.
    let impostor = NoteSigner::generate("log.example/cloister", KeyType::Ed25519).expect("key");
    let n = signed_checkpoint(&impostor, 5, root);
    assert!(matches!(
        verify_checkpoint(&n, &p, fresh),
        Err(TlogError::Signature(_))
    ));
}

#[test]
fn malformed_notes_are_refused() {
    let log = NoteSigner::generate("log.example/x", KeyType::Ed25519).expect("key");
    let good = signed_checkpoint(&log, 0, merkle::EMPTY_ROOT).to_text();
    assert!(Note::parse(good.as_bytes()).is_ok());
    let bad: Vec<String> = vec![
        good.trim_end_matches('\n').to_owned(), // no final newline
        good.replacen("\n\n", "\n", 1),         // no blank line
        good.replacen('\u{2014}', "-", 1),      // not an em dash
        good.replacen("log.example/x\n", "log.example/x\r\n", 1), // control character
        format!("{good}\u{2014} bad+name AAAAAAA=\n"), // '+' in a key name
        format!("{good}\u{2014} short AAA=\n"), // signature too short
        String::from_utf8_lossy(&[0xff, b'\n', b'\n']).into_owned(),
    ];
    for b in &bad {
        assert!(Note::parse(b.as_bytes()).is_err(), "{b:?}");
    }
    assert!(Note::parse(&[0xff, b'\n', b'\n']).is_err());
    // Checkpoint bodies.
    for body in [
        "o\n01\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n1\nAAAA\n",
        "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n",
        "o\n1\n",
    ] {
        assert!(Checkpoint::parse(body).is_err(), "{body:?}");
    }
}

#[test]
fn policy_files() {
    let log = NoteSigner::generate("log.example/x", KeyType::Ed25519).expect("key");
    let w: Vec<NoteSigner> = (0..6)
        .map(|i| NoteSigner::generate(&format!("w{i}.example"), KeyType::Cosignature).expect("key"))
        .collect();
    let v = |i: usize| w[i].verifier().to_vkey();
    // The spec's example shape: two groups of three, 2-of-X and any-of-Y, both required.
    let text = format!(
        "# comment\nlog {} https://log.example/x\n\nwitness X1 {}\nwitness X2 {}\n  witness X3 {}\ngroup X-witnesses 2 X1 X2 X3\n\
         witness Y1 {}\nwitness Y2 {}\nwitness Y3 {}\ngroup Y-witnesses any Y1 Y2 Y3\n\
         group X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n",
        log.verifier().to_vkey(), v(0), v(1), v(2), v(3), v(4), v(5)
    );
    let p = Policy::parse(&text).expect("parses");
    assert!(p.quorum_met(&[0, 1, 3]));
    assert!(!p.quorum_met(&[0, 3, 4, 5]));
    assert!(!p.quorum_met(&[0, 1, 2]));
    assert_eq!(Policy::parse(&p.to_text()).expect("round trip"), p);
    let base = format!(
        "log {}\nwitness A {}\nwitness B {}\n",
        log.verifier().to_vkey(),
        v(0),
        v(1)
    );
    for (bad, why) in [
        (base.clone(), "no quorum"),
        (format!("{base}quorum C\n"), "undefined"),
        (format!("{base}quorum A\nquorum B\n"), "two quorums"),
        (format!("{base}group g 0 A B\nquorum g\n"), "threshold 0"),
        (
            format!("{base}group g 3 A B\nquorum g\n"),
            "threshold above n",
        ),
        (format!("{base}group g any A A\nquorum g\n"), "member twice"),
        (
            format!("{base}witness A {}\nquorum A\n", v(2)),
            "name twice",
        ),
        (format!("{base}witness C {}\nquorum A\n", v(0)), "key twice"),
        (
            format!("{base}witness none {}\nquorum A\n", v(2)),
            "reserved name",
        ),
        (
            format!("{base}group none any A\nquorum A\n"),
            "reserved group name",
        ),
        (
            format!("log {}\nquorum none\n", v(0)),
            "a witness key as a log key",
        ),
        (
            format!("{base}witness C {}\nquorum A\n", log.verifier().to_vkey()),
            "a log key as a witness key",
        ),
        (format!("{base}frobnicate\nquorum A\n"), "unknown keyword"),
        (format!("{base}quorum A\x0b\n"), "control character"),
    ] {
        assert!(Policy::parse(&bad).is_err(), "{why}");
    }
    assert!(Policy::parse(&format!("{base}quorum none\n"))
        .expect("none")
        .quorum_met(&[]));
}
