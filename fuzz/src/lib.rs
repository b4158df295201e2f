//! The fuzz targets' checks live beside the regression tests that replay their findings, so the
//! normal test suite runs them without this crate.
#[path = "../../tests/fuzz/checks.rs"]
pub mod checks;
