//! `cloister-issuer`: the Privacy Pass issuer (publicly verifiable tokens, type 2).
//!
//! ```text
//! cloister-issuer keygen --out DIR                         # prints the token key id (hex)
//! cloister-issuer add-account --accounts FILE --name NAME  # prints the account's API key, once
//! cloister-issuer serve --key DIR --accounts FILE --name ISSUER_NAME \
//!     [--listen 127.0.0.1:0] [--rate 100/86400] [--stats-every-secs 600]
//! ```
//!
//! `serve` prints `listening on ADDR` on stdout once it accepts connections.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cloister_issuer::accounts::Accounts;
use cloister_issuer::issuer::Issuer;
use cloister_issuer::keys::IssuerKey;
use cloister_issuer::redeem::Challenge;
use cloister_issuer::service::{RateLimit, Service};

#[derive(Parser)]
#[command(
    name = "cloister-issuer",
    about = "The Cloister Privacy Pass issuer (RFC 9578, token type 2)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the issuer's RSA-2048 key in DIR; prints its token key id.
    Keygen {
        /// The key directory (created mode 0700 if missing; the key files must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Add an account; prints its API key (shown only this once; only its hash is stored).
    AddAccount {
        /// The accounts file (created mode 0600 if missing).
        #[arg(long)]
        accounts: PathBuf,
        /// The account's name (one word).
        #[arg(long)]
        name: String,
    },
    /// Serve the issuer.
    Serve {
        /// The key directory written by `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The accounts file.
        #[arg(long)]
        accounts: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// The issuer's name, as origins put it in their challenges (host[:port]).
        #[arg(long)]
        name: String,
        /// Tokens per account: N/SECS.
        #[arg(long, default_value = "100/86400")]
        rate: RateLimit,
        /// Log aggregate issuance counters this often.
        #[arg(long, default_value_t = 600)]
        stats_every_secs: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Keygen { out } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("the system clock is before 1970")?
                .as_secs();
            let key = IssuerKey::generate(now)?;
            key.save(&out)
                .with_context(|| format!("cannot write the key to {}", out.display()))?;
            println!("{}", hex::encode(key.public().token_key_id()));
            Ok(())
        }
        Cmd::AddAccount { accounts, name } => {
            let key = Accounts::add_to_file(&accounts, &name)?;
            eprintln!(
                "account {name} added to {}; its API key (shown only now):",
                accounts.display()
            );
            println!("{}", key.as_str());
            Ok(())
        }
        Cmd::Serve {
            key,
            accounts,
            listen,
            name,
            rate,
            stats_every_secs,
        } => serve(key, accounts, listen, name, rate, stats_every_secs),
    }
}

fn serve(
    key_dir: PathBuf,
    accounts_path: PathBuf,
    listen: String,
    name: String,
    rate: RateLimit,
    stats_every_secs: u64,
) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOISTER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Challenge::new(&name, &[]).context("--name")?;
    let key = IssuerKey::load(&key_dir)
        .with_context(|| format!("cannot load the issuer key from {}", key_dir.display()))?;
    let accounts = Accounts::load(&accounts_path)?;
    tracing::info!(
        issuer = %name,
        token_key_id = %hex::encode(key.public().token_key_id()),
        accounts = accounts.len(),
        rate_tokens = rate.tokens,
        rate_secs = rate.per.as_secs(),
        "issuer starting"
    );
    let service = Service::new(Issuer::new(key), accounts, rate);
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        println!("listening on {addr}");
        std::io::stdout().flush().ok();
        tokio::spawn(
            std::sync::Arc::clone(&service).log_stats(Duration::from_secs(stats_every_secs)),
        );
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending::<()>().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        };
        cloister_issuer::service::serve(listener, service, shutdown).await;
        Ok(())
    })
}
