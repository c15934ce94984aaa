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
        transparency: None,
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

/// Issue 11, classes 8 and 9: what a host that failed attestation says (its error code,
/// a handshake message) is shown escaped and truncated by `ClientError`'s Display.
#[test]
fn host_supplied_text_in_errors_is_escaped_and_truncated() {
    let detail = format!(
        "\u{1b}[2K\u{1b}[1Ghost ATTESTED\u{9b}0m\u{202e}{}",
        "y".repeat(1 << 20)
    );
    for e in [
        ClientError::SessionEvidenceUnavailable {
            status: 500,
            detail: detail.clone(),
        },
        ClientError::Handshake(detail.clone()),
        ClientError::Http(detail.clone()),
    ] {
        let text = e.to_string();
        assert!(
            !text
                .chars()
                .any(|c| matches!(c, '\u{1b}' | '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}')),
            "{text:?}"
        );
        assert!(text.contains("\\u{1b}[2K"), "{text}");
        assert!(text.len() < 1024, "{} bytes", text.len());
        assert!(
            text.ends_with(&format!("({} bytes)", detail.len())),
            "{text}"
        );
    }
}

/// The messages of `e` and of each of its sources, outermost first.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        out.push(s.to_string());
        next = s.source();
    }
    out
}

/// Issue 11, class 11: an error whose message interpolates its cause and also returns it
/// as `source()` is printed twice by a chain printer (`anyhow`'s `{:#}`). No message in a
/// representative chain of each kind may contain the message of its source, nor repeat one.
#[test]
fn error_chains_print_each_cause_once() {
    use cloister_client::policy::load_policy;
    use cloister_verifier::{verify_bundle, EvidenceBundle, TrustedRoots};

    let dir = std::env::temp_dir().join(format!("cloister-chain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad_toml = dir.join("bad.toml");
    std::fs::write(&bad_toml, "alow_debug = true\n").expect("write");
    let mut errors: Vec<Box<dyn std::error::Error + 'static>> = vec![
        Box::new(load_policy(Some(&bad_toml)).expect_err("malformed policy")),
        Box::new(load_policy(Some(&dir.join("missing.toml"))).expect_err("missing policy")),
        Box::new(ClientError::Connect {
            addr: "127.0.0.1:1".into(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        }),
        Box::new(ClientError::Tls(rustls::Error::General(
            "no provider".into(),
        ))),
    ];
    // A bundle whose measurement log is not canonical, as session and as cert evidence.
    let bundle = EvidenceBundle {
        report: vec![0; 16],
        vek_der: vec![],
        ask_der: None,
        ark_der: None,
        measurement_log: b" {}".to_vec(),
        binding: BundleBinding::Session,
        transparency: None,
    };
    let rejected = verify_bundle(
        &bundle,
        &Policy::default(),
        &TrustedRoots::empty(),
        now(),
        Some([0; 32]),
    )
    .expect_err("bad log");
    errors.push(Box::new(ClientError::SessionEvidenceRejected(rejected)));
    let malformed = EvidenceBundle::from_json(b"{\"format\":1}").expect_err("malformed");
    errors.push(Box::new(ClientError::SessionEvidenceMalformed(malformed)));
    let not_a_cert = cloister_verifier::ratls::evidence_from_certificate(b"nope")
        .expect_err("not a certificate");
    errors.push(Box::new(ClientError::CertificateRejected(not_a_cert)));

    for e in &errors {
        let segments = chain(e.as_ref());
        assert!(segments.len() >= 2, "{segments:?}: expected a cause");
        for pair in segments.windows(2) {
            assert!(
                !pair[0].contains(&pair[1]),
                "{:?} repeats its cause {:?}",
                pair[0],
                pair[1]
            );
        }
        for (i, s) in segments.iter().enumerate() {
            assert!(
                !segments[i + 1..].contains(s),
                "{s:?} twice in {segments:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
