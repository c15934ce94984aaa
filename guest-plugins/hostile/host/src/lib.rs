//! `hostile-host`: abuses what the host lends a plugin, one way per mode.
//!
//! Input `{"mode": …}`:
//! - `sleep`: sleeps 10 s on the monotonic clock (a host call: epoch
//!   interruption alone cannot stop it); the request deadline must.
//! - `exit` with `"status": n`: calls WASI `exit(n)` instead of answering.
//! - `big-error` with `"bytes": n`: returns an error message of n bytes of
//!   control characters.
//! - `deep`: returns JSON nested 20 000 levels deep (40 KB).
//! - `surrogate`: returns JSON holding a lone UTF-16 surrogate escape.
//! - `clock`: reports the finest clock steps it can observe.
//! - `embed` with `"texts": n, "words": w`: one inference call with n texts
//!   of w words each.
//! - `start` with `"calls": c, "texts": n, "words": w, "finish": bool`:
//!   starts c `start-embed` calls of n texts of w words each; with `finish`,
//!   finishes each and then the first one a second time, else returns at
//!   once, abandoning them. Reports what the host accepted and refused.
//!
//! Anything else answers `{"ok":true}`.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

use cloister::feature::inference;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct HostileHost;

const MODEL: &str = "all-minilm-l6-v2";

impl Guest for HostileHost {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-host".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: sleeps in host calls, exits, floods errors and inference."
                .to_string(),
            models: vec![MODEL.to_string()],
        }
    }

    fn handle(input: String) -> Result<String, FeatureError> {
        let v: serde_json::Value = serde_json::from_str(&input).unwrap_or(serde_json::Value::Null);
        let num = |k: &str, d: u64| v.get(k).and_then(|x| x.as_u64()).unwrap_or(d);
        match v.get("mode").and_then(|m| m.as_str()) {
            Some("sleep") => {
                std::thread::sleep(Duration::from_secs(10));
                Ok("{\"slept\":true}".to_string())
            }
            Some("exit") => std::process::exit(num("status", 0) as i32),
            Some("big-error") => {
                let n = num("bytes", 8 << 20) as usize;
                Err(FeatureError::Internal("\u{1b}[2K".repeat(n / 4 + 1)))
            }
            Some("deep") => Ok("[".repeat(20_000) + &"]".repeat(20_000)),
            Some("surrogate") => Ok(r#"{"text":"\ud800"}"#.to_string()),
            Some("clock") => {
                let start = Instant::now();
                let mut min_step = u128::MAX;
                let mut last = start;
                while start.elapsed() < Duration::from_millis(20) {
                    let now = Instant::now();
                    let step = now.duration_since(last).as_nanos();
                    if step > 0 {
                        min_step = min_step.min(step);
                    }
                    last = now;
                }
                let wall = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Ok(format!(
                    "{{\"min_step_ns\":{min_step},\"wall_subsec_nanos\":{},\"wall_secs\":{}}}",
                    wall.subsec_nanos(),
                    wall.as_secs()
                ))
            }
            Some("embed") => {
                let words = num("words", 200) as usize;
                let text: String = (0..words).map(|i| format!("word{} ", i % 97)).collect();
                let texts = vec![text; num("texts", 300) as usize];
                match inference::embed(MODEL, &texts) {
                    Ok(v) => Ok(format!("{{\"vectors\":{}}}", v.len())),
                    Err(e) => Err(FeatureError::Inference(format!("{e:?}"))),
                }
            }
            Some("start") => {
                let words = num("words", 200) as usize;
                let text: String = (0..words).map(|i| format!("word{} ", i % 97)).collect();
                let texts = vec![text; num("texts", 12) as usize];
                let mut started = Vec::new();
                let mut refused = None;
                for _ in 0..num("calls", 4) {
                    match inference::start_embed(MODEL, &texts) {
                        Ok(call) => started.push(call),
                        Err(e) => {
                            refused.get_or_insert(format!("{e:?}"));
                        }
                    }
                }
                let mut out = serde_json::json!({ "started": started.len(), "refused": refused });
                if v.get("finish").and_then(|f| f.as_bool()) == Some(true) {
                    let mut vectors = 0;
                    let mut failed = None;
                    for call in &started {
                        match call.finish() {
                            Ok(v) => vectors += v.len(),
                            Err(e) => {
                                failed.get_or_insert(format!("{e:?}"));
                            }
                        }
                    }
                    out["vectors"] = vectors.into();
                    out["failed"] = failed.into();
                    out["second_finish"] = match started.first().map(|c| c.finish()) {
                        Some(Ok(v)) => format!("Ok({} vectors)", v.len()).into(),
                        Some(Err(e)) => format!("{e:?}").into(),
                        None => serde_json::Value::Null,
                    };
                }
                // Unfinished calls are dropped here, with the instance.
                Ok(out.to_string())
            }
            _ => Ok("{\"ok\":true}".to_string()),
        }
    }
}

export!(HostileHost);
