//! Shared code of the integration tests.

pub mod harness;
