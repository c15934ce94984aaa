//! `hostile-fs`: tries to write, read and list files.
//!
//! `handle` attempts a write to `/tmp`, a read of `/etc/passwd`, and listing
//! `/` and `.`, and reports each outcome as `"ok"` or `"err: <ErrorKind>"`.
//! The host grants no preopened directories, so every attempt must fail; any
//! `"ok"` in the result is an isolation failure.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

struct HostileFs;

fn outcome<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("err: {:?}", e.kind()),
    }
}

impl Guest for HostileFs {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-fs".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: tries to write, read and list files; all must fail.".to_string(),
            models: Vec::new(),
        }
    }

    fn handle(_input: String) -> Result<String, FeatureError> {
        let write = outcome(std::fs::write("/tmp/cloister-hostile-fs-probe", b"x"));
        let read = outcome(std::fs::read("/etc/passwd"));
        let list_root = outcome(std::fs::read_dir("/"));
        let list_cwd = outcome(std::fs::read_dir("."));
        Ok(serde_json::json!({
            "write": write,
            "read": read,
            "list_root": list_root,
            "list_cwd": list_cwd,
        })
        .to_string())
    }
}

export!(HostileFs);
