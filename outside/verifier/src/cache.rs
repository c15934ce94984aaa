//! A cache of verified certificate chains, owned by the caller.
//!
//! Verifying ARK -> ASK -> VCEK costs two RSA-4096 signature checks and certificate
//! parsing; a client that talks to the same host again (or fetches session-bound evidence
//! after the certificate's evidence, both signed by the same VCEK) can skip it. The cache
//! is plain data: no I/O, no clock, no interior mutability; the caller passes it to
//! [`crate::verify_with_cache`] and decides where it lives.
//!
//! An entry is keyed by SHA-256 over the trusted roots, the product, the key kind and the
//! exact DER of the ARK, intermediate and VCEK/VLEK given with the evidence, so a change of
//! policy roots or of any certificate misses the cache. A hit is only used while `now` is
//! within the VCEK/VLEK's validity; the ARK's and intermediate's validity were checked when
//! the entry was made. The cache holds at most [`ChainCache::CAPACITY`] entries and drops
//! the oldest when full.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::chain::{TrustedRoots, VerifiedVek};
use crate::report::{EndorsementKind, Product};
use crate::Evidence;

/// Verified chains, most recent last.
#[derive(Debug, Clone, Default)]
pub struct ChainCache {
    entries: VecDeque<([u8; 32], VerifiedVek)>,
}

impl ChainCache {
    /// The number of chains kept.
    pub const CAPACITY: usize = 64;

    /// An empty cache.
    pub fn new() -> ChainCache {
        ChainCache::default()
    }

    /// The number of cached chains.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn key(
        roots: &TrustedRoots,
        evidence: &Evidence,
        product: Product,
        kind: EndorsementKind,
    ) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(product.name().as_bytes());
        field(kind.name().as_bytes());
        for root in roots.roots() {
            field(root.product().name().as_bytes());
            field(root.ark_der());
            field(format!("{:?}", root.link_algorithm()).as_bytes());
            for intermediate in root.intermediates() {
                field(intermediate.unwrap_or_default());
            }
        }
        field(evidence.ark_der.as_deref().unwrap_or_default());
        field(evidence.intermediate_der.as_deref().unwrap_or_default());
        field(&evidence.vek_der);
        h.finalize().into()
    }

    pub(crate) fn get(&self, key: &[u8; 32], now: SystemTime) -> Option<VerifiedVek> {
        let now = match now.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).ok()?,
            Err(_) => return None,
        };
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| v.not_before <= now && now <= v.not_after)
            .cloned()
    }

    pub(crate) fn insert(&mut self, key: [u8; 32], vek: VerifiedVek) {
        self.entries.retain(|(k, _)| *k != key);
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back((key, vek));
    }
}
