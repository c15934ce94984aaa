//! C2SP `tlog-tiles` (<https://c2sp.org/tlog-tiles>): the static layout of a log's Merkle
//! tree and entries.
//!
//! - `tile/<L>/<N>[.p/<W>]`: 256 (or, partial, `W` < 256) consecutive hashes at tree level
//!   `8·L`; `N` is written in 3-digit groups, all but the last prefixed with `x`
//!   (`1234067` → `x001/x234/067`).
//! - `tile/entries/<N>[.p/<W>]`: the entries of level-0 tile `N`, each prefixed by its
//!   big-endian u16 length.
//!
//! [`append`] computes the tiles and bundles to write when entries are added; [`TileHashes`]
//! reads hashes back out of tiles for proof generation.

use std::collections::HashMap;

use crate::merkle::{leaf_hash, root_from_leaf_hashes, Hash, SubtreeSource};
use crate::TlogError;

/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Largest entry a bundle can hold (u16 length prefix).
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;

/// Which tile: level (0..=63, or [`TileKind::Entries`]), index and width (1..=256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    /// Hash tile at a level, or an entry bundle.
    pub kind: TileKind,
    /// Index within its level.
    pub index: u64,
    /// Number of hashes (or entries); 256 for a full tile.
    pub width: u16,
}

/// A hash tile's level, or an entry bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// Hashes at tree level `8·level`.
    Hashes(u8),
    /// Entries of level-0 tile N.
    Entries,
}

impl TileId {
    /// The path under the log's prefix, e.g. `tile/0/x001/234.p/17`.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hashes(l) => l.to_string(),
            TileKind::Entries => "entries".to_owned(),
        };
        let mut s = format!("tile/{level}/{}", index_path(self.index));
        if u64::from(self.width) < TILE_WIDTH {
            s.push_str(&format!(".p/{}", self.width));
        }
        s
    }

    /// Parses a path made by [`TileId::path`] (strictly: canonical form only).
    pub fn parse(path: &str) -> Result<Self, TlogError> {
        let bad = || {
            TlogError::Tile(format!(
                "{} is not a tile path",
                cloister_display::Quoted(path)
            ))
        };
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (level, rest) = rest.split_once('/').ok_or_else(bad)?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let l = crate::checkpoint::parse_decimal(level, "level").map_err(|_| bad())?;
            if l > 63 {
                return Err(bad());
            }
            TileKind::Hashes(l as u8)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                let w = crate::checkpoint::parse_decimal(w, "width").map_err(|_| bad())?;
                if w == 0 || w >= TILE_WIDTH {
                    return Err(bad());
                }
                (i, w as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            let digits = if last { Some(*g) } else { g.strip_prefix('x') };
            let digits = digits.filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()));
            let d: u64 = digits.ok_or_else(bad)?.parse().map_err(|_| bad())?;
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(d))
                .ok_or_else(bad)?;
        }
        let id = TileId { kind, index, width };
        if id.path() != path {
            return Err(bad());
        }
        Ok(id)
    }
}

fn index_path(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// The width of hash tile `index` at tile level `level` in a tree of `size` leaves (0 if it
/// does not exist).
pub fn tile_width(level: u8, index: u64, size: u64) -> u16 {
    let entries = if u32::from(level) * 8 >= 64 {
        0
    } else {
        size >> (8 * u32::from(level))
    };
    let start = index.saturating_mul(TILE_WIDTH);
    entries.saturating_sub(start).min(TILE_WIDTH) as u16
}

/// Encodes the entries of one bundle.
pub fn encode_bundle(entries: &[&[u8]]) -> Result<Vec<u8>, TlogError> {
    let mut out = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len()).map_err(|_| {
            TlogError::Tile(format!(
                "an entry of {} bytes is larger than the {MAX_ENTRY_BYTES} a bundle holds",
                e.len()
            ))
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits a bundle into its entries; it must hold exactly `width` of them.
pub fn decode_bundle(bytes: &[u8], width: u16) -> Result<Vec<Vec<u8>>, TlogError> {
    let mut out = Vec::with_capacity(width.into());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(TlogError::Tile(
                "an entry bundle ends inside a length prefix".into(),
            ));
        }
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + len {
            return Err(TlogError::Tile(format!(
                "an entry bundle is truncated: entry {} claims {len} bytes, {} remain",
                out.len(),
                rest.len() - 2
            )));
        }
        out.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    if out.len() != usize::from(width) {
        return Err(TlogError::Tile(format!(
            "an entry bundle holds {} entries, expected {width}",
            out.len()
        )));
    }
    Ok(out)
}

/// Splits a hash tile into hashes; it must hold exactly `width` of them.
pub fn decode_hash_tile(bytes: &[u8], width: u16) -> Result<Vec<Hash>, TlogError> {
    if bytes.len() != usize::from(width) * 32 {
        return Err(TlogError::Tile(format!(
            "a tile of width {width} must be {} bytes, found {} (truncated or padded)",
            usize::from(width) * 32,
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// A tile or bundle to write, with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileWrite {
    /// Which one.
    pub id: TileId,
    /// Its full contents.
    pub bytes: Vec<u8>,
}

/// The tiles and bundles that change when `entries` are appended to a tree of `old_size`
/// leaves, and the new leaf hashes. `read` returns the existing contents of a partial tile
/// or bundle (it is only asked for the rightmost ones). Also returns the new root.
pub fn append(
    old_size: u64,
    entries: &[Vec<u8>],
    mut read: impl FnMut(TileId) -> Result<Vec<u8>, TlogError>,
) -> Result<(Vec<TileWrite>, Vec<Hash>), TlogError> {
    let mut writes = Vec::new();
    // Entry bundles.
    let first = old_size / TILE_WIDTH;
    let have = (old_size % TILE_WIDTH) as u16;
    let mut bundle: Vec<Vec<u8>> = if have > 0 {
        decode_bundle(
            &read(TileId {
                kind: TileKind::Entries,
                index: first,
                width: have,
            })?,
            have,
        )?
    } else {
        Vec::new()
    };
    for e in entries {
        if e.len() > MAX_ENTRY_BYTES {
            return Err(TlogError::Tile(format!(
                "an entry of {} bytes is larger than the {MAX_ENTRY_BYTES} a bundle holds",
                e.len()
            )));
        }
    }
    bundle.extend(entries.iter().cloned());
    for (i, chunk) in bundle.chunks(TILE_WIDTH as usize).enumerate() {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        writes.push(TileWrite {
            id: TileId {
                kind: TileKind::Entries,
                index: first + i as u64,
                width: chunk.len() as u16,
            },
            bytes: encode_bundle(&refs)?,
        });
    }
    // Hash tiles, level by level.
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let mut new_hashes = leaves.clone();
    let mut level: u8 = 0;
    while !new_hashes.is_empty() {
        if level > 63 {
            return Err(TlogError::Tile("the tree is too large".into()));
        }
        let old_n = old_size >> (8 * u32::from(level));
        let first = old_n / TILE_WIDTH;
        let have = (old_n % TILE_WIDTH) as u16;
        let mut buf = if have > 0 {
            decode_hash_tile(
                &read(TileId {
                    kind: TileKind::Hashes(level),
                    index: first,
                    width: have,
                })?,
                have,
            )?
        } else {
            Vec::new()
        };
        buf.extend_from_slice(&new_hashes);
        let mut next = Vec::new();
        for (i, chunk) in buf.chunks(TILE_WIDTH as usize).enumerate() {
            writes.push(TileWrite {
                id: TileId {
                    kind: TileKind::Hashes(level),
                    index: first + i as u64,
                    width: chunk.len() as u16,
                },
                bytes: chunk.concat(),
            });
            if chunk.len() as u64 == TILE_WIDTH {
                next.push(root_from_leaf_hashes(chunk));
            }
        }
        new_hashes = next;
        level += 1;
    }
    Ok((writes, leaves))
}

/// Reads subtree hashes of a tree of `size` leaves out of its hash tiles, fetched through
/// `fetch` (from disk or HTTP) and cached. Tiles are checked for length only: a caller
/// must check what it computes against a signed root.
pub struct TileHashes<F> {
    size: u64,
    fetch: F,
    cache: HashMap<TileId, Vec<Hash>>,
}

impl<F: FnMut(TileId) -> Result<Vec<u8>, TlogError>> TileHashes<F> {
    /// A reader for the tree of `size` leaves.
    pub fn new(size: u64, fetch: F) -> Self {
        Self {
            size,
            fetch,
            cache: HashMap::new(),
        }
    }

    fn tile(&mut self, level: u8, index: u64) -> Result<&Vec<Hash>, TlogError> {
        let width = tile_width(level, index, self.size);
        if width == 0 {
            return Err(TlogError::Tile(format!(
                "tile {level}/{index} does not exist in a tree of {} leaves",
                self.size
            )));
        }
        let id = TileId {
            kind: TileKind::Hashes(level),
            index,
            width,
        };
        if !self.cache.contains_key(&id) {
            let bytes = (self.fetch)(id)?;
            let hashes = decode_hash_tile(&bytes, width)
                .map_err(|e| TlogError::Tile(format!("{}: {e}", id.path())))?;
            self.cache.insert(id, hashes);
        }
        Ok(&self.cache[&id])
    }
}

impl<F: FnMut(TileId) -> Result<Vec<u8>, TlogError>> SubtreeSource for TileHashes<F> {
    fn subtree(&mut self, level: u8, index: u64) -> Result<Hash, TlogError> {
        let tile_level = level / 8;
        let h = u32::from(level % 8);
        let start = index
            .checked_shl(h)
            .filter(|s| s >> h == index)
            .ok_or_else(|| TlogError::Tile("subtree index out of range".into()))?;
        let count = 1u64 << h;
        let tile_index = start / TILE_WIDTH;
        let offset = (start % TILE_WIDTH) as usize;
        let tile = self.tile(tile_level, tile_index)?;
        let end = offset + count as usize;
        if end > tile.len() {
            return Err(TlogError::Tile(format!(
                "subtree {level}/{index} is not complete in a tree of {} leaves",
                self.size
            )));
        }
        Ok(root_from_leaf_hashes(&tile[offset..end]))
    }
}
