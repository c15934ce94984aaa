//! `cloister publish`, `cloister audit`, `cloister monitor`: the transparency log from the
//! outside — feature teams and operators publish, auditors replay, teams watch for releases
//! they did not make.
//!
//! The log is read from an `http://` URL or a directory holding its tiles; nothing read is
//! trusted: checkpoints are verified under a tlog-policy, entries against the root.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use cloister_client::log_reader::LogReader;
use cloister_tlog::{merkle, verify_checkpoint, Checkpoint, Freshness, Note, Policy, TlogProof};
use cloister_transparency::replay;
use cloister_transparency::{NamedDigest, Statement};
use sha2::{Digest, Sha256};

/// Where a log is and how to write to it.
#[derive(Debug, Args)]
pub struct LogTarget {
    /// The log: its base `http://` URL.
    #[arg(long)]
    log: String,
    /// A file holding the publisher's bearer token (`cloister-log new-publisher` made it).
    #[arg(long)]
    token_file: PathBuf,
    /// Also write the entry's inclusion proof (tlog-proof@v1) here.
    #[arg(long)]
    proof_out: Option<PathBuf>,
}

/// `cloister publish …`
#[derive(Debug, Subcommand)]
pub enum PublishCommand {
    /// A signed plugin release: the component and its DSSE envelope, checked against the
    /// signer's public key before anything is sent.
    Plugin {
        /// The component (.wasm).
        #[arg(long)]
        component: PathBuf,
        /// Its release envelope (DSSE JSON).
        #[arg(long)]
        envelope: PathBuf,
        /// The release signer's public key (Ed25519 SPKI PEM).
        #[arg(long)]
        signer: PathBuf,
        #[command(flatten)]
        target: LogTarget,
    },
    /// A model of the model manifest: its pinned files and their digest.
    Model {
        /// The model's name in the manifest.
        #[arg(long)]
        name: String,
        /// The model manifest.
        #[arg(long, default_value = "models/manifest.toml")]
        manifest: PathBuf,
        #[command(flatten)]
        target: LogTarget,
    },
    /// A CVM image: its launch measurement and the inputs that produce it. With an image
    /// manifest (`cloister-image-manifest/v1`) the measurement is computed from the pinned
    /// files next to it; a stand-in description (JSON: launch_measurement, inputs
    /// [{name, sha256}], vcpus, vcpu_type, vmm) publishes a given measurement, for
    /// simulated hosts.
    Image {
        /// The image manifest, or a stand-in description.
        #[arg(long)]
        manifest: PathBuf,
        #[command(flatten)]
        target: LogTarget,
    },
    /// A gateway's Oblivious HTTP key configuration (one line of `cloister-gateway config`),
    /// so that clients can check they got the key everyone gets.
    OhttpKey {
        /// The gateway's name, as clients are configured with it (`cloister run
        /// --gateway-name`).
        #[arg(long)]
        gateway: String,
        /// The encoded key configuration (hex).
        #[arg(long)]
        config: String,
        /// Valid from (Unix seconds).
        #[arg(long)]
        not_before: u64,
        /// Valid until (Unix seconds, exclusive).
        #[arg(long)]
        not_after: u64,
        #[command(flatten)]
        target: LogTarget,
    },
    /// A Privacy Pass issuer's token key (its published `token-key.json`), so that clients
    /// can check they got the key everyone gets.
    IssuerKey {
        /// The issuer's name (as in the gateway's challenge).
        #[arg(long)]
        issuer: String,
        /// The issuer's public key file (`token-key.json`).
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        target: LogTarget,
    },
    /// Revoke a published release, model, image or key, by its entry's leaf hash (printed by
    /// `publish` and `audit`).
    Revocation {
        /// The leaf hash of the entry to revoke (64 hex).
        #[arg(long)]
        subject: String,
        /// Why (public).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        target: LogTarget,
    },
}

/// `cloister audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The log: an `http://` URL or a directory with its tiles.
    #[arg(long)]
    log: String,
    /// The tlog-policy its checkpoint must satisfy (log key, witnesses, quorum).
    #[arg(long)]
    policy: PathBuf,
    /// Earlier checkpoints (signed notes) that must be prefixes of the log (repeatable).
    #[arg(long = "checkpoint")]
    checkpoints: Vec<PathBuf>,
    /// A state file: the last audited checkpoint is read from it (and must be a prefix) and
    /// the new one written to it.
    #[arg(long)]
    state: Option<PathBuf>,
    /// A directory of image manifests named `<manifest sha256>.json`, with their pinned
    /// files next to them: each published image found there has its launch measurement
    /// re-derived, and the audit fails if it differs from the log's.
    #[arg(long)]
    images: Option<PathBuf>,
}

/// `cloister monitor`
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The log: an `http://` URL or a directory with its tiles.
    #[arg(long)]
    log: String,
    /// The tlog-policy its checkpoints must satisfy.
    #[arg(long)]
    policy: PathBuf,
    /// Report plugin releases signed by this key id (64 hex), and revocations of them.
    #[arg(long)]
    signer_key_id: String,
    /// Where the monitor keeps the last checkpoint it read (created if missing).
    #[arg(long)]
    state: PathBuf,
    /// Read once and exit (default: keep watching).
    #[arg(long)]
    once: bool,
    /// Seconds between reads when watching.
    #[arg(long, default_value_t = 60)]
    every_secs: u64,
}

/// A reader of the log at `log` (URL or directory).
fn log_reader(log: &str) -> LogReader {
    LogReader::new(log, Duration::from_secs(30))
}

/// The log's checkpoint, verified under `policy` (any cosignature age: an audit looks at
/// history, not freshness).
fn verified_checkpoint(reader: &LogReader, policy: &Policy) -> Result<(Note, Checkpoint)> {
    let bytes = reader
        .fetch("checkpoint")
        .map_err(|e| anyhow::anyhow!("cannot fetch the log's checkpoint: {e}"))?;
    let note = Note::parse(&bytes).context("the log's checkpoint")?;
    let v = verify_checkpoint(
        &note,
        policy,
        Freshness {
            now: now_secs(),
            max_age_secs: None,
        },
    )
    .context("the log's checkpoint does not verify under the policy")?;
    Ok((note, v.checkpoint))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

fn read_policy(path: &Path) -> Result<Policy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the tlog-policy {}", path.display()))?;
    Policy::parse(&text).with_context(|| format!("the tlog-policy {}", path.display()))
}

fn is_image_manifest(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_owned))
        .is_some_and(|f| f == cloister_image::MANIFEST_FORMAT)
}

/// The `cvm-image` statement of an image manifest: the launch measurement computed from its
/// pinned files (each checked), and every input by SHA-256.
fn image_statement(bytes: &[u8], base: &Path) -> Result<Statement> {
    let m = cloister_image::ImageManifest::from_json(bytes)?;
    let measurement = m
        .measure(base)
        .context("cannot compute the image's launch measurement")?;
    let mut inputs = vec![NamedDigest {
        name: "ovmf".into(),
        sha256: m.inputs.ovmf.sha256.clone(),
    }];
    if let Some(k) = &m.inputs.kernel {
        inputs.push(NamedDigest {
            name: "kernel".into(),
            sha256: k.sha256.clone(),
        });
    }
    if let Some(i) = &m.inputs.initrd {
        inputs.push(NamedDigest {
            name: "initrd".into(),
            sha256: i.sha256.clone(),
        });
    }
    if let Some(c) = &m.inputs.cmdline {
        inputs.push(NamedDigest {
            name: "cmdline".into(),
            sha256: hex::encode(Sha256::digest(c.as_bytes())),
        });
    }
    Ok(Statement::CvmImage {
        launch_measurement: hex::encode(measurement),
        manifest_sha256: hex::encode(Sha256::digest(bytes)),
        inputs,
        vcpus: m.vcpus,
        vcpu_type: m.vcpu_type.clone(),
        vmm: m.vmm.clone(),
    })
}

/// A stand-in image (a simulated host's): the measurement is given, not computed.
fn stand_in_image(bytes: &[u8]) -> Result<Statement> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StandIn {
        launch_measurement: String,
        inputs: Vec<NamedDigest>,
        vcpus: u32,
        vcpu_type: String,
        vmm: String,
    }
    let m: StandIn = serde_json::from_slice(bytes)
        .context("the image description is neither an image manifest nor a stand-in description")?;
    Ok(Statement::CvmImage {
        launch_measurement: m.launch_measurement,
        manifest_sha256: hex::encode(Sha256::digest(bytes)),
        inputs: m.inputs,
        vcpus: m.vcpus,
        vcpu_type: m.vcpu_type,
        vmm: m.vmm,
    })
}

/// Run a `publish` command.
pub fn publish(cmd: PublishCommand) -> Result<()> {
    let (statement, target) = match cmd {
        PublishCommand::Plugin {
            component,
            envelope,
            signer,
            target,
        } => {
            let component_bytes = read(&component, "component")?;
            let envelope_bytes = read(&envelope, "envelope")?;
            let pem = String::from_utf8(read(&signer, "signer key")?)
                .context("the signer key is not PEM text")?;
            let key = cloister_signing::PublicKey::from_spki_pem(&pem).context("the signer key")?;
            let release =
                cloister_signing::verify_release(&envelope_bytes, &component_bytes, &[key])
                    .context("the release does not verify: nothing published")?;
            (
                Statement::PluginRelease {
                    name: release.name.clone(),
                    version: release.version.clone(),
                    component_sha256: release.sha256_hex(),
                    signer_key_id: release.signer_key_id.clone(),
                    envelope_sha256: hex::encode(Sha256::digest(&envelope_bytes)),
                },
                target,
            )
        }
        PublishCommand::Model {
            name,
            manifest,
            target,
        } => {
            let m = cloister_models::Manifest::from_file(&manifest)
                .with_context(|| format!("the model manifest {}", manifest.display()))?;
            let spec = m
                .model(&name)
                .with_context(|| format!("the manifest has no model {name:?}"))?;
            let files = spec
                .loaded_files()
                .into_iter()
                .map(|f| NamedDigest {
                    name: f.name.clone(),
                    sha256: f.sha256.clone(),
                })
                .collect();
            (
                Statement::Model {
                    name: spec.name.clone(),
                    version: spec.version.clone(),
                    sha256: hex::encode(cloister_models::pinned_digest(spec)),
                    files,
                },
                target,
            )
        }
        PublishCommand::Image { manifest, target } => {
            let bytes = read(&manifest, "image manifest")?;
            if is_image_manifest(&bytes) {
                let base = manifest.parent().unwrap_or(Path::new("."));
                (image_statement(&bytes, base)?, target)
            } else {
                (stand_in_image(&bytes)?, target)
            }
        }
        PublishCommand::Revocation {
            subject,
            reason,
            target,
        } => (Statement::Revocation { subject, reason }, target),
        PublishCommand::OhttpKey {
            gateway,
            config,
            not_before,
            not_after,
            target,
        } => {
            let config = config.trim().to_ascii_lowercase();
            let bytes = hex::decode(&config).context("--config is not hex")?;
            let key_id = u32::from(*bytes.first().context("--config is empty")?);
            (
                Statement::OhttpKeyConfig {
                    gateway,
                    key_id,
                    config,
                    not_before,
                    not_after,
                },
                target,
            )
        }
        PublishCommand::IssuerKey {
            issuer,
            key,
            target,
        } => {
            let (public, _) = cloister_issuer::keys::load_public(&key)
                .with_context(|| format!("cannot load the issuer key {}", key.display()))?;
            (
                Statement::TokenIssuerKey {
                    issuer,
                    token_type: 2,
                    token_key_id: hex::encode(public.token_key_id()),
                },
                target,
            )
        }
    };
    let entry = statement.to_entry().context("the entry is not valid")?;
    let token = std::fs::read_to_string(&target.token_file)
        .with_context(|| format!("cannot read the token file {}", target.token_file.display()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/add", target.log.trim_end_matches('/'));
    let mut resp = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .send(&entry[..])
        .with_context(|| {
            format!(
                "cannot reach the log at {}",
                cloister_display::excerpt(&url)
            )
        })?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default();
    if status != 200 {
        bail!(
            "the log refused the entry (HTTP {status}): {}",
            cloister_display::excerpt(body.trim())
        );
    }
    let proof =
        TlogProof::parse(body.as_bytes()).context("the log's answer is not a tlog-proof")?;
    if proof.extra.as_deref() != Some(&entry[..]) {
        bail!("the log proved another entry than the one sent");
    }
    let leaf = merkle::leaf_hash(&entry);
    let c = Checkpoint::parse(proof.checkpoint.text())?;
    merkle::verify_inclusion(proof.index, c.size, &leaf, &proof.hashes, &c.root)
        .context("the log's inclusion proof does not verify")?;
    if let Some(out) = &target.proof_out {
        std::fs::write(out, proof.to_text())
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    println!("published {}", statement.describe());
    println!("index {}", proof.index);
    println!("leaf {}", hex::encode(leaf));
    println!("checkpoint {} entries", c.size);
    // The inclusion proof itself (tlog-proof@v1), after a blank line.
    println!();
    print!("{}", cloister_display::sanitize_lines(&proof.to_text()));
    Ok(())
}

/// Run `audit`.
pub fn audit(args: AuditArgs) -> Result<()> {
    let policy = read_policy(&args.policy)?;
    let reader = log_reader(&args.log);
    let (note, checkpoint) = verified_checkpoint(&reader, &policy)?;
    let mut earlier = Vec::new();
    for p in &args.checkpoints {
        let n = Note::parse(&read(p, "checkpoint")?).with_context(|| format!("{}", p.display()))?;
        n.open(
            &policy
                .log_keys_for(&checkpoint.origin)
                .into_iter()
                .collect::<Vec<_>>(),
        )
        .with_context(|| format!("{} is not signed by the log", p.display()))?;
        earlier.push(Checkpoint::parse(n.text())?);
    }
    if let Some(state) = &args.state {
        if let Ok(bytes) = std::fs::read(state) {
            let n = Note::parse(&bytes)
                .with_context(|| format!("the state file {}", state.display()))?;
            earlier.push(Checkpoint::parse(n.text())?);
        }
    }
    let started = std::time::Instant::now();
    let mut fetch = |p: &str| reader.fetch(p);
    let report =
        replay::audit(&mut fetch, &checkpoint, &earlier).context("the log does not audit")?;
    let mut subjects = std::collections::HashMap::new();
    for (i, (s, leaf)) in report.statements.iter().zip(&report.leaves).enumerate() {
        if s.is_revocable() {
            subjects.insert(hex::encode(leaf), (i, s.describe()));
        }
    }
    println!(
        "log {} audited: {} entries, every hash recomputed, tiles agree, rules hold ({} ms)",
        checkpoint.origin,
        checkpoint.size,
        started.elapsed().as_millis()
    );
    for size in &report.consistent_with {
        println!("consistent with the earlier checkpoint of {size} entries");
    }
    for (i, (s, leaf)) in report.statements.iter().zip(&report.leaves).enumerate() {
        match s {
            Statement::RevocationList { .. } => {}
            Statement::Revocation { subject, reason } => {
                let what = subjects
                    .get(subject)
                    .map(|(j, d)| format!("#{j} {d}"))
                    .unwrap_or_else(|| "?".into());
                println!("#{i} REVOKED {what}: {}", cloister_display::excerpt(reason));
            }
            other => println!("#{i} {} leaf {}", other.describe(), hex::encode(leaf)),
        }
    }
    if let Some(dir) = &args.images {
        rederive_images(dir, &report.statements)?;
    }
    if let Some(state) = &args.state {
        std::fs::write(state, note.to_text())
            .with_context(|| format!("cannot write {}", state.display()))?;
    }
    Ok(())
}

/// Re-derives the launch measurement of every published image whose manifest is in `dir`
/// (as `<manifest sha256>.json`, pinned files next to it); fails on the first difference.
fn rederive_images(dir: &Path, statements: &[Statement]) -> Result<()> {
    for (i, s) in statements.iter().enumerate() {
        let Statement::CvmImage {
            launch_measurement,
            manifest_sha256,
            ..
        } = s
        else {
            continue;
        };
        let short = &launch_measurement[..16];
        let path = dir.join(format!("{manifest_sha256}.json"));
        let Ok(bytes) = std::fs::read(&path) else {
            println!("#{i} image {short}: manifest not at hand, not re-derived");
            continue;
        };
        if hex::encode(Sha256::digest(&bytes)) != *manifest_sha256 {
            bail!("{} does not hash to the name it has", path.display());
        }
        if !is_image_manifest(&bytes) {
            println!("#{i} image {short}: a stand-in description (nothing to re-derive)");
            continue;
        }
        let again = image_statement(&bytes, dir).with_context(|| {
            format!(
                "entry #{i}: cannot re-derive the image from {}",
                path.display()
            )
        })?;
        if again != *s {
            bail!(
                "entry #{i}: the image's recorded inputs or launch measurement differ from what {} gives",
                path.display()
            );
        }
        println!("#{i} image {short}: launch measurement re-derived from its inputs, identical");
    }
    Ok(())
}

/// Run `monitor`.
pub fn monitor(args: MonitorArgs) -> Result<()> {
    if args.signer_key_id.len() != 64 || !args.signer_key_id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        bail!("--signer-key-id is 64 hex characters");
    }
    let want = args.signer_key_id.to_ascii_lowercase();
    let policy = read_policy(&args.policy)?;
    let reader = log_reader(&args.log);
    loop {
        let (note, c) = verified_checkpoint(&reader, &policy)?;
        let previous = match std::fs::read(&args.state) {
            Ok(b) => Some(Checkpoint::parse(
                Note::parse(&b)
                    .with_context(|| format!("the state file {}", args.state.display()))?
                    .text(),
            )?),
            Err(_) => None,
        };
        let from = match &previous {
            Some(old) => {
                let mut fetch = |p: &str| reader.fetch(p);
                replay::verify_extends(&mut fetch, old, &c).context(
                    "the log is not consistent with the last checkpoint seen: it forked or went back",
                )?;
                old.size
            }
            None => 0,
        };
        let mut fetch = |p: &str| reader.fetch(p);
        // Read from the start to know every release's leaf (revocations name leaves).
        let entries = replay::read_entries(&mut fetch, 0, c.size)?;
        let leaves: Vec<_> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
        if merkle::root_from_leaf_hashes(&leaves) != c.root {
            bail!("the log's entries do not hash to its checkpoint's root");
        }
        let mut ours = std::collections::HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let Ok(s) = Statement::from_entry(e) else {
                continue;
            };
            match &s {
                Statement::PluginRelease { signer_key_id, .. } if *signer_key_id == want => {
                    ours.insert(hex::encode(leaves[i]), s.describe());
                    if i as u64 >= from {
                        println!(
                            "#{i} NEW RELEASE signed by the watched key: {}",
                            s.describe()
                        );
                    }
                }
                Statement::Revocation { subject, reason } if i as u64 >= from => {
                    if let Some(d) = ours.get(subject) {
                        println!("#{i} REVOKED {d}: {}", cloister_display::excerpt(reason));
                    }
                }
                _ => {}
            }
        }
        std::fs::write(&args.state, note.to_text())
            .with_context(|| format!("cannot write {}", args.state.display()))?;
        if args.once {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(args.every_secs.max(1)));
    }
}
