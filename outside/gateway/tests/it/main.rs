//! The gateway's tests: one binary (one link) for all of them.

mod cli;
mod common;
mod keys;
mod service;
mod store;
mod vectors;
