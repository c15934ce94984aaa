//! `hostile-stack`: recurses without bound.
//!
//! Two ways to exhaust a stack, chosen by the input:
//! * `{"mode":"native"}` (default): a non-tail recursion that keeps its state
//!   in wasm locals only, so it exhausts the host's wasm call stack and must
//!   trap as a stack overflow (`limits.max_wasm_stack_bytes`).
//! * `{"mode":"shadow"}`: a recursion with a 256-byte local array per frame,
//!   which lives on Rust's shadow stack in linear memory; that stack runs out
//!   first and the guest faults with an out-of-bounds access.
//!
//! Either way the host must end the request and stay healthy for the next.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

use core::hint::black_box;

#[inline(never)]
#[allow(unconditional_recursion)] // deliberate: it must overflow the stack
fn native(n: u64) -> u64 {
    black_box(native(black_box(n.wrapping_add(1)))).wrapping_add(black_box(n))
}

#[inline(never)]
#[allow(unconditional_recursion)] // deliberate: it must overflow the stack
fn deep(n: u64) -> u64 {
    let buf = black_box([n as u8; 256]);
    black_box(deep(black_box(n + 1))) + buf[(n % 256) as usize] as u64
}

struct HostileStack;

impl Guest for HostileStack {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-stack".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: unbounded recursion; the stack overflow must trap.".to_string(),
            models: Vec::new(),
        }
    }

    fn handle(input: String) -> Result<String, FeatureError> {
        let depth = if input.contains("shadow") {
            deep(black_box(0))
        } else {
            native(black_box(0))
        };
        Ok(format!("{{\"depth\":{depth}}}"))
    }
}

export!(HostileStack);
