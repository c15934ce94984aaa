//! `cloister-eval`: measures the feature plugins' quality on the
//! hand-written sets in `eval/`, and their per-request latency, in-process:
//! the built components (`target/plugins/*.wasm`) run in the real plugin
//! runtime (`cloister-runtime`, default limits) against the real inference
//! backend (`cloister-inference`, the verified model from the models data
//! directory). Nothing is mocked.
//!
//! ```text
//! cloister-eval summarize      # key-point recall, open-question P/R, latency
//! cloister-eval writing-help   # error detection precision/recall, tone accuracy, latency
//! cloister-eval tone           # the tone classifier: cross-validation, calibration, held-out accuracy
//! cloister-eval all
//! ```
#![forbid(unsafe_code)]

mod harness;
mod stats;
mod summarize;
mod tone;
mod writing_help;

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cloister-eval",
    about = "Evaluate the feature plugins on the sets in eval/"
)]
struct Cli {
    /// Which evaluation to run.
    #[arg(value_enum)]
    suite: Suite,
    /// Directory of the built components (`<name>.wasm`).
    #[arg(long, default_value_os_t = harness::repo_path("target/plugins"))]
    plugins: PathBuf,
    /// The models data directory (default: $CLOISTER_MODELS_DIR, else
    /// target/models).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Directory of the evaluation sets.
    #[arg(long, default_value_os_t = harness::repo_path("eval"))]
    data: PathBuf,
    /// Times each item is run for the latency figures (quality uses the
    /// first run; the plugins are deterministic).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Threads for the model's matrix products (as the host would set).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print every item's output and score.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    Summarize,
    WritingHelp,
    Tone,
    All,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if cli.suite == Suite::Tone {
        let opts = harness::RunOptions {
            data: cli.data.clone(),
            repeat: cli.repeat.max(1),
            verbose: cli.verbose,
        };
        return tone::run(&opts, cli.models.as_deref());
    }
    rt.block_on(async {
        let h = harness::Harness::new(&cli.plugins, cli.models.as_deref(), cli.threads)?;
        let opts = harness::RunOptions {
            data: cli.data.clone(),
            repeat: cli.repeat.max(1),
            verbose: cli.verbose,
        };
        if matches!(cli.suite, Suite::Summarize | Suite::All) {
            summarize::run(&h, &opts).await?;
        }
        if matches!(cli.suite, Suite::WritingHelp | Suite::All) {
            writing_help::run(&h, &opts).await?;
        }
        Ok(())
    })
}
