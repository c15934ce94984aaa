//! `cloister connect` and `cloister run` against a real `cloister-host` (simulated TEE) on
//! loopback. The host binary is the workspace's (`cargo test --workspace` builds it).
use std::path::Path;
use std::process::{Command, Output};

use cloister_test_support::host::{host_bin, Server};

use super::cloister;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The deployed host and its URL.
struct Host {
    _server: Server,
    url: String,
}

fn ok(o: Output) -> Result<Output, Box<dyn std::error::Error>> {
    if o.status.success() {
        Ok(o)
    } else {
        Err(format!("command failed: {}", String::from_utf8_lossy(&o.stderr)).into())
    }
}

/// A deployment with the echo plugin signed by a fresh key (through the CLI), served with
/// the simulated TEE; the simulator's root is written to `sim-ark.pem`, and the client
/// policy by `cloister policy init` from the host's own measurement log.
fn deploy(dir: &Path) -> Result<Host, Box<dyn std::error::Error>> {
    ok(cloister(&["plugin", "keygen", "--out", "team"], dir)?)?;
    std::fs::write(
        dir.join("echo.wasm"),
        cloister_test_support::component("echo"),
    )?;
    ok(cloister(
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
        dir,
    )?)?;
    std::fs::write(
        dir.join("host.toml"),
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[plugin]]\nname = \"echo\"\ncomponent = \"echo.wasm\"\nsignature = \"echo.wasm.dsse.json\"\nsigners = [\"team.pub.pem\"]\n",
    )?;
    let measured = ok(Command::new(host_bin())
        .args(["measure", "--canonical", "--config", "host.toml"])
        .current_dir(dir)
        .output()?)?;
    std::fs::write(dir.join("log.json"), measured.stdout)?;
    ok(cloister(
        &[
            "policy",
            "init",
            "--log",
            "log.json",
            "--simulated-launch",
            "--trust-simulator-root",
            "sim-ark.pem",
            "--out",
            "policy.toml",
        ],
        dir,
    )?)?;
    // The same host and plugins, without trusting the simulator's root.
    ok(cloister(
        &[
            "policy",
            "init",
            "--log",
            "log.json",
            "--simulated-launch",
            "--out",
            "untrusting.toml",
        ],
        dir,
    )?)?;
    let server = Server::start_sim(&dir.join("host.toml"), &dir.join("sim-ark.pem"), &[]);
    let url = format!("https://{}", server.addr);
    Ok(Host {
        _server: server,
        url,
    })
}

#[test]
fn connect_prints_the_verified_summary_and_run_calls_the_feature() -> TestResult {
    let dir = tempfile::tempdir()?;
    let host = deploy(dir.path())?;
    let out = cloister(
        &["connect", &host.url, "--policy", "policy.toml"],
        dir.path(),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "host ATTESTED for this session",
        "attestation evidence VERIFIED",
        "SIMULATOR root",
        "binding:      session mode",
        "plugin echo@0.1.0",
        "bound to this session's TLS exporter",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }

    std::fs::write(dir.path().join("input.json"), br#"{"hello":"world"}"#)?;
    let out = cloister(
        &[
            "run",
            "echo",
            "--input",
            "input.json",
            "--host",
            &host.url,
            "--policy",
            "policy.toml",
        ],
        dir.path(),
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(value["hello"], "world", "{value}");
    Ok(())
}

#[test]
fn connect_refuses_a_simulated_host_without_explicit_trust() -> TestResult {
    let dir = tempfile::tempdir()?;
    let host = deploy(dir.path())?;
    let out = cloister(
        &["connect", &host.url, "--policy", "untrusting.toml"],
        dir.path(),
    )?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NOT trusted"), "{err}");
    assert!(err.contains("REJECTED"), "{err}");
    // `run` sends nothing to an unverified host.
    std::fs::write(dir.path().join("input.json"), b"{}")?;
    let out = cloister(
        &[
            "run",
            "echo",
            "--input",
            "input.json",
            "--host",
            &host.url,
            "--policy",
            "untrusting.toml",
        ],
        dir.path(),
    )?;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let out = cloister(&["connect", "http://127.0.0.1:1"], dir.path())?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https://"));
    Ok(())
}
