//! `cloister-witness`: a C2SP tlog-witness (see the library documentation).
//!
//! * `cloister-witness keygen --name <witness name> --out <file>` writes a new cosignature
//!   key (mode 0600) and prints its public key (vkey).
//! * `cloister-witness serve --key <file> --log <vkey>… | --logs-file <file> --state <dir>
//!   --listen <addr>` serves until SIGTERM or SIGINT. Its first line on stdout is
//!   `listening on <address>`.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use cloister_witness::{config, server, ServerConfig, Witness};

#[derive(Parser)]
#[command(
    name = "cloister-witness",
    version,
    about = "A transparency-log witness (C2SP tlog-witness): cosigns checkpoints that extend what it cosigned before"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a new witness cosignature key (type 0x04); print its public key (vkey).
    Keygen {
        /// The witness's name, e.g. `witness.example.org/w1` (a schema-less URL).
        #[arg(long)]
        name: String,
        /// Where to write the private key (a new file, mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve the witness until SIGTERM or SIGINT.
    Serve {
        /// The witness's private key file (from `keygen`).
        #[arg(long)]
        key: PathBuf,
        /// A log's verifier key (`<origin>+<key id>+<base64>`); repeat for several logs or
        /// several keys of one log.
        #[arg(long = "log", value_name = "VKEY")]
        logs: Vec<String>,
        /// A file of log verifier keys, one a line (`#` comments and empty lines skipped).
        #[arg(long, value_name = "FILE")]
        logs_file: Option<PathBuf>,
        /// The state directory (created if missing; locked while serving).
        #[arg(long)]
        state: PathBuf,
        /// The address to listen on, e.g. `127.0.0.1:8080` (port 0: any free port).
        #[arg(long)]
        listen: SocketAddr,
        /// The URL prefix of the routes, e.g. `/witness` (default: none).
        #[arg(long, default_value = "")]
        prefix: String,
        /// Most connections served at once.
        #[arg(long, default_value_t = 256)]
        max_connections: u32,
        /// Largest request body, in bytes.
        #[arg(long, default_value_t = 64 * 1024)]
        max_body_bytes: usize,
        /// Seconds a client has to send a request's head, and again its body.
        #[arg(long, default_value_t = 10)]
        request_timeout_secs: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen { name, out } => {
            let vkey = config::write_new_key(&name, &out)?;
            println!("{}", vkey.to_vkey());
            Ok(())
        }
        Command::Serve {
            key,
            logs,
            logs_file,
            state,
            listen,
            prefix,
            max_connections,
            max_body_bytes,
            request_timeout_secs,
        } => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .init();
            server::check_prefix(&prefix)
                .map_err(anyhow::Error::msg)
                .context("--prefix")?;
            if max_connections == 0 {
                bail!("--max-connections must be at least 1");
            }
            let signer = config::read_signer(&key)?;
            if config::key_file_is_exposed(&key) {
                tracing::warn!(
                    file = %key.display(),
                    "the witness key file can be read by other users: chmod 600 it"
                );
            }
            let mut log_keys = logs
                .iter()
                .map(|v| config::parse_log_key(v))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(f) = &logs_file {
                log_keys.extend(config::read_logs_file(f)?);
            }
            let witness = Witness::open(signer, log_keys, &state)?;
            let timeout = Duration::from_secs(request_timeout_secs.max(1));
            let server_config = ServerConfig {
                prefix,
                max_body_bytes,
                header_timeout: timeout,
                body_timeout: timeout,
                max_connections,
                ..ServerConfig::default()
            };
            serve(witness, listen, server_config)
        }
    }
}

fn serve(witness: Witness, listen: SocketAddr, config: ServerConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr().context("no local address")?;
        tracing::info!(
            witness = %witness.verifier().to_vkey(),
            logs = ?witness.sizes(),
            "witness ready"
        );
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {addr}")?;
            out.flush()?;
        }
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot handle SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = sigterm.recv() => {}
            }
        };
        server::serve(listener, Arc::new(witness), config, shutdown).await;
        anyhow::Ok(())
    })
}
