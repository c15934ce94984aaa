//! `cloister`: the Cloister command-line tool (runs outside the CVM).
//!
//! Command groups live in their own modules; `plugin` signs and verifies
//! plugin components, `attest` verifies attestation evidence, `policy` writes
//! a client policy from what a host measured, `models` obtains and checks the
//! pinned models, `connect` and `run` talk to a host over RA-TLS after
//! verifying it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attest;
mod connect;
mod models;
mod plugin;
mod policy;
mod transparency;

/// Cloister command-line tool.
#[derive(Debug, Parser)]
#[command(name = "cloister", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create keys for, sign, verify and inspect plugin releases.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Verify SEV-SNP attestation evidence.
    #[command(subcommand)]
    Attest(attest::AttestCommand),
    /// Write a client policy from a host's measurement log.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Fetch (download, convert, verify) or verify the pinned model files.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Connect to a host over RA-TLS, verify its attestation for the session,
    /// and print the verified summary.
    Connect(connect::ConnectArgs),
    /// Call a feature on a host, only after its attestation for the session
    /// verified; prints the feature's JSON output.
    Run(connect::RunArgs),
    /// Publish a plugin release, model, CVM image or revocation to the transparency log;
    /// prints its index, leaf hash and inclusion proof (tlog-proof@v1).
    #[command(subcommand)]
    Publish(transparency::PublishCommand),
    /// Replay a transparency log from its tiles: recompute every hash, check the rules and
    /// earlier checkpoints, list releases and revocations.
    Audit(transparency::AuditArgs),
    /// Watch a transparency log for plugin releases signed by a given key.
    Monitor(transparency::MonitorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plugin(cmd) => plugin::run(cmd),
        Command::Attest(cmd) => attest::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Models(cmd) => models::run(cmd),
        Command::Connect(args) => connect::connect(args),
        Command::Run(args) => connect::run(args),
        Command::Publish(cmd) => transparency::publish(cmd),
        Command::Audit(args) => transparency::audit(args),
        Command::Monitor(args) => transparency::monitor(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors quote what hosts and files said; each error already sanitizes and
            // truncates it, and the whole line is sanitized once more here.
            eprintln!("error: {}", cloister_display::sanitize(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
