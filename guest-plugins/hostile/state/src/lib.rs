//! `hostile-state`: tries to carry state from one request to the next.
//!
//! Modes (input JSON):
//! - `{"mode":"count"}` increments a static counter and returns
//!   `{"count": n}`. With a fresh instance per request, n is always 1.
//! - `{"mode":"plant","secret":"…"}` copies the secret into a leaked heap
//!   buffer and into a `static mut` buffer, returns `{"planted":true}`.
//! - `{"mode":"scan","masked_hex":"…"}` scans the whole linear memory for the
//!   secret whose bytes, each XORed with 0x5A, are hex-encoded in
//!   `masked_hex`. The plain secret is never materialised by the scan itself.
//!   Returns `{"found": bool, "scanned_bytes": n}`.
//! - `{"mode":"plant_and_scan","secret":"…"}` plants then scans in the same
//!   instance: a positive control that must return `found: true`.
//!
//! The host must run every request in a fresh instance with fresh, zeroed
//! memory: a `scan` after another request's `plant` must find nothing, and
//! `count` must always return 1.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

use core::sync::atomic::{AtomicU64, Ordering};
use serde_json::json;

const MASK: u8 = 0x5A;
const STATIC_CAP: usize = 4096;

static COUNTER: AtomicU64 = AtomicU64::new(0);
static mut PLANTED: [u8; STATIC_CAP] = [0; STATIC_CAP];

struct HostileState;

fn plant(secret: &str) {
    let bytes = secret.as_bytes();
    // Heap copy, leaked so it stays in linear memory.
    let heap: &'static mut [u8] = Box::leak(bytes.to_vec().into_boxed_slice());
    core::hint::black_box(&*heap);
    // Static copy (truncated to the buffer size).
    let n = bytes.len().min(STATIC_CAP);
    unsafe {
        let dst = &raw mut PLANTED as *mut u8;
        for (i, b) in bytes[..n].iter().enumerate() {
            core::ptr::write_volatile(dst.add(i), *b);
        }
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    s.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// Scans linear memory for bytes `b` with `b ^ MASK == masked[j]`.
/// Returns (found, scanned_bytes).
fn scan(masked: &[u8]) -> (bool, usize) {
    let end = core::arch::wasm32::memory_size(0) * 65536;
    let start = 8usize;
    let scanned = end.saturating_sub(start);
    if masked.is_empty() || end < start + masked.len() {
        return (false, scanned);
    }
    for i in start..=end - masked.len() {
        let mut all = true;
        for (j, m) in masked.iter().enumerate() {
            // Address i+j (>= 8, so non-null) is inside linear memory;
            // read_volatile keeps the compiler from reasoning about it.
            let p = core::ptr::with_exposed_provenance::<u8>(i + j);
            let b = unsafe { core::ptr::read_volatile(p) };
            if b ^ MASK != *m {
                all = false;
                break;
            }
        }
        if all {
            return (true, scanned);
        }
    }
    (false, scanned)
}

impl Guest for HostileState {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-state".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: tries to keep counters and secrets between requests."
                .to_string(),
            models: Vec::new(),
        }
    }

    fn handle(input: String) -> Result<String, FeatureError> {
        let count = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
        let v: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| FeatureError::InvalidInput(format!("not JSON: {e}")))?;
        let mode = v.get("mode").and_then(|m| m.as_str()).unwrap_or("count");
        let secret = || {
            v.get("secret")
                .and_then(|s| s.as_str())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| FeatureError::InvalidInput("missing \"secret\"".to_string()))
        };
        let out = match mode {
            "count" => json!({ "count": count }),
            "plant" => {
                plant(secret()?);
                json!({ "planted": true })
            }
            "scan" => {
                let masked = v
                    .get("masked_hex")
                    .and_then(|s| s.as_str())
                    .and_then(decode_hex)
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| {
                        FeatureError::InvalidInput("missing or bad \"masked_hex\"".to_string())
                    })?;
                let (found, scanned) = scan(&masked);
                json!({ "found": found, "scanned_bytes": scanned })
            }
            "plant_and_scan" => {
                let s = secret()?;
                plant(s);
                let masked: Vec<u8> = s.bytes().map(|b| b ^ MASK).collect();
                let (found, scanned) = scan(&masked);
                json!({ "found": found, "scanned_bytes": scanned })
            }
            other => {
                return Err(FeatureError::InvalidInput(format!(
                    "unknown mode {other:?}"
                )));
            }
        };
        Ok(out.to_string())
    }
}

export!(HostileState);
