//! `cloister policy init`: write a client policy from what a host measured.
//!
//! The policy accepts one of the given launch measurements and exactly the plugins and
//! models of the measurement log (by name, version, SHA-256 and release signer). It is
//! written with the verifier's own [`PolicyFile`] type, so it always reads back.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use cloister_measurement::MeasurementLog;
use cloister_verifier::PolicyFile;

/// `cloister policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Write a client policy from a measurement log and launch measurement(s).
    Init(InitArgs),
}

/// `cloister policy init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The host's measurement log: its canonical bytes, as `cloister-host measure
    /// --canonical` prints them (one trailing newline is ignored) or as the `log` member of
    /// `GET /v1/measurement`. `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    log: PathBuf,
    /// An accepted launch measurement (96 hex characters); repeatable.
    #[arg(long = "measurement", value_name = "HEX")]
    measurements: Vec<String>,
    /// Accept the launch measurement of this CVM image: its manifest (`image.json`, as
    /// `cloister-image build` writes it), recomputed from the files next to it after
    /// checking each against its pin; repeatable. A development image is marked as such in
    /// the policy.
    #[arg(long = "image", value_name = "MANIFEST")]
    images: Vec<PathBuf>,
    /// Accept the launch measurement a host reports with the simulated TEE
    /// (`--tee sim` without `--sim-measurement`). Development only.
    #[arg(long)]
    simulated_launch: bool,
    /// Trust this simulator root certificate (PEM or DER, as `cloister-host serve --tee sim
    /// --sim-root-out` writes it), path relative to the policy file. Development only.
    #[arg(long, value_name = "PATH")]
    trust_simulator_root: Option<String>,
    /// Where to write the policy; default standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Run a `policy` command.
pub fn run(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Init(args) => init(args),
    }
}

fn read_log(path: &PathBuf) -> anyhow::Result<MeasurementLog> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the measurement log from standard input")?;
    } else {
        bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the measurement log {}", path.display()))?;
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    MeasurementLog::from_canonical_bytes(&bytes)
        .with_context(|| format!("{} is not a canonical measurement log", path.display()))
}

fn parse_measurement(index: usize, text: &str) -> anyhow::Result<[u8; 48]> {
    let mut m = [0u8; 48];
    hex::decode_to_slice(text, &mut m).map_err(|_| {
        anyhow::anyhow!(
            "--measurement #{}: expected 96 hex characters (48 bytes), got {} characters",
            index + 1,
            text.len()
        )
    })?;
    Ok(m)
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let mut measurements = args
        .measurements
        .iter()
        .enumerate()
        .map(|(i, t)| parse_measurement(i, t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut development_image = false;
    for path in &args.images {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the image manifest {}", path.display()))?;
        let manifest = cloister_image::ImageManifest::from_json(&bytes)
            .with_context(|| format!("{} is not an image manifest", path.display()))?;
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        let measurement = manifest
            .measure(base)
            .with_context(|| format!("cannot measure the image {}", path.display()))?;
        development_image |= manifest.variant != "production";
        measurements.push(measurement);
    }
    if args.simulated_launch {
        measurements.push(cloister_protocol::SIMULATED_LAUNCH_MEASUREMENT);
    }
    if measurements.is_empty() {
        bail!("give at least one --measurement or --image (or --simulated-launch for a development host): a policy without one would accept any launch measurement");
    }
    let log = read_log(&args.log)?;
    let mut file = PolicyFile::for_measured_host(&measurements, &log);
    file.trust_simulator_root = args.trust_simulator_root;
    let mut text = format!(
        "# Client policy written by `cloister policy init` for measurement log sha256:{}.\n",
        log.digest_hex()
    );
    if file.trust_simulator_root.is_some() || args.simulated_launch || development_image {
        text.push_str("# DEVELOPMENT ONLY: it accepts a simulated TEE.\n");
    }
    text.push('\n');
    text.push_str(&file.to_toml());
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the policy to {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}
