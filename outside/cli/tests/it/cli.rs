//! End-to-end test of `cloister plugin`: keygen → sign → verify → inspect.

use std::fs;
use std::path::Path;
use std::process::Output;

use super::{stderr, stdout};

fn cloister(args: &[&str], dir: &Path) -> Output {
    super::cloister(args, dir).unwrap_or_else(|e| panic!("cannot run cloister: {e}"))
}

fn key_id(keygen_out: &Output) -> String {
    stdout(keygen_out)
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn keygen_sign_verify_inspect() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    fs::write(d.join("plugin.wasm"), b"\0asm\x0d\0\x01\0 component bytes")?;

    // keygen
    let out = cloister(&["plugin", "keygen", "--out", "alice"], d);
    assert!(out.status.success(), "{}", stderr(&out));
    let alice = key_id(&out);
    assert_eq!(alice.len(), 64, "{}", stdout(&out));
    let key_pem = fs::read_to_string(d.join("alice.key.pem"))?;
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!stdout(&out).contains(key_pem.lines().nth(1).unwrap_or("-")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.join("alice.key.pem"))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(fs::read_to_string(d.join("alice.pub.pem"))?.starts_with("-----BEGIN PUBLIC KEY-----"));

    // keygen refuses to overwrite
    let out = cloister(&["plugin", "keygen", "--out", "alice"], d);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("alice.key.pem"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(d.join("alice.key.pem"))?, key_pem);

    let out = cloister(&["plugin", "keygen", "--out", "mallory"], d);
    assert!(out.status.success(), "{}", stderr(&out));

    // sign
    let out = cloister(
        &[
            "plugin",
            "sign",
            "--key",
            "alice.key.pem",
            "--name",
            "summarize",
            "--version",
            "1.2.0",
            "plugin.wasm",
        ],
        d,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("summarize@1.2.0"), "{}", stdout(&out));
    assert!(d.join("plugin.wasm.dsse.json").exists());

    // sign rejects a bad name
    let out = cloister(
        &[
            "plugin",
            "sign",
            "--key",
            "alice.key.pem",
            "--name",
            "Bad_Name",
            "--version",
            "1",
            "--out",
            "bad.json",
            "plugin.wasm",
        ],
        d,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid plugin name"),
        "{}",
        stderr(&out)
    );

    // verify ok
    let verify = |pubkeys: &[&str], component: &str| {
        let mut args = vec!["plugin", "verify"];
        for p in pubkeys {
            args.extend(["--pubkey", p]);
        }
        args.extend(["--signature", "plugin.wasm.dsse.json", component]);
        cloister(&args, d)
    };
    let out = verify(&["alice.pub.pem"], "plugin.wasm");
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.starts_with("verified: summarize@1.2.0 sha256="),
        "{line}"
    );
    assert!(
        line.trim_end().ends_with(&format!("signer={alice}")),
        "{line}"
    );

    let out = verify(&["mallory.pub.pem", "alice.pub.pem"], "plugin.wasm");
    assert!(out.status.success(), "{}", stderr(&out));

    // verify with another key fails
    let out = verify(&["mallory.pub.pem"], "plugin.wasm");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no signature by a trusted key"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());

    // verify a modified component fails
    let mut bytes = fs::read(d.join("plugin.wasm"))?;
    bytes[12] ^= 1;
    fs::write(d.join("modified.wasm"), &bytes)?;
    let out = verify(&["alice.pub.pem"], "modified.wasm");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("digest mismatch"), "{}", stderr(&out));
    assert!(stderr(&out).contains("modified.wasm"), "{}", stderr(&out));

    // missing file names the file
    let out = verify(&["nope.pub.pem"], "plugin.wasm");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope.pub.pem"), "{}", stderr(&out));

    // inspect
    let out = cloister(&["plugin", "inspect", "plugin.wasm.dsse.json"], d);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("UNVERIFIED"), "{text}");
    assert!(text.contains("summarize@1.2.0"), "{text}");
    assert!(text.contains(&alice), "{text}");
    assert!(text.contains("sha256:"), "{text}");
    Ok(())
}
