//! Fuzz target `diff`: see `tinybase_fuzz::checks::diff` (tests/fuzz/checks.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinybase_fuzz::checks::diff(data));
