//! The oblivious path across processes: a Privacy Pass issuer (`cloister-issuer`), an
//! Oblivious HTTP relay (`cloister-relay`), the operator's gateway (`cloister-gateway`, with
//! its embedded spent-token store) and a host with a tunnel endpoint (`cloister-host` with
//! `[tunnel]`, simulated TEE). The client (`cloister run --relay`) obtains a token, runs
//! RA-TLS through relay and gateway, verifies the host during the handshake, and only then
//! calls a feature.
//!
//! Two TCP taps record every byte a hop handled: client ↔ relay (what the relay saw) and
//! gateway ↔ host (what the gateway sent and the host saw). Neither may contain the
//! request's plaintext, the token in clear, or the client's headers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use crate::common::{listening, ok, run, Killed};
use cloister_test_support::host::{Fixture, Server};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every byte a tap forwarded, both ways.
type Recorded = Arc<Mutex<Vec<u8>>>;

/// A TCP tap: forwards every connection to `upstream` and records all bytes both ways.
fn tap(upstream: String) -> Result<(String, Recorded), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(down) = conn else { continue };
            let Ok(up) = TcpStream::connect(&upstream) else {
                continue;
            };
            for (mut from, mut to) in [
                (
                    down.try_clone().expect("clone"),
                    up.try_clone().expect("clone"),
                ),
                (up, down),
            ] {
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        record.lock().expect("tap").extend_from_slice(&buf[..n]);
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    Ok((addr, seen))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The outside services of the oblivious path, running: issuer (with one account, its API
/// key in `api-key`), gateway (forwarding to `host_tunnel`, embedded store) and relay.
pub(crate) struct Oblivious {
    _procs: Vec<Killed>,
    /// The relay's address (HOST:PORT).
    pub relay: String,
    /// The issuer's address (HOST:PORT).
    pub issuer: String,
}

/// Starts issuer, gateway and relay in `dir` (files `issuer/`, `accounts`, `api-key`, `seed`,
/// `spent.redb`). The gateway's name is `gateway.test`, its key 1 is valid from 0 to
/// 4000000000; the issuer's name is `issuer.example`.
pub(crate) fn start_oblivious(
    dir: &Path,
    host_tunnel: &str,
) -> Result<Oblivious, Box<dyn std::error::Error>> {
    ok(
        "issuer keygen",
        run(dir, "cloister-issuer", &["keygen", "--out", "issuer"])?,
    )?;
    let api_key = ok(
        "issuer add-account",
        run(
            dir,
            "cloister-issuer",
            &["add-account", "--accounts", "accounts", "--name", "alice"],
        )?,
    )?;
    std::fs::write(dir.join("api-key"), api_key.trim())?;
    let (issuer, issuer_addr) = listening(
        dir,
        "cloister-issuer",
        &[
            "serve",
            "--key",
            "issuer",
            "--accounts",
            "accounts",
            "--name",
            "issuer.example",
            "--rate",
            "10/3600",
        ],
    )?;
    ok(
        "gateway keygen",
        run(dir, "cloister-gateway", &["keygen", "--seed", "seed"])?,
    )?;
    let (gateway, gateway_addr) = listening(
        dir,
        "cloister-gateway",
        &[
            "serve",
            "--seed",
            "seed",
            "--keys",
            GATEWAY_KEYS,
            "--host",
            &format!("http://{host_tunnel}"),
            "--store",
            "redb:spent.redb",
            "--issuer-key",
            "issuer/token-key.json",
            "--issuer-name",
            "issuer.example",
        ],
    )?;
    let (relay, relay_addr) = listening(
        dir,
        "cloister-relay",
        &["--gateway", &format!("http://{gateway_addr}")],
    )?;
    Ok(Oblivious {
        _procs: vec![issuer, gateway, relay],
        relay: relay_addr,
        issuer: issuer_addr,
    })
}

/// The gateway's key windows in the tests.
pub(crate) const GATEWAY_KEYS: &str = "1:0:4000000000";

/// `cloister run FEATURE --input INPUT --relay … --policy POLICY` with the stack's issuer;
/// `extra` adds arguments (e.g. `--gateway-name`).
pub(crate) fn run_relayed(
    dir: &Path,
    stack: &Oblivious,
    relay: &str,
    feature: &str,
    input: &str,
    policy: &str,
    extra: &[&str],
) -> Result<Output, Box<dyn std::error::Error>> {
    let relay = format!("http://{relay}");
    let issuer = format!(
        "http://{}/.well-known/private-token-issuer-directory",
        stack.issuer
    );
    let mut args = vec![
        "run",
        feature,
        "--input",
        input,
        "--relay",
        relay.as_str(),
        "--issuer",
        issuer.as_str(),
        "--issuer-name",
        "issuer.example",
        "--issuer-key",
        "issuer/token-key.json",
        "--api-key-file",
        "api-key",
        "--policy",
        policy,
    ];
    args.extend_from_slice(extra);
    run(dir, "cloister", &args)
}

#[test]
fn a_feature_call_through_relay_and_gateway_reveals_nothing_to_either() -> TestResult {
    let f = Fixture::new(&["echo"]);
    let dir = f.path("");
    let dir = dir.as_path();
    let mut config = std::fs::read_to_string(f.config())?;
    config.push_str("\n[tunnel]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(f.config(), config)?;

    // The operator: the host, its measurement, the client policy.
    let host = Server::start_sim(&f.config(), &f.path("sim-ark.pem"), &[]);
    let tunnel = host.tunnel_addr();
    let measured = ok(
        "cloister-host measure",
        run(
            dir,
            "cloister-host",
            &["measure", "--canonical", "--config", "host.toml"],
        )?,
    )?;
    std::fs::write(f.path("log.json"), measured)?;
    ok(
        "cloister policy init",
        run(
            dir,
            "cloister",
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

    let (host_tap, gateway_saw) = tap(tunnel.clone())?;
    let stack = start_oblivious(dir, &host_tap)?;
    let (relay_tap, relay_saw) = tap(stack.relay.clone())?;
    let api_key = std::fs::read_to_string(f.path("api-key"))?;

    // The client: a marker in the request that must appear nowhere on the wire.
    let marker = "confidential-marker-7f3a9c";
    std::fs::write(f.path("in.json"), format!("{{\"note\":\"{marker}\"}}"))?;
    let out = run_relayed(
        dir,
        &stack,
        &relay_tap,
        "echo",
        "in.json",
        "policy.toml",
        &[],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = ok("cloister run --relay", out)?;
    assert!(stdout.contains(marker), "the feature's answer: {stdout}");
    assert!(
        stderr.contains("host ATTESTED for this session"),
        "{stderr}"
    );
    assert!(stderr.contains("tunnel mode"), "{stderr}");
    assert!(
        stderr.contains("2 round trips, 1 token spent"),
        "handshake + request in two round trips: {stderr}"
    );

    // What the relay handled (client <-> relay): ciphertext only.
    let relay_saw = relay_saw.lock().map_err(|_| "tap")?.clone();
    assert!(
        contains(&relay_saw, b"message/ohttp-req"),
        "the tap saw the traffic"
    );
    for (what, needle) in [
        ("the request's plaintext", marker.as_bytes()),
        (
            "the feature name in the path",
            b"/v1/features/echo".as_slice(),
        ),
        ("the token header", b"PrivateToken"),
        ("the session header", b"cloister-session"),
        ("the TLS records' content type", b"cloister-tls-records"),
    ] {
        assert!(!contains(&relay_saw, needle), "the relay saw {what}");
    }
    // What the gateway sent to the host (and the host saw): TLS records, no plaintext, no
    // token, nothing about the client.
    let gateway_saw = gateway_saw.lock().map_err(|_| "tap")?.clone();
    assert!(
        contains(&gateway_saw, b"/v1/tunnel/"),
        "the tap saw the traffic"
    );
    for (what, needle) in [
        ("the request's plaintext", marker.as_bytes()),
        (
            "the feature name in the path",
            b"/v1/features/echo".as_slice(),
        ),
        ("a token", b"PrivateToken"),
        ("the account's API key", api_key.trim().as_bytes()),
        ("a forwarded client address", b"orwarded"),
        ("a user agent", b"ser-agent"),
    ] {
        assert!(!contains(&gateway_saw, needle), "the host saw {what}");
    }

    // The relay refuses what is not an encapsulated request, and the gateway a request to
    // a key it does not have (the client then refetches keys).
    // Key id 9 (the gateway serves 1), X25519/HKDF-SHA256/AES-128-GCM, an encapsulated key
    // and a ciphertext of the right sizes.
    let mut request = vec![9u8, 0x00, 0x20, 0x00, 0x01, 0x00, 0x01];
    request.extend_from_slice(&[0x42; 32 + 24]);
    let mut bad = TcpStream::connect(&relay_tap)?;
    bad.write_all(
        format!(
            "POST /ohttp HTTP/1.1\r\nHost: x\r\nContent-Type: message/ohttp-req\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            request.len()
        )
        .as_bytes(),
    )?;
    bad.write_all(&request)?;
    let mut answer = String::new();
    bad.read_to_string(&mut answer)?;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("ohttp-key"), "{answer}");
    drop(host);
    Ok(())
}
