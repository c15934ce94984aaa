//! Verifying, loading and measuring the configured plugins.
//!
//! Order matters and is fail-closed:
//! 0. verify and load the configured models (`[models]`): each file is read
//!    once, its bytes hashed against the manifest's pin, and only those bytes
//!    reach the tokenizer and tract; each model enters the measurement log
//!    (kind `model`, its digest — see `docs/models.md`) before any plugin;
//! 1. read every component, signature and signer key, and verify every
//!    signature (DSSE, Ed25519, subject digest) — no untrusted byte reaches
//!    the compiler;
//! 2. compile all components in parallel and pre-instantiate them;
//! 3. check each plugin's metadata against its signed subject and the
//!    configured name;
//! 4. record each plugin in the measurement log, in configuration order.
//!
//! Any failure stops the whole load with an error naming the plugin and the
//! reason.

use crate::config::{Config, ModelsConfig, PluginConfig};
use cloister_measurement::{Entry, EntryKind, MeasurementLog};
use cloister_runtime::{
    InferenceBackend, LoadSpec, MeasuredDir, NoModels, Plugin, Precompiled, Runtime,
};
use cloister_signing::{PublicKey, VerifiedRelease};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A plugin could not be loaded; the host must not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file named by the configuration could not be read.
    #[error("plugin `{plugin}`: cannot read {what} {path}")]
    Read {
        /// The plugin.
        plugin: String,
        /// Which file: component, signature or signer key.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A signer key file is not an Ed25519 public key.
    #[error("plugin `{plugin}`: signer key {path} is invalid")]
    Key {
        /// The plugin.
        plugin: String,
        /// The key file.
        path: PathBuf,
        /// Why.
        source: cloister_signing::KeyError,
    },
    /// The signature is missing, malformed, by an untrusted key, or does not
    /// match the component.
    #[error("plugin `{plugin}`: signature {path} rejected")]
    Signature {
        /// The plugin.
        plugin: String,
        /// The signature file.
        path: PathBuf,
        /// Why.
        source: cloister_signing::VerifyError,
    },
    /// The signed subject, the metadata and the configuration disagree.
    #[error("plugin `{plugin}`: {message}")]
    Identity {
        /// The plugin.
        plugin: String,
        /// Which names or versions disagree.
        message: String,
    },
    /// The runtime refused the component (bad component, forbidden import,
    /// wrong world, failing metadata).
    #[error(transparent)]
    Runtime(#[from] cloister_runtime::LoadError),
    /// A model's manifest could not be read.
    #[error("models: cannot use the model manifest")]
    Manifest(#[from] cloister_models::ManifestError),
    /// A model's files are missing or do not match their pins.
    #[error(transparent)]
    ModelFiles(#[from] cloister_models::VerifyError),
    /// A verified model could not be made runnable.
    #[error(transparent)]
    Model(#[from] cloister_inference::LoadError),
    /// The measurement log refused an entry.
    #[error("plugin `{plugin}`: cannot enter it in the measurement log")]
    Measurement {
        /// The plugin.
        plugin: String,
        /// Why.
        source: cloister_measurement::LogError,
    },
}

/// A component whose signature verified, with its bytes.
pub struct VerifiedComponent {
    /// Its configuration.
    pub config: PluginConfig,
    /// The component bytes.
    pub bytes: Vec<u8>,
    /// What the signature vouches for.
    pub release: VerifiedRelease,
}

/// A loaded plugin with what the measurement log says of it.
pub struct LoadedPlugin {
    /// The runnable plugin.
    pub plugin: Plugin,
    /// The verified release (name, version, SHA-256, signer).
    pub release: VerifiedRelease,
}

/// A loaded model with what the measurement log says of it.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its measurement digest (lowercase hex).
    pub digest: String,
}

/// Everything the host loaded.
pub struct LoadedHost {
    /// Models, in load order.
    pub models: Vec<LoadedModel>,
    /// Plugins by name.
    pub plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    /// The measurement log, in load order.
    pub log: MeasurementLog,
    /// How long loading took (verify + compile + metadata).
    pub load_time: Duration,
}

fn read(plugin: &str, what: &'static str, path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        plugin: plugin.to_owned(),
        what,
        path: path.to_owned(),
        source,
    })
}

/// Step 1: reads and verifies every configured plugin's signature.
pub fn verify_all(config: &Config) -> Result<Vec<VerifiedComponent>, LoadError> {
    config.plugins.iter().map(verify_one).collect()
}

fn verify_one(p: &PluginConfig) -> Result<VerifiedComponent, LoadError> {
    let mut trusted = Vec::with_capacity(p.signers.len());
    for path in &p.signers {
        let pem = read(&p.name, "signer key", path)?;
        let text = String::from_utf8(pem).map_err(|_| LoadError::Key {
            plugin: p.name.clone(),
            path: path.clone(),
            source: cloister_signing::KeyError::PublicKeyPem {
                reason: "file is not UTF-8 text".into(),
            },
        })?;
        trusted.push(
            PublicKey::from_spki_pem(&text).map_err(|source| LoadError::Key {
                plugin: p.name.clone(),
                path: path.clone(),
                source,
            })?,
        );
    }
    let bytes = read(&p.name, "component", &p.component)?;
    let envelope = read(&p.name, "signature", &p.signature)?;
    let release =
        cloister_signing::verify_release(&envelope, &bytes, &trusted).map_err(|source| {
            LoadError::Signature {
                plugin: p.name.clone(),
                path: p.signature.clone(),
                source,
            }
        })?;
    if release.name != p.name {
        return Err(LoadError::Identity {
            plugin: p.name.clone(),
            message: format!(
                "the signature is for plugin `{}`, but the configuration loads it as `{}`",
                release.name, p.name
            ),
        });
    }
    Ok(VerifiedComponent {
        config: p.clone(),
        bytes,
        release,
    })
}

/// Step 0: verifies and loads the configured models. Returns the inference
/// backend (no models: [`NoModels`]) and the models' log entries.
pub fn load_models(
    config: &ModelsConfig,
) -> Result<(Arc<dyn InferenceBackend>, Vec<LoadedModel>), LoadError> {
    if config.load.is_empty() {
        return Ok((Arc::new(NoModels), Vec::new()));
    }
    let manifest = match &config.manifest {
        Some(path) => cloister_models::Manifest::from_file(path)?,
        None => cloister_models::Manifest::embedded()?,
    };
    let dir = config.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    cloister_inference::set_threads(config.threads);
    let mut engine = cloister_inference::Engine::new(cloister_inference::Limits::default());
    let mut loaded = Vec::new();
    for name in &config.load {
        let started = Instant::now();
        let verified = cloister_models::load_verified(&manifest, name, &dir)?;
        engine.load(&verified, cloister_inference::Shapes::Symbolic)?;
        tracing::info!(
            model = %name,
            digest = %verified.digest_hex(),
            ms = started.elapsed().as_millis() as u64,
            "model verified and loaded"
        );
        loaded.push(LoadedModel {
            name: name.clone(),
            version: verified.spec.version.clone(),
            digest: verified.digest_hex(),
        });
    }
    Ok((Arc::new(engine), loaded))
}

/// Steps 0-4: verifies, loads and measures every configured model and
/// plugin.
///
/// With `precompiled`, each plugin's machine code comes from its artifact in
/// that directory of the measured image (named by the verified component's
/// SHA-256) instead of being compiled; every component is still read, verified
/// and measured the same way.
pub async fn load(
    config: &Config,
    runtime: &Runtime,
    precompiled: Option<&MeasuredDir>,
) -> Result<LoadedHost, LoadError> {
    let started = Instant::now();
    let (backend, models) = load_models(&config.models)?;
    let verified = verify_all(config)?;
    let digests: Vec<String> = verified.iter().map(|v| v.release.sha256_hex()).collect();
    let specs: Vec<LoadSpec<'_>> = verified
        .iter()
        .zip(&digests)
        .map(|(v, sha256_hex)| LoadSpec {
            name: &v.config.name,
            component: &v.bytes,
            allowed_models: &v.config.models,
            max_memory_bytes: v.config.max_memory_bytes,
            precompiled: precompiled.map(|dir| Precompiled { dir, sha256_hex }),
        })
        .collect();
    let loaded = runtime.load_all(&specs, backend).await?;

    let mut log = MeasurementLog::new();
    for m in &models {
        log.push(Entry {
            kind: EntryKind::Model,
            name: m.name.clone(),
            version: m.version.clone(),
            sha256: m.digest.clone(),
            signer_key_id: None,
        })
        .map_err(|source| LoadError::Measurement {
            plugin: format!("model {}", m.name),
            source,
        })?;
    }
    let mut plugins = BTreeMap::new();
    for (v, plugin) in verified.into_iter().zip(loaded) {
        let info = plugin.info();
        if info.name != v.release.name || info.version != v.release.version {
            return Err(LoadError::Identity {
                plugin: v.config.name,
                message: format!(
                    "metadata says {}@{}, but the signature vouches for {}@{}",
                    info.name, info.version, v.release.name, v.release.version
                ),
            });
        }
        log.push(Entry {
            kind: EntryKind::Plugin,
            name: v.release.name.clone(),
            version: v.release.version.clone(),
            sha256: v.release.sha256_hex(),
            signer_key_id: Some(v.release.signer_key_id.clone()),
        })
        .map_err(|source| LoadError::Measurement {
            plugin: v.config.name.clone(),
            source,
        })?;
        plugins.insert(
            v.config.name.clone(),
            Arc::new(LoadedPlugin {
                plugin,
                release: v.release,
            }),
        );
    }
    Ok(LoadedHost {
        models,
        plugins,
        log,
        load_time: started.elapsed(),
    })
}

/// One artifact written by [`precompile`].
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The plugin's configured name.
    pub plugin: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Its size.
    pub bytes: usize,
    /// How long compiling it took.
    pub millis: u64,
}

/// Verifies every configured plugin (as [`load`] does) and writes each one's
/// precompiled artifact, `<component sha256>.cwasm`, into `out` (created),
/// compiled for `runtime`'s engine (the configuration's limits). Models are
/// not needed. A file is written under a temporary name and renamed into
/// place, so `out` never holds a partial artifact.
pub fn precompile(
    config: &Config,
    runtime: &Runtime,
    out: &Path,
) -> Result<Vec<Artifact>, PrecompileError> {
    let verified = verify_all(config)?;
    std::fs::create_dir_all(out).map_err(|source| PrecompileError::Write {
        path: out.to_owned(),
        source,
    })?;
    let dir = MeasuredDir::new(out);
    let mut written = Vec::with_capacity(verified.len());
    for v in &verified {
        let started = Instant::now();
        let bytes = runtime.precompile(&v.config.name, &v.bytes)?;
        let millis = started.elapsed().as_millis() as u64;
        let path = dir
            .artifact(&v.release.sha256_hex())
            .map_err(|e| PrecompileError::Name(e.to_string()))?;
        let partial = path.with_extension("cwasm.partial");
        std::fs::write(&partial, &bytes)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|source| PrecompileError::Write {
                path: path.clone(),
                source,
            })?;
        written.push(Artifact {
            plugin: v.config.name.clone(),
            path,
            bytes: bytes.len(),
            millis,
        });
    }
    Ok(written)
}

/// The plugin set could not be precompiled.
#[derive(Debug, thiserror::Error)]
pub enum PrecompileError {
    /// A plugin failed verification.
    #[error(transparent)]
    Verify(#[from] LoadError),
    /// A component failed to compile.
    #[error(transparent)]
    Compile(#[from] cloister_runtime::LoadError),
    /// The artifact's name could not be formed.
    #[error("cannot name the artifact: {0}")]
    Name(String),
    /// An artifact could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
