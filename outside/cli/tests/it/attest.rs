//! End-to-end tests of `cloister attest verify` with simulated and real SNP evidence.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::{cloister, stderr, stdout};
use std::time::SystemTime;

use cloister_measurement::{Entry, EntryKind, MeasurementLog};
use cloister_snp_sim::{ReportRequest, SimConfig, Simulator};
use cloister_verifier::{binding, BundleBinding, EvidenceBundle, Product};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MEASUREMENT: [u8; 48] = [0x11; 48];

fn entry(kind: EntryKind, name: &str, version: &str, fill: char, signer: Option<char>) -> Entry {
    Entry {
        kind,
        name: name.to_owned(),
        version: version.to_owned(),
        sha256: fill.to_string().repeat(64),
        signer_key_id: signer.map(|c| c.to_string().repeat(64)),
    }
}

fn log_of(entries: Vec<Entry>) -> Result<MeasurementLog, Box<dyn std::error::Error>> {
    let mut log = MeasurementLog::new();
    for e in entries {
        log.push(e)?;
    }
    Ok(log)
}

fn standard_log() -> Result<MeasurementLog, Box<dyn std::error::Error>> {
    log_of(vec![
        entry(EntryKind::Model, "llama-3.2-1b", "1", 'a', None),
        entry(EntryKind::Plugin, "summarize", "1.2.0", 'b', Some('c')),
    ])
}

/// A cert-mode bundle from `sim` whose REPORT_DATA binds `spki` and `log`.
fn bundle(
    sim: &Simulator,
    log: &MeasurementLog,
) -> Result<EvidenceBundle, Box<dyn std::error::Error>> {
    let spki_sha256 = binding::spki_sha256(b"a TLS key's SubjectPublicKeyInfo");
    let report_data = binding::report_data_cert_mode(&spki_sha256, &log.digest());
    let evidence = sim.evidence(&ReportRequest::new(report_data, MEASUREMENT))?;
    Ok(EvidenceBundle {
        report: evidence.report,
        vek_der: evidence.vek_der,
        ask_der: evidence.intermediate_der,
        ark_der: evidence.ark_der,
        measurement_log: log.canonical_bytes(),
        binding: BundleBinding::Cert { spki_sha256 },
        transparency: None,
    })
}

const POLICY_BODY: &str = r#"
allow_debug = false
allowed_vmpls = [0]

[[plugin]]
name = "summarize"
version = "1.2.0"
sha256 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
signer_key_id = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

[[model]]
name = "llama-3.2-1b"
version = "1"
sha256 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
"#;

/// A temporary directory holding the simulator's ARK (DER), a policy trusting it
/// (`policy.toml`) and one that does not (`amd-only.toml`).
fn setup(sim: &Simulator) -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("sim-ark.der"), sim.ark_der())?;
    let measurements = format!("measurements = [\"{}\"]\n", hex(&MEASUREMENT));
    fs::write(
        dir.path().join("policy.toml"),
        format!("trust_simulator_root = \"sim-ark.der\"\n{measurements}{POLICY_BODY}"),
    )?;
    fs::write(
        dir.path().join("amd-only.toml"),
        format!("{measurements}{POLICY_BODY}"),
    )?;
    Ok(dir)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_bundle(dir: &Path, name: &str, bundle: &EvidenceBundle) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    fs::write(&path, bundle.to_json())?;
    Ok(path)
}

fn verify(dir: &Path, evidence: &str, policy: &str) -> Result<Output, std::io::Error> {
    cloister(
        &[
            "attest",
            "verify",
            "--evidence",
            evidence,
            "--policy",
            policy,
        ],
        dir,
    )
}

fn simulator() -> Result<Simulator, Box<dyn std::error::Error>> {
    Ok(Simulator::new(&SimConfig::new(
        Product::Milan,
        SystemTime::now(),
    ))?)
}

#[test]
fn simulated_bundle_verifies_and_prints_summary() -> TestResult {
    let sim = simulator()?;
    let dir = setup(&sim)?;
    let log = standard_log()?;
    write_bundle(dir.path(), "evidence.json", &bundle(&sim, &log)?)?;

    let out = verify(dir.path(), "evidence.json", "policy.toml")?;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("attestation evidence VERIFIED"), "{text}");
    assert!(text.contains("SIMULATOR root"), "{text}");
    assert!(
        text.contains(&format!(
            "chip:         Milan (VCEK), chip id {}...",
            hex(&sim.chip_id()[..8])
        )),
        "{text}"
    );
    assert!(
        text.contains("TCB:          bootloader=3 tee=0 snp=8 microcode=115"),
        "{text}"
    );
    assert!(
        text.contains(&format!("measurement:  {}", hex(&MEASUREMENT))),
        "{text}"
    );
    assert!(text.contains("debug no, migration agent no"), "{text}");
    assert!(text.contains("binding:      cert mode"), "{text}");
    assert!(
        text.contains(&format!("log digest:   {}", log.digest_hex())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  plugin summarize@1.2.0 sha256={} signer={}",
            "b".repeat(64),
            "c".repeat(64)
        )),
        "{text}"
    );
    assert!(
        text.contains("  model llama-3.2-1b@1 sha256=") && text.contains("signer=(unsigned)"),
        "{text}"
    );
    Ok(())
}

#[test]
fn simulator_root_not_trusted_without_policy_saying_so() -> TestResult {
    let sim = simulator()?;
    let dir = setup(&sim)?;
    write_bundle(
        dir.path(),
        "evidence.json",
        &bundle(&sim, &standard_log()?)?,
    )?;

    for args in [
        vec![
            "attest",
            "verify",
            "--evidence",
            "evidence.json",
            "--policy",
            "amd-only.toml",
        ],
        vec!["attest", "verify", "--evidence", "evidence.json"],
    ] {
        let out = cloister(&args, dir.path())?;
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("REJECTED"), "{err}");
        assert!(
            err.contains("the supplied ARK is not a trusted root for Milan"),
            "{err}"
        );
    }
    Ok(())
}

#[test]
fn tampered_log_fails_the_report_data_binding() -> TestResult {
    let sim = simulator()?;
    let dir = setup(&sim)?;
    let mut b = bundle(&sim, &standard_log()?)?;
    // The host reports other bytes for the model than it measured: the log stays canonical
    // and allowed by a lenient reader, but its digest no longer matches REPORT_DATA.
    let tampered = log_of(vec![
        entry(EntryKind::Model, "llama-3.2-1b", "1", 'd', None),
        entry(EntryKind::Plugin, "summarize", "1.2.0", 'b', Some('c')),
    ])?;
    b.measurement_log = tampered.canonical_bytes();
    write_bundle(dir.path(), "evidence.json", &b)?;

    let out = verify(dir.path(), "evidence.json", "policy.toml")?;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("REPORT_DATA does not match the cert-mode binding"),
        "{err}"
    );

    // A log that is not canonical is refused before anything else.
    let mut b2 = b.clone();
    b2.measurement_log = b" {\"entries\":[],\"format\":\"cloister-measurement-log/v1\"}".to_vec();
    write_bundle(dir.path(), "evidence2.json", &b2)?;
    let out = verify(dir.path(), "evidence2.json", "policy.toml")?;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("measurement_log"), "{}", stderr(&out));
    Ok(())
}

#[test]
fn plugin_missing_from_allowlist_is_named() -> TestResult {
    let sim = simulator()?;
    let dir = setup(&sim)?;
    let log = log_of(vec![
        entry(EntryKind::Model, "llama-3.2-1b", "1", 'a', None),
        entry(EntryKind::Plugin, "summarize", "1.2.0", 'b', Some('c')),
        entry(EntryKind::Plugin, "exfiltrate", "0.1.0", 'e', Some('c')),
    ])?;
    write_bundle(dir.path(), "evidence.json", &bundle(&sim, &log)?)?;

    let out = verify(dir.path(), "evidence.json", "policy.toml")?;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "measurement log entry #2: plugin \"exfiltrate\" is not allowed by the policy"
        ),
        "{err}"
    );

    // Same name and version, another signer.
    let log = log_of(vec![entry(
        EntryKind::Plugin,
        "summarize",
        "1.2.0",
        'b',
        Some('f'),
    )])?;
    write_bundle(dir.path(), "evidence.json", &bundle(&sim, &log)?)?;
    let out = verify(dir.path(), "evidence.json", "policy.toml")?;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("plugin \"summarize\" version \"1.2.0\" was signed by ffff"),
        "{err}"
    );
    Ok(())
}

#[test]
fn session_bound_bundle_needs_a_session() -> TestResult {
    let sim = simulator()?;
    let dir = setup(&sim)?;
    let mut b = bundle(&sim, &standard_log()?)?;
    b.binding = BundleBinding::Session;
    write_bundle(dir.path(), "evidence.json", &b)?;
    let out = verify(dir.path(), "evidence.json", "policy.toml")?;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("session-bound"), "{}", stderr(&out));
    Ok(())
}

#[test]
fn bad_inputs_are_reported() -> TestResult {
    let sim = simulator()?;
    let dir = setup(&sim)?;
    write_bundle(
        dir.path(),
        "evidence.json",
        &bundle(&sim, &standard_log()?)?,
    )?;
    fs::write(dir.path().join("typo.toml"), "alow_debug = true\n")?;
    fs::write(
        dir.path().join("junk.json"),
        r#"{"format":"cloister-evidence/v1"}"#,
    )?;

    let out = verify(dir.path(), "evidence.json", "typo.toml")?;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("alow_debug"), "{}", stderr(&out));

    let out = verify(dir.path(), "junk.json", "policy.toml")?;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing field"), "{}", stderr(&out));

    let out = cloister(
        &[
            "attest",
            "verify",
            "--evidence",
            "evidence.json",
            "--now",
            "yesterday",
        ],
        dir.path(),
    )?;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));
    Ok(())
}

/// A real Milan report (virtee/sev): with AMD's roots and the default policy, chain,
/// signature, TCB and guest policy verify, and the check stops at REPORT_DATA, since the
/// report was not made by a Cloister host.
#[test]
fn real_hardware_report_reaches_the_binding_check() -> TestResult {
    let vectors = cloister_test_support::vectors_dir().join("snp/virtee-sev");
    let report_hex = fs::read_to_string(vectors.join("report_milan.hex"))?;
    let report_hex: String = report_hex.split_whitespace().collect();
    let report = (0..report_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(report_hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()?;
    let b = EvidenceBundle {
        report,
        vek_der: fs::read(vectors.join("vcek_milan.der"))?,
        ask_der: None,
        ark_der: None,
        measurement_log: MeasurementLog::new().canonical_bytes(),
        binding: BundleBinding::Cert {
            spki_sha256: [0; 32],
        },
        transparency: None,
    };
    let dir = tempfile::tempdir()?;
    write_bundle(dir.path(), "evidence.json", &b)?;
    let out = cloister(
        &[
            "attest",
            "verify",
            "--evidence",
            "evidence.json",
            "--now",
            "2025-06-01T00:00:00Z",
        ],
        dir.path(),
    )?;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("REPORT_DATA does not match the cert-mode binding"),
        "{err}"
    );

    // After the certificates expire, the chain check fails first.
    let out = cloister(
        &[
            "attest",
            "verify",
            "--evidence",
            "evidence.json",
            "--now",
            "2031-01-01T00:00:00Z",
        ],
        dir.path(),
    )?;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    Ok(())
}

/// Issue 11, classes 8 and 9: names and values from the evidence (a plugin name in the
/// measurement log, a member name or value of the bundle) reach the terminal escaped
/// (no ESC, no C1 control, no bidi override) and truncated, in the verified summary and
/// in errors alike.
#[test]
fn hostile_names_are_escaped_and_truncated_in_summary_and_errors() -> TestResult {
    let sim = simulator()?;
    let dir = setup(&sim)?;
    let hostile = "\u{1b}[2K\u{1b}[1Gattestation evidence VERIFIED\u{9b}31m\u{202e}";
    let log = log_of(vec![Entry {
        kind: EntryKind::Plugin,
        name: hostile.to_owned(),
        version: format!("1{hostile}"),
        sha256: "b".repeat(64),
        signer_key_id: None,
    }])?;
    write_bundle(dir.path(), "hostile.json", &bundle(&sim, &log)?)?;
    let measurements = format!("measurements = [\"{}\"]\n", hex(&MEASUREMENT));
    fs::write(
        dir.path().join("any-plugin.toml"),
        format!("trust_simulator_root = \"sim-ark.der\"\nallow_any_plugin = true\n{measurements}"),
    )?;
    let clean = |text: &str| {
        !text
            .chars()
            .any(|c| matches!(c, '\u{1b}' | '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}'))
    };

    // The summary of evidence that verifies.
    let out = verify(dir.path(), "hostile.json", "any-plugin.toml")?;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(clean(&text), "{text:?}");
    assert!(text.contains("\\u{1b}[2K\\u{1b}[1Gattestation"), "{text}");
    // The error for evidence that does not (the plugin is not allowed).
    let out = verify(dir.path(), "hostile.json", "policy.toml")?;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(clean(&err), "{err:?}");
    assert!(err.contains("is not allowed by the policy"), "{err}");

    // A 10 MB member name and a 10 MB format value: quoted in part, with their size.
    let good = bundle(&sim, &standard_log()?)?.to_json();
    // `\u001b` in JSON text decodes to ESC.
    let long = format!("\\u001b]0;{}", "x".repeat(10 * 1024 * 1024));
    let unknown_member = good.replacen('{', &format!("{{\"{long}\":1,"), 1);
    let format_value = good.replace("cloister-evidence/v1", &long);
    for (name, json) in [
        ("member.json", unknown_member),
        ("format.json", format_value),
    ] {
        fs::write(dir.path().join(name), json)?;
        let out = verify(dir.path(), name, "policy.toml")?;
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.len() < 2048, "{name}: {} bytes on stderr", err.len());
        assert!(clean(&err), "{name}: {err:?}");
        assert!(err.contains("bytes)"), "{name}: {err}");
    }
    Ok(())
}

/// Issue 11, class 11: `--now` and measurement-log errors print their cause once.
#[test]
fn errors_print_their_cause_once() -> TestResult {
    let sim = simulator()?;
    let dir = setup(&sim)?;
    let mut b = bundle(&sim, &standard_log()?)?;
    write_bundle(dir.path(), "evidence.json", &b)?;
    b.measurement_log.insert(0, b' ');
    write_bundle(dir.path(), "bad-log.json", &b)?;
    let now_err = cloister(
        &[
            "attest",
            "verify",
            "--evidence",
            "evidence.json",
            "--now",
            "2025-13-01",
        ],
        dir.path(),
    )?;
    let log_err = verify(dir.path(), "bad-log.json", "policy.toml")?;
    for out in [now_err, log_err] {
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        let segments: Vec<&str> = err.trim_end().split(": ").collect();
        assert!(segments.len() >= 2, "{err}");
        for (i, s) in segments.iter().enumerate() {
            assert!(!segments[i + 1..].contains(s), "{s:?} twice in {err}");
        }
    }
    Ok(())
}
