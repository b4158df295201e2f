//! Fuzz target `c_abi`: see `tinybase_fuzz::checks::c_abi` (tests/fuzz/checks.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinybase_fuzz::checks::c_abi(data));
