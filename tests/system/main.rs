//! The whole chain as a user runs it, across processes, with the binaries the workspace
//! built and the components `scripts/build-plugins` built:
//!
//! 1. a feature team makes a key and signs `echo`, `summarize` and `writing-help`
//!    (`cloister plugin keygen|sign`);
//! 2. the operator measures the host configuration (`cloister-host measure --canonical`)
//!    and writes the client policy from it (`cloister policy init`);
//! 3. the host serves with the simulated TEE (`cloister-host serve --tee sim`);
//! 4. a client attests it (`cloister connect`) and calls both features (`cloister run`),
//!    each only after verifying the session's evidence;
//! 5. a tampered plugin is refused: by the host when its bytes no longer match the
//!    signature, and by the client when a validly re-signed but different component is
//!    served (the attested measurement log no longer matches the policy).
//!
//! Each hop is checked on its own output, so the test fails at the hop that broke. Later
//! hops (relay, gateway, transparency log) join this chain here.

mod chain;
mod common;
mod image;
mod oblivious;
mod transparency;
