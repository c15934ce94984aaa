//! The transparency log in the whole chain, across processes: three witnesses and the log
//! (`cloister-witness`, `cloister-log`), a feature team publishing its signed release and the
//! operator its image (`cloister publish`), a host that needs the log to vouch for what it
//! loads (`[transparency]`), and a client that verifies the host's proofs offline
//! (`cloister connect` with a `[transparency]` policy and no allowlist). Then a revocation:
//! the client refuses the host still running the release, the host refuses to start with it,
//! and the audit and the team's monitor both report it.

use crate::common::{listening, ok, run};

use crate::oblivious::{run_relayed, start_oblivious, GATEWAY_KEYS};
use cloister_test_support::host::Server;
use cloister_test_support::{component, vectors_dir};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The launch measurement the simulated host reports, and the published image has.
fn image_measurement() -> String {
    "5e".repeat(48)
}

fn line_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(prefix))
}

#[test]
fn published_plugins_are_proven_and_a_revocation_is_enforced() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let measurement = image_measurement();
    let measurement = measurement.as_str();

    // The log's key, three witnesses, the log.
    let log_vkey = ok(
        "cloister-log keygen",
        run(
            dir,
            "cloister-log",
            &[
                "keygen",
                "--origin",
                "log.test/cloister",
                "--out",
                "log.key",
            ],
        )?,
    )?;
    let log_vkey = log_vkey.trim().to_owned();
    let mut witnesses = Vec::new();
    let mut policy = format!("log {log_vkey}\n");
    for i in 0..3 {
        let name = format!("w{i}.test");
        let key = format!("w{i}.key");
        let vkey = ok(
            "cloister-witness keygen",
            run(
                dir,
                "cloister-witness",
                &["keygen", "--name", &name, "--out", &key],
            )?,
        )?;
        let state = format!("w{i}-state");
        let (proc, addr) = listening(
            dir,
            "cloister-witness",
            &[
                "serve",
                "--key",
                &key,
                "--log",
                &log_vkey,
                "--state",
                &state,
                "--listen",
                "127.0.0.1:0",
            ],
        )?;
        policy.push_str(&format!("witness w{i} {} http://{addr}\n", vkey.trim()));
        witnesses.push(proc);
    }
    policy.push_str("group q 2 w0 w1 w2\nquorum q\n");
    std::fs::write(dir.join("tlog.policy"), &policy)?;
    let publishers = ok(
        "cloister-log new-publisher",
        run(
            dir,
            "cloister-log",
            &[
                "new-publisher",
                "--name",
                "team",
                "--token-out",
                "team.token",
            ],
        )?,
    )?;
    std::fs::write(dir.join("publishers"), publishers)?;
    let (_log, log_addr) = listening(
        dir,
        "cloister-log",
        &[
            "serve",
            "--key",
            "log.key",
            "--dir",
            "log",
            "--witnesses",
            "tlog.policy",
            "--publishers",
            "publishers",
            "--listen",
            "127.0.0.1:0",
        ],
    )?;
    let log_url = format!("http://{log_addr}");

    // The team signs echo and publishes it; the operator publishes the image.
    ok(
        "cloister plugin keygen",
        run(dir, "cloister", &["plugin", "keygen", "--out", "team"])?,
    )?;
    std::fs::write(dir.join("echo.wasm"), component("echo"))?;
    ok(
        "cloister plugin sign",
        run(
            dir,
            "cloister",
            &[
                "plugin",
                "sign",
                "--key",
                "team.key.pem",
                "--name",
                "echo",
                "--version",
                "0.1.0",
                "echo.wasm",
            ],
        )?,
    )?;
    let published = ok(
        "cloister publish plugin",
        run(
            dir,
            "cloister",
            &[
                "publish",
                "plugin",
                "--component",
                "echo.wasm",
                "--envelope",
                "echo.wasm.dsse.json",
                "--signer",
                "team.pub.pem",
                "--log",
                &log_url,
                "--token-file",
                "team.token",
                "--proof-out",
                "echo.tlog-proof",
            ],
        )?,
    )?;
    let echo_leaf = line_after(&published, "leaf ")
        .ok_or("no leaf line")?
        .to_owned();
    assert!(std::fs::read_to_string(dir.join("echo.tlog-proof"))?
        .starts_with("c2sp.org/tlog-proof@v1\n"));
    let image = format!(
        r#"{{"launch_measurement":"{measurement}","inputs":[{{"name":"simulated image","sha256":"{}"}}],"vcpus":2,"vcpu_type":"EPYC-v4","vmm":"QEMU"}}"#,
        "00".repeat(32)
    );
    std::fs::write(dir.join("image.json"), image)?;
    ok(
        "cloister publish image",
        run(
            dir,
            "cloister",
            &[
                "publish",
                "image",
                "--manifest",
                "image.json",
                "--log",
                &log_url,
                "--token-file",
                "team.token",
            ],
        )?,
    )?;

    // The host requires the log; the client's policy is the log, not an allowlist.
    std::fs::write(
        dir.join("host.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[[plugin]]\nname = \"echo\"\ncomponent = \"echo.wasm\"\nsignature = \"echo.wasm.dsse.json\"\nsigners = [\"team.pub.pem\"]\n\n\
             [transparency]\nlog = {:?}\npolicy = \"tlog.policy\"\nrefresh_secs = 600\nmax_age_secs = 3600\n\n\
             [tunnel]\nlisten = \"127.0.0.1:0\"\n",
            dir.join("log")
        ),
    )?;
    std::fs::write(
        dir.join("policy.toml"),
        format!("trust_simulator_root = \"sim-ark.pem\"\n\n[transparency]\ntlog_policy = \"tlog.policy\"\nlog = \"{log_url}\"\n"),
    )?;
    let host = Server::start_sim(
        &dir.join("host.toml"),
        &dir.join("sim-ark.pem"),
        &["--sim-measurement", measurement],
    );
    let url = format!("https://{}", host.addr);
    let connected = ok(
        "cloister connect",
        run(
            dir,
            "cloister",
            &["connect", &url, "--policy", "policy.toml"],
        )?,
    )?;
    assert!(
        connected.contains("transparency: every entry and the image are in log log.test/cloister"),
        "{connected}"
    );

    // The oblivious path under the same policy: the gateway's key configuration and the
    // issuer's key must be in the log too (key consistency), or the client sends nothing.
    let tunnel = host.tunnel_addr();
    let stack = start_oblivious(dir, &tunnel)?;
    std::fs::write(dir.join("in.json"), "{\"x\":1}")?;
    let relayed = |extra: &[&str]| {
        run_relayed(
            dir,
            &stack,
            &stack.relay,
            "echo",
            "in.json",
            "policy.toml",
            extra,
        )
    };
    let out = relayed(&[])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--gateway-name is required"), "{err}");
    let named = ["--gateway-name", "gateway.test"];
    let out = relayed(&named)?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is not published in the transparency log"),
        "{err}"
    );
    let configs = ok(
        "cloister-gateway config",
        run(
            dir,
            "cloister-gateway",
            &["config", "--seed", "seed", "--keys", GATEWAY_KEYS],
        )?,
    )?;
    let key1 = configs
        .lines()
        .find(|l| l.starts_with("1 "))
        .and_then(|l| l.split_whitespace().nth(3))
        .ok_or("no key 1 in the gateway's config")?
        .to_owned();
    for (step, args) in [
        (
            "cloister publish ohttp-key",
            vec![
                "publish",
                "ohttp-key",
                "--gateway",
                "gateway.test",
                "--config",
                key1.as_str(),
                "--not-before",
                "0",
                "--not-after",
                "4000000000",
            ],
        ),
        (
            "cloister publish issuer-key",
            vec![
                "publish",
                "issuer-key",
                "--issuer",
                "issuer.example",
                "--key",
                "issuer/token-key.json",
            ],
        ),
    ] {
        let mut args = args;
        args.extend_from_slice(&["--log", &log_url, "--token-file", "team.token"]);
        ok(step, run(dir, "cloister", &args)?)?;
    }
    let out = relayed(&named)?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let answer = ok("cloister run --relay (keys published)", out)?;
    assert!(answer.contains("\"x\":1"), "{answer}");
    assert!(
        err.contains("keys must be in the transparency log") && err.contains("2 round trips"),
        "{err}"
    );

    // A build nobody published (the same release, other bytes: a custom section appended),
    // validly signed: the host refuses to start, naming it.
    std::fs::create_dir_all(dir.join("v2"))?;
    for f in ["team.key.pem", "team.pub.pem", "tlog.policy"] {
        std::fs::copy(dir.join(f), dir.join("v2").join(f))?;
    }
    let mut other = component("echo");
    other.extend_from_slice(&[0x00, 0x0a, 0x04]);
    other.extend_from_slice(b"testextra");
    std::fs::write(dir.join("v2/echo.wasm"), other)?;
    ok(
        "cloister plugin sign (unpublished build)",
        run(
            &dir.join("v2"),
            "cloister",
            &[
                "plugin",
                "sign",
                "--key",
                "team.key.pem",
                "--name",
                "echo",
                "--version",
                "0.1.0",
                "echo.wasm",
            ],
        )?,
    )?;
    std::fs::copy(dir.join("host.toml"), dir.join("v2/host.toml"))?;
    let out = run(
        &dir.join("v2"),
        "cloister-host-dev",
        &[
            "serve",
            "--config",
            "host.toml",
            "--tee",
            "sim",
            "--sim-measurement",
            measurement,
        ],
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("not in the transparency log") && err.contains("echo"),
        "{err}"
    );

    // The team revokes its release. The running host still carries its old proofs: a client
    // that reads the log's newest revocation list refuses it.
    ok(
        "cloister publish revocation",
        run(
            dir,
            "cloister",
            &[
                "publish",
                "revocation",
                "--subject",
                &echo_leaf,
                "--reason",
                "signed by mistake",
                "--log",
                &log_url,
                "--token-file",
                "team.token",
            ],
        )?,
    )?;
    let out = run(
        dir,
        "cloister",
        &["connect", &url, "--policy", "policy.toml"],
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a host still running a revoked release was accepted"
    );
    assert!(
        err.contains("older than") || err.contains("revoked"),
        "{err}"
    );
    drop(host);
    // The host does not start with it.
    let out = run(
        dir,
        "cloister-host-dev",
        &[
            "serve",
            "--config",
            "host.toml",
            "--tee",
            "sim",
            "--sim-measurement",
            measurement,
        ],
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("revoked") && err.contains("echo"), "{err}");

    // A real image manifest (firmware from the measurement vectors, a kernel, an initramfs,
    // a command line): `publish image` computes its launch measurement from the pinned files.
    let images = dir.join("images");
    std::fs::create_dir_all(&images)?;
    std::fs::copy(
        vectors_dir().join("snp/measurement/ovmf_AmdSev_suffix.bin"),
        images.join("OVMF.fd"),
    )?;
    std::fs::write(images.join("vmlinuz"), b"a kernel")?;
    std::fs::write(images.join("initrd.img"), b"an initramfs")?;
    let sha = |bytes: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    };
    let manifest = format!(
        r#"{{"format":"cloister-image-manifest/v1","variant":"production","inputs":{{"ovmf":{{"file":"OVMF.fd","sha256":"{}"}},"kernel":{{"file":"vmlinuz","sha256":"{}"}},"initrd":{{"file":"initrd.img","sha256":"{}"}},"cmdline":"console=ttyS0"}},"vcpus":2,"vcpu_type":"EPYC-v4","guest_features":1,"vmm":"QEMU","qemu_version":"10.0.2"}}"#,
        sha(&std::fs::read(images.join("OVMF.fd"))?),
        sha(b"a kernel"),
        sha(b"an initramfs")
    );
    let manifest_file = format!("images/{}.json", sha(manifest.as_bytes()));
    std::fs::write(dir.join(&manifest_file), &manifest)?;
    let measured = ok(
        "cloister-image measure",
        run(
            dir,
            "cloister-image",
            &["measure", "--manifest", &manifest_file],
        )?,
    )?;
    let published = ok(
        "cloister publish image (manifest)",
        run(
            dir,
            "cloister",
            &[
                "publish",
                "image",
                "--manifest",
                &manifest_file,
                "--log",
                &log_url,
                "--token-file",
                "team.token",
            ],
        )?,
    )?;
    assert!(
        published.contains(&measured.trim()[..12]),
        "{published}\n{measured}"
    );

    // The audit replays everything and re-derives the image; the team's monitor sees its
    // release and the revocation.
    let audit = ok(
        "cloister audit",
        run(
            dir,
            "cloister",
            &[
                "audit",
                "--log",
                &log_url,
                "--policy",
                "tlog.policy",
                "--state",
                "audit.state",
                "--images",
                "images",
            ],
        )?,
    )?;
    assert!(
        audit.contains("REVOKED") && audit.contains("signed by mistake"),
        "{audit}"
    );
    assert!(
        audit.contains("re-derived from its inputs, identical"),
        "{audit}"
    );
    // A changed kernel next to the manifest: the audit cannot re-derive, and names the file.
    std::fs::write(images.join("vmlinuz"), b"another kernel")?;
    let out = run(
        dir,
        "cloister",
        &[
            "audit",
            "--log",
            &log_url,
            "--policy",
            "tlog.policy",
            "--images",
            "images",
        ],
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("vmlinuz"), "{err}");
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("echo.wasm.dsse.json"))?)?;
    let key_id = envelope["signatures"][0]["keyid"]
        .as_str()
        .ok_or("no keyid")?
        .to_owned();
    let monitor = ok(
        "cloister monitor",
        run(
            dir,
            "cloister",
            &[
                "monitor",
                "--log",
                &log_url,
                "--policy",
                "tlog.policy",
                "--signer-key-id",
                &key_id,
                "--state",
                "monitor.state",
                "--once",
            ],
        )?,
    )?;
    assert!(
        monitor.contains("NEW RELEASE") && monitor.contains("REVOKED"),
        "{monitor}"
    );
    // A second pass reports nothing new.
    let again = ok(
        "cloister monitor again",
        run(
            dir,
            "cloister",
            &[
                "monitor",
                "--log",
                &log_url,
                "--policy",
                "tlog.policy",
                "--signer-key-id",
                &key_id,
                "--state",
                "monitor.state",
                "--once",
            ],
        )?,
    )?;
    assert!(again.trim().is_empty(), "{again}");
    drop(witnesses);
    Ok(())
}
