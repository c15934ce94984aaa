//! The launch-digest computation against the 14 SNP cases of virtee/sev's tests
//! (`../shared/vectors/snp/measurement`, provenance in its README.txt), and the manifest's
//! refusals.

use std::path::{Path, PathBuf};

use cloister_image::{launch_digest, ImageError, ImageManifest, MeasurementInputs};
use serde_json::Value;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/snp/measurement")
}

fn optional_file(v: &Value) -> Option<PathBuf> {
    v.as_str().map(PathBuf::from)
}

#[test]
fn all_14_vector_cases_agree() {
    let d: Value = serde_json::from_slice(
        &std::fs::read(vectors().join("snp_launch_digest_cases.json")).expect("read"),
    )
    .expect("json");
    let cases = d["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 14);
    for c in cases {
        let name = c["name"].as_str().expect("name");
        let vmm = match c["vmm_type"].as_str().expect("vmm") {
            "EC2" => "EC2",
            _ => "QEMU",
        };
        let inputs = MeasurementInputs {
            ovmf: vectors().join(c["ovmf_file"].as_str().expect("ovmf")),
            kernel: optional_file(&c["kernel_file"]),
            initrd: optional_file(&c["initrd_file"]),
            cmdline: c["append"].as_str().map(str::to_owned),
            vcpus: c["vcpus"].as_u64().expect("vcpus") as u32,
            vcpu_type: "EPYC-v4".into(),
            guest_features: c["guest_features"].as_u64().expect("features"),
            vmm: vmm.into(),
        };
        assert_eq!(c["vcpu_type"], "EpycV4");
        let got = launch_digest(&inputs);
        if c["expect_error"].as_bool().expect("expect_error") {
            assert!(
                matches!(got, Err(ImageError::Measurement(_))),
                "{name}: {got:?}"
            );
        } else {
            let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                hex::encode(got),
                c["expected_launch_digest"].as_str().expect("digest"),
                "{name}"
            );
        }
    }
}

fn manifest(dir: &Path, ovmf: &[u8], kernel: &[u8], cmdline: &str) -> String {
    use sha2::Digest;
    std::fs::write(dir.join("OVMF.fd"), ovmf).expect("write");
    std::fs::write(dir.join("vmlinuz"), kernel).expect("write");
    std::fs::write(dir.join("initrd.img"), b"initramfs").expect("write");
    let h = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    format!(
        r#"{{"format":"cloister-image-manifest/v1","variant":"production",
"inputs":{{"ovmf":{{"file":"OVMF.fd","sha256":"{}"}},"kernel":{{"file":"vmlinuz","sha256":"{}"}},"initrd":{{"file":"initrd.img","sha256":"{}"}},"cmdline":"{cmdline}"}},
"vcpus":2,"vcpu_type":"EPYC-v4","guest_features":1,"vmm":"QEMU","qemu_version":"10.0.2"}}"#,
        h(ovmf),
        h(kernel),
        h(b"initramfs")
    )
}

#[test]
fn a_manifest_measures_and_every_input_changes_the_digest() {
    let ovmf = std::fs::read(vectors().join("ovmf_AmdSev_suffix.bin")).expect("ovmf");
    let tmp = tempfile::tempdir().expect("tmp");
    let m = ImageManifest::from_json(
        manifest(tmp.path(), &ovmf, b"kernel", "console=ttyS0").as_bytes(),
    )
    .expect("manifest");
    let base = m.measure(tmp.path()).expect("measures");
    // The same inputs twice: the same digest.
    assert_eq!(m.measure(tmp.path()).expect("again"), base);
    // One byte of the kernel, or the command line, or one more vCPU: another digest.
    let tmp2 = tempfile::tempdir().expect("tmp");
    let m2 = ImageManifest::from_json(
        manifest(tmp2.path(), &ovmf, b"kernem", "console=ttyS0").as_bytes(),
    )
    .expect("manifest");
    assert_ne!(m2.measure(tmp2.path()).expect("measures"), base);
    let mut m3 = m.clone();
    m3.inputs.cmdline = Some("console=ttyS1".into());
    assert_ne!(m3.measure(tmp.path()).expect("measures"), base);
    let mut m4 = m.clone();
    m4.vcpus = 3;
    assert_ne!(m4.measure(tmp.path()).expect("measures"), base);
}

#[test]
fn bad_inputs_are_refused_by_name() {
    let ovmf = std::fs::read(vectors().join("ovmf_AmdSev_suffix.bin")).expect("ovmf");
    let tmp = tempfile::tempdir().expect("tmp");
    let text = manifest(tmp.path(), &ovmf, b"kernel", "console=ttyS0");
    let m = ImageManifest::from_json(text.as_bytes()).expect("manifest");
    // A pinned file whose bytes changed.
    std::fs::write(tmp.path().join("vmlinuz"), b"kernel2").expect("write");
    let e = m.measure(tmp.path()).expect_err("mismatch");
    assert!(matches!(e, ImageError::HashMismatch { .. }), "{e}");
    assert!(e.to_string().contains("vmlinuz"), "{e}");
    // A missing file.
    std::fs::remove_file(tmp.path().join("vmlinuz")).expect("rm");
    let e = m.measure(tmp.path()).expect_err("missing");
    assert!(
        matches!(e, ImageError::Read { .. }) && e.to_string().contains("vmlinuz"),
        "{e}"
    );
    // An unsupported vCPU type, and VMM.
    let mut bad = MeasurementInputs {
        ovmf: vectors().join("ovmf_AmdSev_suffix.bin"),
        kernel: None,
        initrd: None,
        cmdline: None,
        vcpus: 1,
        vcpu_type: "Pentium-4".into(),
        guest_features: 1,
        vmm: "QEMU".into(),
    };
    let e = launch_digest(&bad).expect_err("vcpu type");
    assert!(
        e.to_string().contains("Pentium-4") && e.to_string().contains("EPYC-v4"),
        "{e}"
    );
    bad.vcpu_type = "EPYC-v4".into();
    bad.vmm = "bhyve".into();
    assert!(matches!(
        launch_digest(&bad),
        Err(ImageError::UnsupportedVmm(_))
    ));
    // An OVMF without the SNP kernel-hashes page, with a kernel.
    bad.vmm = "QEMU".into();
    bad.ovmf = vectors().join("ovmf_OvmfX64_suffix.bin");
    bad.kernel = Some(PathBuf::from("/dev/null"));
    assert!(matches!(
        launch_digest(&bad),
        Err(ImageError::Measurement(_))
    ));
    // Something that is not firmware at all.
    bad.ovmf = tmp.path().join("initrd.img");
    bad.kernel = None;
    assert!(launch_digest(&bad).is_err());
    // A command line the sev crate would measure differently from QEMU (it trims
    // surrounding whitespace; QEMU hashes the line as given), or with a control character.
    for cmdline in [
        " console=ttyS0",
        "console=ttyS0 ",
        "console=ttyS0\t",
        "a\u{7}b",
    ] {
        let mut m5 = m.clone();
        std::fs::write(tmp.path().join("vmlinuz"), b"kernel").expect("write");
        m5.inputs.cmdline = Some(cmdline.into());
        let e = m5.measure(tmp.path()).expect_err("refused");
        assert!(e.to_string().contains("command line"), "{cmdline:?}: {e}");
    }
    // Malformed manifests.
    for t in [
        text.replace("cloister-image-manifest/v1", "v0"),
        text.replace("\"production\"", "\"staging\""),
        text.replace("\"vcpus\":2", "\"vcpus\":2,\"extra\":1"),
        "{}".to_owned(),
    ] {
        assert!(ImageManifest::from_json(t.as_bytes()).is_err());
    }
}

/// Truncated and bit-flipped firmware never reaches the sev crate's parser in a state that
/// makes it panic: `check_ovmf` refuses it first (checked here without the catch_unwind
/// guard, by calling the parser directly on everything `check_ovmf` accepts).
#[test]
fn mangled_firmware_is_refused_before_the_parser() {
    use sev::measurement::ovmf::OVMF;
    let good = std::fs::read(vectors().join("ovmf_AmdSev_suffix.bin")).expect("ovmf");
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ovmf.bin");
    let mut variants: Vec<Vec<u8>> = (0..good.len())
        .step_by(13)
        .map(|n| good[..n].to_vec())
        .collect();
    for at in good.len().saturating_sub(256)..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut v = good.clone();
            v[at] ^= bit;
            variants.push(v);
        }
    }
    let mut accepted = 0;
    for v in &variants {
        if cloister_image::check_ovmf(v).is_ok() {
            accepted += 1;
            std::fs::write(&path, v).expect("write");
            let p = path.clone();
            let parsed = std::panic::catch_unwind(move || OVMF::new(p).is_ok());
            assert!(
                parsed.is_ok(),
                "the parser panicked on firmware check_ovmf accepted"
            );
        }
    }
    assert!(
        accepted > 0 && accepted < variants.len(),
        "{accepted} of {}",
        variants.len()
    );
}
