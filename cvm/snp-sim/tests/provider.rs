//! The providers produce evidence that the pure verifier accepts only under
//! the right trust, with the REPORT_DATA binding the host asked for.

use cloister_evidence::{EvidenceError, EvidenceProvider, HardwareSnp, TeeChoice, TeeKind};
use cloister_measurement::{Entry, EntryKind, MeasurementLog};
use cloister_snp_sim::SimulatedSnp;
use cloister_verifier::binding::report_data_session_mode;
use cloister_verifier::{
    verify, Policy, Product, ReportDataExpectation, TrustedRoot, TrustedRoots, VerifyError,
};
use std::time::SystemTime;

fn log() -> MeasurementLog {
    let mut log = MeasurementLog::new();
    log.push(Entry {
        kind: EntryKind::Plugin,
        name: "echo".into(),
        version: "0.1.0".into(),
        sha256: "ab".repeat(32),
        signer_key_id: Some("cd".repeat(32)),
    })
    .unwrap();
    log
}

#[test]
fn simulated_evidence_verifies_only_when_its_root_is_trusted() {
    let now = SystemTime::now();
    let measurement = [0x5c; 48];
    let sim = SimulatedSnp::new(Product::Genoa, measurement, now).unwrap();
    assert_eq!(sim.kind(), TeeKind::Simulated);
    let exporter = [7u8; 32];
    let digest = log().digest();
    let evidence = sim
        .evidence(report_data_session_mode(&exporter, &digest))
        .unwrap();

    let mut policy = Policy::for_measurements(vec![measurement]);
    policy.report_data = ReportDataExpectation::SessionBinding {
        exporter,
        log_digest: digest,
    };
    let trusted = TrustedRoots::empty().with(
        TrustedRoot::new_ecdsa_p384(sim.product(), sim.ark_der().to_vec())
            .with_ask(sim.ask_der().to_vec()),
    );
    let mut with_sim = policy.clone();
    with_sim.trusted_roots = trusted;
    let verified = verify(&evidence, &with_sim, now).expect("simulated evidence verifies");
    assert_eq!(verified.measurement(), &measurement);

    // AMD's roots do not know the simulator.
    let err = verify(&evidence, &policy, now).unwrap_err();
    assert!(
        matches!(err, VerifyError::UntrustedRoot { .. }),
        "got {err}"
    );

    // Another session's exporter does not match the binding.
    let mut other_session = with_sim.clone();
    other_session.report_data = ReportDataExpectation::SessionBinding {
        exporter: [8u8; 32],
        log_digest: digest,
    };
    let err = verify(&evidence, &other_session, now).unwrap_err();
    assert!(
        matches!(err, VerifyError::ReportDataMismatch { .. }),
        "got {err}"
    );
}

#[test]
fn hardware_provider_fails_closed_without_the_device() {
    if std::path::Path::new(cloister_evidence::SEV_GUEST_DEVICE).exists() {
        // On an SNP guest the device exists; the hardware path is exercised
        // there, not here.
        return;
    }
    match HardwareSnp::open(None) {
        Err(EvidenceError::DeviceUnavailable(why)) => assert!(!why.is_empty()),
        Err(other) => panic!("expected DeviceUnavailable, got {other}"),
        Ok(_) => panic!(
            "opened {} on a machine without it",
            cloister_evidence::SEV_GUEST_DEVICE
        ),
    }
}

#[test]
fn the_tee_must_be_named() {
    assert_eq!(TeeChoice::parse("snp").unwrap(), TeeChoice::Snp);
    assert_eq!(TeeChoice::parse("sim").unwrap(), TeeChoice::Simulated);
    assert_eq!(TeeChoice::parse("none").unwrap(), TeeChoice::None);
    let err = TeeChoice::parse("simulated").unwrap_err().to_string();
    assert!(err.contains("expected `snp`"), "{err}");
}
