//! `echo`: returns its input unchanged.
//!
//! The smallest possible well-behaved plugin. It does no JSON parsing and no
//! inference, so the host uses it to measure per-request overhead
//! (instantiation, call, teardown). The host needs nothing special for it; it
//! must simply accept and run it.

wit_bindgen::generate!({ path: "../../wit", world: "feature" });

struct Echo;

impl Guest for Echo {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "echo".to_string(),
            version: "0.1.0".to_string(),
            description: "Returns its input unchanged (per-request overhead benchmark)."
                .to_string(),
            models: Vec::new(),
        }
    }

    fn handle(input: String) -> Result<String, FeatureError> {
        Ok(input)
    }
}

export!(Echo);
