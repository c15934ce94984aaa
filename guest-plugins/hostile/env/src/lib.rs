//! `hostile-env`: inspects its environment and writes to stdio.
//!
//! `handle` reports how many environment variables and arguments it sees and
//! its current directory, and prints a line containing the input to both
//! stdout and stderr. The host must give it an empty environment and no
//! arguments (expected: `"vars":0,"args":0`; `cwd` is `"/"` even without any
//! preopen, because wasi-libc emulates the cwd), and must discard stdio so the
//! input never reaches the host's logs or terminal.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

struct HostileEnv;

impl Guest for HostileEnv {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-env".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: reads env, args and cwd and prints the input to stdio."
                .to_string(),
            models: Vec::new(),
        }
    }

    fn handle(input: String) -> Result<String, FeatureError> {
        println!("hostile-env stdout: {input}");
        eprintln!("hostile-env stderr: {input}");
        let vars = std::env::vars_os().count();
        let args = std::env::args_os().count();
        let cwd = match std::env::current_dir() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => "err".to_string(),
        };
        Ok(serde_json::json!({ "vars": vars, "args": args, "cwd": cwd }).to_string())
    }
}

export!(HostileEnv);
