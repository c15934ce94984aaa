//! The host's integration tests, one binary: the API, the features through it, models in
//! the measurement log, RA-TLS and the attacks a client must detect. Shared helpers are in
//! `cloister-test-support`.
mod attacks;
mod features;
mod host;
mod models;
mod ratls;
mod transparency;
mod tunnel;
mod writing_help;
