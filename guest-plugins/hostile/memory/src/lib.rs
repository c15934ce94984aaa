//! `hostile-memory`: allocates memory until something stops it.
//!
//! `handle` allocates 1 MiB chunks, writes every byte (so every page is really
//! touched) and keeps them all, forever. The host's per-instance memory limit
//! must make the allocation fail (which traps the instance), return an error
//! for the request, and stay healthy for the next one.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

use core::hint::black_box;

const CHUNK: usize = 1 << 20;

struct HostileMemory;

impl Guest for HostileMemory {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-memory".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: allocates memory forever; the host's memory limit must end it."
                .to_string(),
            models: Vec::new(),
        }
    }

    fn handle(_input: String) -> Result<String, FeatureError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        let mut n: u8 = 1;
        loop {
            let chunk = black_box(vec![n; CHUNK]);
            hoard.push(chunk);
            black_box(&mut hoard);
            n = n.wrapping_add(1).max(1);
        }
    }
}

export!(HostileMemory);
