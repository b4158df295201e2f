//! Fuzz target `store_json`: see `tinybase_fuzz::checks::store_json` (tests/fuzz/checks.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinybase_fuzz::checks::store_json(data));
