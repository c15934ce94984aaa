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
    /// The host, `https://HOST:PORT` (direct RA-TLS: the host sees your address).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "relay",
        conflicts_with = "relay"
    )]
    host: Option<String>,
    /// An Oblivious HTTP relay, `http://HOST:PORT`: the session is tunneled through it and
    /// the operator's gateway to a host, paid with an anonymous token from `--issuer`.
    #[arg(
        long,
        value_name = "URL",
        requires_all = ["issuer", "issuer_name", "issuer_key", "api_key_file"]
    )]
    relay: Option<String>,
    /// The token issuer's directory URL
    /// (`http://HOST:PORT/.well-known/private-token-issuer-directory`).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// The issuer's name, as in the gateway's token challenge.
    #[arg(long, value_name = "NAME")]
    issuer_name: Option<String>,
    /// The issuer's published public key (`token-key.json`): tokens are only obtained for
    /// this key, and only if the issuer's directory lists it for everyone.
    #[arg(long, value_name = "FILE")]
    issuer_key: Option<PathBuf>,
    /// The gateway's name, as it publishes its key configurations in the transparency log.
    /// Required when the policy names a log (`[transparency] log`): then the gateway's keys
    /// and the issuer's key must be published there (key consistency).
    #[arg(long, value_name = "NAME")]
    gateway_name: Option<String>,
    /// A file holding your account's API key for the issuer.
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
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
        let resp = match (&args.host, &args.relay) {
            (Some(host), _) => {
                let (mut session, summary) = attest(host, args.policy.as_deref()).await?;
                // The verified summary goes to stderr; stdout carries only the feature's output.
                eprint!("{}", cloister_display::sanitize_lines(&summary));
                session
                    .call_feature(&args.feature, bytes::Bytes::from(input))
                    .await?
            }
            (None, Some(relay)) => run_oblivious(&args, relay, input).await?,
            (None, None) => bail!("give --host or --relay"),
        };
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

fn session_lost(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<cloister_client::tunnel::TransportError>(),
            Some(cloister_client::tunnel::TransportError::SessionLost)
        )
    })
}

/// One tunneled session: connect (attesting the host), print the verified summary, call the
/// feature. Returns the response and the session's round trips.
async fn oblivious_call<T: cloister_client::tunnel::FlightTransport>(
    client: &Client,
    transport: &std::sync::Arc<T>,
    relay: &str,
    file: &cloister_verifier::PolicyFile,
    policy: &cloister_verifier::Policy,
    args: &RunArgs,
    input: &[u8],
) -> Result<(cloister_client::Response, u32)> {
    let mut session = client
        .connect_tunnel(std::sync::Arc::clone(transport))
        .await
        .with_context(|| format!("host behind relay {relay} NOT trusted"))?;
    let mut summary =
        format!("tunneled through relay {relay}: TLS 1.3, host ATTESTED for this session\n");
    summary.push_str(&crate::attest::summary(&session.evidence, file, policy));
    summary.push_str(
        "certificate:  made for this session: evidence bound to the session id, the TLS key and the log (tunnel mode)\n",
    );
    eprint!("{}", cloister_display::sanitize_lines(&summary));
    let resp = session
        .call_feature(&args.feature, bytes::Bytes::copy_from_slice(input))
        .await?;
    Ok((resp, session.stats.round_trips))
}

/// `cloister run --relay`: a tunneled session through the relay and gateway, attested during
/// the handshake (tunnel mode), then the request.
async fn run_oblivious(
    args: &RunArgs,
    relay: &str,
    input: Vec<u8>,
) -> Result<cloister_client::Response> {
    use cloister_client::oblivious::{IssuerTokens, ObliviousTransport};
    let (Some(issuer), Some(issuer_name), Some(issuer_key), Some(api_key_file)) = (
        &args.issuer,
        &args.issuer_name,
        &args.issuer_key,
        &args.api_key_file,
    ) else {
        bail!("--relay needs --issuer, --issuer-name, --issuer-key and --api-key-file");
    };
    let (key, _) = cloister_issuer::keys::load_public(issuer_key)
        .with_context(|| format!("cannot load the issuer key {}", issuer_key.display()))?;
    let api_key = std::fs::read_to_string(api_key_file)
        .with_context(|| format!("cannot read the API key {}", api_key_file.display()))?
        .trim()
        .to_owned();
    if api_key.is_empty() {
        bail!("the API key file {} is empty", api_key_file.display());
    }
    let (file, policy, roots) = crate::attest::load_policy(args.policy.as_deref())?;
    let mut tokens = IssuerTokens::new(issuer, issuer_name, key, api_key)?;
    // With a log in the policy, the gateway's and the issuer's keys must be published in it.
    let log = file.transparency.as_ref().and_then(|t| t.log.clone());
    let consistency = match (log, &policy.transparency) {
        (Some(log), Some(req)) => {
            let Some(gateway) = &args.gateway_name else {
                bail!("the policy names a transparency log: --gateway-name is required, so that the gateway's keys are checked against it");
            };
            let keys = std::sync::Arc::new(cloister_client::published_keys::PublishedKeys::new(
                &log,
                req.tlog.clone(),
                req.max_age_secs,
            ));
            tokens = tokens.require_published(std::sync::Arc::clone(&keys));
            Some((keys, gateway.clone()))
        }
        _ => None,
    };
    let mut transport = ObliviousTransport::new(relay, tokens)?;
    if let Some((keys, gateway)) = consistency {
        transport = transport.require_published(keys, &gateway);
        eprintln!(
            "oblivious:    the gateway's and the issuer's keys must be in the transparency log"
        );
    }
    let transport = std::sync::Arc::new(transport);
    let client = Client::new(policy.clone(), roots)?;
    // A session whose host went away mid-session is lost: the features are pure functions of
    // their input, so the call is retried once on a new session (a new token, a live host).
    let mut attempt = 0;
    let (resp, round_trips) = loop {
        attempt += 1;
        match oblivious_call(&client, &transport, relay, &file, &policy, args, &input).await {
            Ok(done) => break done,
            Err(e) if attempt == 1 && session_lost(&e) => {
                eprintln!("oblivious:    the session was lost (its host went away); retrying once on a new session");
            }
            Err(e) => return Err(e),
        }
    };
    let hops = transport.stats();
    eprintln!(
        "oblivious:    {} round trips, {} token spent, {} B sent to the relay, {} B received",
        round_trips, hops.tokens, hops.bytes_out, hops.bytes_in
    );
    Ok(resp)
}
