//! The host's reading of its transparency log (`cloister_host::transparency::LogMirror`),
//! over a real log directory written by `cloister-log`'s own code: proofs for what it runs,
//! a revocation seen at the next refresh, and a log that forks or is altered between
//! refreshes refused.

use std::path::Path;

use cloister_host::config::TransparencyConfig;
use cloister_host::transparency::LogMirror;
use cloister_log::state::{AddResult, Log};
use cloister_measurement::{Entry, EntryKind};
use cloister_tlog::note::{KeyType, NoteSigner};
use cloister_tlog::Policy;
use cloister_transparency::{NamedDigest, Statement, TransparencyError};

const LAUNCH: [u8; 48] = [0x42; 48];

fn hex32(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

fn release(version: &str) -> Statement {
    Statement::PluginRelease {
        name: "echo".into(),
        version: version.into(),
        component_sha256: hex32(version),
        signer_key_id: hex32("team"),
        envelope_sha256: hex32("envelope"),
    }
}

fn image() -> Statement {
    Statement::CvmImage {
        launch_measurement: hex::encode(LAUNCH),
        manifest_sha256: hex32("manifest"),
        inputs: vec![NamedDigest {
            name: "kernel".into(),
            sha256: hex32("kernel"),
        }],
        vcpus: 2,
        vcpu_type: "EPYC-v4".into(),
        vmm: "QEMU".into(),
    }
}

fn measured(version: &str) -> Entry {
    Entry {
        kind: EntryKind::Plugin,
        name: "echo".into(),
        version: version.into(),
        sha256: hex32(version),
        signer_key_id: Some(hex32("team")),
    }
}

/// A log without witnesses (`quorum none`), and the host's config pointing at it.
fn setup(root: &Path, seed: u8) -> (Log, TransparencyConfig) {
    let signer =
        NoteSigner::from_seed("log.test/host", KeyType::Ed25519, &[seed; 32]).expect("key");
    let policy_text = format!("log {}\nquorum none\n", signer.verifier().to_vkey());
    std::fs::write(root.join("tlog.policy"), &policy_text).expect("policy");
    let dir = root.join(format!("log{seed}"));
    let log = Log::open(&dir, signer, Policy::parse(&policy_text).expect("policy")).expect("open");
    let config = TransparencyConfig {
        log: dir,
        policy: root.join("tlog.policy"),
        max_age_secs: 3600,
        refresh_secs: 60,
    };
    (log, config)
}

fn add(log: &mut Log, s: &Statement) {
    let r = log.add(&[s.to_entry().expect("entry")]);
    assert!(matches!(r[0], AddResult::Proven(_)), "{:?}", r[0]);
}

#[test]
fn the_host_proves_what_it_runs_and_sees_a_revocation_at_the_next_refresh() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut log, config) = setup(tmp.path(), 1);
    add(&mut log, &release("1.0.0"));
    add(&mut log, &image());
    let mut mirror = LogMirror::new(&config).expect("mirror");
    let p = mirror
        .refresh(&[measured("1.0.0")], &LAUNCH)
        .expect("refresh");
    let v = p.verdict.expect("the log vouches for the host");
    assert_eq!(v.measured_indexes, vec![0]);
    assert_eq!(p.bundle.entries.len(), 2);

    // Something the log does not have.
    let p = mirror
        .refresh(&[measured("9.9.9")], &LAUNCH)
        .expect("refresh");
    assert!(matches!(p.verdict, Err(TransparencyError::NotInLog { .. })));
    let p = mirror
        .refresh(&[measured("1.0.0")], &[0; 48])
        .expect("refresh");
    assert!(matches!(p.verdict, Err(TransparencyError::NotInLog { .. })));

    // Revoked: the next refresh's proofs say so (and are still handed out, for clients to
    // refuse).
    let subject = hex::encode(release("1.0.0").leaf_hash().expect("leaf"));
    add(
        &mut log,
        &Statement::Revocation {
            subject,
            reason: "test".into(),
        },
    );
    let p = mirror
        .refresh(&[measured("1.0.0")], &LAUNCH)
        .expect("refresh");
    assert!(
        matches!(p.verdict, Err(TransparencyError::Revoked { .. })),
        "{:?}",
        p.verdict.err()
    );
}

#[test]
fn a_log_that_forks_or_is_altered_between_refreshes_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut log, config) = setup(tmp.path(), 2);
    add(&mut log, &release("1.0.0"));
    add(&mut log, &image());
    let mut mirror = LogMirror::new(&config).expect("mirror");
    mirror
        .refresh(&[measured("1.0.0")], &LAUNCH)
        .expect("refresh")
        .verdict
        .expect("vouched");
    drop(log);

    // The operator rebuilds the log with the same key and another, longer history, in the
    // directory the host reads.
    std::fs::remove_dir_all(&config.log).expect("rm");
    let signer = NoteSigner::from_seed("log.test/host", KeyType::Ed25519, &[2; 32]).expect("key");
    let policy =
        Policy::parse(&std::fs::read_to_string(&config.policy).expect("policy")).expect("policy");
    let mut forked = Log::open(&config.log, signer, policy).expect("open");
    add(&mut forked, &image());
    add(&mut forked, &release("1.0.0"));
    add(&mut forked, &release("2.0.0"));
    let err = mirror
        .refresh(&[measured("1.0.0")], &LAUNCH)
        .err()
        .expect("a fork is refused");
    assert!(err.to_string().contains("does not extend"), "{err}");
    // A truncated tile: refused, with the file named.
    let (_log, config) = setup(tmp.path(), 3);
    let mut log = _log;
    add(&mut log, &release("1.0.0"));
    add(&mut log, &image());
    let tile = config.log.join("tile/0/000.p/4");
    let bytes = std::fs::read(&tile).expect("tile");
    std::fs::write(&tile, &bytes[..bytes.len() - 5]).expect("truncate");
    let mut mirror = LogMirror::new(&config).expect("mirror");
    assert!(mirror.refresh(&[measured("1.0.0")], &LAUNCH).is_err());
}
