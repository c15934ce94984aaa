//! `hostile-output`: returns as much output as asked for.
//!
//! Input `{"bytes": N}`; the result is a JSON string of at least N bytes
//! (`{"pad":"xxx…"}`). The host must enforce its response size limit: an
//! oversized result must become an error (and must not be buffered without
//! bound), while a result under the limit passes.

wit_bindgen::generate!({ path: "../../../wit", world: "feature" });

struct HostileOutput;

impl Guest for HostileOutput {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-output".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: returns N bytes of output; the host's output limit must apply."
                .to_string(),
            models: Vec::new(),
        }
    }

    fn handle(input: String) -> Result<String, FeatureError> {
        let v: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| FeatureError::InvalidInput(format!("not JSON: {e}")))?;
        let n = v
            .get("bytes")
            .and_then(|b| b.as_u64())
            .ok_or_else(|| FeatureError::InvalidInput("expected {\"bytes\": N}".to_string()))?;
        let n = usize::try_from(n)
            .map_err(|_| FeatureError::InvalidInput("bytes too large".to_string()))?;
        const HEAD: &str = "{\"pad\":\"";
        const TAIL: &str = "\"}";
        let pad = n.saturating_sub(HEAD.len() + TAIL.len());
        let mut out = String::with_capacity(HEAD.len() + pad + TAIL.len());
        out.push_str(HEAD);
        out.extend(std::iter::repeat_n('x', pad));
        out.push_str(TAIL);
        Ok(out)
    }
}

export!(HostileOutput);
