//! The crate against independent implementations used as oracles:
//!
//! - `ct-merkle` 0.3 (RFC 6962 trees, inclusion and consistency proofs; its own array-based
//!   tree math and its own leaf hashing);
//! - `signed_note` 0.2 and `tlog_tiles` 0.2 (Cloudflare azul, Rust ports of
//!   golang.org/x/mod/sumdb/note and sumdb/tlog, on ed25519-dalek 2 and sha2 0.10).
//!
//! Where the oracles cannot speak (C2SP entry bundles, `cosignature/v1`), the tests say so.
//! Everything is deterministic: fixed inputs and a seeded generator.

use std::collections::{BTreeSet, HashMap};

use cloister_tlog::merkle::{self, Hash, EMPTY_ROOT};
use cloister_tlog::note::{key_id, KeyType, NoteSigner, VerifierKey};
use cloister_tlog::tiles::{self, TileHashes, TileId, TileKind, TileWrite};
use cloister_tlog::{Checkpoint, Note, TlogError};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::Sha256;
use signed_note::{Signer as _, Verifier as _};
use tlog_tiles::{HashReader, Tile, TileHashReader, TileReader};

// ---------------------------------------------------------------------------------------------
// Deterministic inputs.

/// SplitMix64: a seeded, deterministic generator for test inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        rand_core::RngCore::fill_bytes(self, &mut out);
        out
    }
}

// signed_note's `generate_key` takes a rand_core 0.6 `CryptoRngCore`. This generator is not
// cryptographic: it only makes the generated test keys reproducible.
impl rand_core::RngCore for SplitMix {
    fn next_u32(&mut self) -> u32 {
        self.next() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.next()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let b = self.next().to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for SplitMix {}

/// Leaf data `i`: lengths 0..97 (leaf 0 is empty), bytes including 0x00 and 0x01 so that the
/// RFC 6962 domain-separation prefixes also occur inside the data.
fn leaf_data(i: usize) -> Vec<u8> {
    let len = (i * 7919) % 97;
    (0..len).map(|j| (i * 31 + j * 17) as u8).collect()
}

fn flat(proof: &[Hash]) -> Vec<u8> {
    proof.concat()
}

fn unflat(bytes: &[u8]) -> Vec<Hash> {
    assert_eq!(bytes.len() % 32, 0, "an oracle proof is whole hashes");
    bytes
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32-byte chunk"))
        .collect()
}

fn tt(h: &Hash) -> tlog_tiles::Hash {
    tlog_tiles::Hash(*h)
}

fn tt_vec(p: &[Hash]) -> Vec<tlog_tiles::Hash> {
    p.iter().map(tt).collect()
}

fn ct_root(root: &Hash, size: u64) -> RootHash<Sha256> {
    RootHash::<Sha256>::new((*root).into(), size)
}

/// `largest power of two < n` (n >= 2), an interesting split point for proofs.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

// ---------------------------------------------------------------------------------------------
// 1. RFC 6962 Merkle trees against ct-merkle (and tlog_tiles' sumdb port as a second verifier).

/// Tree sizes checked: every size up to 300, then sizes around powers of two and a few larger.
fn checked_size(n: u64) -> bool {
    n <= 300
        || [
            511, 512, 513, 1000, 1023, 1024, 1025, 2047, 2048, 4095, 4096, 4097,
        ]
        .contains(&n)
}

/// Leaf indexes (for inclusion) or old sizes (for consistency) to try in a tree of `n`: all of
/// `lo..=hi` when there are few, else the edges, the split points and seeded random ones.
fn samples(rng: &mut SplitMix, lo: u64, hi: u64, n: u64) -> BTreeSet<u64> {
    if hi - lo < 64 {
        return (lo..=hi).collect();
    }
    let mut s: BTreeSet<u64> = [lo, lo + 1, hi - 1, hi, n / 2, n / 2 + 1]
        .into_iter()
        .collect();
    let mut p = 1u64;
    while p < n {
        for c in [p - 1, p, p + 1] {
            if (lo..=hi).contains(&c) {
                s.insert(c);
            }
        }
        p <<= 1;
    }
    let k = split_point(n);
    for c in [k - 1, k, k + 1] {
        if (lo..=hi).contains(&c) {
            s.insert(c);
        }
    }
    for _ in 0..8 {
        s.insert(lo + rng.below(hi - lo + 1));
    }
    s
}

#[test]
fn merkle_matches_ct_merkle() {
    const MAX: usize = 4097;
    let data: Vec<Vec<u8>> = (0..MAX).map(leaf_data).collect();
    let leaves: Vec<Hash> = data.iter().map(|d| merkle::leaf_hash(d)).collect();
    let mut rng = SplitMix(0x6962);

    let mut tree = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    assert_eq!(
        tree.root().as_bytes().as_slice(),
        &EMPTY_ROOT[..],
        "empty tree"
    );
    assert_eq!(merkle::root_from_leaf_hashes(&[]), EMPTY_ROOT);

    let (mut inclusions, mut consistencies) = (0usize, 0usize);
    for n in 1..=MAX as u64 {
        tree.push(data[n as usize - 1].clone());
        if !checked_size(n) {
            continue;
        }
        let prefix: &[Hash] = &leaves[..n as usize];

        // Roots. ct-merkle hashes the leaf data itself (0x00 || data).
        let root = merkle::root_from_leaf_hashes(prefix);
        let theirs = tree.root();
        assert_eq!(theirs.num_leaves(), n);
        assert_eq!(
            theirs.as_bytes().as_slice(),
            &root[..],
            "root of the tree of {n} leaves"
        );

        // Inclusion proofs.
        for i in samples(&mut rng, 0, n - 1, n) {
            let ours = merkle::inclusion_proof(&mut &*prefix, i, n).expect("our inclusion proof");
            let ct = tree.prove_inclusion(i as usize);
            assert_eq!(
                flat(&ours),
                ct.as_bytes(),
                "inclusion proof of leaf {i} in a tree of {n}"
            );
            // Theirs verified by us (on our leaf hash), ours by them (on the leaf data: they
            // hash it themselves), and by tlog_tiles' independent verifier.
            merkle::verify_inclusion(i, n, &leaves[i as usize], &unflat(ct.as_bytes()), &root)
                .expect("ct-merkle's inclusion proof verifies with ours");
            theirs
                .verify_inclusion(
                    &data[i as usize],
                    i,
                    &InclusionProof::<Sha256>::from_bytes(flat(&ours)),
                )
                .unwrap_or_else(|e| panic!("ct-merkle rejects our proof of {i} in {n}: {e}"));
            tlog_tiles::check_record(&tt_vec(&ours), n, tt(&root), i, tt(&leaves[i as usize]))
                .unwrap_or_else(|e| panic!("tlog_tiles rejects our proof of {i} in {n}: {e}"));
            inclusions += 1;
        }

        // Consistency proofs from every sampled old size (old = n gives the empty proof).
        for m in samples(&mut rng, 1, n, n) {
            let old_root = merkle::root_from_leaf_hashes(&leaves[..m as usize]);
            let ours = merkle::consistency_proof(&mut &*prefix, m, n).expect("our proof");
            let ct = tree.prove_consistency((n - m) as usize);
            assert_eq!(flat(&ours), ct.as_bytes(), "consistency proof {m} -> {n}");
            merkle::verify_consistency(m, n, &unflat(ct.as_bytes()), &old_root, &root)
                .unwrap_or_else(|e| panic!("ct-merkle's proof {m} -> {n} fails with ours: {e}"));
            let proof =
                ConsistencyProof::<Sha256>::try_from_bytes(flat(&ours)).expect("whole hashes");
            theirs
                .verify_consistency(&ct_root(&old_root, m), &proof)
                .unwrap_or_else(|e| panic!("ct-merkle rejects our proof {m} -> {n}: {e}"));
            tlog_tiles::check_tree(&tt_vec(&ours), n, tt(&root), m, tt(&old_root))
                .unwrap_or_else(|e| panic!("tlog_tiles rejects our proof {m} -> {n}: {e}"));
            consistencies += 1;
        }
    }
    eprintln!("{inclusions} inclusion and {consistencies} consistency proofs compared");
    assert!(inclusions > 5_000 && consistencies > 5_000);
}

/// The verifiers are not trivially accepting: a proof with one bit flipped, or checked
/// against the wrong index or size, fails on both sides.
#[test]
fn merkle_verifiers_agree_on_rejections() {
    let data: Vec<Vec<u8>> = (0..300).map(leaf_data).collect();
    let leaves: Vec<Hash> = data.iter().map(|d| merkle::leaf_hash(d)).collect();
    let mut tree = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let mut rng = SplitMix(7);
    for n in 1..=300u64 {
        tree.push(data[n as usize - 1].clone());
        if n < 3 {
            continue;
        }
        let prefix: &[Hash] = &leaves[..n as usize];
        let root = merkle::root_from_leaf_hashes(prefix);
        let theirs = tree.root();

        let i = rng.below(n);
        let mut proof = merkle::inclusion_proof(&mut &*prefix, i, n).expect("proof");
        let j = rng.below(proof.len() as u64) as usize;
        proof[j][rng.below(32) as usize] ^= 1 << rng.below(8);
        assert!(merkle::verify_inclusion(i, n, &leaves[i as usize], &proof, &root).is_err());
        assert!(theirs
            .verify_inclusion(
                &data[i as usize],
                i,
                &InclusionProof::from_bytes(flat(&proof))
            )
            .is_err());
        // The right proof for another leaf.
        let good = merkle::inclusion_proof(&mut &*prefix, i, n).expect("proof");
        let other = (i + 1) % n;
        assert!(merkle::verify_inclusion(other, n, &leaves[i as usize], &good, &root).is_err());
        assert!(theirs
            .verify_inclusion(
                &data[i as usize],
                other,
                &InclusionProof::from_bytes(flat(&good))
            )
            .is_err());

        let m = 1 + rng.below(n - 1); // 1..n, never equal: the proof is not empty
        let old_root = merkle::root_from_leaf_hashes(&leaves[..m as usize]);
        let mut proof = merkle::consistency_proof(&mut &*prefix, m, n).expect("proof");
        let j = rng.below(proof.len() as u64) as usize;
        proof[j][rng.below(32) as usize] ^= 1 << rng.below(8);
        assert!(merkle::verify_consistency(m, n, &proof, &old_root, &root).is_err());
        let ct = ConsistencyProof::<Sha256>::try_from_bytes(flat(&proof)).expect("whole hashes");
        assert!(theirs
            .verify_consistency(&ct_root(&old_root, m), &ct)
            .is_err());

        // A proof cut short stops one level below the root: it leads to the hash of the
        // root's child that holds the leaf (resp. the old tree). Claiming that hash as the
        // root of the tree of n leaves must fail on both sides, as must one extra hash.
        let k = split_point(n);
        let mut short = good.clone();
        short.pop();
        let child = if i < k {
            merkle::root_from_leaf_hashes(&leaves[..k as usize])
        } else {
            merkle::root_from_leaf_hashes(&leaves[k as usize..n as usize])
        };
        let fake = ct_root(&child, n);
        assert!(merkle::verify_inclusion(i, n, &leaves[i as usize], &short, &child).is_err());
        assert!(fake
            .verify_inclusion(
                &data[i as usize],
                i,
                &InclusionProof::from_bytes(flat(&short))
            )
            .is_err());
        // One hash too many, with the root it would lead to were it allowed.
        let extra = leaves[(i as usize + 1) % n as usize];
        let mut long = good.clone();
        long.push(extra);
        for claimed in [
            merkle::node_hash(&extra, &root),
            merkle::node_hash(&root, &extra),
        ] {
            assert!(merkle::verify_inclusion(i, n, &leaves[i as usize], &long, &claimed).is_err());
            assert!(ct_root(&claimed, n)
                .verify_inclusion(
                    &data[i as usize],
                    i,
                    &InclusionProof::from_bytes(flat(&long))
                )
                .is_err());
        }

        let m = 1 + rng.below(k); // 1..=k: the old tree lies in the left child
        let old_root = merkle::root_from_leaf_hashes(&leaves[..m as usize]);
        let left = merkle::root_from_leaf_hashes(&leaves[..k as usize]);
        let mut short = merkle::consistency_proof(&mut &*prefix, m, n).expect("proof");
        short.pop();
        assert!(merkle::verify_consistency(m, n, &short, &old_root, &left).is_err());
        let ct = ConsistencyProof::<Sha256>::try_from_bytes(flat(&short)).expect("whole hashes");
        assert!(ct_root(&left, n)
            .verify_consistency(&ct_root(&old_root, m), &ct)
            .is_err());
    }
}

/// From the empty tree: ours accepts only the empty proof with old root SHA-256("") (module
/// documentation of `merkle`); both oracles refuse old size 0 outright. Not a disagreement on
/// any non-empty tree; recorded here so that a change on either side is noticed.
#[test]
fn merkle_consistency_from_empty_tree() {
    let leaves: Vec<Hash> = (0..5).map(|i| merkle::leaf_hash(&leaf_data(i))).collect();
    let root = merkle::root_from_leaf_hashes(&leaves);
    assert_eq!(
        merkle::consistency_proof(&mut &leaves[..], 0, 5).expect("proof"),
        Vec::<Hash>::new()
    );
    merkle::verify_consistency(0, 5, &[], &EMPTY_ROOT, &root).expect("ours: from empty");
    assert!(merkle::verify_consistency(0, 5, &[], &root, &root).is_err());
    let ct = ConsistencyProof::<Sha256>::try_from_bytes(Vec::new()).expect("empty");
    assert!(ct_root(&root, 5)
        .verify_consistency(&ct_root(&EMPTY_ROOT, 0), &ct)
        .is_err());
    assert!(tlog_tiles::check_tree(&Vec::new(), 5, tt(&root), 0, tt(&EMPTY_ROOT)).is_err());
}

// ---------------------------------------------------------------------------------------------
// 2. Signed notes against signed_note.

fn their_verifiers(vkeys: &[&str]) -> signed_note::VerifierList {
    signed_note::VerifierList::new(
        vkeys
            .iter()
            .map(|v| {
                Box::new(signed_note::StandardVerifier::new(v).expect("their vkey parse"))
                    as Box<dyn signed_note::Verifier>
            })
            .collect(),
    )
}

const NAMES: &[&str] = &[
    "example.com/log",
    "sum.golang.org",
    "log.cloister.test/prod-1",
    "ünïcödé.example/ключ",
    "a",
    "PeterNeumann",
];

const TEXTS: &[&str] = &[
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n",
    "\n",
    "one line\n",
    "example.com/log\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    "trailing blank lines inside the text\n\n\nare allowed\n",
    "ünïcödé — em dash inside text\n",
];

#[test]
fn our_signatures_verify_with_signed_note() {
    let mut rng = SplitMix(1);
    for (k, name) in NAMES.iter().enumerate() {
        let seed = rng.bytes32();
        let signer = NoteSigner::from_seed(name, KeyType::Ed25519, &seed).expect("our signer");
        let vkey = signer.verifier().to_vkey();
        let their_signer = signed_note::StandardSigner::new(&signer.to_skey())
            .expect("signed_note reads our skey");
        assert_eq!(their_signer.name(), *name);
        assert_eq!(their_signer.key_id(), signer.verifier().id());
        let text = TEXTS[k % TEXTS.len()];

        let mut note = Note::unsigned(text).expect("text");
        note.sign(&signer, 0).expect("sign");
        let bytes = note.to_text();

        let parsed = signed_note::Note::from_bytes(bytes.as_bytes()).expect("signed_note parses");
        assert_eq!(parsed.text(), text.as_bytes());
        let (verified, unverified) = parsed
            .verify(&their_verifiers(&[&vkey]))
            .expect("signed_note verifies our signature");
        assert_eq!(verified.len(), 1);
        assert!(unverified.is_empty());
        assert_eq!(verified[0].name(), *name);
        assert_eq!(verified[0].id(), signer.verifier().id());

        // Ed25519 is deterministic: their signer makes the very same note.
        let mut theirs = signed_note::Note::new(text.as_bytes(), &[]).expect("text");
        theirs.add_sigs(&[&their_signer]).expect("their sign");
        assert_eq!(String::from_utf8(theirs.to_bytes()).expect("utf-8"), bytes);

        // Another text under our signature: both refuse it.
        let forged_text = format!("{text}x\n");
        let forged_line = &note.signatures()[0];
        let forged = format!("{forged_text}\n{}", forged_line.to_line());
        let theirs_forged = signed_note::Note::from_bytes(forged.as_bytes()).expect("well-formed");
        assert!(matches!(
            theirs_forged.verify(&their_verifiers(&[&vkey])),
            Err(signed_note::NoteError::InvalidSignature { .. })
        ));
        let key = VerifierKey::parse(&vkey).expect("our vkey");
        assert!(Note::parse(forged.as_bytes())
            .expect("well-formed")
            .open(&[key])
            .is_err());
    }
}

#[test]
fn signed_note_signatures_verify_with_ours() {
    let mut rng = SplitMix(2);
    for (k, name) in NAMES.iter().enumerate() {
        let (skey, vkey) = signed_note::generate_key(&mut rng, name);
        let (skey2, vkey2) = signed_note::generate_key(&mut rng, "other.example/witness");
        let signer = signed_note::StandardSigner::new(&skey).expect("their signer");
        let signer2 = signed_note::StandardSigner::new(&skey2).expect("their signer");
        let text = TEXTS[k % TEXTS.len()];
        let mut note = signed_note::Note::new(text.as_bytes(), &[]).expect("text");
        note.add_sigs(&[&signer, &signer2]).expect("their sign");
        let bytes = note.to_bytes();

        let ours = Note::parse(&bytes).expect("we parse signed_note's note");
        assert_eq!(ours.text(), text);
        assert_eq!(ours.to_text().as_bytes(), &bytes[..], "re-encoding");
        let key = VerifierKey::parse(&vkey).expect("we parse signed_note's vkey");
        let key2 = VerifierKey::parse(&vkey2).expect("we parse signed_note's vkey");
        for known in [
            vec![key.clone()],
            vec![key2.clone()],
            vec![key.clone(), key2.clone()],
        ] {
            let v = ours
                .open(&known)
                .expect("we verify signed_note's signatures");
            assert_eq!(v.len(), known.len());
            for (got, want) in v.iter().zip(&known) {
                assert_eq!(&got.key, want);
                assert_eq!(got.timestamp, None);
            }
        }

        // Their skey in our hands signs the same bytes.
        let our_signer = NoteSigner::parse(&skey).expect("we parse signed_note's skey");
        assert_eq!(*our_signer.to_skey(), skey, "skey round trip");
        assert_eq!(our_signer.verifier().to_vkey(), vkey);
        let mut mine = Note::unsigned(text).expect("text");
        mine.sign(&our_signer, 0).expect("sign");
        let mut theirs_one = signed_note::Note::new(text.as_bytes(), &[]).expect("text");
        theirs_one.add_sigs(&[&signer]).expect("sign");
        assert_eq!(mine.to_text().as_bytes(), &theirs_one.to_bytes()[..]);

        // A signature of a known key over another text is refused by both.
        let sig_block = &bytes[text.len() + 1..];
        let mut forged = b"not the text\n\n".to_vec();
        forged.extend_from_slice(sig_block);
        assert!(Note::parse(&forged)
            .expect("well-formed")
            .open(std::slice::from_ref(&key))
            .is_err());
        assert!(signed_note::Note::from_bytes(&forged)
            .expect("well-formed")
            .verify(&their_verifiers(&[&vkey]))
            .is_err());
    }
}

#[test]
fn vkeys_and_key_ids_agree() {
    let mut rng = SplitMix(3);
    for name in NAMES {
        // Theirs -> ours.
        let (_, vkey) = signed_note::generate_key(&mut rng, name);
        let ours = VerifierKey::parse(&vkey).expect("we parse signed_note's vkey");
        assert_eq!(ours.to_vkey(), vkey, "round trip");
        assert_eq!(ours.name(), *name);
        assert_eq!(ours.kind(), KeyType::Ed25519);
        let theirs = signed_note::StandardVerifier::new(&vkey).expect("their parse");
        assert_eq!(ours.id(), theirs.key_id());

        // Ours -> theirs, for both key types' ids.
        let signer =
            NoteSigner::from_seed(name, KeyType::Ed25519, &rng.bytes32()).expect("our signer");
        let vk = signer.verifier();
        let theirs = signed_note::StandardVerifier::new(&vk.to_vkey()).expect("their parse");
        assert_eq!(theirs.name(), *name);
        assert_eq!(theirs.key_id(), vk.id());
        let public = vk.public_bytes();
        for kind in [KeyType::Ed25519, KeyType::Cosignature] {
            let mut material = vec![kind.byte()];
            material.extend_from_slice(&public);
            assert_eq!(
                key_id(name, kind, &public),
                signed_note::key_id(name, &material),
                "key id of {name}, type {:#04x}",
                kind.byte()
            );
            assert_eq!(
                vk.with_kind(kind).id(),
                signed_note::key_id(name, &material)
            );
        }
    }
}

/// Malformed and odd verifier keys: both sides accept or refuse the same ones (type 0x01).
#[test]
fn vkey_parsing_agrees_on_edge_cases() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut rng = SplitMix(4);
    let (_, vkey) = signed_note::generate_key(&mut rng, "example.com/log");
    let (name, rest) = vkey.split_once('+').expect("name");
    let (id, material) = rest.split_once('+').expect("id");
    let raw = b64.decode(material).expect("base64");
    let with_raw = |r: &[u8]| {
        let id = signed_note::key_id(name, r);
        format!("{name}+{id:08x}+{}", b64.encode(r))
    };
    let mut wrong_type = raw.clone();
    wrong_type[0] = 0x02;
    let mut flipped = raw.clone();
    flipped[5] ^= 0x40;
    let other_id = format!("{:08x}", u32::from_str_radix(id, 16).expect("hex") ^ 1);

    let cases: Vec<String> = vec![
        vkey.clone(),
        format!("{name}+{}+{material}", id.to_uppercase()),
        format!("{name}+{other_id}+{material}"),
        format!("{name}+{}+{material}", &id[..7]),
        format!("{name}+0{id}+{material}"),
        format!("{name}+{id}+{}", &material[..material.len() - 1]),
        format!("{name}+{id}+{material}="),
        format!("{name}+{id}+!{}", &material[1..]),
        format!("+{id}+{material}"),
        format!("{name}{id}+{material}"),
        format!("{name} x+{id}+{material}"),
        with_raw(&wrong_type),
        with_raw(&raw[..32]),
        with_raw(&[raw.as_slice(), &[0]].concat()),
        with_raw(&flipped),
        with_raw(&[0x01]),
        String::new(),
        "a+b".into(),
    ];
    for v in &cases {
        let ours = VerifierKey::parse(v);
        let theirs = signed_note::StandardVerifier::new(v);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "vkey {v:?}: ours {ours:?}, theirs {:?}",
            theirs.as_ref().err()
        );
        if let (Ok(o), Ok(t)) = (ours, theirs) {
            assert_eq!(o.id(), t.key_id());
            assert_eq!(o.name(), t.name());
        }
    }
}

/// Well-formed and malformed notes: both parsers accept the same ones and read the same text
/// and signature lines out of them.
#[test]
fn note_parsing_agrees() {
    let mut rng = SplitMix(5);
    let signer =
        NoteSigner::from_seed("example.com/log", KeyType::Ed25519, &rng.bytes32()).expect("signer");
    let line = |text: &str| signer.sign_line(text, 0).expect("sign");
    let good = format!("hello\n\n{}", line("hello\n"));
    let sig_b64 = good.rsplit_once(' ').expect("line").1.trim_end().to_owned();

    let cases: Vec<String> = vec![
        good.clone(),
        // Two signatures, one of an unknown key.
        format!("hello\n\n{}— other.example/x AAAAAQE=\n", line("hello\n")),
        // The text may hold blank lines; the last blank line ends it.
        format!("a\n\nb\n\n{}", line("a\n\nb\n")),
        format!("\n\n{}", line("\n")),
        // Malformed.
        "hello\n".into(),
        "hello\n\n".into(),
        good.trim_end_matches('\n').to_owned(),
        format!("hello\n\n{}\n", good.split_once("\n\n").expect("split").1),
        format!("hello\n\n- example.com/log {sig_b64}\n"),
        format!("hello\n\n—example.com/log {sig_b64}\n"),
        format!("hello\n\n— example.com/log\n"),
        format!(
            "hello\n\n— example.com/log {}\n",
            &sig_b64[..sig_b64.len() - 2]
        ),
        "hello\n\n— example.com/log AAAA\n".into(),
        "hello\n\n— example.com/log AAAAAA==\n".into(),
        "hello\n\n—  AAAAAQE=\n".into(),
        "hello\n\n— a+b AAAAAQE=\n".into(),
        format!("hel\tlo\n\n{}", line("hel\tlo\n")),
        format!("hel\rlo\n\n{}", line("hel\rlo\n")),
        format!("hello\n\n{}", line("hello\n").replace('\n', "\r\n")),
    ];
    for c in &cases {
        let ours = Note::parse(c.as_bytes());
        let theirs = signed_note::Note::from_bytes(c.as_bytes());
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "note {c:?}: ours {ours:?}, theirs {theirs:?}"
        );
        if let (Ok(o), Ok(t)) = (ours, theirs) {
            assert_eq!(o.text().as_bytes(), t.text(), "text of {c:?}");
            assert_eq!(
                o.to_text().as_bytes(),
                &t.to_bytes()[..],
                "encoding of {c:?}"
            );
        }
    }
}

/// `cosignature/v1` (type 0x04, c2sp.org/tlog-cosignature): neither signed_note 0.2 nor
/// tlog_tiles 0.2 implements it (signed_note refuses a type-0x04 vkey as an unknown
/// algorithm; tlog_tiles has no note code). What can still be checked independently: the key
/// id (signed_note's generic `key_id` over `0x04 || key`), the line syntax (signed_note parses
/// the cosigned note and re-encodes it byte for byte), and the Ed25519 signature itself, with
/// signed_note's verifier (ed25519-dalek 2) over the message as the spec writes it.
#[test]
fn cosignature_v1_partial_cross_check() {
    let mut rng = SplitMix(6);
    let log = NoteSigner::from_seed("example.com/log", KeyType::Ed25519, &rng.bytes32())
        .expect("log key");
    let witness = NoteSigner::from_seed("witness.example/w1", KeyType::Cosignature, &rng.bytes32())
        .expect("witness key");
    let wkey = witness.verifier();
    assert!(matches!(
        signed_note::StandardVerifier::new(&wkey.to_vkey()),
        Err(signed_note::VerifierError::Alg)
    ));
    let mut material = vec![0x04];
    material.extend_from_slice(&wkey.public_bytes());
    assert_eq!(wkey.id(), signed_note::key_id(wkey.name(), &material));

    let text = "example.com/log\n1234\nPlbu6KMlMwFBIM1rOD0pCaPUqh8fpDOXBoe9bBwiG2c=\n";
    for t in [0u64, 1, 1_700_000_000, i64::MAX as u64] {
        let mut note = Note::unsigned(text).expect("text");
        note.sign(&log, 0).expect("log signs");
        note.sign(&witness, t).expect("witness cosigns");
        let bytes = note.to_text();
        note.open(std::slice::from_ref(wkey))
            .expect("we verify our cosignature");

        let theirs = signed_note::Note::from_bytes(bytes.as_bytes()).expect("signed_note parses");
        assert_eq!(String::from_utf8(theirs.to_bytes()).expect("utf-8"), bytes);
        // The log's signature verifies with signed_note; the cosignature is reported as
        // unverified (no verifier for it).
        let (verified, unverified) = theirs
            .verify(&their_verifiers(&[&log.verifier().to_vkey()]))
            .expect("log signature");
        assert_eq!(verified.len(), 1);
        assert_eq!(unverified.len(), 1);
        let cosig = &unverified[0];
        assert_eq!(cosig.name(), wkey.name());
        assert_eq!(cosig.id(), wkey.id());
        let sig = cosig.signature();
        assert_eq!(sig.len(), 8 + 64);
        assert_eq!(sig[..8], t.to_be_bytes());
        // The same public key as a type-0x01 key gives an Ed25519 verifier of the raw key.
        let ed = signed_note::StandardVerifier::new(&wkey.with_kind(KeyType::Ed25519).to_vkey())
            .expect("their verifier");
        let message = format!("cosignature/v1\ntime {t}\n{text}");
        assert!(
            ed.verify(message.as_bytes(), &sig[8..]),
            "cosignature at {t}"
        );
        assert!(!ed.verify(text.as_bytes(), &sig[8..]));
    }
}

// ---------------------------------------------------------------------------------------------
// 3. tlog-tiles against tlog_tiles.
//
// tlog_tiles 0.2 writes the sumdb form of tile paths, `tile/<H>/<L>/<N>[.p/<W>]` with the
// tile height H (8 here) and `data` for record tiles; C2SP tlog-tiles dropped the height and
// names the entry bundles `entries`. The index and width encodings are the same, so paths are
// compared after that one renaming.

fn their_path_to_c2sp(p: &str) -> String {
    let rest = p
        .strip_prefix("tile/8/")
        .expect("a height-8 sumdb tile path");
    match rest.strip_prefix("data/") {
        Some(r) => format!("tile/entries/{r}"),
        None => format!("tile/{rest}"),
    }
}

fn their_tile(id: &TileId) -> Tile {
    match id.kind {
        TileKind::Hashes(l) => Tile::new(8, l, id.index, u32::from(id.width), false),
        TileKind::Entries => Tile::new(8, 0, id.index, u32::from(id.width), true),
    }
}

#[test]
fn tile_paths_match_tlog_tiles() {
    let mut rng = SplitMix(8);
    let mut indexes: Vec<u64> = vec![
        0,
        1,
        9,
        10,
        99,
        100,
        999,
        1000,
        1001,
        999_999,
        1_000_000,
        1_234_067,
        10u64.pow(18) - 1,
        10u64.pow(18),
        u64::MAX - 1,
        u64::MAX,
    ];
    for _ in 0..64 {
        let bits = rng.below(64);
        indexes.push(rng.next() >> bits);
    }
    let mut checked = 0;
    for kind in (0..64u8)
        .map(TileKind::Hashes)
        .chain(std::iter::once(TileKind::Entries))
    {
        for &index in &indexes {
            for width in [1u16, 2, 17, 100, 255, 256] {
                let id = TileId { kind, index, width };
                let theirs = their_tile(&id);
                let ours = id.path();
                assert_eq!(ours, their_path_to_c2sp(&theirs.path()), "{id:?}");
                assert_eq!(TileId::parse(&ours).expect("we parse our path"), id);
                let back = Tile::from_path(&theirs.path()).expect("they parse their path");
                assert_eq!(back, theirs);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 65 * 80 * 6);
}

/// Checkpoint bodies: same text out, same fields in, same verdict on malformed ones.
#[test]
fn checkpoints_match_tlog_tiles() {
    let mut rng = SplitMix(9);
    let origins = [
        "example.com/log",
        "a",
        "log.cloister.test/prod-1",
        "ünï cödé — origin",
    ];
    let extensions: [&[&str]; 4] = [&[], &["ext"], &["a b c", "— x y"], &["1", "2", "3"]];
    for (k, origin) in origins.iter().enumerate() {
        for size in [0, 1, 255, 256, 70_000, rng.next(), u64::MAX] {
            let ext = extensions[((k as u64).wrapping_add(size) % 4) as usize];
            let ours = Checkpoint {
                origin: (*origin).to_owned(),
                size,
                root: rng.bytes32(),
                extensions: ext.iter().map(|s| (*s).to_owned()).collect(),
            };
            let ext_text: String = ext.iter().map(|e| format!("{e}\n")).collect();
            let theirs = tlog_tiles::Checkpoint::new(origin, size, tt(&ours.root), &ext_text)
                .expect("their checkpoint");
            let text = ours.to_text();
            assert_eq!(text.as_bytes(), &theirs.to_bytes()[..]);
            assert_eq!(Checkpoint::parse(&text).expect("we parse"), ours);
            let parsed = tlog_tiles::Checkpoint::from_bytes(text.as_bytes()).expect("they parse");
            assert_eq!(parsed, theirs);
        }
    }

    let root = "Plbu6KMlMwFBIM1rOD0pCaPUqh8fpDOXBoe9bBwiG2c=";
    let cases: Vec<String> = vec![
        format!("o\n1\n{root}\n"),
        format!("o\n1\n{root}\next\n"),
        format!("o\n18446744073709551615\n{root}\n"),
        format!("o\n18446744073709551616\n{root}\n"),
        format!("o\n0\n{root}\n"),
        format!("o\n01\n{root}\n"),
        format!("o\n+1\n{root}\n"),
        format!("o\n-1\n{root}\n"),
        format!("o\n 1\n{root}\n"),
        format!("o\n1 \n{root}\n"),
        format!("o\n\n{root}\n"),
        format!("o\n1\n{root}"),
        format!("o\n1\n{root}\n\n"),
        format!("o\n1\n{root}\next\n\n"),
        format!("o\n1\n{root}\n\next\n"),
        format!("\n1\n{root}\n"),
        format!("o\n1\n{}\n", &root[..root.len() - 1]),
        format!("o\n1\n{}\n", root.replace('=', "")),
        format!("o\n1\n{}A=\n", &root[..root.len() - 2]),
        format!("o\n1\n{}\n", &root[4..]),
        format!("o\n1\n{root}AAAA\n"),
        format!("o\n1\n{}d=\n", &root[..root.len() - 2]),
        "o\n1\n".into(),
        "o\n".into(),
        String::new(),
    ];
    for c in &cases {
        let ours = Checkpoint::parse(c);
        let theirs = tlog_tiles::Checkpoint::from_bytes(c.as_bytes());
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "checkpoint {c:?}: ours {ours:?}, theirs {theirs:?}"
        );
        if let (Ok(o), Ok(t)) = (ours, theirs) {
            assert_eq!(o.origin, t.origin());
            assert_eq!(o.size, t.size());
            assert_eq!(tt(&o.root), *t.hash());
            let ext: String = o.extensions.iter().map(|e| format!("{e}\n")).collect();
            assert_eq!(ext, t.extension());
        }
    }
}

/// tlog_tiles' hash storage (sumdb's stored-hash layout), filled record by record with
/// `stored_hashes`: the independent source of every tile's contents.
struct StoredHashes(Vec<tlog_tiles::Hash>);

impl HashReader for StoredHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                self.0
                    .get(i as usize)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Our written tiles, served to tlog_tiles' tile reader (which authenticates them against the
/// tree hash before handing out any hash).
struct OurTiles<'a>(&'a HashMap<String, Vec<u8>>);

impl TileReader for OurTiles<'_> {
    fn height(&self) -> u8 {
        8
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let p = their_path_to_c2sp(&t.path());
                self.0
                    .get(&p)
                    .cloned()
                    .ok_or_else(|| tlog_tiles::Error::InvalidInput(format!("no tile {p}")))
            })
            .collect()
    }
    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

#[test]
fn tiles_match_tlog_tiles() {
    // 70,000 entries in batches that start and end on and around tile boundaries at every
    // level, the last ones crossing the first level-2 tile (65,536 leaves).
    const BATCHES: &[usize] = &[1, 2, 253, 1, 511, 513, 1, 3000, 61_255, 4463];
    let total: usize = BATCHES.iter().sum();
    assert_eq!(total, 70_000);
    let data: Vec<Vec<u8>> = (0..total).map(leaf_data).collect();

    let mut store: HashMap<String, Vec<u8>> = HashMap::new();
    let mut stored = StoredHashes(Vec::new());
    let mut leaves: Vec<Hash> = Vec::new();
    let mut rng = SplitMix(10);
    let mut size = 0u64;
    let mut hash_tiles_compared = 0usize;
    for &b in BATCHES {
        let old = size;
        let new = old + b as u64;
        let batch = &data[old as usize..new as usize];

        // Ours.
        let (writes, new_leaves) = tiles::append(old, batch, |id| {
            store
                .get(&id.path())
                .cloned()
                .ok_or_else(|| TlogError::Tile(format!("missing {}", id.path())))
        })
        .expect("append");
        leaves.extend(new_leaves);

        // Theirs: stored hashes record by record, then the tiles to publish and their data.
        for (n, d) in (old..new).zip(batch) {
            let hs = tlog_tiles::stored_hashes(n, d, &stored).expect("stored hashes");
            assert_eq!(stored.0.len() as u64, tlog_tiles::stored_hash_index(0, n));
            stored.0.extend(hs);
        }
        assert_eq!(stored.0.len() as u64, tlog_tiles::stored_hash_count(new));
        let their_tiles = Tile::new_tiles(8, old, new);

        let (hash_writes, entry_writes): (Vec<&TileWrite>, Vec<&TileWrite>) = writes
            .iter()
            .partition(|w| matches!(w.id.kind, TileKind::Hashes(_)));
        let our_paths: Vec<String> = hash_writes.iter().map(|w| w.id.path()).collect();
        let their_paths: Vec<String> = their_tiles
            .iter()
            .map(|t| their_path_to_c2sp(&t.path()))
            .collect();
        assert_eq!(
            our_paths.iter().collect::<BTreeSet<_>>(),
            their_paths.iter().collect::<BTreeSet<_>>(),
            "hash tiles written for {old} -> {new}"
        );
        assert_eq!(our_paths.len(), their_paths.len(), "no tile twice");
        for t in &their_tiles {
            let path = their_path_to_c2sp(&t.path());
            let ours = hash_writes
                .iter()
                .find(|w| w.id.path() == path)
                .expect("same set");
            let theirs = t.read_data(&stored).expect("their tile data");
            assert_eq!(ours.bytes, theirs, "contents of {path} at {old} -> {new}");
            hash_tiles_compared += 1;
        }

        // Entry bundles: only the paths can be compared (sumdb's data tiles have no defined
        // encoding in tlog_tiles; the C2SP u16-length bundle format is not theirs).
        let our_bundles: BTreeSet<String> = entry_writes.iter().map(|w| w.id.path()).collect();
        let their_bundles: BTreeSet<String> = their_tiles
            .iter()
            .filter(|t| t.level() == 0)
            .map(|t| {
                let mut d = *t;
                d.set_is_data();
                their_path_to_c2sp(&d.path())
            })
            .collect();
        assert_eq!(
            our_bundles, their_bundles,
            "bundles written for {old} -> {new}"
        );

        for w in writes {
            store.insert(w.id.path(), w.bytes);
        }
        size = new;

        // tlog_tiles reads our tiles: it authenticates them against the root, computes the
        // root and proofs from them; ours from the same tiles must agree.
        let root = merkle::root_from_leaf_hashes(&leaves);
        let reader = OurTiles(&store);
        let thr = TileHashReader::new(size, tt(&root), &reader);
        assert_eq!(
            tlog_tiles::tree_hash(size, &thr).expect("their root from our tiles"),
            tt(&root)
        );
        let mut ours_src = TileHashes::new(size, |id: TileId| {
            store
                .get(&id.path())
                .cloned()
                .ok_or_else(|| TlogError::Tile(format!("missing {}", id.path())))
        });
        for i in samples(&mut rng, 0, size - 1, size) {
            let theirs = tlog_tiles::prove_record(size, i, &thr).expect("their record proof");
            let ours = merkle::inclusion_proof(&mut ours_src, i, size).expect("our proof");
            assert_eq!(tt_vec(&ours), theirs, "record proof {i} in {size}");
            merkle::verify_inclusion(i, size, &leaves[i as usize], &ours, &root).expect("verifies");
        }
        for m in samples(&mut rng, 1, size, size) {
            let theirs = tlog_tiles::prove_tree(size, m, &thr).expect("their tree proof");
            let ours = merkle::consistency_proof(&mut ours_src, m, size).expect("our proof");
            assert_eq!(tt_vec(&ours), theirs, "tree proof {m} -> {size}");
        }
    }
    assert!(hash_tiles_compared > 280, "{hash_tiles_compared}");
}
