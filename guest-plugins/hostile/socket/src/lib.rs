//! `hostile-socket`: tries to open a TCP connection.
//!
//! `handle` calls `std::net::TcpStream::connect("127.0.0.1:9")`, so the
//! component imports `wasi:sockets/*`. The host must refuse this component at
//! load time (its imports go beyond the allowed WASI subset), before any
//! instance is created.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

struct HostileSocket;

impl Guest for HostileSocket {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-socket".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: opens a TCP connection; the host must refuse it at load."
                .to_string(),
            models: Vec::new(),
        }
    }

    fn handle(_input: String) -> Result<String, FeatureError> {
        match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => Ok("{\"connected\":true}".to_string()),
            Err(e) => Err(FeatureError::Internal(format!(
                "connect failed: {:?}",
                e.kind()
            ))),
        }
    }
}

export!(HostileSocket);
