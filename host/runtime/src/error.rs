//! Typed errors of the runtime. None of them carries request content.

use crate::imports::Refusal;

/// The runtime itself could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A limit in the configuration is unusable.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    /// Wasmtime refused the engine configuration.
    #[error("could not create the wasmtime engine: {0}")]
    Engine(String),
    /// The linker could not be built.
    #[error("could not build the plugin linker: {0}")]
    Linker(String),
}

/// A component could not be loaded as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component needs more than the runtime's instance pool provides
    /// (a memory, table or instance count larger than a slot).
    #[error("plugin `{plugin}`: needs more than the host's limits allow ({limit}): {reason}")]
    ExceedsLimits {
        /// The plugin as named in the configuration.
        plugin: String,
        /// The limit, named as in the configuration.
        limit: String,
        /// Wasmtime's explanation.
        reason: String,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("plugin `{plugin}`: not a valid WebAssembly component: {reason}")]
    Compile {
        /// The plugin as named in the configuration.
        plugin: String,
        /// Wasmtime's explanation.
        reason: String,
    },
    /// The component's precompiled artifact (from the measured image) is
    /// missing or was refused.
    #[error("plugin `{plugin}`: precompiled artifact unusable: {reason}")]
    Precompiled {
        /// The plugin as named in the configuration.
        plugin: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The compiled component could not be written out as an artifact.
    #[error("plugin `{plugin}`: cannot write its precompiled artifact: {reason}")]
    Serialize {
        /// The plugin as named in the configuration.
        plugin: String,
        /// Wasmtime's explanation.
        reason: String,
    },
    /// The component imports an interface outside the allow-list.
    #[error("plugin `{plugin}`: import {} is not allowed ({})", cloister_display::Quoted(.import), refusal_text(.refusal))]
    ForbiddenImport {
        /// The plugin as named in the configuration.
        plugin: String,
        /// The refused import, e.g. `wasi:sockets/tcp@0.2.6`.
        import: String,
        /// Why it was refused.
        refusal: Refusal,
    },
    /// The component does not fit the `feature` world (missing exports,
    /// mismatched types).
    #[error("plugin `{plugin}`: does not implement the cloister:feature world: {reason}")]
    World {
        /// The plugin as named in the configuration.
        plugin: String,
        /// Wasmtime's explanation.
        reason: String,
    },
    /// Calling `metadata` failed.
    #[error("plugin `{plugin}`: metadata call failed")]
    Metadata {
        /// The plugin as named in the configuration.
        plugin: String,
        /// What went wrong in the call.
        source: RequestError,
    },
    /// A per-plugin limit is unusable.
    #[error("plugin `{plugin}`: invalid limits: {reason}")]
    InvalidLimits {
        /// The plugin as named in the configuration.
        plugin: String,
        /// Which limit and why.
        reason: String,
    },
    /// The metadata is malformed.
    #[error("plugin `{plugin}`: invalid metadata: {reason}")]
    InvalidMetadata {
        /// The plugin as named in the configuration.
        plugin: String,
        /// Which field is wrong and why.
        reason: String,
    },
}

/// Longest explanation from wasmtime kept in an error, in characters. Its
/// messages can quote names from the component (untrusted): they are
/// escaped and cut here.
const MAX_REASON_CHARS: usize = 2000;

/// Wasmtime's explanation of a failure, safe to print: control and bidi
/// characters escaped (`cloister-display`), at most [`MAX_REASON_CHARS`].
pub(crate) fn reason(text: &str) -> String {
    let clean = cloister_display::sanitize(text);
    match clean.char_indices().nth(MAX_REASON_CHARS) {
        None => clean.into_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &clean[..cut], text.len()),
    }
}

fn refusal_text(r: &Refusal) -> &'static str {
    match r {
        Refusal::NotAllowed => "plugins get no network, no storage and no other host interfaces",
        Refusal::UnsupportedVersion => "interface version not supported by this host",
        Refusal::Unversioned => "import has no version",
    }
}

/// One request failed. Each variant ends only its own request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The input is larger than `limits.max_input_bytes`.
    #[error("input of {actual} bytes exceeds the limit of {limit} bytes")]
    InputTooLarge {
        /// Size of the input.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// No instance slot became free within `limits.queue_timeout_ms`.
    #[error("host overloaded: no free instance slot within {waited_ms} ms")]
    Overloaded {
        /// How long the request waited.
        waited_ms: u64,
    },
    /// The request ran past `limits.deadline_ms`.
    #[error("plugin exceeded the deadline of {limit_ms} ms")]
    DeadlineExceeded {
        /// The deadline.
        limit_ms: u64,
    },
    /// The instance tried to grow its memory past `limits.max_memory_bytes`.
    #[error("plugin exceeded the memory limit of {limit} bytes")]
    MemoryLimitExceeded {
        /// The limit.
        limit: usize,
    },
    /// The instance overflowed its WebAssembly stack.
    #[error("plugin overflowed its stack (limit {limit} bytes)")]
    StackOverflow {
        /// The limit.
        limit: usize,
    },
    /// The plugin returned more than `limits.max_output_bytes`.
    #[error("plugin output of {actual} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge {
        /// Size of the output.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// The request is not acceptable JSON (syntax, nesting, surrogates).
    #[error("request body: {0}")]
    InvalidInputJson(crate::json::JsonProblem),
    /// The plugin returned something that is not acceptable JSON.
    #[error("plugin output: {0}")]
    InvalidOutputJson(crate::json::JsonProblem),
    /// The plugin called WASI `exit` instead of returning.
    #[error("plugin exited with status {status} instead of answering")]
    PluginExited {
        /// The exit status it gave.
        status: i32,
    },
    /// The plugin trapped (a Rust panic ends up here as `unreachable`).
    #[error("plugin trapped: {trap}")]
    Trapped {
        /// Wasmtime's trap code, e.g. `wasm trap: wasm `unreachable` instruction executed`.
        trap: String,
    },
    /// The plugin handled the request and reported an error.
    #[error("plugin reported an error")]
    Plugin(crate::FeatureError),
    /// The host failed to run the plugin for another reason.
    #[error("host failed to run the plugin: {0}")]
    Host(String),
}

impl RequestError {
    /// A stable machine-readable code for the error, used by the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::InputTooLarge { .. } => "input_too_large",
            RequestError::Overloaded { .. } => "overloaded",
            RequestError::DeadlineExceeded { .. } => "deadline_exceeded",
            RequestError::MemoryLimitExceeded { .. } => "memory_limit_exceeded",
            RequestError::StackOverflow { .. } => "stack_overflow",
            RequestError::OutputTooLarge { .. } => "output_too_large",
            RequestError::InvalidInputJson(_) => "invalid_json",
            RequestError::InvalidOutputJson(_) => "output_not_json",
            RequestError::PluginExited { .. } => "plugin_exited",
            RequestError::Trapped { .. } => "plugin_trapped",
            RequestError::Plugin(crate::FeatureError::InvalidInput(_)) => "invalid_input",
            RequestError::Plugin(crate::FeatureError::Inference(_)) => "inference_failed",
            RequestError::Plugin(crate::FeatureError::Internal(_)) => "plugin_error",
            RequestError::Host(_) => "host_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11, classes 8 and 9 on the host: names from a component are
    /// escaped and cut before they reach the operator's terminal.
    #[test]
    fn untrusted_names_are_escaped_and_bounded() {
        let import = format!("\u{1b}[2Kevil:{}/x@0.1.0", "a".repeat(10 << 20));
        let e = LoadError::ForbiddenImport {
            plugin: "p".into(),
            import,
            refusal: Refusal::NotAllowed,
        };
        let text = e.to_string();
        assert!(!text.contains('\u{1b}'), "{}", &text[..80]);
        assert!(text.len() < 1024, "{} bytes", text.len());
        let r = reason(&format!("\u{9b}31m{}", "b".repeat(5000)));
        assert!(!r.contains('\u{9b}'));
        assert!(r.ends_with("… (5005 bytes)"), "{}", &r[r.len() - 40..]);
    }

    /// Issue 11, class 11 on the host: a cause is printed once.
    #[test]
    fn causes_are_printed_once() {
        let e = LoadError::Metadata {
            plugin: "p".into(),
            source: RequestError::DeadlineExceeded { limit_ms: 5 },
        };
        let mut chain = vec![e.to_string()];
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        assert_eq!(
            chain,
            [
                "plugin `p`: metadata call failed",
                "plugin exceeded the deadline of 5 ms"
            ]
        );
    }
}
