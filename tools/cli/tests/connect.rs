//! `cloister connect` and `cloister run` against a real `cloister-host` (simulated TEE) on
//! loopback. The host binary is the workspace's (`cargo test --workspace` builds it).
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn cloister(args: &[&str], dir: &Path) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_cloister"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
}

fn host_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_cloister")).with_file_name("cloister-host");
    assert!(
        bin.exists(),
        "{} not built: run the workspace tests (cargo test --workspace)",
        bin.display()
    );
    bin
}

fn echo_component() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins/echo.wasm");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; build the guest plugins first with scripts/build-plugins",
            path.display()
        )
    })
}

struct Host {
    child: Child,
    url: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A deployment with the echo plugin signed by a fresh key (through the CLI), served with
/// the simulated TEE; the simulator's root is written to `sim-ark.pem`.
fn deploy(dir: &Path) -> Result<Host, Box<dyn std::error::Error>> {
    let ok = |o: Output| -> Result<Output, Box<dyn std::error::Error>> {
        if o.status.success() {
            Ok(o)
        } else {
            Err(format!("command failed: {}", String::from_utf8_lossy(&o.stderr)).into())
        }
    };
    ok(cloister(&["plugin", "keygen", "--out", "team"], dir)?)?;
    std::fs::write(dir.join("echo.wasm"), echo_component())?;
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
        .args(["measure", "--config", "host.toml"])
        .current_dir(dir)
        .output()?)?;
    let line = String::from_utf8(measured.stdout)?
        .lines()
        .find(|l| l.starts_with("plugin"))
        .ok_or("no plugin line from measure")?
        .to_owned();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let sha256 = fields[2].trim_start_matches("sha256:");
    let signer = fields[3].trim_start_matches("signer:");
    let mut child = Command::new(host_bin())
        .args([
            "serve",
            "--config",
            "host.toml",
            "--tee",
            "sim",
            "--sim-root-out",
            "sim-ark.pem",
        ])
        .current_dir(dir)
        .env("CLOISTER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    let addr = first
        .trim()
        .strip_prefix("cloister-host listening on https://")
        .and_then(|r| r.split_whitespace().next())
        .ok_or_else(|| format!("unexpected first line {first:?}"))?
        .to_owned();
    // The default simulated launch measurement: SHA-384("cloister simulated launch v1").
    let measurement = {
        use sha2::Digest;
        hex::encode(sha2::Sha384::digest(b"cloister simulated launch v1"))
    };
    std::fs::write(
        dir.join("policy.toml"),
        format!(
            "measurements = [\"{measurement}\"]\ntrust_simulator_root = \"sim-ark.pem\"\n\n[[plugin]]\nname = \"echo\"\nversion = \"0.1.0\"\nsha256 = \"{sha256}\"\nsigner_key_id = \"{signer}\"\n"
        ),
    )?;
    std::fs::write(
        dir.join("untrusting.toml"),
        format!("measurements = [\"{measurement}\"]\nallow_any_plugin = true\n"),
    )?;
    Ok(Host {
        child,
        url: format!("https://{addr}"),
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
