//! Verification of an evidence bundle (`cloister-evidence/v1`, defined in
//! [`cloister_protocol::bundle`]): [`verify_bundle`] checks it end to end.

use std::time::SystemTime;

use cloister_display::{excerpt, Excerpt, Quoted};
use cloister_measurement::{EntryKind, LogError, MeasurementLog};
pub use cloister_protocol::bundle::{BundleBinding, BundleError, EvidenceBundle, BUNDLE_FORMAT};

use crate::binding::EXPORTER_LEN;
use crate::chain::TrustedRoots;
use crate::error::VerifyError;
use crate::policy::{ArtifactAllowlist, Policy, ReportDataExpectation};
use crate::VerifiedReport;

/// Evidence whose report, chain, policy, REPORT_DATA binding and measurement log all
/// verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvidence {
    /// The verified report.
    pub report: VerifiedReport,
    /// The measurement log (its digest is bound into REPORT_DATA, and every entry is allowed
    /// by the policy).
    pub log: MeasurementLog,
    /// The measurement log's digest.
    pub log_digest: [u8; 32],
    /// How REPORT_DATA was bound.
    pub binding: BundleBinding,
    /// What the transparency-log proofs proved, when the policy required them.
    pub transparency: Option<cloister_transparency::TransparencyVerdict>,
}

/// Why an evidence bundle was rejected. Every failure is its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleVerifyError {
    /// The measurement log is not the canonical encoding of a valid log.
    #[error("evidence bundle member `measurement_log` is not a valid measurement log")]
    MeasurementLog(#[from] LogError),
    /// The bundle is session-bound but the caller has no TLS session exporter value.
    #[error("the evidence is session-bound; verifying it needs the TLS exporter value of the session it was received over")]
    SessionExporterRequired,
    /// The caller has a TLS session (it passed an exporter value) but the bundle is
    /// cert-bound: it would not prove that this session is not relayed.
    #[error(
        "the evidence is cert-bound, but session-bound evidence is required for a TLS session"
    )]
    SessionBindingRequired,
    /// The bundle is tunnel-bound, but the caller did not say which tunneled session it
    /// expects: tunnel-bound evidence is only valid for the client that chose the session.
    #[error("the evidence is bound to a tunneled session; it is only accepted by the client that chose that session id")]
    TunnelSessionRequired,
    /// The caller expects tunnel-bound evidence for its session, and the bundle is bound
    /// otherwise.
    #[error("evidence bound to this tunneled session is required, and the evidence is {found}")]
    TunnelBindingRequired {
        /// The bundle's binding mode.
        found: cloister_protocol::binding::BindingMode,
    },
    /// The bundle is bound to another tunneled session than the caller's.
    #[error("the evidence is bound to another tunneled session than the one this client chose (replayed evidence)")]
    TunnelSessionMismatch,
    /// The tunnel-bound bundle names another key than the certificate that carries it.
    #[error("the tunnel-bound evidence names key sha256:{bound}, but the certificate's key is sha256:{actual}")]
    TunnelKeyMismatch {
        /// SHA-256 of the SPKI named by the bundle.
        bound: String,
        /// SHA-256 of the certificate's SPKI.
        actual: String,
    },
    /// The SNP evidence failed verification.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The policy requires transparency-log proofs and the bundle carries none.
    #[error("the policy requires transparency-log proofs and the evidence carries none")]
    TransparencyMissing,
    /// The transparency-log proofs do not parse.
    #[error("evidence bundle member `transparency`: {0}")]
    TransparencyFormat(cloister_tlog::TlogError),
    /// The transparency-log proofs do not prove what the host attests.
    #[error(transparent)]
    Transparency(#[from] cloister_transparency::TransparencyError),
    /// A log entry's kind and name are not in the allowlist.
    #[error("measurement log entry #{index}: {kind} {} is not allowed by the policy", Quoted(.name))]
    ArtifactNotAllowed {
        /// Position in the log (0-based).
        index: usize,
        /// "plugin" or "model".
        kind: &'static str,
        /// The entry's name.
        name: String,
    },
    /// The name is allowed, but not this version.
    #[error("measurement log entry #{index}: {kind} {} version {} is not allowed by the policy", Quoted(.name), Quoted(.version))]
    ArtifactVersionNotAllowed {
        /// Position in the log (0-based).
        index: usize,
        /// "plugin" or "model".
        kind: &'static str,
        /// The entry's name.
        name: String,
        /// The entry's version.
        version: String,
    },
    /// Name and version are allowed, but not with this sha256.
    #[error("measurement log entry #{index}: {kind} {} version {} has sha256 {}, which the policy does not allow", Quoted(.name), Quoted(.version), Excerpt(.sha256))]
    ArtifactDigestNotAllowed {
        /// Position in the log (0-based).
        index: usize,
        /// "plugin" or "model".
        kind: &'static str,
        /// The entry's name.
        name: String,
        /// The entry's version.
        version: String,
        /// The entry's sha256.
        sha256: String,
    },
    /// The release is allowed, but the policy requires another signer (or a signature the
    /// host did not check).
    #[error("measurement log entry #{index}: {kind} {} version {} was signed by {}, not by a signer the policy allows", Quoted(.name), Quoted(.version), signer_text(signer.as_deref()))]
    ArtifactSignerNotAllowed {
        /// Position in the log (0-based).
        index: usize,
        /// "plugin" or "model".
        kind: &'static str,
        /// The entry's name.
        name: String,
        /// The entry's version.
        version: String,
        /// The entry's signer key id, if any.
        signer: Option<String>,
    },
}

/// A log entry's signer key id as shown in errors (escaped and truncated), or "nobody".
fn signer_text(signer: Option<&str>) -> String {
    signer.map_or_else(|| "nobody (signature not checked)".to_owned(), excerpt)
}

/// Replay a measurement log against an allowlist: every entry must be allowed.
pub fn check_measurement_log(
    log: &MeasurementLog,
    allowlist: &ArtifactAllowlist,
) -> Result<(), BundleVerifyError> {
    for (index, entry) in log.entries().iter().enumerate() {
        let any = match entry.kind {
            EntryKind::Plugin => allowlist.allow_any_plugin,
            EntryKind::Model => allowlist.allow_any_model,
        };
        if any {
            continue;
        }
        let kind = entry.kind.as_str();
        let named: Vec<_> = allowlist
            .entries
            .iter()
            .filter(|a| a.kind == entry.kind && a.name == entry.name)
            .collect();
        if named.is_empty() {
            return Err(BundleVerifyError::ArtifactNotAllowed {
                index,
                kind,
                name: entry.name.clone(),
            });
        }
        let versioned: Vec<_> = named
            .into_iter()
            .filter(|a| a.version == entry.version)
            .collect();
        if versioned.is_empty() {
            return Err(BundleVerifyError::ArtifactVersionNotAllowed {
                index,
                kind,
                name: entry.name.clone(),
                version: entry.version.clone(),
            });
        }
        let pinned: Vec<_> = versioned
            .into_iter()
            .filter(|a| a.sha256 == entry.sha256)
            .collect();
        if pinned.is_empty() {
            return Err(BundleVerifyError::ArtifactDigestNotAllowed {
                index,
                kind,
                name: entry.name.clone(),
                version: entry.version.clone(),
                sha256: entry.sha256.clone(),
            });
        }
        let signed = pinned.iter().any(|a| match &a.signer_key_id {
            None => true,
            Some(required) => entry.signer_key_id.as_deref() == Some(required.as_str()),
        });
        if !signed {
            return Err(BundleVerifyError::ArtifactSignerNotAllowed {
                index,
                kind,
                name: entry.name.clone(),
                version: entry.version.clone(),
                signer: entry.signer_key_id.clone(),
            });
        }
    }
    Ok(())
}

/// Verify an evidence bundle at time `now`.
///
/// 1. Parse the measurement log ([`MeasurementLog::from_canonical_bytes`]: only its exact
///    canonical encoding is accepted) and compute its digest.
/// 2. Set [`Policy::report_data`] from the binding: cert mode with the bundle's SPKI hash
///    (a caller holding the TLS certificate must itself check that the hash is its key's);
///    session mode with `session_exporter`, which is then required. A caller that passes
///    an exporter requires session mode: a cert-bound bundle is then rejected.
/// 3. [`verify`] the SNP evidence against `policy`, with `roots` as the trusted roots (they
///    replace [`Policy::trusted_roots`]).
/// 4. Replay the log against [`Policy::artifacts`] ([`check_measurement_log`]).
pub fn verify_bundle(
    bundle: &EvidenceBundle,
    policy: &Policy,
    roots: &TrustedRoots,
    now: SystemTime,
    session_exporter: Option<[u8; EXPORTER_LEN]>,
) -> Result<VerifiedEvidence, BundleVerifyError> {
    verify_bundle_with_cache(bundle, policy, roots, now, session_exporter, None)
}

/// [`verify_bundle`], with the certificate chain's verification looked up in and recorded
/// into `cache` (see [`crate::ChainCache`]).
pub fn verify_bundle_with_cache(
    bundle: &EvidenceBundle,
    policy: &Policy,
    roots: &TrustedRoots,
    now: SystemTime,
    session_exporter: Option<[u8; EXPORTER_LEN]>,
    cache: Option<&mut crate::ChainCache>,
) -> Result<VerifiedEvidence, BundleVerifyError> {
    let log = MeasurementLog::from_canonical_bytes(&bundle.measurement_log)?;
    let log_digest = log.digest();
    let report_data = match (bundle.binding, session_exporter) {
        (BundleBinding::Tunnel { .. }, _) => return Err(BundleVerifyError::TunnelSessionRequired),
        (BundleBinding::Cert { spki_sha256 }, None) => ReportDataExpectation::CertBinding {
            spki_sha256,
            log_digest,
        },
        (BundleBinding::Cert { .. }, Some(_)) => {
            return Err(BundleVerifyError::SessionBindingRequired)
        }
        (BundleBinding::Session, Some(exporter)) => ReportDataExpectation::SessionBinding {
            exporter,
            log_digest,
        },
        (BundleBinding::Session, None) => return Err(BundleVerifyError::SessionExporterRequired),
    };
    verify_bundle_expecting(
        bundle,
        log,
        log_digest,
        report_data,
        policy,
        roots,
        now,
        cache,
    )
}

/// Verify tunnel-bound evidence at time `now` for the tunneled session `session_id` the
/// caller chose, carried by a certificate whose SubjectPublicKeyInfo hashes to
/// `cert_spki_sha256` (see [`crate::binding::report_data_tunnel_mode`]).
///
/// The bundle must be tunnel-bound, to this session id and to this key; everything else is
/// checked as by [`verify_bundle`].
pub fn verify_tunnel_bundle_with_cache(
    bundle: &EvidenceBundle,
    policy: &Policy,
    roots: &TrustedRoots,
    now: SystemTime,
    session_id: &[u8; 32],
    cert_spki_sha256: &[u8; 32],
    cache: Option<&mut crate::ChainCache>,
) -> Result<VerifiedEvidence, BundleVerifyError> {
    let (spki_sha256, bound_session) = match bundle.binding {
        BundleBinding::Tunnel {
            spki_sha256,
            session_id,
        } => (spki_sha256, session_id),
        other => {
            return Err(BundleVerifyError::TunnelBindingRequired {
                found: other.mode(),
            })
        }
    };
    if &bound_session != session_id {
        return Err(BundleVerifyError::TunnelSessionMismatch);
    }
    if &spki_sha256 != cert_spki_sha256 {
        return Err(BundleVerifyError::TunnelKeyMismatch {
            bound: hex::encode(spki_sha256),
            actual: hex::encode(cert_spki_sha256),
        });
    }
    let log = MeasurementLog::from_canonical_bytes(&bundle.measurement_log)?;
    let log_digest = log.digest();
    let report_data = ReportDataExpectation::TunnelBinding {
        session_id: *session_id,
        spki_sha256,
        log_digest,
    };
    verify_bundle_expecting(
        bundle,
        log,
        log_digest,
        report_data,
        policy,
        roots,
        now,
        cache,
    )
}

#[allow(clippy::too_many_arguments)]
fn verify_bundle_expecting(
    bundle: &EvidenceBundle,
    log: MeasurementLog,
    log_digest: [u8; 32],
    report_data: ReportDataExpectation,
    policy: &Policy,
    roots: &TrustedRoots,
    now: SystemTime,
    cache: Option<&mut crate::ChainCache>,
) -> Result<VerifiedEvidence, BundleVerifyError> {
    let mut policy = policy.clone();
    policy.trusted_roots = roots.clone();
    policy.report_data = report_data;
    let report = crate::verify_with_cache(&bundle.evidence(), &policy, now, cache)?;
    let transparency = match &policy.transparency {
        None => None,
        Some(req) => Some(check_transparency(
            bundle,
            req,
            &log,
            report.measurement(),
            now,
        )?),
    };
    if transparency.is_none() || !policy.artifacts.is_empty() {
        check_measurement_log(&log, &policy.artifacts)?;
    }
    Ok(VerifiedEvidence {
        report,
        log,
        log_digest,
        binding: bundle.binding,
        transparency,
    })
}

/// Parses the bundle's proofs and checks them under `req` (see
/// [`cloister_transparency::verify_transparency`]).
fn check_transparency(
    bundle: &EvidenceBundle,
    req: &crate::policy::TransparencyRequirement,
    log: &MeasurementLog,
    launch_measurement: &[u8; 48],
    now: SystemTime,
) -> Result<cloister_transparency::TransparencyVerdict, BundleVerifyError> {
    use cloister_tlog::TlogProof;
    let t = bundle
        .transparency
        .as_ref()
        .ok_or(BundleVerifyError::TransparencyMissing)?;
    if t.entries.len() > cloister_transparency::evidence::MAX_PROOFS {
        return Err(BundleVerifyError::TransparencyFormat(
            cloister_tlog::TlogError::ProofFormat(format!(
                "{} proofs is too many",
                t.entries.len()
            )),
        ));
    }
    let parse = |text: &str| {
        TlogProof::parse(text.as_bytes()).map_err(BundleVerifyError::TransparencyFormat)
    };
    let evidence = cloister_transparency::TransparencyEvidence {
        revocations: parse(&t.revocations)?,
        entries: t
            .entries
            .iter()
            .map(|e| parse(e))
            .collect::<Result<_, _>>()?,
    };
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(cloister_transparency::verify_transparency(
        &evidence,
        log.entries(),
        launch_measurement,
        &req.tlog,
        cloister_tlog::Freshness {
            now: now_secs,
            max_age_secs: req.max_age_secs,
        },
        req.newest.as_ref(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::AllowedArtifact;
    use cloister_measurement::Entry;

    fn sample() -> EvidenceBundle {
        EvidenceBundle {
            report: vec![1, 2, 3],
            vek_der: vec![4, 5],
            ask_der: None,
            ark_der: Some(vec![6]),
            measurement_log: MeasurementLog::new().canonical_bytes(),
            binding: BundleBinding::Cert {
                spki_sha256: [0xAB; 32],
            },
            transparency: None,
        }
    }

    #[test]
    fn binding_and_log_are_checked_before_the_report() {
        let roots = TrustedRoots::empty();
        let policy = Policy::default();
        let now = SystemTime::UNIX_EPOCH;
        let mut b = sample();
        assert_eq!(
            verify_bundle(&b, &policy, &roots, now, Some([0; 32])),
            Err(BundleVerifyError::SessionBindingRequired)
        );
        b.binding = BundleBinding::Session;
        assert_eq!(
            verify_bundle(&b, &policy, &roots, now, None),
            Err(BundleVerifyError::SessionExporterRequired)
        );
        // With an exporter, it reaches the report (3 bytes).
        assert!(matches!(
            verify_bundle(&b, &policy, &roots, now, Some([0; 32])),
            Err(BundleVerifyError::Verify(VerifyError::ReportLength { .. }))
        ));
        b.measurement_log.insert(0, b' ');
        assert!(matches!(
            verify_bundle(&b, &policy, &roots, now, Some([0; 32])),
            Err(BundleVerifyError::MeasurementLog(
                LogError::Malformed { .. }
            )) | Err(BundleVerifyError::MeasurementLog(
                LogError::NotCanonical { .. }
            ))
        ));
    }

    fn entry(kind: EntryKind, name: &str, version: &str, sha: char, signer: Option<char>) -> Entry {
        Entry {
            kind,
            name: name.into(),
            version: version.into(),
            sha256: sha.to_string().repeat(64),
            signer_key_id: signer.map(|c| c.to_string().repeat(64)),
        }
    }

    fn allowed(e: &Entry) -> AllowedArtifact {
        AllowedArtifact {
            kind: e.kind,
            name: e.name.clone(),
            version: e.version.clone(),
            sha256: e.sha256.clone(),
            signer_key_id: e.signer_key_id.clone(),
        }
    }

    fn replay(entries: &[Entry], list: &ArtifactAllowlist) -> Result<(), BundleVerifyError> {
        let mut log = MeasurementLog::new();
        for e in entries {
            log.push(e.clone())?;
        }
        check_measurement_log(&log, list)
    }

    #[test]
    fn allowlist_replay() {
        let plugin = entry(EntryKind::Plugin, "summarize", "1.2.0", 'b', Some('c'));
        let model = entry(EntryKind::Model, "llama", "1", 'a', None);
        let none = ArtifactAllowlist::default();
        assert_eq!(replay(&[], &none), Ok(()));
        assert!(matches!(
            replay(&[model.clone(), plugin.clone()], &none),
            Err(BundleVerifyError::ArtifactNotAllowed {
                index: 0,
                kind: "model",
                ..
            })
        ));
        let list = ArtifactAllowlist {
            entries: vec![allowed(&plugin), allowed(&model)],
            ..ArtifactAllowlist::default()
        };
        assert_eq!(replay(&[model.clone(), plugin.clone()], &list), Ok(()));

        // A model of the plugin's name is not the plugin.
        let as_model = Entry {
            kind: EntryKind::Model,
            ..plugin.clone()
        };
        assert!(matches!(
            replay(&[as_model], &list),
            Err(BundleVerifyError::ArtifactNotAllowed { kind: "model", .. })
        ));
        let v2 = entry(EntryKind::Plugin, "summarize", "2.0.0", 'b', Some('c'));
        assert!(matches!(
            replay(&[v2], &list),
            Err(BundleVerifyError::ArtifactVersionNotAllowed { index: 0, .. })
        ));
        let other_bytes = entry(EntryKind::Plugin, "summarize", "1.2.0", 'd', Some('c'));
        assert!(matches!(
            replay(&[model.clone(), other_bytes], &list),
            Err(BundleVerifyError::ArtifactDigestNotAllowed { index: 1, .. })
        ));
        let other_signer = entry(EntryKind::Plugin, "summarize", "1.2.0", 'b', Some('e'));
        assert!(matches!(
            replay(&[other_signer], &list),
            Err(BundleVerifyError::ArtifactSignerNotAllowed { .. })
        ));
        let unsigned = entry(EntryKind::Plugin, "summarize", "1.2.0", 'b', None);
        assert!(matches!(
            replay(&[unsigned], &list),
            Err(BundleVerifyError::ArtifactSignerNotAllowed { signer: None, .. })
        ));
        // The model entry requires no signer: any (or none) is accepted.
        let signed_model = entry(EntryKind::Model, "llama", "1", 'a', Some('f'));
        assert_eq!(replay(&[signed_model], &list), Ok(()));

        let any_plugin = ArtifactAllowlist {
            allow_any_plugin: true,
            ..ArtifactAllowlist::default()
        };
        assert_eq!(replay(std::slice::from_ref(&plugin), &any_plugin), Ok(()));
        assert!(matches!(
            replay(&[plugin, model], &any_plugin),
            Err(BundleVerifyError::ArtifactNotAllowed {
                index: 1,
                kind: "model",
                ..
            })
        ));
    }
}
