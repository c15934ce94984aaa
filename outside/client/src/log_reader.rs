//! Reading a transparency log's static files (`checkpoint`, `tile/…`) from its base URL or
//! from a directory holding a copy of them. Nothing read is trusted here: callers verify it
//! (`cloister_transparency::replay`, `cloister_tlog::verify_checkpoint`).

use std::path::Path;
use std::time::Duration;

/// Largest file read from a log (a tile is 8 KiB, an entry bundle at most 256 × 64 KiB).
pub const MAX_FILE_BYTES: u64 = 17 << 20;

/// A log's files, from `http://…` / `https://…` or a directory.
pub struct LogReader {
    base: String,
    agent: ureq::Agent,
}

impl LogReader {
    /// A reader of the log at `log`; each HTTP request may take `timeout`.
    pub fn new(log: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            base: log.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    /// Whether the log is read over HTTP (not from a directory).
    pub fn is_http(&self) -> bool {
        self.base.starts_with("http://") || self.base.starts_with("https://")
    }

    /// The file at `path` under the log (e.g. `checkpoint`, `tile/0/000.p/3`).
    pub fn fetch(&self, path: &str) -> Result<Vec<u8>, String> {
        if self.is_http() {
            let mut resp = self
                .agent
                .get(format!("{}/{path}", self.base))
                .call()
                .map_err(|e| format!("{path}: {e}"))?;
            if resp.status().as_u16() != 200 {
                return Err(format!("{path}: HTTP {}", resp.status().as_u16()));
            }
            resp.body_mut()
                .with_config()
                .limit(MAX_FILE_BYTES)
                .read_to_vec()
                .map_err(|e| format!("{path}: {e}"))
        } else {
            std::fs::read(Path::new(&self.base).join(path)).map_err(|e| format!("{path}: {e}"))
        }
    }
}
