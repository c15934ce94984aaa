//! `cloister-log`: runs the transparency log.
//!
//! ```text
//! cloister-log keygen --origin log.example/cloister --out log.key      # prints the vkey
//! cloister-log new-publisher --name team-a --token-out team-a.token    # prints the publishers line
//! cloister-log serve --key log.key --dir DIR --witnesses POLICY --publishers FILE \
//!     [--listen 127.0.0.1:0] [--cosign-every-secs 300]
//! ```

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use cloister_log::publishers::Publishers;
use cloister_log::state::Log;
use cloister_tlog::note::{KeyType, NoteSigner};
use cloister_tlog::Policy;

#[derive(Parser)]
#[command(
    name = "cloister-log",
    about = "The Cloister transparency log (C2SP tlog-tiles)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the log's signing key; prints its verifier key (vkey).
    Keygen {
        /// The log's origin (its key name), e.g. log.example/cloister.
        #[arg(long)]
        origin: String,
        /// Where to write the private key (created with mode 0600; must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Create a publisher token; prints the line to add to the publishers file.
    NewPublisher {
        /// The publisher's name.
        #[arg(long)]
        name: String,
        /// Where to write the token (mode 0600; must not exist).
        #[arg(long)]
        token_out: PathBuf,
    },
    /// Serve the log.
    Serve {
        /// The log's private key file.
        #[arg(long)]
        key: PathBuf,
        /// The log directory (tiles and checkpoints).
        #[arg(long)]
        dir: PathBuf,
        /// A tlog-policy file: this log's key, the witnesses (with their URLs) and the quorum
        /// needed before a checkpoint is served.
        #[arg(long)]
        witnesses: PathBuf,
        /// The publishers file (`<name> <sha256 of token>` lines).
        #[arg(long)]
        publishers: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Ask the witnesses for fresh cosignatures this often.
        #[arg(long, default_value_t = 300)]
        cosign_every_secs: u64,
    },
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Keygen { origin, out } => {
            let signer = NoteSigner::generate(&origin, KeyType::Ed25519)?;
            write_secret(&out, &signer.to_skey())?;
            println!("{}", signer.verifier().to_vkey());
            Ok(())
        }
        Cmd::NewPublisher { name, token_out } => {
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                bail!("a publisher name is one word");
            }
            let mut raw = [0u8; 32];
            getrandom_fill(&mut raw)?;
            let token = hex::encode(raw);
            write_secret(&token_out, &token)?;
            println!("{}", Publishers::line_for(&name, &token));
            Ok(())
        }
        Cmd::Serve {
            key,
            dir,
            witnesses,
            publishers,
            listen,
            cosign_every_secs,
        } => serve(key, dir, witnesses, publishers, listen, cosign_every_secs),
    }
}

fn getrandom_fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))
}

fn serve(
    key: PathBuf,
    dir: PathBuf,
    witnesses: PathBuf,
    publishers: PathBuf,
    listen: String,
    cosign_every_secs: u64,
) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let skey = std::fs::read_to_string(&key)
        .with_context(|| format!("cannot read the key {}", key.display()))?;
    let signer = NoteSigner::parse(&skey).with_context(|| format!("the key {}", key.display()))?;
    if signer.verifier().kind() != KeyType::Ed25519 {
        bail!("the log key must be an Ed25519 note key (type 0x01)");
    }
    let policy_text = std::fs::read_to_string(&witnesses)
        .with_context(|| format!("cannot read the witness policy {}", witnesses.display()))?;
    let policy = Policy::parse(&policy_text)
        .with_context(|| format!("the witness policy {}", witnesses.display()))?;
    let pubs_text = std::fs::read_to_string(&publishers)
        .with_context(|| format!("cannot read the publishers file {}", publishers.display()))?;
    let pubs = Publishers::parse(&pubs_text)?;
    let log = Log::open(&dir, signer, policy).context("cannot open the log")?;
    tracing::info!(size = log.size(), "log opened");
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let server = cloister_log::http::start(log, dir, pubs);
        println!("listening on {addr}");
        std::io::stdout().flush().ok();
        let refresher = std::sync::Arc::clone(&server);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(cosign_every_secs.max(1)));
            tick.tick().await;
            loop {
                tick.tick().await;
                refresher.request_cosign();
            }
        });
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
        cloister_log::http::serve(listener, server, shutdown).await;
        Ok(())
    })
}
