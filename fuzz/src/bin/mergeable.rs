//! Fuzz target `mergeable`: see `tinybase_fuzz::checks::mergeable` (tests/fuzz/checks.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinybase_fuzz::checks::mergeable(data));
