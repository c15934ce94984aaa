//! `hostile-huge-memory`: a component whose memory starts at 512 MiB (set
//! at link time by `build.rs`), more than any memory slot of the host's pool.
//! The host must refuse it at load, naming the memory limit.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

struct HostileHugeMemory;

impl Guest for HostileHugeMemory {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-huge-memory".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: its memory starts larger than the host allows.".to_string(),
            models: Vec::new(),
        }
    }

    fn handle(input: String) -> Result<String, FeatureError> {
        Ok(input)
    }
}

export!(HostileHugeMemory);
