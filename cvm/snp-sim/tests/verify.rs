//! Simulated evidence goes through `cloister_verifier::verify` end to end: it verifies only
//! when the simulator's root is trusted explicitly, with the expected binding and
//! measurement, and every tampering or mismatch fails with its own error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloister_snp_sim::{
    ReportRequest, SimConfig, SimError, Simulator, DEFAULT_POLICY, POLICY_DEBUG, SIMULATED_MARKER,
};
use cloister_verifier::binding::{report_data_cert_mode, report_data_session_mode};
use cloister_verifier::{
    verify, Allowed, AttestationReport, BindingMode, EndorsementKind, Evidence, Policy, Product,
    ReportDataExpectation, TrustedRoot, TrustedRoots, VerifyError, REPORT_SIZE,
};

const MEASUREMENT: [u8; 48] = [0x4D; 48];
const EXPORTER: [u8; 32] = [0xE7; 32];
const LOG_DIGEST: [u8; 32] = [0x10; 32];

/// 2025-09-01T00:00:00Z.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_756_684_800)
}

fn sim(product: Product) -> Simulator {
    Simulator::new(&SimConfig::new(product, now())).expect("simulator")
}

fn session_request(version: u32) -> ReportRequest {
    ReportRequest::new(
        report_data_session_mode(&EXPORTER, &LOG_DIGEST),
        MEASUREMENT,
    )
    .with_version(version)
}

/// The default (strict) policy, trusting `sim`'s root in addition to AMD's, expecting
/// MEASUREMENT and the session binding of EXPORTER and LOG_DIGEST.
fn policy_trusting(sim: &Simulator) -> Policy {
    let mut p = Policy::for_measurements(vec![MEASUREMENT]);
    p.trusted_roots.add(
        TrustedRoot::new_ecdsa_p384(sim.product(), sim.ark_der().to_vec())
            .with_ask(sim.ask_der().to_vec()),
    );
    p.report_data = ReportDataExpectation::SessionBinding {
        exporter: EXPORTER,
        log_digest: LOG_DIGEST,
    };
    p
}

#[test]
fn simulated_reports_verify_with_the_sim_root_trusted() {
    for product in [Product::Milan, Product::Genoa, Product::Turin] {
        let sim = sim(product);
        for version in [3, 5] {
            let ev = sim.evidence(&session_request(version)).expect("evidence");
            let v = verify(&ev, &policy_trusting(&sim), now())
                .unwrap_or_else(|e| panic!("{product} v{version}: {e}"));
            assert_eq!(v.product, product);
            assert_eq!(v.report.version, version);
            assert_eq!(v.signer(), EndorsementKind::Vcek);
            assert_eq!(v.measurement(), &MEASUREMENT);
            assert_eq!(
                v.report_data(),
                &report_data_session_mode(&EXPORTER, &LOG_DIGEST)
            );
            assert_eq!(v.chip_id(), sim.chip_id());
            assert_eq!(v.reported_tcb, sim.tcb());
            assert_eq!(v.current_tcb, sim.tcb());
            assert_eq!(v.vek.extensions.tcb, sim.tcb());
            assert_eq!(v.report.policy.0, DEFAULT_POLICY);
            assert_eq!(v.report.vmpl, 0);
            assert_eq!(
                v.report.launch_mit_vector.is_some(),
                version == 5,
                "mitigation vectors only in v5"
            );
        }
    }
}

#[test]
fn cert_mode_binding_verifies() {
    let sim = sim(Product::Genoa);
    let spki_sha256 = [0x5B; 32];
    let rd = report_data_cert_mode(&spki_sha256, &LOG_DIGEST);
    let ev = sim
        .evidence(&ReportRequest::new(rd, MEASUREMENT))
        .expect("evidence");
    let mut p = policy_trusting(&sim);
    p.report_data = ReportDataExpectation::CertBinding {
        spki_sha256,
        log_digest: LOG_DIGEST,
    };
    assert!(verify(&ev, &p, now()).is_ok());
    // The same inputs in the other mode do not match: the modes are domain-separated.
    p.report_data = ReportDataExpectation::SessionBinding {
        exporter: spki_sha256,
        log_digest: LOG_DIGEST,
    };
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::ReportDataMismatch {
            mode: BindingMode::Session
        })
    );
}

#[test]
fn evidence_without_intermediates_uses_the_trusted_roots() {
    let sim = sim(Product::Milan);
    let mut ev = sim.evidence(&session_request(5)).expect("evidence");
    ev.ark_der = None;
    ev.intermediate_der = None;
    assert!(verify(&ev, &policy_trusting(&sim), now()).is_ok());
}

#[test]
fn default_roots_reject_the_simulator() {
    for version in [3, 5] {
        let sim = sim(Product::Milan);
        let ev = sim.evidence(&session_request(version)).expect("evidence");
        let mut p = policy_trusting(&sim);
        p.trusted_roots = TrustedRoots::amd();
        let err = verify(&ev, &p, now()).expect_err("must be rejected");
        assert_eq!(
            err,
            VerifyError::UntrustedRoot {
                product: Product::Milan
            }
        );
        assert!(err.to_string().contains("explicitly"), "{err}");
        // Policy::default() is the same.
        assert_eq!(verify(&ev, &Policy::default(), now()), Err(err));

        // Without the ARK in the evidence, AMD's RSA roots are tried and the ECDSA-signed
        // ASK does not verify against them.
        let mut ev = ev;
        ev.ark_der = None;
        assert!(matches!(
            verify(&ev, &Policy::default(), now()),
            Err(VerifyError::ChainInvalid {
                link: "ARK->ASK",
                ..
            })
        ));
    }
}

#[test]
fn a_sim_root_added_as_rsa_pss_is_refused() {
    let sim = sim(Product::Milan);
    let ev = sim.evidence(&session_request(5)).expect("evidence");
    let mut p = policy_trusting(&sim);
    p.trusted_roots =
        TrustedRoots::empty().with(TrustedRoot::new(Product::Milan, sim.ark_der().to_vec()));
    match verify(&ev, &p, now()) {
        Err(VerifyError::ChainInvalid {
            link: "ARK",
            reason,
        }) => {
            assert!(reason.contains("RSASSA-PSS"), "{reason}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_foreign_simulator_is_refused() {
    let trusted = sim(Product::Milan);
    let foreign = sim(Product::Milan);
    assert_ne!(trusted.chip_id(), foreign.chip_id());
    let p = policy_trusting(&trusted);
    let ev = foreign.evidence(&session_request(5)).expect("evidence");
    // Its own ARK: not trusted.
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::UntrustedRoot {
            product: Product::Milan
        })
    );
    // Without its ARK: its ASK is not signed by the trusted ARK.
    let mut no_ark = ev.clone();
    no_ark.ark_der = None;
    assert!(matches!(
        verify(&no_ark, &p, now()),
        Err(VerifyError::ChainInvalid {
            link: "ARK->ASK",
            ..
        })
    ));
    // Its VCEK presented under the trusted chain's ASK and ARK: not signed by that ASK.
    let spliced = Evidence {
        report: ev.report.clone(),
        vek_der: ev.vek_der.clone(),
        intermediate_der: Some(trusted.ask_der().to_vec()),
        ark_der: Some(trusted.ark_der().to_vec()),
    };
    assert!(matches!(
        verify(&spliced, &p, now()),
        Err(VerifyError::ChainInvalid {
            link: "ASK->VCEK",
            ..
        })
    ));
    // Its report with the trusted chip's VCEK: the signature does not verify.
    let stolen = Evidence {
        report: ev.report,
        ..trusted.evidence(&session_request(5)).expect("evidence")
    };
    assert_eq!(
        verify(&stolen, &p, now()),
        Err(VerifyError::ReportSignatureInvalid)
    );
}

#[test]
fn tampered_reports_are_refused() {
    let sim = sim(Product::Genoa);
    let p = policy_trusting(&sim);
    let ev = sim.evidence(&session_request(5)).expect("evidence");
    // One bit flipped in: MEASUREMENT, REPORT_DATA, HOST_DATA, REPORT_ID. (A flipped
    // reserved byte is refused before the signature: see
    // reserved_fields_must_be_zero_even_when_signed.)
    for offset in [0x90, 0x50, 0xC0, 0x15F] {
        let mut bad = ev.clone();
        bad.report[offset] ^= 1;
        assert_eq!(
            verify(&bad, &p, now()),
            Err(VerifyError::ReportSignatureInvalid),
            "offset {offset:#x}"
        );
    }
    // The signature itself: R changed, and non-zero padding above 384 bits.
    let mut bad = ev.clone();
    bad.report[0x2A0] ^= 1;
    assert_eq!(
        verify(&bad, &p, now()),
        Err(VerifyError::ReportSignatureInvalid)
    );
    let mut bad = ev.clone();
    bad.report[0x2A0 + 48] = 1;
    assert!(matches!(
        verify(&bad, &p, now()),
        Err(VerifyError::ReportSignatureMalformed(_))
    ));
    // A tampered VCEK certificate (a byte of its public key).
    let mut bad = ev;
    let n = bad.vek_der.len();
    bad.vek_der[n / 2] ^= 1;
    assert!(verify(&bad, &p, now()).is_err());
}

#[test]
fn wrong_report_data_is_refused() {
    let sim = sim(Product::Milan);
    let ev = sim.evidence(&session_request(3)).expect("evidence");
    // Another session's exporter (a relayed report).
    let mut p = policy_trusting(&sim);
    p.report_data = ReportDataExpectation::SessionBinding {
        exporter: [0xE8; 32],
        log_digest: LOG_DIGEST,
    };
    let err = verify(&ev, &p, now()).expect_err("wrong exporter");
    assert_eq!(
        err,
        VerifyError::ReportDataMismatch {
            mode: BindingMode::Session
        }
    );
    // The message does not echo REPORT_DATA.
    let rd_hex: String = ev.report[0x50..0x58]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!err.to_string().contains(&rd_hex), "{err}");
    // Another measurement log.
    p.report_data = ReportDataExpectation::SessionBinding {
        exporter: EXPORTER,
        log_digest: [0x11; 32],
    };
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::ReportDataMismatch {
            mode: BindingMode::Session
        })
    );
    // A report made with other REPORT_DATA.
    let other = sim
        .evidence(&ReportRequest::new([0; 64], MEASUREMENT))
        .expect("evidence");
    assert_eq!(
        verify(&other, &policy_trusting(&sim), now()),
        Err(VerifyError::ReportDataMismatch {
            mode: BindingMode::Session
        })
    );
}

#[test]
fn wrong_measurement_is_refused() {
    let sim = sim(Product::Turin);
    let mut request = session_request(5);
    request.measurement = [0x4E; 48];
    let ev = sim.evidence(&request).expect("evidence");
    match verify(&ev, &policy_trusting(&sim), now()) {
        Err(VerifyError::MeasurementNotAllowed { measurement }) => {
            assert_eq!(measurement, "4e".repeat(48))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn debug_policy_is_refused() {
    let sim = sim(Product::Milan);
    let request = session_request(5).with_policy(DEFAULT_POLICY | POLICY_DEBUG);
    let ev = sim.evidence(&request).expect("evidence");
    let mut p = policy_trusting(&sim);
    assert_eq!(verify(&ev, &p, now()), Err(VerifyError::DebugPolicy));
    // Authentic all the same: a policy that allows debugging accepts it.
    p.allow_debug = true;
    assert!(verify(&ev, &p, now()).is_ok());
}

#[test]
fn other_policy_knobs_apply_to_simulated_reports() {
    let sim = sim(Product::Genoa);
    let ev = sim.evidence(&session_request(5)).expect("evidence");
    let mut p = policy_trusting(&sim);
    p.allow_smt = false;
    assert_eq!(verify(&ev, &p, now()), Err(VerifyError::SmtNotAllowed));

    let mut request = session_request(5);
    request.vmpl = 1;
    let ev = sim.evidence(&request).expect("evidence");
    assert_eq!(
        verify(&ev, &policy_trusting(&sim), now()),
        Err(VerifyError::VmplNotAllowed { vmpl: 1 })
    );
    let mut p = policy_trusting(&sim);
    p.allowed_vmpls = Allowed::Any;
    assert!(verify(&ev, &p, now()).is_ok());
}

#[test]
fn certificates_expire() {
    let sim = sim(Product::Milan);
    let ev = sim.evidence(&session_request(5)).expect("evidence");
    let later = now() + Duration::from_secs(86_400 * 365 * 26);
    assert!(matches!(
        verify(&ev, &policy_trusting(&sim), later),
        Err(VerifyError::CertificateExpired { which: "ARK", .. })
    ));
    let earlier = now() - Duration::from_secs(86_400 * 2);
    assert!(matches!(
        verify(&ev, &policy_trusting(&sim), earlier),
        Err(VerifyError::CertificateNotYetValid { which: "ARK", .. })
    ));
}

#[test]
fn only_versions_3_and_5() {
    let sim = sim(Product::Milan);
    for version in [0, 1, 2, 4, 6] {
        assert_eq!(
            sim.report(&session_request(version)),
            Err(SimError::UnsupportedVersion(version))
        );
    }
    let mut config = SimConfig::new(Product::Turin, now());
    config.tcb.fmc = None;
    assert!(matches!(
        Simulator::new(&config),
        Err(SimError::InvalidTcb { .. })
    ));
}

/// The report's bytes follow AMD's layout, checked here independently of the verifier's
/// parser, including the signature with p384 and sha2 directly.
#[test]
fn report_layout_and_signature() {
    use p384::ecdsa::signature::hazmat::PrehashVerifier;
    use sha2::Digest;

    let sim = sim(Product::Genoa);
    for version in [3u32, 5] {
        let r = sim.report(&session_request(version)).expect("report");
        assert_eq!(r.len(), REPORT_SIZE);
        assert_eq!(r.len(), 1184);
        let u32_at = |o: usize| u32::from_le_bytes(r[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(r[o..o + 8].try_into().unwrap());
        assert_eq!(u32_at(0x00), version);
        assert_eq!(u64_at(0x08), 0x30000, "SMT allowed, reserved bit 17");
        assert_eq!(u32_at(0x30), 0, "VMPL");
        assert_eq!(u32_at(0x34), 1, "SIGNATURE_ALGO");
        assert_eq!(u32_at(0x48), 0, "KEY_INFO: VCEK");
        assert_eq!(u32_at(0x4C), 0, "reserved");
        assert_eq!(&r[0x50..0x90], &session_request(version).report_data);
        assert_eq!(&r[0x90..0xC0], &MEASUREMENT);
        assert_eq!(&r[0x160..0x180], &[0xFF; 32], "REPORT_ID_MA");
        // Genoa TCB_VERSION: [bl, tee, 0, 0, 0, 0, snp, ucode].
        let tcb = [10, 0, 0, 0, 0, 0, 25, 84];
        for (name, offset) in [
            ("CURRENT", 0x38),
            ("REPORTED", 0x180),
            ("COMMITTED", 0x1E0),
            ("LAUNCH", 0x1F0),
        ] {
            assert_eq!(r[offset..offset + 8], tcb, "{name}_TCB");
        }
        assert_eq!(&r[0x188..0x18B], &[0x19, 0x11, 0x01], "CPUID");
        assert!(r[0x18B..0x1A0].iter().all(|&b| b == 0), "reserved");
        assert_eq!(&r[0x1A0..0x1E0], sim.chip_id());
        assert!(
            r[0x1F8..0x2A0].iter().all(|&b| b == 0),
            "reserved, mit vectors"
        );
        assert!(r[0x2A0 + 48..0x2E8].iter().all(|&b| b == 0), "R padding");
        assert!(r[0x2E8 + 48..0x330].iter().all(|&b| b == 0), "S padding");
        assert!(r[0x330..].iter().all(|&b| b == 0), "signature reserved");

        let be = |le: &[u8]| -> [u8; 48] {
            let mut out = [0u8; 48];
            for (d, s) in out.iter_mut().zip(le.iter().rev()) {
                *d = *s;
            }
            out
        };
        let sig = p384::ecdsa::Signature::from_scalars(be(&r[0x2A0..0x2D0]), be(&r[0x2E8..0x318]))
            .expect("scalars");
        let cert = x509_parser::parse_x509_certificate(sim.vcek_der())
            .expect("VCEK")
            .1;
        let key =
            p384::ecdsa::VerifyingKey::from_sec1_bytes(&cert.public_key().subject_public_key.data)
                .expect("key");
        let digest = sha2::Sha384::digest(&r[..0x2A0]);
        key.verify_prehash(&digest, &sig).expect("signature");

        let parsed = AttestationReport::parse(&r).expect("parse");
        assert_eq!(parsed.version, version);
        assert!(parsed.policy.reserved_bit17() && parsed.policy.smt_allowed());
        assert!(!parsed.policy.debug() && !parsed.policy.migrate_ma());
    }
}

/// The certificates look like AMD's, with the simulator's marker.
#[test]
fn certificate_shape() {
    use x509_parser::prelude::*;

    for product in [Product::Milan, Product::Genoa, Product::Turin] {
        let sim = sim(product);
        let ark = parse_x509_certificate(sim.ark_der()).expect("ARK").1;
        let ask = parse_x509_certificate(sim.ask_der()).expect("ASK").1;
        let vcek = parse_x509_certificate(sim.vcek_der()).expect("VCEK").1;
        let cn = |n: &X509Name<'_>| {
            n.iter_common_name()
                .next()
                .and_then(|c| c.as_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(cn(ark.subject()), format!("ARK-{}", product.name()));
        assert_eq!(cn(ark.issuer()), format!("ARK-{}", product.name()));
        assert_eq!(cn(ask.subject()), format!("SEV-{}", product.name()));
        assert_eq!(cn(ask.issuer()), format!("ARK-{}", product.name()));
        assert_eq!(cn(vcek.subject()), "SEV-VCEK");
        assert_eq!(cn(vcek.issuer()), format!("SEV-{}", product.name()));
        for cert in [&ark, &ask, &vcek] {
            let o = cert.subject().iter_organization().next().unwrap();
            let ou = cert.subject().iter_organizational_unit().next().unwrap();
            assert!(o.as_str().unwrap().contains(SIMULATED_MARKER));
            assert!(ou.as_str().unwrap().contains(SIMULATED_MARKER));
            assert_eq!(cert.version(), X509Version::V3);
            assert_eq!(
                cert.signature_algorithm.algorithm.to_id_string(),
                "1.2.840.10045.4.3.3"
            );
        }
        assert!(ark.is_ca() && ask.is_ca() && !vcek.is_ca());
        assert_eq!(vcek.raw_serial(), &[0]);
        let ext = |suffix: &str| {
            let oid = format!("1.3.6.1.4.1.3704.1.{suffix}");
            vcek.extensions()
                .iter()
                .find(|e| e.oid.to_id_string() == oid)
                .map(|e| e.value.to_vec())
        };
        let hw_len = if product == Product::Turin { 8 } else { 64 };
        assert_eq!(ext("4").as_deref(), Some(&sim.chip_id()[..hw_len]));
        assert_eq!(ext("3.9").is_some(), product == Product::Turin);
        let tcb = sim.tcb();
        assert_eq!(ext("3.1"), Some(vec![0x02, 0x01, tcb.bootloader]));
        assert_eq!(ext("3.3"), Some(vec![0x02, 0x01, tcb.snp]));
        let name = ext("2").expect("productName");
        assert_eq!(name[0], 0x16, "IA5String");
    }
}

/// Evidence of `sim` whose report was changed by `edit` and then signed again with the
/// simulator's VCEK: a forged, validly signed report.
fn forged(sim: &Simulator, version: u32, edit: impl FnOnce(&mut [u8])) -> Evidence {
    let mut ev = sim.evidence(&session_request(version)).expect("evidence");
    edit(&mut ev.report);
    sim.resign(&mut ev.report).expect("re-sign");
    ev
}

/// Issue 11, class 2: with KEY_INFO.MASK_CHIP_KEY set the chip id is not compared with the
/// VCEK's hwID, so CHIP_ID must be all zero, as the firmware writes it; a signed report
/// that claims a masked chip key and still carries a chip id is refused.
#[test]
fn masked_chip_id_must_be_zero() {
    for product in [Product::Milan, Product::Turin] {
        let sim = sim(product);
        let p = policy_trusting(&sim);
        // Masked, CHIP_ID zero: the genuine shape, accepted.
        let ok = forged(&sim, 5, |r| {
            r[0x48] |= 2;
            r[0x1A0..0x1E0].fill(0);
        });
        let v = verify(&ok, &p, now()).unwrap_or_else(|e| panic!("{product}: {e}"));
        assert!(v.report.key_info.mask_chip_key());
        assert_eq!(v.chip_id(), &[0u8; 64]);
        // Masked, but the chip id kept (or any other value): refused.
        let kept = forged(&sim, 5, |r| r[0x48] |= 2);
        assert_eq!(
            verify(&kept, &p, now()),
            Err(VerifyError::MaskedChipIdNotZero)
        );
        let other = forged(&sim, 5, |r| {
            r[0x48] |= 2;
            r[0x1A0..0x1E0].fill(0);
            r[0x1DF] = 1;
        });
        assert_eq!(
            verify(&other, &p, now()),
            Err(VerifyError::MaskedChipIdNotZero)
        );
    }
}

/// Issue 11, class 4: every reserved byte and bit of the signed area must be zero (POLICY
/// bit 17 one), per version, even when the report is validly signed.
#[test]
fn reserved_fields_must_be_zero_even_when_signed() {
    let milan = sim(Product::Milan);
    let p = policy_trusting(&milan);
    let reserved_byte = |version: u32, offset: usize| {
        verify(&forged(&milan, version, |r| r[offset] = 0x01), &p, now())
    };
    for (offset, field) in [
        (0x04C, "reserved after KEY_INFO"),
        (0x04F, "reserved after KEY_INFO"),
        (0x18B, "reserved after CPUID"),
        (0x19F, "reserved after CPUID"),
        (0x1EB, "reserved after CURRENT_VERSION"),
        (0x1EF, "reserved after COMMITTED_VERSION"),
        (0x208, "reserved before the signature"),
        (0x29F, "reserved before the signature"),
    ] {
        for version in [3, 5] {
            assert_eq!(
                reserved_byte(version, offset),
                Err(VerifyError::ReservedNotZero { field, offset }),
                "v{version} {offset:#x}"
            );
        }
    }
    // The mitigation vectors exist from version 5 on; before, they are reserved.
    assert_eq!(
        reserved_byte(3, 0x1F8),
        Err(VerifyError::ReservedNotZero {
            field: "mitigation vectors (absent before version 5)",
            offset: 0x1F8
        })
    );
    assert!(reserved_byte(5, 0x1F8).is_ok(), "LAUNCH_MIT_VECTOR in v5");
    assert!(reserved_byte(5, 0x200).is_ok(), "CURRENT_MIT_VECTOR in v5");
    // CPUID exists from version 3 on: a version-2 report must have it zero.
    let v2 = forged(&milan, 3, |r| r[0] = 2);
    assert_eq!(
        verify(&v2, &p, now()),
        Err(VerifyError::ReservedNotZero {
            field: "CPUID (absent before version 3)",
            offset: 0x188
        })
    );
    // Reserved bits of KEY_INFO (31:5), POLICY (63:26) and PLATFORM_INFO (63:8).
    let bits =
        |offset: usize, value: u8| verify(&forged(&milan, 5, |r| r[offset] |= value), &p, now());
    assert_eq!(
        bits(0x48, 0x20),
        Err(VerifyError::ReservedBitsSet {
            field: "KEY_INFO",
            bits: 0x20
        })
    );
    assert_eq!(
        bits(0x0B, 0x04),
        Err(VerifyError::ReservedBitsSet {
            field: "POLICY",
            bits: 1 << 26
        })
    );
    assert_eq!(
        bits(0x0F, 0x80),
        Err(VerifyError::ReservedBitsSet {
            field: "POLICY",
            bits: 1 << 63
        })
    );
    assert_eq!(
        bits(0x41, 0x01),
        Err(VerifyError::ReservedBitsSet {
            field: "PLATFORM_INFO",
            bits: 1 << 8
        })
    );
    // POLICY bit 17 must be one.
    let clear17 = forged(&milan, 5, |r| r[0x0A] &= !0x02);
    assert_eq!(
        verify(&clear17, &p, now()),
        Err(VerifyError::GuestPolicyBit17Clear)
    );
    // Reserved bytes of every TCB_VERSION: Milan/Genoa 2..=5, Turin 4..=6.
    for (product, reserved, used) in [
        (Product::Milan, 2..=5, vec![0, 1, 6, 7]),
        (Product::Turin, 4..=6, vec![0, 1, 2, 3, 7]),
    ] {
        let s = sim(product);
        let p = policy_trusting(&s);
        for (tcb, base) in [
            ("current", 0x38),
            ("committed", 0x1E0),
            ("launch", 0x1F0),
            ("reported", 0x180),
        ] {
            for byte in reserved.clone() {
                let ev = forged(&s, 5, |r| r[base + byte] = 1);
                assert_eq!(
                    verify(&ev, &p, now()),
                    Err(VerifyError::TcbReservedNotZero { tcb, product, byte }),
                    "{product} {tcb} byte {byte}"
                );
            }
            // A used byte of another TCB than REPORTED is not a structural error.
            if tcb != "reported" {
                for &byte in &used {
                    let ev = forged(&s, 5, |r| r[base + byte] = r[base + byte].wrapping_add(1));
                    assert!(
                        !matches!(
                            verify(&ev, &p, now()),
                            Err(VerifyError::TcbReservedNotZero { .. })
                        ),
                        "{product} {tcb} byte {byte}"
                    );
                }
            }
        }
    }
}

/// Issue 11, class 5: LAUNCH_TCB is held to the policy's minimum TCB like the others.
#[test]
fn launch_tcb_is_checked_against_the_minimum() {
    let sim = sim(Product::Genoa);
    let mut p = policy_trusting(&sim);
    p.minimum_tcb = vec![cloister_verifier::MinimumTcb {
        product: Product::Genoa,
        tcb: sim.tcb(),
    }];
    let ev = sim.evidence(&session_request(5)).expect("evidence");
    verify(&ev, &p, now()).expect("at the minimum");
    // Launched on an older SNP firmware (Genoa LAUNCH_TCB byte 6 is SNP).
    let old_launch = forged(&sim, 5, |r| r[0x1F0 + 6] -= 1);
    assert_eq!(
        verify(&old_launch, &p, now()),
        Err(VerifyError::TcbTooLow {
            tcb: "launch",
            field: "snp",
            minimum: sim.tcb().snp,
            actual: sim.tcb().snp - 1
        })
    );
    // Without a minimum it is accepted.
    p.minimum_tcb.clear();
    verify(&old_launch, &p, now()).expect("no minimum");
}

fn sim_with(product: Product, extra: Vec<cloister_snp_sim::ExtraExtension>) -> Simulator {
    let mut config = SimConfig::new(product, now());
    config.extra_extensions = extra;
    Simulator::new(&config).expect("simulator")
}

fn ext(
    certificate: &'static str,
    oid: &[u64],
    critical: bool,
    value: &[u8],
) -> cloister_snp_sim::ExtraExtension {
    cloister_snp_sim::ExtraExtension {
        certificate,
        oid: oid.to_vec(),
        critical,
        value: value.to_vec(),
    }
}

/// Issue 11, class 6: RFC 5280 section 4.2 on every certificate of the chain. A second
/// instance of an extension (here a second productName in the VCEK, which used to win
/// silently) and an unrecognised critical extension are refused; an unknown non-critical
/// extension is ignored.
#[test]
fn duplicated_or_unknown_critical_extensions_are_refused() {
    const PRODUCT_NAME: [u64; 9] = [1, 3, 6, 1, 4, 1, 3704, 1, 2];
    let milan_b0 = b"\x16\x08Milan-B0";
    let cases = [
        (
            ext("VCEK", &PRODUCT_NAME, false, milan_b0),
            "VCEK",
            "1.3.6.1.4.1.3704.1.2",
            "more than once",
        ),
        (
            ext("VCEK", &[1, 2, 3, 4], true, b"\x05\x00"),
            "VCEK",
            "1.2.3.4",
            "critical and not recognised",
        ),
        (
            ext("ASK", &[1, 2, 3, 4], true, b"\x05\x00"),
            "ASK",
            "1.2.3.4",
            "critical and not recognised",
        ),
        (
            ext("ARK", &[2, 5, 29, 19], false, b"\x30\x03\x01\x01\xff"),
            "ARK",
            "2.5.29.19",
            "more than once",
        ),
    ];
    for (extra, which, oid, reason) in cases {
        let sim = sim_with(Product::Milan, vec![extra]);
        let ev = sim.evidence(&session_request(5)).expect("evidence");
        match verify(&ev, &policy_trusting(&sim), now()) {
            Err(VerifyError::CertificateExtension {
                which: w,
                oid: o,
                reason: r,
            }) => {
                assert_eq!((w, o.as_str()), (which, oid));
                assert!(r.contains(reason), "{r}");
            }
            other => panic!("{which} {oid}: {other:?}"),
        }
    }
    // Unknown but not critical: ignored, as RFC 5280 allows.
    let sim = sim_with(
        Product::Milan,
        vec![ext("VCEK", &[1, 2, 3, 4], false, b"\x05\x00")],
    );
    let ev = sim.evidence(&session_request(5)).expect("evidence");
    verify(&ev, &policy_trusting(&sim), now()).expect("non-critical unknown extension");
}

/// Issue 11, class 10: with several trusted roots for the product and no ARK in the
/// evidence, the error is the failure of the root the evidence claims (by the
/// intermediate's issuer), not that of the first root tried (AMD's, with two equal names
/// in its message); when several roots could be claimed, each failure is listed under a
/// distinct name.
#[test]
fn several_roots_report_the_failure_of_the_root_the_evidence_claims() {
    let a = sim(Product::Milan);
    let b = sim(Product::Milan);
    let c = sim(Product::Milan);
    let mut p = policy_trusting(&a);
    p.trusted_roots.add(TrustedRoot::new_ecdsa_p384(
        Product::Milan,
        b.ark_der().to_vec(),
    ));
    // B's report and ASK, but C's VCEK (another chip's), and no ARK.
    let mut ev = b.evidence(&session_request(5)).expect("evidence");
    ev.ark_der = None;
    ev.vek_der = c.vcek_der().to_vec();
    let err = verify(&ev, &p, now()).expect_err("C's VCEK is not certified by B's ASK");
    let text = err.to_string();
    assert!(
        !text.contains("RSASSA-PSS"),
        "AMD's root was blamed: {text}"
    );
    match &err {
        VerifyError::NoRootVerifies { product, failures } => {
            assert_eq!(*product, Product::Milan);
            assert_eq!(failures.len(), 2, "{text}");
            assert_ne!(failures[0].root, failures[1].root, "{text}");
            // A fails at its own link to B's ASK; B (the claimed root) at the VCEK.
            assert!(matches!(
                *failures[0].error,
                VerifyError::ChainInvalid {
                    link: "ARK->ASK",
                    ..
                }
            ));
            assert!(matches!(
                *failures[1].error,
                VerifyError::ChainInvalid {
                    link: "ASK->VCEK",
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
    // With only one root claimed, its own error is returned as is.
    let mut single = Policy::for_measurements(vec![MEASUREMENT]);
    single.trusted_roots.add(TrustedRoot::new_ecdsa_p384(
        Product::Milan,
        b.ark_der().to_vec(),
    ));
    single.report_data = p.report_data.clone();
    assert!(matches!(
        verify(&ev, &single, now()),
        Err(VerifyError::ChainInvalid {
            link: "ASK->VCEK",
            ..
        })
    ));
    // And B's own evidence without ARK verifies although A is tried too.
    let mut ok = b.evidence(&session_request(5)).expect("evidence");
    ok.ark_der = None;
    verify(&ok, &p, now()).expect("B's evidence");
}
