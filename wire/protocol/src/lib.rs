//! The Cloister wire protocol: what the host (inside the CVM) produces and every verifier
//! (client, CLI, auditor; outside) reads, defined once.
//!
//! * [`Evidence`]: an SNP attestation report and the certificates that endorse it.
//! * [`bundle`]: the `cloister-evidence/v1` JSON document that carries evidence, the
//!   measurement log and the binding mode.
//! * [`binding`]: the exact REPORT_DATA bytes that bind a report to a TLS key or session and
//!   to the measurement log.
//! * [`ratls`]: the RA-TLS certificate extension that carries a cert-bound bundle.
//! * [`snp`]: the report's size and signed range, the products and their TCB encodings.
//! * [`SIMULATED_LAUNCH_MEASUREMENT`]: the launch measurement a simulated host reports by
//!   default.
//!
//! This crate is pure (bytes in, bytes out, no I/O, no clock) and small on purpose: it is
//! linked into the production host, so it carries no X.509 parser, no chain verification and
//! no policy. Those live in `cloister-verifier`, which the host never links.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod binding;
pub mod bundle;
pub mod ratls;
pub mod snp;

pub use binding::BindingMode;
pub use bundle::{BundleBinding, BundleError, BundleTransparency, EvidenceBundle, BUNDLE_FORMAT};
pub use snp::{Product, RawTcb, Tcb, REPORT_SIZE, SIGNED_LEN};

/// The evidence to verify: a report and the certificates that endorse it (all DER).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The 1184-byte attestation report.
    pub report: Vec<u8>,
    /// The VCEK or VLEK certificate.
    pub vek_der: Vec<u8>,
    /// The ASK or ASVK; `None` uses the trusted root's built-in one.
    pub intermediate_der: Option<Vec<u8>>,
    /// The ARK; `None` uses the trusted roots. If given, it must be one of them.
    pub ark_der: Option<Vec<u8>>,
}

/// The label whose SHA-384 is [`SIMULATED_LAUNCH_MEASUREMENT`].
pub const SIMULATED_LAUNCH_LABEL: &[u8] = b"cloister simulated launch v1";

/// The launch measurement (MEASUREMENT, 48 bytes) that a host started with the simulated TEE
/// reports unless told otherwise: SHA-384 of [`SIMULATED_LAUNCH_LABEL`]. No real image has
/// it; a policy that accepts it accepts a simulator.
pub const SIMULATED_LAUNCH_MEASUREMENT: [u8; 48] = [
    0xfa, 0xe2, 0x3a, 0x58, 0x28, 0xf8, 0xd7, 0x24, 0x65, 0x74, 0xdd, 0xbd, 0xc6, 0xf6, 0x44, 0xe5,
    0x7c, 0x87, 0xf5, 0xe8, 0xb9, 0x78, 0xc1, 0x21, 0x46, 0x45, 0xec, 0xb0, 0x71, 0x54, 0xbb, 0x73,
    0xec, 0x47, 0xef, 0x49, 0xbf, 0x13, 0xab, 0xcf, 0xe2, 0xd2, 0x37, 0x5c, 0x61, 0xf6, 0x9d, 0x47,
];

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha384};

    #[test]
    fn simulated_launch_measurement_is_the_sha384_of_its_label() {
        assert_eq!(
            Sha384::digest(SIMULATED_LAUNCH_LABEL).as_slice(),
            SIMULATED_LAUNCH_MEASUREMENT.as_slice()
        );
    }
}
