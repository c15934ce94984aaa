//! `cloister-host`: the host binary that runs inside the CVM.
//!
//! * `cloister-host serve --config FILE` verifies and loads the plugins, then
//!   serves the HTTP API.
//! * `cloister-host measure --config FILE` verifies and loads the plugins,
//!   prints the measurement log and its digest, and exits without serving.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use cloister_host::{api::Api, config::Config, load};
use cloister_runtime::{NoModels, Runtime};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "cloister-host",
    version,
    about = "Cloister host: serves signed, measured AI feature plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify, load and measure the plugins, then serve the HTTP API.
    Serve {
        /// The host configuration (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Verify, load and measure the plugins; print the measurement log and
    /// its digest; do not serve.
    Measure {
        /// The host configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Print the canonical log bytes only (exactly what is hashed).
        #[arg(long)]
        canonical: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOISTER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve { config } => serve(&config).await,
            Command::Measure { config, canonical } => measure(&config, canonical).await,
        }
    })
}

async fn load_host(path: &std::path::Path) -> anyhow::Result<(Config, Runtime, load::LoadedHost)> {
    let config = Config::from_file(path)?;
    let runtime = Runtime::new(config.limits.clone()).context("cannot start the plugin runtime")?;
    let host = load::load(&config, &runtime, Arc::new(NoModels))
        .await
        .context("refusing to start: plugin set not trusted")?;
    Ok((config, runtime, host))
}

async fn measure(path: &std::path::Path, canonical: bool) -> anyhow::Result<()> {
    let (_config, _runtime, host) = load_host(path).await?;
    if canonical {
        println!("{}", String::from_utf8_lossy(&host.log.canonical_bytes()));
        return Ok(());
    }
    for e in host.log.entries() {
        println!(
            "{:<7} {}@{} sha256:{} signer:{}",
            match e.kind {
                cloister_measurement::EntryKind::Plugin => "plugin",
                cloister_measurement::EntryKind::Model => "model",
            },
            e.name,
            e.version,
            e.sha256,
            e.signer_key_id.as_deref().unwrap_or("-")
        );
    }
    println!("measurement-log sha256:{}", host.log.digest_hex());
    Ok(())
}

async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    let (config, runtime, host) = load_host(path).await?;
    tracing::info!(
        plugins = host.plugins.len(),
        load_ms = host.load_time.as_millis() as u64,
        measurement = %host.log.digest_hex(),
        "plugins verified and loaded"
    );
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let local = listener
        .local_addr()
        .context("listener has no local address")?;
    if !local.ip().is_loopback() {
        tracing::warn!(%local, "listening on a non-loopback address over plain HTTP");
    }
    // The line tests and scripts wait for; keep its shape.
    println!("cloister-host listening on http://{local}");
    let api = Arc::new(Api::new(host, runtime.limits().max_input_bytes));
    let _runtime = runtime;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("shutting down");
                return Ok(());
            }
        };
        let _ = stream.set_nodelay(true);
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            let service = service_fn(move |req| Arc::clone(&api).serve(req));
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
