//! `cloister-image measure --manifest FILE`: prints the launch measurement (96 hex) of the
//! image the manifest describes, after checking every input file against its pin.
//! `cloister-image digest --ovmf F [--kernel K --initrd I --cmdline C] --vcpus N --vcpu-type T
//! [--guest-features 0x1] [--vmm QEMU]`: the same from loose inputs.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cloister_image::{launch_digest, ImageManifest, MeasurementInputs};

#[derive(Parser)]
#[command(
    name = "cloister-image",
    about = "The CVM image's expected SNP launch measurement"
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
