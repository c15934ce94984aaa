//! What a verifier accepts beyond "genuine AMD hardware signed this".

use cloister_measurement::EntryKind;

use crate::chain::TrustedRoots;
use crate::report::{Product, Tcb};

/// A set of allowed values, or explicitly any value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed<T> {
    /// Any value is accepted.
    Any,
    /// Only these values are accepted (an empty list accepts nothing).
    OneOf(Vec<T>),
}

impl<T: PartialEq> Allowed<T> {
    /// Whether `value` is accepted.
    pub fn allows(&self, value: &T) -> bool {
        match self {
            Allowed::Any => true,
            Allowed::OneOf(list) => list.contains(value),
        }
    }
}

/// What REPORT_DATA must contain.
///
/// The two binding variants recompute REPORT_DATA with [`crate::binding`] (see there, and
/// `docs/attestation.md`, for the exact bytes) and compare it with the report's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportDataExpectation {
    /// Not checked here (the caller checks [`VerifiedReport::report_data`](crate::VerifiedReport)).
    Any,
    /// Must equal these 64 bytes exactly.
    Exact([u8; 64]),
    /// Must be the cert-mode binding ([`report_data_cert_mode`](crate::binding::report_data_cert_mode))
    /// of the TLS key and the measurement log.
    CertBinding {
        /// SHA-256 of the TLS certificate's DER SubjectPublicKeyInfo.
        spki_sha256: [u8; 32],
        /// The measurement-log digest the verifier recomputed from the log it received.
        log_digest: [u8; 32],
    },
    /// Must be the session-mode binding
    /// ([`report_data_session_mode`](crate::binding::report_data_session_mode)) of this TLS
    /// session's exporter value and the measurement log.
    SessionBinding {
        /// The TLS exporter value of the verifier's own session
        /// ([`EXPORTER_LABEL`](crate::binding::EXPORTER_LABEL), empty context, 32 bytes).
        exporter: [u8; crate::binding::EXPORTER_LEN],
        /// The measurement-log digest the verifier recomputed from the log it received.
        log_digest: [u8; 32],
    },
    /// Must be the tunnel-mode binding
    /// ([`report_data_tunnel_mode`](crate::binding::report_data_tunnel_mode)) of the
    /// client-chosen session id, the session certificate's key and the measurement log.
    TunnelBinding {
        /// The session id the verifier chose.
        session_id: [u8; 32],
        /// SHA-256 of the session certificate's DER SubjectPublicKeyInfo.
        spki_sha256: [u8; 32],
        /// The measurement-log digest the verifier recomputed from the log it received.
        log_digest: [u8; 32],
    },
}

impl ReportDataExpectation {
    /// The 64 bytes REPORT_DATA must equal and the mode that produced them, or `None` for
    /// [`ReportDataExpectation::Any`].
    pub fn expected(&self) -> Option<([u8; 64], crate::binding::BindingMode)> {
        use crate::binding::{
            report_data_cert_mode, report_data_session_mode, report_data_tunnel_mode, BindingMode,
        };
        match self {
            ReportDataExpectation::Any => None,
            ReportDataExpectation::Exact(v) => Some((*v, BindingMode::Exact)),
            ReportDataExpectation::CertBinding {
                spki_sha256,
                log_digest,
            } => Some((
                report_data_cert_mode(spki_sha256, log_digest),
                BindingMode::Cert,
            )),
            ReportDataExpectation::SessionBinding {
                exporter,
                log_digest,
            } => Some((
                report_data_session_mode(exporter, log_digest),
                BindingMode::Session,
            )),
            ReportDataExpectation::TunnelBinding {
                session_id,
                spki_sha256,
                log_digest,
            } => Some((
                report_data_tunnel_mode(session_id, spki_sha256, log_digest),
                BindingMode::Tunnel,
            )),
        }
    }
}

/// A minimum TCB for one product (the layout and numbering differ per product).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinimumTcb {
    /// The product this minimum applies to.
    pub product: Product,
    /// Each component must be at least this; `fmc` is only compared when both sides have it.
    pub tcb: Tcb,
}

/// A product (and optionally a stepping) the policy requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedProduct {
    /// The product.
    pub product: Product,
    /// The stepping encoded in the VCEK productName ("Milan-B0" -> 0), if required.
    pub stepping: Option<u8>,
}

/// The verifier's acceptance policy.
///
/// [`Policy::default`] is strict about the guest configuration (no debug, no migration
/// agent, VMPL 0 only, VCEK or VLEK from AMD's roots) but accepts **any** measurement and any
/// REPORT_DATA: a relying party must set [`Policy::allowed_measurements`] and
/// [`Policy::report_data`] for its own use. Its [`Policy::artifacts`] allowlist is empty, so
/// [`verify_bundle`](crate::verify_bundle) accepts no plugin or model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// The roots the chain must end in. Default: AMD's ARKs only.
    pub trusted_roots: TrustedRoots,
    /// Accept POLICY.DEBUG (default false).
    pub allow_debug: bool,
    /// Accept POLICY.MIGRATE_MA (default false).
    pub allow_migration_agent: bool,
    /// Accept PLATFORM_INFO.SMT_EN (default true).
    pub allow_smt: bool,
    /// Require POLICY.SINGLE_SOCKET (default false).
    pub require_single_socket: bool,
    /// Accept reports signed by a VLEK (default true).
    pub allow_vlek: bool,
    /// Allowed VMPLs (default: only 0).
    pub allowed_vmpls: Allowed<u32>,
    /// Allowed launch measurements (default: any).
    pub allowed_measurements: Allowed<[u8; 48]>,
    /// Minimum TCB per product, checked against REPORTED_TCB, COMMITTED_TCB, CURRENT_TCB
    /// and LAUNCH_TCB (default: none). LAUNCH_TCB is the TCB the guest was launched on: a
    /// guest launched on old, vulnerable firmware keeps what it was exposed to then, even
    /// after the firmware was updated, so it must meet the minimum as well.
    pub minimum_tcb: Vec<MinimumTcb>,
    /// Minimum GUEST_SVN (default 0).
    pub minimum_guest_svn: u32,
    /// Required product and stepping (default: none).
    pub expected_product: Option<ExpectedProduct>,
    /// What REPORT_DATA must be (default: not checked).
    pub report_data: ReportDataExpectation,
    /// The plugins and models the measurement log may contain (default: none). Only
    /// [`verify_bundle`](crate::verify_bundle) checks it, when it replays the measurement
    /// log; [`verify`](crate::verify) has no log and ignores it.
    pub artifacts: ArtifactAllowlist,
    /// Require the host to prove, with transparency-log proofs, that every measured artifact
    /// and its launch measurement are published, witnessed and not revoked
    /// ([`TransparencyRequirement`]). With it, the artifact allowlist is optional: an empty
    /// allowlist (no entries, no `allow_any_*`) is not applied.
    pub transparency: Option<TransparencyRequirement>,
}

/// What a verifier requires of a host's transparency-log proofs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyRequirement {
    /// The logs and witnesses trusted, and the cosignature quorum (C2SP tlog-policy).
    pub tlog: cloister_tlog::Policy,
    /// Cosignatures older than this do not count toward the quorum (`None`: any age).
    pub max_age_secs: Option<u64>,
    /// The revocation list of the log's newest checkpoint, as the verifier read it from the
    /// log itself (`None`: not read): what it revokes is refused even when the host's own
    /// proofs are older.
    pub newest: Option<cloister_transparency::NewestRevocations>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            trusted_roots: TrustedRoots::amd(),
            allow_debug: false,
            allow_migration_agent: false,
            allow_smt: true,
            require_single_socket: false,
            allow_vlek: true,
            allowed_vmpls: Allowed::OneOf(vec![0]),
            allowed_measurements: Allowed::Any,
            minimum_tcb: Vec::new(),
            minimum_guest_svn: 0,
            expected_product: None,
            report_data: ReportDataExpectation::Any,
            artifacts: ArtifactAllowlist::default(),
            transparency: None,
        }
    }
}

impl Policy {
    /// The default policy, accepting only these launch measurements.
    pub fn for_measurements(measurements: Vec<[u8; 48]>) -> Self {
        Policy {
            allowed_measurements: Allowed::OneOf(measurements),
            ..Policy::default()
        }
    }
}

/// One plugin or model release a policy allows in the measurement log.
///
/// A log entry is allowed by this entry when kind, name, version and sha256 are all equal,
/// and, if [`AllowedArtifact::signer_key_id`] is set, the log entry names exactly that
/// signer (an entry whose signature was not checked, `signer_key_id: null`, then fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedArtifact {
    /// Plugin or model.
    pub kind: EntryKind,
    /// The release name, as in the measurement log.
    pub name: String,
    /// The release version, as in the measurement log.
    pub version: String,
    /// SHA-256 of the artifact's bytes, 64 lowercase hex characters.
    pub sha256: String,
    /// The key id (64 lowercase hex characters) of the release signer the host must have
    /// verified; `None` does not require a signature (the sha256 still pins the bytes).
    pub signer_key_id: Option<String>,
}

impl ArtifactAllowlist {
    /// Whether the allowlist says nothing (no entries, no `allow_any_*`).
    pub fn is_empty(&self) -> bool {
        !self.allow_any_plugin && !self.allow_any_model && self.entries.is_empty()
    }
}

/// Which measurement-log entries a policy accepts.
///
/// The default allows **nothing**: a log with any plugin or model entry is rejected. An
/// empty list of entries means "no plugins and no models", unless
/// [`ArtifactAllowlist::allow_any_plugin`] (or `allow_any_model`) is set. A transparency log
/// of published releases will replace this list later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactAllowlist {
    /// Accept every plugin entry without looking it up (development only).
    pub allow_any_plugin: bool,
    /// Accept every model entry without looking it up (development only).
    pub allow_any_model: bool,
    /// The allowed releases.
    pub entries: Vec<AllowedArtifact>,
}
