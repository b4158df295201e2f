//! Fuzz target `json`: see `tinybase_fuzz::checks::json` (tests/fuzz/checks.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinybase_fuzz::checks::json(data));
