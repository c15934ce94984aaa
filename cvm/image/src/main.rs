//! `cloister-image build --host BIN --init BIN --deploy DIR --ovmf OVMF.fd --out DIR
//! [--variant production|development]`: builds the image from `cvm/recipe.toml` and writes
//! its manifest; prints its launch measurement.
//! `cloister-image measure --manifest FILE`: prints the launch measurement (96 hex) of the
//! image the manifest describes, after checking every input file against its pin.
//! `cloister-image digest --ovmf F [--kernel K --initrd I --cmdline C] --vcpus N --vcpu-type T
//! [--guest-features 0x1] [--vmm QEMU]`: the same from loose inputs.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cloister_image::build::{build, BuildRequest, Recipe, Variant};
use cloister_image::{launch_digest, ImageManifest, MeasurementInputs};

#[derive(Parser)]
#[command(
    name = "cloister-image",
    about = "The CVM image: its build and its expected SNP launch measurement"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The launch measurement of the image a manifest describes (files next to it).
    Measure {
        /// The image manifest (cloister-image-manifest/v1).
        #[arg(long)]
        manifest: PathBuf,
    },
    /// Builds the image: kernel, reproducible initramfs, firmware and manifest.
    Build {
        /// The recipe (pinned kernel package, launch parameters, network).
        #[arg(long, default_value = "cvm/recipe.toml")]
        recipe: PathBuf,
        /// production (cloister-host, --tee snp) or development (cloister-host-dev,
        /// --tee sim; never a release).
        #[arg(long, default_value = "production")]
        variant: String,
        /// The host binary: cloister-host (production) or cloister-host-dev.
        #[arg(long)]
        host: PathBuf,
        /// The init binary (cloister-init).
        #[arg(long)]
        init: PathBuf,
        /// The deployment directory: host.toml and every file it names.
        #[arg(long)]
        deploy: PathBuf,
        /// The firmware (OVMF AmdSev build: cvm/firmware/build-ovmf).
        #[arg(long)]
        ovmf: PathBuf,
        /// The output directory.
        #[arg(long)]
        out: PathBuf,
        /// Download cache (default: $XDG_CACHE_HOME/cloister/downloads).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// No progress bars.
        #[arg(long)]
        no_progress: bool,
    },
    /// The launch measurement of loose inputs.
    Digest {
        /// The firmware (OVMF AmdSev build).
        #[arg(long)]
        ovmf: PathBuf,
        /// The kernel.
        #[arg(long)]
        kernel: Option<PathBuf>,
        /// The initramfs.
        #[arg(long)]
        initrd: Option<PathBuf>,
        /// The kernel command line.
        #[arg(long)]
        cmdline: Option<String>,
        /// vCPU count.
        #[arg(long)]
        vcpus: u32,
        /// vCPU type, e.g. EPYC-v4.
        #[arg(long)]
        vcpu_type: String,
        /// VMSA SEV_FEATURES (decimal or 0x hex).
        #[arg(long, default_value = "0x1")]
        guest_features: String,
        /// QEMU, EC2 or KRUN.
        #[arg(long, default_value = "QEMU")]
        vmm: String,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Measure { manifest } => {
            let bytes = std::fs::read(&manifest)
                .with_context(|| format!("cannot read the manifest {}", manifest.display()))?;
            let m = ImageManifest::from_json(&bytes)?;
            let base = manifest.parent().unwrap_or(std::path::Path::new("."));
            println!("{}", hex::encode(m.measure(base)?));
        }
        Cmd::Build {
            recipe,
            variant,
            host,
            init,
            deploy,
            ovmf,
            out,
            cache,
            no_progress,
        } => {
            let variant = match variant.as_str() {
                "production" => Variant::Production,
                "development" => Variant::Development,
                other => anyhow::bail!("--variant {other:?}: expected production or development"),
            };
            let cache = match cache {
                Some(c) => c,
                None => default_cache()?,
            };
            let built = build(&BuildRequest {
                recipe: Recipe::from_file(&recipe)?,
                variant,
                host,
                init,
                deploy,
                ovmf,
                out: out.clone(),
                cache,
                progress: !no_progress,
            })?;
            eprintln!(
                "cloister-image: {}: vmlinuz {} KiB, initrd.img {} MiB",
                out.display(),
                built.kernel_bytes >> 10,
                built.initrd_bytes >> 20
            );
            println!("{}", hex::encode(built.measurement));
        }
        Cmd::Digest {
            ovmf,
            kernel,
            initrd,
            cmdline,
            vcpus,
            vcpu_type,
            guest_features,
            vmm,
        } => {
            let guest_features = match guest_features.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => guest_features.parse(),
            }
            .context("--guest-features is a number (decimal or 0x hex)")?;
            let d = launch_digest(&MeasurementInputs {
                ovmf,
                kernel,
                initrd,
                cmdline,
                vcpus,
                vcpu_type,
                guest_features,
                vmm,
            })?;
            println!("{}", hex::encode(d));
        }
    }
    Ok(())
}

fn default_cache() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(
            std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?,
        )
        .join(".cache"),
    };
    Ok(base.join("cloister").join("downloads"))
}
