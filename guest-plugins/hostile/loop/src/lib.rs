//! `hostile-loop`: never returns from `handle`.
//!
//! `handle` spins forever in a loop the optimizer cannot remove. The host
//! must end it with its per-request time limit (epoch interruption / fuel),
//! return an error for the request, and stay healthy for the next one.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

use core::hint::black_box;

struct HostileLoop;

impl Guest for HostileLoop {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-loop".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: loops forever; the host's time limit must end it.".to_string(),
            models: Vec::new(),
        }
    }

    fn handle(_input: String) -> Result<String, FeatureError> {
        let mut i: u64 = 0;
        loop {
            i = black_box(i.wrapping_add(1));
        }
    }
}

export!(HostileLoop);
