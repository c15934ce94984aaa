//! `cloister connect` and `cloister run`: talk to a host over RA-TLS, only after its
//! attestation for this very session verified (see `cloister_client`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cloister_client::{AttestedSession, Client};

/// Arguments of `cloister connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The host, `https://HOST:PORT`.
    url: String,
    /// The policy file (TOML) [default: AMD roots, strict guest policy, any measurement,
    /// no plugins or models — which rejects any host that loaded plugins].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

/// Arguments of `cloister run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The feature (plugin) name, e.g. `summarize`.
    feature: String,
    /// The JSON input file (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The host, `https://HOST:PORT`.
    #[arg(long, value_name = "URL")]
    host: String,
    /// The policy file (TOML); see `cloister connect --help`.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn attest(url: &str, policy: Option<&std::path::Path>) -> Result<(AttestedSession, String)> {
    let (file, policy, roots) = crate::attest::load_policy(policy)?;
    let client = Client::new(policy.clone(), roots)?;
    let session = client
        .connect(url)
        .await
        .with_context(|| format!("host {url} NOT trusted"))?;
    let mut out = String::new();
    out.push_str(&format!(
        "connected to {url}: TLS 1.3, host ATTESTED for this session\n"
    ));
    out.push_str(&crate::attest::summary(&session.session, &file, &policy));
    out.push_str(&format!(
        "certificate:  evidence verified, bound to the TLS key (cert mode), same chip, measurement and log\n\
         session:      fresh evidence verified, bound to this session's TLS exporter (session mode)\n\
         timings:      tcp {:.2} ms, handshake incl. certificate evidence {:.2} ms, session evidence {:.2} ms\n",
        session.timings.tcp.as_secs_f64() * 1e3,
        session.timings.handshake.as_secs_f64() * 1e3,
        session.timings.session_attestation.as_secs_f64() * 1e3,
    ));
    Ok((session, out))
}

/// Runs `cloister connect`.
pub fn connect(args: ConnectArgs) -> Result<()> {
    runtime()?.block_on(async {
        let (_session, summary) = attest(&args.url, args.policy.as_deref()).await?;
        print!("{}", cloister_display::sanitize_lines(&summary));
        Ok(())
    })
}

/// Runs `cloister run`.
pub fn run(args: RunArgs) -> Result<()> {
    let input = if args.input.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .context("cannot read the input from standard input")?;
        buf
    } else {
        std::fs::read(&args.input)
            .with_context(|| format!("cannot read the input {}", args.input.display()))?
    };
    if serde_json::from_slice::<serde_json::Value>(&input).is_err() {
        bail!("the input {} is not valid JSON", args.input.display());
    }
    runtime()?.block_on(async {
        let (mut session, summary) = attest(&args.host, args.policy.as_deref()).await?;
        // The verified summary goes to stderr; stdout carries only the feature's output.
        eprint!("{}", cloister_display::sanitize_lines(&summary));
        let resp = session
            .call_feature(&args.feature, bytes::Bytes::from(input))
            .await?;
        if resp.status != 200 {
            let detail = serde_json::from_slice::<serde_json::Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("error").cloned())
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no JSON error body".into());
            bail!(
                "feature {} failed: HTTP {}: {}",
                cloister_display::quoted(&args.feature),
                resp.status,
                cloister_display::Excerpt(&detail)
            );
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&resp.body)?;
        stdout.write_all(b"\n")?;
        Ok(())
    })
}
