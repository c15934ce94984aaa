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
    assert_eq!(
        RequestError::InvalidOutputJson(cloister_runtime::json::JsonProblem::Invalid).code(),
        "output_not_json"
    );
    assert_eq!(
        RequestError::PluginExited { status: 0 }.code(),
        "plugin_exited"
    );
}

// ---- Issue 11, classes 12, 14 and 16: hostile-host abuses host calls. ----

async fn hostile_host(limits: Limits) -> (Runtime, Plugin, Plugin) {
    let runtime = Runtime::new(limits).unwrap();
    let host = load_with(&runtime, "hostile-host").await.unwrap();
    let echo = load_with(&runtime, "echo").await.unwrap();
    (runtime, host, echo)
}

/// Class 12: a plugin asleep in a host call (a clock pollable) is ended at
/// the deadline, on wall time, and its slot is free again at once. Before:
/// epoch interruption could not reach it and it held the slot for 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_sleeping_in_a_host_call_is_stopped_at_the_deadline() {
    let (runtime, host, echo) = hostile_host(Limits {
        max_concurrent_instances: 2,
        ..limits()
    })
    .await;
    let host = Arc::new(host);
    let started = std::time::Instant::now();
    let sleepers: Vec<_> = (0..4)
        .map(|_| {
            let host = Arc::clone(&host);
            tokio::spawn(async move { host.handle(r#"{"mode":"sleep"}"#).await })
        })
        .collect();
    for s in sleepers {
        let err = s.await.unwrap().unwrap_err();
        assert!(
            matches!(err, RequestError::DeadlineExceeded { limit_ms: 300 }),
            "got {err}"
        );
    }
    // Four 10 s sleeps on two slots with a 300 ms deadline: two rounds of
    // 300 ms, far from the 20 s they would take if sleeping were not cut.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "sleepers held their slots for {:?}",
        started.elapsed()
    );
    assert_eq!(runtime.in_flight(), 0);
    assert_echo_still_works(&echo).await;
}

/// Class 12: the deadline also covers a request whose client goes away:
/// dropping the request's future ends the instance and frees the slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_request_frees_its_slot() {
    let (runtime, host, echo) = hostile_host(Limits {
        deadline_ms: 60_000,
        ..limits()
    })
    .await;
    let host = Arc::new(host);
    let task = {
        let host = Arc::clone(&host);
        tokio::spawn(async move { host.handle(r#"{"mode":"sleep"}"#).await })
    };
    while runtime.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    task.abort();
    let waited = std::time::Instant::now();
    while runtime.in_flight() != 0 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(5),
            "the abandoned instance still holds its slot"
        );
        tokio::task::yield_now().await;
    }
    assert_echo_still_works(&echo).await;
}

/// Class 16: `exit(n)` is the plugin's fault, with its own code. (WASI 0.2
/// `exit` carries success or failure only: Rust's `exit(3)` arrives as 1.)
#[tokio::test]
async fn exit_is_reported_as_the_plugins_fault() {
    let (_runtime, host, echo) = hostile_host(limits()).await;
    for (code, status) in [(0, 0), (3, 1)] {
        let err = host
            .handle(&json!({"mode": "exit", "status": code}).to_string())
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::PluginExited { status: s } if s == status),
            "got {err}"
        );
        assert_eq!(err.code(), "plugin_exited");
    }
    assert_echo_still_works(&echo).await;
}

/// Class 14: an 8 MiB error message comes back cut to the limit.
#[tokio::test]
async fn plugin_error_messages_are_bounded() {
    let (_runtime, host, _echo) = hostile_host(limits()).await;
    let err = host
        .handle(r#"{"mode":"big-error","bytes":8388608}"#)
        .await
        .unwrap_err();
    let RequestError::Plugin(FeatureError::Internal(message)) = &err else {
        panic!("got {err}");
    };
    assert!(
        message.len() <= 4096 + 64,
        "{} bytes came back",
        message.len()
    );
    assert!(message.ends_with("(cut: the plugin's message had 8388612 bytes)"));
}

/// Class 16: output nested too deep, or holding a lone surrogate, is
/// refused; so is input nested too deep (before any instance exists).
#[tokio::test]
async fn json_depth_and_surrogates_are_checked_both_ways() {
    use cloister_runtime::json::JsonProblem;
    let (runtime, host, echo) = hostile_host(limits()).await;
    let err = host.handle(r#"{"mode":"deep"}"#).await.unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::InvalidOutputJson(JsonProblem::TooDeep { max: 64 })
        ),
        "got {err}"
    );
    let err = host.handle(r#"{"mode":"surrogate"}"#).await.unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::InvalidOutputJson(JsonProblem::LoneSurrogate { .. })
        ),
        "got {err}"
    );
    let deep = "[".repeat(65) + &"]".repeat(65);
    let err = echo.handle(&deep).await.unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::InvalidInputJson(JsonProblem::TooDeep { max: 64 })
        ),
        "got {err}"
    );
    assert_eq!(err.code(), "invalid_json");
    // An escaped backslash before "udc00" is text, not an escape.
    assert_eq!(
        echo.handle(r#"{"a":"\\udc00"}"#).await.unwrap(),
        r#"{"a":"\\udc00"}"#
    );
    let err = echo.handle(r#"{"a":"\udc00"}"#).await.unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::InvalidInputJson(JsonProblem::LoneSurrogate { .. })
        ),
        "got {err}"
    );
    assert_eq!(runtime.in_flight(), 0);
    assert_echo_still_works(&echo).await;
}

/// Class 16: plugins see coarse clocks (1 ms monotonic, whole seconds of
/// wall time), so they cannot time the host or other requests finely.
#[tokio::test]
async fn plugins_see_coarse_clocks() {
    let (_runtime, host, _echo) = hostile_host(limits()).await;
    let out = parse(&host.handle(r#"{"mode":"clock"}"#).await.unwrap());
    assert!(
        out["min_step_ns"].as_u64().unwrap() >= 1_000_000,
        "finest observable step: {out}"
    );
    assert_eq!(out["wall_subsec_nanos"], 0, "{out}");
    assert!(out["wall_secs"].as_u64().unwrap() > 1_700_000_000);
}

/// Class 16: a component whose memory cannot fit a slot of the pool is
/// refused naming the limit, not as an invalid component.
#[tokio::test]
async fn a_memory_larger_than_the_pool_is_refused_naming_the_limit() {
    let runtime = Runtime::new(limits()).unwrap();
    match load_with(&runtime, "hostile-huge-memory").await {
        Err(LoadError::ExceedsLimits { plugin, limit, .. }) => {
            assert_eq!(plugin, "hostile-huge-memory");
            assert!(limit.contains("max_memory_bytes"), "{limit}");
        }
        Err(other) => panic!("expected ExceedsLimits, got {other}"),
        Ok(_) => panic!("a 512 MiB memory was loaded into a 32 MiB pool"),
    }
}

// ---- `start-embed`: calls a plugin leaves pending. ----

/// A backend for the `start-embed` tests: a call of short texts answers at
/// once (one 4-dimension vector per text); a call whose first text has more
/// than 50 words runs until it is cancelled, then reports so on `cancelled`.
struct UntilCancelled {
    cancelled: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
}

impl cloister_runtime::InferenceBackend for UntilCancelled {
    fn embed(
        &self,
        _model: &str,
        texts: &[String],
    ) -> Result<cloister_runtime::Embeddings, cloister_runtime::InferenceFailure> {
        Ok(vec![vec![0.5; 4]; texts.len()])
    }

    fn embed_until(
        &self,
        model: &str,
        texts: &[String],
        cancel: &cloister_runtime::Cancel,
    ) -> Result<cloister_runtime::Embeddings, cloister_runtime::InferenceFailure> {
        let long = texts
            .first()
            .is_some_and(|t| t.split_whitespace().count() > 50);
        if !long {
            return self.embed(model, texts);
        }
        while !cancel.is_cancelled() {
            std::thread::park_timeout(std::time::Duration::from_millis(1));
        }
        let _ = self
            .cancelled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(());
        Err(cloister_runtime::InferenceFailure::Cancelled)
    }
}

async fn hostile_host_with_model(
    limits: Limits,
) -> (Runtime, Plugin, std::sync::mpsc::Receiver<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let runtime = Runtime::new(limits).unwrap();
    let backend = Arc::new(UntilCancelled {
        cancelled: std::sync::Mutex::new(tx),
    });
    let plugin = runtime
        .load(
            "hostile-host",
            &component("hostile-host"),
            &["all-minilm-l6-v2".to_owned()],
            backend,
        )
        .await
        .unwrap();
    (runtime, plugin, rx)
}

/// hostile-host's `start` mode: `calls` calls of `texts` texts of `words` words.
async fn start(host: &Plugin, calls: u32, texts: u32, words: u32, finish: bool) -> Value {
    let input = json!({
        "mode": "start", "calls": calls, "texts": texts, "words": words, "finish": finish
    });
    parse(&host.handle(&input.to_string()).await.unwrap())
}

/// At most four calls pending per instance: the fifth is refused at once,
/// naming the limit; the four accepted ones finish, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_embeds_are_capped_and_finish_once() {
    let (_runtime, host, _cancelled) = hostile_host_with_model(limits()).await;
    let out = start(&host, 6, 3, 2, true).await;
    assert_eq!(out["started"], 4, "{out}");
    let refused = out["refused"].as_str().unwrap();
    assert!(
        refused.contains("InvalidInput") && refused.contains("at most 4"),
        "{refused}"
    );
    assert_eq!(out["vectors"], 12, "{out}");
    assert_eq!(out["failed"], Value::Null, "{out}");
    let again = out["second_finish"].as_str().unwrap();
    assert!(again.contains("already finished"), "{again}");
}

/// A model the plugin did not get is refused at `start-embed`, as at `embed`.
#[tokio::test]
async fn start_embed_checks_the_grant() {
    let (_runtime, host, _echo) = hostile_host(limits()).await;
    let out = start(&host, 1, 1, 2, true).await;
    assert_eq!(out["started"], 0, "{out}");
    assert!(
        out["refused"]
            .as_str()
            .unwrap()
            .contains("ModelNotAvailable"),
        "{out}"
    );
}

/// Calls a plugin starts and never finishes are stopped when its request
/// ends: every one of them is cancelled, and the runtime serves the next
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_pending_embeds_are_cancelled_with_the_request() {
    let (runtime, host, cancelled) = hostile_host_with_model(Limits {
        deadline_ms: 60_000,
        ..limits()
    })
    .await;
    for _ in 0..3 {
        let out = start(&host, 4, 2, 100, false).await;
        assert_eq!(out["started"], 4, "{out}");
        for i in 0..4 {
            cancelled
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("abandoned call {i} was not cancelled"));
        }
    }
    assert_eq!(runtime.in_flight(), 0);
    let out = start(&host, 2, 1, 2, true).await;
    assert_eq!(out["vectors"], 2, "{out}");
}
