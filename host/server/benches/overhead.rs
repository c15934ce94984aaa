//! Summarize a 30-message thread: what the host adds to the inference floor.
//!
//! ```sh
//! cargo bench -p cloister-host --bench overhead                  # 30 requests
//! cargo bench -p cloister-host --bench overhead -- --requests 100
//! ```
//!
//! The thread is the first 30 messages of `search-outage-day` in
//! `eval/summarize/threads.json`. Each round, in one process and one run:
//!
//! 1. **in process**: the built `summarize` component on the host's plugin runtime (fresh
//!    instance, JSON in and out, the plugin's own work, its `embed` calls through the
//!    inference threads), over the fetched all-MiniLM-L6-v2 on tract. The backend is the
//!    host's [`Engine`] behind a recorder that keeps the texts of every `embed` call and the
//!    time spent in it.
//! 2. **floor**: the same texts, in the same calls, embedded again by the same engine
//!    directly (no plugin, no runtime): the inference floor.
//! 3. **through HTTP**: the same request to a real `cloister-host serve` (this profile's
//!    build, one inference thread, `--tee none`), one connection, over loopback.
//!
//! Prints the medians and the overhead over the floor, `(request − floor) / floor`, for
//! the in-process call and for the HTTP request.
//!
//! Then the same split for `writing-help` on `eval/writing-help/hundred-words.txt` (100
//! words), in process: a fresh instance on a two-word text without tone (the instance
//! floor), the 100 words without tone (instance + harper's lint pass), and with tone
//! detection, with the time of its one `embed` call and that call's texts embedded again
//! directly. Needs `scripts/build-plugins` and `cloister models fetch`.

use cloister_inference::{Engine, Limits, Shapes};
use cloister_runtime::{Cancel, Embeddings, InferenceBackend, InferenceFailure};
use cloister_test_support::cli_arg as arg;
use cloister_test_support::host::{Fixture, Server};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MESSAGES: usize = 30;
const THREAD: &str = "search-outage-day";

/// The host's engine, recording each call's texts and the time spent in it.
struct Recording {
    engine: Arc<Engine>,
    calls: Mutex<Vec<(Vec<String>, Duration)>>,
}

impl Recording {
    fn take(&self) -> Vec<(Vec<String>, Duration)> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn record(&self, texts: &[String], took: Duration) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((texts.to_vec(), took));
    }
}

impl InferenceBackend for Recording {
    fn embed(&self, model: &str, texts: &[String]) -> Result<Embeddings, InferenceFailure> {
        let started = Instant::now();
        let out = self.engine.embed(model, texts);
        self.record(texts, started.elapsed());
        out
    }

    fn embed_until(
        &self,
        model: &str,
        texts: &[String],
        cancel: &Cancel,
    ) -> Result<Embeddings, InferenceFailure> {
        let started = Instant::now();
        let out = self.engine.embed_until(model, texts, cancel);
        self.record(texts, started.elapsed());
        out
    }
}

/// The recorded calls' texts embedded again by `engine` directly: the floor.
fn embed_again(engine: &Engine, calls: &[(Vec<String>, Duration)]) -> Duration {
    let started = Instant::now();
    for (texts, _) in calls {
        engine
            .embed(cloister_test_support::MODEL, texts)
            .expect("embed");
    }
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    cloister_test_support::percentile(&v, 0.5).as_secs_f64() * 1e3
}

fn thread_body() -> String {
    let threads: Value = serde_json::from_slice(
        &std::fs::read(cloister_test_support::repo_file(
            "eval/summarize/threads.json",
        ))
        .expect("eval/summarize/threads.json"),
    )
    .expect("threads.json is JSON");
    let thread = threads["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .find(|t| t["id"] == THREAD)
        .unwrap_or_else(|| panic!("no thread {THREAD} in eval/summarize/threads.json"));
    let messages: Vec<Value> = thread["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .take(MESSAGES)
        .cloned()
        .collect();
    assert_eq!(
        messages.len(),
        MESSAGES,
        "{THREAD} is shorter than {MESSAGES}"
    );
    json!({ "messages": messages }).to_string()
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run
    // passes nothing and should not spend minutes here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("overhead bench: run with `cargo bench -p cloister-host --bench overhead`");
        return;
    }
    let requests = arg("--requests", 30).max(1);
    let body = thread_body();

    cloister_inference::set_threads(1);
    let mut engine = Engine::new(Limits::default());
    engine
        .load(cloister_test_support::verified_model(), Shapes::Symbolic)
        .expect("load the model");
    let engine = Arc::new(engine);
    let recording = Arc::new(Recording {
        engine: Arc::clone(&engine),
        calls: Mutex::new(Vec::new()),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let runtime = cloister_runtime::Runtime::new(cloister_runtime::Limits {
        max_memory_bytes: cloister_test_support::WRITING_HELP_MEMORY,
        ..cloister_runtime::Limits::default()
    })
    .expect("plugin runtime");
    let load = |name: &str| {
        rt.block_on(runtime.load(
            name,
            &cloister_test_support::component(name),
            &[cloister_test_support::MODEL.to_owned()],
            Arc::clone(&recording) as Arc<dyn InferenceBackend>,
        ))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
    };
    let plugin = load("summarize");
    let writing_help = load("writing-help");

    let f = Fixture::new(&["summarize"]);
    f.write_feature_config(&[("summarize", None)], "", 1);
    let server = Server::start(&f.config());

    // Warm up all three paths (plans compiled for the shapes this thread uses).
    for _ in 0..3 {
        rt.block_on(plugin.handle(&body)).expect("summarize");
        let (status, out) = server.request("POST", "/v1/features/summarize", body.as_bytes());
        assert_eq!(status, 200, "{out}");
    }
    let calls = recording.take();
    let texts: usize = calls.iter().map(|(t, _)| t.len()).sum();
    let bytes: usize = calls.iter().flat_map(|(t, _)| t).map(String::len).sum();

    let (mut call, mut inside, mut floor, mut http) = (vec![], vec![], vec![], vec![]);
    for _ in 0..requests {
        let started = Instant::now();
        rt.block_on(plugin.handle(&body)).expect("summarize");
        call.push(started.elapsed());
        let calls = recording.take();
        inside.push(calls.iter().map(|(_, d)| *d).sum());

        floor.push(embed_again(&engine, &calls));

        let started = Instant::now();
        let (status, out) = server.request("POST", "/v1/features/summarize", body.as_bytes());
        http.push(started.elapsed());
        assert_eq!(status, 200, "{out}");
    }
    server.stop();

    let (call, inside, floor, http) = (median(call), median(inside), median(floor), median(http));
    println!(
        "summarize, {MESSAGES} messages of {THREAD}: {} embed call(s), {texts} texts, {bytes} bytes; \
         {requests} rounds, 1 inference thread, {} cores; medians:",
        calls.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!("  inference floor (same texts, engine called directly) {floor:>8.1} ms");
    println!("  embed time inside the plugin call                    {inside:>8.1} ms");
    println!(
        "  plugin call in process (instance + plugin + embed)   {call:>8.1} ms  overhead {:>5.1} %",
        (call - floor) / floor * 100.0
    );
    println!(
        "  request through HTTP (cloister-host, loopback)       {http:>8.1} ms  overhead {:>5.1} %",
        (http - floor) / floor * 100.0
    );

    writing_help_split(&rt, &writing_help, &recording, &engine, requests);
}

/// Where a writing-help request's time goes, in process (see the module docs).
fn writing_help_split(
    rt: &tokio::runtime::Runtime,
    plugin: &cloister_runtime::Plugin,
    recording: &Recording,
    engine: &Engine,
    requests: usize,
) {
    let text = std::fs::read_to_string(cloister_test_support::repo_file(
        "eval/writing-help/hundred-words.txt",
    ))
    .expect("eval/writing-help/hundred-words.txt");
    let tiny = json!({ "text": "Hello there.", "detect_tone": false }).to_string();
    let plain = json!({ "text": text, "detect_tone": false }).to_string();
    let toned = json!({ "text": text }).to_string();
    for body in [&tiny, &plain, &toned, &toned] {
        rt.block_on(plugin.handle(body)).expect("writing-help");
    }
    recording.take();
    let (mut t_tiny, mut t_plain, mut t_toned, mut inside, mut floor) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut texts = 0;
    for _ in 0..requests {
        for (body, out) in [(&tiny, &mut t_tiny), (&plain, &mut t_plain)] {
            let started = Instant::now();
            rt.block_on(plugin.handle(body)).expect("writing-help");
            out.push(started.elapsed());
        }
        let started = Instant::now();
        rt.block_on(plugin.handle(&toned)).expect("writing-help");
        t_toned.push(started.elapsed());
        let calls = recording.take();
        inside.push(calls.iter().map(|(_, d)| *d).sum());
        texts = calls.iter().map(|(t, _)| t.len()).sum();
        floor.push(embed_again(engine, &calls));
    }
    let (tiny, plain, toned, inside, floor) = (
        median(t_tiny),
        median(t_plain),
        median(t_toned),
        median(inside),
        median(floor),
    );
    println!("writing-help, in process, {requests} rounds, 1 inference thread; medians:");
    println!("  fresh instance, two words, no tone                  {tiny:>8.1} ms");
    println!("  100 words, no tone (instance + lint)                {plain:>8.1} ms");
    println!("  100 words, tone detected                            {toned:>8.1} ms");
    println!("    its embed call ({texts} texts), beside the lint            {inside:>8.1} ms");
    println!("    the same texts embedded directly                  {floor:>8.1} ms");
}
