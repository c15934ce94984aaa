//! `check_same_vm`: the certificate's and the session's evidence must come from the same
//! machine, identified by the endorsement key that signed them (issue 11, class 1).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloister_client::{check_same_vm, ClientError};
use cloister_measurement::MeasurementLog;
use cloister_snp_sim::{ReportRequest, SimConfig, Simulator};
use cloister_verifier::{
    verify, BundleBinding, Evidence, Policy, Product, TrustedRoot, VerifiedEvidence,
};

const MEASUREMENT: [u8; 48] = [0x4D; 48];

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_756_684_800)
}

/// Evidence of `sim` with KEY_INFO.MASK_CHIP_KEY set and CHIP_ID zero, as the firmware
/// writes a masked report (re-signed by the simulator's VCEK).
fn masked(sim: &Simulator) -> Evidence {
    let mut ev = sim
        .evidence(&ReportRequest::new([0; 64], MEASUREMENT))
        .expect("evidence");
    ev.report[0x48] |= 2;
    ev.report[0x1A0..0x1E0].fill(0);
    sim.resign(&mut ev.report).expect("re-sign");
    ev
}

fn verified(ev: &Evidence, policy: &Policy, binding: BundleBinding) -> VerifiedEvidence {
    let log = MeasurementLog::new();
    VerifiedEvidence {
        report: verify(ev, policy, now()).expect("verifies"),
        log_digest: log.digest(),
        log,
        binding,
    }
}

#[test]
fn evidence_from_another_chip_with_masked_chip_ids_is_refused() {
    let chip_a = Simulator::new(&SimConfig::new(Product::Milan, now())).expect("sim A");
    let chip_b = Simulator::new(&SimConfig::new(Product::Milan, now())).expect("sim B");
    let mut policy = Policy::for_measurements(vec![MEASUREMENT]);
    for sim in [&chip_a, &chip_b] {
        policy.trusted_roots.add(TrustedRoot::new_ecdsa_p384(
            Product::Milan,
            sim.ark_der().to_vec(),
        ));
    }
    let cert_a = verified(
        &masked(&chip_a),
        &policy,
        BundleBinding::Cert {
            spki_sha256: [1; 32],
        },
    );
    let session_a = verified(&masked(&chip_a), &policy, BundleBinding::Session);
    let session_b = verified(&masked(&chip_b), &policy, BundleBinding::Session);
    // Same CHIP_ID (zero), same measurement, same log: only the signing key differs.
    assert_eq!(cert_a.report.chip_id(), session_b.report.chip_id());
    assert_ne!(
        cert_a.report.endorsement_key(),
        session_b.report.endorsement_key()
    );
    assert_ne!(
        cert_a.report.endorsement_key_id(),
        session_b.report.endorsement_key_id()
    );
    assert!(matches!(
        check_same_vm(&cert_a, &session_b),
        Err(ClientError::EvidenceMismatch(what)) if what.contains("endorsement key")
    ));
    // The same chip passes.
    check_same_vm(&cert_a, &session_a).expect("same chip");
}
