//! `cloister-gateway`: the OHTTP gateway.
//!
//! ```text
//! cloister-gateway keygen --seed gateway.seed
//! cloister-gateway config --seed gateway.seed --keys 1:1700000000:1800000000,2:…
//! cloister-gateway serve --seed gateway.seed --keys 1:NB:NA,2:NB:NA --listen 127.0.0.1:0 \
//!     --host http://10.0.0.5:8443 --host http://10.0.0.6:8443 --store redb:/var/lib/gw/spent.redb \
//!     --issuer-key issuer.pub --issuer-name issuer.example [--health-interval-ms 5000]
//! ```

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use cloister_gateway::{
    Gateway, GatewayConfig, HostPool, KeySet, KeySpec, RedbStore, RedisStore, Seed, SessionLimits,
    SpentTokens, TokenCheck,
};

#[derive(Parser)]
#[command(
    name = "cloister-gateway",
    about = "The Cloister OHTTP gateway (RFC 9458)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the key seed: 32 random bytes (mode 0600; the file must not exist). Every
    /// replica with the same seed serves the same key configurations.
    Keygen {
        /// Where to write the seed.
        #[arg(long)]
        seed: PathBuf,
    },
    /// Print the key configurations of a seed: one line per key id, `id not_before
    /// not_after config-hex`, and the `application/ohttp-keys` body valid now in hex.
    Config {
        /// The seed file.
        #[arg(long)]
        seed: PathBuf,
        /// Key ids and validity windows: ID:NOT_BEFORE:NOT_AFTER[,…] (unix seconds).
        #[arg(long)]
        keys: String,
    },
    /// Serve the gateway.
    Serve {
        /// The seed file.
        #[arg(long)]
        seed: PathBuf,
        /// Key ids and validity windows: ID:NOT_BEFORE:NOT_AFTER[,…] (unix seconds).
        #[arg(long)]
        keys: String,
        /// Address to listen on (port 0 picks one; the address is printed).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// A host tunnel endpoint, http://host:port (repeatable): the allow-list.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// The spent-token store: redb:PATH (embedded) or redis://HOST:PORT[/DB] (shared).
        #[arg(long)]
        store: String,
        /// How long spent tokens are remembered; at least the issuer key's lifetime.
        #[arg(long, default_value_t = 180 * 24 * 3600)]
        spent_retention_secs: u64,
        /// The token issuer's public key file.
        #[arg(long)]
        issuer_key: PathBuf,
        /// The token issuer's name (as in its challenges).
        #[arg(long)]
        issuer_name: String,
        /// Health check interval.
        #[arg(long, default_value_t = 5000)]
        health_interval_ms: u64,
        /// Most sessions mapped at once.
        #[arg(long, default_value_t = 100_000)]
        max_sessions: usize,
        /// Forget a session idle this long.
        #[arg(long, default_value_t = 600)]
        session_idle_secs: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Keygen { seed } => {
            Seed::generate()?.write_new(&seed)?;
            println!("wrote a new seed to {}", seed.display());
            Ok(())
        }
        Cmd::Config { seed, keys } => {
            let set = load_keys(&seed, &keys)?;
            for k in set.keys() {
                let s = k.spec();
                println!(
                    "{} {} {} {}",
                    s.id,
                    s.not_before,
                    s.not_after,
                    hex::encode(k.config())
                );
            }
            println!(
                "ohttp-keys {}",
                hex::encode(set.encoded_configs(unix_now()))
            );
            Ok(())
        }
        Cmd::Serve {
            seed,
            keys,
            listen,
            hosts,
            store,
            spent_retention_secs,
            issuer_key,
            issuer_name,
            health_interval_ms,
            max_sessions,
            session_idle_secs,
        } => {
            let keys = load_keys(&seed, &keys)?;
            let pool = HostPool::new(
                &hosts,
                SessionLimits {
                    max_sessions,
                    idle: Duration::from_secs(session_idle_secs.max(1)),
                },
            )?;
            let store = StoreSpec::parse(&store)?;
            let tokens = token_check(&issuer_key, &issuer_name)?;
            serve(
                keys,
                pool,
                store,
                Duration::from_secs(spent_retention_secs),
                tokens,
                listen,
                Duration::from_millis(health_interval_ms),
            )
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn load_keys(seed: &Path, keys: &str) -> Result<KeySet> {
    let seed = Seed::read(seed)?;
    let specs = KeySpec::parse_list(keys)?;
    Ok(KeySet::derive(&seed, &specs)?)
}

/// The token verifier for the issuer's key: type-2 tokens for the gateway's challenge
/// (this issuer, no origin, no redemption context; `cloister_issuer::redeem::Challenge`).
fn token_check(issuer_key: &Path, issuer_name: &str) -> Result<Arc<dyn TokenCheck>> {
    let (key, _) = cloister_issuer::keys::load_public(issuer_key)
        .with_context(|| format!("cannot load the issuer key {}", issuer_key.display()))?;
    let challenge = cloister_issuer::redeem::Challenge::new(issuer_name, &[])
        .with_context(|| format!("invalid --issuer-name {issuer_name:?}"))?;
    Ok(Arc::new(cloister_issuer::redeem::TokenVerifier::new(
        key, challenge,
    )))
}

enum StoreSpec {
    Redb(PathBuf),
    Redis(String),
}

impl StoreSpec {
    fn parse(s: &str) -> Result<StoreSpec> {
        if let Some(p) = s.strip_prefix("redb:") {
            if p.is_empty() {
                bail!("--store redb:PATH needs a path");
            }
            Ok(StoreSpec::Redb(PathBuf::from(p)))
        } else if s.starts_with("redis://") || s.starts_with("rediss://") {
            Ok(StoreSpec::Redis(s.to_owned()))
        } else {
            bail!("--store is redb:PATH or redis://HOST:PORT[/DB], got {s:?}")
        }
    }
}

fn serve(
    keys: KeySet,
    pool: HostPool,
    store: StoreSpec,
    retention: Duration,
    tokens: Arc<dyn TokenCheck>,
    listen: String,
    health_interval: Duration,
) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOISTER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let store: Arc<dyn SpentTokens> = match store {
            StoreSpec::Redb(path) => Arc::new(RedbStore::open(&path, retention)?),
            StoreSpec::Redis(url) => Arc::new(RedisStore::connect(&url, retention).await?),
        };
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let gateway = Gateway::new(
            keys,
            tokens,
            store,
            Arc::new(pool),
            GatewayConfig::default(),
        );
        let health = gateway.spawn_health_checks(health_interval);
        println!("listening on {addr}");
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
        cloister_gateway::serve(listener, gateway, shutdown).await;
        health.abort();
        Ok(())
    })
}
