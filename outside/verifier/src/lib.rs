//! Pure verification of AMD SEV-SNP attestation evidence.
//!
//! This crate runs outside the confidential VM (clients, the CLI, auditors) and is never
//! linked into the host: the formats both sides share (evidence, bundle, REPORT_DATA binding,
//! certificate extension) are in `cloister-protocol`, re-exported here. It does no I/O:
//! bytes go in, a verdict comes out, and the current time is a parameter. It never panics
//! on input and every failed check is its own [`VerifyError`] variant.
//!
//! # What [`verify`] checks, in order
//!
//! 1. **Parse** the report ([`AttestationReport::parse`]): exactly 1184 bytes, VERSION 2, 3,
//!    4 or 5, and the structure the ABI spec fixes: every reserved byte range and reserved
//!    bit (KEY_INFO 31:5, POLICY 63:26, PLATFORM_INFO 63:8) zero, POLICY bit 17 one, CPUID
//!    zero in v2, the mitigation vectors zero before v5, CHIP_ID zero when
//!    KEY_INFO.MASK_CHIP_KEY is set, and the bytes after the signature's R and S (which no
//!    signature covers) zero.
//! 2. **Signing key**: KEY_INFO.SIGNING_KEY must be 0 (VCEK) or 1 (VLEK); a VLEK must be
//!    allowed by the policy.
//! 3. **Product** (Milan, Genoa, Turin): from CPUID_FAM_ID/CPUID_MOD_ID (v3+) and from the
//!    VCEK/VLEK certificate (productName, else issuer name); when both are present they must
//!    agree. v2 reports carry no CPUID, so the certificate decides (it is then authenticated
//!    by the chain to that product's root).
//! 4. **Certificate chain** ([`verify_chain`]): ARK -> ASK -> VCEK, or ARK -> ASVK -> VLEK.
//!    The ARK must be one of [`Policy::trusted_roots`] for the product (by default AMD's
//!    built-in roots; a simulator root is only trusted if the caller adds it with
//!    [`TrustedRoot::new_ecdsa_p384`]). Each link is checked for issuer/subject names, the
//!    root's [`LinkAlgorithm`] (RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48 for AMD; ECDSA
//!    P-384/SHA-384 for a simulator root) and its signature; every certificate must be valid at `now`; the intermediate and the
//!    endorsement key must carry the expected common names; the endorsement key must be a
//!    P-384 key with AMD's SPL extensions.
//! 5. **Report signature** ([`verify_report_signature`]): SIGNATURE_ALGO = 1 and ECDSA P-384
//!    over SHA-384 of the report bytes `0..0x2A0` exactly as received, R and S little-endian
//!    with their padding above 384 bits zero. High-S signatures are accepted (AMD's firmware
//!    produces them). Then the reserved bytes of the four TCB_VERSION fields for the
//!    product's layout ([`check_tcb_reserved`]).
//! 6. **Binding report <-> key** ([`check_report_matches_vek`]): REPORTED_TCB, decoded for the
//!    product (Turin has an FMC field and another byte order), equals the certificate's SPL
//!    extensions; for a VCEK with an unmasked chip id, CHIP_ID equals hwID (the first 8 bytes
//!    on Turin, the rest zero).
//! 7. **Policy** ([`check_policy`]): debug, migration agent, SMT, single socket, VMPL,
//!    product/stepping, minimum TCB (reported, committed, current and launch), GUEST_SVN, launch
//!    measurement, REPORT_DATA (an exact value, or the cert-mode or session-mode binding of
//!    [`binding`], which ties the report to a TLS key or session and to the measurement log).
//!
//! # Evidence bundles and policy files
//!
//! [`EvidenceBundle`] (module [`bundle`]) is the JSON document `cloister-evidence/v1` that
//! carries a report, its certificates, the measurement log and the binding mode;
//! [`verify_bundle`] recomputes the log digest, checks the REPORT_DATA binding with
//! [`verify`], and replays the log against the policy's allowlist
//! ([`Policy::artifacts`]). [`PolicyFile`] (module [`policy_file`]) is the TOML form of a
//! [`Policy`] and its trusted roots. Both formats are described in `docs/attestation.md`.
//!
//! The result, [`VerifiedReport`], carries the parsed report with its TCBs decoded and the
//! endorsement key's details (its identity: [`VerifiedReport::endorsement_key`]), so callers can make further checks (such as the REPORT_DATA
//! binding to a TLS session) on authenticated data.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use cloister_protocol::binding;
pub mod bundle;
mod cache;
mod chain;
mod error;
mod policy;
pub mod policy_file;
pub mod ratls;
mod report;

use std::time::SystemTime;

pub use binding::BindingMode;
pub use bundle::{
    check_measurement_log, verify_bundle, verify_bundle_with_cache,
    verify_tunnel_bundle_with_cache, BundleBinding, BundleError, BundleVerifyError, EvidenceBundle,
    VerifiedEvidence, BUNDLE_FORMAT,
};
pub use cache::ChainCache;
pub use chain::{
    certificates_from_pem, product_from_ark, product_from_vek, verify_chain, LinkAlgorithm,
    TrustedRoot, TrustedRoots, VekExtensions, VerifiedVek,
};
pub use error::{RootFailure, VerifyError};
pub use policy::{
    Allowed, AllowedArtifact, ArtifactAllowlist, ExpectedProduct, MinimumTcb, Policy,
    ReportDataExpectation, TransparencyRequirement,
};
pub use policy_file::{PolicyFile, PolicyFileError, TransparencyTable};
pub use ratls::{verify_certificate, CertificateEvidence, RaTlsError};
pub use report::{
    AttestationReport, Cpuid, EndorsementKind, FirmwareVersion, GuestPolicy, KeyInfo, PlatformInfo,
    Product, RawTcb, Tcb, REPORT_SIZE, SIGNED_LEN,
};

pub use cloister_protocol::Evidence;

/// A report whose signature, chain, TCB binding and policy all verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReport {
    /// The report.
    pub report: AttestationReport,
    /// The product its key chains to.
    pub product: Product,
    /// The endorsement key that signed it.
    pub vek: VerifiedVek,
    /// CURRENT_TCB, decoded.
    pub current_tcb: Tcb,
    /// REPORTED_TCB, decoded (equal to the key's certified TCB).
    pub reported_tcb: Tcb,
    /// COMMITTED_TCB, decoded.
    pub committed_tcb: Tcb,
    /// LAUNCH_TCB, decoded.
    pub launch_tcb: Tcb,
}

impl VerifiedReport {
    /// MEASUREMENT (the launch digest).
    pub fn measurement(&self) -> &[u8; 48] {
        &self.report.measurement
    }
    /// REPORT_DATA.
    pub fn report_data(&self) -> &[u8; 64] {
        &self.report.report_data
    }
    /// CHIP_ID.
    pub fn chip_id(&self) -> &[u8; 64] {
        &self.report.chip_id
    }
    /// Which key signed the report.
    pub fn signer(&self) -> EndorsementKind {
        self.vek.kind
    }
    /// The identity of the endorsement key (VCEK or VLEK) that signed the report: its EC
    /// P-384 public key, SEC1 encoded. Unlike CHIP_ID, which is zero when the chip key is
    /// masked and in every VLEK-signed report, this always tells two chips (or two VLEKs)
    /// apart; compare it to decide whether two reports come from the same machine.
    pub fn endorsement_key(&self) -> &[u8] {
        &self.vek.public_key_sec1
    }
    /// SHA-256 of [`VerifiedReport::endorsement_key`]: a short, printable form of the same
    /// identity.
    pub fn endorsement_key_id(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(&self.vek.public_key_sec1).into()
    }
}

/// Check the reserved bytes of the four TCB_VERSION fields for `product`'s layout
/// (Milan/Genoa bytes 2..=5, Turin bytes 4..=6 must be zero).
pub fn check_tcb_reserved(report: &AttestationReport, product: Product) -> Result<(), VerifyError> {
    for (tcb, raw) in [
        ("current", report.current_tcb),
        ("reported", report.reported_tcb),
        ("committed", report.committed_tcb),
        ("launch", report.launch_tcb),
    ] {
        if let Some(byte) = raw.first_nonzero_reserved(product) {
            return Err(VerifyError::TcbReservedNotZero { tcb, product, byte });
        }
    }
    Ok(())
}

/// Determine the product of a report from its CPUID (v3+) and its VCEK/VLEK certificate.
pub fn determine_product(
    report: &AttestationReport,
    vek_der: &[u8],
) -> Result<Product, VerifyError> {
    let from_cert = product_from_vek(vek_der);
    match (report.cpuid, report.product_from_cpuid(), from_cert) {
        (_, Some(r), Some(c)) if r != c => Err(VerifyError::ProductMismatch {
            report: r,
            certificate: c,
        }),
        (_, Some(r), _) => Ok(r),
        (Some(c), None, _) => Err(VerifyError::UnknownProduct(format!(
            "CPUID family {:#x} model {:#x}",
            c.family, c.model
        ))),
        (None, None, Some(c)) => Ok(c),
        (None, None, None) => Err(VerifyError::UnknownProduct(
            "v2 report and no product in the certificate".into(),
        )),
    }
}

/// Verify the report's ECDSA P-384 signature with the endorsement key (SEC1 public key).
pub fn verify_report_signature(
    report: &AttestationReport,
    vek_public_key_sec1: &[u8],
) -> Result<(), VerifyError> {
    if report.signature_algo != 1 {
        return Err(VerifyError::UnsupportedSignatureAlgorithm(
            report.signature_algo,
        ));
    }
    let scalar = |le: &[u8; 72]| -> Result<[u8; 48], VerifyError> {
        if le[48..].iter().any(|&b| b != 0) {
            return Err(VerifyError::ReportSignatureMalformed(
                "R or S has non-zero bytes above 384 bits",
            ));
        }
        let mut be = [0u8; 48];
        for (dst, src) in be.iter_mut().zip(le[..48].iter().rev()) {
            *dst = *src;
        }
        Ok(be)
    };
    let r = scalar(&report.signature_r)?;
    let s = scalar(&report.signature_s)?;
    // Classify malformed scalars (zero, not below the group order) before verifying.
    p384::ecdsa::Signature::from_scalars(r, s).map_err(|_| {
        VerifyError::ReportSignatureMalformed("R or S is zero or not below the group order")
    })?;
    p384::ecdsa::VerifyingKey::from_sec1_bytes(vek_public_key_sec1)
        .map_err(|_| VerifyError::VekKeyInvalid("not a point on P-384".into()))?;
    // ring's P-384 verification is several times faster than the p384 crate's; the
    // signature is R || S big-endian, over SHA-384 of the signed bytes.
    let mut fixed = [0u8; 96];
    fixed[..48].copy_from_slice(&r);
    fixed[48..].copy_from_slice(&s);
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P384_SHA384_FIXED,
        vek_public_key_sec1,
    )
    .verify(report.signed_bytes(), &fixed)
    .map_err(|_| VerifyError::ReportSignatureInvalid)
}

/// Check the report against its endorsement key's certificate: REPORTED_TCB equals the
/// certified SPLs, and (VCEK, chip id not masked) CHIP_ID equals hwID.
pub fn check_report_matches_vek(
    report: &AttestationReport,
    vek: &VerifiedVek,
) -> Result<(), VerifyError> {
    let reported = report.reported_tcb.decode(vek.product);
    let certified = vek.extensions.tcb;
    let pairs = [
        ("fmc", reported.fmc, certified.fmc),
        (
            "bootloader",
            Some(reported.bootloader),
            Some(certified.bootloader),
        ),
        ("tee", Some(reported.tee), Some(certified.tee)),
        ("snp", Some(reported.snp), Some(certified.snp)),
        (
            "microcode",
            Some(reported.microcode),
            Some(certified.microcode),
        ),
    ];
    for (field, r, c) in pairs {
        if let (Some(reported), Some(certified)) = (r, c) {
            if reported != certified {
                return Err(VerifyError::TcbMismatch {
                    field,
                    reported,
                    certified,
                });
            }
        }
    }
    if vek.kind == EndorsementKind::Vcek && !report.key_info.mask_chip_key() {
        let hw = vek.extensions.hw_id.as_deref().unwrap_or(&[]);
        let (head, tail) = report.chip_id.split_at(hw.len().min(64));
        if hw.is_empty() || head != hw || tail.iter().any(|&b| b != 0) {
            return Err(VerifyError::ChipIdMismatch);
        }
    }
    Ok(())
}

/// Apply the [`Policy`] to a report whose authenticity is already established.
pub fn check_policy(
    report: &AttestationReport,
    vek: &VerifiedVek,
    policy: &Policy,
) -> Result<(), VerifyError> {
    if report.policy.debug() && !policy.allow_debug {
        return Err(VerifyError::DebugPolicy);
    }
    if report.policy.migrate_ma() && !policy.allow_migration_agent {
        return Err(VerifyError::MigrationAgentPolicy);
    }
    if report.platform_info.smt_enabled() && !policy.allow_smt {
        return Err(VerifyError::SmtNotAllowed);
    }
    if policy.require_single_socket && !report.policy.single_socket() {
        return Err(VerifyError::SingleSocketRequired);
    }
    if vek.kind == EndorsementKind::Vlek && !policy.allow_vlek {
        return Err(VerifyError::VlekNotAllowed);
    }
    if !policy.allowed_vmpls.allows(&report.vmpl) {
        return Err(VerifyError::VmplNotAllowed { vmpl: report.vmpl });
    }
    if let Some(expected) = policy.expected_product {
        if expected.product != vek.product {
            return Err(VerifyError::ProductNotAllowed {
                expected: expected.product,
                actual: vek.product,
            });
        }
        if let Some(stepping) = expected.stepping {
            let actual = vek.extensions.stepping();
            if actual != Some(stepping) {
                return Err(VerifyError::SteppingMismatch {
                    expected: stepping,
                    actual,
                });
            }
        }
    }
    for minimum in policy
        .minimum_tcb
        .iter()
        .filter(|m| m.product == vek.product)
    {
        for (tcb, raw) in [
            ("reported", report.reported_tcb),
            ("committed", report.committed_tcb),
            ("current", report.current_tcb),
            ("launch", report.launch_tcb),
        ] {
            let actual = raw.decode(vek.product);
            let pairs = [
                ("fmc", minimum.tcb.fmc, actual.fmc),
                (
                    "bootloader",
                    Some(minimum.tcb.bootloader),
                    Some(actual.bootloader),
                ),
                ("tee", Some(minimum.tcb.tee), Some(actual.tee)),
                ("snp", Some(minimum.tcb.snp), Some(actual.snp)),
                (
                    "microcode",
                    Some(minimum.tcb.microcode),
                    Some(actual.microcode),
                ),
            ];
            for (field, min, act) in pairs {
                if let (Some(minimum), Some(actual)) = (min, act) {
                    if actual < minimum {
                        return Err(VerifyError::TcbTooLow {
                            tcb,
                            field,
                            minimum,
                            actual,
                        });
                    }
                }
            }
        }
    }
    if report.guest_svn < policy.minimum_guest_svn {
        return Err(VerifyError::GuestSvnTooLow {
            minimum: policy.minimum_guest_svn,
            actual: report.guest_svn,
        });
    }
    if !policy.allowed_measurements.allows(&report.measurement) {
        return Err(VerifyError::MeasurementNotAllowed {
            measurement: hex_lower(&report.measurement),
        });
    }
    if let Some((expected, mode)) = policy.report_data.expected() {
        if report.report_data != expected {
            return Err(VerifyError::ReportDataMismatch { mode });
        }
    }
    Ok(())
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Verify SNP evidence against a policy at time `now`. See the crate documentation for the
/// checks and their order.
pub fn verify(
    evidence: &Evidence,
    policy: &Policy,
    now: SystemTime,
) -> Result<VerifiedReport, VerifyError> {
    verify_with_cache(evidence, policy, now, None)
}

/// [`verify`], with the certificate chain's verification looked up in and recorded into
/// `cache` ([`ChainCache`]). Everything else (report signature, TCB, policy, REPORT_DATA)
/// is checked every time.
pub fn verify_with_cache(
    evidence: &Evidence,
    policy: &Policy,
    now: SystemTime,
    cache: Option<&mut ChainCache>,
) -> Result<VerifiedReport, VerifyError> {
    let report = AttestationReport::parse(&evidence.report)?;
    let kind = report.key_info.signing_key()?;
    if kind == EndorsementKind::Vlek && !policy.allow_vlek {
        return Err(VerifyError::VlekNotAllowed);
    }
    let product = determine_product(&report, &evidence.vek_der)?;
    let run_chain = || {
        verify_chain(
            &policy.trusted_roots,
            evidence.ark_der.as_deref(),
            evidence.intermediate_der.as_deref(),
            &evidence.vek_der,
            product,
            kind,
            now,
        )
    };
    let vek = match cache {
        None => run_chain()?,
        Some(cache) => {
            let key = ChainCache::key(&policy.trusted_roots, evidence, product, kind);
            match cache.get(&key, now) {
                Some(vek) => vek,
                None => {
                    let vek = run_chain()?;
                    cache.insert(key, vek.clone());
                    vek
                }
            }
        }
    };
    verify_report_signature(&report, &vek.public_key_sec1)?;
    check_tcb_reserved(&report, product)?;
    check_report_matches_vek(&report, &vek)?;
    check_policy(&report, &vek, policy)?;
    Ok(VerifiedReport {
        current_tcb: report.current_tcb.decode(product),
        reported_tcb: report.reported_tcb.decode(product),
        committed_tcb: report.committed_tcb.decode(product),
        launch_tcb: report.launch_tcb.decode(product),
        product,
        vek,
        report,
    })
}
