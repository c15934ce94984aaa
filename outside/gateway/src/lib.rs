//! The Cloister OHTTP gateway (RFC 9458): the operator's end of the oblivious path.
//!
//! ```text
//! client --(OHTTP)--> relay --> gateway --(TLS records)--> host tunnel endpoint
//! ```
//!
//! - [`keys`]: key configurations derived from one seed, several ids live at once, each with
//!   a validity window; `application/ohttp-keys` (RFC 9540).
//! - [`encap`]: opens Encapsulated Requests (key-id routing on byte 0) and seals responses.
//! - [`tokens`]: the [`tokens::TokenCheck`] seam where the issuer's token verifier plugs in.
//! - [`store`]: spends each token once ([`store::RedbStore`] embedded, [`store::RedisStore`]
//!   shared by several gateways).
//! - [`route`]: the allow-listed hosts, sticky sessions, health.
//! - [`service`]: the HTTP service (`GET /ohttp-keys`, `POST /ohttp`).
//!
//! The gateway sees session ids, unlinkable tokens and TLS records it cannot read. It never
//! logs session ids, tokens or bodies. See `docs/transport.md`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod encap;
pub mod keys;
pub mod route;
pub mod service;
pub mod store;
pub mod tokens;

pub use encap::{decapsulate, DecapError, Decapsulated, ResponseContext};
pub use keys::{GatewayKey, KeySet, KeySpec, Seed};
pub use route::{HostPool, SessionLimits};
pub use service::{serve, Gateway, GatewayConfig, PROBLEM_TOKEN_SPENT};
pub use store::{RedbStore, RedisStore, Spend, SpentTokens, StoreError};
pub use tokens::{TokenCheck, TokenError};
