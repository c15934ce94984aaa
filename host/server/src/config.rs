//! The host configuration file (TOML).
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8080"      # loopback by default
//! rotate_tls_key_secs = 3600     # RA-TLS key and certificate rotation
//!
//! [limits]                       # all optional; see cloister_runtime::Limits
//! deadline_ms = 2000
//!
//! [[plugin]]
//! name = "echo"                   # must equal the plugin's metadata name
//! component = "plugins/echo.wasm" # relative to this file
//! signature = "plugins/echo.wasm.dsse.json"
//! signers = ["keys/echo.pub.pem"] # Ed25519 SPKI PEM files trusted for it
//! models = []                     # models this plugin may use
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
}

/// The configuration could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
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
                GOOD.replace(r#"name = "echo""#, r#"name = "Echo!""#),
                "plugin name",
            ),
            (
                format!("{GOOD}\n{}", &GOOD[GOOD.find("[[plugin]]").unwrap()..]),
                "listed twice",
            ),
        ];
        for (text, needle) in cases {
            let err = Config::from_toml(&text, Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "expected `{needle}` in `{err}`");
        }
    }
}
