//! Fuzz target `ws_codec`: see `tinybase_fuzz::checks::ws_codec` (tests/fuzz/checks.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinybase_fuzz::checks::ws_codec(data));
