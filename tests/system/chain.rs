use std::path::Path;
use std::process::{Command, Output};

use cloister_test_support::host::Server;
use cloister_test_support::{component, models_dir, workspace_bin, MODEL};
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PLUGINS: [&str; 3] = ["echo", "summarize", "writing-help"];

fn cloister(dir: &Path, args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
    Ok(Command::new(workspace_bin("cloister"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()?)
}

/// The development host (`--tee sim`).
fn host(dir: &Path, args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
    Ok(Command::new(workspace_bin("cloister-host-dev"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .env("CLOISTER_LOG", "warn")
        .output()?)
}

/// The output of a step that must succeed; the error names the step and its stderr.
fn ok(step: &str, out: Output) -> Result<Output, Box<dyn std::error::Error>> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{step} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into())
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `cloister plugin sign` of `<name>.wasm` in `dir` with the team key, version 0.1.0.
fn sign(dir: &Path, name: &str) -> TestResult {
    let file = format!("{name}.wasm");
    let args = [
        "plugin",
        "sign",
        "--key",
        "team.key.pem",
        "--name",
        name,
        "--version",
        "0.1.0",
        &file,
    ];
    ok(
        &format!("cloister plugin sign {name}"),
        cloister(dir, &args)?,
    )?;
    Ok(())
}

/// Hop 1: a team key, and each plugin copied and signed with it through the CLI.
fn sign_plugins(dir: &Path) -> TestResult {
    ok(
        "cloister plugin keygen",
        cloister(dir, &["plugin", "keygen", "--out", "team"])?,
    )?;
    for p in PLUGINS {
        std::fs::write(dir.join(format!("{p}.wasm")), component(p))?;
        sign(dir, p)?;
    }
    Ok(())
}

fn write_config(dir: &Path) -> TestResult {
    let mut config = String::from(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[limits]\n# a debug build: leave the model room\ndeadline_ms = 20000\n\n",
    );
    for p in PLUGINS {
        config.push_str(&format!(
            "[[plugin]]\nname = \"{p}\"\ncomponent = \"{p}.wasm\"\nsignature = \"{p}.wasm.dsse.json\"\nsigners = [\"team.pub.pem\"]\n"
        ));
        if p != "echo" {
            config.push_str(&format!("models = [\"{MODEL}\"]\n"));
        }
        if p == "writing-help" {
            config.push_str("max_memory_bytes = 268435456\n");
        }
        config.push('\n');
    }
    config.push_str(&format!(
        "[models]\ndir = {:?}\nload = [\"{MODEL}\"]\n",
        models_dir()
    ));
    std::fs::write(dir.join("host.toml"), config)?;
    Ok(())
}

/// Hop 2: the measurement log, and the client policy written from it.
fn measure_and_write_policy(dir: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    let measured = ok(
        "cloister-host measure",
        host(dir, &["measure", "--canonical", "--config", "host.toml"])?,
    )?;
    std::fs::write(dir.join("log.json"), &measured.stdout)?;
    let log: Value = serde_json::from_slice(&measured.stdout)?;
    ok(
        "cloister policy init",
        cloister(
            dir,
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
        )?,
    )?;
    Ok(log)
}

/// Hop 3: serve with the simulated TEE, writing the simulator's root where the policy
/// expects it; returns the running host and its URL.
fn serve(dir: &Path) -> (Server, String) {
    let server = Server::start_sim(&dir.join("host.toml"), &dir.join("sim-ark.pem"), &[]);
    let url = format!("https://{}", server.addr);
    (server, url)
}

/// Hop 4b: one feature call through `cloister run`, after attestation.
fn run_feature(
    dir: &Path,
    url: &str,
    feature: &str,
    input: &Value,
) -> Result<Value, Box<dyn std::error::Error>> {
    let file = format!("{feature}-input.json");
    std::fs::write(dir.join(&file), serde_json::to_vec(input)?)?;
    let out = ok(
        &format!("cloister run {feature}"),
        cloister(
            dir,
            &[
                "run",
                feature,
                "--input",
                &file,
                "--host",
                url,
                "--policy",
                "policy.toml",
            ],
        )?,
    )?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn the_whole_chain_from_signing_to_an_attested_feature_call() -> TestResult {
    let dir = tempfile::tempdir()?;
    let dir = dir.path();
    sign_plugins(dir)?;
    write_config(dir)?;
    let log = measure_and_write_policy(dir)?;
    let names: Vec<&str> = log["entries"]
        .as_array()
        .ok_or("the log has no entries")?
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, [MODEL, "echo", "summarize", "writing-help"], "{log}");

    let (server, url) = serve(dir);
    // Hop 4a: attestation.
    let out = cloister(dir, &["connect", &url, "--policy", "policy.toml"])?;
    let summary = text(&out.stdout);
    assert!(out.status.success(), "connect: {}", text(&out.stderr));
    for needle in [
        "host ATTESTED for this session",
        "attestation evidence VERIFIED",
        "plugin echo@0.1.0",
        "plugin summarize@0.1.0",
        "plugin writing-help@0.1.0",
        &format!("model {MODEL}@"),
    ] {
        assert!(
            summary.contains(needle),
            "missing {needle:?} in:\n{summary}"
        );
    }

    // Hop 4b: both features, through the attested session.
    let thread = json!({"messages": [
        {"sender": "sara", "text": "checkout API is returning 500s for 30% of requests since 14:05"},
        {"sender": "tom", "text": "the 14:00 deploy bumped workers from 8 to 32, the db ran out of connections"},
        {"sender": "tom", "text": "rolling back now"},
        {"sender": "tom", "text": "rollback done at 14:22, error rate back to 0.1%"},
        {"sender": "ana", "text": "4k checkouts failed, nobody was charged"},
        {"sender": "ana", "text": "@tom can you add an alert on connection count above 80%?"}
    ]});
    let summary = run_feature(dir, &url, "summarize", &thread)?;
    let bullets = summary["bullets"].as_array().ok_or("no bullets")?;
    assert!(!bullets.is_empty(), "{summary}");
    assert_eq!(summary["model"], MODEL, "{summary}");
    let help = run_feature(
        dir,
        &url,
        "writing-help",
        &json!({"text": "We was hoping to ship on Friday, but I dont think its ready."}),
    )?;
    let suggestions = help["suggestions"].as_array().ok_or("no suggestions")?;
    assert!(
        suggestions.iter().any(|s| s["kind"] == "spelling"),
        "no spelling suggestion for `dont`: {help}"
    );
    let echoed = run_feature(dir, &url, "echo", &json!({"hello": "world"}))?;
    assert_eq!(echoed["hello"], "world");
    let output = server.stop();
    for secret in ["checkouts failed", "We was hoping"] {
        assert!(!output.contains(secret), "the host logged request content");
    }

    // Hop 5a: a plugin whose bytes changed after signing: the host refuses to start,
    // naming it.
    let good_echo = std::fs::read(dir.join("echo.wasm"))?;
    let mut tampered = good_echo.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    std::fs::write(dir.join("echo.wasm"), &tampered)?;
    let out = host(dir, &["measure", "--config", "host.toml"])?;
    assert!(!out.status.success(), "a tampered plugin was loaded");
    let err = text(&out.stderr);
    assert!(
        err.contains("echo"),
        "the error does not name the plugin: {err}"
    );
    let out = host(dir, &["serve", "--config", "host.toml", "--tee", "sim"])?;
    assert!(
        !out.status.success(),
        "a host with a tampered plugin served"
    );

    // Hop 5b: the same bytes, re-signed with the team's key (a leaked key, or a release
    // nobody published): the host loads it, but the client's policy no longer matches the
    // attested measurement log, and nothing is sent.
    sign(dir, "echo")?;
    let (_server, url) = serve(dir);
    let out = cloister(dir, &["connect", &url, "--policy", "policy.toml"])?;
    assert!(
        !out.status.success(),
        "the client accepted an unpublished plugin"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("echo"),
        "the refusal does not name the plugin: {err}"
    );
    std::fs::write(dir.join("in.json"), br#"{"hello":"world"}"#)?;
    let out = cloister(
        dir,
        &[
            "run",
            "echo",
            "--input",
            "in.json",
            "--host",
            &url,
            "--policy",
            "policy.toml",
        ],
    )?;
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "run printed output from a refused host"
    );
    Ok(())
}
