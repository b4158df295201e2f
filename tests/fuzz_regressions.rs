//! Replays every input the fuzzer found (tests/fuzz/regressions/TARGET/*) through the fuzz
//! targets' own checks (tests/fuzz/checks.rs), without libFuzzer: each was a crash or mismatch
//! once and must pass now.

#[path = "fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/regressions").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    files.sort();
    for file in files {
        let data = std::fs::read(&file).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{} fails again", file.display());
        }
    }
}

#[test]
fn json() {
    replay("json", checks::json);
}

#[test]
fn hlc() {
    replay("hlc", checks::hlc);
}

#[test]
fn mergeable() {
    replay("mergeable", checks::mergeable);
}

#[test]
fn diff() {
    replay("diff", checks::diff);
}

#[test]
fn store_json() {
    replay("store_json", checks::store_json);
}

#[test]
fn sync() {
    replay("sync", checks::sync);
}

#[test]
fn c_abi() {
    replay("c_abi", checks::c_abi);
}

#[test]
fn ws_codec() {
    replay("ws_codec", checks::ws_codec);
}
