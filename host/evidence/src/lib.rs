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
//! * `SimulatedSnp` (cargo feature `simulator`, on by default for development)
//!   produces reports in AMD's exact layout signed by a locally generated chain
//!   (`cloister-snp-sim`). It exists for development and tests on machines
//!   without SNP; verifiers reject its root unless told to trust it, and the
//!   host must be started with it explicitly ([`TeeChoice::parse`] never picks
//!   it by default). The production build (`--no-default-features`) does not
//!   contain it: there, `sim` is refused with [`EvidenceError::SimulatorNotBuilt`].
//!
//! This crate links only the wire formats (`cloister-protocol`): no verifier.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use cloister_protocol::Evidence;
#[cfg(feature = "simulator")]
use cloister_protocol::Product;
#[cfg(feature = "simulator")]
use cloister_snp_sim::{ReportRequest, SimConfig, Simulator};
use std::sync::Mutex;
#[cfg(feature = "simulator")]
use std::time::SystemTime;

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
    /// `sim` was asked for, but this is a production build without the simulator.
    #[error("the simulated TEE (`sim`) is not in this build: this is a production host (built without the `simulator` feature); use `snp` on SEV-SNP hardware, or a development build for `sim`")]
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
            "sim" if cfg!(feature = "simulator") => Ok(TeeChoice::Simulated),
            "sim" => Err(EvidenceError::SimulatorNotBuilt),
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

/// Evidence from the local simulator. **Not a TEE.**
#[cfg(feature = "simulator")]
pub struct SimulatedSnp {
    sim: Simulator,
    measurement: [u8; 48],
    version: u32,
}

#[cfg(feature = "simulator")]
impl SimulatedSnp {
    /// A simulated chip of `product` whose reports carry `measurement` (the
    /// launch measurement the simulated image "has"), report version 5.
    pub fn new(
        product: Product,
        measurement: [u8; 48],
        now: SystemTime,
    ) -> Result<SimulatedSnp, EvidenceError> {
        let sim = Simulator::new(&SimConfig::new(product, now))
            .map_err(|e| EvidenceError::Simulator(e.to_string()))?;
        Ok(SimulatedSnp {
            sim,
            measurement,
            version: 5,
        })
    }

    /// Uses report version 3 instead of 5.
    pub fn with_report_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// The simulated product.
    pub fn product(&self) -> Product {
        self.sim.product()
    }

    /// The simulated ARK certificate (DER): the root a verifier must trust explicitly
    /// (for policy files, `trust_simulator_root`).
    pub fn ark_der(&self) -> &[u8] {
        self.sim.ark_der()
    }

    /// The simulated ASK certificate (DER), the intermediate under the ARK.
    pub fn ask_der(&self) -> &[u8] {
        self.sim.ask_der()
    }
}

#[cfg(feature = "simulator")]
impl EvidenceProvider for SimulatedSnp {
    fn kind(&self) -> TeeKind {
        TeeKind::Simulated
    }

    fn evidence(&self, report_data: [u8; 64]) -> Result<Evidence, EvidenceError> {
        let request = ReportRequest::new(report_data, self.measurement).with_version(self.version);
        self.sim
            .evidence(&request)
            .map_err(|e| EvidenceError::Simulator(e.to_string()))
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

    /// The production build (`--no-default-features`) has no simulator and says so.
    #[cfg(not(feature = "simulator"))]
    #[test]
    fn the_production_build_refuses_the_simulator() {
        let err = TeeChoice::parse("sim").expect_err("no simulator in this build");
        assert!(matches!(err, EvidenceError::SimulatorNotBuilt));
        assert!(err.to_string().contains("production host"), "{err}");
    }

    #[cfg(feature = "simulator")]
    #[test]
    fn the_development_build_offers_the_simulator() {
        assert_eq!(TeeChoice::parse("sim").ok(), Some(TeeChoice::Simulated));
    }
}
