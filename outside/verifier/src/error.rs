//! The verification error: one variant per failed check.

use cloister_display::{Excerpt, Quoted};

use crate::binding::BindingMode;
use crate::report::Product;

/// One trusted root that the chain did not verify with, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFailure {
    /// The root's [`TrustedRoot::label`](crate::TrustedRoot::label).
    pub root: String,
    /// Why the chain does not verify with it.
    pub error: Box<VerifyError>,
}

fn failures_text(failures: &[RootFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("[{}: {}]", f.root, f.error))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why evidence was rejected.
///
/// Every check has its own variant, naming the field and the reason, so callers (and tests)
/// can tell failures apart without parsing messages. Messages never echo guest-chosen data
/// such as REPORT_DATA; they may contain hashes (measurement), TCB numbers and certificate
/// names, which are public.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The report does not have the size of an SNP attestation report (1184 bytes).
    #[error("attestation report is {actual} bytes, expected {expected}")]
    ReportLength {
        /// The required size.
        expected: usize,
        /// The size received.
        actual: usize,
    },
    /// VERSION is not one this verifier knows the layout of (2, 3, 4 or 5).
    #[error("unsupported attestation report version {0}")]
    UnsupportedReportVersion(u32),
    /// SIGNATURE_ALGO is not 1 (ECDSA P-384 with SHA-384).
    #[error("unsupported report signature algorithm {0} (only 1 = ECDSA P-384/SHA-384)")]
    UnsupportedSignatureAlgorithm(u32),
    /// KEY_INFO.SIGNING_KEY is a reserved value (2..=6).
    #[error("KEY_INFO.SIGNING_KEY is reserved value {0}")]
    UnsupportedSigningKey(u8),
    /// KEY_INFO.SIGNING_KEY is 7: the report is not signed at all.
    #[error("KEY_INFO.SIGNING_KEY says the report is not signed")]
    ReportNotSigned,
    /// The CPU generation could not be determined (or is not Milan, Genoa or Turin).
    #[error("cannot determine the AMD product: {}", Excerpt(.0))]
    UnknownProduct(String),
    /// The report's CPUID and the endorsement-key certificate name different products.
    #[error("product mismatch: report CPUID says {report}, certificate says {certificate}")]
    ProductMismatch {
        /// Product from the report's CPUID fields.
        report: Product,
        /// Product from the certificate.
        certificate: Product,
    },
    /// A certificate (or PEM block) could not be parsed.
    #[error("cannot parse the {which} certificate: {}", Excerpt(.reason))]
    CertificateParse {
        /// "ARK", "ASK", "ASVK", "VCEK", "VLEK" or "PEM".
        which: &'static str,
        /// Parser message.
        reason: String,
    },
    /// A certificate has an extension twice, or a critical extension it does not recognise.
    #[error("the {which} certificate's extension {} {reason}", Excerpt(.oid))]
    CertificateExtension {
        /// "ARK", "ASK", "ASVK", "VCEK" or "VLEK".
        which: &'static str,
        /// The extension's OID, dotted.
        oid: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A certificate's notAfter is before `now`.
    #[error("the {which} certificate expired (notAfter {not_after}, now {now}, Unix seconds)")]
    CertificateExpired {
        /// Which certificate.
        which: &'static str,
        /// notAfter, Unix seconds.
        not_after: i64,
        /// The time used for the check, Unix seconds.
        now: i64,
    },
    /// A certificate's notBefore is after `now`.
    #[error("the {which} certificate is not yet valid (notBefore {not_before}, now {now}, Unix seconds)")]
    CertificateNotYetValid {
        /// Which certificate.
        which: &'static str,
        /// notBefore, Unix seconds.
        not_before: i64,
        /// The time used for the check, Unix seconds.
        now: i64,
    },
    /// The policy's [`TrustedRoots`](crate::TrustedRoots) hold no root for this product.
    #[error("no trusted root for {product}")]
    NoTrustedRoot {
        /// The product of the evidence.
        product: Product,
    },
    /// The evidence carries an ARK that is not one of the trusted roots for this product.
    #[error("the supplied ARK is not a trusted root for {product} (not one of the trusted roots; a simulator root must be trusted explicitly)")]
    UntrustedRoot {
        /// The product of the evidence.
        product: Product,
    },
    /// The evidence carries no ARK, several trusted roots could be the one it claims, and
    /// the chain verifies with none of them: each root's own failure, each root named
    /// distinctly ([`TrustedRoot::label`](crate::TrustedRoot::label)).
    #[error("the chain verifies with none of the {} trusted roots for {product} it could claim: {}", .failures.len(), failures_text(.failures))]
    NoRootVerifies {
        /// The product of the evidence.
        product: Product,
        /// Each root tried and why it failed, in the order tried.
        failures: Vec<RootFailure>,
    },
    /// Neither the evidence nor the trusted root provides the intermediate (ASK or ASVK).
    #[error("no {which} certificate supplied and none built in for this root")]
    MissingIntermediate {
        /// "ASK" or "ASVK".
        which: &'static str,
    },
    /// A link of the certificate chain does not verify.
    #[error("certificate chain link {link} is invalid: {}", Excerpt(.reason))]
    ChainInvalid {
        /// "ARK" (self-signature), "ARK->ASK", "ARK->ASVK", "ASK->VCEK" or "ASVK->VLEK".
        link: &'static str,
        /// What failed (name, algorithm or signature).
        reason: String,
    },
    /// A certificate is of the wrong kind for its place (e.g. a VLEK where the report says VCEK).
    #[error("the {which} certificate has common name {}, expected {}", Quoted(.actual), Quoted(.expected))]
    WrongCertificateKind {
        /// The place in the chain.
        which: &'static str,
        /// The common name required there.
        expected: String,
        /// The common name found.
        actual: String,
    },
    /// The VCEK/VLEK public key is not an EC P-384 key.
    #[error("the endorsement key is not a valid EC P-384 public key: {}", Excerpt(.0))]
    VekKeyInvalid(String),
    /// An AMD extension of the VCEK/VLEK certificate is missing or malformed.
    #[error("VCEK/VLEK extension {field}: {}", Excerpt(.reason))]
    VekExtension {
        /// The extension (e.g. "snpSPL", "hwID").
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The report's R or S is not a valid P-384 scalar (non-zero padding, zero or out of range).
    #[error("report signature is malformed: {0}")]
    ReportSignatureMalformed(&'static str),
    /// The ECDSA signature over bytes 0..0x2A0 does not verify with the VCEK/VLEK.
    #[error("report signature does not verify with the endorsement key")]
    ReportSignatureInvalid,
    /// A REPORTED_TCB component differs from the SPL the VCEK/VLEK certifies.
    #[error("REPORTED_TCB.{field} is {reported} but the endorsement key certifies {certified}")]
    TcbMismatch {
        /// "fmc", "bootloader", "tee", "snp" or "microcode".
        field: &'static str,
        /// Value in the report.
        reported: u8,
        /// Value in the certificate.
        certified: u8,
    },
    /// A reserved (must-be-zero) byte range of the signed report is not zero.
    #[error("report field {field} is reserved and must be zero, but byte {offset:#x} is not")]
    ReservedNotZero {
        /// The range, named after the spec.
        field: &'static str,
        /// The first non-zero byte's offset in the report.
        offset: usize,
    },
    /// Reserved bits of a report bit field are set.
    #[error("reserved bits of {field} are set: {bits:#x}")]
    ReservedBitsSet {
        /// "KEY_INFO", "POLICY" or "PLATFORM_INFO".
        field: &'static str,
        /// The reserved bits that are set.
        bits: u64,
    },
    /// POLICY bit 17 is reserved and must be one; the firmware refuses to launch otherwise.
    #[error("POLICY bit 17 is reserved and must be one, but is zero")]
    GuestPolicyBit17Clear,
    /// KEY_INFO.MASK_CHIP_KEY is set but CHIP_ID is not all zero.
    #[error("KEY_INFO.MASK_CHIP_KEY is set but CHIP_ID is not all zero")]
    MaskedChipIdNotZero,
    /// Bytes of the signature area after R and S, which no signature covers, are not zero.
    #[error("unsigned report byte {offset:#x} (after the signature's R and S) is not zero")]
    UnsignedBytesNotZero {
        /// The first non-zero byte's offset in the report.
        offset: usize,
    },
    /// A reserved byte of a TCB_VERSION is not zero (Milan/Genoa bytes 2..=5, Turin 4..=6).
    #[error("{tcb}_TCB byte {byte} is reserved for {product} and must be zero")]
    TcbReservedNotZero {
        /// "current", "reported", "committed" or "launch".
        tcb: &'static str,
        /// The product whose layout was applied.
        product: Product,
        /// The byte's index in the 8-byte TCB_VERSION.
        byte: usize,
    },
    /// CHIP_ID differs from the VCEK's hwID.
    #[error("CHIP_ID does not match the VCEK hwID")]
    ChipIdMismatch,
    /// The guest policy allows debugging (POLICY bit 19) and the policy forbids it.
    #[error("guest policy allows debugging (POLICY.DEBUG)")]
    DebugPolicy,
    /// The guest policy allows a migration agent (POLICY bit 18) and the policy forbids it.
    #[error("guest policy allows a migration agent (POLICY.MIGRATE_MA)")]
    MigrationAgentPolicy,
    /// SMT is enabled on the platform (PLATFORM_INFO bit 0) and the policy forbids it.
    #[error("SMT is enabled on the platform (PLATFORM_INFO.SMT_EN)")]
    SmtNotAllowed,
    /// The guest policy does not require a single socket and the policy does.
    #[error("guest policy does not require a single socket (POLICY.SINGLE_SOCKET)")]
    SingleSocketRequired,
    /// The report was signed by a VLEK and the policy accepts only VCEKs.
    #[error("report signed by a VLEK, policy accepts only VCEK")]
    VlekNotAllowed,
    /// The report's VMPL is not in the allowed set.
    #[error("VMPL {vmpl} is not allowed")]
    VmplNotAllowed {
        /// The report's VMPL.
        vmpl: u32,
    },
    /// The launch measurement is not in the allowed set.
    #[error("measurement {} is not allowed", Excerpt(.measurement))]
    MeasurementNotAllowed {
        /// The report's MEASUREMENT, hex.
        measurement: String,
    },
    /// A TCB component is below the policy minimum.
    #[error("{tcb}_TCB.{field} is {actual}, below the minimum {minimum}")]
    TcbTooLow {
        /// Which TCB of the report: "reported", "committed", "current" or "launch".
        tcb: &'static str,
        /// The component.
        field: &'static str,
        /// Policy minimum.
        minimum: u8,
        /// Value in the report.
        actual: u8,
    },
    /// GUEST_SVN is below the policy minimum.
    #[error("GUEST_SVN is {actual}, below the minimum {minimum}")]
    GuestSvnTooLow {
        /// Policy minimum.
        minimum: u32,
        /// Value in the report.
        actual: u32,
    },
    /// The product is not the one the policy expects.
    #[error("product is {actual}, policy expects {expected}")]
    ProductNotAllowed {
        /// Expected by the policy.
        expected: Product,
        /// Found.
        actual: Product,
    },
    /// The VCEK's productName stepping is not the one the policy expects.
    #[error("VCEK productName stepping is {actual:?}, policy expects {expected}")]
    SteppingMismatch {
        /// Expected by the policy.
        expected: u8,
        /// Found in the VCEK productName (None if it carries no stepping).
        actual: Option<u8>,
    },
    /// REPORT_DATA differs from the expected value or binding. Neither value is included.
    #[error("REPORT_DATA does not match the {mode}")]
    ReportDataMismatch {
        /// Which expectation was checked (exact value, cert-mode or session-mode binding).
        mode: BindingMode,
    },
}
