//! `cloister policy init`: the policy it writes reads back and accepts exactly the
//! measured entries; every bad input is a clear error and writes nothing.

use super::{cloister, stderr};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const LOG: &str = r#"{"entries":[{"kind":"model","name":"all-minilm-l6-v2","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","signer_key_id":null,"version":"1"},{"kind":"plugin","name":"echo","sha256":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","signer_key_id":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","version":"0.1.0"}],"format":"cloister-measurement-log/v1"}"#;

#[test]
fn init_writes_a_policy_that_reads_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("log.json"), format!("{LOG}\n"))?;
    let m = "ab".repeat(48);
    let out = cloister(
        &[
            "policy",
            "init",
            "--log",
            "log.json",
            "--measurement",
            &m,
            "--out",
            "p.toml",
        ],
        dir.path(),
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("p.toml"))?;
    let file = cloister_verifier::PolicyFile::from_toml(&text)?;
    assert_eq!(file.measurements, Some(vec![m]));
    assert_eq!(file.plugin.len(), 1);
    assert_eq!(file.plugin[0].name, "echo");
    assert_eq!(file.plugin[0].signer_key_id, Some("c".repeat(64)));
    assert_eq!(file.model.len(), 1);
    assert_eq!(file.trust_simulator_root, None);
    assert!(!text.contains("DEVELOPMENT"), "{text}");
    let (policy, _roots) = file.to_policy(None, None)?;
    assert!(!policy.artifacts.allow_any_plugin);
    Ok(())
}

#[test]
fn bad_inputs_are_named_and_write_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("log.json"), LOG)?;
    std::fs::write(dir.path().join("pretty.json"), LOG.replace(",", ", "))?;
    let m = "ab".repeat(48);
    let cases: [(&[&str], &str); 4] = [
        (&["--log", "log.json"], "at least one --measurement"),
        (&["--log", "log.json", "--measurement", "abcd"], "96 hex"),
        (
            &["--log", "missing.json", "--measurement", &m],
            "cannot read",
        ),
        (
            &["--log", "pretty.json", "--measurement", &m],
            "not a canonical measurement log",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["policy", "init", "--out", "p.toml"];
        all.extend_from_slice(args);
        let out = cloister(&all, dir.path())?;
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            !dir.path().join("p.toml").exists(),
            "{args:?} wrote a policy"
        );
    }
    Ok(())
}
