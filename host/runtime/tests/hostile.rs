//! The hostile plugin corpus against the real runtime: each component tries
//! one thing a plugin must not do, and each test asserts the specific error
//! and that the next request of a good plugin still succeeds.
//!
//! The components are built from `guest-plugins/` by `scripts/build-plugins`
//! into `target/plugins/` (or `$CLOISTER_PLUGIN_DIR`).

use cloister_runtime::{FeatureError, Limits, LoadError, NoModels, Plugin, RequestError, Runtime};
use serde_json::{json, Value};
use std::sync::Arc;

use cloister_test_support::component;

fn limits() -> Limits {
    Limits {
        max_memory_bytes: 32 << 20,
        deadline_ms: 300,
        max_output_bytes: 64 << 10,
        max_concurrent_instances: 8,
        ..Limits::default()
    }
}

async fn load_with(runtime: &Runtime, name: &str) -> Result<Plugin, LoadError> {
    runtime
        .load(name, &component(name), &[], Arc::new(NoModels))
        .await
}

async fn setup(name: &str) -> (Runtime, Plugin, Plugin) {
    let runtime = Runtime::new(limits()).expect("runtime");
    let plugin = load_with(&runtime, name)
        .await
        .expect("load hostile plugin");
    let echo = load_with(&runtime, "echo").await.expect("load echo");
    (runtime, plugin, echo)
}

async fn assert_echo_still_works(echo: &Plugin) {
    let out = echo
        .handle(r#"{"still":"alive"}"#)
        .await
        .expect("echo after hostile request");
    assert_eq!(out, r#"{"still":"alive"}"#);
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).expect("plugin output is JSON")
}

#[tokio::test]
async fn echo_round_trips_and_describes_itself() {
    let runtime = Runtime::new(limits()).unwrap();
    let echo = load_with(&runtime, "echo").await.unwrap();
    assert_eq!(echo.info().name, "echo");
    assert_eq!(echo.info().version, "0.1.0");
    assert!(echo.info().models.is_empty());
    let input = json!({"text": "héllo 👋", "n": [1, 2, 3]}).to_string();
    assert_eq!(echo.handle(&input).await.unwrap(), input);
}

#[tokio::test]
async fn socket_plugin_is_refused_at_load() {
    let runtime = Runtime::new(limits()).unwrap();
    match load_with(&runtime, "hostile-socket").await {
        Err(LoadError::ForbiddenImport { plugin, import, .. }) => {
            assert_eq!(plugin, "hostile-socket");
            assert!(
                import.starts_with("wasi:sockets/"),
                "refused import was {import}"
            );
        }
        Err(other) => panic!("expected ForbiddenImport, got {other}"),
        Ok(_) => panic!("a plugin importing wasi:sockets was loaded"),
    }
}

#[tokio::test]
async fn unknown_import_is_refused_at_load_by_name() {
    let runtime = Runtime::new(limits()).unwrap();
    let err = match load_with(&runtime, "hostile-import").await {
        Err(e) => e,
        Ok(_) => panic!("a plugin importing evil:exfil was loaded"),
    };
    assert!(
        matches!(&err, LoadError::ForbiddenImport { import, .. } if import == "evil:exfil/leak@0.1.0"),
        "got {err}"
    );
    assert!(err.to_string().contains("evil:exfil/leak@0.1.0"));
}

#[tokio::test]
async fn filesystem_is_unreachable() {
    let probe = std::path::Path::new("/tmp/cloister-hostile-fs-probe");
    let _ = std::fs::remove_file(probe);
    let (_rt, plugin, echo) = setup("hostile-fs").await;
    let out = parse(
        &plugin
            .handle("{}")
            .await
            .expect("hostile-fs returns its findings"),
    );
    for key in ["write", "read", "list_root", "list_cwd"] {
        let v = out[key].as_str().unwrap_or_default();
        assert!(
            v.starts_with("err"),
            "{key} should have failed, plugin saw `{v}`"
        );
    }
    assert!(!probe.exists(), "the plugin created a file on the host");
    assert_echo_still_works(&echo).await;
}

#[tokio::test]
async fn environment_and_arguments_are_empty() {
    let (_rt, plugin, echo) = setup("hostile-env").await;
    let out = parse(&plugin.handle(r#"{"secret":"do-not-print"}"#).await.unwrap());
    assert_eq!(out["vars"], 0, "plugin saw environment variables: {out}");
    assert_eq!(out["args"], 0, "plugin saw arguments: {out}");
    // wasi-libc emulates a working directory of "/" even with no preopens.
    assert_eq!(out["cwd"], "/");
    assert_echo_still_works(&echo).await;
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline() {
    let (_rt, plugin, echo) = setup("hostile-loop").await;
    let err = plugin.handle("{}").await.unwrap_err();
    assert!(
        matches!(err, RequestError::DeadlineExceeded { limit_ms: 300 }),
        "got {err}"
    );
    assert_eq!(err.code(), "deadline_exceeded");
    assert_echo_still_works(&echo).await;
}

#[tokio::test]
async fn memory_growth_hits_the_memory_limit() {
    let (_rt, plugin, echo) = setup("hostile-memory").await;
    let err = plugin.handle("{}").await.unwrap_err();
    assert!(
        matches!(err, RequestError::MemoryLimitExceeded { limit } if limit == 32 << 20),
        "got {err}"
    );
    assert_echo_still_works(&echo).await;
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_stack() {
    let (_rt, plugin, echo) = setup("hostile-stack").await;
    let err = plugin.handle(r#"{"mode":"native"}"#).await.unwrap_err();
    assert!(
        matches!(err, RequestError::StackOverflow { .. }),
        "got {err}"
    );
    assert_echo_still_works(&echo).await;
    // Rust's shadow stack lives in linear memory: exhausting it faults there.
    let err = plugin.handle(r#"{"mode":"shadow"}"#).await.unwrap_err();
    assert!(
        matches!(&err, RequestError::Trapped { trap } if trap.contains("out of bounds")),
        "got {err}"
    );
    assert_echo_still_works(&echo).await;
}

#[tokio::test]
async fn oversized_output_is_refused() {
    let (_rt, plugin, echo) = setup("hostile-output").await;
    let small = plugin
        .handle(r#"{"bytes": 1000}"#)
        .await
        .expect("small output is fine");
    assert!(small.len() >= 1000);
    let err = plugin.handle(r#"{"bytes": 100000}"#).await.unwrap_err();
    assert!(
        matches!(err, RequestError::OutputTooLarge { actual, limit } if actual >= 100_000 && limit == 64 << 10),
        "got {err}"
    );
    assert_echo_still_works(&echo).await;
}

#[tokio::test]
async fn oversized_input_is_refused_before_instantiation() {
    let runtime = Runtime::new(Limits {
        max_input_bytes: 16,
        ..limits()
    })
    .unwrap();
    let echo = load_with(&runtime, "echo").await.unwrap();
    let err = echo
        .handle(r#"{"this input is":"longer than 16 bytes"}"#)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::InputTooLarge { limit: 16, .. }),
        "got {err}"
    );
}

#[tokio::test]
async fn traps_and_panics_end_only_their_request() {
    let (_rt, plugin, echo) = setup("hostile-trap").await;
    for mode in ["panic", "unreachable", "divide"] {
        let err = plugin
            .handle(&json!({ "mode": mode }).to_string())
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::Trapped { .. }),
            "{mode}: got {err}"
        );
        // The same plugin serves a good request right after.
        let ok = parse(&plugin.handle(r#"{"mode":"fine"}"#).await.unwrap());
        assert_eq!(ok["ok"], true);
    }
    assert_echo_still_works(&echo).await;
}

#[tokio::test]
async fn statics_do_not_survive_a_request() {
    let (_rt, plugin, _echo) = setup("hostile-state").await;
    for _ in 0..3 {
        let out = parse(&plugin.handle(r#"{"mode":"count"}"#).await.unwrap());
        assert_eq!(out["count"], 1, "a static counter survived: {out}");
    }
}

#[tokio::test]
async fn memory_contents_do_not_survive_a_request() {
    let (_rt, plugin, _echo) = setup("hostile-state").await;
    let secret = "cloister-secret-7f3a9c51e2d84b06";
    // Positive control: the scanner finds a secret planted in its own instance.
    let control = parse(
        &plugin
            .handle(&json!({"mode":"plant_and_scan","secret":secret}).to_string())
            .await
            .unwrap(),
    );
    assert_eq!(control["found"], true, "scanner does not work: {control}");
    // The previous request's input and copies of it are gone in the next one.
    let planted = parse(
        &plugin
            .handle(&json!({"mode":"plant","secret":secret}).to_string())
            .await
            .unwrap(),
    );
    assert_eq!(planted["planted"], true);
    let masked: String = secret
        .bytes()
        .map(|b| format!("{:02x}", b ^ 0x5a))
        .collect();
    let scan = parse(
        &plugin
            .handle(&json!({"mode":"scan","masked_hex":masked}).to_string())
            .await
            .unwrap(),
    );
    assert_eq!(
        scan["found"], false,
        "previous request's secret found in memory: {scan}"
    );
    assert!(scan["scanned_bytes"].as_u64().unwrap_or(0) >= 1 << 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_cap_refuses_excess_requests() {
    let runtime = Runtime::new(Limits {
        max_concurrent_instances: 1,
        queue_timeout_ms: 50,
        deadline_ms: 1_000,
        ..limits()
    })
    .unwrap();
    let looping = Arc::new(load_with(&runtime, "hostile-loop").await.unwrap());
    let echo = load_with(&runtime, "echo").await.unwrap();
    assert_eq!(runtime.in_flight(), 0);
    let busy = {
        let looping = Arc::clone(&looping);
        tokio::spawn(async move { looping.handle("{}").await })
    };
    // Wait until the looping request holds the only slot.
    while runtime.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    let refused = echo.handle("{}").await.unwrap_err();
    assert!(
        matches!(refused, RequestError::Overloaded { .. }),
        "got {refused}"
    );
    assert_eq!(refused.code(), "overloaded");
    let looped = busy.await.unwrap().unwrap_err();
    assert!(
        matches!(looped, RequestError::DeadlineExceeded { .. }),
        "got {looped}"
    );
    assert_eq!(runtime.in_flight(), 0);
    assert_eq!(echo.handle("{}").await.unwrap(), "{}");
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::test(flavor = "current_thread")]
async fn host_memory_stays_flat_across_hostile_requests() {
    let runtime = Runtime::new(limits()).unwrap();
    let echo = load_with(&runtime, "echo").await.unwrap();
    let memory = load_with(&runtime, "hostile-memory").await.unwrap();
    let trap = load_with(&runtime, "hostile-trap").await.unwrap();
    let big = json!({ "pad": "x".repeat(32 << 10) }).to_string();
    let round = |n: usize| {
        let (echo, memory, trap, big) = (&echo, &memory, &trap, &big);
        async move {
            for _ in 0..n {
                echo.handle(big).await.unwrap();
                assert!(memory.handle("{}").await.is_err());
                assert!(trap.handle(r#"{"mode":"panic"}"#).await.is_err());
            }
        }
    };
    round(20).await; // warm the pools
    let before = resident_bytes();
    round(200).await;
    let after = resident_bytes();
    let growth = after.saturating_sub(before);
    assert!(
        growth < 16 << 20,
        "host RSS grew by {growth} bytes over 600 requests ({before} -> {after})"
    );
}

#[test]
fn plugin_error_codes_are_stable() {
    assert_eq!(
        RequestError::Plugin(FeatureError::InvalidInput("x".into())).code(),
        "invalid_input"
    );
    assert_eq!(RequestError::OutputNotJson.code(), "output_not_json");
}
