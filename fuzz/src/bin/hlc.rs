//! Fuzz target `hlc`: see `tinybase_fuzz::checks::hlc` (tests/fuzz/checks.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinybase_fuzz::checks::hlc(data));
