//! W1, W2, W3 and W8 on Yrs, Automerge and Loro with their map types (tables -> row -> cell as
//! nested maps), the comparison issue 11 asks for; each library is used the way its docs advise.

pub mod automerge;
pub mod loro;
pub mod yrs;

use crate::measure::{live_bytes, prepared, Measure, W2_CALLS, W8_STORES};
use std::time::Instant;

/// The libraries this module measures, in report order.
pub const LIBRARIES: [&str; 3] = [yrs::NAME, automerge::NAME, loro::NAME];

/// One library's W1/W2/W3 round at n, None for another library.
pub fn round(library: &str, n: usize) -> Option<Vec<Measure>> {
    match library {
        yrs::NAME => Some(yrs::round(n)),
        automerge::NAME => Some(automerge::round(n)),
        loro::NAME => Some(loro::round(n)),
        _ => None,
    }
}

/// One library's W8 round, None for another library.
pub fn w8(library: &str) -> Option<Vec<Measure>> {
    match library {
        yrs::NAME => Some(yrs::w8()),
        automerge::NAME => Some(automerge::w8()),
        loro::NAME => Some(loro::w8()),
        _ => None,
    }
}

/// One library's crate version, None for another library.
pub fn version(library: &str) -> Option<&'static str> {
    match library {
        yrs::NAME => Some(yrs::version()),
        automerge::NAME => Some(automerge::version()),
        loro::NAME => Some(loro::version()),
        _ => None,
    }
}

/// The exact version bench/Cargo.toml pins for `krate`, so that the report cannot drift from the
/// build.
fn pinned(krate: &str) -> &'static str {
    static MANIFEST: &str = include_str!("../../Cargo.toml");
    MANIFEST
        .lines()
        .filter_map(|l| l.strip_prefix(krate)?.trim_start().strip_prefix('='))
        .find_map(|rest| rest.split("\"=").nth(1)?.split('"').next())
        .unwrap_or_else(|| panic!("bench/Cargo.toml pins no {krate} = \"=x.y.z\""))
}

/// Panics with a clear message when n is over what `library` can do here within ~8 GB and ~5
/// minutes (measured limits, in each module's `MAX_N`), rather than swapping or running for hours.
fn refuse_over(library: &str, n: usize, max_n: usize) {
    assert!(
        n <= max_n,
        "{library}: N = {n} refused: over {max_n} cells it would take more than ~8 GB or ~5 minutes on this machine"
    );
}

/// What W1/W2 need from one library's document.
trait Crdt {
    /// The document, with whatever handles to its root map the library keeps.
    type Doc;
    /// W1: the prepared cells (BENCHMARKS.md's data) in one transaction on a fresh document.
    fn w1(cells: Vec<Prepared>) -> Self::Doc;
    /// One W2 call: a prepared cell set in its own transaction.
    fn w2(doc: &mut Self::Doc, cell: Prepared);
    /// How many cells the document holds, counted through its maps.
    fn cell_count(doc: &Self::Doc) -> usize;
    /// Cell i's string value, read back through the maps.
    fn cell(doc: &Self::Doc, i: usize) -> Option<String>;
}

/// W1 cells/s, W2 calls/s and W3 bytes/cell on one library, the results checked.
fn round_of<C: Crdt>(n: usize) -> Vec<Measure> {
    // Counted from before the prepared cells: w1 consumes them, so what stays is the document's.
    let before = live_bytes();
    let cells = prepared(n, "v");
    let t0 = Instant::now();
    let mut doc = C::w1(cells);
    let w1 = t0.elapsed().as_secs_f64();
    let w3 = (live_bytes() - before) as f64 / n as f64;
    assert_eq!(C::cell_count(&doc), n, "W1: cell count");
    for i in [0, n / 2, n - 1] {
        assert_eq!(C::cell(&doc, i), Some(format!("v{i}")), "W1: cell {i} read back");
    }
    let calls = prepared(W2_CALLS, "w");
    let t1 = Instant::now();
    for cell in calls {
        C::w2(&mut doc, cell);
    }
    let w2 = t1.elapsed().as_secs_f64();
    let last = W2_CALLS - 1;
    assert_eq!(C::cell(&doc, last), Some(format!("w{last}")), "W2: cell {last} read back");
    assert_eq!(C::cell_count(&doc), n.max(W2_CALLS), "W2: cell count");
    vec![
        Measure::new("W1", "cells/s", n as f64 / w1),
        Measure::new("W2", "calls/s", W2_CALLS as f64 / w2),
        Measure::new("W3", "bytes/cell", w3),
    ]
}

/// One W8 round: `write(i)` creates document i (its own client/actor/peer id), sets `v` to i and
/// cell t/r/c to i, and returns its encoded update; `apply` merges all updates into one fresh
/// document and checks it. Measures: the whole (ms), the apply phase alone (ms), update bytes.
fn w8_of<M>(write: impl Fn(usize) -> Vec<u8>, apply: impl FnOnce(&[Vec<u8>]) -> M, check: impl FnOnce(M)) -> Vec<Measure> {
    let t0 = Instant::now();
    let updates: Vec<Vec<u8>> = (0..W8_STORES).map(write).collect();
    let t1 = Instant::now();
    let merged = apply(&updates);
    let t2 = Instant::now();
    check(merged);
    let bytes: usize = updates.iter().map(Vec::len).sum();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    vec![
        Measure::new("W8", "ms", ms(t2 - t0)),
        Measure::new("W8", "apply ms", ms(t2 - t1)),
        Measure::new("W8", "bytes", bytes as f64),
    ]
}

/// W8's cell: every document writes the same one, so it conflicts like `v`.
const W8_CELL: (&str, &str, &str) = ("t", "r", "c");

/// One cell's table, row and cell ids and its value, made before the timed loops.
type Prepared = (String, String, String, String);

#[cfg(test)]
mod tests {
    use super::*;

    /// Each library's round at a small N checks its cells and reports positive figures.
    #[test]
    fn rounds_at_small_n() {
        for library in LIBRARIES {
            let measures = round(library, 100).expect("one of ours");
            let workloads: Vec<_> = measures.iter().map(|m| (m.workload, m.unit)).collect();
            assert_eq!(workloads, [("W1", "cells/s"), ("W2", "calls/s"), ("W3", "bytes/cell")], "{library}");
            assert!(measures.iter().all(|m| m.value > 0.0), "{library}: {measures:?}");
        }
    }

    /// Each library's W8 merges all 1,549 documents (checked inside) and reports its update bytes.
    #[test]
    fn w8_merges_every_document() {
        for library in LIBRARIES {
            let measures = w8(library).expect("one of ours");
            let bytes = measures.iter().find(|m| m.unit == "bytes").expect("bytes");
            assert!(bytes.value >= W8_STORES as f64, "{library}: {measures:?}");
        }
    }

    /// The versions come from bench/Cargo.toml's exact pins.
    #[test]
    fn versions_are_the_pins() {
        for library in LIBRARIES {
            let v = version(library).expect("one of ours");
            assert!(v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u32>().is_ok()), "{library}: {v}");
        }
        assert_eq!(round("ours", 100), None);
    }

    /// Sizes over a library's limit are refused rather than attempted.
    #[test]
    #[should_panic(expected = "refused")]
    fn refuses_sizes_over_the_limit() {
        automerge::round(automerge::MAX_N + 1);
    }
}
