//! Fuzz target `sync`: see `tinybase_fuzz::checks::sync` (tests/fuzz/checks.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinybase_fuzz::checks::sync(data));
