//! The `cloister-gateway` binary: keygen, config, and serve's refusals.

use std::path::PathBuf;
use std::process::Command;

fn gateway_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cloister-gateway"))
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(gateway_bin())
        .args(args)
        .output()
        .expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keygen_config_and_serve_refusals() {
    let dir = tempfile::tempdir().expect("tmp");
    let seed = dir.path().join("gw.seed");
    let seed_s = seed.to_str().expect("utf-8");
    let (ok, _, err) = run(&["keygen", "--seed", seed_s]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&seed).expect("seed").len(), 32);
    let (ok, _, err) = run(&["keygen", "--seed", seed_s]);
    assert!(!ok, "never overwrites a seed");
    assert!(err.contains("gw.seed"), "{err}");

    // The same seed prints the same configurations, every time.
    let keys = "1:0:4000000000,2:0:10";
    let (ok, a, err) = run(&["config", "--seed", seed_s, "--keys", keys]);
    assert!(ok, "{err}");
    let (_, b, _) = run(&["config", "--seed", seed_s, "--keys", keys]);
    assert_eq!(a, b);
    let lines: Vec<&str> = a.lines().collect();
    assert_eq!(lines.len(), 3, "{a}");
    assert!(lines[0].starts_with("1 0 4000000000 010020"), "{a}");
    let config1 = lines[0].rsplit(' ').next().expect("hex");
    // Only key 1 is valid now: the served list is its config with a length prefix.
    assert_eq!(lines[2], format!("ohttp-keys 002d{config1}"));

    let issuer = dir.path().join("issuer.pub");
    std::fs::write(&issuer, b"issuer key").expect("write");
    let issuer_s = issuer.to_str().expect("utf-8");
    let store = format!("redb:{}", dir.path().join("spent.redb").display());
    let serve = |keys: &str, host: &str, store: &str, issuer: &str| {
        run(&[
            "serve",
            "--seed",
            seed_s,
            "--keys",
            keys,
            "--host",
            host,
            "--store",
            store,
            "--issuer-key",
            issuer,
            "--issuer-name",
            "issuer.example",
        ])
    };
    // A file that is not the issuer's public key (its directory entry) is refused.
    let (ok, out, err) = serve(keys, "http://127.0.0.1:1", &store, issuer_s);
    assert!(!ok);
    assert!(!out.contains("listening"), "{out}");
    assert!(err.contains("cannot load the issuer key"), "{err}");
    // Configuration errors come first and name what is wrong.
    for (k, h, s, i, want) in [
        (
            "1:5:5",
            "http://127.0.0.1:1",
            store.as_str(),
            issuer_s,
            "later than",
        ),
        (
            keys,
            "https://127.0.0.1:1",
            store.as_str(),
            issuer_s,
            "only http://",
        ),
        (
            keys,
            "http://127.0.0.1:1/path",
            store.as_str(),
            issuer_s,
            "no path",
        ),
        (
            keys,
            "http://127.0.0.1:1",
            "mysql://x",
            issuer_s,
            "redb:PATH or redis://",
        ),
        (
            keys,
            "http://127.0.0.1:1",
            store.as_str(),
            "/nonexistent/issuer.pub",
            "issuer key",
        ),
    ] {
        let (ok, _, err) = serve(k, h, s, i);
        assert!(!ok);
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(
        !dir.path().join("spent.redb").exists(),
        "nothing opened before refusing"
    );
}
