//! [`SimulatedSnp`]: the simulator as the host's evidence provider.
//!
//! Only the development host (`cloister-host-dev`) and the tests link this; the
//! production host (`cloister-host`) has no path to it in its dependency tree.

use crate::{ReportRequest, SimConfig, Simulator};
use cloister_evidence::{Evidence, EvidenceError, EvidenceProvider, TeeKind};
use cloister_protocol::Product;
use std::time::SystemTime;

/// Evidence from the local simulator. **Not a TEE.**
pub struct SimulatedSnp {
    sim: Simulator,
    measurement: [u8; 48],
    version: u32,
}

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
