//! The host configuration file (TOML).
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8080"      # loopback by default
//! rotate_tls_key_secs = 3600     # RA-TLS key and certificate rotation
//!
//! [limits]                       # all optional; see cloister_runtime::Limits
//! deadline_ms = 2000             # wall time per request, host calls included
//! max_concurrent_per_plugin = 32 # one plugin's share of max_concurrent_instances
//!
//! [[plugin]]
//! name = "echo"                   # must equal the plugin's metadata name
//! component = "plugins/echo.wasm" # relative to this file
//! signature = "plugins/echo.wasm.dsse.json"
//! signers = ["keys/echo.pub.pem"] # Ed25519 SPKI PEM files trusted for it
//! models = []                     # models this plugin may use
//!
//! [models]                        # optional; see docs/models.md
//! dir = "../target/models"        # written by `cloister models fetch`
//! load = ["all-minilm-l6-v2"]     # verified and loaded before the plugins
//! # manifest = "manifest.toml"    # default: the one compiled into the host
//! # threads = 1                   # threads one embed call may use (its batches run in parallel)
//!
//! [transparency]                  # optional; see docs/transparency.md
//! log = "/var/lib/cloister/log"  # a directory holding a copy of the log's files
//! policy = "tlog.policy"          # C2SP tlog-policy: log key, witnesses, quorum
//! # max_age_secs = 3600           # older witness cosignatures do not count
//! # refresh_secs = 300            # new checkpoint and proofs this often (and on SIGHUP)
//! ```

use cloister_runtime::Limits;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Per-request limits.
    #[serde(default)]
    pub limits: Limits,
    /// The plugins to load, in this order.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginConfig>,
    /// The models to verify and load (before the plugins).
    #[serde(default)]
    pub models: ModelsConfig,
    /// Require every plugin, model and the CVM image to be in a transparency log (optional).
    #[serde(default)]
    pub transparency: Option<TransparencyConfig>,
    /// The tunnel endpoint for sessions through an Oblivious HTTP gateway (optional).
    #[serde(default)]
    pub tunnel: Option<TunnelConfig>,
}

/// The `[tunnel]` table: a second listener that takes RA-TLS sessions as TLS records in
/// HTTP bodies, from the operator's Oblivious HTTP gateway (see docs/transport.md). It needs
/// a TEE: every session gets its own attested certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelConfig {
    /// Address of the tunnel listener (plain HTTP: the bodies are TLS records).
    pub listen: SocketAddr,
    /// How many tunneled sessions may live at once; default 1024.
    #[serde(default = "default_tunnel_sessions")]
    pub max_sessions: usize,
    /// Seconds a session may stay unused before it is dropped; default 60.
    #[serde(default = "default_tunnel_idle")]
    pub idle_secs: u64,
}

fn default_tunnel_sessions() -> usize {
    1024
}

fn default_tunnel_idle() -> u64 {
    60
}

/// The `[transparency]` table: where the log is and what the host requires of it. With it,
/// the host refuses to start with a plugin or model that the log does not prove, or that it
/// revokes, and carries the proofs in its evidence (see docs/transparency.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransparencyConfig {
    /// A directory holding a copy of the log's static files (`checkpoint`, `tile/…`), kept
    /// up to date outside the CVM (the log's own directory, or any mirror of its URL). The
    /// host has no HTTP client; the copy is untrusted: everything read from it is verified.
    pub log: PathBuf,
    /// The C2SP tlog-policy file (log key, witness keys, quorum), relative to this file.
    pub policy: PathBuf,
    /// Witness cosignatures older than this do not count (default 3600).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// How often to fetch a new checkpoint and proofs (default 300; SIGHUP also refreshes).
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

fn default_max_age() -> u64 {
    3600
}

fn default_refresh() -> u64 {
    300
}

/// Which models the host loads, and from where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// The data directory `cloister models fetch` wrote (one
    /// sub-directory per model). Required when `load` is not empty.
    pub dir: Option<PathBuf>,
    /// The manifest whose pins the files must match; default: the manifest
    /// compiled into the host (`models/manifest.toml` of its source).
    pub manifest: Option<PathBuf>,
    /// The models to load, in this order.
    #[serde(default)]
    pub load: Vec<String>,
    /// Threads one `embed` call may use (its batches run in parallel);
    /// default 1.
    #[serde(default = "one_thread")]
    pub threads: usize,
}

fn one_thread() -> usize {
    1
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: None,
            manifest: None,
            load: Vec::new(),
            threads: one_thread(),
        }
    }
}

/// Listener settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; loopback by default.
    pub listen: SocketAddr,
    /// Seconds between RA-TLS key rotations (a fresh key pair, certificate
    /// and cert-bound report); default 3600. Each certificate is valid for
    /// twice this period.
    pub rotate_tls_key_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rotate_tls_key_secs: 3600,
        }
    }
}

/// One plugin to load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin's name; must equal its metadata and signed subject name.
    pub name: String,
    /// Path of the component (`.wasm`).
    pub component: PathBuf,
    /// Path of the detached DSSE envelope signing the component.
    pub signature: PathBuf,
    /// Paths of the Ed25519 public keys (SPKI PEM) trusted to sign it.
    pub signers: Vec<PathBuf>,
    /// Models this plugin may use (it must also declare them).
    #[serde(default)]
    pub models: Vec<String>,
    /// This plugin's linear-memory budget per instance, overriding
    /// `limits.max_memory_bytes` (e.g. writing-help, whose pre-initialized
    /// snapshot starts with ~160 MiB of dictionary and linters).
    #[serde(default)]
    pub max_memory_bytes: Option<usize>,
}

/// The configuration could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation.
        message: String,
    },
    /// A value is not acceptable.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// The largest per-instance memory budget of any plugin: the plugin
    /// runtime's memory slots are sized for it.
    pub fn memory_pool_bytes(&self) -> usize {
        self.plugins
            .iter()
            .filter_map(|p| p.max_memory_bytes)
            .fold(self.limits.max_memory_bytes, usize::max)
    }

    /// Reads and validates a configuration file. Relative paths inside it are
    /// resolved against the file's directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            ConfigError::Invalid { message, .. } => ConfigError::Invalid {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates configuration text; `base` resolves relative paths.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: PathBuf::new(),
            message,
        };
        config.limits.validate().map_err(invalid)?;
        if !(60..=7 * 24 * 3600).contains(&config.server.rotate_tls_key_secs) {
            return Err(invalid(format!(
                "server.rotate_tls_key_secs = {}: must be between 60 and 604800",
                config.server.rotate_tls_key_secs
            )));
        }
        let m = &mut config.models;
        let mut loaded = std::collections::BTreeSet::new();
        for name in &m.load {
            if !loaded.insert(name.as_str()) {
                return Err(invalid(format!("models.load lists `{name}` twice")));
            }
        }
        if !m.load.is_empty() && m.dir.is_none() {
            return Err(invalid(
                "models.load is not empty but models.dir is not set: name the directory \
                 `cloister models fetch` wrote"
                    .into(),
            ));
        }
        if !(1..=64).contains(&m.threads) {
            return Err(invalid(format!(
                "models.threads = {}: must be between 1 and 64",
                m.threads
            )));
        }
        m.dir = m.dir.as_ref().map(|d| base.join(d));
        m.manifest = m.manifest.as_ref().map(|d| base.join(d));
        for p in &config.plugins {
            if let Some(model) = p.models.iter().find(|x| !loaded.contains(x.as_str())) {
                return Err(invalid(format!(
                    "plugin `{}` is allowed model `{model}`, which models.load does not load",
                    p.name
                )));
            }
        }
        if let Some(t) = &mut config.transparency {
            if !(10..=7 * 24 * 3600).contains(&t.refresh_secs) {
                return Err(invalid(format!(
                    "transparency.refresh_secs = {}: must be between 10 and 604800",
                    t.refresh_secs
                )));
            }
            if t.max_age_secs < t.refresh_secs {
                return Err(invalid(
                    "transparency.max_age_secs is shorter than refresh_secs: the proofs would go stale between refreshes".into(),
                ));
            }
            if t.log.to_string_lossy().contains("://") {
                return Err(invalid(
                    "transparency.log is a directory holding the log's files: the host has no HTTP \
                     client (mirror the log's URL into a directory outside the CVM)"
                        .into(),
                ));
            }
            t.log = base.join(&t.log);
            t.policy = base.join(&t.policy);
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &mut config.plugins {
            cloister_signing::validate_plugin_name(&p.name)
                .map_err(|e| invalid(format!("plugin name: {e}")))?;
            if !seen.insert(p.name.clone()) {
                return Err(invalid(format!("plugin `{}` is listed twice", p.name)));
            }
            if p.signers.is_empty() {
                return Err(invalid(format!(
                    "plugin `{}` has no trusted signers: every plugin must name at least one",
                    p.name
                )));
            }
            if let Some(bytes) = p.max_memory_bytes {
                if !(1 << 16..=1 << 32).contains(&bytes) {
                    return Err(invalid(format!(
                        "plugin `{}`: max_memory_bytes = {bytes} must be between 65536 and 4 GiB",
                        p.name
                    )));
                }
            }
            p.component = base.join(&p.component);
            p.signature = base.join(&p.signature);
            for s in &mut p.signers {
                *s = base.join(&*s);
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[limits]
deadline_ms = 500

[[plugin]]
name = "echo"
component = "echo.wasm"
signature = "echo.wasm.dsse.json"
signers = ["k.pub.pem"]
"#;

    #[test]
    fn defaults_are_safe() {
        let c = Config::from_toml(GOOD, Path::new("/etc/cloister")).unwrap();
        assert!(c.server.listen.ip().is_loopback());
        assert_eq!(c.limits.deadline_ms, 500);
        assert_eq!(
            c.limits.max_memory_bytes,
            Limits::default().max_memory_bytes
        );
        assert_eq!(c.plugins[0].component, Path::new("/etc/cloister/echo.wasm"));
        assert!(c.plugins[0].models.is_empty());
        assert!(c.models.load.is_empty());
        assert_eq!(c.models.threads, 1);

        let with_models = format!(
            "{GOOD}models = [\"all-minilm-l6-v2\"]\n\n[models]\ndir = \"data\"\nload = [\"all-minilm-l6-v2\"]\n"
        );
        let c = Config::from_toml(&with_models, Path::new("/etc/cloister")).unwrap();
        assert_eq!(
            c.models.dir.as_deref(),
            Some(Path::new("/etc/cloister/data"))
        );
        assert_eq!(c.plugins[0].models, ["all-minilm-l6-v2"]);
    }

    #[test]
    fn refuses_bad_configs() {
        let cases = [
            (
                GOOD.replace("deadline_ms = 500", "deadline_ms = 0"),
                "deadline_ms",
            ),
            (GOOD.replace("deadline_ms", "dedline_ms"), "unknown field"),
            (GOOD.replace(r#"["k.pub.pem"]"#, "[]"), "no trusted signers"),
            (
                format!("{GOOD}models = [\"all-minilm-l6-v2\"]\n"),
                "which models.load does not load",
            ),
            (
                format!("{GOOD}\n[models]\nload = [\"m\"]\n"),
                "models.dir is not set",
            ),
            (
                format!("{GOOD}\n[models]\ndir = \"d\"\nload = [\"m\", \"m\"]\n"),
                "twice",
            ),
            (
                format!("{GOOD}\n[models]\ndir = \"d\"\nthreads = 0\n"),
                "models.threads",
            ),
            (
                GOOD.replace(r#"name = "echo""#, r#"name = "Echo!""#),
                "plugin name",
            ),
            (
                format!("{GOOD}\n{}", &GOOD[GOOD.find("[[plugin]]").unwrap()..]),
                "listed twice",
            ),
            (
                format!("{GOOD}\n[transparency]\nlog = \"http://log.example\"\npolicy = \"p\"\n"),
                "no HTTP client",
            ),
            (
                format!("{GOOD}\n[transparency]\nlog = \"l\"\npolicy = \"p\"\nrefresh_secs = 5\n"),
                "transparency.refresh_secs",
            ),
            (
                format!("{GOOD}\n[transparency]\nlog = \"l\"\npolicy = \"p\"\nmax_age_secs = 60\nrefresh_secs = 600\n"),
                "stale between refreshes",
            ),
            (
                format!("{GOOD}\n[transparency]\nlog = \"l\"\n"),
                "missing field `policy`",
            ),
        ];
        for (text, needle) in cases {
            let err = Config::from_toml(&text, Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "expected `{needle}` in `{err}`");
        }
    }

    #[test]
    fn per_plugin_memory_budget_sizes_the_pool() {
        let c = Config::from_toml(GOOD, Path::new(".")).unwrap();
        assert_eq!(c.plugins[0].max_memory_bytes, None);
        assert_eq!(c.memory_pool_bytes(), Limits::default().max_memory_bytes);
        let big = format!("{GOOD}max_memory_bytes = 268435456\n");
        let c = Config::from_toml(&big, Path::new(".")).unwrap();
        assert_eq!(c.plugins[0].max_memory_bytes, Some(256 << 20));
        assert_eq!(c.memory_pool_bytes(), 256 << 20);
        let tiny = format!("{GOOD}max_memory_bytes = 100\n");
        let err = Config::from_toml(&tiny, Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("max_memory_bytes"), "{err}");
    }
}
