//! `cloister-host-dev`: the development host. It is `cloister-host` (the same
//! command line, [`cloister_host::cli`]) with one addition: `--tee sim`, evidence
//! from an SNP chip simulated in this process (`cloister-snp-sim`). **Not a TEE**:
//! a verifier accepts its evidence only when told to trust the simulator's root,
//! which is new at every start.
//!
//! It exists for development, the tests and the development CVM image (whose
//! manifest says `"variant": "development"`). The production image takes
//! `cloister-host`, which cannot link the simulator.
#![forbid(unsafe_code)]

use anyhow::Context;
use cloister_evidence::EvidenceProvider;
use cloister_host::cli::TeeOptions;
use cloister_protocol::Product;
use cloister_snp_sim::SimulatedSnp;
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    cloister_host::cli::main(Some(simulator))
}

/// The `sim` evidence provider, from the `--sim-*` options.
fn simulator(options: &TeeOptions) -> anyhow::Result<Arc<dyn EvidenceProvider>> {
    let product = match options.sim_product.as_str() {
        "milan" => Product::Milan,
        "genoa" => Product::Genoa,
        "turin" => Product::Turin,
        other => anyhow::bail!("--sim-product {other:?}: expected milan, genoa or turin"),
    };
    let from_file =
        match &options.sim_measurement_file {
            None => None,
            Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                format!("cannot read --sim-measurement-file {}", path.display())
            })?),
        };
    let measurement = match from_file.as_deref().or(options.sim_measurement.as_deref()) {
        None => cloister_protocol::SIMULATED_LAUNCH_MEASUREMENT,
        Some(h) => {
            let mut m = [0u8; 48];
            hex::decode_to_slice(h.trim(), &mut m).map_err(|_| {
                anyhow::anyhow!("the simulated measurement must be 96 hex characters")
            })?;
            m
        }
    };
    let sim = SimulatedSnp::new(product, measurement, std::time::SystemTime::now())
        .context("cannot start the SNP simulator")?;
    if let Some(out) = &options.sim_root_out {
        std::fs::write(out, pem("CERTIFICATE", sim.ark_der()))
            .with_context(|| format!("cannot write the simulator root to {}", out.display()))?;
    }
    tracing::warn!(
        measurement = %hex::encode(measurement),
        product = product.name(),
        "SIMULATED TEE: evidence is signed by a chip simulated in this process, \
         NOT by AMD hardware; it proves nothing to a client and is for development \
         and tests only"
    );
    Ok(Arc::new(sim))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
