//! The `cloister-host` command line, shared by the two host binaries:
//!
//! * `cloister-host` (this crate's binary): the **production** host, the one the
//!   CVM image takes. It links no simulator (`scripts/check-boundary` proves it
//!   from `cargo tree`) and refuses `--tee sim`.
//! * `cloister-host-dev` (`cvm/dev-host`): the same host with the SNP simulator
//!   (`--tee sim`), for development, tests and the development image.
//!
//! Commands:
//! * `serve --config FILE --tee snp|sim|none` verifies and loads the plugins, then
//!   serves the HTTP API over RA-TLS (`snp`: evidence from `/dev/sev-guest`;
//!   `sim`: from the local simulator, development host only) or, with `--tee none`,
//!   over plain HTTP on loopback without attestation.
//! * `measure --config FILE` verifies and loads the plugins, prints the measurement
//!   log and its digest, and exits without serving.
//! * `precompile --config FILE --out DIR` verifies the plugins and writes each one's
//!   compiled artifact, which `serve`/`measure --precompiled DIR` load instead of
//!   compiling (the CVM image carries them, measured: see `cloister_aot`).
//!
//! Obtaining models is not the host's job: `cloister models fetch` does it outside
//! the CVM.

use crate::api::Api;
use crate::listener;
use crate::ratls::{server_config, spawn_rotation, Attestor, RotatingCertificate};
use crate::tunnel::{self, Tunnel, TunnelLimits};
use crate::{config::Config, load};
use anyhow::Context;
use clap::{Parser, Subcommand};
use cloister_evidence::{EvidenceProvider, HardwareSnp, TeeChoice, TeeKind};
use cloister_runtime::Runtime;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        /// Where attestation evidence comes from: `snp` (AMD SEV-SNP hardware via
        /// /dev/sev-guest), `sim` (a locally generated simulated chip: NOT a TEE,
        /// development and tests only) or `none` (no attestation: plain HTTP,
        /// loopback only). Required: the host never picks one silently.
        #[arg(long, value_name = "snp|sim|none")]
        tee: String,
        #[command(flatten)]
        tee_options: TeeOptions,
        #[command(flatten)]
        precompiled: PrecompiledOption,
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
        #[command(flatten)]
        precompiled: PrecompiledOption,
    },
    /// Verify the configured plugins and compile each into the artifact that
    /// `--precompiled` loads (`<component sha256>.cwasm` in DIR), for the
    /// configuration's limits. `cloister-image build` runs this to put the
    /// artifacts into the measured image; the same inputs give the same bytes on
    /// every machine.
    Precompile {
        /// The host configuration (TOML) the artifacts are for.
        #[arg(long)]
        config: PathBuf,
        /// The directory to write them to (created).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Where precompiled plugins come from.
#[derive(clap::Args)]
pub struct PrecompiledOption {
    /// Load each plugin's precompiled artifact (`<component sha256>.cwasm`, made by
    /// `cloister-host precompile`) from DIR instead of compiling it; the components are
    /// still read, verified and measured. DIR must be part of the measured CVM image (the
    /// image's init passes it): its files run as native code in the host. A missing or
    /// mismatched artifact stops the host.
    #[arg(long, value_name = "DIR")]
    pub precompiled: Option<PathBuf>,
}

impl PrecompiledOption {
    fn dir(&self) -> Option<cloister_runtime::MeasuredDir> {
        // The claim `MeasuredDir` carries is made here, from the command line: in the
        // CVM it comes from cloister-init's measured configuration (docs/performance.md).
        self.precompiled
            .as_ref()
            .map(cloister_runtime::MeasuredDir::new)
    }
}

/// Options of the evidence providers.
#[derive(clap::Args)]
pub struct TeeOptions {
    /// `snp`: the VCEK/VLEK certificate (DER) to send when the platform's
    /// extended report carries none.
    #[arg(long, value_name = "FILE")]
    pub vcek: Option<PathBuf>,
    /// `sim`: write the simulated chip's root certificate (ARK, PEM) here, for
    /// a verifier's `trust_simulator_root`. The chip is new at every start.
    #[arg(long, value_name = "FILE")]
    pub sim_root_out: Option<PathBuf>,
    /// `sim`: the launch measurement (96 hex characters) the simulated reports
    /// carry; default: SHA-384 of "cloister simulated launch v1"
    /// (`cloister_protocol::SIMULATED_LAUNCH_MEASUREMENT`).
    #[arg(long, value_name = "HEX", conflicts_with = "sim_measurement_file")]
    pub sim_measurement: Option<String>,
    /// `sim`: read that launch measurement (96 hex characters) from this file instead. The
    /// development CVM image reads it from QEMU's fw_cfg, where the test that launched the
    /// VM put the digest it computed: the simulated chip reports what the launch measured,
    /// as a real one would, without the image having to contain its own measurement.
    #[arg(long, value_name = "FILE")]
    pub sim_measurement_file: Option<PathBuf>,
    /// `sim`: the simulated product: milan, genoa or turin.
    #[arg(long, default_value = "genoa")]
    pub sim_product: String,
}

/// Builds the simulated evidence provider from the `sim` options: only the development
/// host (`cloister-host-dev`) has one.
pub type SimulatorFactory = fn(&TeeOptions) -> anyhow::Result<Arc<dyn EvidenceProvider>>;

/// The whole `cloister-host` command line. `simulator` is `None` in the production
/// host, which then refuses `--tee sim`; the development host passes its factory.
pub fn main(simulator: Option<SimulatorFactory>) -> anyhow::Result<()> {
    // Before anything else runs much code: a CPU below the build's baseline
    // gets this refusal, not an illegal instruction later.
    cloister_aot::check_cpu()?;
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
            Command::Serve {
                config,
                tee,
                tee_options,
                precompiled,
            } => serve(&config, &tee, &tee_options, &precompiled, simulator).await,
            Command::Measure {
                config,
                canonical,
                precompiled,
            } => measure(&config, canonical, &precompiled).await,
            Command::Precompile { config, out } => precompile(&config, &out),
        }
    })
}

async fn load_host(
    path: &std::path::Path,
    precompiled: &PrecompiledOption,
) -> anyhow::Result<(Config, Runtime, load::LoadedHost)> {
    let config = Config::from_file(path)?;
    let runtime = Runtime::with_memory_pool(config.limits.clone(), config.memory_pool_bytes())
        .context("cannot start the plugin runtime")?;
    let host = load::load(&config, &runtime, precompiled.dir().as_ref())
        .await
        .context("refusing to start: plugin set not trusted")?;
    Ok((config, runtime, host))
}

fn precompile(path: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::from_file(path)?;
    let runtime = Runtime::with_memory_pool(config.limits.clone(), config.memory_pool_bytes())
        .context("cannot start the plugin runtime")?;
    let written =
        load::precompile(&config, &runtime, out).context("cannot precompile the plugin set")?;
    for a in written {
        println!(
            "{} {} bytes {} ms {}",
            a.plugin,
            a.bytes,
            a.millis,
            a.path.display()
        );
    }
    Ok(())
}

async fn measure(
    path: &std::path::Path,
    canonical: bool,
    precompiled: &PrecompiledOption,
) -> anyhow::Result<()> {
    let (_config, _runtime, host) = load_host(path, precompiled).await?;
    if canonical {
        println!("{}", String::from_utf8_lossy(&host.log.canonical_bytes()));
        return Ok(());
    }
    for e in host.log.entries() {
        println!(
            "{:<7} {}@{} sha256:{} signer:{}",
            e.kind,
            e.name,
            e.version,
            e.sha256,
            e.signer_key_id.as_deref().unwrap_or("-")
        );
    }
    println!("measurement-log sha256:{}", host.log.digest_hex());
    Ok(())
}

fn evidence_provider(
    tee: TeeChoice,
    options: &TeeOptions,
    simulator: Option<SimulatorFactory>,
) -> anyhow::Result<Option<Arc<dyn EvidenceProvider>>> {
    let sim_options = options.sim_root_out.is_some()
        || options.sim_measurement.is_some()
        || options.sim_measurement_file.is_some()
        || options.sim_product != "genoa";
    if tee != TeeChoice::Simulated && sim_options {
        anyhow::bail!(
            "--sim-root-out, --sim-measurement[-file] and --sim-product only apply to --tee sim"
        );
    }
    if tee != TeeChoice::Snp && options.vcek.is_some() {
        anyhow::bail!("--vcek only applies to --tee snp");
    }
    match tee {
        TeeChoice::None => Ok(None),
        TeeChoice::Snp => {
            let vcek = match &options.vcek {
                Some(p) => Some(
                    std::fs::read(p)
                        .with_context(|| format!("cannot read the VCEK {}", p.display()))?,
                ),
                None => None,
            };
            Ok(Some(Arc::new(HardwareSnp::open(vcek).context(
                "--tee snp: cannot use the SNP hardware (a development build offers --tee sim)",
            )?)))
        }
        TeeChoice::Simulated => match simulator {
            Some(factory) => factory(options).map(Some),
            None => Err(cloister_evidence::EvidenceError::SimulatorNotBuilt.into()),
        },
    }
}

/// Obtains the first transparency proofs (refusing to start if the log does not vouch for
/// every plugin, model and the image), then refreshes them every `refresh_secs` and on SIGHUP.
async fn start_transparency(
    tconf: &crate::config::TransparencyConfig,
    attestor: &Arc<Attestor>,
    measured: Vec<cloister_measurement::Entry>,
) -> anyhow::Result<()> {
    use crate::transparency::LogMirror;
    let mut mirror = LogMirror::new(tconf)?;
    let launch = {
        let attestor = Arc::clone(attestor);
        tokio::task::spawn_blocking(move || attestor.launch_measurement())
            .await
            .context("launch measurement task failed")?
            .context("cannot read this host's launch measurement")?
    };
    let started = Instant::now();
    let (mut mirror, first) = {
        let measured = measured.clone();
        tokio::task::spawn_blocking(move || {
            let p = mirror.refresh(&measured, &launch);
            (mirror, p)
        })
        .await
        .context("transparency task failed")?
    };
    let first = first.context("refusing to start: cannot obtain transparency-log proofs")?;
    let verdict = first
        .verdict
        .context("refusing to start: the transparency log does not vouch for this host")?;
    tracing::info!(
        size = verdict.checkpoint.checkpoint.size,
        proofs = first.bundle.entries.len(),
        ms = started.elapsed().as_millis() as u64,
        "transparency proofs verified"
    );
    attestor.set_transparency(first.bundle);
    let attestor = Arc::clone(attestor);
    let every = Duration::from_secs(tconf.refresh_secs);
    tokio::spawn(async move {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            match hup.as_mut() {
                Some(h) => {
                    tokio::select! { _ = tick.tick() => {}, _ = h.recv() => {} }
                }
                None => {
                    tick.tick().await;
                }
            }
            let measured = measured.clone();
            let res = tokio::task::spawn_blocking(move || {
                let p = mirror.refresh(&measured, &launch);
                (mirror, p)
            })
            .await;
            let Ok((m, outcome)) = res else {
                tracing::error!("transparency refresh task failed; proofs not refreshed");
                return;
            };
            mirror = m;
            match outcome {
                Ok(p) => {
                    // The proofs are served as they are, even when they show a revocation:
                    // clients then refuse this host, which is what a revocation is for.
                    match &p.verdict {
                        Ok(v) => tracing::info!(
                            size = v.checkpoint.checkpoint.size,
                            "transparency proofs refreshed"
                        ),
                        Err(e) => {
                            tracing::error!(error = %e, "the transparency log no longer vouches for this host")
                        }
                    }
                    attestor.set_transparency(p.bundle);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "transparency refresh failed; keeping the previous proofs")
                }
            }
        }
    });
    Ok(())
}

async fn serve(
    path: &std::path::Path,
    tee: &str,
    options: &TeeOptions,
    precompiled: &PrecompiledOption,
    simulator: Option<SimulatorFactory>,
) -> anyhow::Result<()> {
    let tee = TeeChoice::parse(tee)?;
    if tee == TeeChoice::Simulated && simulator.is_none() {
        // Before anything is loaded: the production host never gets near a simulator.
        return Err(cloister_evidence::EvidenceError::SimulatorNotBuilt.into());
    }
    // The evidence provider first: a host that cannot attest (no /dev/sev-guest) says so
    // at once, before it spends seconds loading plugins.
    let provider = evidence_provider(tee, options, simulator)?;
    let (config, runtime, host) = load_host(path, precompiled).await?;
    tracing::info!(
        plugins = host.plugins.len(),
        precompiled = precompiled.precompiled.is_some(),
        load_ms = host.load_time.as_millis() as u64,
        measurement = %host.log.digest_hex(),
        "plugins verified and loaded"
    );
    if provider.is_none() && !config.server.listen.ip().is_loopback() {
        anyhow::bail!(
            "--tee none serves plain HTTP without attestation and is only allowed on a \
             loopback address, not {}",
            config.server.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let local = listener
        .local_addr()
        .context("listener has no local address")?;

    let attestor = provider.map(|p| Arc::new(Attestor::new(p, &host.log)));
    if let Some(tconf) = &config.transparency {
        let Some(attestor) = &attestor else {
            anyhow::bail!(
                "[transparency] needs a TEE (--tee snp, or sim for development): with --tee none \
                 there is no launch measurement to prove and no evidence to carry the proofs"
            );
        };
        start_transparency(tconf, attestor, host.log.entries().to_vec()).await?;
    }
    let acceptor = match &attestor {
        None => {
            tracing::warn!(
                %local,
                "NO TEE (--tee none): plain HTTP, no attestation; clients cannot verify this host"
            );
            // The line tests and scripts wait for; keep its shape.
            println!("cloister-host listening on http://{local}");
            None
        }
        Some(attestor) => {
            let rotate = Duration::from_secs(config.server.rotate_tls_key_secs);
            let validity = rotate * 2;
            let started = Instant::now();
            let first = {
                let attestor = Arc::clone(attestor);
                tokio::task::spawn_blocking(move || attestor.new_identity(validity))
                    .await
                    .context("RA-TLS identity task failed")??
            };
            tracing::info!(
                micros = started.elapsed().as_micros() as u64,
                "RA-TLS key pair and certificate generated"
            );
            let resolver = Arc::new(RotatingCertificate::new(first));
            spawn_rotation(
                Arc::clone(attestor),
                Arc::clone(&resolver),
                rotate,
                validity,
            );
            let tee_name = match attestor.tee() {
                TeeKind::SevSnp => "SEV-SNP",
                TeeKind::Simulated => "SIMULATED SNP (not a TEE)",
            };
            println!("cloister-host listening on https://{local} (RA-TLS, {tee_name})");
            Some(tokio_rustls::TlsAcceptor::from(server_config(resolver)?))
        }
    };
    let api = Arc::new(Api::new(
        host,
        runtime.limits().max_input_bytes,
        attestor.clone(),
    ));
    if let Some(tconf) = &config.tunnel {
        let Some(attestor) = &attestor else {
            anyhow::bail!(
                "[tunnel] needs a TEE (--tee snp, or sim for development): every tunneled \
                 session is attested with its own certificate"
            );
        };
        if tconf.max_sessions == 0 || tconf.idle_secs == 0 {
            anyhow::bail!("[tunnel] max_sessions and idle_secs must be at least 1");
        }
        let tunnel_listener = tokio::net::TcpListener::bind(tconf.listen)
            .await
            .with_context(|| format!("cannot listen on {} for the tunnel", tconf.listen))?;
        let tunnel_local = tunnel_listener
            .local_addr()
            .context("tunnel listener has no local address")?;
        let tunnel = Arc::new(Tunnel::new(
            Arc::clone(&api),
            Arc::clone(attestor),
            TunnelLimits {
                max_sessions: tconf.max_sessions,
                idle: Duration::from_secs(tconf.idle_secs),
                ..TunnelLimits::default()
            },
        ));
        tokio::spawn(tunnel::run(tunnel_listener, tunnel, async {
            let _ = tokio::signal::ctrl_c().await;
        }));
        // The line tests and scripts wait for; keep its shape.
        println!("cloister-host tunnel listening on http://{tunnel_local}");
    }
    let _runtime = runtime;
    listener::run(listener, api, acceptor, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
