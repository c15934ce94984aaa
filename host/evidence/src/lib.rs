//! Attestation evidence providers, used by the host **inside the CVM**.
//!
//! An [`EvidenceProvider`] turns 64 bytes of REPORT_DATA (the binding of
//! `docs/attestation.md`) into [`Evidence`]: an SNP attestation report and the
//! certificates a verifier needs to check it.
//!
//! * [`HardwareSnp`] asks the AMD secure processor through `/dev/sev-guest`
//!   (the `sev` crate's extended report request) and takes the VCEK/VLEK, ASK
//!   and ARK from the certificate table the platform provides. A platform that
//!   provides no table needs the VCEK (DER) supplied by the operator; without
//!   it the provider fails closed.
//! * The simulated provider (`SimulatedSnp`) is **not here**: it lives in
//!   `cloister-snp-sim`, which only the development host (`cloister-host-dev`) and
//!   the tests link. The production host (`cloister-host`) cannot contain it, and
//!   refuses `sim` with [`EvidenceError::SimulatorNotBuilt`]. [`TeeChoice::parse`]
//!   never picks the simulator by default: the operator names it.
//!
//! This crate links only the wire formats (`cloister-protocol`): no verifier.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use cloister_protocol::Evidence;
use std::sync::Mutex;

/// The device the SNP guest driver exposes.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

/// Why evidence could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// `/dev/sev-guest` could not be opened: this is not an SNP guest, or the
    /// driver is not loaded.
    #[error("SNP hardware unavailable: cannot open {SEV_GUEST_DEVICE}: {0}")]
    DeviceUnavailable(String),
    /// The secure processor refused or failed the report request.
    #[error("the SNP firmware failed the report request: {0}")]
    Firmware(String),
    /// The platform provided no VCEK/VLEK and none was configured.
    #[error("the platform returned no VCEK/VLEK certificate and none is configured; fetch the VCEK for this chip and TCB and configure it")]
    NoEndorsementKey,
    /// The simulator failed.
    #[error("the SNP simulator failed: {0}")]
    Simulator(String),
    /// `sim` was asked for, but this is the production host, which has no simulator.
    #[error("the simulated TEE (`sim`) is not in this binary: this is the production host `cloister-host`, which has no simulator; use `snp` on SEV-SNP hardware, or the development host `cloister-host-dev` for `sim`")]
    SimulatorNotBuilt,
    /// The value given for the TEE choice is not known.
    #[error("unknown TEE `{0}`: expected `snp` (hardware), `sim` (simulated, development only) or `none`")]
    UnknownTee(String),
}

/// Produces attestation evidence for given REPORT_DATA.
pub trait EvidenceProvider: Send + Sync {
    /// Whether the evidence comes from real hardware.
    fn kind(&self) -> TeeKind;
    /// A fresh report carrying `report_data`, with its certificates.
    fn evidence(&self, report_data: [u8; 64]) -> Result<Evidence, EvidenceError>;
}

/// Where evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeeKind {
    /// AMD SEV-SNP hardware.
    SevSnp,
    /// The local simulator: not a TEE.
    Simulated,
}

/// What the operator asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeeChoice {
    /// Real SNP hardware (`snp`).
    Snp,
    /// The simulator (`sim`): development and tests only.
    Simulated,
    /// No TEE at all (`none`): no evidence can be produced.
    None,
}

impl TeeChoice {
    /// Parses `snp`, `sim` or `none`. There is no default: the operator must
    /// say which, so a host never silently runs without a TEE.
    pub fn parse(s: &str) -> Result<TeeChoice, EvidenceError> {
        match s {
            "snp" => Ok(TeeChoice::Snp),
            "sim" => Ok(TeeChoice::Simulated),
            "none" => Ok(TeeChoice::None),
            other => Err(EvidenceError::UnknownTee(other.to_owned())),
        }
    }
}

/// Evidence from the AMD secure processor via `/dev/sev-guest`.
pub struct HardwareSnp {
    fallback_vek_der: Option<Vec<u8>>,
    device: Mutex<sev::firmware::guest::Firmware>,
}

impl HardwareSnp {
    /// Opens `/dev/sev-guest`. `fallback_vek_der` is used when the platform's
    /// extended report carries no VCEK/VLEK.
    pub fn open(fallback_vek_der: Option<Vec<u8>>) -> Result<HardwareSnp, EvidenceError> {
        let device = sev::firmware::guest::Firmware::open()
            .map_err(|e| EvidenceError::DeviceUnavailable(e.to_string()))?;
        Ok(HardwareSnp {
            fallback_vek_der,
            device: Mutex::new(device),
        })
    }
}

impl EvidenceProvider for HardwareSnp {
    fn kind(&self) -> TeeKind {
        TeeKind::SevSnp
    }

    fn evidence(&self, report_data: [u8; 64]) -> Result<Evidence, EvidenceError> {
        use sev::firmware::host::CertType;
        let mut device = self
            .device
            .lock()
            .map_err(|_| EvidenceError::Firmware("device lock poisoned".into()))?;
        // VMPL 0: the host runs at the most privileged level of the guest.
        let (report, table) = device
            .get_ext_report(None, Some(report_data), Some(0))
            .map_err(|e| EvidenceError::Firmware(e.to_string()))?;
        let table = table.unwrap_or_default();
        let find = |wanted: &[CertType]| {
            table
                .iter()
                .find(|e| wanted.contains(&e.cert_type))
                .map(|e| e.data.clone())
        };
        let vek_der = find(&[CertType::VCEK, CertType::VLEK])
            .or_else(|| self.fallback_vek_der.clone())
            .ok_or(EvidenceError::NoEndorsementKey)?;
        Ok(Evidence {
            report,
            vek_der,
            // The `sev` crate has no ASVK entry type; for a VLEK the verifier
            // uses its built-in ASVK (checked against the ARK).
            intermediate_der: find(&[CertType::ASK]),
            ark_der: find(&[CertType::ARK]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tee_choices_parse_and_unknown_ones_are_named() {
        assert_eq!(TeeChoice::parse("snp").ok(), Some(TeeChoice::Snp));
        assert_eq!(TeeChoice::parse("none").ok(), Some(TeeChoice::None));
        for bad in ["", "SNP", "tdx", "simulated"] {
            assert!(
                matches!(TeeChoice::parse(bad), Err(EvidenceError::UnknownTee(ref s)) if s == bad),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sim_is_a_choice_the_binary_decides_on() {
        assert_eq!(TeeChoice::parse("sim").ok(), Some(TeeChoice::Simulated));
        let msg = EvidenceError::SimulatorNotBuilt.to_string();
        assert!(
            msg.contains("production host") && msg.contains("cloister-host-dev"),
            "{msg}"
        );
    }
}
