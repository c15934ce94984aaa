//! `hostile-trap`: traps on request.
//!
//! Input `{"mode": "panic" | "unreachable" | "divide"}` makes `handle` panic
//! (which aborts, i.e. traps, since guests build with `panic = "abort"`),
//! execute `unreachable`, or divide by zero. Any other input returns
//! `{"ok":true}`. The host must turn each trap into an error for that request
//! and serve the next request (e.g. `{"mode":"none"}`) normally.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

use core::hint::black_box;

struct HostileTrap;

impl Guest for HostileTrap {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-trap".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: panics, hits unreachable or divides by zero on request."
                .to_string(),
            models: Vec::new(),
        }
    }

    fn handle(input: String) -> Result<String, FeatureError> {
        let v: serde_json::Value = serde_json::from_str(&input).unwrap_or(serde_json::Value::Null);
        match v.get("mode").and_then(|m| m.as_str()) {
            Some("panic") => panic!("deliberate panic"),
            Some("unreachable") => core::arch::wasm32::unreachable(),
            Some("divide") => {
                let zero: u32 = black_box(0);
                let q = black_box(1u32) / zero;
                Ok(format!("{{\"quotient\":{q}}}"))
            }
            _ => Ok("{\"ok\":true}".to_string()),
        }
    }
}

export!(HostileTrap);
