//! The development host's simulator options, before any configuration is read: the
//! evidence provider is made first, so these fail (or succeed) without a deployment.

use std::process::{Command, Output};

fn dev_host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloister-host-dev"))
        .args(args)
        .env("CLOISTER_LOG", "warn")
        .output()
        .expect("run cloister-host-dev")
}

const NO_CONFIG: &str = "/nonexistent/cloister-dev-host-test.toml";

#[test]
fn the_measurement_file_is_read_as_the_vmm_passes_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("raw");
    let root = dir.path().join("root.pem");
    // QEMU's fw_cfg `string=` item: the hex digits, no newline.
    std::fs::write(&file, "ab".repeat(48)).unwrap();
    let out = dev_host(&[
        "serve",
        "--tee",
        "sim",
        "--config",
        NO_CONFIG,
        "--sim-measurement-file",
        file.to_str().unwrap(),
        "--sim-root-out",
        root.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    // The simulator started (its root is written) and reports that measurement; then the
    // missing configuration stops the host.
    assert!(!out.status.success());
    assert!(err.contains(&"ab".repeat(48)), "{err}");
    assert!(err.contains("SIMULATED TEE"), "{err}");
    assert!(err.contains("cloister-dev-host-test.toml"), "{err}");
    let pem = std::fs::read_to_string(&root).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
}

#[test]
fn bad_simulator_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("raw");
    for (content, want) in [
        ("not hex".to_owned(), "96 hex characters"),
        ("ab".repeat(47), "96 hex characters"),
        ("ab".repeat(49), "96 hex characters"),
    ] {
        std::fs::write(&file, &content).unwrap();
        let out = dev_host(&[
            "serve",
            "--tee",
            "sim",
            "--config",
            NO_CONFIG,
            "--sim-measurement-file",
            file.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(want), "{content:?}: {err}");
        assert!(!err.contains("SIMULATED TEE"), "{err}");
    }
    let missing = dir.path().join("absent");
    let out = dev_host(&[
        "serve",
        "--tee",
        "sim",
        "--config",
        NO_CONFIG,
        "--sim-measurement-file",
        missing.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read --sim-measurement-file"), "{err}");
    let out = dev_host(&[
        "serve",
        "--tee",
        "sim",
        "--config",
        NO_CONFIG,
        "--sim-product",
        "rome",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected milan, genoa or turin"), "{err}");
    // Simulator options never apply to real hardware.
    let out = dev_host(&[
        "serve",
        "--tee",
        "snp",
        "--config",
        NO_CONFIG,
        "--sim-measurement-file",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only apply to --tee sim"), "{err}");
}
