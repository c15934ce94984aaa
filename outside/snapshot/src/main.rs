//! `cloister-snapshot`: pre-initializes a plugin component (build time).
//!
//! ```sh
//! cloister-snapshot guest.wasm -o guest.snapshot.wasm [--init-func wizer-initialize]
//! ```
//!
//! Prints the output's size and SHA-256. The same input gives the same bytes.

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "cloister-snapshot",
    about = "Pre-initialize a plugin component (wizer), deterministically"
)]
struct Args {
    /// The component built by cargo.
    input: PathBuf,
    /// Where to write the snapshot component.
    #[arg(short, long)]
    output: PathBuf,
    /// The export (`func()`) to run before taking the snapshot.
    #[arg(long, default_value = cloister_snapshot::DEFAULT_INIT_FUNC)]
    init_func: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let input = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let started = Instant::now();
    let snapshot = cloister_snapshot::snapshot(&input, &args.init_func)
        .with_context(|| format!("cannot pre-initialize {}", args.input.display()))?;
    std::fs::write(&args.output, &snapshot)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "cloister-snapshot: {} ({} bytes) -> {} ({} bytes, sha256:{}) in {:.1} s",
        args.input.display(),
        input.len(),
        args.output.display(),
        snapshot.len(),
        cloister_snapshot::sha256_hex(&snapshot),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
