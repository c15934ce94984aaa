//! The host end to end: signature checks that fail closed, the measurement
//! log, and the HTTP API of a real `cloister-host serve` process.

use cloister_test_support::component;
use cloister_test_support::host::{canonical_log, measure, Fixture, Server};
use serde_json::{json, Value};

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn api_serves_features_measurement_and_errors() {
    let f = Fixture::new(&["echo", "hostile-trap"]);
    let server = Server::start(&f.config());

    let (status, body) = server.request("GET", "/healthz", b"");
    assert_eq!((status, json(&body)), (200, json!({"status": "ok"})));

    let (status, body) = server.request("GET", "/v1/features", b"");
    assert_eq!(status, 200);
    let features = json(&body);
    let names: Vec<&str> = features["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "hostile-trap"]);
    assert_eq!(features["features"][0]["version"], "0.1.0");
    assert_eq!(
        features["features"][0]["signer_key_id"],
        f.key.public_key().key_id()
    );

    let input = json!({"text": "bonjour 🌍"}).to_string();
    let (status, body) = server.request("POST", "/v1/features/echo", input.as_bytes());
    assert_eq!((status, body.as_str()), (200, input.as_str()));

    // The measurement the API serves is the one `measure` prints.
    let (status, body) = server.request("GET", "/v1/measurement", b"");
    assert_eq!(status, 200);
    let m = json(&body);
    let (ok, out, _) = measure(&f.config());
    assert!(ok);
    let digest = m["sha256"].as_str().unwrap();
    assert!(
        out.contains(&format!("measurement-log sha256:{digest}")),
        "{out}"
    );
    assert_eq!(m["log"]["entries"][0]["name"], "echo");
    // The `log` member is the canonical log verbatim: its bytes hash to the digest.
    let log_text = body
        .strip_prefix("{\"log\":")
        .and_then(|rest| rest.rsplit_once(",\"sha256\":"))
        .map(|(log, _)| log)
        .expect("log member first");
    let log = cloister_measurement::MeasurementLog::from_canonical_bytes(log_text.as_bytes())
        .expect("served log is canonical");
    assert_eq!(log.digest_hex(), digest);
    assert_eq!(m["log"]["entries"][1]["kind"], "plugin");

    // Errors: stable codes, never the input.
    let secret = "s3cr3t-user-text";
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (
            "POST",
            "/v1/features/nope",
            "{}".into(),
            404,
            "unknown_feature",
        ),
        (
            "GET",
            "/v1/features/echo",
            String::new(),
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            "/v1/features/echo",
            format!("not json {secret}"),
            400,
            "invalid_json",
        ),
        ("POST", "/v2/whatever", String::new(), 404, "not_found"),
        (
            "POST",
            "/v1/features/hostile-trap",
            json!({"mode": "panic", "text": secret}).to_string(),
            500,
            "plugin_trapped",
        ),
    ];
    for (method, path, body, want_status, want_code) in cases {
        let (status, resp) = server.request(method, path, body.as_bytes());
        assert_eq!(status, want_status, "{method} {path}: {resp}");
        assert_eq!(json(&resp)["error"]["code"], want_code, "{method} {path}");
        assert!(!resp.contains(secret), "error echoed the input: {resp}");
    }
    // The plugin that trapped serves its next request.
    let (status, body) = server.request("POST", "/v1/features/hostile-trap", br#"{"mode":"ok"}"#);
    assert_eq!((status, json(&body)), (200, json!({"ok": true})));

    let big = vec![b' '; (1 << 20) + 1];
    let (status, body) = server.request("POST", "/v1/features/echo", &big);
    assert_eq!(status, 413);
    assert_eq!(json(&body)["error"]["code"], "input_too_large");
}

#[test]
fn measurement_is_stable_and_changes_with_any_plugin_byte() {
    let f = Fixture::new(&["echo", "hostile-state"]);
    let (ok1, first, err1) = measure(&f.config());
    let (ok2, second, _) = measure(&f.config());
    assert!(ok1, "{err1}");
    assert!(ok2);
    assert_eq!(first, second, "measure output differs between runs");
    assert_eq!(first.lines().count(), 3);

    // Re-signed component with one extra byte (a custom section, so it still
    // loads): a different digest.
    let mut changed = component("echo");
    changed.extend_from_slice(&[0x00, 0x03, 0x01, b'x', 0x00]);
    f.install("echo", &changed);
    let (ok3, third, err3) = measure(&f.config());
    assert!(ok3, "{err3}");
    assert_ne!(
        first.lines().last(),
        third.lines().last(),
        "digest did not change"
    );
    assert_ne!(first.lines().next(), third.lines().next());
    assert_eq!(
        first.lines().nth(1),
        third.lines().nth(1),
        "hostile-state entry changed"
    );

    // The same byte changed without re-signing: the host refuses to start.
    let mut tampered = component("echo");
    tampered.extend_from_slice(&[0x00, 0x03, 0x01, b'y', 0x00]);
    std::fs::write(f.path("echo.wasm"), &tampered).unwrap();
    let (ok4, _, err4) = measure(&f.config());
    assert!(!ok4);
    assert!(
        err4.contains("plugin `echo`") && err4.contains("digest"),
        "{err4}"
    );
}

#[test]
fn any_bad_signature_stops_the_host() {
    // Each case breaks only the second plugin: the host must not start with
    // the first one alone.
    type Breaker = fn(&Fixture);
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "missing signature",
            |f| std::fs::remove_file(f.path("hostile-trap.wasm.dsse.json")).unwrap(),
            "cannot read signature",
        ),
        (
            "malformed signature",
            |f| std::fs::write(f.path("hostile-trap.wasm.dsse.json"), b"{not json").unwrap(),
            "signature",
        ),
        (
            "wrong key",
            |f| {
                let other = cloister_signing::SigningKey::generate().unwrap();
                f.install_signed_by(
                    "hostile-trap",
                    "hostile-trap",
                    &component("hostile-trap"),
                    &other,
                )
            },
            "trusted",
        ),
        (
            "digest mismatch",
            |f| std::fs::write(f.path("hostile-trap.wasm"), component("echo")).unwrap(),
            "digest",
        ),
        (
            "signed for another plugin",
            |f| f.install_signed_by("hostile-trap", "echo", &component("hostile-trap"), &f.key),
            "signature is for plugin `echo`",
        ),
        (
            "metadata disagrees with the signature",
            |f| {
                // echo's component, correctly signed as `hostile-trap`.
                f.install_signed_by("hostile-trap", "hostile-trap", &component("echo"), &f.key)
            },
            "metadata says echo@0.1.0",
        ),
        (
            "bad signer key file",
            |f| {
                std::fs::write(
                    f.path("team.pub.pem"),
                    b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                )
                .unwrap()
            },
            "signer key",
        ),
        (
            "forbidden import",
            |f| f.install("hostile-trap", &component("hostile-socket")),
            "wasi:sockets",
        ),
    ];
    for (what, breaker, needle) in cases {
        let f = Fixture::new(&["echo", "hostile-trap"]);
        breaker(&f);
        let (ok, out, err) = measure(&f.config());
        assert!(!ok, "{what}: host started anyway: {out}");
        assert!(out.is_empty(), "{what}: printed a measurement: {out}");
        assert!(
            err.contains(needle),
            "{what}: expected `{needle}` in: {err}"
        );
        if needle != "signer key" {
            assert!(
                err.contains("plugin `hostile-trap`"),
                "{what}: plugin not named: {err}"
            );
        }
    }
}

#[test]
fn request_content_never_reaches_host_output() {
    // hostile-env prints its input to stdout and stderr; the host discards
    // plugin stdio and logs sizes and timings only, even at debug level.
    let f = Fixture::new(&["echo", "hostile-env", "hostile-trap"]);
    let server = Server::start_with_log(&f.config(), "debug");
    let secret = "c0nfidential-user-message-4d1e";
    let body = json!({ "text": secret }).to_string();
    let (status, _) = server.request("POST", "/v1/features/hostile-env", body.as_bytes());
    assert_eq!(status, 200);
    let (status, resp) = server.request("POST", "/v1/features/echo", body.as_bytes());
    assert_eq!((status, resp.contains(secret)), (200, true));
    let trap = json!({ "mode": "panic", "text": secret }).to_string();
    let (status, _) = server.request("POST", "/v1/features/hostile-trap", trap.as_bytes());
    assert_eq!(status, 500);
    let output = server.stop();
    assert!(
        output.contains("feature ok"),
        "debug logging was not on: {output}"
    );
    assert!(
        !output.contains(secret),
        "request content reached the host output:\n{output}"
    );
}

/// `cloister-host` is the production binary: it has no simulator and refuses `--tee sim`
/// before it reads anything, naming the development host. The same configuration and
/// `measure` work in both binaries and give the same log.
#[test]
fn the_production_binary_refuses_the_simulator() {
    let f = Fixture::new(&["echo"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloister-host"))
        .args(["serve", "--tee", "sim", "--config"])
        .arg(f.config())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the production host accepted --tee sim"
    );
    assert!(
        err.contains("production host") && err.contains("cloister-host-dev"),
        "{err}"
    );
    assert!(
        !err.contains("plugins verified"),
        "it loaded plugins first: {err}"
    );

    let production = std::process::Command::new(env!("CARGO_BIN_EXE_cloister-host"))
        .args(["measure", "--canonical", "--config"])
        .arg(f.config())
        .output()
        .unwrap();
    assert!(production.status.success());
    let development = canonical_log(&f.config());
    assert_eq!(
        String::from_utf8_lossy(&production.stdout)
            .trim_end()
            .as_bytes(),
        development.canonical_bytes()
    );
}

fn host_cmd(args: &[&str], config: &std::path::Path) -> (bool, String, String) {
    let out = std::process::Command::new(cloister_test_support::host::host_bin())
        .arg(args[0])
        .arg("--config")
        .arg(config)
        .args(&args[1..])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `cloister-host precompile` writes one artifact per verified plugin, named by the
/// component's hash; `--precompiled` loads them instead of compiling, with the same
/// measurement log and the same answers; a missing or swapped artifact stops the host.
#[test]
fn precompiled_plugins_measure_and_serve_as_compiled_ones() {
    let f = Fixture::new(&["echo", "hostile-trap"]);
    let out = f.path("precompiled");
    let out_s = out.to_string_lossy().into_owned();
    let (ok, stdout, stderr) = host_cmd(&["precompile", "--out", &out_s], &f.config());
    assert!(ok, "precompile failed: {stderr}");
    let echo = sha256_hex(&std::fs::read(f.path("echo.wasm")).unwrap());
    let trap = sha256_hex(&std::fs::read(f.path("hostile-trap.wasm")).unwrap());
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want = vec![format!("{echo}.cwasm"), format!("{trap}.cwasm")];
    want.sort();
    assert_eq!(files, want, "{stdout}");
    assert!(
        stdout.contains("echo") && stdout.contains("hostile-trap"),
        "{stdout}"
    );

    // The same log, byte for byte, whichever way the code was made.
    let (ok, compiled, stderr) = measure(&f.config());
    assert!(ok, "{stderr}");
    let (ok, loaded, stderr) = host_cmd(&["measure", "--precompiled", &out_s], &f.config());
    assert!(ok, "{stderr}");
    assert_eq!(compiled, loaded);

    // It serves.
    let server = Server::start_with_args(
        &f.config(),
        "warn",
        &["--tee", "none", "--precompiled", &out_s],
    );
    let (status, body) = server.request("POST", "/v1/features/echo", br#"{"a":1}"#);
    assert_eq!((status, json(&body)), (200, json!({"a": 1})));
    drop(server);

    // Swapped artifacts: each plugin's code answers with the other's metadata, which
    // the signature does not vouch for.
    let (e, t) = (
        out.join(format!("{echo}.cwasm")),
        out.join(format!("{trap}.cwasm")),
    );
    let tmp = out.join("swap");
    std::fs::rename(&e, &tmp).unwrap();
    std::fs::rename(&t, &e).unwrap();
    std::fs::rename(&tmp, &t).unwrap();
    let (ok, _, stderr) = host_cmd(&["measure", "--precompiled", &out_s], &f.config());
    assert!(!ok);
    assert!(
        stderr.contains("signature vouches for echo@0.1.0"),
        "no identity refusal: {stderr}"
    );

    // Missing: the host names the plugin and does not fall back to compiling.
    std::fs::remove_file(&e).unwrap();
    let (ok, _, stderr) = host_cmd(&["measure", "--precompiled", &out_s], &f.config());
    assert!(!ok);
    assert!(
        stderr.contains("plugin `echo`: precompiled artifact unusable"),
        "{stderr}"
    );

    // A component changed after signing: nothing is compiled, nothing written.
    let fresh = f.path("precompiled-2");
    let mut bytes = std::fs::read(f.path("echo.wasm")).unwrap();
    bytes.extend_from_slice(&[0x00, 0x03, 0x01, b'x', 0x00]);
    std::fs::write(f.path("echo.wasm"), bytes).unwrap();
    let (ok, _, stderr) = host_cmd(
        &["precompile", "--out", &fresh.to_string_lossy()],
        &f.config(),
    );
    assert!(!ok);
    assert!(
        stderr.contains("plugin `echo`: signature") && stderr.contains("rejected"),
        "{stderr}"
    );
    assert!(!fresh.exists());
}
