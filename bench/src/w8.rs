//! W8 on this library: 1,549 stores each write concurrently, then one fresh store merges them
//! all through the wire-form JSON path (tests/interop/bench_w8.mjs is TinyBase's side).

use crate::measure::{Measure, W8_STORES};
use std::time::Instant;
use tinybase::{Cell, MergeableStore};

/// One W8 round: the merged store, the whole time and the apply phase alone (ms), and the
/// updates' total bytes. `now` fixes every clock (for comparing stamps with TinyBase's).
pub fn w8_round(now: Option<f64>) -> (MergeableStore, f64, f64, usize) {
    let store = |id: &str| match now {
        Some(now) => MergeableStore::with_clock(Some(id), move || now),
        None => MergeableStore::new(Some(id)),
    };
    let t0 = Instant::now();
    let mut updates = Vec::with_capacity(W8_STORES);
    for i in 0..W8_STORES {
        let s = store(&format!("s{i}"));
        s.set_value("v", i as i64).expect("set_value");
        s.set_cell("t", "r", "c", i as i64).expect("set_cell");
        updates.push(s.get_encoded_mergeable_content_json());
    }
    let t1 = Instant::now();
    let merged = store("merged");
    for update in &updates {
        merged.apply_mergeable_changes_json(update).expect("apply");
    }
    let t2 = Instant::now();
    let bytes = updates.iter().map(String::len).sum();
    assert_eq!(merged.get_value("v"), Some(last_writer(&updates)), "W8: merged v is not the last writer's");
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    (merged, ms(t2 - t0), ms(t2 - t1), bytes)
}

/// The value of `v` whose HLC is highest among the updates (TinyBase's last-writer rule; HLC
/// strings order as their stamps).
fn last_writer(updates: &[String]) -> Cell {
    let stamp = |u: &String| {
        let content: serde_json::Value = serde_json::from_str(u).expect("update JSON");
        let v = &content[1][0]["v"];
        (v[1].as_str().expect("HLC").to_owned(), v[0].as_f64().expect("number"))
    };
    let (_, value) = updates.iter().map(stamp).max_by(|a, b| a.0.cmp(&b.0)).expect("updates");
    Cell::Number(value)
}

/// W8 for the `child ours w8` round: ms for the whole, apply ms, update bytes.
pub fn w8_ours() -> Vec<Measure> {
    let (_, ms, apply_ms, bytes) = w8_round(None);
    vec![Measure::new("W8", "ms", ms), Measure::new("W8", "apply ms", apply_ms), Measure::new("W8", "bytes", bytes as f64)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// With every clock fixed, our merged store holds TinyBase's stamps, hashes and winner.
    #[test]
    fn same_merge_as_tinybase() {
        let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop");
        if !interop.join("node_modules/tinybase").exists() {
            eprintln!("skipped: no tests/interop/node_modules (npm ci there)");
            return;
        }
        let now = 1_700_000_000_000.0;
        let out = Command::new("node").arg("bench_w8.mjs").arg("--fixed").arg(format!("{now}")).current_dir(&interop).output().expect("node");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("node output");
        let (merged, ..) = w8_round(Some(now));
        let (tables_hash, values_hash) = merged.get_mergeable_content_hashes();
        assert_eq!(theirs["hashes"], serde_json::json!([tables_hash, values_hash]));
        assert_eq!(Some(Cell::Number(theirs["v"].as_f64().unwrap())), merged.get_value("v"));
        assert_eq!(theirs["content"].as_str().unwrap(), merged.get_encoded_mergeable_content_json());
    }
}
