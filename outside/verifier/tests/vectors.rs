//! Verification of the real SNP reports in `shared/vectors/snp/` against EXPECTED.json, and
//! the negative cases listed in its README.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloister_verifier::*;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/snp")
}

fn read(rel: &str) -> Vec<u8> {
    let path = dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A report file; `.hex` files are hex text.
fn read_report(rel: &str) -> Vec<u8> {
    let bytes = read(rel);
    if rel.ends_with(".hex") {
        let text: String = String::from_utf8(bytes)
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        hex::decode(text).unwrap()
    } else {
        bytes
    }
}

/// A certificate file: DER, or the first PEM block.
fn read_cert(rel: &str) -> Vec<u8> {
    let bytes = read(rel);
    if bytes.starts_with(b"-----BEGIN") {
        certificates_from_pem(&bytes).unwrap().remove(0)
    } else {
        bytes
    }
}

/// 2025-09-01T00:00:00Z: inside the validity of every VCEK and of the VLEK.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_756_684_800)
}

/// 2026-01-01T00:00:00Z: after the VLEK expired.
fn after_vlek_expiry() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn expected() -> Vec<Value> {
    let v: Value = serde_json::from_slice(&read("EXPECTED.json")).unwrap();
    v["reports"].as_array().unwrap().clone()
}

/// Accept everything about the guest configuration: used to check authenticity alone.
fn permissive() -> Policy {
    let mut p = Policy::default();
    p.allow_debug = true;
    p.allowed_vmpls = Allowed::Any;
    p
}

fn evidence(report: &str, vek: &str) -> Evidence {
    Evidence {
        report: read_report(report),
        vek_der: read_cert(vek),
        intermediate_der: None,
        ark_der: None,
    }
}

fn hexs(b: &[u8]) -> String {
    hex::encode(b)
}

fn int(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap(),
        other => panic!("not an integer: {other}"),
    }
}

fn check_tcb(name: &str, raw: &RawTcb, tcb: &Tcb, exp: &Value) {
    assert_eq!(hexs(&raw.0), exp["raw"].as_str().unwrap(), "{name} raw");
    assert_eq!(u64::from(tcb.bootloader), int(&exp["bl"]), "{name} bl");
    assert_eq!(u64::from(tcb.tee), int(&exp["tee"]), "{name} tee");
    assert_eq!(u64::from(tcb.snp), int(&exp["snp"]), "{name} snp");
    assert_eq!(u64::from(tcb.microcode), int(&exp["ucode"]), "{name} ucode");
    assert_eq!(
        tcb.fmc.map(u64::from),
        exp.get("fmc").map(int),
        "{name} fmc"
    );
}

fn product_of(generation: &str) -> Product {
    match generation {
        "milan" => Product::Milan,
        "genoa" => Product::Genoa,
        "turin" => Product::Turin,
        g => panic!("unknown generation {g}"),
    }
}

#[test]
fn every_report_verifies_as_expected() {
    let all = expected();
    assert_eq!(all.len(), 10);
    for exp in &all {
        let name = exp["report"].as_str().unwrap();
        assert_eq!(exp["report_signature_valid"], Value::Bool(true), "{name}");
        let ev = evidence(name, exp["vek"].as_str().unwrap());
        let v = verify(&ev, &permissive(), now()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let f = &exp["fields"];
        let r = &v.report;

        assert_eq!(
            v.product,
            product_of(exp["generation"].as_str().unwrap()),
            "{name}"
        );
        let issuer = exp["issuer"].as_str().unwrap();
        assert_eq!(v.signer().intermediate_name(), issuer, "{name}");
        assert_eq!(u64::from(r.version), int(&f["version"]), "{name}");
        assert_eq!(u64::from(r.guest_svn), int(&f["guest_svn"]), "{name}");
        assert_eq!(r.policy.0, int(&f["policy"]), "{name}");
        assert_eq!(hexs(&r.family_id), f["family_id"], "{name}");
        assert_eq!(hexs(&r.image_id), f["image_id"], "{name}");
        assert_eq!(u64::from(r.vmpl), int(&f["vmpl"]), "{name}");
        assert_eq!(u64::from(r.signature_algo), int(&f["sig_algo"]), "{name}");
        assert_eq!(r.platform_info.0, int(&f["platform_info"]), "{name}");
        assert_eq!(u64::from(r.key_info.0), int(&f["key_info"]), "{name}");
        assert_eq!(hexs(v.report_data()), f["report_data"], "{name}");
        assert_eq!(hexs(v.measurement()), f["measurement"], "{name}");
        assert_eq!(hexs(&r.host_data), f["host_data"], "{name}");
        assert_eq!(hexs(&r.id_key_digest), f["id_key_digest"], "{name}");
        assert_eq!(hexs(&r.author_key_digest), f["author_key_digest"], "{name}");
        assert_eq!(hexs(&r.report_id), f["report_id"], "{name}");
        assert_eq!(hexs(&r.report_id_ma), f["report_id_ma"], "{name}");
        assert_eq!(hexs(v.chip_id()), f["chip_id"], "{name}");
        let fw = |x: &FirmwareVersion| hexs(&[x.build, x.minor, x.major]);
        assert_eq!(
            fw(&r.current_version),
            f["current_build_minor_major"],
            "{name}"
        );
        assert_eq!(
            fw(&r.committed_version),
            f["committed_build_minor_major"],
            "{name}"
        );
        match r.cpuid {
            Some(c) => {
                assert_eq!(u64::from(c.family), int(&f["cpuid_fam_id"]), "{name}");
                assert_eq!(u64::from(c.model), int(&f["cpuid_mod_id"]), "{name}");
                assert_eq!(u64::from(c.stepping), int(&f["cpuid_step"]), "{name}");
                assert_eq!(
                    r.product_from_cpuid().map(Product::name),
                    f["gen_from_report"].as_str(),
                    "{name}"
                );
            }
            None => assert!(r.version == 2 && f.get("cpuid_fam_id").is_none(), "{name}"),
        }
        assert_eq!(
            r.launch_mit_vector,
            f.get("launch_mit_vector").map(int),
            "{name}"
        );
        assert_eq!(
            r.current_mit_vector,
            f.get("current_mit_vector").map(int),
            "{name}"
        );
        check_tcb("current", &r.current_tcb, &v.current_tcb, &f["current_tcb"]);
        check_tcb(
            "reported",
            &r.reported_tcb,
            &v.reported_tcb,
            &f["reported_tcb"],
        );
        check_tcb(
            "committed",
            &r.committed_tcb,
            &v.committed_tcb,
            &f["committed_tcb"],
        );
        check_tcb("launch", &r.launch_tcb, &v.launch_tcb, &f["launch_tcb"]);
        assert_eq!(hexs(&r.signature_r), f["sig_r_le"], "{name}");
        assert_eq!(hexs(&r.signature_s), f["sig_s_le"], "{name}");

        // The endorsement key's extensions and validity.
        let x = &exp["vek_extensions"];
        let e = &v.vek.extensions;
        assert_eq!(
            e.struct_version.map(u64::from),
            x.get("structVersion").map(int),
            "{name}"
        );
        assert_eq!(
            e.product_name.as_deref(),
            x["productName"].as_str(),
            "{name}"
        );
        assert_eq!(u64::from(e.tcb.bootloader), int(&x["blSPL"]), "{name}");
        assert_eq!(u64::from(e.tcb.tee), int(&x["teeSPL"]), "{name}");
        assert_eq!(u64::from(e.tcb.snp), int(&x["snpSPL"]), "{name}");
        assert_eq!(u64::from(e.tcb.microcode), int(&x["ucodeSPL"]), "{name}");
        assert_eq!(e.tcb.fmc.map(u64::from), x.get("fmcSPL").map(int), "{name}");
        assert_eq!(
            e.hw_id.as_deref().map(hexs),
            x.get("hwID").map(|h| h.as_str().unwrap().to_string()),
            "{name}"
        );
        if let Some(csp) = x.get("csp_id") {
            // The IA5String itself reads "CN=<name>".
            assert_eq!(e.csp_id.as_deref(), csp.as_str(), "{name}");
        }
        assert_eq!(
            exp["reported_tcb_equals_vek_spl"],
            Value::Bool(true),
            "{name}"
        );
        assert_eq!(v.reported_tcb, e.tcb, "{name}");
    }
}

#[test]
fn reports_verify_with_explicit_intermediates_and_ark() {
    // Every KDS-style chain file: (report, vek, PEM with intermediate then ARK).
    let cases = [
        (
            "virtee-sev/report_milan.bin",
            "virtee-sev/vcek_milan.der",
            "virtee-sev/cert_chain_milan",
        ),
        (
            "trustee/test-report.bin",
            "trustee/test-vcek.der",
            "go-sev-guest/ask_ark_milan.pem",
        ),
        (
            "go-sev-guest/attestation.bin",
            "go-sev-guest/vcek.testcer",
            "go-sev-guest/milan.testcer",
        ),
        (
            "trustee/test-vlek-report.bin",
            "trustee/test-vlek.der",
            "go-sev-guest/milanvlek.testcer",
        ),
        (
            "oak/genoa_report.bin",
            "oak/genoa_vcek.der",
            "go-sev-guest/ask_ark_genoa.pem",
        ),
        (
            "oak/turin_report.bin",
            "oak/turin_vcek.der",
            "virtee-sev/cert_chain_turin",
        ),
    ];
    for (report, vek, chain) in cases {
        let certs = certificates_from_pem(&read(chain)).unwrap();
        let mut ev = evidence(report, vek);
        ev.intermediate_der = Some(certs[0].clone());
        ev.ark_der = Some(certs[1].clone());
        verify(&ev, &permissive(), now()).unwrap_or_else(|e| panic!("{report}: {e}"));
    }
}

#[test]
fn debug_report_is_rejected_by_default_policy() {
    let ev = evidence("go-sev-guest/attestation.bin", "go-sev-guest/vcek.testcer");
    assert_eq!(
        verify(&ev, &Policy::default(), now()),
        Err(VerifyError::DebugPolicy)
    );
    assert!(verify(&ev, &permissive(), now()).is_ok());
}

#[test]
fn default_policy_accepts_production_reports() {
    for exp in expected() {
        let name = exp["report"].as_str().unwrap();
        if name.starts_with("go-sev-guest") {
            continue;
        }
        let ev = evidence(name, exp["vek"].as_str().unwrap());
        let result = verify(&ev, &Policy::default(), now());
        if int(&exp["fields"]["vmpl"]) == 0 {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            // The AWS VLEK report was taken at VMPL 1: only VMPL 0 is allowed by default.
            assert_eq!(
                result.unwrap_err(),
                VerifyError::VmplNotAllowed { vmpl: 1 },
                "{name}"
            );
        }
    }
}

#[test]
fn virtee_flipped_report_byte_fails_signature() {
    let mut ev = evidence("virtee-sev/report_milan.hex", "virtee-sev/vcek_milan.der");
    ev.report[21] ^= 0x80;
    assert_eq!(
        verify(&ev, &permissive(), now()),
        Err(VerifyError::ReportSignatureInvalid)
    );
}

#[test]
fn virtee_flipped_vcek_byte_fails_chain() {
    let mut ev = evidence("virtee-sev/report_milan.bin", "virtee-sev/vcek_milan.der");
    ev.vek_der[40] ^= 0xff;
    let err = verify(&ev, &permissive(), now()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChainInvalid {
                link: "ASK->VCEK",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn trustee_report_byte_42_fails_signature() {
    let mut ev = evidence("trustee/test-report.bin", "trustee/test-vcek.der");
    ev.report[42] = ev.report[42].wrapping_add(1);
    assert_eq!(
        verify(&ev, &permissive(), now()),
        Err(VerifyError::ReportSignatureInvalid)
    );
}

#[test]
fn trustee_reported_tcb_change_fails() {
    let mut ev = evidence("trustee/test-report.bin", "trustee/test-vcek.der");
    ev.report[384] = ev.report[384].wrapping_add(1);
    // REPORTED_TCB is signed, so the full verification stops at the signature...
    assert_eq!(
        verify(&ev, &permissive(), now()),
        Err(VerifyError::ReportSignatureInvalid)
    );
    // ...and the TCB binding check on its own names the field.
    let report = AttestationReport::parse(&ev.report).unwrap();
    let vek = verify_chain(
        &TrustedRoots::amd(),
        None,
        None,
        &ev.vek_der,
        Product::Milan,
        EndorsementKind::Vcek,
        now(),
    )
    .unwrap();
    assert_eq!(
        check_report_matches_vek(&report, &vek),
        Err(VerifyError::TcbMismatch {
            field: "bootloader",
            reported: 4,
            certified: 3
        })
    );
}

#[test]
fn chip_id_mismatch_is_detected() {
    let ev = evidence("trustee/test-report.bin", "trustee/test-vcek.der");
    let mut bytes = ev.report.clone();
    bytes[0x1A0] ^= 1;
    let report = AttestationReport::parse(&bytes).unwrap();
    let vek = verify_chain(
        &TrustedRoots::amd(),
        None,
        None,
        &ev.vek_der,
        Product::Milan,
        EndorsementKind::Vcek,
        now(),
    )
    .unwrap();
    assert_eq!(
        check_report_matches_vek(&report, &vek),
        Err(VerifyError::ChipIdMismatch)
    );
}

#[test]
fn trustee_vcek_byte_42_fails_chain() {
    let mut ev = evidence("trustee/test-report.bin", "trustee/test-vcek.der");
    ev.vek_der[42] = ev.vek_der[42].wrapping_add(1);
    let err = verify(&ev, &permissive(), now()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChainInvalid {
                link: "ASK->VCEK",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn vcek_does_not_verify_through_asvk() {
    let vcek = read_cert("trustee/test-vcek.der");
    let asvk = certificates_from_pem(&read("trustee/milan_ask_ark_asvk.pem")).unwrap()[2].clone();
    // As a VCEK under the ASVK: the intermediate is not an ASK.
    let err = verify_chain(
        &TrustedRoots::amd(),
        None,
        Some(&asvk),
        &vcek,
        Product::Milan,
        EndorsementKind::Vcek,
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, VerifyError::WrongCertificateKind { which: "ASK", .. }),
        "{err:?}"
    );
    // As a VLEK under the ASVK: the ASVK did not sign it.
    let err = verify_chain(
        &TrustedRoots::amd(),
        None,
        Some(&asvk),
        &vcek,
        Product::Milan,
        EndorsementKind::Vlek,
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChainInvalid {
                link: "ASVK->VLEK",
                ..
            }
        ),
        "{err:?}"
    );
    // A report that claims a VLEK but carries a VCEK is rejected.
    let mut ev = evidence("trustee/test-report.bin", "trustee/test-vcek.der");
    ev.report[0x48] |= 1 << 2;
    let err = verify(&ev, &permissive(), now()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChainInvalid {
                link: "ASVK->VLEK",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn invalid_vcek_fixtures_fail_chain() {
    for f in [
        "trustee/test-vcek-invalid-legacy.der",
        "trustee/test-vcek-invalid-new.der",
    ] {
        let der = read_cert(f);
        assert_eq!(product_from_vek(&der), Some(Product::Milan), "{f}");
        let err = verify_chain(
            &TrustedRoots::amd(),
            None,
            None,
            &der,
            Product::Milan,
            EndorsementKind::Vcek,
            now(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::ChainInvalid {
                    link: "ASK->VCEK",
                    ..
                }
            ),
            "{f}: {err:?}"
        );
    }
}

#[test]
fn vlek_verifies_through_asvk_until_expiry() {
    let ev = evidence("trustee/test-vlek-report.bin", "trustee/test-vlek.der");
    let mut policy = Policy::default();
    policy.allowed_vmpls = Allowed::OneOf(vec![0, 1]);
    let v = verify(&ev, &policy, now()).unwrap();
    assert_eq!(v.signer(), EndorsementKind::Vlek);
    assert_eq!(v.report.vmpl, 1);
    assert_eq!(
        v.vek.extensions.csp_id.as_deref(),
        Some("CN=cc-us-east-2.amazonaws.com")
    );
    assert!(v.report.key_info.mask_chip_key() || v.chip_id().iter().all(|&b| b == 0));
    assert_eq!(
        verify(&ev, &policy, after_vlek_expiry()),
        Err(VerifyError::CertificateExpired {
            which: "VLEK",
            not_after: 1_765_404_861,
            now: 1_767_225_600
        })
    );
    let mut no_vlek = policy.clone();
    no_vlek.allow_vlek = false;
    assert_eq!(
        verify(&ev, &no_vlek, now()),
        Err(VerifyError::VlekNotAllowed)
    );
}

#[test]
fn vcek_not_yet_valid() {
    let ev = evidence("oak/genoa_report.bin", "oak/genoa_vcek.der");
    let early = UNIX_EPOCH + Duration::from_secs(1_735_689_600); // 2025-01-01
    let err = verify(&ev, &permissive(), early).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::CertificateNotYetValid { which: "VCEK", .. }
        ),
        "{err:?}"
    );
}

#[test]
fn turin_chain_only() {
    let der = read_cert("virtee-sev/vcek_turin.der");
    assert_eq!(product_from_vek(&der), Some(Product::Turin));
    let v = verify_chain(
        &TrustedRoots::amd(),
        None,
        None,
        &der,
        Product::Turin,
        EndorsementKind::Vcek,
        now(),
    )
    .unwrap();
    assert_eq!(v.extensions.hw_id.as_ref().map(Vec::len), Some(8));
    assert!(v.extensions.tcb.fmc.is_some());
    // Against the wrong product's root it fails.
    assert!(verify_chain(
        &TrustedRoots::amd(),
        None,
        None,
        &der,
        Product::Genoa,
        EndorsementKind::Vcek,
        now()
    )
    .is_err());
}

#[test]
fn roots_are_never_implicit() {
    let ev = evidence("oak/milan_report.bin", "oak/milan_vcek.der");
    let mut p = Policy::default();
    p.trusted_roots = TrustedRoots::empty();
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::NoTrustedRoot {
            product: Product::Milan
        })
    );

    // An ARK in the evidence that is not a trusted root is refused, even a genuine AMD one
    // for another product.
    let genoa_ark = certificates_from_pem(&read("virtee-sev/builtin_genoa_ark.pem"))
        .unwrap()
        .remove(0);
    let mut ev2 = ev.clone();
    ev2.ark_der = Some(genoa_ark.clone());
    assert_eq!(
        verify(&ev2, &Policy::default(), now()),
        Err(VerifyError::UntrustedRoot {
            product: Product::Milan
        })
    );

    // A root must be added explicitly; a wrong one (Genoa's ARK registered as Milan) fails
    // at the ARK->ASK link.
    let mut p = Policy::default();
    p.trusted_roots = TrustedRoots::empty().with(TrustedRoot::new(Product::Milan, genoa_ark));
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::MissingIntermediate { which: "ASK" })
    );
    let mut ev3 = ev.clone();
    ev3.intermediate_der = Some(
        certificates_from_pem(&read("virtee-sev/builtin_milan_ask.pem"))
            .unwrap()
            .remove(0),
    );
    let err = verify(&ev3, &p, now()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChainInvalid {
                link: "ARK->ASK",
                ..
            }
        ),
        "{err:?}"
    );

    // An explicitly added genuine root works.
    let milan_ark = certificates_from_pem(&read("virtee-sev/builtin_milan_ark.pem"))
        .unwrap()
        .remove(0);
    p.trusted_roots = TrustedRoots::empty().with(TrustedRoot::new(Product::Milan, milan_ark));
    assert!(verify(&ev3, &p, now()).is_ok());
}

#[test]
fn wrong_vek_fails_signature() {
    // A genuine, valid Milan VCEK that did not sign this report.
    let ev = evidence("oak/milan_report.bin", "trustee/test-vcek.der");
    assert_eq!(
        verify(&ev, &permissive(), now()),
        Err(VerifyError::ReportSignatureInvalid)
    );
    // A Genoa VCEK for a Milan (v3, CPUID) report.
    let ev = evidence("oak/milan_report.bin", "oak/genoa_vcek.der");
    assert_eq!(
        verify(&ev, &permissive(), now()),
        Err(VerifyError::ProductMismatch {
            report: Product::Milan,
            certificate: Product::Genoa
        })
    );
}

#[test]
fn stepping_expectation() {
    let ev = evidence("go-sev-guest/attestation.bin", "go-sev-guest/vcek.testcer");
    let mut p = permissive();
    p.expected_product = Some(ExpectedProduct {
        product: Product::Milan,
        stepping: Some(0),
    });
    assert!(verify(&ev, &p, now()).is_ok());
    p.expected_product = Some(ExpectedProduct {
        product: Product::Milan,
        stepping: Some(12),
    });
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::SteppingMismatch {
            expected: 12,
            actual: Some(0)
        })
    );
    p.expected_product = Some(ExpectedProduct {
        product: Product::Genoa,
        stepping: None,
    });
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::ProductNotAllowed {
            expected: Product::Genoa,
            actual: Product::Milan
        })
    );
}

#[test]
fn policy_checks() {
    let ev = evidence("oak/turin_report.bin", "oak/turin_vcek.der");
    let v = verify(&ev, &Policy::default(), now()).unwrap();
    let m = *v.measurement();

    // Measurements.
    assert!(verify(&ev, &Policy::for_measurements(vec![m]), now()).is_ok());
    assert_eq!(
        verify(&ev, &Policy::for_measurements(vec![[0u8; 48]]), now()),
        Err(VerifyError::MeasurementNotAllowed {
            measurement: hexs(&m)
        })
    );

    // VMPL.
    let mut p = Policy::default();
    p.allowed_vmpls = Allowed::OneOf(vec![1, 2]);
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::VmplNotAllowed { vmpl: 0 })
    );

    // SMT, single socket.
    let mut p = Policy::default();
    p.allow_smt = false;
    assert_eq!(verify(&ev, &p, now()), Err(VerifyError::SmtNotAllowed));
    let mut p = Policy::default();
    p.require_single_socket = true;
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::SingleSocketRequired)
    );

    // Minimum TCB: Oak's reference values (fmc0 bl1 tee0 snp2 ucode71) pass, one more fails.
    let oak_min = Tcb {
        fmc: Some(0),
        bootloader: 1,
        tee: 0,
        snp: 2,
        microcode: 71,
    };
    let mut p = Policy::default();
    p.minimum_tcb = vec![MinimumTcb {
        product: Product::Turin,
        tcb: oak_min,
    }];
    assert!(verify(&ev, &p, now()).is_ok());
    p.minimum_tcb = vec![MinimumTcb {
        product: Product::Turin,
        tcb: Tcb { snp: 3, ..oak_min },
    }];
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::TcbTooLow {
            tcb: "reported",
            field: "snp",
            minimum: 3,
            actual: 2
        })
    );
    p.minimum_tcb = vec![MinimumTcb {
        product: Product::Turin,
        tcb: Tcb {
            fmc: Some(1),
            ..oak_min
        },
    }];
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::TcbTooLow {
            tcb: "reported",
            field: "fmc",
            minimum: 1,
            actual: 0
        })
    );
    // A minimum for another product does not apply.
    p.minimum_tcb = vec![MinimumTcb {
        product: Product::Genoa,
        tcb: Tcb { snp: 99, ..oak_min },
    }];
    assert!(verify(&ev, &p, now()).is_ok());

    // GUEST_SVN.
    let mut p = Policy::default();
    p.minimum_guest_svn = 1;
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::GuestSvnTooLow {
            minimum: 1,
            actual: 0
        })
    );

    // REPORT_DATA.
    let mut p = Policy::default();
    p.report_data = ReportDataExpectation::Exact(*v.report_data());
    assert!(verify(&ev, &p, now()).is_ok());
    p.report_data = ReportDataExpectation::Exact([0u8; 64]);
    assert_eq!(
        verify(&ev, &p, now()),
        Err(VerifyError::ReportDataMismatch {
            mode: BindingMode::Exact
        })
    );
}

#[test]
fn migration_agent_policy() {
    // Unsigned change, so check the policy step on its own.
    let ev = evidence("oak/genoa_report.bin", "oak/genoa_vcek.der");
    let v = verify(&ev, &Policy::default(), now()).unwrap();
    let mut report = v.report.clone();
    report.policy = GuestPolicy(report.policy.0 | 1 << 18);
    assert_eq!(
        check_policy(&report, &v.vek, &Policy::default()),
        Err(VerifyError::MigrationAgentPolicy)
    );
}

#[test]
fn malformed_reports() {
    let good = read_report("oak/genoa_report.bin");
    assert_eq!(
        AttestationReport::parse(&good[..1000]),
        Err(VerifyError::ReportLength {
            expected: 1184,
            actual: 1000
        })
    );
    for version in [0u32, 1, 6, 0xFFFF_FFFF] {
        let mut bad = good.clone();
        bad[..4].copy_from_slice(&version.to_le_bytes());
        assert_eq!(
            AttestationReport::parse(&bad),
            Err(VerifyError::UnsupportedReportVersion(version))
        );
    }
    let vek = read_cert("oak/genoa_vcek.der");
    let run = |report: Vec<u8>| {
        verify(
            &Evidence {
                report,
                vek_der: vek.clone(),
                ..Evidence::default()
            },
            &permissive(),
            now(),
        )
    };
    let mut bad = good.clone();
    bad[0x48] = 7 << 2;
    assert_eq!(run(bad), Err(VerifyError::ReportNotSigned));
    let mut bad = good.clone();
    bad[0x48] = 3 << 2;
    assert_eq!(run(bad), Err(VerifyError::UnsupportedSigningKey(3)));
    let mut bad = good.clone();
    bad[0x34] = 2;
    assert_eq!(run(bad), Err(VerifyError::UnsupportedSignatureAlgorithm(2)));
    let mut bad = good.clone();
    bad[0x2A0 + 60] = 1;
    assert!(matches!(
        run(bad),
        Err(VerifyError::ReportSignatureMalformed(_))
    ));
    let mut bad = good.clone();
    bad[0x2A0..0x2A0 + 72].fill(0);
    assert!(matches!(
        run(bad),
        Err(VerifyError::ReportSignatureMalformed(_))
    ));
    let mut bad = good.clone();
    bad[0x189] = 0x70; // unknown model
    assert!(matches!(run(bad), Err(VerifyError::UnknownProduct(_))));
    assert!(matches!(
        run(Vec::new()),
        Err(VerifyError::ReportLength { .. })
    ));
    // Garbage certificates.
    let r = verify(
        &Evidence {
            report: good.clone(),
            vek_der: vec![0x30, 0x03, 1, 2, 3],
            ..Evidence::default()
        },
        &permissive(),
        now(),
    );
    assert!(
        matches!(r, Err(VerifyError::CertificateParse { which: "VCEK", .. })),
        "{r:?}"
    );
    assert!(certificates_from_pem(b"not pem").is_err());
}

#[test]
fn builtin_roots_cover_three_products() {
    let roots = TrustedRoots::amd();
    let products: Vec<Product> = roots.roots().iter().map(TrustedRoot::product).collect();
    assert_eq!(
        products,
        vec![Product::Milan, Product::Genoa, Product::Turin]
    );
    assert_eq!(TrustedRoots::default(), roots);
}

/// Issue 11, class 3: the 368 bytes after R and S are covered by no signature. A real AMD
/// report with any of them changed still has a valid signature, so they must be zero; and
/// so must the padding of R and S above the 48-byte P-384 scalars (every real report has
/// them zero).
#[test]
fn unsigned_bytes_after_the_signature_must_be_zero() {
    for exp in expected() {
        let name = exp["report"].as_str().unwrap();
        let good = evidence(name, exp["vek"].as_str().unwrap());
        let r = &good.report;
        assert!(r[0x2A0 + 48..0x2E8].iter().all(|&b| b == 0), "{name} R pad");
        assert!(r[0x2E8 + 48..0x330].iter().all(|&b| b == 0), "{name} S pad");
        assert!(r[0x330..].iter().all(|&b| b == 0), "{name} tail");
        for offset in [0x330, 0x3FF, 0x49F] {
            let mut bad = good.clone();
            bad.report[offset] = 0x1B;
            assert_eq!(
                verify(&bad, &permissive(), now()),
                Err(VerifyError::UnsignedBytesNotZero { offset }),
                "{name} {offset:#x}"
            );
        }
        for offset in [0x2A0 + 48, 0x2E7, 0x2E8 + 48, 0x32F] {
            let mut bad = good.clone();
            bad.report[offset] = 1;
            assert!(
                matches!(
                    verify(&bad, &permissive(), now()),
                    Err(VerifyError::ReportSignatureMalformed(_))
                ),
                "{name} {offset:#x}"
            );
        }
    }
}
