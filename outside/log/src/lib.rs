//! The log (being written).
#![forbid(unsafe_code)]
