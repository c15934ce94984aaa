//! RFC 6962 / RFC 9162 Merkle tree hashing and proofs (SHA-256).
//!
//! - leaf hash: `SHA-256(0x00 || data)`; interior node: `SHA-256(0x01 || left || right)`;
//!   the empty tree's hash is `SHA-256("")` ([`EMPTY_ROOT`]).
//! - Verification ([`verify_inclusion`], [`verify_consistency`]) follows RFC 9162
//!   sections 2.1.3.2 and 2.1.4.2.
//! - Generation ([`inclusion_proof`], [`consistency_proof`]) follows RFC 6962 section 2.1.1
//!   and 2.1.2 over any [`SubtreeSource`] that can give the hash of a complete, aligned
//!   subtree (the tiles of a log, or an in-memory list of leaves).
//!
//! # The `size1 = 0` case
//!
//! RFC 9162 treats the empty tree as consistent with every tree. Cloister accepts a
//! consistency check from size 0 only when the claimed old root *is* the empty tree's hash
//! and the proof is empty: an old root that is anything else is a claim about a tree that
//! cannot exist, and is refused (the transparency-dev library refuses size 0 outright;
//! tlog-witness requires the same empty proof from old size 0).

use sha2::{Digest, Sha256};

use crate::TlogError;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256("")`, the hash of the empty tree.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Proofs longer than this are refused without looking at them (a tree of 2^64 leaves needs
/// at most 64 hashes for inclusion and 2·64 for consistency).
pub const MAX_PROOF_HASHES: usize = 128;

/// The RFC 6962 leaf hash of `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// The RFC 6962 interior node hash of two children.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the tree whose leaf hashes are `leaves` (the empty tree's hash for none).
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n as u64) as usize;
            node_hash(
                &root_from_leaf_hashes(&leaves[..k]),
                &root_from_leaf_hashes(&leaves[k..]),
            )
        }
    }
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Checks that `leaf` is the leaf at `index` of the tree of `size` leaves with root `root`
/// (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), TlogError> {
    if index >= size {
        return Err(TlogError::Proof(format!(
            "inclusion: leaf index {index} is not below the tree size {size}"
        )));
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(TlogError::Proof(format!(
            "inclusion: {} proof hashes is more than any tree needs",
            proof.len()
        )));
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(TlogError::Proof(format!(
                "inclusion: the proof for leaf {index} of {size} has {} hashes, too many",
                proof.len()
            )));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(TlogError::Proof(format!(
            "inclusion: the proof for leaf {index} of {size} has {} hashes, too few",
            proof.len()
        )));
    }
    if &r != root {
        return Err(TlogError::Proof(format!(
            "inclusion: leaf {index} does not lead to the root of the tree of size {size}"
        )));
    }
    Ok(())
}

/// Checks that the tree of `size1` leaves with root `root1` is a prefix of the tree of
/// `size2` leaves with root `root2` (RFC 9162 section 2.1.4.2; `size1 = 0`: see the module
/// documentation).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), TlogError> {
    let fail = |why: String| {
        Err(TlogError::Proof(format!(
            "consistency {size1} -> {size2}: {why}"
        )))
    };
    if size1 > size2 {
        return fail("the old tree is larger than the new one".into());
    }
    if proof.len() > MAX_PROOF_HASHES {
        return fail(format!(
            "{} proof hashes is more than any tree needs",
            proof.len()
        ));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return fail("equal sizes need an empty proof".into());
        }
        if root1 != root2 {
            return fail("equal sizes with different roots (a fork)".into());
        }
        return Ok(());
    }
    if size1 == 0 {
        if !proof.is_empty() {
            return fail("from the empty tree the proof must be empty".into());
        }
        if root1 != &EMPTY_ROOT {
            return fail("the old root of an empty tree must be SHA-256(\"\")".into());
        }
        return Ok(());
    }
    if proof.is_empty() {
        return fail("the proof is empty".into());
    }
    // RFC 9162 2.1.4.2.
    let mut proof = proof;
    let owned;
    if size1.is_power_of_two() {
        let mut v = Vec::with_capacity(proof.len() + 1);
        v.push(*root1);
        v.extend_from_slice(proof);
        owned = v;
        proof = &owned;
    }
    let mut fn_ = size1 - 1;
    let mut sn = size2 - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = proof[0];
    let mut sr = proof[0];
    for c in &proof[1..] {
        if sn == 0 {
            return fail("the proof has too many hashes".into());
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return fail("the proof has too few hashes".into());
    }
    if &fr != root1 {
        return fail("the proof does not lead to the old root".into());
    }
    if &sr != root2 {
        return fail("the proof does not lead to the new root".into());
    }
    Ok(())
}

/// Where proof generation reads hashes from: the hash of the complete subtree at `level`
/// (`2^level` leaves) with `index` (covering leaves `index·2^level .. (index+1)·2^level`).
pub trait SubtreeSource {
    /// The hash of that subtree. It must exist in the tree the caller asks about.
    fn subtree(&mut self, level: u8, index: u64) -> Result<Hash, TlogError>;
}

/// An in-memory tree: every leaf hash.
impl SubtreeSource for &[Hash] {
    fn subtree(&mut self, level: u8, index: u64) -> Result<Hash, TlogError> {
        let width = 1u64.checked_shl(level.into()).unwrap_or(0);
        let start = index.checked_mul(width);
        let end = start.and_then(|s| s.checked_add(width));
        match (start, end) {
            (Some(s), Some(e)) if e <= self.len() as u64 && width > 0 => {
                Ok(root_from_leaf_hashes(&self[s as usize..e as usize]))
            }
            _ => Err(TlogError::Proof(format!(
                "no subtree at level {level}, index {index} in a tree of {} leaves",
                self.len()
            ))),
        }
    }
}

/// MTH(D[start..end]) where `start` is a multiple of the largest power of two not above
/// `end - start` (always true for the ranges RFC 6962's proofs visit).
pub fn range_hash(src: &mut impl SubtreeSource, start: u64, end: u64) -> Result<Hash, TlogError> {
    let n = end - start;
    if n == 0 {
        return Ok(EMPTY_ROOT);
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.subtree(n.trailing_zeros() as u8, start / n);
    }
    let k = largest_power_of_two_below(n);
    let left = range_hash(src, start, start + k)?;
    let right = range_hash(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 2.1.1).
pub fn inclusion_proof(
    src: &mut impl SubtreeSource,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TlogError> {
    if index >= size {
        return Err(TlogError::Proof(format!(
            "inclusion: leaf index {index} is not below the tree size {size}"
        )));
    }
    let mut out = Vec::new();
    path(src, index, 0, size, &mut out)?;
    Ok(out)
}

fn path(
    src: &mut impl SubtreeSource,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), TlogError> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(src, m, start, start + k, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        path(src, m - k, start + k, end, out)?;
        out.push(range_hash(src, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof from the tree of `size1` leaves to the one of `size2`
/// (RFC 6962 2.1.2). Empty when `size1` is 0 or equal to `size2`.
pub fn consistency_proof(
    src: &mut impl SubtreeSource,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, TlogError> {
    if size1 > size2 {
        return Err(TlogError::Proof(format!(
            "consistency: old size {size1} is larger than new size {size2}"
        )));
    }
    let mut out = Vec::new();
    if size1 == 0 || size1 == size2 {
        return Ok(out);
    }
    subproof(src, size1, 0, size2, true, &mut out)?;
    Ok(out)
}

fn subproof(
    src: &mut impl SubtreeSource,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), TlogError> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(range_hash(src, start, end)?);
        }
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(src, m, start, start + k, complete, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(range_hash(src, start, start + k)?);
    }
    Ok(())
}
