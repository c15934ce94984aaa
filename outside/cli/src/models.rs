//! `cloister models fetch|verify`: obtain the pinned model files into a data
//! directory (outside the CVM: image build, CI, a developer machine), and check
//! them. The host itself never downloads: it verifies what it loads.

use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};

/// `cloister models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download, extract, convert and verify the manifest's models into the
    /// data directory. Idempotent: files that already match their pins are
    /// kept and nothing is downloaded again.
    Fetch {
        /// The model manifest.
        #[arg(long, default_value = "models/manifest.toml")]
        manifest: PathBuf,
        /// The data directory; default `$CLOISTER_MODELS_DIR`, else
        /// `target/models` beside the manifest's directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Only this model (repeatable); default all.
        #[arg(long = "model")]
        models: Vec<String>,
        /// Never draw progress bars (they are only drawn on a terminal).
        #[arg(long)]
        no_progress: bool,
    },
    /// Verify the manifest's models in the data directory: every file the
    /// host loads must match its pin. Prints each model's digest.
    Verify {
        /// The model manifest.
        #[arg(long, default_value = "models/manifest.toml")]
        manifest: PathBuf,
        /// The data directory (default as for `fetch`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Only this model (repeatable); default all.
        #[arg(long = "model")]
        models: Vec<String>,
    },
}

fn read_manifest(path: &Path) -> anyhow::Result<cloister_models::Manifest> {
    cloister_models::Manifest::from_file(path).with_context(|| {
        format!(
            "run from the repository root or pass --manifest (looked for {})",
            path.display()
        )
    })
}

/// Run a `models` command.
pub fn run(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Fetch {
            manifest,
            data_dir,
            models,
            no_progress,
        } => {
            let m = read_manifest(&manifest)?;
            let data = data_dir.unwrap_or_else(|| cloister_models::default_data_dir(&manifest));
            let manifest_dir = manifest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let options = cloister_model_fetch::FetchOptions {
                progress: !no_progress,
                ..cloister_model_fetch::FetchOptions::default()
            };
            let downloader = cloister_model_fetch::HttpsDownloader::new();
            let reports = cloister_model_fetch::fetch(
                &m,
                manifest_dir,
                &data,
                &models,
                &options,
                &downloader,
            )
            .context("models fetch failed")?;
            for r in reports {
                let what = if r.downloaded_bytes == 0 && r.extracted.is_empty() && !r.converted {
                    "already present".to_owned()
                } else {
                    format!(
                        "downloaded {} bytes, extracted {}, {}",
                        r.downloaded_bytes,
                        r.extracted.len(),
                        if r.converted {
                            "converted"
                        } else {
                            "no conversion"
                        }
                    )
                };
                println!(
                    "model {} sha256:{} in {} ({what})",
                    r.name,
                    r.digest,
                    data.join(&r.name).display()
                );
            }
            Ok(())
        }
        ModelsCommand::Verify {
            manifest,
            data_dir,
            models,
        } => {
            let m = read_manifest(&manifest)?;
            let data = data_dir.unwrap_or_else(|| cloister_models::default_data_dir(&manifest));
            let names: Vec<String> = if models.is_empty() {
                m.models.iter().map(|s| s.name.clone()).collect()
            } else {
                models
            };
            for name in names {
                let v = cloister_models::load_verified(&m, &name, &data)?;
                println!(
                    "model {}@{} sha256:{} verified ({} files)",
                    v.spec.name,
                    v.spec.version,
                    v.digest_hex(),
                    v.files.len()
                );
            }
            Ok(())
        }
    }
}
