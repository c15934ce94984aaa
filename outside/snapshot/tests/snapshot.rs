//! The snapshot of the writing-help plugin (built by scripts/build-plugins,
//! which these tests need) is deterministic and is what build-plugins
//! installs in target/plugins/.

use std::path::PathBuf;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    let path = repo(rel);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; build the guest plugins first with scripts/build-plugins",
            path.display()
        )
    })
}

#[test]
fn snapshots_are_deterministic_and_installed() {
    let input = read("guest-plugins/target/wasm32-wasip2/release/writing_help.wasm");
    let a = cloister_snapshot::snapshot(&input, cloister_snapshot::DEFAULT_INIT_FUNC).unwrap();
    let b = cloister_snapshot::snapshot(&input, cloister_snapshot::DEFAULT_INIT_FUNC).unwrap();
    assert!(a == b, "two snapshots of the same component differ");
    assert_ne!(a, input);
    // What build-plugins installed (and what gets signed) is this snapshot.
    let installed = read("target/plugins/writing-help.wasm");
    assert_eq!(
        cloister_snapshot::sha256_hex(&installed),
        cloister_snapshot::sha256_hex(&a),
        "target/plugins/writing-help.wasm is not the snapshot of the built component"
    );
}

#[test]
fn a_component_without_the_init_export_is_refused() {
    let echo = read("guest-plugins/target/wasm32-wasip2/release/echo.wasm");
    let err = cloister_snapshot::snapshot(&echo, "wizer-initialize").unwrap_err();
    assert!(format!("{err:#}").contains("wizer-initialize"), "{err:#}");
}
