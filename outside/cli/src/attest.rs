//! `cloister attest ...`: verify attestation evidence bundles.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cloister_display::Excerpt;
use cloister_verifier::{
    verify_bundle, Allowed, BundleBinding, EvidenceBundle, Policy, PolicyFile, Tcb,
    VerifiedEvidence,
};

/// Subcommands of `cloister attest`.
#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Verify an evidence bundle (`cloister-evidence/v1` JSON) against a policy.
    ///
    /// Checks the AMD certificate chain, the report signature, TCB and guest policy, the
    /// REPORT_DATA binding to the measurement log, and that every plugin and model in the
    /// log is allowed. Prints a summary, or the precise failure (exit status 1).
    /// Session-bound evidence cannot be checked offline: it needs the TLS session.
    Verify {
        /// The evidence bundle (JSON).
        #[arg(long, value_name = "FILE")]
        evidence: PathBuf,
        /// The policy file (TOML) [default: AMD roots, strict guest policy, any
        /// measurement, no plugins or models].
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Verify as of this time instead of now (RFC 3339, e.g. 2025-06-01T00:00:00Z).
        #[arg(long, value_name = "RFC3339")]
        now: Option<String>,
    },
}

/// Runs a `cloister attest` subcommand.
pub fn run(cmd: AttestCommand) -> Result<()> {
    match cmd {
        AttestCommand::Verify {
            evidence,
            policy,
            now,
        } => verify(&evidence, policy.as_deref(), now.as_deref()),
    }
}

fn parse_now(text: Option<&str>) -> Result<SystemTime> {
    let Some(text) = text else {
        return Ok(SystemTime::now());
    };
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        // time's parse error prints its cause in its own message and returns it as its
        // source too: keep only the message, so `{:#}` does not print it twice.
        .map_err(|e| {
            anyhow::anyhow!(
                "--now {} is not an RFC 3339 date-time: {e}",
                cloister_display::quoted(text)
            )
        })?;
    let seconds = t.unix_timestamp();
    let t = match u64::try_from(seconds) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => bail!("--now {} is before 1970", cloister_display::quoted(text)),
    };
    Ok(t)
}

/// The policy file's policy and roots (see [`cloister_client::policy::load_policy`]).
pub(crate) fn load_policy(
    path: Option<&Path>,
) -> Result<(PolicyFile, Policy, cloister_verifier::TrustedRoots)> {
    let loaded = cloister_client::policy::load_policy(path)?;
    Ok((loaded.file, loaded.policy, loaded.roots))
}

fn verify(evidence_path: &Path, policy_path: Option<&Path>, now: Option<&str>) -> Result<()> {
    let now = parse_now(now)?;
    let (file, policy, roots) = load_policy(policy_path)?;
    let json = fs::read(evidence_path)
        .with_context(|| format!("cannot read evidence {}", evidence_path.display()))?;
    let bundle = EvidenceBundle::from_json(&json)
        .with_context(|| format!("invalid evidence bundle {}", evidence_path.display()))?;
    let verified = verify_bundle(&bundle, &policy, &roots, now, None)
        .with_context(|| format!("attestation evidence {} REJECTED", evidence_path.display()))?;
    print!(
        "{}",
        cloister_display::sanitize_lines(&summary(&verified, &file, &policy))
    );
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn tcb(t: &Tcb) -> String {
    t.components()
        .iter()
        .map(|(name, v)| format!("{name}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn summary(v: &VerifiedEvidence, file: &PolicyFile, policy: &Policy) -> String {
    let r = &v.report;
    let report = &r.report;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line("attestation evidence VERIFIED".into());
    if file.trust_simulator_root.is_some() {
        line("WARNING:      the policy trusts a SIMULATOR root: this may be simulated, not AMD hardware".into());
    }
    let signer = r.signer().name();
    line(format!(
        "chip:         {} ({signer}), chip id {}...",
        r.product,
        hex::encode(&report.chip_id[..8])
    ));
    line(format!(
        "report:       version {}, VMPL {}, GUEST_SVN {}",
        report.version, report.vmpl, report.guest_svn
    ));
    line(format!("TCB:          {} (reported)", tcb(&r.reported_tcb)));
    line(format!("measurement:  {}", hex::encode(report.measurement)));
    let measurement_policy = match &policy.allowed_measurements {
        Allowed::Any => "any (the policy lists no measurements)".to_owned(),
        Allowed::OneOf(list) => format!("one of {} allowed", list.len()),
    };
    line(format!("              {measurement_policy}"));
    line(format!(
        "guest policy: debug {}, migration agent {}, SMT allowed {}, single socket {} (platform SMT {})",
        yes_no(report.policy.debug()),
        yes_no(report.policy.migrate_ma()),
        yes_no(report.policy.smt_allowed()),
        yes_no(report.policy.single_socket()),
        if report.platform_info.smt_enabled() { "on" } else { "off" },
    ));
    match v.binding {
        BundleBinding::Cert { spki_sha256 } => line(format!(
            "binding:      cert mode, TLS key SPKI sha256 {} (check it against the server's certificate)",
            hex::encode(spki_sha256)
        )),
        BundleBinding::Session => line("binding:      session mode".into()),
        BundleBinding::Tunnel {
            spki_sha256,
            session_id,
        } => line(format!(
            "binding:      tunnel mode, session {}, TLS key SPKI sha256 {}",
            hex::encode(session_id),
            hex::encode(spki_sha256)
        )),
    }
    line(format!("log digest:   {}", hex::encode(v.log_digest)));
    let entries = v.log.entries();
    line(format!("entries:      {}", entries.len()));
    for e in entries {
        let kind = e.kind;
        // Names and versions come from the host: shown escaped and truncated.
        line(format!(
            "  {kind} {}@{} sha256={} signer={}",
            Excerpt(&e.name),
            Excerpt(&e.version),
            Excerpt(&e.sha256),
            Excerpt(e.signer_key_id.as_deref().unwrap_or("(unsigned)"))
        ));
    }
    if let Some(t) = &v.transparency {
        let c = &t.checkpoint;
        let witnesses: Vec<&str> = c.cosigners.iter().map(|(n, _)| n.as_str()).collect();
        line(format!(
            "transparency: every entry and the image are in log {} at size {}, witnessed by {}, none revoked ({} revocations in the log)",
            Excerpt(&c.checkpoint.origin),
            c.checkpoint.size,
            witnesses.join(", "),
            t.revoked_count
        ));
    }
    if file.allow_any_plugin {
        line("WARNING:      the policy allows ANY plugin".into());
    }
    if file.allow_any_model {
        line("WARNING:      the policy allows ANY model".into());
    }
    out
}
