//! `cloister-relay`: an Oblivious HTTP relay for one gateway.
//!
//! ```text
//! cloister-relay --listen 0.0.0.0:8080 --gateway http://gateway.internal:8081 \
//!     [--max-body 540672] [--timeout-ms 60000] [--connect-timeout-ms 5000]
//! ```

#![forbid(unsafe_code)]

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use cloister_relay::{Relay, RelayConfig, DEFAULT_MAX_BODY};

#[derive(Parser)]
#[command(
    name = "cloister-relay",
    about = "An Oblivious HTTP relay (RFC 9458) for one gateway"
)]
struct Cli {
    /// Address to listen on (port 0 picks one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The gateway's base URL (http://host:port).
    #[arg(long)]
    gateway: String,
    /// Largest request and response body, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY)]
    max_body: usize,
    /// Longest a whole exchange may take, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
    /// Longest connecting to the gateway may take, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    connect_timeout_ms: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOISTER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let relay = Relay::new(&RelayConfig {
        gateway: cli.gateway,
        max_body: cli.max_body,
        connect_timeout: Duration::from_millis(cli.connect_timeout_ms),
        timeout: Duration::from_millis(cli.timeout_ms),
    })?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&cli.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cli.listen))?;
        println!("listening on {}", listener.local_addr()?);
        std::io::stdout().flush().ok();
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
        cloister_relay::serve(listener, relay, shutdown).await;
        Ok(())
    })
}
